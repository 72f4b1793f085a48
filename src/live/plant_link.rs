//! The live way from the output stage to the plants: [`LivePlantLink`]
//! turns an approved parameter write into a publish
//! ([`ctower_collector::write::resolve`]: Sparkplug NCMD/DCMD from the
//! write directory the births fill, or a JSON command on the UNS command
//! topic) and hands it to its source's outgoing queue; the source's poll
//! loop publishes it at QoS 1.
//!
//! Never waits: a full queue ([`super::sources::OUTGOING_QUEUE`]) is an
//! `Err` the stage reports (the write is not sent). How to get one: the
//! sources ([`super::sources::start`]) give their [`PlantRoutes`], and
//!
//! ```ignore
//! let link = sources.plant_routes.plant_link(uns_command_prefix);
//! // a `Box<dyn crate::output::PlantLink>` for the output stage
//! ```

use ctower_collector::sparkplug::WriteDirectory;
use ctower_collector::write::{resolve, SourceKind};
use ctower_collector::Outgoing;
use ctower_model::ParamWrite;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// One live source as writes see it.
#[derive(Debug, Clone)]
pub struct Route {
    /// Its configured name (what [`ParamWrite::source`] says).
    pub name: Arc<str>,
    /// How its plant is written to.
    pub kind: SourceKind,
    /// Its outgoing publishes (the poll loop takes them).
    pub tx: mpsc::Sender<Outgoing>,
}

/// What a [`LivePlantLink`] needs of the running sources: each source's
/// route (by index) and the write directory their births fill. Clones
/// share the queues and the directory.
#[derive(Debug, Clone)]
pub struct PlantRoutes {
    /// The write directory (the ingest thread's Sparkplug hosts fill it).
    pub directory: WriteDirectory,
    /// Each source, by index.
    pub routes: Vec<Route>,
    /// Each source's connection, in words: a write goes only through a
    /// source connected now (a command queued while the connection is
    /// down would reach the plant whenever it comes back, late).
    pub states: super::sources::SourceStates,
}

impl PlantRoutes {
    /// The plant link of these sources; JSON writes go to
    /// `{uns_command_prefix}/{site}/{area}/{line}/{asset}/{param}`.
    pub fn plant_link(&self, uns_command_prefix: impl Into<String>) -> LivePlantLink {
        LivePlantLink {
            routes: self.clone(),
            uns_prefix: uns_command_prefix.into(),
        }
    }
}

/// [`crate::output::PlantLink`] over the live sources (module docs).
#[derive(Debug)]
pub struct LivePlantLink {
    routes: PlantRoutes,
    uns_prefix: String,
}

impl crate::output::PlantLink for LivePlantLink {
    fn write(&mut self, w: &ParamWrite) -> Result<String, String> {
        let Some((index, route)) = self
            .routes
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| *r.name == *w.source)
        else {
            return Err(format!("source {} is not a live MQTT source", w.source));
        };
        let state = self
            .routes
            .states
            .lock()
            .ok()
            .and_then(|s| s.get(index).cloned())
            .unwrap_or_default();
        if !super::sources::is_connected(&state) {
            return Err(format!(
                "source {} is not connected to its broker ({state}): not sent",
                w.source
            ));
        }
        let out = resolve(
            w,
            (index, route.kind),
            &self.routes.directory,
            &self.uns_prefix,
        )?;
        let topic = out.topic.clone();
        match route.tx.try_send(out) {
            Ok(()) => Ok(topic),
            Err(TrySendError::Full(_)) => Err(format!(
                "the source's outgoing queue is full (source {}): not sent, try again",
                w.source
            )),
            Err(TrySendError::Closed(_)) => {
                Err(format!("source {} has stopped: not sent", w.source))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::PlantLink;
    use ctower_model::{ParamValue, UnsCommand};

    fn write(source: &str) -> ParamWrite {
        ParamWrite {
            request: "P1".into(),
            source: source.into(),
            asset: "lyon/-/line-1/filler".into(),
            param: "fill_temp".into(),
            signal: "temp_sp".into(),
            value: ParamValue::Float(72.5),
            user: "alice".into(),
            ts_ms: 1_772_427_600_000,
            expires_ms: i64::MAX,
        }
    }

    #[test]
    fn writes_go_to_their_sources_queue_or_say_why_not() {
        let (json_tx, mut json_rx) = mpsc::channel(1);
        let (sp_tx, _sp_rx) = mpsc::channel(1);
        let routes = PlantRoutes {
            directory: WriteDirectory::default(),
            routes: vec![
                Route {
                    name: "sp".into(),
                    kind: SourceKind::Sparkplug,
                    tx: sp_tx,
                },
                Route {
                    name: "uns".into(),
                    kind: SourceKind::Json,
                    tx: json_tx,
                },
            ],
            states: Arc::new(std::sync::Mutex::new(vec!["subscribed".into(); 2])),
        };
        let mut link = routes.plant_link("acme/cmd");
        assert_eq!(
            link.write(&write("uns")).unwrap(),
            "acme/cmd/lyon/-/line-1/filler/fill_temp"
        );
        let out = json_rx.try_recv().unwrap();
        assert_eq!((out.source, out.qos), (1, 1));
        let cmd: UnsCommand = serde_json::from_slice(&out.payload).unwrap();
        assert_eq!(cmd.id, "P1");
        // The queue holds one: the next is refused, never waited for.
        link.write(&write("uns")).unwrap();
        let e = link.write(&write("uns")).unwrap_err();
        assert!(e.starts_with("the source's outgoing queue is full"), "{e}");
        let e = link.write(&write("nowhere")).unwrap_err();
        assert_eq!(e, "source nowhere is not a live MQTT source");
        let e = link.write(&write("sp")).unwrap_err();
        assert!(
            e.starts_with("no birth from the plant names a metric"),
            "{e}"
        );
        drop(json_rx);
        assert!(link.write(&write("uns")).unwrap_err().contains("stopped"));
        // A source whose connection is down takes nothing: a command queued
        // now would reach the plant late, whenever the broker is back.
        routes.states.lock().unwrap()[1] = "disconnected (attempt 2): refused".into();
        let e = link.write(&write("uns")).unwrap_err();
        assert!(e.contains("is not connected to its broker"), "{e}");
    }
}
