//! What a Sparkplug B host knows of the edge nodes it hears, and what it
//! decides, without I/O or a clock (the caller gives each message's
//! receive time): births bind names, aliases and types; data is resolved
//! through them; `seq` (0..=255, wrapping, one counter per edge node for
//! the node and its devices) is checked with a short reorder window; a gap
//! that does not fill, an unknown alias or data from a node never born
//! asks for one rebirth (rate-limited per node); a death (NDEATH matched by
//! its `bdSeq`, DDEATH) makes the node's or device's signals stale, which
//! the KPIs count as unknown time, never as downtime.
//!
//! The caller turns [`Event`]s into observations, dead letters and
//! `NCMD` `Node Control/Rebirth` publishes.

use super::payload::{typed_value, DataType, SpPayload, SpValue};
use super::topic::{MessageType, SpTopic};
use super::wire::MetricValue;
use crate::decode::Reason;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// An edge node: its group and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    /// The group id.
    pub group: Arc<str>,
    /// The edge node id.
    pub node: Arc<str>,
}

/// The host's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Messages of a node held while an earlier `seq` is missing; one more
    /// and the gap is declared.
    pub reorder_window: usize,
    /// How long a held message waits for the missing one, ms.
    pub reorder_wait_ms: i64,
    /// Least time between two rebirth requests to one node, ms.
    pub rebirth_interval_ms: i64,
    /// Edge nodes known at once; more are refused.
    pub max_nodes: usize,
    /// Metrics one node and its devices may declare.
    pub max_metrics_per_node: usize,
}

impl Default for SessionLimits {
    /// 8 messages or 2 s of reordering, a rebirth request at most every
    /// 10 s, 10,000 nodes of 10,000 metrics.
    fn default() -> Self {
        SessionLimits {
            reorder_window: 8,
            reorder_wait_ms: 2_000,
            rebirth_interval_ms: 10_000,
            max_nodes: 10_000,
            max_metrics_per_node: 10_000,
        }
    }
}

/// What the host decided about a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A metric's value (`None`: null), with its acquisition time.
    Metric {
        /// The edge node.
        node: NodeKey,
        /// The device, for device metrics.
        device: Option<Arc<str>>,
        /// The metric's name, from the birth.
        name: Arc<str>,
        /// Its type, from the birth.
        datatype: DataType,
        /// The value.
        value: Option<SpValue>,
        /// Acquisition time, ms (the metric's, else the payload's, else
        /// the receive time).
        timestamp_ms: i64,
        /// Historical data, not the current value.
        historical: bool,
    },
    /// The node (every device with it) or one device went away: its
    /// signals are stale from `at_ms`.
    Stale {
        /// The edge node.
        node: NodeKey,
        /// The device, or `None` for the node and all its devices.
        device: Option<Arc<str>>,
        /// When, ms.
        at_ms: i64,
    },
    /// A birth (NBIRTH: `device` is `None`; DBIRTH) was taken: the
    /// metrics it declared, for the write directory. Comes after the
    /// birth's values.
    Born {
        /// The edge node.
        node: NodeKey,
        /// The device, for a DBIRTH.
        device: Option<Arc<str>>,
        /// Each declared metric (not `bdSeq`): name, alias, type.
        metrics: Vec<Declaration>,
    },
    /// Ask the node to publish its births again (NCMD `Node
    /// Control/Rebirth`), for `why`.
    Rebirth {
        /// The edge node.
        node: NodeKey,
        /// Why (for the log).
        why: String,
    },
    /// A message or a metric the host refuses, for a dead letter.
    Refused {
        /// The dead-letter reason.
        reason: Reason,
        /// What exactly was wrong.
        detail: String,
    },
}

/// A metric as a birth declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// Its name.
    pub name: Arc<str>,
    /// Its alias, if the node uses aliases.
    pub alias: Option<u64>,
    /// Its type.
    pub datatype: DataType,
}

/// A name and type bound by a birth.
#[derive(Debug, Clone)]
struct Declared {
    name: Arc<str>,
    datatype: DataType,
}

/// The metrics of a node or a device: by alias and by name.
#[derive(Debug, Default)]
struct Metrics {
    by_alias: HashMap<u64, Declared>,
    by_name: HashMap<Arc<str>, DataType>,
}

/// A message held for reordering.
#[derive(Debug)]
struct Held {
    kind: MessageType,
    device: Option<Arc<str>>,
    payload: SpPayload,
    recv_ms: i64,
}

#[derive(Debug, Default)]
struct Node {
    /// Born and not dead: data is taken.
    online: bool,
    bd_seq: Option<i64>,
    next_seq: u8,
    held: BTreeMap<u8, Held>,
    metrics: Metrics,
    devices: HashMap<Arc<str>, Metrics>,
    last_rebirth_ms: Option<i64>,
}

/// The host's knowledge of every edge node it has heard (module docs).
#[derive(Debug, Default)]
pub struct HostSession {
    limits: SessionLimits,
    nodes: HashMap<NodeKey, Node>,
}

impl HostSession {
    /// Knows nothing yet.
    pub fn new(limits: SessionLimits) -> Self {
        HostSession {
            limits,
            nodes: HashMap::new(),
        }
    }

    /// One message of `topic`, received at `recv_ms`.
    pub fn handle(&mut self, topic: &SpTopic<'_>, payload: SpPayload, recv_ms: i64) -> Vec<Event> {
        let mut out = Vec::new();
        let SpTopic::Edge {
            group,
            kind,
            node,
            device,
        } = *topic
        else {
            return out; // another host's STATE: nothing to take
        };
        if matches!(kind, MessageType::NCmd | MessageType::DCmd) {
            return out; // commands to the node, not data
        }
        let key = NodeKey {
            group: group.into(),
            node: node.into(),
        };
        if !self.nodes.contains_key(&key) && self.nodes.len() >= self.limits.max_nodes {
            out.push(Event::Refused {
                reason: Reason::TooManyAssets,
                detail: format!(
                    "edge node {group}/{node}: more than {} edge nodes",
                    self.limits.max_nodes
                ),
            });
            return out;
        }
        let held = Held {
            kind,
            device: device.map(Arc::from),
            payload,
            recv_ms,
        };
        match kind {
            MessageType::NBirth => self.birth(&key, held, &mut out),
            MessageType::NDeath => self.death(&key, &held, &mut out),
            _ => self.sequenced(&key, held, &mut out),
        }
        out
    }

    /// Held messages that waited longer than the reorder window allows at
    /// `now_ms`: their gaps are declared.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Event> {
        let mut out = Vec::new();
        let late: Vec<NodeKey> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.held
                    .values()
                    .any(|h| now_ms - h.recv_ms > self.limits.reorder_wait_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            self.gap(&key, now_ms, "a seq gap did not fill in time", &mut out);
        }
        out
    }

    /// NBIRTH: a new session of the node; every device must be born again.
    fn birth(&mut self, key: &NodeKey, msg: Held, out: &mut Vec<Event>) {
        let limits = self.limits;
        let node = self.nodes.entry(key.clone()).or_default();
        let Some(seq) = msg.payload.seq else {
            out.push(Event::Refused {
                reason: Reason::SequenceError,
                detail: format!("NBIRTH of {}/{} without seq", key.group, key.node),
            });
            return;
        };
        node.online = true;
        node.held.clear();
        node.devices.clear();
        node.metrics = Metrics::default();
        node.next_seq = next(seq);
        node.bd_seq = bd_seq(&msg.payload);
        let metrics = &mut node.metrics;
        emit_birth(key, None, metrics, &msg, limits, out);
    }

    /// NDEATH: matched to the current birth by `bdSeq` (an old session's
    /// death, delivered late, is ignored).
    fn death(&mut self, key: &NodeKey, msg: &Held, out: &mut Vec<Event>) {
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        if let (Some(got), Some(current)) = (bd_seq(&msg.payload), node.bd_seq) {
            if got != current {
                out.push(Event::Refused {
                    reason: Reason::SequenceError,
                    detail: format!(
                        "NDEATH of {}/{} with bdSeq {got}, not the current session's {current}",
                        key.group, key.node
                    ),
                });
                return;
            }
        }
        node.online = false;
        node.held.clear();
        out.push(Event::Stale {
            node: key.clone(),
            device: None,
            at_ms: msg.recv_ms,
        });
    }

    /// A message counted by `seq`: in order, taken (with any held ones that
    /// now follow); ahead, held; past the window, a gap.
    fn sequenced(&mut self, key: &NodeKey, msg: Held, out: &mut Vec<Event>) {
        let now = msg.recv_ms;
        let Some(node) = self.nodes.get_mut(key).filter(|n| n.online) else {
            let why = format!("{} from a node not born (or dead)", msg.kind.as_str());
            out.push(Event::Refused {
                reason: Reason::NotInBirth,
                detail: format!("{why}: {}/{}", key.group, key.node),
            });
            self.nodes.entry(key.clone()).or_default();
            self.ask_rebirth(key, now, why, out);
            return;
        };
        let Some(seq) = msg.payload.seq.and_then(|s| u8::try_from(s).ok()) else {
            out.push(Event::Refused {
                reason: Reason::SequenceError,
                detail: format!(
                    "{} of {}/{} without a seq in 0..=255",
                    msg.kind.as_str(),
                    key.group,
                    key.node
                ),
            });
            return;
        };
        if seq != node.next_seq {
            // Behind: a duplicate; ahead: held for the missing ones.
            if seq.wrapping_sub(node.next_seq) >= 128 {
                return;
            }
            node.held.insert(seq, msg);
            if node.held.len() > self.limits.reorder_window {
                self.gap(key, now, "a seq gap wider than the reorder window", out);
            }
            return;
        }
        self.take(key, msg, out);
        while let Some(node) = self.nodes.get_mut(key) {
            let Some(next) = node.held.remove(&node.next_seq) else {
                break;
            };
            self.take(key, next, out);
        }
    }

    /// Takes one in-order message.
    fn take(&mut self, key: &NodeKey, msg: Held, out: &mut Vec<Event>) {
        let limits = self.limits;
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        node.next_seq = next(node.next_seq);
        match (msg.kind, msg.device.clone()) {
            (MessageType::DBirth, Some(device)) => {
                let declared: usize = node.metrics.by_name.len()
                    + node
                        .devices
                        .values()
                        .map(|d| d.by_name.len())
                        .sum::<usize>();
                let metrics = node.devices.entry(device.clone()).or_default();
                *metrics = Metrics::default();
                let room = limits.max_metrics_per_node.saturating_sub(declared);
                let limits = SessionLimits {
                    max_metrics_per_node: room,
                    ..limits
                };
                emit_birth(key, Some(device), metrics, &msg, limits, out);
            }
            (MessageType::DDeath, Some(device)) => {
                node.devices.remove(&device);
                out.push(Event::Stale {
                    node: key.clone(),
                    device: Some(device),
                    at_ms: msg.recv_ms,
                });
            }
            (MessageType::NData, None) => {
                let unknown = emit_data(key, None, &node.metrics, &msg, out);
                if let Some(why) = unknown {
                    self.ask_rebirth(key, msg.recv_ms, why, out);
                }
            }
            (MessageType::DData, Some(device)) => {
                let unknown = match node.devices.get(&device) {
                    Some(metrics) => emit_data(key, Some(device), metrics, &msg, out),
                    None => Some(format!("DDATA of device {device}, never born")),
                };
                if let Some(why) = unknown {
                    self.ask_rebirth(key, msg.recv_ms, why, out);
                }
            }
            _ => {}
        }
    }

    /// A gap that will not fill: what was held is dropped, the node is
    /// taken as unborn until it is born again, and asked to.
    fn gap(&mut self, key: &NodeKey, now_ms: i64, why: &str, out: &mut Vec<Event>) {
        if let Some(node) = self.nodes.get_mut(key) {
            let dropped = node.held.len();
            node.held.clear();
            node.online = false;
            out.push(Event::Stale {
                node: key.clone(),
                device: None,
                at_ms: now_ms,
            });
            self.ask_rebirth(
                key,
                now_ms,
                format!("{why} ({dropped} message(s) dropped)"),
                out,
            );
        }
    }

    /// One rebirth request, unless one was made less than the interval ago.
    fn ask_rebirth(&mut self, key: &NodeKey, now_ms: i64, why: String, out: &mut Vec<Event>) {
        let interval = self.limits.rebirth_interval_ms;
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        if node.last_rebirth_ms.is_some_and(|t| now_ms - t < interval) {
            return;
        }
        node.last_rebirth_ms = Some(now_ms);
        out.push(Event::Rebirth {
            node: key.clone(),
            why,
        });
    }
}

/// The `bdSeq` metric of a birth or death, the number that matches a death
/// to its birth: whichever integer field the node put it in.
fn bd_seq(payload: &SpPayload) -> Option<i64> {
    payload
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| match m.raw.as_ref()? {
            MetricValue::LongValue(v) => i64::try_from(*v).ok(),
            MetricValue::IntValue(v) => Some(i64::from(*v)),
            _ => None,
        })
}

fn next(seq: impl Into<u64>) -> u8 {
    ((seq.into() + 1) % 256) as u8
}

/// A birth's metrics: declared (name, type, alias), and their values.
fn emit_birth(
    key: &NodeKey,
    device: Option<Arc<str>>,
    metrics: &mut Metrics,
    msg: &Held,
    limits: SessionLimits,
    out: &mut Vec<Event>,
) {
    let mut declared = Vec::new();
    for m in &msg.payload.metrics {
        let (Some(name), Some(code)) = (m.name.as_deref().filter(|n| !n.is_empty()), m.datatype)
        else {
            out.push(Event::Refused {
                reason: Reason::UnsupportedType,
                detail: format!("a {} metric without a name or a type", msg.kind.as_str()),
            });
            continue;
        };
        let Some(datatype) = DataType::from_code(code) else {
            out.push(Event::Refused {
                reason: Reason::UnsupportedType,
                detail: format!("metric `{name}`: unknown data type {code}"),
            });
            continue;
        };
        if let DataType::Unsupported(_) = datatype {
            out.push(Event::Refused {
                reason: Reason::UnsupportedType,
                detail: format!(
                    "metric `{name}`: {} metrics are not supported",
                    datatype.name()
                ),
            });
            continue;
        }
        if metrics.by_name.len() >= limits.max_metrics_per_node {
            out.push(Event::Refused {
                reason: Reason::TooManySignals,
                detail: format!(
                    "metric `{name}`: more than {} metrics",
                    limits.max_metrics_per_node
                ),
            });
            continue;
        }
        let name: Arc<str> = name.into();
        metrics.by_name.insert(name.clone(), datatype);
        if let Some(alias) = m.alias {
            metrics.by_alias.insert(
                alias,
                Declared {
                    name: name.clone(),
                    datatype,
                },
            );
        }
        if &*name == "bdSeq" {
            continue;
        }
        declared.push(Declaration {
            name: name.clone(),
            alias: m.alias,
            datatype,
        });
        if name.starts_with("Node Control/") {
            continue;
        }
        push_value(key, device.clone(), name, datatype, m, msg, out);
    }
    out.push(Event::Born {
        node: key.clone(),
        device,
        metrics: declared,
    });
}

/// A data message's metrics, resolved by alias or name; the first
/// unknown one is returned (a rebirth is due).
fn emit_data(
    key: &NodeKey,
    device: Option<Arc<str>>,
    metrics: &Metrics,
    msg: &Held,
    out: &mut Vec<Event>,
) -> Option<String> {
    let mut unknown = None;
    for m in &msg.payload.metrics {
        let declared = match (m.alias, m.name.as_deref()) {
            (Some(alias), _) => metrics.by_alias.get(&alias).cloned(),
            (None, Some(name)) => metrics.by_name.get_key_value(name).map(|(n, t)| Declared {
                name: n.clone(),
                datatype: *t,
            }),
            (None, None) => None,
        };
        let Some(d) = declared else {
            let what = m.alias.map_or_else(
                || format!("`{}`", m.name.as_deref().unwrap_or("")),
                |a| format!("alias {a}"),
            );
            out.push(Event::Refused {
                reason: Reason::NotInBirth,
                detail: format!("{} metric {what} is not in the birth", msg.kind.as_str()),
            });
            unknown.get_or_insert(format!("unknown metric {what}"));
            continue;
        };
        push_value(key, device.clone(), d.name, d.datatype, m, msg, out);
    }
    unknown
}

fn push_value(
    key: &NodeKey,
    device: Option<Arc<str>>,
    name: Arc<str>,
    datatype: DataType,
    m: &super::SpMetric,
    msg: &Held,
    out: &mut Vec<Event>,
) {
    let value = match m.raw.as_ref().map(|r| typed_value(datatype, r)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            out.push(Event::Refused {
                reason: Reason::WrongType,
                detail: format!("metric `{name}`: {e}"),
            });
            return;
        }
    };
    out.push(Event::Metric {
        node: key.clone(),
        device,
        name,
        datatype,
        value,
        timestamp_ms: m
            .timestamp_ms
            .or(msg.payload.timestamp_ms)
            .unwrap_or(msg.recv_ms),
        historical: m.historical,
    });
}

#[cfg(test)]
mod tests {
    use super::super::wire::MetricValue;
    use super::super::SpMetric;
    use super::*;

    const T: i64 = 1_772_427_600_000;

    fn metric(name: Option<&str>, alias: u64, datatype: Option<u32>, raw: MetricValue) -> SpMetric {
        SpMetric {
            name: name.map(String::from),
            alias: Some(alias),
            timestamp_ms: None,
            datatype,
            historical: false,
            transient: false,
            raw: Some(raw),
        }
    }

    fn payload(seq: Option<u64>, metrics: Vec<SpMetric>) -> SpPayload {
        SpPayload {
            timestamp_ms: Some(T),
            seq,
            metrics,
        }
    }

    fn birth(seq: u64, bd_seq: u64) -> SpPayload {
        payload(
            Some(seq),
            vec![
                metric(Some("bdSeq"), 0, Some(8), MetricValue::LongValue(bd_seq)),
                metric(Some("count_total"), 1, Some(8), MetricValue::LongValue(100)),
                metric(
                    Some("state"),
                    2,
                    Some(12),
                    MetricValue::StringValue("running".into()),
                ),
            ],
        )
    }

    fn ndata(seq: u64, count: u64) -> SpPayload {
        payload(
            Some(seq),
            vec![metric(None, 1, None, MetricValue::LongValue(count))],
        )
    }

    fn topic(kind: &'static str) -> SpTopic<'static> {
        SpTopic::parse(match kind {
            "NBIRTH" => "spBv1.0/lyon/NBIRTH/line-1",
            "NDATA" => "spBv1.0/lyon/NDATA/line-1",
            "NDEATH" => "spBv1.0/lyon/NDEATH/line-1",
            "DBIRTH" => "spBv1.0/lyon/DBIRTH/line-1/filler",
            "DDATA" => "spBv1.0/lyon/DDATA/line-1/filler",
            _ => "spBv1.0/lyon/DDEATH/line-1/filler",
        })
        .unwrap()
    }

    /// The values of the metric events, as (name, value).
    fn values(events: &[Event]) -> Vec<(String, Option<SpValue>)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Metric { name, value, .. } => Some((name.to_string(), value.clone())),
                _ => None,
            })
            .collect()
    }

    fn rebirths(events: &[Event]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::Rebirth { .. }))
            .count()
    }

    #[test]
    fn data_by_alias_takes_the_birth_s_names_and_types() {
        let mut s = HostSession::new(SessionLimits::default());
        let born = s.handle(&topic("NBIRTH"), birth(0, 7), T);
        assert_eq!(
            values(&born),
            [
                ("count_total".into(), Some(SpValue::UInt(100))),
                ("state".into(), Some(SpValue::Text("running".into())))
            ]
        );
        let data = s.handle(&topic("NDATA"), ndata(1, 150), T + 1);
        assert_eq!(
            values(&data),
            [("count_total".into(), Some(SpValue::UInt(150)))]
        );
        match &data[0] {
            Event::Metric {
                datatype,
                timestamp_ms,
                ..
            } => {
                assert_eq!((*datatype, *timestamp_ms), (DataType::UInt64, T));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_late_message_within_the_window_is_put_back_in_order() {
        let mut s = HostSession::new(SessionLimits::default());
        s.handle(&topic("NBIRTH"), birth(0, 1), T);
        assert!(
            s.handle(&topic("NDATA"), ndata(2, 120), T + 2).is_empty(),
            "held"
        );
        let both = s.handle(&topic("NDATA"), ndata(1, 110), T + 3);
        assert_eq!(
            values(&both),
            [
                ("count_total".into(), Some(SpValue::UInt(110))),
                ("count_total".into(), Some(SpValue::UInt(120)))
            ]
        );
        // A duplicate of an old seq is dropped.
        assert!(s.handle(&topic("NDATA"), ndata(2, 120), T + 4).is_empty());
        // seq wraps from 255 to 0.
        let mut s = HostSession::new(SessionLimits::default());
        s.handle(&topic("NBIRTH"), birth(254, 1), T);
        assert_eq!(
            values(&s.handle(&topic("NDATA"), ndata(255, 1), T)).len(),
            1
        );
        assert_eq!(values(&s.handle(&topic("NDATA"), ndata(0, 2), T)).len(), 1);
    }

    #[test]
    fn a_gap_that_does_not_fill_asks_for_exactly_one_rebirth() {
        let limits = SessionLimits {
            reorder_window: 2,
            ..SessionLimits::default()
        };
        let mut s = HostSession::new(limits);
        s.handle(&topic("NBIRTH"), birth(0, 1), T);
        let mut events = Vec::new();
        for seq in 2..=6 {
            events.extend(s.handle(&topic("NDATA"), ndata(seq, seq), T + seq as i64));
        }
        assert_eq!(rebirths(&events), 1, "{events:?}");
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Stale { device: None, .. })));
        assert!(values(&events).is_empty(), "nothing taken across the gap");
        // A new birth restores the node.
        s.handle(&topic("NBIRTH"), birth(0, 2), T + 20_000);
        assert_eq!(
            values(&s.handle(&topic("NDATA"), ndata(1, 9), T + 20_001)).len(),
            1
        );
    }

    #[test]
    fn a_gap_also_ends_by_time() {
        let mut s = HostSession::new(SessionLimits::default());
        s.handle(&topic("NBIRTH"), birth(0, 1), T);
        assert!(s.handle(&topic("NDATA"), ndata(3, 3), T).is_empty());
        assert!(s.tick(T + 1_000).is_empty());
        assert_eq!(rebirths(&s.tick(T + 5_000)), 1);
    }

    #[test]
    fn unknown_aliases_and_unborn_nodes_ask_for_a_rebirth_rate_limited() {
        let mut s = HostSession::new(SessionLimits::default());
        let e = s.handle(&topic("NDATA"), ndata(5, 1), T);
        assert_eq!(rebirths(&e), 1, "data before any birth");
        assert_eq!(
            rebirths(&s.handle(&topic("NDATA"), ndata(6, 1), T + 1)),
            0,
            "rate-limited"
        );
        s.handle(&topic("NBIRTH"), birth(0, 1), T + 20_000);
        let unknown = payload(
            Some(1),
            vec![metric(None, 42, None, MetricValue::LongValue(1))],
        );
        let e = s.handle(&topic("NDATA"), unknown, T + 40_000);
        assert_eq!(rebirths(&e), 1);
        assert!(e
            .iter()
            .any(|e| matches!(e, Event::Refused { detail, .. } if detail.contains("alias 42"))));
    }

    #[test]
    fn deaths_make_signals_stale_and_an_old_session_s_death_is_ignored() {
        let mut s = HostSession::new(SessionLimits::default());
        s.handle(&topic("NBIRTH"), birth(0, 5), T);
        let dbirth = payload(
            Some(1),
            vec![metric(
                Some("temp"),
                3,
                Some(10),
                MetricValue::DoubleValue(21.5),
            )],
        );
        assert_eq!(values(&s.handle(&topic("DBIRTH"), dbirth, T)).len(), 1);
        let ddata = payload(
            Some(2),
            vec![metric(None, 3, None, MetricValue::DoubleValue(22.0))],
        );
        let e = s.handle(&topic("DDATA"), ddata, T + 1);
        assert!(matches!(&e[0], Event::Metric { device: Some(d), .. } if &**d == "filler"));
        let e = s.handle(&topic("DDEATH"), payload(Some(3), vec![]), T + 2);
        assert!(matches!(&e[0], Event::Stale { device: Some(_), at_ms, .. } if *at_ms == T + 2));

        let old = payload(
            None,
            vec![metric(Some("bdSeq"), 0, Some(8), MetricValue::LongValue(4))],
        );
        let e = s.handle(&topic("NDEATH"), old, T + 3);
        assert!(matches!(&e[0], Event::Refused { .. }), "{e:?}");
        assert_eq!(
            values(&s.handle(&topic("NDATA"), ndata(4, 1), T + 4)).len(),
            1,
            "still online"
        );

        let death = payload(
            None,
            vec![metric(Some("bdSeq"), 0, Some(8), MetricValue::LongValue(5))],
        );
        let e = s.handle(&topic("NDEATH"), death, T + 5);
        assert!(matches!(&e[0], Event::Stale { device: None, .. }));
    }

    proptest::proptest! {
        /// Arbitrary bytes as a birth, then as data: refused or taken,
        /// never a panic, and nothing unsupported or unnamed handed on.
        #[test]
        fn arbitrary_payloads_never_hand_on_what_is_not_taken(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            if let Ok(p) = super::super::decode_payload(&bytes) {
                let mut s = HostSession::new(SessionLimits::default());
                let mut events = s.handle(&topic("NBIRTH"), p.clone(), T);
                events.extend(s.handle(&topic("NDATA"), p, T + 1));
                for e in events {
                    if let Event::Metric { name, datatype, .. } = e {
                        proptest::prop_assert!(!name.is_empty());
                        proptest::prop_assert!(!matches!(datatype, DataType::Unsupported(_)));
                    }
                }
            }
        }
    }

    #[test]
    fn unsupported_types_are_refused_at_the_birth_even_when_null() {
        let mut s = HostSession::new(SessionLimits::default());
        let mut dataset = metric(Some("recipe"), 5, Some(16), MetricValue::LongValue(0));
        dataset.raw = None;
        let e = s.handle(&topic("NBIRTH"), payload(Some(0), vec![dataset]), T);
        assert!(values(&e).is_empty(), "{e:?}");
        assert!(e
            .iter()
            .any(|e| matches!(e, Event::Refused { detail, .. } if detail.contains("DataSet"))));
    }

    #[test]
    fn bounded_in_nodes_and_metrics() {
        let limits = SessionLimits {
            max_nodes: 1,
            max_metrics_per_node: 2,
            ..SessionLimits::default()
        };
        let mut s = HostSession::new(limits);
        let e = s.handle(&topic("NBIRTH"), birth(0, 1), T);
        // bdSeq and count_total fill the node; state is refused.
        assert!(e
            .iter()
            .any(|e| matches!(e, Event::Refused { detail, .. } if detail.contains("`state`"))));
        let other = SpTopic::parse("spBv1.0/lyon/NBIRTH/line-2").unwrap();
        let e = s.handle(&other, birth(0, 1), T);
        assert!(matches!(&e[0], Event::Refused { detail, .. } if detail.contains("edge nodes")));
    }
}
