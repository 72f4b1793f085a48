//! Integration tests of the collector's I/O: the embedded broker, live
//! sources, replay publishing and recording, against rumqttd and Mosquitto.
//!
//! Mosquitto tests skip loudly when `mosquitto` is not installed, and fail
//! instead when `CTOWER_REQUIRE_SERVICES=1`. No test sleeps to synchronise:
//! they wait on broker readiness, SUBACKs (source status), PUBACKs
//! (`publish_recording` returns after them) and channel receives, all
//! under timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod backoff;
mod common;
mod embedded;
mod half_open;
mod loop_shift;
mod mosquitto;
mod outgoing;
mod oversized;
mod record;
mod sparkplug;
mod tls;
mod websocket;
