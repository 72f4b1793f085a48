//! The plant archetypes and the planner that scripts a recording: shift
//! calendars, incidents, changeovers, micro-stops and the counter reset.

use crate::assets::{Fouling, Hvac, Line, LineScript, LineTopics, Ro};
use crate::calendar::{DayKind, DayPlan, Tz, MINUTE};
use crate::rng::Rng;
use crate::sink::Sink;
use crate::timeline::{Reason, St, Timeline};
use crate::{CounterReset, Incident, IncidentKind, SimConfig};

use DayKind::{Break as B, Run as R};

// Product indexes into `PRODUCTS`.
const VIAL_2ML: usize = 0;
const VIAL_10ML: usize = 1;
const LYO_2ML: usize = 2;
const LYO_10ML: usize = 3;
const PEP_A_SPPS: usize = 4;
const PEP_B_SPPS: usize = 5;
const PEP_A_HPLC: usize = 6;
const PEP_B_HPLC: usize = 7;
const BLISTER_10: usize = 8;
const BLISTER_14: usize = 9;
const CARTON_10: usize = 10;
const CARTON_28: usize = 11;

/// Product name → ideal cycle time in seconds (one unit), for the
/// configuration's product table. While running, lines make 84–95 % of the
/// ideal rate, so performance stays within 0.84–0.95.
pub const PRODUCTS: &[(&str, f64)] = &[
    ("vial-2ml", 0.15),        // filler, 400 vials/min ideal
    ("vial-10ml", 0.16),       // filler, 375 vials/min ideal
    ("lyo-2ml-tray", 100.0),   // freeze-dryer, one shelf tray per 100 s
    ("lyo-10ml-tray", 130.0),  // freeze-dryer
    ("pep-a-coupling", 240.0), // peptide synthesizer, one coupling cycle
    ("pep-b-coupling", 300.0), // peptide synthesizer
    ("pep-a-fraction", 90.0),  // preparative HPLC, one collected fraction
    ("pep-b-fraction", 120.0), // preparative HPLC
    ("blister-10ct", 0.20),    // blisterer, 300 cards/min ideal
    ("blister-14ct", 0.25),    // blisterer, 240 cards/min ideal
    ("carton-10ct", 0.40),     // cartoner, 150 cartons/min ideal
    ("carton-28ct", 0.50),     // cartoner, 120 cartons/min ideal
];

/// A production line of an archetype.
pub(crate) struct LineSpec {
    pub(crate) area: &'static str,
    pub(crate) line: &'static str,
    pub(crate) asset: &'static str,
    products: [usize; 2],
    plan: DayPlan,
    /// Typical power while running, kW.
    run_kw: f64,
    /// Jams (20–110 s) per hour.
    jams_per_h: f64,
    /// Other short unplanned stops (material shortage, door open) per hour.
    other_stops_per_h: f64,
    /// Mean time between changeovers, hours.
    changeover_every_h: f64,
}

impl LineSpec {
    pub(crate) fn product_names(&self) -> Vec<&'static str> {
        self.products.iter().map(|&p| PRODUCTS[p].0).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FillFinish,
    Api,
    Packaging,
}

pub(crate) struct Archetype {
    pub(crate) name: &'static str,
    kind: Kind,
    tz: Tz,
    pub(crate) time_zone: &'static str,
    pub(crate) lines: &'static [LineSpec],
    pub(crate) hvac: bool,
}

// Shift plans, local time. Lyon fill-1 and Basel run 06:00–22:00 in two
// shifts; Lyon fill-2 one hour later (07:00–23:00); Basel purif-1 06:30–22:30;
// Shanghai 08:00–24:00. Breaks are planned stops; outside shifts: no_shift.
const LYON_FILL_1: DayPlan = &[
    (360, 570, R),
    (570, 600, B),
    (600, 1050, R),
    (1050, 1080, B),
    (1080, 1320, R),
];
const LYON_FILL_2: DayPlan = &[
    (420, 630, R),
    (630, 660, B),
    (660, 1110, R),
    (1110, 1140, B),
    (1140, 1380, R),
];
const ROUND_THE_CLOCK: DayPlan = &[(0, 1440, R)];
const BASEL_SPPS: DayPlan = &[
    (360, 540, R),
    (540, 570, B),
    (570, 1020, R),
    (1020, 1050, B),
    (1050, 1320, R),
];
const BASEL_PURIF: DayPlan = &[
    (390, 600, R),
    (600, 630, B),
    (630, 1080, R),
    (1080, 1110, B),
    (1110, 1350, R),
];
const SHANGHAI_A: DayPlan = &[
    (480, 690, R),
    (690, 735, B),
    (735, 870, R),
    (870, 885, B),
    (885, 1110, R),
    (1110, 1140, B),
    (1140, 1440, R),
];
const SHANGHAI_B: DayPlan = &[
    (480, 735, R),
    (735, 780, B),
    (780, 885, R),
    (885, 900, B),
    (900, 1140, R),
    (1140, 1170, B),
    (1170, 1440, R),
];

pub(crate) const ARCHETYPES: [Archetype; 3] = [
    Archetype {
        name: "lyon-fill",
        kind: Kind::FillFinish,
        tz: Tz::CentralEurope,
        time_zone: "Europe/Paris",
        hvac: true,
        lines: &[
            LineSpec {
                area: "aseptic",
                line: "fill-1",
                asset: "filler",
                products: [VIAL_2ML, VIAL_10ML],
                plan: LYON_FILL_1,
                run_kw: 45.0,
                jams_per_h: 3.0,
                other_stops_per_h: 0.5,
                changeover_every_h: 3.0,
            },
            LineSpec {
                area: "aseptic",
                line: "fill-2",
                asset: "filler",
                products: [VIAL_10ML, VIAL_2ML],
                plan: LYON_FILL_2,
                run_kw: 45.0,
                jams_per_h: 3.0,
                other_stops_per_h: 0.5,
                changeover_every_h: 3.0,
            },
            LineSpec {
                area: "aseptic",
                line: "lyo-1",
                asset: "freeze-dryer",
                products: [LYO_2ML, LYO_10ML],
                plan: ROUND_THE_CLOCK,
                run_kw: 68.0,
                jams_per_h: 0.5,
                other_stops_per_h: 0.3,
                changeover_every_h: 24.0,
            },
        ],
    },
    Archetype {
        name: "basel-api",
        kind: Kind::Api,
        tz: Tz::CentralEurope,
        time_zone: "Europe/Zurich",
        hvac: false,
        lines: &[
            LineSpec {
                area: "synthesis",
                line: "spps-1",
                asset: "synthesizer",
                products: [PEP_A_SPPS, PEP_B_SPPS],
                plan: BASEL_SPPS,
                run_kw: 36.0,
                jams_per_h: 1.0,
                other_stops_per_h: 0.5,
                changeover_every_h: 4.0,
            },
            LineSpec {
                area: "synthesis",
                line: "purif-1",
                asset: "hplc",
                products: [PEP_A_HPLC, PEP_B_HPLC],
                plan: BASEL_PURIF,
                run_kw: 38.0,
                jams_per_h: 1.0,
                other_stops_per_h: 0.5,
                changeover_every_h: 4.0,
            },
        ],
    },
    Archetype {
        name: "shanghai-pack",
        kind: Kind::Packaging,
        tz: Tz::China,
        time_zone: "Asia/Shanghai",
        hvac: false,
        lines: &[
            LineSpec {
                area: "packaging",
                line: "blister-1",
                asset: "blisterer",
                products: [BLISTER_10, BLISTER_14],
                plan: SHANGHAI_A,
                run_kw: 55.0,
                jams_per_h: 3.5,
                other_stops_per_h: 0.5,
                changeover_every_h: 2.5,
            },
            LineSpec {
                area: "packaging",
                line: "blister-2",
                asset: "blisterer",
                products: [BLISTER_14, BLISTER_10],
                plan: SHANGHAI_B,
                run_kw: 55.0,
                jams_per_h: 3.5,
                other_stops_per_h: 0.5,
                changeover_every_h: 2.5,
            },
            LineSpec {
                area: "packaging",
                line: "carton-1",
                asset: "cartoner",
                products: [CARTON_10, CARTON_28],
                plan: SHANGHAI_A,
                run_kw: 35.0,
                jams_per_h: 3.0,
                other_stops_per_h: 0.5,
                changeover_every_h: 2.5,
            },
        ],
    },
];

/// Site name of plant `k`: the archetype's name, with `-2`, `-3` … from the
/// second round of archetypes on.
pub(crate) fn site_name(k: usize) -> String {
    let name = ARCHETYPES[k % ARCHETYPES.len()].name;
    match k / ARCHETYPES.len() {
        0 => name.to_string(),
        n => format!("{name}-{}", n + 1),
    }
}

// Scripted incident timing: preferred offsets from the recording start
// (plants after the first three add 0, 3, 6 or 9 min), durations, margins.
const BREAKDOWN_AT: i64 = 40 * MINUTE;
const LEAK_AT: i64 = 5 * MINUTE;
const LEAK_LEN: i64 = 30 * MINUTE;
const FOULING_AT: i64 = 15 * MINUTE;
const FOULING_DRIFT: i64 = 30 * MINUTE;
const FOULING_LOW: i64 = 10 * MINUTE;
const CIP_LEN: i64 = 15 * MINUTE;
const SILENT_AT: i64 = 70 * MINUTE;
const SILENT_LEN: i64 = 15 * MINUTE;
const RESET_AT: i64 = 110 * MINUTE;
/// Incidents start this far past the minute, so that no transition falls on
/// a 60-s window boundary.
const SLOT_SECS: i64 = 20_000;
/// Normal data required after every incident's end.
const AFTER: i64 = 15 * MINUTE;

/// Topic-tag numbers of the random streams.
pub(crate) const STREAM_PLAN: u64 = 1;
pub(crate) const STREAM_PHYSICS: u64 = 2;
pub(crate) const STREAM_LATENCY: u64 = 3;
pub(crate) const STREAM_MALFORMED: u64 = 4;
const STREAM_JITTER: u64 = 5;
pub(crate) const STREAM_VERY_LATE: u64 = 6;

/// The first start time from `preferred` on (then backwards from it), in
/// whole minutes, that `ok` accepts.
fn find_slot(preferred: i64, t0: i64, end: i64, ok: impl Fn(i64) -> bool) -> Option<i64> {
    let mut s = preferred + SLOT_SECS;
    while s < end {
        if ok(s) {
            return Some(s);
        }
        s += MINUTE;
    }
    let mut s = preferred + SLOT_SECS - MINUTE;
    while s >= t0 {
        if ok(s) {
            return Some(s);
        }
        s -= MINUTE;
    }
    None
}

fn overlaps(a: i64, b: i64, spans: &[(i64, i64)]) -> bool {
    spans.iter().any(|&(x, y)| a < y && x < b)
}

pub(crate) struct Plant {
    pub(crate) site: String,
    pub(crate) silent: Vec<(i64, i64)>,
    snapshots: Vec<i64>,
    pub(crate) lines: Vec<Line>,
    pub(crate) ro: Ro,
    pub(crate) hvac: Option<Hvac>,
}

impl Plant {
    pub(crate) fn run(&mut self, until: i64, out: &mut Sink) {
        let (snaps, silent) = (&self.snapshots, &self.silent);
        for l in &mut self.lines {
            l.run(until, snaps, silent, out);
        }
        self.ro.run(until, snaps, silent, out);
        if let Some(h) = &mut self.hvac {
            h.run(until, snaps, silent, out);
        }
    }

    /// Topics of numeric signals (for malformed messages).
    pub(crate) fn numeric_topics(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for l in &self.lines {
            v.extend(l.numeric_topics());
        }
        v.extend(self.ro.numeric_topics().iter().map(String::as_str));
        if let Some(h) = &self.hvac {
            v.extend(h.numeric_topics().iter().map(String::as_str));
        }
        v
    }

    pub(crate) fn state_topics(&self) -> Vec<&str> {
        self.lines.iter().map(Line::state_topic).collect()
    }
}

pub(crate) struct Plan {
    pub(crate) plants: Vec<Plant>,
    pub(crate) incidents: Vec<Incident>,
    pub(crate) counter_reset: Option<CounterReset>,
}

/// Scripts the whole recording [t0, end).
pub(crate) fn build(cfg: &SimConfig, end: i64) -> Plan {
    let mut plan = Plan {
        plants: Vec::with_capacity(cfg.plants),
        incidents: Vec::new(),
        counter_reset: None,
    };
    // The one PLC counter reset: on the last line of plant 2 (shanghai-pack
    // carton-1), or of the last plant when there are fewer.
    let reset_plant = cfg.plants.min(3) - 1;
    for k in 0..cfg.plants {
        let mut script = PlantScript::new(cfg, end, k);
        // In this order: each incident is placed around the ones before.
        script.silent_source(&mut plan.incidents);
        script.breakdown(&mut plan.incidents);
        script.night_energy_leak(&mut plan.incidents);
        script.membrane_fouling(&mut plan.incidents);
        if k == reset_plant {
            plan.counter_reset = script.counter_reset();
        }
        plan.plants.push(script.plant());
    }
    plan.incidents
        .sort_by(|a, b| (a.start_ms, &a.site, &a.line).cmp(&(b.start_ms, &b.site, &b.line)));
    plan
}

/// One plant being scripted: its lines' timelines and the incidents placed
/// so far, then [`PlantScript::plant`] builds its signal sources.
struct PlantScript<'a> {
    cfg: &'a SimConfig,
    t0: i64,
    end: i64,
    /// The plant's index.
    k: usize,
    arch: &'static Archetype,
    /// Which copy of its archetype the plant is (0 for the first three).
    copy: usize,
    /// Incident times move by this much between copies.
    off: i64,
    site: String,
    tls: Vec<Timeline>,
    /// Per line: spans the random stops keep out of.
    protected: Vec<Vec<(i64, i64)>>,
    /// The spans the plant's gateway is silent.
    silent: Vec<(i64, i64)>,
    fouling: Option<Fouling>,
    /// The counter reset: line index and time.
    reset: Option<(usize, i64)>,
}

impl<'a> PlantScript<'a> {
    fn new(cfg: &'a SimConfig, end: i64, k: usize) -> Self {
        let t0 = cfg.start_ms;
        let arch = &ARCHETYPES[k % ARCHETYPES.len()];
        let copy = k / ARCHETYPES.len();
        let mut tls: Vec<Timeline> = Vec::with_capacity(arch.lines.len());
        for (li, l) in arch.lines.iter().enumerate() {
            let mut tl = Timeline::from_plan(t0, end, arch.tz, l.plan);
            let mut rng = Rng::derive(cfg.seed, &[STREAM_JITTER, k as u64, li as u64]);
            tl.jitter(|| rng.range_i64(5_000, 45_000));
            tls.push(tl);
        }
        PlantScript {
            cfg,
            t0,
            end,
            k,
            arch,
            copy,
            off: (copy % 4) as i64 * 3 * MINUTE,
            site: site_name(k),
            tls,
            protected: vec![Vec::new(); arch.lines.len()],
            silent: Vec::new(),
            fouling: None,
            reset: None,
        }
    }

    fn incident(&self, kind: IncidentKind, area: &str, line: &str, span: (i64, i64)) -> Incident {
        Incident {
            kind,
            site: self.site.clone(),
            area: area.to_string(),
            line: line.to_string(),
            start_ms: span.0,
            end_ms: span.1,
        }
    }

    /// Packaging plants: the gateway goes silent once.
    fn silent_source(&mut self, incidents: &mut Vec<Incident>) {
        if self.arch.kind != Kind::Packaging {
            return;
        }
        let (t0, end) = (self.t0, self.end);
        let ok = |s: i64| s >= t0 + 5 * MINUTE && s + SILENT_LEN + AFTER <= end;
        if let Some(s) = find_slot(t0 + SILENT_AT + self.off, t0, end, ok) {
            self.silent.push((s, s + SILENT_LEN));
            incidents.push(self.incident(IncidentKind::SilentSource, "", "", (s, s + SILENT_LEN)));
        }
    }

    /// The first plant and every copy: one line breaks down while running,
    /// away from the silence.
    fn breakdown(&mut self, incidents: &mut Vec<Incident>) {
        let (k, copy) = (self.k, self.copy);
        if !(k == 0 || copy > 0) {
            return;
        }
        let li = if k == 0 {
            0
        } else {
            copy % self.arch.lines.len()
        };
        let len = (25 + ((k + 3) % 6) as i64) * MINUTE;
        let (tl, silent) = (&self.tls[li], &self.silent);
        let ok = |s: i64| {
            tl.all(s - 5 * MINUTE, s + len + AFTER, |g| g.st == St::Running)
                && !overlaps(s - 20 * MINUTE, s + len + 20 * MINUTE, silent)
        };
        let Some(s) = find_slot(self.t0 + BREAKDOWN_AT + self.off, self.t0, self.end, ok) else {
            return;
        };
        self.tls[li].overlay(s, s + len, |g| g.st = St::Stopped(Reason::Breakdown));
        self.protected[li].push((s - 10 * MINUTE, s + len + AFTER));
        let l = &self.arch.lines[li];
        incidents.push(self.incident(IncidentKind::Breakdown, l.area, l.line, (s, s + len)));
    }

    /// Fill-finish plants: fill-2 (shift from 07:00 local) draws power
    /// through the night.
    fn night_energy_leak(&mut self, incidents: &mut Vec<Incident>) {
        if self.arch.kind != Kind::FillFinish {
            return;
        }
        let li = 1;
        let (t0, tl) = (self.t0, &self.tls[li]);
        let ok = |s: i64| {
            s >= t0 + 2 * MINUTE && tl.all(s, s + LEAK_LEN + AFTER, |g| g.st == St::NoShift)
        };
        let Some(s) = find_slot(t0 + LEAK_AT + self.off, t0, self.end, ok) else {
            return;
        };
        self.tls[li].overlay(s, s + LEAK_LEN, |g| g.leak = true);
        let l = &self.arch.lines[li];
        let span = (s, s + LEAK_LEN);
        incidents.push(self.incident(IncidentKind::NightEnergyLeak, l.area, l.line, span));
    }

    /// API plants: the RO membrane fouls, then is cleaned in place.
    fn membrane_fouling(&mut self, incidents: &mut Vec<Incident>) {
        if self.arch.kind != Kind::Api {
            return;
        }
        let (t0, end) = (self.t0, self.end);
        let len = FOULING_DRIFT + FOULING_LOW + CIP_LEN;
        let ok = |s: i64| s >= t0 + 5 * MINUTE && s + len + AFTER <= end;
        let Some(s) = find_slot(t0 + FOULING_AT + self.off, t0, end, ok) else {
            return;
        };
        self.fouling = Some(Fouling {
            start: s,
            drift_end: s + FOULING_DRIFT,
            cip_start: s + FOULING_DRIFT + FOULING_LOW,
            cip_end: s + len,
        });
        let span = (s, s + len);
        incidents.push(self.incident(IncidentKind::MembraneFouling, "utilities", "ro-1", span));
    }

    /// The PLC counter reset on the plant's last line, away from silences.
    fn counter_reset(&mut self) -> Option<CounterReset> {
        let (t0, end) = (self.t0, self.end);
        let li = self.arch.lines.len() - 1;
        let dur = end - t0;
        let at = if dur >= RESET_AT + 10 * MINUTE {
            RESET_AT
        } else {
            dur * 3 / 4 / 1000 * 1000
        };
        let mut t = t0 + at;
        if let Some(&(a, b)) = self
            .silent
            .iter()
            .find(|&&(a, b)| t >= a - 2 * MINUTE && t < b + 2 * MINUTE)
        {
            t = if b + 5 * MINUTE < end {
                b + 5 * MINUTE
            } else {
                a - 5 * MINUTE
            };
        }
        if t <= t0 || t >= end {
            return None;
        }
        self.reset = Some((li, t));
        let l = &self.arch.lines[li];
        Some(CounterReset {
            site: self.site.clone(),
            area: l.area.to_string(),
            line: l.line.to_string(),
            asset: l.asset.to_string(),
            at_ms: t,
        })
    }

    /// The plant's signal sources from its script.
    fn plant(self) -> Plant {
        let (cfg, k, t0, end) = (self.cfg, self.k, self.t0, self.end);
        let site = self.site;
        let topic = |area: &str, line: &str, asset: &str, signal: &str| {
            format!("{}/{site}/{area}/{line}/{asset}/{signal}", cfg.enterprise)
        };
        let mut lines = Vec::with_capacity(self.arch.lines.len());
        for (li, (spec, mut tl)) in self.arch.lines.iter().zip(self.tls).enumerate() {
            let mut rng = Rng::derive(cfg.seed, &[STREAM_PLAN, k as u64, li as u64]);
            let products = script_events(&mut rng, &mut tl, spec, &self.protected[li], t0, end);
            let standby_kw = rng.range(3.5, 5.0);
            let (a, l, m) = (spec.area, spec.line, spec.asset);
            let topics = LineTopics {
                state: topic(a, l, m, "state"),
                product: topic(a, l, m, "product"),
                total: topic(a, l, m, "count_total"),
                good: topic(a, l, m, "count_good"),
                reject: topic(a, l, m, "count_reject"),
                energy: topic(a, l, "meter", "energy_kwh"),
                power: topic(a, l, "meter", "power_kw"),
            };
            let script = LineScript {
                changes: tl.change_times(),
                segs: tl.segs,
                products,
                reset_at: self.reset.and_then(|(rl, t)| (rl == li).then_some(t)),
                run_kw: spec.run_kw,
                standby_kw,
            };
            let phys = Rng::derive(cfg.seed, &[STREAM_PHYSICS, k as u64, li as u64]);
            lines.push(Line::new(topics, script, phys, t0));
        }
        let n = self.arch.lines.len() as u64;
        let ro_topics = [
            "feed_m3",
            "permeate_m3",
            "concentrate_m3",
            "conductivity_us_cm",
            "toc_ppb",
            "temperature_c",
        ]
        .map(|s| topic("utilities", "ro-1", "skid", s));
        let ro_rng = Rng::derive(cfg.seed, &[STREAM_PHYSICS, k as u64, n]);
        let ro = Ro::new(ro_topics, self.fouling, ro_rng, t0);
        let hvac = self.arch.hvac.then(|| {
            let topics = ["energy_kwh", "power_kw"].map(|s| topic("utilities", "hvac", "ahu", s));
            Hvac::new(
                topics,
                Rng::derive(cfg.seed, &[STREAM_PHYSICS, k as u64, n + 1]),
                t0,
            )
        });
        let mut snapshots = vec![t0];
        snapshots.extend(self.silent.iter().map(|s| s.1).filter(|&t| t < end));
        Plant {
            site,
            silent: self.silent,
            snapshots,
            lines,
            ro,
            hvac,
        }
    }
}

/// Random changeovers and short stops of one line, placed only inside
/// running time with margins, so that no two stops chain into a long
/// availability loss. Returns the product timeline.
fn script_events(
    rng: &mut Rng,
    tl: &mut Timeline,
    spec: &LineSpec,
    protected: &[(i64, i64)],
    t0: i64,
    end: i64,
) -> Vec<(i64, usize)> {
    let free = |tl: &Timeline, a: i64, b: i64| {
        tl.all(a, b, |g| g.st == St::Running && !g.leak) && !overlaps(a, b, protected)
    };
    let first = rng.index(2);
    let mut products = vec![(t0, spec.products[first])];
    let mut current = first;

    // Changeovers (4–7.5 min), switching to the other product.
    let mean = spec.changeover_every_h * 60.0 * MINUTE as f64;
    let mut t = t0 + rng.range(20.0 * MINUTE as f64, mean.max(21.0 * MINUTE as f64)) as i64;
    while t < end {
        let len = (rng.range(4.0, 7.5) * 60.0) as i64 * 1000;
        for attempt in 0..8 {
            let a = t + attempt * 5 * MINUTE;
            if free(tl, a - 5 * MINUTE, a + len + 5 * MINUTE) {
                tl.overlay(a, a + len, |g| g.st = St::Changeover);
                current = 1 - current;
                products.push((a, spec.products[current]));
                break;
            }
        }
        t += (rng.exp(mean) as i64).max(45 * MINUTE);
    }

    // Jams (20–110 s) and other short stops.
    let rate = spec.jams_per_h + spec.other_stops_per_h;
    let mean = 60.0 * MINUTE as f64 / rate;
    let mut t = t0 + rng.exp(mean) as i64;
    while t < end {
        let (reason, secs) = if rng.chance(spec.jams_per_h / rate) {
            (Reason::Jam, rng.range(20.0, 110.0))
        } else if rng.chance(0.5) {
            (Reason::MaterialShortage, rng.range(90.0, 240.0))
        } else {
            (Reason::DoorOpen, rng.range(30.0, 120.0))
        };
        let len = (secs * 1000.0) as i64;
        if free(tl, t - 3 * MINUTE, t + len + 3 * MINUTE) {
            tl.overlay(t, t + len, |g| g.st = St::Stopped(reason));
        }
        t += rng.exp(mean) as i64 + len;
    }
    products
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::HOUR;

    /// Plan boundaries (before jitter) over 2026-03-28T15:00Z..+15 h: the EU
    /// change to summer time at 01:00Z and midnight in Shanghai at 16:00Z.
    #[test]
    fn shift_plans_follow_local_wall_clock_time_across_dst_and_midnight() {
        let t0 = 1_774_710_000_000; // 2026-03-28T15:00:00Z
        let end = t0 + 15 * HOUR;
        let h = |hours: i64| t0 + hours * HOUR;
        let changes = |tz, plan| {
            let tl = Timeline::from_plan(t0, end, tz, plan);
            tl.segs.iter().map(|s| (s.start, s.st)).collect::<Vec<_>>()
        };
        // Lyon fill-1: 17:30 CET break (16:30Z), 22:00 CET end (21:00Z),
        // then 06:00 *CEST* start (04:00Z, an hour earlier in UTC).
        assert_eq!(
            changes(Tz::CentralEurope, LYON_FILL_1),
            [
                (t0, St::Running),
                (h(1) + HOUR / 2, St::Break),
                (h(2), St::Running),
                (h(6), St::NoShift),
                (h(13), St::Running),
            ]
        );
        // Shanghai: 23:00 CST at the start, shift ends at 24:00 (16:00Z),
        // restarts at 08:00 (00:00Z), break 11:30–12:15 (03:30Z–04:15Z).
        assert_eq!(
            changes(Tz::China, SHANGHAI_A),
            [
                (t0, St::Running),
                (h(1), St::NoShift),
                (h(9), St::Running),
                (h(12) + HOUR / 2, St::Break),
                (h(13) + HOUR / 4, St::Running),
            ]
        );
        assert_eq!(
            changes(Tz::CentralEurope, ROUND_THE_CLOCK),
            [(t0, St::Running)]
        );
    }
}
