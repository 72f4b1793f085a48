//! The MQTT sources of live mode (one rumqttc poll loop per source, on the
//! tokio runtime) and the demo's looping replay into the embedded broker.

use super::plant_link::{PlantRoutes, Route};
use crate::settings::Settings;
use ctower_collector::delivery::{Ack, Delivery, JournalLink, SourceExtras};
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::mqtt::{run_source, SourceStatus};
use ctower_collector::replay::{publish_recording, PublishOptions, Speed};
use ctower_collector::sparkplug::WriteDirectory;
use ctower_collector::write::SourceKind;
use ctower_collector::{Outgoing, RawMessage};
use ctower_model::{Clock, Fault};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

/// Messages queued from the sources to the ingest thread; full: the poll
/// loops wait, so the broker holds the QoS 1 backlog.
pub const RAW_QUEUE: usize = 8192;

/// The running sources.
pub struct Sources {
    /// What they receive, for the ingest thread.
    pub raw: mpsc::Receiver<RawMessage>,
    /// `true` stops them.
    pub stop: watch::Sender<bool>,
    /// Where each source takes its outgoing publishes (by source index):
    /// rebirth requests from the ingest thread, parameter writes from the
    /// output stage. Also the write directory the Sparkplug hosts fill
    /// (the ingest thread's ingestor takes it). The output stage's
    /// [`super::plant_link::LivePlantLink`] is made from it
    /// ([`PlantRoutes::plant_link`]).
    pub plant_routes: PlantRoutes,
    /// With a raw journal: what its stage takes and gives back.
    pub journal: Option<JournalFeed>,
    /// The sources' faults (a subscription the broker refused), one per
    /// failing source, while it fails: the dashboard, the periodic log line
    /// and a `ctower.source.<name>` system alarm show them.
    pub faults: SourceFaults,
    /// Each source's connection state (by source index), for the health
    /// view.
    pub states: SourceStates,
}

/// The sources' faults, shared with the metrics ticker and the output stage.
pub type SourceFaults = Arc<Mutex<Vec<Fault>>>;

/// Each source's connection, in words (`subscribed`, `disconnected: …`).
pub type SourceStates = Arc<Mutex<Vec<String>>>;

/// Whether a source's state in words (as [`SourceStates`] holds them) is a
/// live broker connection (subscribed, or connected with its SUBSCRIBE
/// under way or partly refused).
pub fn is_connected(words: &str) -> bool {
    words == "subscribed" || words.starts_with("connected") || words.starts_with("refused")
}

/// The raw journal stage's side of the sources ([`super::rawjournal`]).
pub struct JournalFeed {
    /// The sources' messages, each owed its acknowledgement.
    pub deliveries: mpsc::Receiver<Delivery>,
    /// Each source's acknowledgements (by source index).
    pub acks: Vec<mpsc::UnboundedSender<Ack>>,
    /// Where the written messages go (the ingest thread).
    pub raw: mpsc::Sender<RawMessage>,
}

/// Messages queued from the sources to the raw journal stage; full: the
/// poll loops wait (the broker holds the rest, unacknowledged).
pub const JOURNAL_QUEUE: usize = 8192;

/// Publishes queued to one source (Sparkplug rebirth requests, parameter
/// writes); full: a rebirth request is dropped and logged (the host asks
/// the node again after `rebirth_interval_secs`), a write is refused with
/// "the source's outgoing queue is full" (the output stage says it was not
/// sent). Past this queue, the source loop keeps up to
/// [`ctower_collector::mqtt::MAX_PENDING_OUTGOING`] writes while rumqttc's
/// own request channel is full.
pub const OUTGOING_QUEUE: usize = 64;

/// Starts one task per configured source, each stamping receive times
/// with `clock`; every source gets an outgoing queue
/// ([`OUTGOING_QUEUE`]), and the sources share one write directory
/// ([`WriteDirectory`], its default bound).
pub fn start(
    rt: &Runtime,
    settings: &Settings,
    embedded: Option<BrokerEndpoint>,
    clock: &Clock,
) -> Sources {
    let (raw_tx, raw) = mpsc::channel::<RawMessage>(RAW_QUEUE);
    let (stop, stop_rx) = watch::channel(false);
    let mut routes = Vec::new();
    let (deliveries_tx, deliveries) = mpsc::channel::<Delivery>(JOURNAL_QUEUE);
    let mut acks = Vec::new();
    let faults = SourceFaults::default();
    let states: SourceStates = Arc::new(Mutex::new(vec![
        "connecting".to_string();
        settings.sources.len()
    ]));
    for (i, spec) in settings.sources.iter().enumerate() {
        let (spec, tx, stop_rx) = (spec.clone(), raw_tx.clone(), stop_rx.clone());
        let (out_tx, out_rx) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
        routes.push(Route {
            name: spec.name.clone(),
            kind: match spec.sparkplug {
                Some(_) => SourceKind::Sparkplug,
                None => SourceKind::Json,
            },
            tx: out_tx,
        });
        let journal = settings.raw_journal.as_ref().map(|_| {
            let (ack_tx, ack_rx) = mpsc::unbounded_channel();
            acks.push(ack_tx);
            JournalLink {
                tx: deliveries_tx.clone(),
                acks: ack_rx,
            }
        });
        let extras = SourceExtras {
            outgoing: Some(out_rx),
            journal,
        };
        let (status_tx, status_rx) = watch::channel(SourceStatus::Connecting);
        rt.spawn(log_status(
            spec.name.clone(),
            status_rx,
            faults.clone(),
            (states.clone(), i),
        ));
        let (clock, embedded) = (clock.clone(), embedded.clone());
        rt.spawn(async move {
            let name = spec.name.clone();
            let status_tx = Some(status_tx);
            match run_source(i, spec, embedded, tx, clock, stop_rx, status_tx, extras).await {
                Ok(stats) => tracing::info!(source = %name, received = stats.received, reconnects = stats.reconnects, "source stopped"),
                Err(e) => tracing::error!(source = %name, error = %e, "source failed"),
            }
        });
    }
    let journal = settings.raw_journal.as_ref().map(|_| JournalFeed {
        deliveries,
        acks,
        raw: raw_tx.clone(),
    });
    Sources {
        raw,
        stop,
        plant_routes: PlantRoutes {
            directory: WriteDirectory::default(),
            routes,
            states: states.clone(),
        },
        journal,
        faults,
        states,
    }
}

/// Logs a source's connection changes, and keeps its fault in `faults`
/// while the broker refuses its subscriptions.
async fn log_status(
    name: Arc<str>,
    mut status: watch::Receiver<SourceStatus>,
    faults: SourceFaults,
    (states, index): (SourceStates, usize),
) {
    while status.changed().await.is_ok() {
        let s = status.borrow_and_update().clone();
        let words = match &s {
            SourceStatus::Connecting => "connecting".to_string(),
            SourceStatus::Connected { connection } => {
                format!("connected (connection {connection})")
            }
            SourceStatus::Subscribed { refused, .. } if refused.is_empty() => {
                "subscribed".to_string()
            }
            SourceStatus::Subscribed { refused, .. } => format!("refused: {}", refused.join(" ")),
            SourceStatus::Disconnected { attempt, error, .. } => {
                format!("disconnected (attempt {attempt}): {error}")
            }
            _ => "stopped".to_string(),
        };
        if let Some(slot) = states.lock().ok().as_mut().and_then(|v| v.get_mut(index)) {
            *slot = words;
        }
        match s {
            SourceStatus::Subscribed {
                connection,
                refused,
            } => {
                if refused.is_empty() {
                    tracing::info!(source = %name, connection, "source subscribed");
                } else {
                    tracing::error!(
                        source = %name,
                        connection,
                        refused = %refused.join(" "),
                        "the broker refused this source's subscription: the user is not \
                         authorised to read these topics (check the broker's ACL); \
                         nothing from them will arrive"
                    );
                }
                set_fault(&faults, &name, refused_fault(&name, &refused));
            }
            SourceStatus::Disconnected {
                attempt,
                error,
                retry_in_ms,
            } => {
                tracing::warn!(source = %name, attempt, error, retry_in_ms, "source disconnected")
            }
            _ => {}
        }
    }
}

/// The stage name of a source's fault (its system alarm is
/// `ctower.source.<name>`).
pub fn fault_stage(name: &str) -> String {
    format!("source.{name}")
}

/// A source's fault when the broker refused `refused` (none: no fault).
fn refused_fault(name: &str, refused: &[String]) -> Option<Fault> {
    (!refused.is_empty()).then(|| Fault {
        stage: fault_stage(name),
        path: refused.join(" "),
        error: "the broker refused the subscription (not authorised by its ACL)".into(),
        lost: 0,
    })
}

/// Replaces `name`'s fault in `faults`.
fn set_fault(faults: &SourceFaults, name: &str, fault: Option<Fault>) {
    if let Ok(mut f) = faults.lock() {
        let stage = fault_stage(name);
        f.retain(|x| x.stage != stage);
        f.extend(fault);
        f.sort_by(|a, b| a.stage.cmp(&b.stage));
    }
}

/// The demo: loops `recording` through the embedded broker at `speed`.
pub fn start_demo_replay(rt: &Runtime, recording: PathBuf, speed: f64, endpoint: BrokerEndpoint) {
    rt.spawn(async move {
        let mut o = PublishOptions::new("ctower-demo-replay");
        o.speed = Speed::Factor(speed);
        o.loop_forever = true;
        // Recorded event times (each pass shifted forward), not "now": at
        // 10x the event time runs ahead of the wall clock, and a live tower
        // refuses event times far ahead of their receive time.
        if let Err(e) = publish_recording(&recording, &endpoint, o, |_| {}).await {
            tracing::error!(error = %e, recording = %recording.display(), "demo replay failed");
        }
    });
}
