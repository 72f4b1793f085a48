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
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the stage; it ends when every source has stopped (or the ingest
/// thread has), with an error only if it could not start.
pub fn start(
    journal: RawJournal,
    feed: JournalFeed,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("ctower-rawjournal".into())
        .spawn(move || run(journal, feed))
        .context("starting the raw journal thread")
}

fn run(mut journal: RawJournal, mut feed: JournalFeed) -> anyhow::Result<()> {
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
            if feed.raw.is_closed() {
                return Ok(());
            }
            std::thread::sleep(RETRY);
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
