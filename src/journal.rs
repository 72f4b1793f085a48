//! The local journal: every KPI record and alarm event appended to
//! `DIR/ctower.lp` in InfluxDB line protocol, so it can be imported later
//! (`influx write --bucket B --precision ns --file DIR/ctower.lp`).
//!
//! ```text
//! kpi,level=line,site=lyon-fill,area=aseptic,line=fill-1,period=window availability=0.93,…,produced=5210i,revision=0i 1772427660000000000
//! alarm,rule=line-breakdown,scope=lyon-fill/aseptic/fill-1,kind=raised state="unack_active",priority="high",value=0.31,threshold=0.5,message="…" 1772430600000000000
//! ```
//! Points are keyed by the window end (KPIs) or the event time (alarms), so
//! writing the same window again — a replay, a correction — overwrites.
//!
//! Writing the file (batches per window, fdatasync, torn-tail repair, the
//! bounded backlog on a full disk) is in [`appender`].

mod appender;
pub mod rotate;

pub use appender::Journal;
use ctower_model::kpi::{FieldInfo, FieldValue, FieldVisitor};
use ctower_model::{AlarmEvent, KpiRecord, SignalWindow, StreamOutput};
pub use rotate::Retention;
use std::fmt::Write as _;

/// What a name or string gets in place of a character line protocol cannot
/// carry. A newline cannot be escaped in a name (a bare one ends the line,
/// and after a backslash parsers keep the backslash), a tab separates like a
/// space in some parsers, and NUL and the other control characters are
/// refused or mangled downstream. So each becomes U+FFFD: the point still
/// parses, the series stays distinct from one with a real space, and the
/// mark shows where the name was damaged.
const UNREPRESENTABLE: char = '\u{FFFD}';

/// Escapes a tag key, a tag value or a field key (InfluxDB line protocol):
/// comma, space and equals sign get a backslash. A backslash is doubled
/// when a parser would otherwise read it as the escape of what follows (a
/// backslash, comma, space or equals sign): without that, a name ending in
/// one (`evil\` before the `,` of the next tag) swallows the rest of the
/// line. Elsewhere it stays single, which every parser reads as itself (the
/// Go parser of InfluxDB 1.x/2.x never unescapes `\\` in names, so fewer
/// doubled backslashes means fewer names it stores altered). A backslash
/// that ends the name cannot be written at all: `\\` there is refused by
/// InfluxDB 3's parser and kept doubled by the Go one, so it becomes
/// U+FFFD like a control character.
fn esc_key(s: &str, out: &mut String) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                None => out.push(UNREPRESENTABLE),
                Some('\\' | ',' | ' ' | '=') => out.push_str("\\\\"),
                Some(_) => out.push('\\'),
            },
            ',' | ' ' | '=' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(UNREPRESENTABLE),
            c => out.push(c),
        }
    }
}

/// A string field value in double quotes: double quote and backslash get a
/// backslash; control characters become U+FFFD like in names, so that a
/// journal line is always exactly one line of the file (the torn-tail
/// repair and every line-oriented tool rely on it).
fn esc_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(UNREPRESENTABLE),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn sep(&mut self, name: &str) {
        self.out.push(if self.first { ' ' } else { ',' });
        self.first = false;
        esc_key(name, self.out);
        self.out.push('=');
    }
    fn float(&mut self, name: &str, v: Option<f64>) {
        // NaN and infinities are not valid line protocol: never write them.
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sep(name);
            let _ = write!(self.out, "{v}");
        }
    }
    fn int(&mut self, name: &str, v: i64) {
        self.sep(name);
        let _ = write!(self.out, "{v}i");
    }
    /// A count that may be unknown (left out) and never wraps negative.
    fn count(&mut self, name: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.int(name, i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    fn boolean(&mut self, name: &str, v: bool) {
        self.sep(name);
        self.out.push(if v { 't' } else { 'f' });
    }
    fn text(&mut self, name: &str, v: &str) {
        self.sep(name);
        esc_str(v, self.out);
    }
}

impl FieldVisitor for Fields<'_> {
    fn field(&mut self, info: &FieldInfo, value: FieldValue<'_>) {
        let name = info.journal_name;
        match value {
            FieldValue::Count(v) => self.count(name, v),
            FieldValue::Int(v) => self.int(name, v),
            FieldValue::Float(v) => self.float(name, v),
            FieldValue::Flag(v) => self.boolean(name, v),
            FieldValue::IntByKey(m) => {
                for (key, v) in m {
                    self.int(&format!("{name}.{key}"), *v);
                }
            }
            FieldValue::FloatByKey(m) => {
                for (key, v) in m {
                    self.float(&format!("{name}.{key}"), Some(*v));
                }
            }
        }
    }
}

fn tag(out: &mut String, k: &str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        out.push(',');
        esc_key(k, out);
        out.push('=');
        esc_key(v, out);
    }
}

/// One record of a closed window (a KPI record or a signal statistic) as
/// a line (no newline).
pub fn output_line(o: &StreamOutput, out: &mut String) {
    match o {
        StreamOutput::Kpi(k) => kpi_line(k, out),
        StreamOutput::Signal(s) => signal_line(s, out),
    }
}

/// One KPI record as a line (no newline).
pub fn kpi_line(k: &KpiRecord, out: &mut String) {
    out.push_str("kpi,level=");
    out.push_str(k.scope.level.as_str());
    tag(out, "site", k.scope.site.as_deref());
    tag(out, "area", k.scope.area.as_deref());
    tag(out, "line", k.scope.line.as_deref());
    tag(out, "asset", k.scope.asset.as_deref());
    tag(out, "period", Some(k.period.as_str()));
    tag(out, "production_day", k.production_day.as_deref());
    tag(out, "shift", k.shift.as_deref());
    let mut f = Fields { out, first: true };
    // Every KPI field, from the one table (ctower_model::kpi).
    k.visit(&mut f);
    f.int("revision", i64::from(k.revision));
    f.boolean("complete", k.complete);
    f.int("period_start_ms", k.window_start_ms);
    let _ = write!(out, " {}", k.window_end_ms * 1_000_000);
}

/// One signal statistic as a line (no newline).
pub fn signal_line(s: &SignalWindow, out: &mut String) {
    out.push_str("signal");
    tag(out, "site", Some(&s.asset.site));
    tag(out, "area", Some(&s.asset.area));
    tag(out, "line", Some(&s.asset.line));
    tag(out, "asset", Some(&s.asset.asset));
    tag(out, "signal", Some(&s.signal));
    let mut f = Fields { out, first: true };
    f.count("count", Some(s.count));
    f.float("min", Some(s.min));
    f.float("max", Some(s.max));
    f.float("mean", Some(s.mean));
    f.float("last", Some(s.last));
    let _ = write!(out, " {}", s.window_end_ms * 1_000_000);
}

/// One alarm event as a line (no newline).
pub fn alarm_line(a: &AlarmEvent, out: &mut String) {
    out.push_str("alarm");
    tag(out, "rule", Some(&a.rule));
    tag(out, "scope", Some(&a.scope.to_string()));
    tag(out, "signal", a.signal.as_deref());
    tag(out, "kind", Some(a.kind.as_str()));
    let mut f = Fields { out, first: true };
    f.text("state", a.state.as_str());
    f.text("priority", a.priority.as_str());
    f.text("metric", &a.metric);
    f.float("value", a.value);
    f.float("threshold", Some(a.threshold));
    f.text("message", &a.message);
    let _ = write!(out, " {}", a.ts_ms * 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::kpi::KpiSums;
    use ctower_model::{AssetKey, Level, ScopeKey};

    /// The KPI field table is the one source (issue #9): a record with
    /// every field set, built from the table alone, has every field in its
    /// JSON (and nothing else), in its journal line and — each field that is
    /// one number — in the metric names alarm rules accept; and the README's
    /// field list of the batch output names them all.
    #[test]
    fn every_kpi_field_is_in_the_json_the_journal_the_metrics_and_the_docs() {
        use ctower_model::kpi::FieldKind;
        use serde_json::{json, Map, Value};
        let meta = [
            ("window_start_ms", json!(1_772_427_600_000i64)),
            ("window_end_ms", json!(1_772_427_660_000i64)),
            ("level", json!("site")),
            ("site", json!("lyon")),
            ("area", Value::Null),
            ("line", Value::Null),
            ("asset", Value::Null),
            ("revision", json!(1)),
            ("period", json!("window")),
            ("production_day", json!("2026-03-02")),
            ("shift", json!("night")),
            ("complete", json!(true)),
        ];
        let mut obj: Map<String, Value> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for f in KpiRecord::FIELDS {
            let v = match f.kind {
                FieldKind::Count => json!(7),
                FieldKind::Int => json!(-3),
                FieldKind::Float => json!(0.25),
                FieldKind::Flag => json!(true),
                FieldKind::IntByKey => json!({ "jam": 5 }),
                FieldKind::FloatByKey => json!({ "produced": 1.5 }),
            };
            obj.insert(f.name.to_string(), v);
        }
        let record: KpiRecord = serde_json::from_value(Value::Object(obj.clone())).unwrap();
        // The JSON holds the table's fields and the record's keys, no more.
        assert_eq!(serde_json::to_value(&record).unwrap(), Value::Object(obj));
        let mut line = String::new();
        kpi_line(&record, &mut line);
        let fields = line.split(' ').nth(1).unwrap();
        let keys: Vec<&str> = fields
            .split(',')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        for f in KpiRecord::FIELDS {
            let key = match f.kind {
                FieldKind::IntByKey => format!("{}.jam", f.journal_name),
                FieldKind::FloatByKey => format!("{}.produced", f.journal_name),
                _ => f.journal_name.to_string(),
            };
            assert!(keys.contains(&key.as_str()), "journal lacks {key}: {line}");
            assert_eq!(
                KpiRecord::METRICS.contains(&f.name),
                f.kind.is_metric(),
                "metric list and table disagree on {}",
                f.name
            );
        }
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let section = readme.split("## Batch mode and its output").nth(1).unwrap();
        let table: Vec<&str> = section
            .split("\n## ")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("| `"))
            .collect();
        let documented = |name: &str| {
            table.iter().any(|row| {
                let first = row.split('|').nth(1).unwrap_or("");
                first.contains(&format!("`{name}`"))
            })
        };
        for name in KpiRecord::FIELDS
            .iter()
            .map(|f| f.name)
            .chain(meta.iter().map(|m| m.0))
        {
            assert!(documented(name), "README's field list lacks `{name}`");
        }
    }

    #[test]
    fn escapes_and_skips_undefined_fields() {
        let scope = AssetKey::new("lyon fill", "a,b", "l=1", "m").scope(Level::Line);
        let k = KpiRecord::new(
            0,
            60_000,
            scope,
            KpiSums {
                running_ms: 60_000,
                ..Default::default()
            },
        );
        let mut s = String::new();
        kpi_line(&k, &mut s);
        assert!(
            s.starts_with(r"kpi,level=line,site=lyon\ fill,area=a\,b,line=l\=1,period=window "),
            "{s}"
        );
        assert!(
            !s.contains("quality="),
            "undefined ratio must be omitted: {s}"
        );
        assert!(!s.contains("kwh_per_good_unit="), "{s}");
        assert!(s.contains("running_ms=60000i,"), "{s}");
        assert!(s.ends_with(" 60000000000"));
    }

    /// A field never changes type: whole floats stay floats (no `i`),
    /// counts and times stay integers, read back by a real parser.
    #[test]
    fn every_field_keeps_its_type_whatever_its_value() {
        use ctower_model::kpi::FieldKind;
        use influxdb_line_protocol::{parse_lines, FieldValue};
        let sums = KpiSums {
            running_ms: 60_000,
            produced: Some(10),
            good: Some(10),
            ideal_time_ms: 60_000.0,
            energy_kwh: Some(2.0),
            ..Default::default()
        };
        let k = KpiRecord::new(0, 60_000, ScopeKey::group(), sums);
        let mut line = String::new();
        kpi_line(&k, &mut line);
        let p = parse_lines(&line).next().unwrap().unwrap();
        let mut checked = 0;
        for f in KpiRecord::FIELDS {
            let Some(v) = p.field_value(f.journal_name) else {
                continue;
            };
            let ok = match f.kind {
                FieldKind::Float => matches!(v, FieldValue::F64(_)),
                FieldKind::Int | FieldKind::Count => matches!(v, FieldValue::I64(_)),
                FieldKind::Flag => matches!(v, FieldValue::Boolean(_)),
                _ => true,
            };
            assert!(ok, "{}: {v:?} in {line}", f.journal_name);
            checked += 1;
        }
        assert!(
            line.contains("energy_kwh=2,") || line.contains("energy_kwh=2 "),
            "{line}"
        );
        assert!(checked > 20, "{checked}");
    }

    /// Hostile names, the ones a site or rule could really be given, read
    /// back by a real line-protocol parser (InfluxDB IOx's, not ours): every
    /// tag and field key, every string value comes back exactly as written,
    /// with control characters as U+FFFD, and no name adds or swallows a tag
    /// or a field.
    #[test]
    fn hostile_names_round_trip_through_a_real_parser() {
        use influxdb_line_protocol::{parse_lines, FieldValue, ParsedLine};
        use std::collections::BTreeMap;
        use std::sync::Arc;

        let hostile = [
            "evil\\",
            "a b",
            "x,y=1",
            "trailing\\",
            "\\,\\ \\=\\\\",
            "two\nlines",
            "say \"hi\"",
            "tab\there\r",
            "nul\0",
            "=",
            "back\\slash",
            "\\\\",
        ];
        // What a parser gives back: control characters and a name's last
        // backslash are unrepresentable.
        let read_back = |s: &str| {
            let s = s.replace(|c: char| c.is_control(), "\u{FFFD}");
            match s.strip_suffix('\\') {
                Some(head) => format!("{head}\u{FFFD}"),
                None => s,
            }
        };
        // String values keep a last backslash.
        let read_back_text = |s: &str| s.replace(|c: char| c.is_control(), "\u{FFFD}");
        fn parse_one(line: &str) -> ParsedLine<'_> {
            let mut parsed: Vec<_> = parse_lines(line).collect();
            assert_eq!(parsed.len(), 1, "one line: {line}");
            match parsed.pop() {
                Some(Ok(p)) => p,
                other => panic!("{line}\n does not parse: {other:?}"),
            }
        }
        fn tags(p: &ParsedLine<'_>) -> Vec<(String, String)> {
            let set = p.series.tag_set.iter().flatten();
            set.map(|(k, v)| (k.to_string(), v.to_string())).collect()
        }
        fn text(p: &ParsedLine<'_>, key: &str) -> String {
            match p.field_value(key) {
                Some(FieldValue::String(s)) => s.to_string(),
                other => panic!("{key}: {other:?}"),
            }
        }

        let n = hostile.len();
        for i in 0..n {
            let name = |k: usize| hostile[(i + k) % n];
            let key = AssetKey::new(name(0), name(1), name(2), name(3));
            let reason: Arc<str> = name(4).into();
            let sums = KpiSums {
                running_ms: 50_000,
                unplanned_stop_ms: 10_000,
                unplanned_stop_by_reason_ms: BTreeMap::from([(reason, 10_000)]),
                ..Default::default()
            };
            let k = KpiRecord::new(0, 60_000, key.scope(Level::Asset), sums);
            let mut line = String::new();
            kpi_line(&k, &mut line);
            let p = parse_one(&line);
            assert_eq!(p.series.measurement.to_string(), "kpi");
            let expected: Vec<(String, String)> = [
                ("level", "asset"),
                ("site", name(0)),
                ("area", name(1)),
                ("line", name(2)),
                ("asset", name(3)),
                ("period", "window"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), read_back(v)))
            .collect();
            assert_eq!(tags(&p), expected, "{line}");
            let reason_key = format!("unplanned_stop_ms.{}", read_back(name(4)));
            assert_eq!(
                p.field_value(&reason_key),
                Some(&FieldValue::I64(10_000)),
                "{line}"
            );
            assert_eq!(p.field_value("running_ms"), Some(&FieldValue::I64(50_000)));
            assert_eq!(p.timestamp, Some(60_000_000_000));

            let s = SignalWindow {
                window_start_ms: 0,
                window_end_ms: 60_000,
                asset: key.clone(),
                signal: name(4).into(),
                role: ctower_model::Role::PowerKw,
                count: 3,
                min: 1.0,
                max: 2.0,
                mean: 1.5,
                last: 2.0,
            };
            let mut line = String::new();
            signal_line(&s, &mut line);
            let p = parse_one(&line);
            // The asset's tags, without the KPI's level and period.
            let mut expected = expected[1..5].to_vec();
            expected.push(("signal".into(), read_back(name(4))));
            assert_eq!(tags(&p), expected, "{line}");
            assert_eq!(p.field_set.len(), 5, "{line}");

            let a = AlarmEvent {
                ts_ms: 120_000,
                rule: name(5).into(),
                scope: key.scope(Level::Asset),
                signal: Some(name(6).into()),
                kind: ctower_model::AlarmEventKind::Raised,
                state: ctower_model::AlarmState::UnackActive,
                priority: ctower_model::Priority::High,
                metric: name(7).into(),
                value: Some(0.25),
                threshold: 0.5,
                message: name(8).into(),
            };
            let mut line = String::new();
            alarm_line(&a, &mut line);
            let p = parse_one(&line);
            let scope = key.scope(Level::Asset).to_string();
            let expected: Vec<(String, String)> = [
                ("rule", name(5)),
                ("scope", scope.as_str()),
                ("signal", name(6)),
                ("kind", "raised"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), read_back(v)))
            .collect();
            assert_eq!(tags(&p), expected, "{line}");
            assert_eq!(text(&p, "metric"), read_back_text(name(7)), "{line}");
            assert_eq!(text(&p, "message"), read_back_text(name(8)), "{line}");
            assert_eq!(text(&p, "state"), "unack_active");
            assert_eq!(p.field_value("value"), Some(&FieldValue::F64(0.25)));
            assert_eq!(p.field_set.len(), 6, "{line}");
            assert_eq!(p.timestamp, Some(120_000_000_000));
        }
    }
}
