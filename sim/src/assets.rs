//! The physical model of each asset and what it publishes.
//!
//! Each asset advances its physics (production, energy, water) to the time
//! of its next event, then publishes. Events of one asset are handled in
//! time order; equal times in a fixed order, so the output is deterministic.

use crate::rng::Rng;
use crate::sink::{self, Sink};
use crate::timeline::{Seg, St};
use crate::PRODUCTS;

/// Cadence of counters, meters and RO volumes.
pub(crate) const TICK_MS: i64 = 10_000;
/// State (and product) heartbeat: republished when unchanged this long.
pub(crate) const HEARTBEAT_MS: i64 = 300_000;
/// Power drawn during the scripted night energy leak, kW.
pub(crate) const LEAK_KW: f64 = 40.0;

const MS_PER_HOUR: f64 = 3_600_000.0;

/// First periodic publication after `t0`: a per-asset phase in [0.1 s, 9.9 s).
fn phase(rng: &mut Rng, t0: i64) -> i64 {
    t0 + rng.range_i64(100, 9_900)
}

/// Time of the next entry of a sorted list, or never.
fn next_of(list: &[i64], i: usize) -> i64 {
    list.get(i).copied().unwrap_or(i64::MAX)
}

pub(crate) struct LineTopics {
    pub(crate) state: String,
    pub(crate) product: String,
    pub(crate) total: String,
    pub(crate) good: String,
    pub(crate) reject: String,
    pub(crate) energy: String,
    pub(crate) power: String,
}

/// What a production line is scripted to do (built by the planner).
pub(crate) struct LineScript {
    pub(crate) segs: Vec<Seg>,
    /// Times at which the state or the leak changes (segment starts).
    pub(crate) changes: Vec<i64>,
    /// `(from, index into PRODUCTS)`, sorted, the first at t0.
    pub(crate) products: Vec<(i64, usize)>,
    pub(crate) reset_at: Option<i64>,
    pub(crate) run_kw: f64,
    pub(crate) standby_kw: f64,
}

/// A production line: one machine asset (state, product, counters) and its
/// energy meter asset `meter` (energy_kwh, power_kw).
pub(crate) struct Line {
    topics: LineTopics,
    script: LineScript,
    rng: Rng,
    // physics
    t: i64,
    seg_i: usize,
    prod_i: usize,
    units_f: f64,
    reject_acc: f64,
    total: u64,
    good: u64,
    reject: u64,
    energy_kwh: f64,
    perf: f64,
    reject_rate: f64,
    noise: f64,
    // schedule
    next_count: i64,
    next_meter: i64,
    change_i: usize,
    snap_i: usize,
    last_state_pub: i64,
}

impl Line {
    pub(crate) fn new(topics: LineTopics, script: LineScript, mut rng: Rng, t0: i64) -> Self {
        let perf = rng.range(0.86, 0.93);
        let reject_rate = rng.range(0.008, 0.02);
        let noise = rng.range(0.97, 1.03);
        let next_count = phase(&mut rng, t0);
        let next_meter = phase(&mut rng, t0);
        Line {
            topics,
            script,
            rng,
            t: t0,
            seg_i: 0,
            prod_i: 0,
            units_f: 0.0,
            reject_acc: 0.0,
            total: 0,
            good: 0,
            reject: 0,
            energy_kwh: 0.0,
            perf,
            reject_rate,
            noise,
            next_count,
            next_meter,
            change_i: 0,
            snap_i: 0,
            last_state_pub: t0,
        }
    }

    pub(crate) fn state_topic(&self) -> &str {
        &self.topics.state
    }

    pub(crate) fn numeric_topics(&self) -> [&str; 5] {
        let t = &self.topics;
        [&t.total, &t.good, &t.reject, &t.energy, &t.power]
    }

    fn power_kw(&self, st: St, leak: bool) -> f64 {
        let base = match st {
            St::Running => self.script.run_kw * (0.9 + 1.2 * (self.perf - 0.84)),
            St::Changeover => self.script.standby_kw * 1.3,
            _ if leak => LEAK_KW,
            _ => self.script.standby_kw,
        };
        base * self.noise
    }

    fn product(&self) -> usize {
        self.script.products[self.prod_i].1
    }

    /// Integrates production and energy up to `t`.
    fn advance(&mut self, t: i64) {
        while self.t < t {
            let Seg { end, st, leak, .. } = self.script.segs[self.seg_i];
            while self
                .script
                .products
                .get(self.prod_i + 1)
                .is_some_and(|p| p.0 <= self.t)
            {
                self.prod_i += 1;
            }
            let b = end.min(t);
            let dt = (b - self.t) as f64;
            self.energy_kwh += self.power_kw(st, leak) * dt / MS_PER_HOUR;
            if st == St::Running {
                self.units_f += dt / 1000.0 * self.perf / PRODUCTS[self.product()].1;
            }
            self.t = b;
            if b == end && self.seg_i + 1 < self.script.segs.len() {
                self.seg_i += 1;
            }
        }
        while self
            .script
            .products
            .get(self.prod_i + 1)
            .is_some_and(|p| p.0 <= self.t)
        {
            self.prod_i += 1;
        }
        let n = self.units_f.floor();
        if n >= 1.0 {
            self.units_f -= n;
            let n = n as u64;
            self.reject_acc += n as f64 * self.reject_rate;
            let r = (self.reject_acc.floor() as u64).min(n);
            self.reject_acc -= r as f64;
            self.total += n;
            self.reject += r;
            self.good += n - r;
        }
    }

    pub(crate) fn run(
        &mut self,
        until: i64,
        snapshots: &[i64],
        silent: &[(i64, i64)],
        out: &mut Sink,
    ) {
        loop {
            let snap = next_of(snapshots, self.snap_i);
            let change = next_of(&self.script.changes, self.change_i);
            let reset = self.script.reset_at.unwrap_or(i64::MAX);
            let hb = self.last_state_pub + HEARTBEAT_MS;
            let t = snap
                .min(change)
                .min(reset)
                .min(self.next_count)
                .min(self.next_meter)
                .min(hb);
            if t >= until {
                return;
            }
            self.advance(t);
            let (mut st_pub, mut prod_pub, mut counts_pub, mut meter_pub) =
                (false, false, false, false);
            if snap == t {
                self.snap_i += 1;
                (st_pub, prod_pub, counts_pub, meter_pub) = (true, true, true, true);
            }
            if change == t {
                // A state or leak boundary: meter always (so a window's energy
                // never carries the previous state's power), state and
                // counters when the state changes.
                self.change_i += 1;
                meter_pub = true;
                let segs = &self.script.segs;
                if self.seg_i == 0 || segs[self.seg_i - 1].st != segs[self.seg_i].st {
                    st_pub = true;
                    counts_pub = true;
                }
            }
            if reset == t {
                self.script.reset_at = None;
                (self.total, self.good, self.reject) = (0, 0, 0);
                counts_pub = true;
            }
            if self.next_count == t {
                self.next_count += TICK_MS;
                self.perf = self.rng.walk(self.perf, 0.004, 0.84, 0.95);
                self.reject_rate = self.rng.walk(self.reject_rate, 0.0008, 0.006, 0.025);
                counts_pub = true;
            }
            if self.next_meter == t {
                self.next_meter += TICK_MS;
                self.noise = self.rng.walk(self.noise, 0.01, 0.94, 1.06);
                meter_pub = true;
            }
            if hb == t {
                st_pub = true;
            }
            // The product goes with every state message, so it is never
            // older than a heartbeat.
            prod_pub |= st_pub;
            self.publish(t, [st_pub, prod_pub, counts_pub, meter_pub], silent, out);
        }
    }

    /// Publishes at `t` what `[state, product, counts, meter]` say.
    fn publish(&mut self, t: i64, what: [bool; 4], silent: &[(i64, i64)], out: &mut Sink) {
        let [st_pub, prod_pub, counts_pub, meter_pub] = what;
        if st_pub {
            self.last_state_pub = t;
            let st = self.script.segs[self.seg_i].st;
            out.emit(silent, t, &self.topics.state, sink::state(t, st));
        }
        if prod_pub {
            let p = PRODUCTS[self.product()].0;
            out.emit(silent, t, &self.topics.product, sink::text(t, p));
        }
        if counts_pub {
            out.emit(silent, t, &self.topics.total, sink::int(t, self.total));
            out.emit(silent, t, &self.topics.good, sink::int(t, self.good));
            out.emit(silent, t, &self.topics.reject, sink::int(t, self.reject));
        }
        if meter_pub {
            let seg = &self.script.segs[self.seg_i];
            let p = self.power_kw(seg.st, seg.leak);
            let energy = sink::num(t, self.energy_kwh, 3);
            out.emit(silent, t, &self.topics.energy, energy);
            out.emit(silent, t, &self.topics.power, sink::num(t, p, 2));
        }
    }
}

/// Scripted membrane fouling of an RO skid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fouling {
    /// Recovery starts to drift down from normal.
    pub(crate) start: i64,
    /// Drift complete: recovery ~0.60 from here.
    pub(crate) drift_end: i64,
    /// CIP starts: feed stops.
    pub(crate) cip_start: i64,
    /// CIP done: feed resumes at normal recovery.
    pub(crate) cip_end: i64,
}

/// Recovery lost at the bottom of the fouling (0.85 → 0.60).
const FOULING_DROP: f64 = 0.25;

/// A reverse-osmosis skid `utilities/ro-1/skid`.
pub(crate) struct Ro {
    /// feed, permeate, concentrate, conductivity, toc, temperature.
    topics: [String; 6],
    fouling: Option<Fouling>,
    rng: Rng,
    t: i64,
    feed_m3h: f64,
    rec_nom: f64,
    feed_m3: f64,
    permeate_m3: f64,
    conductivity: f64,
    toc: f64,
    temperature: f64,
    next_tick: i64,
    tick_n: u64,
    snap_i: usize,
}

impl Ro {
    pub(crate) fn new(
        topics: [String; 6],
        fouling: Option<Fouling>,
        mut rng: Rng,
        t0: i64,
    ) -> Self {
        let next_tick = phase(&mut rng, t0);
        Ro {
            topics,
            fouling,
            t: t0,
            feed_m3h: rng.range(9.0, 11.0),
            rec_nom: rng.range(0.84, 0.86),
            feed_m3: 0.0,
            permeate_m3: 0.0,
            conductivity: rng.range(0.5, 0.8),
            toc: rng.range(110.0, 200.0),
            temperature: rng.range(21.5, 23.5),
            rng,
            next_tick,
            tick_n: 0,
            snap_i: 0,
        }
    }

    pub(crate) fn numeric_topics(&self) -> &[String] {
        &self.topics
    }

    fn recovery_at(&self, t: i64) -> f64 {
        let drop = match self.fouling {
            Some(f) if (f.start..f.drift_end).contains(&t) => {
                FOULING_DROP * (t - f.start) as f64 / (f.drift_end - f.start) as f64
            }
            Some(f) if (f.drift_end..f.cip_end).contains(&t) => FOULING_DROP,
            _ => 0.0,
        };
        self.rec_nom - drop
    }

    fn in_cip(&self, t: i64) -> bool {
        self.fouling
            .is_some_and(|f| (f.cip_start..f.cip_end).contains(&t))
    }

    fn advance(&mut self, t: i64) {
        while self.t < t {
            let mut b = t;
            if let Some(f) = self.fouling {
                for x in [f.cip_start, f.cip_end] {
                    if x > self.t && x < b {
                        b = x;
                    }
                }
            }
            if !self.in_cip(self.t) {
                let dv = self.feed_m3h * (b - self.t) as f64 / MS_PER_HOUR;
                self.feed_m3 += dv;
                self.permeate_m3 += dv * self.recovery_at(self.t);
            }
            self.t = b;
        }
    }

    pub(crate) fn run(
        &mut self,
        until: i64,
        snapshots: &[i64],
        silent: &[(i64, i64)],
        out: &mut Sink,
    ) {
        loop {
            let snap = next_of(snapshots, self.snap_i);
            let t = snap.min(self.next_tick);
            if t >= until {
                return;
            }
            self.advance(t);
            let (mut volumes, mut quality) = (false, false);
            if snap == t {
                self.snap_i += 1;
                (volumes, quality) = (true, true);
            }
            if self.next_tick == t {
                self.next_tick += TICK_MS;
                self.tick_n += 1;
                self.feed_m3h = self.rng.walk(self.feed_m3h, 0.05, 8.5, 11.5);
                self.rec_nom = self.rng.walk(self.rec_nom, 0.002, 0.83, 0.87);
                volumes = true;
                if self.tick_n % 3 == 0 {
                    self.conductivity = self.rng.walk(self.conductivity, 0.02, 0.45, 0.85);
                    self.toc = self.rng.walk(self.toc, 4.0, 90.0, 230.0);
                    self.temperature = self.rng.walk(self.temperature, 0.08, 21.0, 24.0);
                    quality = true;
                }
            }
            if volumes {
                let feed = (self.feed_m3 * 10_000.0).round() as i64;
                let permeate = (self.permeate_m3 * 10_000.0).round() as i64;
                let concentrate = feed - permeate;
                for (topic, x) in self.topics[..3].iter().zip([feed, permeate, concentrate]) {
                    out.emit(silent, t, topic, sink::fixed4(t, x));
                }
            }
            if quality {
                let vals = [(self.conductivity, 3), (self.toc, 1), (self.temperature, 2)];
                for (topic, (v, d)) in self.topics[3..].iter().zip(vals) {
                    out.emit(silent, t, topic, sink::num(t, v, d));
                }
            }
        }
    }
}

/// An energy-only asset: the air-handling unit `utilities/hvac/ahu`.
pub(crate) struct Hvac {
    /// energy_kwh, power_kw.
    topics: [String; 2],
    rng: Rng,
    t: i64,
    power_kw: f64,
    energy_kwh: f64,
    next_tick: i64,
    snap_i: usize,
}

impl Hvac {
    pub(crate) fn new(topics: [String; 2], mut rng: Rng, t0: i64) -> Self {
        let next_tick = phase(&mut rng, t0);
        Hvac {
            topics,
            power_kw: rng.range(78.0, 95.0),
            rng,
            t: t0,
            energy_kwh: 0.0,
            next_tick,
            snap_i: 0,
        }
    }

    pub(crate) fn numeric_topics(&self) -> &[String] {
        &self.topics
    }

    pub(crate) fn run(
        &mut self,
        until: i64,
        snapshots: &[i64],
        silent: &[(i64, i64)],
        out: &mut Sink,
    ) {
        loop {
            let snap = next_of(snapshots, self.snap_i);
            let t = snap.min(self.next_tick);
            if t >= until {
                return;
            }
            self.energy_kwh += self.power_kw * (t - self.t) as f64 / MS_PER_HOUR;
            self.t = t;
            if snap == t {
                self.snap_i += 1;
            }
            if self.next_tick == t {
                self.next_tick += TICK_MS;
                self.power_kw = self.rng.walk(self.power_kw, 1.5, 65.0, 115.0);
            }
            out.emit(silent, t, &self.topics[0], sink::num(t, self.energy_kwh, 3));
            out.emit(silent, t, &self.topics[1], sink::num(t, self.power_kw, 2));
        }
    }
}
