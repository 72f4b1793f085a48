//! ctower's collector: everything between a plant's MQTT broker and the
//! stream processor.
//!
//! - [`decode`]: topic → asset model mapping and JSON payload decoding (pure);
//! - [`admission`]: event-time watermark, timestamp range and lateness (pure);
//! - [`limits`]: caps of assets and signals per source, counter rates (pure);
//! - [`ingest`]: decoder + admission + dead letters + metrics → batches;
//! - [`deadletter`]: the dead-letter file and counts by reason;
//! - [`mqtt`]: rumqttc source loops with reconnect and back-off;
//! - [`broker`]: the embedded rumqttd broker of the demo;
//! - [`replay`]: publish a recording to a broker, record live traffic.

pub mod admission;
pub mod broker;
pub mod config;
pub mod deadletter;
pub mod decode;
pub mod ingest;
pub mod limits;
pub mod mqtt;
pub mod replay;

pub use config::{SourceConfig, SourceSpec};
pub use ingest::{decode_chunk, DecodedChunk, Decoders, Ingestor, RawMessage};

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Replay(#[from] ctower_model::replay::ReplayError),
    #[error("MQTT: {0}")]
    Mqtt(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("invalid broker URL `{url}`: {reason}")]
    BrokerUrl { url: String, reason: String },
    #[error("the pipeline has stopped")]
    PipelineStopped,
    #[error("thread `{name}`: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
}
