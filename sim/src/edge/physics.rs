//! The small utility plant behind the edge node: a reverse-osmosis unit, an
//! HVAC unit and a packaging line, advanced together in fixed steps of
//! [`STEP_MS`] so that the state at a given time does not depend on how
//! often the caller asked for it.
//!
//! Each unit draws its noise from its own random stream, a fixed number of
//! draws per step (the line: one per unit made), so a write to one unit
//! never shifts the noise of another.

use crate::rng::Rng;

/// Physics step, ms. Every state is the state at a step boundary.
pub(super) const STEP_MS: i64 = 100;
const STEP_S: f64 = STEP_MS as f64 / 1000.0;
const STEP_H: f64 = STEP_MS as f64 / 3_600_000.0;

/// Nominal RO feed flow, m³/h.
pub(super) const RO_FEED_M3_H: f64 = 12.0;
/// Time constant of the RO recovery following its setpoint, s.
pub(super) const RO_TAU_S: f64 = 20.0;
/// RO recovery setpoint at start, %.
pub(super) const RO_SETPOINT_PCT: f64 = 75.0;
/// HVAC temperature setpoint at start, °C.
pub(super) const HVAC_SETPOINT_C: f64 = 21.0;
/// Time constant of the HVAC temperature following its setpoint, s.
pub(super) const HVAC_TAU_S: f64 = 60.0;
/// Line speed limit at start, units per minute.
pub(super) const LINE_SPEED_UPM: i64 = 120;
/// The line's product.
pub(super) const LINE_PRODUCT: &str = "blister-10";
/// Power of the running line at its default speed, kW.
pub(super) const LINE_RUN_KW: f64 = 45.0;
/// Power of the line in night standby, kW.
pub(super) const LINE_STANDBY_KW: f64 = 4.0;
/// Share of the units made that are rejected.
pub(super) const LINE_REJECT_RATE: f64 = 0.01;

/// Random stream tags (under the plant's seed).
const STREAM_RO: u64 = 0xED6E_0001;
const STREAM_HVAC: u64 = 0xED6E_0002;
const STREAM_LINE: u64 = 0xED6E_0003;

/// Share of the step a first-order lag with time constant `tau_s` covers.
fn lag(tau_s: f64) -> f64 {
    1.0 - (-STEP_S / tau_s).exp()
}

/// Reverse osmosis `ro-1`: cumulative feed, permeate and concentrate meters.
#[derive(Debug, Clone)]
pub(super) struct Ro {
    rng: Rng,
    /// Relative deviation of the feed flow from nominal (a bounded walk).
    flow_noise: f64,
    /// Conductivity noise, µS/cm (a bounded walk).
    cond_noise: f64,
    /// Actual recovery, a fraction; follows the setpoint with a lag.
    pub(super) recovery: f64,
    /// Recovery setpoint, %.
    pub(super) setpoint_pct: f64,
    pub(super) feed_m3: f64,
    pub(super) permeate_m3: f64,
    pub(super) concentrate_m3: f64,
}

impl Ro {
    fn new(seed: u64) -> Self {
        Ro {
            rng: Rng::derive(seed, &[STREAM_RO]),
            flow_noise: 0.0,
            cond_noise: 0.0,
            recovery: RO_SETPOINT_PCT / 100.0,
            setpoint_pct: RO_SETPOINT_PCT,
            feed_m3: 0.0,
            permeate_m3: 0.0,
            concentrate_m3: 0.0,
        }
    }

    fn step(&mut self) {
        self.flow_noise = self.rng.walk(self.flow_noise, 0.002, -0.03, 0.03);
        self.cond_noise = self.rng.walk(self.cond_noise, 0.001, -0.02, 0.02);
        self.recovery += (self.setpoint_pct / 100.0 - self.recovery) * lag(RO_TAU_S);
        let feed = RO_FEED_M3_H * (1.0 + self.flow_noise) * STEP_H;
        let permeate = feed * self.recovery;
        self.feed_m3 += feed;
        self.permeate_m3 += permeate;
        self.concentrate_m3 += feed - permeate;
    }

    /// Permeate conductivity, µS/cm: rises slightly with recovery (the
    /// membrane passes more salt as the concentrate side gets saltier):
    /// about 1.15 at 75 %, close to the USP <645> limit of 1.3 at 85 %.
    pub(super) fn conductivity_us_cm(&self) -> f64 {
        0.1 + 1.4 * self.recovery + self.cond_noise
    }
}

/// HVAC `hvac-1`: the colder the setpoint, the more power.
#[derive(Debug, Clone)]
pub(super) struct Hvac {
    rng: Rng,
    noise: f64,
    /// Temperature setpoint, °C.
    pub(super) setpoint_c: f64,
    /// Room temperature, °C; follows the setpoint with a lag.
    pub(super) temp_c: f64,
    pub(super) energy_kwh: f64,
}

impl Hvac {
    fn new(seed: u64) -> Self {
        Hvac {
            rng: Rng::derive(seed, &[STREAM_HVAC]),
            noise: 0.0,
            setpoint_c: HVAC_SETPOINT_C,
            temp_c: HVAC_SETPOINT_C,
            energy_kwh: 0.0,
        }
    }

    fn step(&mut self) {
        self.noise = self.rng.walk(self.noise, 0.002, -0.02, 0.02);
        self.temp_c += (self.setpoint_c - self.temp_c) * lag(HVAC_TAU_S);
        self.energy_kwh += self.power_kw() * STEP_H;
    }

    /// 30 kW, plus 4 kW per °C of setpoint below 24 °C.
    pub(super) fn power_kw(&self) -> f64 {
        (30.0 + 4.0 * (24.0 - self.setpoint_c).max(0.0)) * (1.0 + self.noise)
    }
}

/// Packaging line `line-1`: makes units at its speed limit unless in
/// standby.
#[derive(Debug, Clone)]
pub(super) struct Line {
    rng: Rng,
    noise: f64,
    /// Production not yet counted, in units × ms / min (exact: a unit is
    /// counted when this reaches 60 000).
    carry: i64,
    /// Speed limit, units per minute.
    pub(super) speed_upm: i64,
    /// Night standby: no production, standby power.
    pub(super) standby: bool,
    pub(super) total: u64,
    pub(super) good: u64,
    pub(super) reject: u64,
    pub(super) energy_kwh: f64,
}

impl Line {
    fn new(seed: u64) -> Self {
        Line {
            rng: Rng::derive(seed, &[STREAM_LINE]),
            noise: 0.0,
            carry: 0,
            speed_upm: LINE_SPEED_UPM,
            standby: false,
            total: 0,
            good: 0,
            reject: 0,
            energy_kwh: 0.0,
        }
    }

    fn step(&mut self) {
        self.noise = self.rng.walk(self.noise, 0.002, -0.02, 0.02);
        if !self.standby {
            self.carry += self.speed_upm * STEP_MS;
            let n = self.carry / 60_000;
            self.carry %= 60_000;
            for _ in 0..n {
                self.total += 1;
                if self.rng.chance(LINE_REJECT_RATE) {
                    self.reject += 1;
                } else {
                    self.good += 1;
                }
            }
        }
        self.energy_kwh += self.power_kw() * STEP_H;
    }

    /// Running: 25 kW plus 20 kW at the default speed (45 kW), in
    /// proportion to speed; standby: 4 kW.
    pub(super) fn power_kw(&self) -> f64 {
        let base = if self.standby {
            LINE_STANDBY_KW
        } else {
            let speed = self.speed_upm as f64 / LINE_SPEED_UPM as f64;
            25.0 + (LINE_RUN_KW - 25.0) * speed
        };
        base * (1.0 + self.noise)
    }

    /// The `state` code: `running`, or `break` (a planned stop) in standby.
    pub(super) fn state(&self) -> &'static str {
        if self.standby {
            "break"
        } else {
            "running"
        }
    }
}

/// The three units, stepped together.
#[derive(Debug, Clone)]
pub(super) struct Plant {
    pub(super) ro: Ro,
    pub(super) hvac: Hvac,
    pub(super) line: Line,
}

impl Plant {
    pub(super) fn new(seed: u64) -> Self {
        Plant {
            ro: Ro::new(seed),
            hvac: Hvac::new(seed),
            line: Line::new(seed),
        }
    }

    /// Advances every unit by one step of [`STEP_MS`].
    pub(super) fn step(&mut self) {
        self.ro.step();
        self.hvac.step();
        self.line.step();
    }
}
