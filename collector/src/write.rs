//! A parameter write on its way to a plant: [`resolve`] turns an approved
//! [`ParamWrite`] into the publish that carries it ([`Outgoing`], QoS 1),
//! or says in an operator's words why it cannot go. Pure: the caller
//! hands the publish to its source's connection.
//!
//! - a **Sparkplug** source: an NCMD (a node's own metric) or DCMD (a
//!   device's) naming the metric with the name, alias and type its birth
//!   declared ([`crate::sparkplug::directory`]), the value encoded in that
//!   type ([`crate::sparkplug::command`]); refused while no birth declared
//!   it, or while its node or device is dead;
//! - a **JSON** (UNS) source: a [`UnsCommand`] on
//!   `{uns_command_prefix}/{site}/{area}/{line}/{asset}/{param}`.
//!
//! QoS 1: a write must arrive, and at least once is safe for a setpoint
//! (writing the same value twice changes nothing). Note that Sparkplug 3.0
//! asks NCMD/DCMD at QoS 0 (`tck-id-payloads-ncmd-qos`); this engine takes
//! QoS 1 for writes on purpose, and a compliant edge node receives them
//! all the same (the broker delivers at the subscription's QoS at most).

use crate::ingest::Outgoing;
use crate::sparkplug::command::encode_write;
use crate::sparkplug::directory::WriteDirectory;
use ctower_model::{ParamValue, ParamWrite, UnsCommand};

/// The QoS of every parameter write.
pub const WRITE_QOS: u8 = 1;

/// How a source's plant is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Sparkplug B: NCMD/DCMD from the births.
    Sparkplug,
    /// The JSON Unified Namespace: a JSON command on the UNS command topic.
    Json,
}

/// The publish that carries `w` through source `source` (its index, and
/// how it speaks), or why it cannot go. `dir` is the write directory the
/// Sparkplug hosts fill; `uns_prefix` the UNS command topic's prefix.
pub fn resolve(
    w: &ParamWrite,
    (source, kind): (usize, SourceKind),
    dir: &WriteDirectory,
    uns_prefix: &str,
) -> Result<Outgoing, String> {
    let (topic, payload) = match kind {
        SourceKind::Sparkplug => sparkplug(w, source, dir)?,
        SourceKind::Json => json(w, uns_prefix)?,
    };
    Ok(Outgoing {
        source,
        topic,
        payload,
        qos: WRITE_QOS,
        expires_ms: Some(w.expires_ms),
    })
}

fn sparkplug(
    w: &ParamWrite,
    source: usize,
    dir: &WriteDirectory,
) -> Result<(String, Vec<u8>), String> {
    let Some(t) = dir.get(source, &w.asset, &w.signal) else {
        return Err(format!(
            "no birth from the plant names a metric for {}/{} yet (source {}): \
             nothing to address the write to until the edge node publishes its birth",
            w.asset, w.signal, w.source
        ));
    };
    if !t.alive {
        return Err(match &t.device {
            Some(d) => format!(
                "the device {}/{}/{d} is dead (DDEATH, or its edge node's NDEATH): \
                 nothing is sent until it is born again",
                t.group, t.node
            ),
            None => format!(
                "the edge node {}/{} is dead (NDEATH): nothing is sent until it is born again",
                t.group, t.node
            ),
        });
    }
    let payload = encode_write(&t.metric, t.alias, t.datatype, w.value, w.ts_ms)?;
    Ok((t.topic(), payload))
}

fn json(w: &ParamWrite, uns_prefix: &str) -> Result<(String, Vec<u8>), String> {
    let prefix = uns_prefix.trim_end_matches('/');
    if prefix.is_empty() || !topic_level(prefix, true) {
        return Err(format!(
            "the UNS command topic prefix `{uns_prefix}` is not a topic (empty, or with + # or a null)"
        ));
    }
    let parts: Vec<&str> = w.asset.split('/').collect();
    if parts.len() != 4 || !parts.iter().all(|p| topic_level(p, false)) {
        return Err(format!(
            "the asset `{}` is not site/area/line/asset",
            w.asset
        ));
    }
    if !topic_level(&w.param, false) {
        return Err(format!(
            "the parameter `{}` is not one topic level",
            w.param
        ));
    }
    if let ParamValue::Float(f) = w.value {
        if !f.is_finite() {
            return Err(format!("{f} is not a finite number"));
        }
    }
    let cmd = UnsCommand {
        id: w.request.clone(),
        param: w.param.clone(),
        value: w.value,
        ts: w.ts_ms,
        user: w.user.clone(),
    };
    let payload =
        serde_json::to_vec(&cmd).map_err(|e| format!("cannot encode the command: {e}"))?;
    Ok((format!("{prefix}/{}/{}", w.asset, w.param), payload))
}

/// Whether `s` is a non-empty topic part without wildcards or nulls (`/`
/// allowed only where it may hold several levels).
fn topic_level(s: &str, levels: bool) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| matches!(c, '+' | '#' | '\0') || (c == '/' && !levels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::directory::SpTarget;
    use crate::sparkplug::session::NodeKey;
    use crate::sparkplug::{decode_payload, DataType};
    use std::sync::Arc;

    fn write(value: ParamValue) -> ParamWrite {
        ParamWrite {
            request: "P7".into(),
            source: "lyon".into(),
            asset: "lyon/-/line-1/filler".into(),
            param: "fill_temp".into(),
            signal: "temp_sp".into(),
            value,
            user: "alice+bob".into(),
            ts_ms: 1_772_427_600_000,
            expires_ms: i64::MAX,
        }
    }

    fn dir_with(device: Option<&str>, datatype: DataType) -> WriteDirectory {
        let dir = WriteDirectory::default();
        let node = NodeKey {
            group: "lyon".into(),
            node: "line-1".into(),
        };
        let t = SpTarget {
            group: node.group.clone(),
            node: node.node.clone(),
            device: device.map(Arc::from),
            metric: "Filler/temp_sp".into(),
            alias: Some(9),
            datatype,
            alive: true,
        };
        dir.born(
            2,
            &node,
            device,
            vec![("lyon/-/line-1/filler".into(), "temp_sp".into(), t)],
        );
        dir
    }

    #[test]
    fn a_sparkplug_write_is_a_dcmd_with_the_births_name_alias_and_type() {
        let dir = dir_with(Some("filler"), DataType::Float);
        let o = resolve(
            &write(ParamValue::Int(72)),
            (2, SourceKind::Sparkplug),
            &dir,
            "x",
        )
        .unwrap();
        assert_eq!((o.source, o.qos), (2, 1));
        assert_eq!(o.topic, "spBv1.0/lyon/DCMD/line-1/filler");
        let p = decode_payload(&o.payload).unwrap();
        let m = &p.metrics[0];
        assert_eq!(m.name.as_deref(), Some("Filler/temp_sp"));
        assert_eq!((m.alias, m.datatype), (Some(9), Some(9)));
        assert_eq!(
            m.raw,
            Some(crate::sparkplug::wire::MetricValue::FloatValue(72.0))
        );

        // A node's own metric: NCMD.
        let dir = dir_with(None, DataType::Boolean);
        let o = resolve(
            &write(ParamValue::Bool(true)),
            (2, SourceKind::Sparkplug),
            &dir,
            "x",
        )
        .unwrap();
        assert_eq!(o.topic, "spBv1.0/lyon/NCMD/line-1");
    }

    #[test]
    fn a_sparkplug_write_is_refused_in_words() {
        let dir = dir_with(Some("filler"), DataType::Int16);
        let sp = (2, SourceKind::Sparkplug);
        let e = resolve(
            &write(ParamValue::Int(1)),
            (3, SourceKind::Sparkplug),
            &dir,
            "x",
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "no birth from the plant names a metric for lyon/-/line-1/filler/temp_sp yet"
            ),
            "{e}"
        );
        let e = resolve(&write(ParamValue::Float(0.5)), sp, &dir, "x").unwrap_err();
        assert!(e.contains("fraction"), "{e}");
        dir.died(
            2,
            &NodeKey {
                group: "lyon".into(),
                node: "line-1".into(),
            },
            None,
        );
        let e = resolve(&write(ParamValue::Int(1)), sp, &dir, "x").unwrap_err();
        assert!(
            e.starts_with("the device lyon/line-1/filler is dead"),
            "{e}"
        );
        let dir = dir_with(None, DataType::Int16);
        dir.died(
            2,
            &NodeKey {
                group: "lyon".into(),
                node: "line-1".into(),
            },
            None,
        );
        let e = resolve(&write(ParamValue::Int(1)), sp, &dir, "x").unwrap_err();
        assert!(
            e.starts_with("the edge node lyon/line-1 is dead (NDEATH)"),
            "{e}"
        );
    }

    #[test]
    fn a_json_write_is_a_uns_command_on_the_command_topic() {
        let dir = WriteDirectory::default();
        let o = resolve(
            &write(ParamValue::Float(72.5)),
            (0, SourceKind::Json),
            &dir,
            "acme/cmd/",
        )
        .unwrap();
        assert_eq!((o.source, o.qos), (0, 1));
        assert_eq!(o.topic, "acme/cmd/lyon/-/line-1/filler/fill_temp");
        let cmd: UnsCommand = serde_json::from_slice(&o.payload).unwrap();
        assert_eq!(
            cmd,
            UnsCommand {
                id: "P7".into(),
                param: "fill_temp".into(),
                value: ParamValue::Float(72.5),
                ts: 1_772_427_600_000,
                user: "alice+bob".into(),
            }
        );
        let json = (0, SourceKind::Json);
        let mut bad = write(ParamValue::Int(1));
        bad.asset = "lyon/line-1/filler".into();
        assert!(resolve(&bad, json, &dir, "acme/cmd")
            .unwrap_err()
            .contains("not site/area/line/asset"));
        bad.asset = "lyon/-/line-1/+".into();
        assert!(resolve(&bad, json, &dir, "acme/cmd").is_err());
        let mut bad = write(ParamValue::Int(1));
        bad.param = "a/b".into();
        assert!(resolve(&bad, json, &dir, "acme/cmd")
            .unwrap_err()
            .contains("one topic level"));
        assert!(resolve(&write(ParamValue::Int(1)), json, &dir, "")
            .unwrap_err()
            .contains("prefix"));
        assert!(resolve(&write(ParamValue::Int(1)), json, &dir, "acme/#").is_err());
        assert!(resolve(&write(ParamValue::Float(f64::NAN)), json, &dir, "acme/cmd").is_err());
    }
}
