//! # ctower-sim: a deterministic plant simulator
//!
//! Generates the MQTT telemetry of a group of plants, exactly as the
//! factories would publish it under the telemetry contract
//! (README, "Telemetry contract"): topics
//! `{enterprise}/{site}/{area}/{line}/{asset}/{signal}`, JSON payloads
//! `{"ts":<ms>,"value":…}`, written as a replay file
//! ([`ctower_model::ReplayWriter`]). The recording drives the default demo,
//! the tests of the pipeline and the tuning of alarm rules, so it contains
//! realistic normal operation (shift calendars in each site's time zone,
//! breaks, changeovers, micro-stops, a PLC counter reset), four scripted
//! incidents that the default alarm rules must catch ([`IncidentKind`]),
//! late and out-of-order delivery, and malformed messages. On request
//! ([`SimConfig::very_late_per_hour`]) a few real messages also arrive
//! minutes late, beyond the pipeline's allowed lateness; the summary lists
//! them ([`SimSummary::very_late_messages`]).
//!
//! Besides recordings, [`edge`] simulates a plant live: [`EdgePlant`], a
//! pure Sparkplug B edge node with a small utility plant behind it that
//! obeys parameter writes (NCMD/DCMD) and reports their read-back at once,
//! for a driver to publish over MQTT.
//!
//! Same [`SimConfig`] → byte-identical output: all randomness comes from a
//! seeded SplitMix64 generator, nothing depends on the wall clock, on hash
//! map order or on threads. Records are streamed out in receive-time order
//! through a small reorder buffer, so memory stays flat for long recordings.
//!
//! ```
//! let cfg = ctower_sim::SimConfig { hours: 0.05, plants: 1, ..Default::default() };
//! let mut w = ctower_model::ReplayWriter::new(Vec::new()).unwrap();
//! let summary = ctower_sim::simulate(&cfg, &mut w).unwrap();
//! let bytes = w.finish().unwrap();
//! assert!(summary.messages > 0 && !bytes.is_empty());
//! ```

mod assets;
mod calendar;
pub mod edge;
mod malformed;
mod plant;
mod rng;
mod sink;
mod timeline;
mod very_late;

pub use edge::{
    AcceptedWrite, CommandMetric, CommandOutcome, EdgeCommand, EdgeConfig, EdgeError, EdgeKind,
    EdgeMessage, EdgeMetric, EdgePlant, EdgeType, EdgeValue, Refusal, RefuseReason,
};
pub use plant::PRODUCTS;

use ctower_model::ReplayWriter;
use std::io::Write;

/// 2026-03-02T05:00:00Z: 06:00 in Lyon and Basel, 13:00 in Shanghai.
pub const DEFAULT_START_MS: i64 = 1_772_427_600_000;

/// Longest recording accepted, hours (a year).
pub const MAX_HOURS: f64 = 24.0 * 366.0;
/// Most plants accepted.
pub const MAX_PLANTS: usize = 10_000;
/// Most very-late messages accepted per plant and hour (one a second).
pub const MAX_VERY_LATE_PER_HOUR: u32 = 3_600;

/// What to simulate: how many plants, how long, from when, with which seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice; the scripted incidents do not depend on it.
    pub seed: u64,
    /// Length of the recording, hours.
    pub hours: f64,
    /// Number of plants; they cycle through the archetypes lyon-fill,
    /// basel-api, shanghai-pack (plant 3 is `lyon-fill-2`, …).
    pub plants: usize,
    /// Start of the recording, ms since the Unix epoch (UTC).
    pub start_ms: i64,
    /// Leave out the malformed messages (late delivery stays).
    pub clean: bool,
    /// First topic level.
    pub enterprise: String,
    /// Real messages per plant and hour of recording delivered very late:
    /// 2–10 min after their event time, far beyond the pipeline's allowed
    /// lateness (30 s) and after newer messages. 0 (the default) turns this
    /// off and leaves the recording exactly as without it; any other value
    /// changes only the delivery time of the chosen messages.
    pub very_late_per_hour: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            hours: 2.0,
            plants: 3,
            start_ms: DEFAULT_START_MS,
            clean: false,
            enterprise: "acme".to_string(),
            very_late_per_hour: 0,
        }
    }
}

impl SimConfig {
    /// End of the recording (exclusive), ms since the epoch.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + (self.hours * 3_600_000.0).round() as i64
    }

    /// Checks the ranges (plants, hours, start, enterprise, very-late
    /// rate) before anything is generated.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::InvalidConfig(m));
        if self.plants == 0 || self.plants > MAX_PLANTS {
            return bad(format!(
                "plants must be between 1 and {MAX_PLANTS}, not {}",
                self.plants
            ));
        }
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= MAX_HOURS) {
            return bad(format!(
                "hours must be > 0 and at most {MAX_HOURS}, not {}",
                self.hours
            ));
        }
        if self.end_ms() - self.start_ms < 1_000 {
            return bad(format!("hours {} is shorter than a second", self.hours));
        }
        let e = &self.enterprise;
        if e.is_empty()
            || e.chars()
                .any(|c| matches!(c, '/' | '+' | '#') || c.is_control())
        {
            return bad(format!(
                "enterprise `{e}` must be one non-empty topic level (no `/`, `+`, `#`)"
            ));
        }
        if self.very_late_per_hour > MAX_VERY_LATE_PER_HOUR {
            return bad(format!(
                "very late messages per hour must be at most {MAX_VERY_LATE_PER_HOUR}, not {}",
                self.very_late_per_hour
            ));
        }
        // Keep every timestamp well inside what the contract accepts.
        if !(0..=4_000_000_000_000).contains(&self.start_ms) {
            return bad(format!("start {} is outside 1970..2096", self.start_ms));
        }
        Ok(())
    }
}

/// The scripted incidents. Each trips one rule of the default alarm
/// configuration (windows of 60 s):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IncidentKind {
    /// A line is `stopped` with reason `breakdown` for 25–30 min during a
    /// shift: line `availability < 0.5` for 10 min.
    Breakdown,
    /// RO recovery drifts from ~0.85 to ~0.60 over 30 min, stays low 10 min,
    /// then a 15-min CIP (feed stopped) restores it: site `water_recovery < 0.70`
    /// for 5 min.
    MembraneFouling,
    /// A line in `no_shift` draws ~40 kW instead of ~4 kW for 30 min, then
    /// drops back to standby while still off shift: line `standby_kw > 15`
    /// for 10 min.
    NightEnergyLeak,
    /// A whole site publishes nothing for 15 min, then resumes with a full
    /// snapshot (counters and meters jumped): site `data_coverage < 0.5` for 2 min.
    SilentSource,
}

impl IncidentKind {
    /// The incident's name in summaries and tests (`breakdown`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Breakdown => "breakdown",
            IncidentKind::MembraneFouling => "membrane_fouling",
            IncidentKind::NightEnergyLeak => "night_energy_leak",
            IncidentKind::SilentSource => "silent_source",
        }
    }
}

/// One scripted incident, [start_ms, end_ms) in event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// What happens.
    pub kind: IncidentKind,
    /// The site it happens at.
    pub site: String,
    /// Empty for a site-wide incident ([`IncidentKind::SilentSource`]).
    pub area: String,
    /// Empty for a site-wide incident.
    pub line: String,
    /// Start, ms since the epoch (event time).
    pub start_ms: i64,
    /// End (exclusive), ms since the epoch (event time).
    pub end_ms: i64,
}

/// The scripted PLC counter reset: at `at_ms` the three counters of this
/// asset drop to 0 and count on from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterReset {
    /// The asset's site.
    pub site: String,
    /// Its area.
    pub area: String,
    /// Its line.
    pub line: String,
    /// The asset.
    pub asset: String,
    /// When the counters drop to 0, ms since the epoch (event time).
    pub at_ms: i64,
}

/// What a simulation wrote: counts, the scripted incidents and the
/// counter reset, for checking what the pipeline makes of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimSummary {
    /// Records written, malformed ones included.
    pub messages: u64,
    /// Malformed records among them.
    pub malformed: u64,
    /// Real messages delivered 5–25 s after their event time.
    pub late: u64,
    /// Real messages delivered 2–10 min after their event time (only with
    /// [`SimConfig::very_late_per_hour`]); not counted in `late`.
    pub very_late: u64,
    /// Those messages, by event time (then topic).
    pub very_late_messages: Vec<VeryLateMessage>,
    /// Scripted incidents, by start time.
    pub incidents: Vec<Incident>,
    /// The one scripted counter reset (none if the recording is too short).
    pub counter_reset: Option<CounterReset>,
}

/// A real message delivered very late. Its event time falls in the window
/// `ts - ts % window_ms`, which was closed long before it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeryLateMessage {
    /// Its site.
    pub site: String,
    /// Its topic.
    pub topic: String,
    /// Event time (the payload's `ts`), ms since the epoch.
    pub ts: i64,
    /// Receive time (the record's `t_ms`), ms since the epoch.
    pub t_ms: i64,
}

impl SimSummary {
    /// Very-late messages per site.
    pub fn very_late_per_site(&self) -> std::collections::BTreeMap<&str, u64> {
        let mut out = std::collections::BTreeMap::new();
        for m in &self.very_late_messages {
            *out.entry(m.site.as_str()).or_insert(0) += 1;
        }
        out
    }
}

/// Every error of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A [`SimConfig`] out of range (what is wrong, for the user).
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// The recording could not be written.
    #[error("writing the replay file: {0}")]
    Io(#[from] std::io::Error),
}

/// Generation step: every asset advances to the end of a step, then all
/// records received before it are written.
const STEP_MS: i64 = 10_000;

/// How far a simulation has got, reported after each 10 s step of plant
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimProgress {
    /// Plant time simulated so far, ms.
    pub done_ms: i64,
    /// Plant time to simulate in all, ms.
    pub total_ms: i64,
    /// Records written so far.
    pub messages: u64,
}

/// Simulates the recording described by `cfg` into `out`, sorted by receive
/// time. Call [`ReplayWriter::finish`] afterwards.
pub fn simulate<W: Write>(
    cfg: &SimConfig,
    out: &mut ReplayWriter<W>,
) -> Result<SimSummary, SimError> {
    simulate_with_progress(cfg, out, |_| {})
}

/// [`simulate`], calling `progress` after each step (the recording is the
/// same byte for byte).
pub fn simulate_with_progress<W: Write>(
    cfg: &SimConfig,
    out: &mut ReplayWriter<W>,
    mut progress: impl FnMut(SimProgress),
) -> Result<SimSummary, SimError> {
    cfg.validate()?;
    let (t0, end) = (cfg.start_ms, cfg.end_ms());
    let plan = plant::build(cfg, end);
    let mut plants = plan.plants;
    let bad = if cfg.clean {
        Vec::new()
    } else {
        malformed::plan(cfg, &plants, end)
    };
    let very_late = very_late::plan(cfg, &plants, end);
    let mut sink = sink::Sink::new(
        rng::Rng::derive(cfg.seed, &[plant::STREAM_LATENCY]),
        very_late,
    );
    let mut bad_i = 0;
    let mut c = t0;
    while c < end {
        let until = (c + STEP_MS).min(end);
        for p in &mut plants {
            p.run(until, &mut sink);
        }
        while let Some(b) = bad.get(bad_i).filter(|b| b.ts < until) {
            sink.push(b.t_ms, b.topic.clone(), b.payload.clone());
            bad_i += 1;
        }
        // Everything generated later is received at or after `until`.
        sink.flush_before(until, out)?;
        c = until;
        progress(SimProgress {
            done_ms: c - t0,
            total_ms: end - t0,
            messages: sink.written,
        });
    }
    sink.flush_all(out)?;
    let mut very_late_messages: Vec<VeryLateMessage> = sink
        .very_late
        .drain(..)
        .map(|(k, topic, ts, t_ms)| VeryLateMessage {
            site: plants[k].site.clone(),
            topic,
            ts,
            t_ms,
        })
        .collect();
    very_late_messages.sort_by(|a, b| (a.ts, &a.topic).cmp(&(b.ts, &b.topic)));
    Ok(SimSummary {
        messages: sink.written,
        malformed: bad.len() as u64,
        late: sink.late,
        very_late: very_late_messages.len() as u64,
        very_late_messages,
        incidents: plan.incidents,
        counter_reset: plan.counter_reset,
    })
}

/// One site of a simulated group, for building a matching configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// The site's name (the topic's second level).
    pub site: String,
    /// IANA time zone of the shift calendar.
    pub time_zone: &'static str,
    /// Production lines: (area, line, machine asset, products).
    pub lines: Vec<LineInfo>,
    /// Whether the site has the HVAC energy meter `utilities/hvac/ahu`.
    /// Every site has the RO skid `utilities/ro-1/skid`.
    pub hvac: bool,
}

/// One production line of a simulated site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// Its area.
    pub area: &'static str,
    /// The line.
    pub line: &'static str,
    /// Its machine asset (the one with state, counters and energy).
    pub asset: &'static str,
    /// The products it makes (names as in the configuration's `[products]`).
    pub products: Vec<&'static str>,
}

/// The sites that [`simulate`] generates for `plants` plants.
pub fn sites(plants: usize) -> Vec<SiteInfo> {
    (0..plants)
        .map(|k| {
            let a = &plant::ARCHETYPES[k % plant::ARCHETYPES.len()];
            SiteInfo {
                site: plant::site_name(k),
                time_zone: a.time_zone,
                lines: a
                    .lines
                    .iter()
                    .map(|l| LineInfo {
                        area: l.area,
                        line: l.line,
                        asset: l.asset,
                        products: l.product_names(),
                    })
                    .collect(),
                hvac: a.hvac,
            }
        })
        .collect()
}
