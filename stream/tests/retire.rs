//! Silent assets are retired (issue #8 item 10): every asset ever seen used
//! to emit a record at every window forever (20,006 journal lines per
//! window after a flood of 20,000 one-message assets). After
//! `retire_after_ms` of silence an asset's state is dropped and it has no
//! record of its own any more; its line still counts it, as unknown time,
//! until it is forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_model::{AssetKey, Batch, Bucket, Level, Observation, Role, StreamOutput, Value};
use ctower_stream::{start, AccumConfig, StreamConfig, WindowOutput};
use std::collections::HashMap;
use std::time::Duration;

const W: i64 = 60_000;
const T0: i64 = 1_772_427_600_000; // 2026-03-02T05:00:00Z

fn config(workers: usize) -> StreamConfig {
    StreamConfig {
        workers,
        accum: AccumConfig {
            window_ms: W,
            stale_after_ms: 60_000,
            max_interval_ms: Default::default(),
            ideal_cycle_ms: HashMap::new(),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            micro_stop_ms: 120_000,
            startup_ms: 0,
            counter_rollover: None,
            correction_horizon_ms: 5 * W,
            calendars: Default::default(),
            energy: Default::default(),
            retire_after_ms: 10 * W,
            forget_after_ms: 20 * W,
        },
        input_capacity: 4,
        output_capacity: 64,
        tee_signals: Vec::new(),
        tee_states: false,
    }
}

fn state(asset: &str, ts: i64, seq: u64) -> Observation {
    Observation {
        asset: AssetKey::new("s", "a", "l", asset),
        signal: "state".into(),
        role: Role::State,
        ts_ms: ts,
        value: Value::State {
            bucket: Bucket::Running,
            code: "running".into(),
            reason: None,
        },
        seq,
        watermark_ms: None,
    }
}

/// `m1` reports every 10 s for 40 minutes; `m2` only in the first minute.
fn run(workers: usize) -> Vec<WindowOutput> {
    let mut seq = 0;
    let mut obs = Vec::new();
    for k in 0..240 {
        let t = T0 + k * 10_000;
        seq += 1;
        obs.push(state("m1", t, seq));
        if k < 6 {
            seq += 1;
            obs.push(state("m2", t, seq));
        }
    }
    feed(workers, 16, obs)
}

fn feed(workers: usize, batch: usize, obs: Vec<Observation>) -> Vec<WindowOutput> {
    let (input, pipeline) = start(config(workers)).expect("pipeline starts");
    let feeder = std::thread::spawn(move || {
        for chunk in obs.chunks(batch) {
            let max = chunk.iter().map(|o| o.ts_ms).max().unwrap_or(T0);
            input
                .blocking_send(Batch {
                    observations: chunk.to_vec(),
                    watermark_ms: Some(max - 30_000),
                })
                .expect("send");
        }
        input.finish();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let collector = std::thread::spawn(move || {
        let all: Vec<WindowOutput> = pipeline.outputs.iter().collect();
        pipeline.workers.join().expect("workers");
        let _ = tx.send(all);
    });
    let all = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the pipeline did not finish within 60 s");
    feeder.join().expect("feeder");
    collector.join().expect("collector");
    all
}

/// (window index, m2 has a record, the line's assets, reporting, unknown minutes)
fn timeline(outputs: &[WindowOutput]) -> Vec<(i64, bool, u64, u64, i64)> {
    outputs
        .iter()
        .filter(|w| w.closes_window)
        .map(|w| {
            let kpis: Vec<_> = w
                .outputs
                .iter()
                .filter_map(|o| match o {
                    StreamOutput::Kpi(k) if k.window_start_ms == w.window_start_ms => Some(k),
                    _ => None,
                })
                .collect();
            let m2 = kpis.iter().any(|k| k.scope.asset.as_deref() == Some("m2"));
            let line = kpis
                .iter()
                .find(|k| k.scope.level == Level::Line)
                .expect("a line record in every window");
            assert!(
                kpis.iter()
                    .all(|k| k.scope.asset.as_deref() != Some(ctower_model::RETIRED_ASSETS)),
                "no record for the retired assets themselves"
            );
            (
                (w.window_start_ms - T0) / W,
                m2,
                line.sums.assets,
                line.sums.assets_reporting,
                line.sums.unknown_ms / W,
            )
        })
        .collect()
}

#[test]
fn a_silent_asset_is_retired_and_reported_at_its_line_until_forgotten() {
    let one = timeline(&run(1));
    assert_eq!(one, timeline(&run(2)), "the same with two workers");
    for &(w, m2, assets, reporting, unknown_min) in &one {
        match w {
            // m2 reports, then is silent but remembered (stale: unknown).
            0 => assert_eq!((m2, assets, reporting), (true, 2, 2)),
            1..=10 => assert!(m2 && assets == 2, "window {w}: {one:?}"),
            // Its last message was at 50 s: silent for 10 min by 11:00 —
            // retired after window 10; its line still counts it, unknown.
            11..=20 => assert_eq!(
                (m2, assets, reporting, unknown_min),
                (false, 2, 1, 1),
                "window {w}"
            ),
            // Forgotten 20 min after its last message.
            _ => assert_eq!(
                (m2, assets, reporting, unknown_min),
                (false, 1, 1, 0),
                "window {w}"
            ),
        }
    }
    assert_eq!(one.len(), 40, "every window up to the last event");
}

fn counter(asset: &str, ts: i64, v: f64, seq: u64) -> Observation {
    Observation {
        asset: AssetKey::new("s", "a", "l", asset),
        signal: "count_total".into(),
        role: Role::CounterTotal,
        ts_ms: ts,
        value: Value::Number(v),
        seq,
        watermark_ms: None,
    }
}

/// A retired asset that speaks again: the retirement is decided on the
/// closed windows only, so it does not matter whether its new data had
/// already arrived (a batch replay) or came later (live); what its counter
/// counted while silent is reported as unmeasured, not lost.
#[test]
fn a_retired_asset_that_speaks_again_gives_the_same_whenever_its_data_arrives() {
    let mut seq = 0;
    let mut obs = Vec::new();
    for k in 0..240 {
        let t = T0 + k * 10_000;
        seq += 1;
        obs.push(state("m1", t, seq));
        // m2 counts 10 per 10 s in the first minute, is silent (retired
        // at minute 11, to be forgotten at minute 21), and is back at
        // minute 15 having counted 5,000 meanwhile.
        if !(6..90).contains(&k) {
            seq += 1;
            let v = if k < 6 {
                10.0 * k as f64
            } else {
                5_000.0 + 10.0 * (k - 90) as f64
            };
            obs.push(counter("m2", t, v, seq));
        }
    }
    let summary = |outs: &[WindowOutput]| -> Vec<(i64, u64, Option<u64>, Option<f64>)> {
        outs.iter()
            .filter(|w| w.closes_window)
            .map(|w| {
                let line = w
                    .outputs
                    .iter()
                    .find_map(|o| match o {
                        StreamOutput::Kpi(k)
                            if k.scope.level == Level::Line
                                && k.window_start_ms == w.window_start_ms =>
                        {
                            Some(k)
                        }
                        _ => None,
                    })
                    .expect("a line record");
                (
                    (w.window_start_ms - T0) / W,
                    line.sums.assets,
                    line.sums.produced,
                    line.sums.unmeasured.get("produced").copied(),
                )
            })
            .collect()
    };
    // Whole: everything arrives before anything closes (m2's new data is
    // pending when it is retired). Trickled: one observation at a time.
    let whole = summary(&feed(2, 100_000, obs.clone()));
    let trickled = summary(&feed(2, 1, obs));
    assert_eq!(whole, trickled);
    // Retired at minute 11 (counted at its line), back at minute 15.
    assert_eq!(whole[12].1, 2, "{whole:?}");
    assert_eq!(whole[12].2, None, "{whole:?}");
    let gap: f64 = whole.iter().filter_map(|w| w.3).sum();
    assert_eq!(
        gap,
        5_000.0 - 50.0,
        "what m2 counted while silent: {whole:?}"
    );
}
