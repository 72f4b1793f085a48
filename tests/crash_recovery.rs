//! Nothing lost across crashes (issue #10 item 3), through the real binary
//! and a real Mosquitto: `ctower run` with its raw journal is killed with
//! SIGKILL at three random points while a recording is published at QoS 1,
//! started again each time (once with a torn record left at the end of the
//! raw journal), and its KPIs and alarms come out byte-identical to the
//! batch mode over the same recording, with no window twice in its journal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{assert_same_files, default_config_with_sources, recording, root, run_batch, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::{wait, Mosquitto};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const START: Duration = Duration::from_secs(60);
const RUN: Duration = Duration::from_secs(300);

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// `configs/default.toml` with one source, `plant`, on `broker_url`
/// (`acme/#`, client id `client_id`), and the raw journal on or off;
/// written into `dir`.
fn plant_config(dir: &Path, broker_url: &str, client_id: &str, raw_journal: bool) -> PathBuf {
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{broker_url}\"\nclient_id = \"{client_id}\"\n\
         subscriptions = [\"acme/#\"]\n"
    );
    let path = default_config_with_sources(&dir.join(format!("{client_id}.toml")), &sources);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[raw_journal]\nenabled = false",
        &format!("[raw_journal]\nenabled = {raw_journal}"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Records in the raw journal's segments (lines after each header).
fn journaled(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("raw-"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1) as u64)
        .sum()
}

/// Bytes of the raw journal's segments.
fn journal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("raw-"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// A seed from the clock, printed so that a failing run can be repeated
/// (`CTOWER_CRASH_SEED`).
fn seed() -> u64 {
    let s = std::env::var("CTOWER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash points seed: CTOWER_CRASH_SEED={s}");
    s
}

fn next(state: &mut u64) -> u64 {
    // splitmix64
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn kill_9_at_three_random_points_loses_and_duplicates_nothing() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let dir = scratch("crash-recovery");
    let raw = dir.join("raw");
    let config = plant_config(&dir, &broker.url(), "ctower-crash", true);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let out = dir.join("out");
    let start = || {
        let p = Spawned::start(
            ctower()
                .args(["--log", "info", "run", "-w", "2", "-c"])
                .arg(&config)
                .arg("--out")
                .arg(&out)
                .args(["--stop-after", &total.to_string()])
                .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
                .env("CTOWER__RAW_JOURNAL__DIR", &raw)
                .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
            "ctower run (crash recovery)",
        );
        p.wait_line("source subscribed source=plant", START);
        p
    };

    let mut live = start();
    // The plant publishes the whole recording at QoS 1 while ctower dies
    // and comes back: the broker keeps what its session has not taken.
    let mut publisher = Spawned::start(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            // About 5 s for the 2 hours, so that the kills fall while
            // messages arrive.
            .args(["--broker", &broker.url(), "--speed", "1500"]),
        "ctower replay (the plant)",
    );
    let mut rng = seed();
    let mut points: Vec<u64> = (0..3)
        .map(|_| total / 10 + next(&mut rng) % (total * 8 / 10))
        .collect();
    points.sort_unstable();
    for (i, point) in points.iter().enumerate() {
        wait::until(&format!("{point} messages in the raw journal"), RUN, || {
            journaled(&raw) >= *point
        });
        let pid = live.id().to_string();
        process::run_ok(
            Command::new("kill").args(["-9", &pid]),
            "kill -9 ctower",
            Duration::from_secs(10),
        );
        let status = live.wait_exit(Duration::from_secs(10));
        assert!(!status.success(), "killed: {status}");
        eprintln!(
            "killed at {} journaled messages (point {point})",
            journaled(&raw)
        );
        if i == 1 {
            // A write cut short: half a record at the end of the journal.
            let last = std::fs::read_dir(&raw)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("raw-"))
                .max()
                .unwrap();
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&last)
                .unwrap();
            std::io::Write::write_all(
                &mut f,
                b"{\"t_ms\":1772427600000,\"topic\":\"acme/lyon-fill/a/l/m/state\",\"qos\":1,\"ret",
            )
            .unwrap();
        }
        live = start();
        if i == 1 {
            // Logged at start, before the source subscribed.
            let repaired: Vec<String> = live
                .output()
                .into_iter()
                .filter(|l| l.contains("raw journal repaired"))
                .collect();
            assert_eq!(repaired.len(), 1, "{repaired:#?}");
            assert!(repaired[0].contains("torn last line"), "{}", repaired[0]);
        }
    }
    publisher.wait_success(RUN);
    live.wait_success(RUN);

    let reference = dir.join("batch");
    run_batch(&recording(), &reference, 2);
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (&reference, "batch mode"),
        (&out, "live mode killed three times"),
    );

    // The KPI journal: no line twice (one window, one scope, one revision).
    let lp = std::fs::read_to_string(dir.join("journal/ctower.lp")).unwrap();
    let mut seen = BTreeSet::new();
    for line in lp.lines() {
        assert!(seen.insert(line), "a line twice in the journal: {line}");
    }
    assert!(!seen.is_empty());

    // The audit trail survived the kills whole: its hash chain holds.
    let trail = dir.join("journal/audit.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    let head = std::fs::read_to_string(ctower_alerts::audit::head_path(&trail)).ok();
    let records = ctower_alerts::audit::verify(&text, head.as_deref()).unwrap();
    assert!(records > 0);
}

/// The broker restarted (SIGTERM, persistence on) while ctower works
/// through a backlog of some 500,000 QoS 1 messages (40 simulated plants,
/// 2 hours): ctower
/// reconnects into its kept session and loses nothing; KPIs and alarms are
/// byte-identical to the batch mode's.
#[test]
fn a_broker_restart_mid_backlog_loses_nothing() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let dir = scratch("broker-restart");
    let mut broker = Mosquitto::start_configured(&bin, &|d| {
        let db = d.join("db");
        std::fs::create_dir_all(&db).unwrap();
        // Writable by the user Mosquitto drops to when started as root.
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        format!(
            "allow_anonymous true\npersistence true\npersistence_location {}/\nmax_inflight_messages 1000\n",
            db.display()
        )
    });
    let rec = dir.join("plants-40x2h.jsonl.gz");
    process::run_ok(
        ctower()
            .args([
                "--log", "warn", "simulate", "--plants", "40", "--hours", "2", "-o",
            ])
            .arg(&rec),
        "ctower simulate",
        RUN,
    );
    let total = ctower_model::ReplayReader::open(&rec).unwrap().count() as u64;
    assert!(total >= 100_000, "{total} messages");

    let raw = dir.join("raw");
    let config = plant_config(&dir, &broker.url(), "ctower-restart", true);
    let out = dir.join("out");
    let spawn = |stop_after: u64| {
        Spawned::start(
            ctower()
                .args(["--log", "info", "run", "-w", "2", "-c"])
                .arg(&config)
                .arg("--out")
                .arg(&out)
                .args(["--stop-after", &stop_after.to_string()])
                .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
                .env("CTOWER__RAW_JOURNAL__DIR", &raw)
                .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
            "ctower run (broker restart)",
        )
    };
    // ctower's session exists on the broker; while ctower is away the
    // plant publishes everything, which the broker queues for it.
    let mut first = spawn(total);
    first.wait_line("source subscribed source=plant", START);
    let pid = first.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-INT", &pid]),
        "Ctrl-C",
        Duration::from_secs(10),
    );
    first.wait_success(START);
    process::run_ok(
        ctower().args(["--log", "warn", "replay"]).arg(&rec).args([
            "--broker",
            &broker.url(),
            "--speed",
            "max",
        ]),
        "ctower replay (the plant)",
        RUN,
    );
    // ctower takes the backlog; the broker restarts in the middle of it.
    // (Not waiting for its log: the backlog comes right after CONNACK.)
    let mut live = spawn(total);
    // As soon as a few thousand are in (ctower takes a backlog at some
    // 100,000 messages a second): the file sizes, cheap to look at.
    wait::until("the backlog coming in", RUN, || {
        journal_bytes(&raw) >= 1 << 20
    });
    let before = journal_bytes(&raw);
    broker.restart();
    let at_restart = journaled(&raw);
    eprintln!("{before} bytes in the raw journal when the broker was told to stop");
    eprintln!("broker restarted at {at_restart} of {total} messages");
    assert!(
        at_restart < total,
        "the restart must fall inside the backlog"
    );
    live.wait_success(RUN);
    let output = live.output();
    assert!(
        output.iter().any(|l| l.contains("MQTT connection failed")),
        "ctower saw the broker go"
    );
    assert!(
        output
            .iter()
            .any(|l| l.contains("session_present=true") && l.contains("connection=2")),
        "the broker kept ctower's session across its restart"
    );
    assert_eq!(
        journaled(&raw),
        total,
        "every message once in the raw journal"
    );

    let reference = dir.join("batch");
    run_batch(&rec, &reference, 2);
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (&reference, "batch mode"),
        (&out, "live mode across a broker restart"),
    );
}

/// A broker whose queue limit drops a disconnected session's backlog (the
/// default Mosquitto keeps 1,000 messages) is named at once: ctower watches
/// `$SYS/broker/publish/messages/dropped` and warns when it grows.
#[test]
fn a_broker_dropping_the_backlog_is_warned_of() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let dir = scratch("broker-drops");
    let broker = Mosquitto::start_configured(&bin, &|_| {
        "allow_anonymous true\nmax_queued_messages 10\nsys_interval 1\n".into()
    });
    let config = plant_config(&dir, &broker.url(), "ctower-drops", false);
    let spawn = || {
        Spawned::start(
            ctower()
                .args(["--log", "info", "run", "-c"])
                .arg(&config)
                .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
                .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
            "ctower run (a dropping broker)",
        )
    };
    let mut first = spawn();
    first.wait_line("the broker reports no dropped messages", START);
    let pid = first.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-INT", &pid]),
        "Ctrl-C",
        Duration::from_secs(10),
    );
    first.wait_success(START);
    // While ctower is away, more than the broker's queue limit.
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay (the plant)",
        RUN,
    );
    let mut second = spawn();
    let warned = second.wait_line("messages were dropped by the broker", START);
    assert!(
        warned.contains("WARN") && warned.contains("source=plant"),
        "{warned}"
    );
    let pid = second.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-INT", &pid]),
        "Ctrl-C",
        Duration::from_secs(10),
    );
    second.wait_success(START);
}

/// A full disk under the raw journal: the error names the segment at once,
/// nothing more is acknowledged, the health flag is up; stopped and started
/// again with room, the tower takes everything (from the journal and from
/// the broker, which kept what was not acknowledged): KPIs and alarms
/// byte-identical to the batch mode.
#[test]
fn a_full_disk_under_the_raw_journal_loses_nothing() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let dir = scratch("raw-full-disk");
    let raw = dir.join("raw");
    let config = plant_config(&dir, &broker.url(), "ctower-full", true);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let out = dir.join("out");
    let args = |c: &mut Command| {
        c.current_dir(root())
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__RAW_JOURNAL__DIR", &raw)
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"));
    };
    // Every file stops growing at 1 MiB (EFBIG, as on a full disk); the
    // raw journal, the fastest to grow, fills first.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ctower"));
    args(&mut cmd);
    let mut full = Spawned::start(&mut cmd, "ctower run (raw journal on a full disk)");
    full.wait_line("source subscribed source=plant", START);
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay (the plant)",
        RUN,
    );
    let error = full.wait_line("the raw journal cannot write", RUN);
    assert!(
        error.contains(&raw.display().to_string()),
        "the error names the path: {error}"
    );
    let pid = full.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-INT", &pid]),
        "Ctrl-C",
        Duration::from_secs(10),
    );
    full.wait_exit(RUN);
    let written = journaled(&raw);
    assert!(
        written < total,
        "the disk filled before the end ({written} of {total})"
    );

    // Room again: everything comes out, once.
    let mut again = Command::new(env!("CARGO_BIN_EXE_ctower"));
    args(&mut again);
    let mut live = Spawned::start(&mut again, "ctower run (room again)");
    live.wait_success(RUN);
    assert_eq!(journaled(&raw), total);
    let reference = dir.join("batch");
    run_batch(&recording(), &reference, 2);
    assert_same_files(
        &["kpis.jsonl"],
        (&reference, "batch mode"),
        (&out, "live mode after a full disk"),
    );
    // The rules' alarms are the batch mode's; the live run adds the system
    // alarm of the full disk when a window closed while it lasted.
    let rules_only = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("alarms.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"rule\":\"ctower."))
            .map(String::from)
            .collect()
    };
    assert_eq!(rules_only(&out), rules_only(&reference));
}
