//! Stopping the pipeline is not the end of its input (issue #8 item 5).
//!
//! A stopped engine used to close every open window and emit it as
//! complete at revision 0 (a window with 239 of its 324 messages, a
//! micro-stop turned into a breakdown); with the same key, such a record
//! overwrites the full one in any store. Dropped without
//! `PipelineInput::finish`, the pipeline now writes only the windows the
//! watermark had closed; `finish` (the end of a recording) still closes
//! every window up to the last event.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_model::{AssetKey, Batch, Observation, Period, Role, StreamOutput, Value};
use ctower_stream::{start, AccumConfig, StreamConfig, WindowOutput};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const W: i64 = 60_000;
const T0: i64 = 1_772_427_600_000; // 2026-03-02T05:00:00Z
const LATENESS: i64 = 30_000;

fn config() -> StreamConfig {
    StreamConfig {
        workers: 2,
        accum: AccumConfig {
            window_ms: W,
            stale_after_ms: 60_000,
            ideal_cycle_ms: HashMap::new(),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            // Windows close two windows after the watermark passes them.
            micro_stop_ms: 120_000,
            startup_ms: 0,
            counter_rollover: None,
            calendars: Default::default(),
            energy: Default::default(),
            correction_horizon_ms: 1_800_000,
            max_interval_ms: Default::default(),
            retire_after_ms: 0,
            forget_after_ms: 0,
        },
        input_capacity: 4,
        output_capacity: 64,
        tee_signals: Vec::new(),
        tee_states: false,
    }
}

/// A power reading every 10 s for ten minutes, on two assets.
fn observations() -> Vec<Observation> {
    let mut out = Vec::new();
    let mut seq = 0;
    for k in 0..60 {
        for asset in ["m1", "m2"] {
            seq += 1;
            out.push(Observation {
                asset: AssetKey::new("s", "a", "l", asset),
                signal: "power_kw".into(),
                role: Role::PowerKw,
                ts_ms: T0 + k * 10_000,
                value: Value::Number(10.0),
                seq,
                watermark_ms: None,
            });
        }
    }
    out
}

/// Feeds everything, then waits until the windows the watermark closes
/// have come out, then stops (`finish`) or drops the input.
fn run(finish: bool) -> Vec<WindowOutput> {
    let (input, pipeline) = start(config()).expect("pipeline starts");
    let obs = observations();
    let last = obs.iter().map(|o| o.ts_ms).max().expect("data");
    input
        .blocking_send(Batch {
            observations: obs,
            watermark_ms: Some(last - LATENESS),
        })
        .expect("send");
    // The watermark (last − 30 s = T0 + 9 min 20 s) puts the frontier at
    // its window, T0 + 9 min; a window closes once the frontier is past it
    // by the lookahead (2 windows): those starting before T0 + 7 min.
    let closed_by_watermark = 7;
    let mut outputs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while outputs.len() < closed_by_watermark {
        let left = deadline.saturating_duration_since(Instant::now());
        match pipeline.outputs.recv_timeout(left) {
            Ok(w) => outputs.push(w),
            Err(e) => panic!(
                "only {} of {closed_by_watermark} windows closed by the watermark within 30 s: {e}",
                outputs.len()
            ),
        }
    }
    if finish {
        input.finish();
    } else {
        drop(input);
    }
    outputs.extend(pipeline.outputs.iter());
    pipeline.workers.join().expect("workers");
    outputs
}

fn window_starts(outputs: &[WindowOutput]) -> Vec<i64> {
    outputs
        .iter()
        .filter(|w| w.closes_window)
        .map(|w| (w.window_start_ms - T0) / W)
        .collect()
}

#[test]
fn a_stopped_pipeline_writes_no_window_the_watermark_had_not_closed() {
    let stopped = run(false);
    assert_eq!(window_starts(&stopped), (0..7).collect::<Vec<_>>());
    // Nothing else at all: no partial window, no incomplete period.
    assert!(stopped.iter().all(|w| w.closes_window));
    for w in &stopped {
        for o in &w.outputs {
            if let StreamOutput::Kpi(k) = o {
                assert!(k.complete && k.period == Period::Window, "{k:?}");
            }
        }
    }
}

#[test]
fn a_finished_input_closes_every_window_up_to_the_last_event() {
    let finished = run(true);
    assert_eq!(window_starts(&finished), (0..10).collect::<Vec<_>>());
}
