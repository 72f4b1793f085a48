//! Test helpers shared by ctower's integration tests. A dev-dependency
//! only: nothing here is linked into the product.
//!
//! Three promises of the developer guide live here, so that every test
//! keeps them the same way:
//!
//! - an external program a test needs (Mosquitto, tmux) is found in one
//!   place ([`services`]); when it is missing the test skips *loudly* in a
//!   plain `cargo test`, and fails with how to install it under
//!   `CTOWER_REQUIRE_SERVICES=1` (what `.ci/run` sets);
//! - a child process never runs unbounded ([`process`]): it is killed past
//!   its deadline and the failure shows the tail of its output;
//! - an in-process wait never blocks forever ([`wait`]): each has a
//!   deadline and a message saying what was awaited.
//!
//! [`Mosquitto`] starts a real broker on a free port for a test; [`pki`]
//! makes the certificates and password file of a secured one.
// Test support (a dev-dependency only): a setup step that fails fails the
// test that asked for it, with the message given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mosquitto;
pub mod pki;
pub mod process;
pub mod services;
mod victoria;
pub mod wait;

pub use mosquitto::Mosquitto;
pub use victoria::{Series, VictoriaMetrics, VICTORIA_METRICS};
