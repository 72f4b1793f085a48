//! `ctower`, the application: the house around the pure cores of the
//! library crates (collector, stream, alerts, tui).
//!
//! - [`cli`] says what each command takes, [`commands`] runs it;
//! - [`live`] composes live mode from stages (sources, ingest, pipeline,
//!   outputs, metrics), each returning a handle, with one ordered shutdown;
//! - [`batch`] runs a recording through the same pipeline, deterministically;
//! - [`output`] is the one output stage both use: the alarm engine and the
//!   [`output::Sink`]s (journal, JSON Lines files, hooks, dashboard feed);
//! - [`attach`] is `ctower tui`, the dashboard attached over MQTT;
//! - [`params`] is `ctower set|approve|reject|params|signature`, remote
//!   parameter control through the command topic;
//! - [`pipeline`] builds what both modes share from the [`settings`];
//! - [`journal`] is the local line-protocol journal;
//! - [`check`] validates a configuration (`ctower check`), [`locate`] finds it.

pub mod alarms;
pub mod attach;
pub mod batch;
pub mod check;
pub mod cli;
pub mod commands;
pub mod influx;
pub mod journal;
pub mod live;
pub mod locate;
pub mod logs;
pub mod output;
pub mod params;
pub mod pipeline;
pub mod plant;
pub mod progress;
pub mod report;
pub mod settings;
