//! A dashboard fed with made-up KPIs, to try the terminal loop by hand:
//! `cargo run -p ctower-tui --example demo` (quit with `q`).
//! With `--exit-after N` the feed stops after N windows and the dashboard
//! exits on the disconnect.

use ctower_model::kpi::KpiSums;
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmState, AssetKey, KpiRecord, Level, PipelineMetrics, Priority,
    Update,
};
use ctower_tui::{run, TuiOptions};
use std::sync::mpsc;
use std::time::Duration;

const MIN: i64 = 60_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let exit_after = args
        .iter()
        .position(|a| a == "--exit-after")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<u32>().ok());
    let (tx, rx) = mpsc::sync_channel(1_000);
    let feeder = std::thread::spawn(move || {
        let mut end = 1_741_083_300_000_i64;
        for n in 0u32.. {
            if exit_after.is_some_and(|max| n >= max) || feed_window(&tx, n, end).is_err() {
                break;
            }
            end += 15 * MIN;
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    run(
        rx,
        TuiOptions {
            title: "ctower demo".into(),
            exit_on_disconnect: exit_after.is_some(),
        },
    )?;
    let _ = feeder.join();
    Ok(())
}

/// The dashboard has quit.
struct Gone;

/// Window `n`, ending at `end`: line and site KPIs, an alarm, metrics.
fn feed_window(tx: &mpsc::SyncSender<Update>, n: u32, end: i64) -> Result<(), Gone> {
    let send = |u: Update| tx.send(u).map_err(|_| Gone);
    for (i, site) in ["cork", "lyon", "pune"].into_iter().enumerate() {
        let wobble = ((n as usize + i * 7) % 10) as i64;
        let mut site_sums = KpiSums::default();
        for line in ["line-1", "line-2"] {
            let sums = line_sums(wobble);
            site_sums.add(&sums);
            let scope = AssetKey::new(site, "packaging", line, "-").scope(Level::Line);
            send(Update::Kpi(Box::new(KpiRecord::new(
                end - 15 * MIN,
                end,
                scope,
                sums,
            ))))?;
        }
        site_sums.water_feed_m3 = Some(10.0);
        site_sums.water_permeate_m3 = Some(8.0 + 0.1 * wobble as f64);
        let scope = AssetKey::new(site, "-", "-", "-").scope(Level::Site);
        send(Update::Kpi(Box::new(KpiRecord::new(
            end - 15 * MIN,
            end,
            scope,
            site_sums,
        ))))?;
    }
    send(Update::Alarm(alarm(n, end)))?;
    send(Update::Metrics(PipelineMetrics {
        received: u64::from(n) * 1_000,
        accepted: u64::from(n) * 1_000,
        ingest_rate_per_s: 950.0 + f64::from(n % 7) * 10.0,
        watermark_ms: Some(end),
        watermark_lag_ms: 3_000,
        ..Default::default()
    }))
}

/// A line's sums for a 15-minute window, varied by `wobble` (0..10).
fn line_sums(wobble: i64) -> KpiSums {
    KpiSums {
        running_ms: (12 * MIN) - wobble * 20_000,
        unplanned_stop_ms: 3 * MIN + wobble * 20_000,
        produced: Some(1_400 - 10 * wobble as u64),
        good: Some(1_380 - 12 * wobble as u64),
        ideal_time_ms: 0.5 * 1_000.0 * (1_400 - 10 * wobble) as f64,
        energy_kwh: Some(10.0 + wobble as f64),
        power_kw: Some(40.0 + wobble as f64),
        ..Default::default()
    }
}

/// An OEE alarm on lyon's line 2, active two windows out of four.
fn alarm(n: u32, end: i64) -> AlarmEvent {
    AlarmEvent {
        ts_ms: end,
        rule: "oee_low".into(),
        scope: AssetKey::new("lyon", "packaging", "line-2", "-").scope(Level::Line),
        signal: None,
        kind: AlarmEventKind::Raised,
        state: if n % 4 < 2 {
            AlarmState::UnackActive
        } else {
            AlarmState::Normal
        },
        priority: Priority::High,
        metric: "oee".into(),
        value: Some(0.55),
        threshold: 0.6,
        message: "OEE below 60 %".into(),
    }
}
