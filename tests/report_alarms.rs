//! `ctower report alarms` (issue #12 item 4) on a journal written here
//! with known answers: a console with a flood, a chattering alarm, a stale
//! alarm raised a day and a half before the period, a bad actor and a
//! priority mix; a quiet console. Each KPI is checked against the figure
//! worked out by hand below, in table, CSV (read with Python's `csv`) and
//! JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{root, scratch};
use serde_json::Value;
use std::fmt::Write as _;
use std::process::Command;

/// 2026-03-02T06:00:00Z.
const FROM: i64 = 1_772_431_200_000;
const MIN: i64 = 60_000;

fn line(
    out: &mut String,
    ts_ms: i64,
    rule: &str,
    scope: &str,
    signal: Option<&str>,
    kind: &str,
    priority: &str,
) {
    let signal = signal.map(|s| format!(",signal={s}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "alarm,rule={rule},scope={scope}{signal},kind={kind} state=\"x\",priority=\"{priority}\",metric=\"m\",value=1,threshold=1,message=\"m\" {}",
        ts_ms * 1_000_000
    );
}

#[test]
fn the_alarm_report_gives_the_isa_18_2_kpis_with_their_benchmarks() {
    let dir = scratch("report-alarms");
    let journal = dir.join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let mut j = String::new();
    // Stale: raised 36 h before the period, never cleared.
    line(
        &mut j,
        FROM - 36 * 60 * MIN,
        "stuck",
        "a/u/l1/m1",
        None,
        "raised",
        "low",
    );
    // A KPI line among them is ignored.
    j.push_str("kpi,period=window,level=site,site=a oee=0.5 1772431260000000000\n");
    // Chattering: three raises within 40 s (and clears between).
    for (i, t) in [0, 20_000, 40_000].iter().enumerate() {
        line(
            &mut j,
            FROM + 5 * MIN + t,
            "chatty",
            "a/u/l1/m2",
            Some("p"),
            "raised",
            "medium",
        );
        line(
            &mut j,
            FROM + 5 * MIN + t + 10_000,
            "chatty",
            "a/u/l1/m2",
            Some("p"),
            "cleared",
            "medium",
        );
        let _ = i;
    }
    // A flood: 12 raises of 12 rules between 30 and 35 minutes.
    for i in 0..12 {
        line(
            &mut j,
            FROM + 30 * MIN + i * 20_000,
            &format!("f{i}"),
            "a/u/l2/m3",
            None,
            "raised",
            if i == 0 { "urgent" } else { "low" },
        );
    }
    // A bad actor: 5 more raises of `noisy` over the second hour.
    for i in 0..5 {
        line(
            &mut j,
            FROM + 70 * MIN + i * 10 * MIN,
            "noisy",
            "a/u/l3/m4",
            None,
            "raised",
            "high",
        );
        line(
            &mut j,
            FROM + 71 * MIN + i * 10 * MIN,
            "noisy",
            "a/u/l3/m4",
            None,
            "cleared",
            "high",
        );
    }
    // After the period: not counted.
    line(
        &mut j,
        FROM + 121 * MIN,
        "late",
        "a/u/l1/m1",
        None,
        "raised",
        "low",
    );
    // The quiet console b: two raises.
    line(&mut j, FROM + 10 * MIN, "b1", "b", None, "raised", "low");
    line(&mut j, FROM + 90 * MIN, "b2", "b", None, "raised", "low");
    std::fs::write(journal.join("ctower.lp"), j).unwrap();

    let run = |format: &str, site: Option<&str>| -> String {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
        c.current_dir(root())
            .args([
                "--log",
                "warn",
                "report",
                "alarms",
                "-c",
                "configs/default.toml",
            ])
            .args([
                "--from",
                "2026-03-02T06:00:00Z",
                "--to",
                "2026-03-02T08:00:00Z",
                "--format",
                format,
            ])
            .env("CTOWER__JOURNAL__DIR", &journal);
        if let Some(s) = site {
            c.args(["--site", s]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run("json", None)).unwrap();
    let kpi = |console: &str, name: &str| -> (f64, bool) {
        let k = json["kpis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["console"] == console && k["kpi"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{console} {name}: {json:#}"));
        (k["value"].as_f64().unwrap(), k["ok"].as_bool().unwrap())
    };
    // Console a: 3 + 12 + 5 = 20 raises in 2 h.
    assert_eq!(kpi("a", "alarms per hour"), (10.0, true));
    // The flood's 10-minute period (30–40 min) holds 12.
    assert_eq!(kpi("a", "alarms per 10 minutes"), (12.0, false));
    // 1 of 12 periods in flood.
    let (flood, ok) = kpi("a", "10-minute periods in flood");
    assert!((flood - 100.0 / 12.0).abs() < 1e-9 && !ok);
    // Top 10: noisy 5, chatty 3, then eight of the flood's 1s = 16 of 20.
    let (top, _) = kpi("a", "top-10");
    assert!((top - 80.0).abs() < 1e-9, "{top}");
    assert_eq!(kpi("a", "chattering"), (1.0, false));
    assert_eq!(kpi("a", "stale"), (1.0, true));
    // Priorities: 1 urgent, 5 high, 3 medium, 11 low of 20.
    for (p, pct, ok) in [
        ("urgent", 5.0, false),
        ("high", 25.0, false),
        ("medium", 15.0, true),
        ("low", 55.0, true),
    ] {
        let (v, o) = kpi("a", &format!("priority {p}"));
        assert!((v - pct).abs() < 1e-9 && o == ok, "{p}: {v} {o}");
    }
    assert_eq!(kpi("b", "alarms per hour"), (1.0, true));
    assert_eq!(kpi("b", "chattering"), (0.0, true));
    let actors = json["bad_actors"].as_array().unwrap();
    assert_eq!(actors[0]["alarm"], "noisy@a/u/l3/m4");
    assert_eq!(actors[0]["raised"], 5);
    assert_eq!(actors[1]["alarm"], "chatty@a/u/l1/m2#p");

    // --site picks one console.
    let only_b: Value = serde_json::from_str(&run("json", Some("b"))).unwrap();
    assert!(only_b["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["console"] == "b"));
    // The table names each benchmark and flags what is over it.
    let table = run("table", None);
    assert!(
        table.contains("console a") && table.contains("console b"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("alarms per 10 minutes (peak)")
                && l.contains("<= 10")
                && l.ends_with("NO")),
        "{table}"
    );
    assert!(table.contains("bad actors"));
    // CSV, read by Python's csv module.
    let csv = run("csv", None);
    let py = Command::new("python3")
        .args(["-c", "import csv,sys; rows=list(csv.DictReader(sys.stdin)); print(len(rows)); print([r['value'] for r in rows if r['console']=='a' and r['kpi'].startswith('alarms per hour')][0])"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(csv.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let out = String::from_utf8(py.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("20"), "two consoles of 10 KPIs: {out}");
    assert_eq!(lines.next(), Some("10"));
}
