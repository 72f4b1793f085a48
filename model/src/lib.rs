//! Shared types of ctower, the one small place every stage agrees on.
//!
//! Data flows collector → stream → {alerts, store, publish} → tui; each stage
//! depends on this crate and never on a stage further down the flow. Nothing
//! here does I/O except the replay file codec ([`replay`]), which is a format
//! shared by the simulator, the recorder, the replayer and the batch mode.

pub mod alarm;
pub mod asset;
pub mod backoff;
pub mod board;
pub mod clock;
pub mod command;
pub mod config;
pub mod hash;
pub mod kpi;
pub mod metrics;
pub mod obs;
pub mod param;
pub mod replay;
pub mod time;

pub use alarm::{AlarmEvent, AlarmEventKind, AlarmId, AlarmState, Priority};
pub use asset::{
    AssetKey, AssetKeyHasher, AssetMap, AssetPath, Level, NameMap, ScopeKey, RETIRED_ASSETS,
};
pub use clock::{wall_ms, Clock, ManualClock};
pub use command::{
    AlarmLine, CommandAction, CommandReply, CommandRequest, OperatorCommand, Signature,
};
pub use config::{key_field, key_index, ConfigIssue};
pub use kpi::{KpiRecord, Period, SignalWindow, StreamOutput};
pub use metrics::{Fault, OutboxStatus, PipelineMetrics, SourceHealth};
pub use obs::{Batch, Bucket, Observation, Role, Value};
pub use param::{
    ParamBoard, ParamEntryView, ParamRequestView, ParamState, ParamType, ParamValue, ParamWrite,
    UnsCommand,
};
pub use replay::{
    RecordChunk, RecordPos, RecordRef, ReplayChunks, ReplayReader, ReplayRecord, ReplayWriter,
};
