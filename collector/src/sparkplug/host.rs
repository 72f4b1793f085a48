//! A Sparkplug B source as the ingest core sees it: raw MQTT messages in,
//! observations, refusals and rebirth requests out. Pure (the caller gives
//! receive times and ticks it); one per Sparkplug source, fed in arrival
//! order, live and in batch mode alike.
//!
//! Beyond [`HostSession`] it holds what the KPIs need of the Sparkplug
//! semantics:
//! - **mapping**: each metric lands on an asset and a signal of the asset
//!   model ([`Mapping`]) and takes the JSON tree's role and state buckets;
//! - **report by exception**: a node publishes a value only when it
//!   changes, and the value holds while the node lives. The last value of
//!   each metric is restated every `hold_secs` of node time, so a machine
//!   that stays stopped is still known to be stopped (not silent, not
//!   UNKNOWN);
//! - **death**: a node's (NDEATH, or a sequence gap) or device's (DDEATH)
//!   state signals become UNKNOWN at once (code `stale`), never downtime,
//!   and stop being restated until a birth brings values again.
//!
//! With a write directory ([`SparkplugHost::set_write_directory`]) it also
//! records, from each birth, the metric behind every writable signal (its
//! name, alias and type), and marks them dead with their node or device:
//! what a parameter write needs to name the metric in a DCMD/NCMD.

use super::directory::{SpTarget, WriteDirectory};
use super::mapping::{Names, SparkplugRules};
use super::payload::{decode_payload, DataType, SpValue};
use super::session::{Declaration, Event, HostSession, NodeKey};
use super::topic::{MessageType, SpTopic, NAMESPACE};
use super::wire;
use crate::decode::{check_number, check_time, DecodeRules, Reason, Rejection};
use ctower_model::{AssetKey, Bucket, Observation, Role, Value};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Least receive time between two scans of the held values.
pub const TICK_MS: i64 = 1_000;

/// Restatements of one value in one tick at most (a node alive but silent
/// for days, at the default 30 s: 10,000 cover 3.5 days); older ones are
/// skipped.
const MAX_RESTATEMENTS: i64 = 10_000;

/// What one message (or a tick) gives.
#[derive(Debug, Clone, PartialEq)]
pub enum SpOutput {
    /// An observation for admission (its `seq` and watermark left unset).
    Observation(Observation),
    /// A refusal, for a dead letter with the message that caused it.
    Refused(Rejection),
    /// An NCMD `Node Control/Rebirth` to publish (QoS 0; live sources
    /// only, a replay cannot ask).
    Rebirth {
        /// `spBv1.0/{group}/NCMD/{node}`.
        topic: String,
        /// The encoded payload.
        payload: Vec<u8>,
        /// Why, for the log.
        why: String,
    },
}

/// What the host keeps of a node beyond the session.
#[derive(Debug, Default)]
struct NodeView {
    /// The node's clock minus the receive time, from its latest payload
    /// timestamp: held values are restated in node time.
    offset_ms: i64,
    /// The current value of each (device, metric), as last observed or
    /// restated.
    last: BTreeMap<(Option<Arc<str>>, Arc<str>), Observation>,
}

/// One Sparkplug source's host (module docs).
#[derive(Debug)]
pub struct SparkplugHost {
    rules: SparkplugRules,
    decode: DecodeRules,
    session: HostSession,
    nodes: BTreeMap<NodeKey, NodeView>,
    /// Receive time before which [`SparkplugHost::tick`] has nothing to do.
    next_tick_ms: i64,
    /// Where births record their writable metrics (live mode only).
    writes: Option<Writes>,
}

/// A host's part of the write directory.
#[derive(Debug)]
struct Writes {
    dir: WriteDirectory,
    /// This host's source (index), the directory's first key.
    source: usize,
    /// The signals that may be written (the parameters' read-backs).
    signals: Arc<BTreeSet<Arc<str>>>,
}

impl SparkplugHost {
    /// A host knowing no node yet; roles, state buckets and the payload
    /// limit come from `decode`, as for a JSON source.
    pub fn new(rules: SparkplugRules, decode: DecodeRules) -> Self {
        SparkplugHost {
            session: HostSession::new(rules.limits),
            rules,
            decode,
            nodes: BTreeMap::new(),
            next_tick_ms: i64::MIN,
            writes: None,
        }
    }

    /// Births record the metrics of `signals` (mapped names, as the
    /// observations get them) in `dir` under source `source`; deaths mark
    /// them dead (module docs of [`super::directory`]).
    pub fn set_write_directory(
        &mut self,
        dir: WriteDirectory,
        source: usize,
        signals: Arc<BTreeSet<Arc<str>>>,
    ) {
        self.writes = Some(Writes {
            dir,
            source,
            signals,
        });
    }

    /// The decoding rules (roles, states, payload limit).
    pub fn decode_rules(&self) -> &DecodeRules {
        &self.decode
    }

    /// One message received at `recv_ms` (the host is ticked to it first).
    pub fn handle(&mut self, topic: &str, payload: &[u8], recv_ms: i64) -> Vec<SpOutput> {
        let mut out = self.tick(recv_ms);
        let refuse = |out: &mut Vec<SpOutput>, reason, detail: String| {
            out.push(SpOutput::Refused(Rejection { reason, detail }))
        };
        if payload.len() > self.decode.max_payload_bytes() {
            refuse(
                &mut out,
                Reason::Oversized,
                format!(
                    "{} bytes > max_payload_bytes {}",
                    payload.len(),
                    self.decode.max_payload_bytes()
                ),
            );
            return out;
        }
        let t = match SpTopic::parse(topic) {
            Ok(t) => t,
            Err(e) => {
                refuse(&mut out, Reason::UnknownTopic, e);
                return out;
            }
        };
        let SpTopic::Edge { kind, .. } = t else {
            return out; // a host's STATE (ours, or another host's)
        };
        if matches!(kind, MessageType::NCmd | MessageType::DCmd) {
            return out; // commands to nodes, ours or another host's
        }
        let p = match decode_payload(payload) {
            Ok(p) => p,
            Err(e) => {
                refuse(&mut out, Reason::MalformedProtobuf, e);
                return out;
            }
        };
        // An NDEATH is the will, composed when the node connected: its
        // timestamp says nothing of the node's clock now.
        let clocked = kind != MessageType::NDeath;
        if let (Some(ts), SpTopic::Edge { group, node, .. }, true) = (p.timestamp_ms, &t, clocked) {
            if let Some(v) = self.nodes.get_mut(&node_key(group, node)) {
                v.offset_ms = ts - recv_ms;
            }
        }
        if kind == MessageType::NBirth {
            if let SpTopic::Edge { group, node, .. } = &t {
                // A new session: values come again with the births.
                let v = self.nodes.entry(node_key(group, node)).or_default();
                v.last.clear();
                v.offset_ms = p.timestamp_ms.map_or(0, |ts| ts - recv_ms);
            }
        }
        let events = self.session.handle(&t, p, recv_ms);
        self.events(events, &mut out);
        out
    }

    /// Time passes (`now_ms`, receive-time clock): reorder waits expire,
    /// held values are restated.
    ///
    /// A value is restated at exactly `hold_secs` after its last reading or
    /// restatement (as many times as fit), so the event times depend on the
    /// node's data only, not on when ticks come: live (a tick every second)
    /// and batch (a tick with each record) restate alike. The scan runs at
    /// most once per [`TICK_MS`] of receive time.
    pub fn tick(&mut self, now_ms: i64) -> Vec<SpOutput> {
        let mut out = Vec::new();
        if now_ms < self.next_tick_ms {
            return out;
        }
        self.next_tick_ms = now_ms + TICK_MS;
        let events = self.session.tick(now_ms);
        self.events(events, &mut out);
        let hold = self.rules.hold_ms;
        for v in self.nodes.values_mut() {
            let node_now = now_ms + v.offset_ms;
            for obs in v.last.values_mut() {
                let due = (node_now - obs.ts_ms) / hold;
                if due > MAX_RESTATEMENTS {
                    obs.ts_ms += (due - MAX_RESTATEMENTS) * hold;
                }
                while node_now - obs.ts_ms >= hold {
                    obs.ts_ms += hold;
                    out.push(SpOutput::Observation(obs.clone()));
                }
            }
        }
        out
    }

    fn events(&mut self, events: Vec<Event>, out: &mut Vec<SpOutput>) {
        for e in events {
            match e {
                Event::Metric {
                    node,
                    device,
                    name,
                    datatype,
                    value,
                    timestamp_ms,
                    historical,
                } => {
                    let m = Metric {
                        device: device.as_deref(),
                        name: &name,
                        datatype,
                        value,
                        ts_ms: timestamp_ms,
                    };
                    match self.observation(&node, m) {
                        Ok(obs) => {
                            if !historical {
                                let v = self.nodes.entry(node).or_default();
                                v.last.insert((device, name), obs.clone());
                            }
                            out.push(SpOutput::Observation(obs));
                        }
                        Err(r) => out.push(SpOutput::Refused(r)),
                    }
                }
                Event::Stale {
                    node,
                    device,
                    at_ms,
                } => {
                    if let Some(w) = &self.writes {
                        w.dir.died(w.source, &node, device.as_deref());
                    }
                    self.stale(&node, device.as_deref(), at_ms, out)
                }
                Event::Born {
                    node,
                    device,
                    metrics,
                } => self.born(&node, device, &metrics),
                Event::Rebirth { node, why } => out.push(rebirth(&node, why)),
                Event::Refused { reason, detail } => {
                    out.push(SpOutput::Refused(Rejection { reason, detail }))
                }
            }
        }
    }

    /// A node (all its devices) or a device died: its state signals are
    /// UNKNOWN from `at_ms` (receive time, in node time), and its values
    /// no longer hold.
    fn stale(&mut self, node: &NodeKey, device: Option<&str>, at_ms: i64, out: &mut Vec<SpOutput>) {
        let Some(v) = self.nodes.get_mut(node) else {
            return;
        };
        let ts_ms = at_ms + v.offset_ms;
        let dead: Vec<_> = v
            .last
            .keys()
            .filter(|(d, _)| device.is_none() || d.as_deref() == device)
            .cloned()
            .collect();
        for key in dead {
            let Some(obs) = v.last.remove(&key) else {
                continue;
            };
            if obs.role == Role::State {
                out.push(SpOutput::Observation(Observation {
                    ts_ms: ts_ms.max(obs.ts_ms),
                    value: Value::State {
                        bucket: Bucket::Unknown,
                        code: "stale".into(),
                        reason: None,
                    },
                    ..obs
                }));
            }
        }
    }

    /// A birth's metrics whose mapped signal is writable go to the write
    /// directory (replacing the node's or device's entries).
    fn born(&self, node: &NodeKey, device: Option<Arc<str>>, metrics: &[Declaration]) {
        let Some(w) = &self.writes else {
            return;
        };
        let targets = metrics
            .iter()
            // The node's own controls (rebirth, reboot, next server) are
            // never a parameter, whatever the mapping makes of them.
            .filter(|d| !d.name.starts_with("Node Control/"))
            .filter_map(|d| {
                // A name the templates cannot map gives no observation
                // either (refused with its value): nothing to write.
                let (asset, signal) = self.names(node, device.as_deref(), &d.name).ok()?;
                w.signals.contains(&signal).then(|| {
                    let target = SpTarget {
                        group: node.group.clone(),
                        node: node.node.clone(),
                        device: device.clone(),
                        metric: d.name.clone(),
                        alias: d.alias,
                        datatype: d.datatype,
                        alive: true,
                    };
                    (Arc::from(asset.to_string()), signal, target)
                })
            })
            .collect();
        w.dir.born(w.source, node, device.as_deref(), targets);
    }

    /// The asset and signal of a metric, through the mapping templates.
    fn names(
        &self,
        node: &NodeKey,
        device: Option<&str>,
        metric: &str,
    ) -> Result<(AssetKey, Arc<str>), Rejection> {
        let names = Names {
            group: &node.group,
            node: &node.node,
            device: device.unwrap_or(&node.node),
            metric,
        };
        let map = &self.rules.mapping;
        let name = |t: &super::mapping::Template, what: &str| {
            t.render(&names).map_err(|e| Rejection {
                reason: Reason::InvalidName,
                detail: format!("{what} of metric `{metric}`: {e}"),
            })
        };
        let asset = AssetKey::from_names(
            name(&map.site, "site")?.into(),
            name(&map.area, "area")?.into(),
            name(&map.line, "line")?.into(),
            name(&map.asset, "asset")?.into(),
        );
        Ok((asset, name(&map.signal, "signal")?.into()))
    }

    /// A metric's value as an observation of the asset model.
    fn observation(&self, node: &NodeKey, m: Metric<'_>) -> Result<Observation, Rejection> {
        let (asset, signal) = self.names(node, m.device, m.name)?;
        let role = self.decode.role_of(&signal);
        let ts_ms = check_time(m.ts_ms)?;
        let value = self.value(role, &signal, m.datatype, m.value)?;
        Ok(Observation {
            asset,
            signal,
            role,
            ts_ms,
            value,
            seq: 0,
            watermark_ms: None,
        })
    }

    fn value(
        &self,
        role: Role,
        signal: &str,
        datatype: DataType,
        value: Option<SpValue>,
    ) -> Result<Value, Rejection> {
        let wrong = |what: &str| Rejection {
            reason: Reason::WrongType,
            detail: format!(
                "`{signal}` must be {what}, the metric is a {}",
                datatype.name()
            ),
        };
        match (role, value) {
            // A null state is not known: UNKNOWN, never a stop.
            (Role::State, None) => Ok(Value::State {
                bucket: Bucket::Unknown,
                code: "null".into(),
                reason: None,
            }),
            (_, None) => Err(Rejection {
                reason: Reason::MissingField,
                detail: format!("`{signal}` is null"),
            }),
            (Role::State, Some(v)) => {
                let code = match v {
                    SpValue::Text(s) => s,
                    SpValue::Int(i) => i.to_string(),
                    SpValue::UInt(u) => u.to_string(),
                    SpValue::Bool(b) => b.to_string(),
                    _ => return Err(wrong("a state code (text or integer)")),
                };
                match self.decode.bucket_of(&code) {
                    Some(bucket) => Ok(Value::State {
                        bucket,
                        code: code.into(),
                        reason: None,
                    }),
                    None => Err(Rejection {
                        reason: Reason::UnknownState,
                        detail: format!("state code `{code}` is not mapped"),
                    }),
                }
            }
            (Role::Product, Some(SpValue::Text(s))) => Ok(Value::Text(s.into())),
            (Role::Product, Some(_)) => Err(wrong("text")),
            (_, Some(v)) => {
                let x = match v {
                    SpValue::Int(i) => i as f64,
                    SpValue::UInt(u) => u as f64,
                    SpValue::Float(f) => f,
                    SpValue::Bool(b) => f64::from(u8::from(b)),
                    _ => return Err(wrong("a number")),
                };
                check_number(role, signal, x)
            }
        }
    }
}

/// A metric event's parts.
struct Metric<'a> {
    device: Option<&'a str>,
    name: &'a str,
    datatype: DataType,
    value: Option<SpValue>,
    ts_ms: i64,
}

fn node_key(group: &str, node: &str) -> NodeKey {
    NodeKey {
        group: group.into(),
        node: node.into(),
    }
}

/// The NCMD asking `node` for its births.
fn rebirth(node: &NodeKey, why: String) -> SpOutput {
    let payload = wire::Payload {
        timestamp: None,
        metrics: vec![wire::Metric {
            name: Some("Node Control/Rebirth".into()),
            datatype: Some(11), // Boolean
            value: Some(wire::MetricValue::BooleanValue(true)),
            ..Default::default()
        }],
        seq: None,
        uuid: None,
        body: None,
    };
    SpOutput::Rebirth {
        topic: format!("{NAMESPACE}/{}/NCMD/{}", node.group, node.node),
        payload: payload.encode_to_vec(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::decode_payload;
    use std::collections::BTreeSet;
    use wire::MetricValue as V;

    const T: i64 = 1_772_427_600_000;

    fn metric(name: Option<&str>, alias: u64, datatype: Option<u32>, v: V) -> wire::Metric {
        wire::Metric {
            name: name.map(String::from),
            alias: Some(alias),
            datatype,
            value: Some(v),
            ..Default::default()
        }
    }

    fn encode(ts: i64, seq: Option<u64>, metrics: Vec<wire::Metric>) -> Vec<u8> {
        wire::Payload {
            timestamp: Some(ts as u64),
            metrics,
            seq,
            uuid: None,
            body: None,
        }
        .encode_to_vec()
    }

    fn nbirth(ts: i64, bd: u64) -> Vec<u8> {
        encode(
            ts,
            Some(0),
            vec![metric(Some("bdSeq"), 0, Some(8), V::LongValue(bd))],
        )
    }

    fn dbirth(ts: i64, seq: u64, state: &str, count: u64) -> Vec<u8> {
        encode(
            ts,
            Some(seq),
            vec![
                metric(Some("state"), 1, Some(12), V::StringValue(state.into())),
                metric(Some("count_total"), 2, Some(8), V::LongValue(count)),
                metric(Some("Filler/temp"), 3, Some(10), V::DoubleValue(21.5)),
            ],
        )
    }

    fn observations(out: &[SpOutput]) -> Vec<(String, String, i64, Value)> {
        out.iter()
            .filter_map(|o| match o {
                SpOutput::Observation(obs) => Some((
                    obs.asset.to_string(),
                    obs.signal.to_string(),
                    obs.ts_ms,
                    obs.value.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    fn host() -> SparkplugHost {
        SparkplugHost::new(SparkplugRules::default(), DecodeRules::default_uns())
    }

    const N: &str = "spBv1.0/lyon/NBIRTH/line-1";
    const D: &str = "spBv1.0/lyon/DBIRTH/line-1/filler";

    #[test]
    fn births_map_onto_the_asset_model_with_the_json_roles() {
        let mut h = host();
        assert!(observations(&h.handle(N, &nbirth(T, 1), T)).is_empty());
        let o = h.handle(D, &dbirth(T + 5, 1, "running", 40), T + 5);
        let obs = observations(&o);
        assert_eq!(obs.len(), 3, "{o:?}");
        assert_eq!(obs[0].0, "lyon/-/line-1/filler");
        assert_eq!(obs[0].1, "state");
        assert!(matches!(
            obs[0].3,
            Value::State {
                bucket: Bucket::Running,
                ..
            }
        ));
        assert_eq!(obs[1].3, Value::Number(40.0));
        assert_eq!(obs[2].1, "Filler.temp");
        let roles: Vec<Role> = o
            .iter()
            .filter_map(|o| match o {
                SpOutput::Observation(obs) => Some(obs.role),
                _ => None,
            })
            .collect();
        assert_eq!(roles, [Role::State, Role::CounterTotal, Role::Process]);
    }

    #[test]
    fn values_hold_while_the_node_lives_and_are_unknown_after_its_death() {
        let mut h = host();
        h.handle(N, &nbirth(T, 1), T);
        h.handle(D, &dbirth(T, 1, "stopped", 40), T);
        // Nothing changes for 29 s: nothing restated; at 30 s, all three.
        assert!(observations(&h.tick(T + 29_000)).is_empty());
        let held = observations(&h.tick(T + 30_500));
        assert_eq!(held.len(), 3);
        assert!(held.iter().all(|o| o.2 == T + 30_000));
        // Silent but alive for 100 s more: restated at 60, 90 and 120 s.
        let held = observations(&h.tick(T + 130_000));
        let times: BTreeSet<i64> = held.iter().map(|o| o.2 - T).collect();
        assert_eq!(held.len(), 9);
        assert_eq!(times, BTreeSet::from([60_000, 90_000, 120_000]));
        let state = held.iter().find(|o| o.1 == "state").unwrap();
        assert!(matches!(
            state.3,
            Value::State {
                bucket: Bucket::UnplannedStop,
                ..
            }
        ));
        // NDEATH with the birth's bdSeq: the state is UNKNOWN, not a stop.
        let death = encode(
            T,
            None,
            vec![metric(Some("bdSeq"), 0, Some(8), V::LongValue(1))],
        );
        let o = observations(&h.handle("spBv1.0/lyon/NDEATH/line-1", &death, T + 140_000));
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].1, "state");
        assert_eq!(o[0].2, T + 140_000);
        assert!(
            matches!(&o[0].3, Value::State { bucket: Bucket::Unknown, code, .. } if &**code == "stale")
        );
        // And nothing is restated any more.
        assert!(observations(&h.tick(T + 300_000)).is_empty());
    }

    #[test]
    fn held_values_follow_the_nodes_clock() {
        let mut h = host();
        // The node's clock is 5 s behind the receive time.
        h.handle(N, &nbirth(T - 5_000, 1), T);
        h.handle(D, &dbirth(T - 5_000, 1, "running", 1), T);
        let held = observations(&h.tick(T + 30_000));
        assert_eq!(held.len(), 3);
        assert!(held.iter().all(|o| o.2 == T + 25_000), "{held:?}");
    }

    #[test]
    fn a_gap_asks_for_one_rebirth_as_an_ncmd() {
        let mut h = host();
        h.handle(N, &nbirth(T, 1), T);
        h.handle(D, &dbirth(T, 1, "running", 1), T);
        let data = |seq| encode(T, Some(seq), vec![metric(None, 2, None, V::LongValue(seq))]);
        let dd = "spBv1.0/lyon/DDATA/line-1/filler";
        let mut rebirths = Vec::new();
        for seq in 3..=12 {
            for o in h.handle(dd, &data(seq), T + 1) {
                if let SpOutput::Rebirth { topic, payload, .. } = o {
                    rebirths.push((topic, payload));
                }
            }
        }
        assert_eq!(rebirths.len(), 1);
        assert_eq!(rebirths[0].0, "spBv1.0/lyon/NCMD/line-1");
        let p = decode_payload(&rebirths[0].1).unwrap();
        assert_eq!(p.metrics[0].name.as_deref(), Some("Node Control/Rebirth"));
        assert_eq!(p.metrics[0].raw, Some(V::BooleanValue(true)));
    }

    /// Births record the writable metrics (by their mapped signal) with
    /// the birth's alias and type; a rebirth replaces them; deaths mark
    /// them dead; other signals are not recorded; the bound holds.
    #[test]
    fn births_fill_the_write_directory() {
        let dir = WriteDirectory::new(3);
        let mut h = host();
        let signals: BTreeSet<Arc<str>> = ["Filler.temp", "speed_sp", "count_total"]
            .into_iter()
            .map(Arc::from)
            .collect();
        h.set_write_directory(dir.clone(), 4, Arc::new(signals));
        let nb = encode(
            T,
            Some(0),
            vec![
                metric(Some("bdSeq"), 0, Some(8), V::LongValue(1)),
                metric(Some("speed_sp"), 10, Some(3), V::IntValue(5)),
            ],
        );
        h.handle(N, &nb, T);
        h.handle(D, &dbirth(T, 1, "running", 1), T);
        let a = "lyon/-/line-1/filler";
        let temp = dir.get(4, a, "Filler.temp").unwrap();
        assert_eq!(
            (&*temp.metric, temp.alias, temp.datatype, temp.alive),
            ("Filler/temp", Some(3), DataType::Double, true)
        );
        assert_eq!(temp.topic(), "spBv1.0/lyon/DCMD/line-1/filler");
        assert_eq!(dir.get(4, a, "count_total").unwrap().alias, Some(2));
        let speed = dir.get(4, "lyon/-/line-1/line-1", "speed_sp").unwrap();
        assert_eq!((speed.alias, speed.datatype), (Some(10), DataType::Int32));
        assert_eq!(speed.topic(), "spBv1.0/lyon/NCMD/line-1");
        assert_eq!(dir.get(4, a, "state"), None, "not writable");
        assert_eq!(dir.len(), 3);

        // A device rebirth with other aliases (and a fourth writable
        // metric, beyond the bound) replaces them.
        let again = encode(
            T + 10,
            Some(2),
            vec![
                metric(Some("Filler/temp"), 30, Some(9), V::FloatValue(2.0)),
                metric(Some("count_total"), 31, Some(8), V::LongValue(2)),
            ],
        );
        h.handle(D, &again, T + 10);
        let temp = dir.get(4, a, "Filler.temp").unwrap();
        assert_eq!((temp.alias, temp.datatype), (Some(30), DataType::Float));
        assert_eq!(dir.get(4, a, "count_total").unwrap().alias, Some(31));
        assert_eq!((dir.len(), dir.refused()), (3, 0));

        // DDEATH: the device's entries are dead, the node's still alive.
        let dd = encode(T + 20, Some(3), vec![]);
        h.handle("spBv1.0/lyon/DDEATH/line-1/filler", &dd, T + 20);
        assert!(!dir.get(4, a, "Filler.temp").unwrap().alive);
        assert!(
            dir.get(4, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );
        // NDEATH: all of them.
        let death = encode(
            T,
            None,
            vec![metric(Some("bdSeq"), 0, Some(8), V::LongValue(1))],
        );
        h.handle("spBv1.0/lyon/NDEATH/line-1", &death, T + 30);
        assert!(
            !dir.get(4, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );
        // A new birth: alive again, the devices' entries gone until theirs.
        h.handle(N, &nb, T + 40);
        assert!(
            dir.get(4, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );
        assert_eq!(dir.get(4, a, "Filler.temp"), None);
        assert_eq!(dir.len(), 1);

        // The bound: a second node's two writable metrics, room for one.
        let nb2 = encode(
            T,
            Some(0),
            vec![
                metric(Some("bdSeq"), 0, Some(8), V::LongValue(1)),
                metric(Some("speed_sp"), 1, Some(3), V::IntValue(5)),
                metric(Some("count_total"), 2, Some(8), V::LongValue(5)),
            ],
        );
        h.handle(D, &dbirth(T + 50, 1, "running", 1), T + 50);
        assert_eq!(dir.len(), 3);
        h.handle("spBv1.0/lyon/NBIRTH/line-2", &nb2, T + 60);
        assert_eq!((dir.len(), dir.refused()), (3, 2));
        assert_eq!(dir.get(4, "lyon/-/line-2/line-2", "speed_sp"), None);
    }

    #[test]
    fn bad_messages_are_refused_by_reason() {
        let mut h = host();
        let reasons = |out: Vec<SpOutput>| -> Vec<Reason> {
            out.into_iter()
                .filter_map(|o| match o {
                    SpOutput::Refused(r) => Some(r.reason),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            reasons(h.handle(N, b"\xff\xff\xff", T)),
            [Reason::MalformedProtobuf]
        );
        assert_eq!(
            reasons(h.handle("spBv1.0/x", b"", T)),
            [Reason::UnknownTopic]
        );
        h.handle(N, &nbirth(T, 1), T);
        let bad = encode(
            T,
            Some(1),
            vec![
                metric(Some("state"), 1, Some(12), V::StringValue("dancing".into())),
                metric(Some("count_total"), 2, Some(10), V::DoubleValue(f64::NAN)),
                metric(Some("bad name"), 3, Some(10), V::DoubleValue(1.0)),
                metric(Some("ds"), 4, Some(16), V::DatasetValue(vec![])),
            ],
        );
        assert_eq!(
            reasons(h.handle(D, &bad, T)),
            [
                Reason::UnknownState,
                Reason::NonFinite,
                Reason::InvalidName,
                Reason::UnsupportedType
            ]
        );
    }
}
