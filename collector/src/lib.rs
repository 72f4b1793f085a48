//! ctower's collector: everything between a plant's MQTT broker and the
//! stream processor.
//!
//! - [`decode`]: topic → asset model mapping and JSON payload decoding (pure);
//! - [`admission`]: event-time watermark, timestamp range and lateness (pure);
//! - [`limits`]: caps of assets and signals per source, counter rates (pure);
//! - [`ingest`]: decoder + admission + dead letters + metrics → batches;
//! - [`deadletter`]: the dead-letter file and counts by reason;
//! - [`config`]: `[[sources]]` as the file says it, checked into [`Source`];
//! - [`endpoint`]: broker addresses, and what `embedded` means (one place);
//! - [`mqtt`]: rumqttc source loops with reconnect and back-off;
//! - [`probe`]: one connection to a source's broker (`ctower check --connect`);
//! - [`broker`]: the embedded rumqttd broker, and the log directives that
//!   keep its internals out of ctower's logs;
//! - [`replay`]: publish a recording to a broker, record live traffic;
//! - [`sparkplug`]: Sparkplug B topics and payloads (pure);
//! - [`write`]: a parameter write → the publish that carries it (pure);
//! - [`tls`]: TLS to brokers (rustls, `ring`), certificates from PEM files.

pub mod admission;
pub mod broker;
pub mod config;
pub mod deadletter;
pub mod decode;
pub mod delivery;
pub mod endpoint;
pub mod ingest;
pub mod limits;
pub mod mqtt;
pub mod probe;
pub mod rawjournal;
pub mod replay;
pub mod sparkplug;
pub mod tls;
pub mod write;

pub use config::{Source, SourceConfig};
pub use ingest::{decode_chunk, DecodedChunk, Decoders, Ingestor, Outgoing, RawMessage};

/// Every error of the collector.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A file or socket operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, or what was being done.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A recording could not be read.
    #[error(transparent)]
    Replay(#[from] ctower_model::replay::ReplayError),
    /// An MQTT client could not be set up or stopped unexpectedly.
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// The embedded broker could not start.
    #[error("broker: {0}")]
    Broker(String),
    /// A broker URL that does not parse, or `embedded` in a process that
    /// runs no embedded broker (shown redacted).
    #[error("invalid broker URL `{url}`: {reason}")]
    BrokerUrl {
        /// The URL, without user information.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A thread could not be started, or died.
    #[error("thread `{name}`: {source}")]
    Thread {
        /// The thread's name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
}
