//! Sparkplug B 3.0 (Eclipse Sparkplug): the MQTT payload and topic
//! conventions most industrial gateways speak. Pure, no I/O:
//!
//! - [`wire`]: the protobuf messages, with the field numbers and types of
//!   the Sparkplug B specification (`Payload`, `Metric`), decoded by prost;
//! - [`topic`]: `spBv1.0/{group}/{message type}/{edge node}[/{device}]` and
//!   the host's `spBv1.0/STATE/{host}`;
//! - [`payload`]: a payload as the host uses it: each metric's name or
//!   alias, data type, value (signed integers restored from their unsigned
//!   encoding), timestamp and flags; data sets, templates, arrays and
//!   property sets are refused with a reason, never misread.
//!
//! - [`session`]: the host's decisions: births and aliases, `seq` with a
//!   reorder window, rebirth requests, deaths as stale data.
//!
//! - [`mapping`]: group, node, device and metric → site, area, line,
//!   asset and signal;
//! - [`host`]: a Sparkplug source for the ingest core: raw messages in,
//!   observations (held values restated, deaths as UNKNOWN), refusals and
//!   rebirth requests out;
//! - [`directory`]: the write directory, filled from births: the metric
//!   (name, alias, type) behind each writable signal, and whether its node
//!   lives;
//! - [`command`]: a parameter write as an NCMD/DCMD payload.
//!
//! Payloads are checked against an independent implementation (the PyPI
//! package `pysparkplug`, `collector/tests/io/sparkplug.rs`). The MQTT side
//! (subscriptions, NCMD publishes, the host's STATE with its will) is the
//! source loop's ([`crate::mqtt`]).

pub mod command;
pub mod directory;
pub mod host;
pub mod mapping;
pub mod payload;
pub mod session;
pub mod topic;
pub mod wire;

pub use command::encode_write;
pub use directory::{SpTarget, WriteDirectory};
pub use host::{SpOutput, SparkplugHost};
pub use mapping::{SparkplugConfig, SparkplugRules};
pub use payload::{decode_payload, DataType, SpMetric, SpPayload, SpValue};
pub use session::{Declaration, Event, HostSession, NodeKey, SessionLimits};
pub use topic::{MessageType, SpTopic};
