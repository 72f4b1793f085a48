//! The terminal dashboard of ctower, for site managers: every plant of the
//! group at a glance (OEE with availability, performance and quality, power,
//! energy per good unit, water recovery, alarms and data freshness per site),
//! the lines of the selected site, and the active alarms, with the
//! pipeline's own health (ingest rate, watermark lag, dead letters) in the
//! header.
//!
//! It is fed [`ctower_model::Update`]s (KPI records, alarm events, pipeline
//! metrics) over a channel and never talks back to the pipeline. Which KPI
//! records it shows is decided once, by [`wants`], which the output stage
//! calls too.
//!
//! The crate is split the way gitui is:
//! - [`App`]: the state, pure (no I/O, no clock: the wall time is passed in),
//!   updated by [`App::apply`] and [`App::on_key`];
//! - [`render`]: draws an [`App`] on a ratatui [`Frame`](ratatui::Frame), a
//!   pure function of the state and the wall time, snapshot-tested; one
//!   module per part of the screen (header, health, sites and their tiles,
//!   lines, alarms, footer, help);
//! - [`run_app`] (and [`run`]): the thin blocking terminal loop (raw mode,
//!   alternate screen, input, redraws at most 10 times a second),
//!   restoring the terminal on every exit path; [`ensure_terminal`] tells
//!   beforehand whether it can run at all.

#![warn(missing_docs)]

mod app;
mod term;
mod timing;
mod ui;

pub use app::{wants, Action, App, SiteState, STALE_COVERAGE};
pub use term::{ensure_terminal, restore_terminal, run, run_app, TuiError, TuiOptions};
pub use timing::WindowTiming;
pub use ui::render;
