//! The write directory: for each writable signal of each asset, the
//! Sparkplug metric a command must name, as the plant's births declared
//! it. Filled by the sources' [`SparkplugHost`](super::SparkplugHost)s on
//! the ingest thread, read by the output stage when it sends a parameter
//! write ([`crate::write::resolve`]).
//!
//! Keyed by (source index, asset `site/area/line/asset`, signal): the asset
//! and signal the metric's observations get through the source's mapping
//! templates, so a write names the parameter by its read-back signal, the
//! same names the dashboard shows.
//!
//! - a node's NBIRTH replaces every entry of the node and its devices (a
//!   new session: the devices are born again), a DBIRTH those of its
//!   device: the new aliases and types replace the old ones;
//! - a death (NDEATH, DDEATH, or a session broken by a `seq` gap) marks
//!   the entries not alive: the plant would not obey, so nothing is sent
//!   until a birth brings them back;
//! - **bounded**: at most `max_entries` entries (default
//!   [`MAX_WRITE_TARGETS`]); when full, new entries are refused (an entry
//!   already there is still replaced), counted ([`WriteDirectory::refused`])
//!   and logged once per birth: a write to such a metric is refused as
//!   "no birth names it".
//!
//! Shared behind an `Arc<RwLock>`: a read (one write request) takes the
//! read lock for a map lookup; the ingest thread takes the write lock only
//! for births and deaths. A poisoned lock (a panic while holding it) is
//! used as it is: the map is valid after any completed insert or removal.

use super::payload::DataType;
use super::session::NodeKey;
use super::topic::NAMESPACE;
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Entries a directory holds by default: 100,000 writable metrics.
pub const MAX_WRITE_TARGETS: usize = 100_000;

/// Where a write to one signal goes: the metric as its birth declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpTarget {
    /// The group id.
    pub group: Arc<str>,
    /// The edge node id.
    pub node: Arc<str>,
    /// The device id (`None`: a metric of the node itself, written by NCMD).
    pub device: Option<Arc<str>>,
    /// The metric's name in the birth.
    pub metric: Arc<str>,
    /// Its alias in the birth, if the node uses aliases.
    pub alias: Option<u64>,
    /// Its data type in the birth.
    pub datatype: DataType,
    /// Born and not dead since.
    pub alive: bool,
}

impl SpTarget {
    /// The command topic: `spBv1.0/{group}/DCMD/{node}/{device}`, or
    /// `spBv1.0/{group}/NCMD/{node}` for a node's own metric.
    pub fn topic(&self) -> String {
        match &self.device {
            Some(d) => format!("{NAMESPACE}/{}/DCMD/{}/{d}", self.group, self.node),
            None => format!("{NAMESPACE}/{}/NCMD/{}", self.group, self.node),
        }
    }

    fn is_of(&self, node: &NodeKey, device: Option<&str>) -> bool {
        self.group == node.group
            && self.node == node.node
            && (device.is_none() || self.device.as_deref() == device)
    }
}

/// Per source: asset → signal → target.
type Assets = BTreeMap<Arc<str>, BTreeMap<Arc<str>, SpTarget>>;

#[derive(Debug, Default)]
struct Inner {
    sources: BTreeMap<usize, Assets>,
    len: usize,
    max: usize,
    refused: u64,
}

/// The shared write directory (module docs); clones share it.
#[derive(Debug, Clone)]
pub struct WriteDirectory {
    inner: Arc<RwLock<Inner>>,
}

impl Default for WriteDirectory {
    /// Empty, bounded at [`MAX_WRITE_TARGETS`].
    fn default() -> Self {
        WriteDirectory::new(MAX_WRITE_TARGETS)
    }
}

impl WriteDirectory {
    /// An empty directory of at most `max_entries` entries.
    pub fn new(max_entries: usize) -> Self {
        WriteDirectory {
            inner: Arc::new(RwLock::new(Inner {
                max: max_entries,
                ..Inner::default()
            })),
        }
    }

    /// The target of `signal` of `asset` (`site/area/line/asset`) on source
    /// `source`, dead or alive; `None`: no birth declared it (yet).
    pub fn get(&self, source: usize, asset: &str, signal: &str) -> Option<SpTarget> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.sources.get(&source)?.get(asset)?.get(signal).cloned()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries refused because the directory was full, since it was made.
    pub fn refused(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
    }

    /// A birth of `node` (NBIRTH: `device` is `None`, every entry of the
    /// node and its devices goes) or of one device (DBIRTH): its entries
    /// are replaced by `targets` (asset, signal, target), as far as the
    /// bound allows.
    pub(crate) fn born(
        &self,
        source: usize,
        node: &NodeKey,
        device: Option<&str>,
        targets: Vec<(Arc<str>, Arc<str>, SpTarget)>,
    ) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let Inner {
            sources,
            len,
            max,
            refused,
        } = &mut *inner;
        let assets = sources.entry(source).or_default();
        assets.retain(|_, signals| {
            let before = signals.len();
            signals.retain(|_, t| !t.is_of(node, device));
            *len -= before - signals.len();
            !signals.is_empty()
        });
        let mut full = 0u64;
        for (asset, signal, target) in targets {
            let signals = assets.entry(asset).or_default();
            match signals.get_mut(&signal) {
                // Two metrics mapped onto one signal: the later birth wins.
                Some(t) => *t = target,
                None if *len < *max => {
                    signals.insert(signal, target);
                    *len += 1;
                }
                None => full += 1,
            }
        }
        assets.retain(|_, signals| !signals.is_empty());
        if full > 0 {
            *refused += full;
            tracing::warn!(
                group = %node.group,
                node = %node.node,
                device,
                refused = full,
                max = *max,
                "the write directory is full: these writable metrics of the birth cannot be written to"
            );
        }
    }

    /// `node` (all its devices with it: `device` is `None`) or one device
    /// died: its entries are kept, not alive, until a birth replaces them.
    pub(crate) fn died(&self, source: usize, node: &NodeKey, device: Option<&str>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let Some(assets) = inner.sources.get_mut(&source) else {
            return;
        };
        for t in assets.values_mut().flat_map(|s| s.values_mut()) {
            if t.is_of(node, device) {
                t.alive = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NodeKey {
        NodeKey {
            group: "lyon".into(),
            node: "line-1".into(),
        }
    }

    fn target(device: Option<&str>, metric: &str, alias: u64) -> SpTarget {
        SpTarget {
            group: "lyon".into(),
            node: "line-1".into(),
            device: device.map(Arc::from),
            metric: metric.into(),
            alias: Some(alias),
            datatype: DataType::Double,
            alive: true,
        }
    }

    fn entry(asset: &str, signal: &str, t: SpTarget) -> (Arc<str>, Arc<str>, SpTarget) {
        (asset.into(), signal.into(), t)
    }

    #[test]
    fn births_replace_deaths_mark_and_the_bound_holds() {
        let dir = WriteDirectory::new(3);
        let a = "lyon/-/line-1/filler";
        dir.born(
            0,
            &key(),
            None,
            vec![entry(
                "lyon/-/line-1/line-1",
                "speed_sp",
                target(None, "speed_sp", 1),
            )],
        );
        dir.born(
            0,
            &key(),
            Some("filler"),
            vec![
                entry(a, "temp_sp", target(Some("filler"), "temp_sp", 2)),
                entry(a, "fill_sp", target(Some("filler"), "fill_sp", 3)),
            ],
        );
        assert_eq!(dir.len(), 3);
        assert_eq!(dir.get(0, a, "temp_sp").unwrap().alias, Some(2));
        assert_eq!(
            dir.get(0, a, "temp_sp").unwrap().topic(),
            "spBv1.0/lyon/DCMD/line-1/filler"
        );
        assert_eq!(
            dir.get(0, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .topic(),
            "spBv1.0/lyon/NCMD/line-1"
        );
        assert_eq!(dir.get(1, a, "temp_sp"), None, "another source");

        // Full: a new entry is refused, a replaced one is not.
        dir.born(
            0,
            &key(),
            Some("filler"),
            vec![
                entry(a, "temp_sp", target(Some("filler"), "temp_sp", 12)),
                entry(a, "fill_sp", target(Some("filler"), "fill_sp", 13)),
                entry(a, "cap_sp", target(Some("filler"), "cap_sp", 14)),
            ],
        );
        assert_eq!((dir.len(), dir.refused()), (3, 1));
        assert_eq!(dir.get(0, a, "temp_sp").unwrap().alias, Some(12));
        assert_eq!(dir.get(0, a, "cap_sp"), None);

        // A device's death: its entries only; the node's: all of them.
        dir.died(0, &key(), Some("filler"));
        assert!(!dir.get(0, a, "temp_sp").unwrap().alive);
        assert!(
            dir.get(0, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );
        dir.died(0, &key(), None);
        assert!(
            !dir.get(0, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );

        // A new NBIRTH drops the devices' entries until they are born again.
        dir.born(
            0,
            &key(),
            None,
            vec![entry(
                "lyon/-/line-1/line-1",
                "speed_sp",
                target(None, "speed_sp", 21),
            )],
        );
        assert_eq!(dir.len(), 1);
        assert!(
            dir.get(0, "lyon/-/line-1/line-1", "speed_sp")
                .unwrap()
                .alive
        );
        assert_eq!(dir.get(0, a, "temp_sp"), None);
    }
}
