//! The control-room dashboard of ctower, for site managers and on-call
//! staff: the fleet of sites at a glance (OEE of the shift so far, power,
//! energy per unit, water, alarms, freshness), a site's lines, losses and
//! downtime reasons, a line's state timeline, a site's energy and water,
//! the alarm console (acknowledge, shelve, comment), the pipeline's
//! health, and the writable parameters with their write requests
//! (request, approve, reject; each signed with the user's signature,
//! asked once per session).
//!
//! It reads the engine's dashboard feed ([`ctower_model::board`]): over
//! MQTT when attached to a running engine (`ctower tui --broker …`), or
//! from the engine's own process through the same topics and payloads in
//! a [`BoardInbox`](ctower_model::board::BoardInbox). Its requests go back
//! as [`ctower_model::CommandRequest`]s, which the engine checks and
//! audits.
//!
//! The crate is split the way gitui is:
//! - [`App`]: the state, pure (no I/O, no clock: the wall time is passed
//!   in), changed by feed messages ([`App::apply`]), keys and clicks
//!   ([`App::on_key`], [`App::on_mouse`]) and replies;
//! - [`render`]: draws an [`App`], a pure function of the state, the wall
//!   time and the [`Theme`]; one component per view, snapshot-tested;
//! - [`run_viewer`]: the thin terminal loop on one event queue
//!   ([`AppEvent`]), restoring the terminal on every exit path.

#![warn(missing_docs)]

mod app;
mod keys;
mod term;
mod ui;

pub use app::{App, FleetOrder, LinkState, Prompt, SiteView, StateFilter, View, PARTIAL_COVERAGE};
pub use keys::Action;
pub use term::{
    ensure_terminal, event_queue, restore_terminal, run_viewer, AppEvent, FocusFn, Link, SendFn,
    TuiError, EVENT_QUEUE,
};
pub use ui::{fmt_age, render, Theme};
