//! The raw journal stage of live mode: between the sources and the ingest
//! thread, on its own thread. Each group of messages is written and
//! fsynced (`collector::rawjournal`), then handed to the ingest thread and
//! acknowledged to the brokers in arrival order. A disk that cannot write
//! stops the flow (logged with the path at every try): nothing is
//! acknowledged that is not on disk, and the brokers hold the rest.

use super::sources::JournalFeed;
use anyhow::Context;
use ctower_collector::delivery::Delivery;
use ctower_collector::rawjournal::{RawJournal, GROUP_MAX_RECORDS};
use ctower_model::Fault;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the stage; it ends when every source has stopped (or the ingest
/// thread has), with an error only if it could not start.
///
/// `health` holds the stage's fault while it cannot write (the dashboard's
/// header, the periodic log line and the `ctower.raw_journal` system alarm
/// read it), `None` once it writes again.
pub fn start(
    journal: RawJournal,
    feed: JournalFeed,
    health: Arc<Mutex<Option<Fault>>>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("ctower-rawjournal".into())
        .spawn(move || run(journal, feed, &health))
        .context("starting the raw journal thread")
}

fn run(
    mut journal: RawJournal,
    mut feed: JournalFeed,
    health: &Mutex<Option<Fault>>,
) -> anyhow::Result<()> {
    let mut group: Vec<Delivery> = Vec::with_capacity(GROUP_MAX_RECORDS);
    let mut duplicates = 0u64;
    while let Some(first) = feed.deliveries.blocking_recv() {
        group.push(first);
        while group.len() < GROUP_MAX_RECORDS {
            match feed.deliveries.try_recv() {
                Ok(d) => group.push(d),
                Err(_) => break,
            }
        }
        let mut keep = Vec::with_capacity(group.len());
        for d in &group {
            let dup = d.dup && journal.is_duplicate(&d.msg);
            if dup {
                // Written before a crash, not acknowledged: this time only
                // the acknowledgement.
                duplicates += 1;
                tracing::debug!(topic = %d.msg.topic, duplicates, "redelivered message already in the raw journal");
            } else {
                journal.append(&d.msg, d.qos);
            }
            keep.push(!dup);
        }
        let mut attempt = 0u32;
        while let Err(e) = journal.commit() {
            attempt += 1;
            tracing::error!(error = %e, attempt, "the raw journal cannot write: nothing more is acknowledged until it can");
            if let Ok(mut h) = health.lock() {
                *h = Some(Fault {
                    stage: "raw_journal".into(),
                    path: journal.path().display().to_string(),
                    error: e.to_string(),
                    lost: 0, // nothing is lost: the broker keeps it
                });
            }
            // Stopping (the sources or the ingest thread ended): what is
            // not written was not acknowledged, the broker keeps it.
            if feed.raw.is_closed() || feed.deliveries.is_closed() {
                return Ok(());
            }
            std::thread::sleep(RETRY);
        }
        if attempt > 0 {
            tracing::info!(attempt, "the raw journal writes again");
            if let Ok(mut h) = health.lock() {
                *h = None;
            }
        }
        // On disk: handed on, then acknowledged, in arrival order.
        for (d, keep) in group.drain(..).zip(keep) {
            let (ack, source) = (d.ack, d.msg.source);
            if keep && feed.raw.blocking_send(d.msg).is_err() {
                return Ok(()); // the ingest thread has ended
            }
            if let (Some(ack), Some(tx)) = (ack, feed.acks.get(source)) {
                let _ = tx.send(ack); // a stopped source is owed nothing
            }
        }
    }
    if duplicates > 0 {
        tracing::info!(
            duplicates,
            "redelivered messages found in the raw journal and not taken twice"
        );
    }
    Ok(())
}
