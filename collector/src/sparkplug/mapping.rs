//! Where a Sparkplug metric lands in the asset model: templates over the
//! group, edge node, device and metric name give its site, area, line,
//! asset and signal, so a Sparkplug source feeds the same assets and roles
//! as the JSON tree. Checked at load ([`SparkplugConfig::check`]).

use super::session::SessionLimits;
use crate::decode::valid_name;
use serde::Deserialize;

/// `[sources.sparkplug]` as written in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkplugConfig {
    /// The host application id: ctower publishes its retained
    /// `spBv1.0/STATE/{host_id}` online message (with an offline will).
    /// Default `ctower`.
    pub host_id: Option<String>,
    /// Site template; default `{group}`.
    pub site: Option<String>,
    /// Area template; default `-` (no area).
    pub area: Option<String>,
    /// Line template; default `{node}`.
    pub line: Option<String>,
    /// Asset template; default `{device}` (for a node's own metrics, the
    /// node's id).
    pub asset: Option<String>,
    /// Signal template; default `{metric}`.
    pub signal: Option<String>,
    /// Least time between two rebirth requests to one node; default 10.
    pub rebirth_interval_secs: Option<u64>,
    /// Messages held while an earlier `seq` is missing; default 8.
    pub reorder_window: Option<usize>,
    /// How long a held message waits for a missing one, ms; default 2000.
    pub reorder_wait_ms: Option<u64>,
    /// Edge nodes known at once; default 10,000.
    pub max_nodes: Option<usize>,
    /// Metrics one node and its devices may declare; default 10,000.
    pub max_metrics_per_node: Option<usize>,
    /// Report by exception: while a node is alive, the last value of each
    /// of its metrics holds; it is restated this often (node time) so that
    /// a quiet machine is not taken as silent. Default 30; must be below
    /// `pipeline.stale_after_secs`.
    pub hold_secs: Option<u64>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Group,
    Node,
    Device,
    /// The whole metric name, its `/` folders written `.`.
    Metric,
    /// One `/`-separated part of the metric name (negative: from the end).
    MetricPart(i32),
}

/// A name template: literal text and `{group}`, `{node}`, `{device}`,
/// `{metric}`, `{metric:N}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

/// What a template is filled with.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The group id.
    pub group: &'a str,
    /// The edge node id.
    pub node: &'a str,
    /// The device id, or the node's for its own metrics.
    pub device: &'a str,
    /// The metric's name.
    pub metric: &'a str,
}

impl Template {
    /// Parses `s`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("`{s}`: a `{{` without its `}}`"))?;
                    pieces.push(Self::placeholder(&rest[1..end])?);
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let lit = &rest[..end];
                    if lit.contains('}') || !valid_name(lit) {
                        return Err(format!(
                            "`{s}`: `{lit}` is not a name (ASCII letters, digits, `-`, `_`, `.`, `:`)"
                        ));
                    }
                    pieces.push(Piece::Lit(lit.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        if pieces.is_empty() {
            return Err("an empty template".into());
        }
        Ok(Template(pieces))
    }

    fn placeholder(p: &str) -> Result<Piece, String> {
        Ok(match p {
            "group" => Piece::Group,
            "node" => Piece::Node,
            "device" => Piece::Device,
            "metric" => Piece::Metric,
            _ => match p.strip_prefix("metric:").map(str::parse::<i32>) {
                Some(Ok(n)) => Piece::MetricPart(n),
                _ => {
                    return Err(format!(
                        "`{{{p}}}`: expected {{group}}, {{node}}, {{device}}, {{metric}} or {{metric:N}}"
                    ))
                }
            },
        })
    }

    /// The name for `names`, or why there is none (a missing metric part,
    /// a character outside the name set).
    pub fn render(&self, names: &Names<'_>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::Group => out.push_str(names.group),
                Piece::Node => out.push_str(names.node),
                Piece::Device => out.push_str(names.device),
                Piece::Metric => {
                    out.extend(names.metric.chars().map(|c| if c == '/' { '.' } else { c }))
                }
                Piece::MetricPart(n) => {
                    let parts: Vec<&str> = names.metric.split('/').collect();
                    let i = if *n < 0 {
                        parts.len().checked_sub(n.unsigned_abs() as usize)
                    } else {
                        Some(*n as usize)
                    };
                    match i.and_then(|i| parts.get(i)) {
                        Some(part) => out.push_str(part),
                        None => {
                            return Err(format!(
                                "metric `{}` has no part {{metric:{n}}}",
                                names.metric
                            ))
                        }
                    }
                }
            }
        }
        if valid_name(&out) {
            Ok(out)
        } else {
            Err(format!(
                "`{out}` is not a name (ASCII letters, digits, `-`, `_`, `.`, `:`)"
            ))
        }
    }
}

/// Site, area, line, asset and signal templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Site.
    pub site: Template,
    /// Area.
    pub area: Template,
    /// Line.
    pub line: Template,
    /// Asset.
    pub asset: Template,
    /// Signal.
    pub signal: Template,
}

/// Checked Sparkplug settings of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkplugRules {
    /// The host application id (STATE topic).
    pub host_id: String,
    /// Names of the asset model.
    pub mapping: Mapping,
    /// The session's bounds.
    pub limits: SessionLimits,
    /// Restatement interval of held values, ms.
    pub hold_ms: i64,
}

impl Default for SparkplugRules {
    fn default() -> Self {
        // The defaults parse: a broken one is a bug, seen by every test.
        let t = |s: &str| Template::parse(s).unwrap_or_else(|e| panic!("default template: {e}"));
        SparkplugRules {
            host_id: "ctower".into(),
            mapping: Mapping {
                site: t("{group}"),
                area: t("-"),
                line: t("{node}"),
                asset: t("{device}"),
                signal: t("{metric}"),
            },
            limits: SessionLimits::default(),
            hold_ms: 30_000,
        }
    }
}

impl SparkplugConfig {
    /// The checked rules, or every problem as (field, message).
    pub fn check(&self) -> Result<SparkplugRules, Vec<(String, String)>> {
        let d = SparkplugRules::default();
        let mut problems = Vec::new();
        let mut template = |field: &str, v: &Option<String>, default: &Template| match v {
            None => default.clone(),
            Some(s) => Template::parse(s).unwrap_or_else(|e| {
                problems.push((field.to_string(), e));
                default.clone()
            }),
        };
        let mapping = Mapping {
            site: template("site", &self.site, &d.mapping.site),
            area: template("area", &self.area, &d.mapping.area),
            line: template("line", &self.line, &d.mapping.line),
            asset: template("asset", &self.asset, &d.mapping.asset),
            signal: template("signal", &self.signal, &d.mapping.signal),
        };
        let host_id = self.host_id.clone().unwrap_or(d.host_id);
        // The host id is a topic level: no wildcard, no separator.
        if host_id.is_empty() || host_id.contains(['/', '+', '#']) {
            problems.push((
                "host_id".into(),
                format!("`{host_id}` must be one topic level (no `/`, `+`, `#`)"),
            ));
        }
        let mut range = |field: &str, v: Option<u64>, lo: u64, hi: u64, default: u64| match v {
            Some(x) if !(lo..=hi).contains(&x) => {
                problems.push((field.to_string(), format!("{x} is outside {lo}..={hi}")));
                default
            }
            Some(x) => x,
            None => default,
        };
        let dl = d.limits;
        let limits = SessionLimits {
            reorder_window: range(
                "reorder_window",
                self.reorder_window.map(|v| v as u64),
                0,
                128,
                dl.reorder_window as u64,
            ) as usize,
            reorder_wait_ms: range(
                "reorder_wait_ms",
                self.reorder_wait_ms,
                0,
                60_000,
                dl.reorder_wait_ms as u64,
            ) as i64,
            rebirth_interval_ms: range(
                "rebirth_interval_secs",
                self.rebirth_interval_secs,
                1,
                3600,
                dl.rebirth_interval_ms as u64 / 1000,
            ) as i64
                * 1000,
            max_nodes: range(
                "max_nodes",
                self.max_nodes.map(|v| v as u64),
                1,
                1_000_000,
                dl.max_nodes as u64,
            ) as usize,
            max_metrics_per_node: range(
                "max_metrics_per_node",
                self.max_metrics_per_node.map(|v| v as u64),
                1,
                1_000_000,
                dl.max_metrics_per_node as u64,
            ) as usize,
        };
        let hold_ms = range("hold_secs", self.hold_secs, 1, 86_400, 30) as i64 * 1000;
        if problems.is_empty() {
            Ok(SparkplugRules {
                host_id,
                mapping,
                limits,
                hold_ms,
            })
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(metric: &str) -> Names<'_> {
        Names {
            group: "lyon",
            node: "line-1",
            device: "filler",
            metric,
        }
    }

    #[test]
    fn templates_fill_and_check_names() {
        let t = Template::parse("{node}-{metric:0}").unwrap();
        assert_eq!(t.render(&names("Filler/state")).unwrap(), "line-1-Filler");
        let t = Template::parse("{metric:-1}").unwrap();
        assert_eq!(t.render(&names("Filler/state")).unwrap(), "state");
        let t = Template::parse("{metric}").unwrap();
        assert_eq!(t.render(&names("Filler/state")).unwrap(), "Filler.state");
        assert!(t
            .render(&names("bad name"))
            .unwrap_err()
            .contains("not a name"));
        let t = Template::parse("{metric:2}").unwrap();
        assert!(t.render(&names("a/b")).unwrap_err().contains("no part"));
        for bad in ["{grp}", "{node", "a b", "", "{metric:x}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_reports_every_problem() {
        let c = SparkplugConfig {
            host_id: Some("a/b".into()),
            line: Some("{nod}".into()),
            reorder_window: Some(1000),
            hold_secs: Some(0),
            ..Default::default()
        };
        let p = c.check().unwrap_err();
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["line", "host_id", "reorder_window", "hold_secs"]);
        assert_eq!(
            SparkplugConfig::default().check().unwrap(),
            SparkplugRules::default()
        );
    }
}
