//! The dataflow against the plain accumulators: same results with 1 and 3
//! workers, every window closed, nothing dropped at the end of the input.
//!
//! Every wait has a deadline (a run takes milliseconds): a dataflow that
//! hangs fails the test, saying what it was waiting for, instead of
//! stalling CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, Batch, Bucket, Observation, Period, Role, StreamOutput, Value};
use ctower_stream::{start, AccumConfig, Pipeline, StreamConfig, WindowOutput};
use ctower_testkit::wait;
use std::collections::{BTreeMap, HashMap};
use std::thread::JoinHandle;
use std::time::Duration;

/// For one awaited event inside a run (a window to close, a thread or the
/// workers to stop once the outputs ended).
const STEP: Duration = Duration::from_secs(30);
/// For a whole run's outputs; longer than [`STEP`], so that a wait inside
/// the feeder fails first, with its own message.
const RUN: Duration = Duration::from_secs(90);

const W: i64 = 60_000;
const T0: i64 = 1_772_427_600_000; // 2026-03-02T05:00:00Z

fn observations() -> Vec<Observation> {
    let mut out = Vec::new();
    let mut seq = 0;
    for (i, line) in ["l1", "l2", "l3", "l4", "l5"].iter().enumerate() {
        let asset = AssetKey::new(if i < 3 { "a" } else { "b" }, "area", line, "m");
        let mut push = |ts: i64, role: Role, value: Value| {
            seq += 1;
            out.push(Observation {
                asset: asset.clone(),
                signal: format!("{role:?}").into(),
                role,
                ts_ms: ts,
                value,
                seq,
                watermark_ms: None,
            });
        };
        for k in 0..60 {
            let ts = T0 + k * 10_000 + i as i64;
            if k % 7 == 0 {
                let bucket = if k % 2 == 0 {
                    Bucket::Running
                } else {
                    Bucket::UnplannedStop
                };
                push(
                    ts,
                    Role::State,
                    Value::State {
                        bucket,
                        code: "x".into(),
                        reason: None,
                    },
                );
            }
            push(ts, Role::CounterTotal, Value::Number((k * 17) as f64));
            push(ts, Role::PowerKw, Value::Number(30.0 + k as f64));
        }
    }
    // Arrival order: by time, with one observation 25 s late.
    out.sort_by_key(|o| o.ts_ms);
    let late = out.remove(100);
    out.insert(130, late);
    out
}

fn run(workers: usize, batch: usize) -> Vec<WindowOutput> {
    run_with(workers, batch, observations(), 0)
}

fn run_with(
    workers: usize,
    batch: usize,
    obs: Vec<Observation>,
    correction_horizon_ms: i64,
) -> Vec<WindowOutput> {
    let mut cfg = run_with_cfg(workers);
    cfg.accum.correction_horizon_ms = correction_horizon_ms;
    run_cfg(cfg, batch, obs)
}

fn run_with_cfg(workers: usize) -> StreamConfig {
    StreamConfig {
        workers,
        accum: AccumConfig {
            window_ms: W,
            stale_after_ms: 30_000,
            ideal_cycle_ms: HashMap::new(),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            micro_stop_ms: 0,
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
        output_capacity: 4,
        tee_signals: Vec::new(),
        tee_states: false,
    }
}

fn run_cfg(cfg: StreamConfig, batch: usize, obs: Vec<Observation>) -> Vec<WindowOutput> {
    let (input, pipeline) = start(cfg).expect("pipeline starts");
    let feeder = std::thread::spawn(move || {
        let mut max = i64::MIN;
        for chunk in obs.chunks(batch) {
            max = chunk.iter().map(|o| o.ts_ms).max().unwrap_or(max).max(max);
            input
                .blocking_send(Batch {
                    observations: chunk.to_vec(),
                    watermark_ms: Some(max - 30_000),
                })
                .expect("send");
        }
        // The end of the input: every window up to the last event closes.
        input.finish();
    });
    finish(pipeline, feeder)
}

/// Collects the pipeline's outputs until they end, then joins the feeder
/// and the workers, each wait with its deadline. The feeder's own blocking
/// (a full input queue) is covered by the deadline on the outputs: they end
/// only after the feeder dropped the input. A panic of the feeder (a failed
/// wait or send) is re-raised here.
fn finish(pipeline: Pipeline, feeder: JoinHandle<()>) -> Vec<WindowOutput> {
    let Pipeline {
        outputs, workers, ..
    } = pipeline;
    let outputs = wait::recv_all(
        &outputs,
        "the pipeline's outputs to end (after the feeder drops the input)",
        RUN,
    );
    wait::join(feeder, "the feeder thread to stop", STEP);
    wait::within("the timely workers to stop", STEP, move || workers.join())
        .expect("timely workers");
    outputs
}

#[test]
fn worker_count_and_batching_do_not_change_results() {
    let one = run(1, 1000);
    assert_eq!(one.len(), 10, "10 minutes of data give 10 windows");
    let starts: Vec<i64> = one.iter().map(|w| w.window_start_ms).collect();
    assert_eq!(starts, (0..10).map(|k| T0 + k * W).collect::<Vec<_>>());
    assert_eq!(run(3, 7), one);
    assert_eq!(run(2, 1), one);

    // Every counter increment is counted exactly once (each asset: 59 × 17).
    let produced: u64 = one
        .iter()
        .flat_map(|w| &w.outputs)
        .filter_map(|o| match o {
            StreamOutput::Kpi(k) if k.scope.level == ctower_model::Level::Group => k.sums.produced,
            _ => None,
        })
        .sum();
    assert_eq!(produced, 5 * 59 * 17);
}

/// The observations in arrival order, each stamped with the watermark
/// before it as the collector's admission does (newest so far − 30 s).
fn admitted(mut obs: Vec<Observation>) -> Vec<Observation> {
    let mut newest = i64::MIN;
    for o in &mut obs {
        o.watermark_ms = (newest > i64::MIN).then(|| newest - 30_000);
        newest = newest.max(o.ts_ms);
    }
    obs
}

fn latest_window_records(outputs: &[WindowOutput]) -> BTreeMap<(i64, String), (u32, KpiSums)> {
    let mut latest = BTreeMap::new();
    for k in outputs
        .iter()
        .flat_map(|w| &w.outputs)
        .filter_map(|o| match o {
            StreamOutput::Kpi(k) if k.period == Period::Window => Some(k),
            _ => None,
        })
    {
        let key = (k.window_start_ms, k.scope.to_string());
        let prev = latest.insert(key, (k.revision, k.sums.clone()));
        if let Some((rev, _)) = prev {
            assert!(k.revision > rev, "revisions of {} must increase", k.scope);
        }
    }
    latest
}

#[test]
fn late_data_corrects_closed_windows_whatever_the_workers() {
    let on_time = run_with(1, 1000, admitted(observations()), 600_000);
    // Five observations of the first minutes arrive after everything else.
    let mut obs = observations();
    let mut late = Vec::new();
    for i in [95, 80, 60, 40, 20] {
        late.push(obs.remove(i));
    }
    let first_late = late.iter().map(|o| o.ts_ms).min().expect("late data");
    obs.extend(late);
    let obs = admitted(obs);
    let one = run_with(1, 1000, obs.clone(), 600_000);
    assert_eq!(run_with(2, 7, obs.clone(), 600_000), one);
    assert_eq!(run_with(3, 1, obs, 600_000), one);

    let want = latest_window_records(&on_time);
    let got = latest_window_records(&one);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut corrected = 0;
    for (key, (rev, sums)) in &got {
        assert_eq!(
            &want[key].1, sums,
            "{key:?}: latest revision {rev} differs from on time"
        );
        if *rev > 0 {
            corrected += 1;
            assert!(
                key.0 + W > first_late,
                "{key:?} corrected, before the late data"
            );
        }
    }
    assert!(corrected > 0, "no correction was emitted");
    // The corrections come as outputs of later windows, after their records.
    assert!(one.iter().any(|w| w.outputs.iter().any(|o| matches!(
        o,
        StreamOutput::Kpi(k) if k.revision > 0 && k.window_start_ms < w.window_start_ms
    ))));
}

/// Batches of one observation each, stamped like the collector does, for
/// the edge cases below.
fn one_by_one(obs: Vec<Observation>) -> Vec<Observation> {
    admitted(obs)
}

fn process(asset: &AssetKey, ts: i64, seq: u64) -> Observation {
    Observation {
        asset: asset.clone(),
        signal: "p".into(),
        role: Role::Process,
        ts_ms: ts,
        value: Value::Number(1.0),
        seq,
        watermark_ms: None,
    }
}

/// Found in review: an observation older than a worker's first one, a late
/// first observation of an asset on a worker that had none, and a late
/// state of a new asset while its worker's other assets are ahead. None may
/// panic or hang, every window record covers one window, and the output is
/// the same for any worker count and batching.
#[test]
fn late_and_out_of_order_first_observations_are_handled_the_same_everywhere() {
    // With two workers: A and A2 on worker 0, B and C on worker 1.
    let on_worker = |w: u64, tag: &str| {
        (0..1000)
            .map(|i| AssetKey::new("s", "a", "l", &format!("{tag}{i}")))
            .find(|k| k.stable_hash() % 2 == w)
            .expect("an asset name for the worker")
    };
    let (a, a2) = (on_worker(0, "A"), on_worker(0, "D"));
    let (b, c) = (on_worker(1, "B"), on_worker(1, "C"));
    let c_name = c.asset.clone();
    let mut obs = Vec::new();
    let mut seq = 0;
    let mut push = |o: Observation, obs: &mut Vec<Observation>| {
        seq += 1;
        obs.push(Observation { seq, ..o });
    };
    // A2's first message is older than A's, still on time.
    push(process(&a, T0 + 5 * W + 1000, 0), &mut obs);
    push(process(&a2, T0 + 4 * W + 50_000, 0), &mut obs);
    for k in 0..84 {
        push(process(&a, T0 + 5 * W + k * 10_000, 0), &mut obs);
    }
    // Worker 1's first asset starts ahead of the watermark.
    push(process(&b, T0 + 20 * W + 1000, 0), &mut obs);
    // C's first message: a state of window 6, arriving some 15 min late.
    let mut st = process(&c, T0 + 6 * W + 5000, 0);
    st.role = Role::State;
    st.signal = "state".into();
    st.value = Value::State {
        bucket: Bucket::Running,
        code: "x".into(),
        reason: None,
    };
    push(st, &mut obs);
    for k in 84..200 {
        push(process(&a, T0 + 5 * W + k * 10_000, 0), &mut obs);
    }
    let obs = one_by_one(obs);
    let run = |workers: usize, batch: usize| {
        let mut cfg = run_with_cfg(workers);
        cfg.accum.micro_stop_ms = 120_000;
        run_cfg(cfg, batch, obs.clone())
    };
    let one = run(1, 1);
    // The same input, but each late or out-of-order message is sent only
    // once the pipeline has closed the windows after it: the worker's
    // frontier is then well ahead of the message.
    let staged = |workers: usize| {
        let mut cfg = run_with_cfg(workers);
        cfg.accum.micro_stop_ms = 120_000;
        let (input, pipeline) = start(cfg).expect("pipeline starts");
        let closed = pipeline.windows_closed.clone();
        let obs = obs.clone();
        let c_name = c_name.clone();
        let feeder = std::thread::spawn(move || {
            for (i, o) in obs.into_iter().enumerate() {
                let wm = o.watermark_ms;
                // Before C's late state: wait until six windows closed.
                if o.asset.asset == c_name {
                    wait::until(
                        "six windows to close before C's late state is sent",
                        STEP,
                        || closed.load(std::sync::atomic::Ordering::Relaxed) >= 6,
                    );
                }
                input
                    .blocking_send(Batch {
                        observations: vec![o],
                        watermark_ms: if i == 0 { None } else { wm },
                    })
                    .expect("send");
            }
            input.finish();
        });
        finish(pipeline, feeder)
    };
    assert_eq!(
        staged(1),
        one,
        "1 worker, late state sent after its windows closed"
    );
    assert_eq!(
        staged(2),
        one,
        "2 workers, late state sent after its windows closed"
    );
    for k in one.iter().flat_map(|w| &w.outputs).filter_map(|o| match o {
        StreamOutput::Kpi(k) if k.period == Period::Window => Some(k),
        _ => None,
    }) {
        assert!(
            k.sums.modelled_ms() <= W,
            "{} @ {}: {:?}",
            k.scope,
            k.window_start_ms,
            k.sums
        );
    }
    let c_windows = one
        .iter()
        .flat_map(|w| &w.outputs)
        .filter(
            |o| matches!(o, StreamOutput::Kpi(k) if k.scope.asset.as_deref() == Some(&*c.asset)),
        )
        .count();
    assert!(c_windows > 20, "C's windows are emitted ({c_windows})");
    assert_eq!(run(2, 1), one);
    assert_eq!(run(3, 5), one);
    assert_eq!(run(2, 64), one);
}

/// Found in review: a site's backlog that arrives after another site set
/// the watermark is late for windows that were never rolled up (before the
/// first window closed). It must be emitted, not dropped as too old.
#[test]
fn a_backlog_before_the_first_window_is_emitted_not_dropped() {
    let a = AssetKey::new("a", "area", "l", "m");
    let b = AssetKey::new("b", "area", "l", "m");
    let counter = |asset: &AssetKey, ts: i64, v: f64| Observation {
        asset: asset.clone(),
        signal: "total".into(),
        role: Role::CounterTotal,
        ts_ms: ts,
        value: Value::Number(v),
        seq: 0,
        watermark_ms: None,
    };
    let obs = vec![
        counter(&a, T0 + 5 * W + 1000, 0.0),
        counter(&b, T0 + 2 * W + 1, 0.0),
        // Within the counter's maximum interval (30 s here): 10 units in
        // window 2.
        counter(&b, T0 + 2 * W + 25_001, 10.0),
        // After a gap: 5 units, unmeasured (in no window).
        counter(&b, T0 + 5 * W + 2000, 15.0),
        counter(&a, T0 + 6 * W, 1.0),
        counter(&a, T0 + 7 * W, 2.0),
        counter(&a, T0 + 8 * W, 3.0),
    ];
    let obs: Vec<Observation> = admitted(obs)
        .into_iter()
        .enumerate()
        .map(|(i, o)| Observation {
            seq: i as u64 + 1,
            ..o
        })
        .collect();
    let one = run_cfg(run_with_cfg(1), 1, obs.clone());
    assert_eq!(run_cfg(run_with_cfg(2), 1, obs), one);
    let latest = latest_window_records(&one);
    let b_windows: BTreeMap<i64, u64> = latest
        .iter()
        .filter(|((_, scope), _)| scope == "b/area/l/m")
        .map(|((w, _), (_, sums))| ((w - T0) / W, sums.produced.unwrap_or(0)))
        .collect();
    assert_eq!(
        b_windows.get(&2),
        Some(&10),
        "b's backlog window: {b_windows:?}"
    );
    assert_eq!(b_windows.values().sum::<u64>(), 10, "{b_windows:?}");
    let gap: f64 = latest
        .iter()
        .filter(|((_, scope), _)| scope == "b/area/l/m")
        .filter_map(|(_, (_, sums))| sums.unmeasured.get("produced"))
        .sum();
    assert_eq!(
        gap, 5.0,
        "the units across the gap are unmeasured, not lost"
    );
}

/// Found in review: a state that ends a stop of an earlier window, admitted
/// after that window closed but on time for its own window, must still
/// reclassify the stop (as a correction), whatever the scheduling.
#[test]
fn a_late_stop_end_reclassifies_a_closed_window() {
    let a = AssetKey::new("s", "area", "l", "a");
    let b = AssetKey::new("s", "area", "l", "b");
    let state = |ts: i64, bucket: Bucket| Observation {
        asset: a.clone(),
        signal: "state".into(),
        role: Role::State,
        ts_ms: ts,
        value: Value::State {
            bucket,
            code: "x".into(),
            reason: None,
        },
        seq: 0,
        watermark_ms: None,
    };
    let mut in_order = vec![
        state(T0 + 1_000, Bucket::Running),
        state(T0 + 50_000, Bucket::UnplannedStop),
        state(T0 + 70_000, Bucket::Running),
    ];
    for k in 0..60 {
        in_order.push(process(&b, T0 + k * 10_000, 0));
    }
    for k in 19..60 {
        in_order.push(state(T0 + k * 10_000, Bucket::Running));
    }
    in_order.sort_by_key(|o| o.ts_ms);
    // The stop's end (T0 + 70 s) arrives after b's message of T0 + 220 s.
    let mut late = in_order.clone();
    let end = late
        .iter()
        .position(|o| o.ts_ms == T0 + 70_000)
        .expect("the stop's end");
    let stop_end = late.remove(end);
    let after = late
        .iter()
        .position(|o| o.ts_ms == T0 + 220_000)
        .expect("b at 220 s");
    late.insert(after + 1, stop_end);
    let number = |obs: Vec<Observation>| -> Vec<Observation> {
        admitted(obs)
            .into_iter()
            .enumerate()
            .map(|(i, o)| Observation {
                seq: i as u64 + 1,
                ..o
            })
            .collect()
    };
    let run = |obs: &[Observation], workers: usize, batch: usize| {
        let mut cfg = run_with_cfg(workers);
        cfg.accum.micro_stop_ms = 120_000;
        latest_window_records(&run_cfg(cfg, batch, obs.to_vec()))
    };
    let want = run(&number(in_order), 1, 1);
    let window0 = (T0, "s/area/l/a".to_string());
    assert_eq!(want[&window0].1.micro_stops, 1);
    assert_eq!(want[&window0].1.micro_stop_ms, 10_000);
    let late = number(late);
    for (workers, batch) in [(1, 1), (2, 1), (1, 1000), (3, 7)] {
        let got = run(&late, workers, batch);
        assert_eq!(
            got[&window0].1, want[&window0].1,
            "-w {workers}, batches of {batch}: window 0 of a"
        );
        assert!(got[&window0].0 > 0, "a correction");
    }
}

/// Late data older than the windows kept for corrections cannot be
/// replayed: it is dropped, and counted in `Pipeline::late_dropped` (shown
/// as `PipelineMetrics::late_dropped`), never lost silently.
#[test]
fn data_too_late_to_replay_is_counted() {
    for workers in [1, 2] {
        let mut obs = admitted(observations());
        let i = obs
            .iter()
            .position(|o| o.role == Role::PowerKw)
            .expect("a power reading");
        let mut late = obs.remove(i);
        let newest = obs.iter().map(|o| o.ts_ms).max().expect("data");
        late.watermark_ms = Some(newest - 30_000);
        obs.push(late);
        let mut cfg = run_with_cfg(workers);
        // No kept windows: nothing can be corrected.
        cfg.accum.correction_horizon_ms = 0;
        let (input, pipeline) = start(cfg).expect("pipeline starts");
        let dropped = pipeline.late_dropped.clone();
        let feeder = std::thread::spawn(move || {
            input
                .blocking_send(Batch {
                    observations: obs,
                    watermark_ms: Some(newest - 30_000),
                })
                .expect("send");
            input.finish();
        });
        let outputs = finish(pipeline, feeder);
        assert_eq!(outputs.len(), 10, "every window closes");
        assert_eq!(
            dropped.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "{workers} worker(s)"
        );
    }
}
