//! Reading and decoding a recording for the batch mode: the reader cuts
//! the file into chunks of whole lines and deals them to the decode
//! threads in turn; the sequencer reads their queues in the same turn, so
//! it sees the messages in file order.

use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::{decode_chunk, DecodedChunk, Ingestor, Source};
use ctower_model::replay::ReplayError;
use ctower_model::{RecordChunk, ReplayChunks};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Chunks queued to each decode thread and decoded chunks queued from each
/// one to the sequencer; full: the reader, or the decode thread, waits.
const CHUNK_QUEUE: usize = 2;

pub(super) type Decoded = Result<DecodedChunk, ReplayError>;

/// The first source that subscribes to the topic decodes it.
fn source_of(sources: &[Source], topic: &str) -> usize {
    sources
        .iter()
        .position(|s| s.subscribes_to(topic))
        .unwrap_or(0)
}

/// Starts the reader and the decode threads: the reader cuts the recording
/// into chunks of whole lines and deals them out in turn (chunk `i` to
/// decode thread `i mod n`), so decoded chunk `i` is the next one on
/// channel `i mod n`, and reading the channels in turn restores file order.
pub(super) fn start_decoding(
    settings: &Settings,
    recording: &Path,
    ing: &Ingestor,
    threads: usize,
) -> anyhow::Result<Decoding> {
    let chunks = ReplayChunks::open(recording, ctower_model::replay::CHUNK_BYTES)?;
    let mut to_decode = Vec::new();
    let mut decoded = Vec::new();
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let (tx, rx) = sync_channel::<Result<RecordChunk, ReplayError>>(CHUNK_QUEUE);
        let (out_tx, out_rx) = sync_channel::<Decoded>(CHUNK_QUEUE);
        let mut decoders = ing.decoders();
        let sources = settings.sources.clone();
        let h = std::thread::Builder::new()
            .name(format!("ctower-decode-{i}"))
            .spawn(move || {
                for chunk in rx {
                    let d =
                        chunk.map(|c| decode_chunk(&mut decoders, c, |t| source_of(&sources, t)));
                    if out_tx.send(d).is_err() {
                        // The sequencer has stopped.
                        return;
                    }
                }
            })
            .context("starting a decode thread")?;
        to_decode.push(tx);
        decoded.push(out_rx);
        handles.push(h);
    }
    let reader = std::thread::Builder::new()
        .name("ctower-batch-read".into())
        .spawn(move || {
            for (i, chunk) in chunks.enumerate() {
                let failed = chunk.is_err();
                let Some(tx) = to_decode.get(i % to_decode.len()) else {
                    return;
                };
                // A send fails only once the decode threads have stopped.
                if tx.send(chunk).is_err() || failed {
                    return;
                }
            }
        })
        .context("starting the reader thread")?;
    handles.push(reader);
    Ok(Decoding {
        decoded,
        threads: handles,
    })
}

/// The decode threads' output queues, in dealing order, and the threads
/// (decode threads and reader).
pub(super) struct Decoding {
    pub(super) decoded: Vec<Receiver<Decoded>>,
    pub(super) threads: Vec<JoinHandle<()>>,
}
