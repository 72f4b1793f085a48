//! Hostile input through the path a plant's broker feeds (issue #8 items
//! 7, 11, 12, 13): a live tower with its embedded broker, fed by a
//! publisher that sends what an attacker or a broken PLC would.
//!
//! - a counter at 1e308, and one that jumps faster than its configured
//!   rate: refused as `implausible_value`; every total stays sane (it used
//!   to saturate `as u64`, wrap in a sum and reach the journal as
//!   `produced=-1i`);
//! - topic levels that would inject line protocol (`evil\`, `a b`,
//!   `x,y=1`): refused as `invalid_name`, and every journal line parses;
//! - bare `NaN`, `Infinity` and `1e400`: `non_finite`, not `malformed_json`;
//! - an oversized payload: a bounded prefix and its size in the dead-letter
//!   file, not the whole payload;
//! - credentials in a broker URL: refused at load, naming the keys to use
//!   instead, and never printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{read_jsonl, read_summary, root, scratch};
use ctower_testkit::process::{self, Spawned};
use std::process::Command;
use std::time::Duration;

const T0: i64 = 1_772_427_600_000; // 2026-03-02T05:00:00Z

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// (topic, payload) of the publisher, in order; event times from T0.
fn messages() -> Vec<(String, Vec<u8>)> {
    let line = "acme/lyon-fill/aseptic/fill-1/filler";
    let mut out = Vec::new();
    let mut total = 1_000u64;
    for k in 0..30i64 {
        let t = T0 + k * 10_000;
        total += 50;
        out.push((
            format!("{line}/count_total"),
            format!(r#"{{"ts":{t},"value":{total}}}"#).into_bytes(),
        ));
        out.push((
            format!("{line}/state"),
            format!(r#"{{"ts":{t},"value":"running"}}"#).into_bytes(),
        ));
        match k {
            5 => {
                // A corrupted register, then a jump of 10^9 in 10 s.
                out.push((
                    format!("{line}/count_total"),
                    format!(r#"{{"ts":{},"value":1e308}}"#, t + 1).into_bytes(),
                ));
                out.push((
                    format!("{line}/count_total"),
                    format!(r#"{{"ts":{},"value":1000000000000}}"#, t + 2).into_bytes(),
                ));
            }
            6 => {
                for site in ["evil\\\\", "a b", "x,y=1"] {
                    out.push((
                        format!("acme/{site}/a/l/m/temperature_c"),
                        format!(r#"{{"ts":{t},"value":1}}"#).into_bytes(),
                    ));
                }
            }
            7 => {
                for v in ["NaN", "Infinity", "-Infinity", "1e400"] {
                    out.push((
                        format!("{line}/temperature_c"),
                        format!(r#"{{"ts":{t},"value":{v}}}"#).into_bytes(),
                    ));
                }
            }
            8 => out.push((
                format!("{line}/temperature_c"),
                format!(r#"{{"ts":{t},"value":"{}"}}"#, "x".repeat(200_000)).into_bytes(),
            )),
            _ => {}
        }
    }
    out
}

#[test]
fn hostile_values_and_names_are_refused_and_nothing_is_corrupted() {
    let dir = scratch("hostile-input");
    let config = dir.join("hostile.toml");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    std::fs::write(
        &config,
        format!("{text}\n[signals.count_total]\nmax_rate_per_s = 100.0\n"),
    )
    .expect("config");
    let msgs = messages();
    let out = dir.join("out");
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info,rumqttd=warn", "run", "-w", "2", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--stop-after", &msgs.len().to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (hostile input)",
    );
    let ready = live.wait_line("embedded broker ready", Duration::from_secs(30));
    let url = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .expect("broker url")
        .to_string();
    live.wait_line("source subscribed", Duration::from_secs(30));
    // Publish them as a plant's gateway would: a recording replayed to the
    // broker (a recording keeps each payload byte for byte).
    let recording = dir.join("hostile.jsonl.gz");
    let mut w = ctower_model::ReplayWriter::create(&recording).expect("recording");
    for (i, (topic, payload)) in msgs.iter().enumerate() {
        w.write(&ctower_model::ReplayRecord {
            t_ms: T0 + i as i64,
            topic: topic.clone(),
            qos: 1,
            retain: false,
            payload: payload.clone(),
        })
        .expect("write");
    }
    w.finish().expect("finish");
    // In the background: the tower stops (and its embedded broker with it)
    // as soon as it has every message, possibly before the publisher has
    // its last acknowledgements; what counts is what the tower received.
    let _publisher = Spawned::start(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(&recording)
            .args(["--broker", &url, "--speed", "max"]),
        "ctower replay of the hostile messages",
    );
    live.wait_success(Duration::from_secs(60));

    let summary = read_summary(&out);
    let dl = &summary["dead_letters"];
    assert_eq!(dl["implausible_value"].as_u64(), Some(2), "{summary}");
    assert_eq!(dl["invalid_name"].as_u64(), Some(3), "{summary}");
    assert_eq!(dl["non_finite"].as_u64(), Some(4), "{summary}");
    assert_eq!(dl["oversized"].as_u64(), Some(1), "{summary}");
    assert!(dl.get("malformed_json").is_none(), "{summary}");

    // The oversized payload: a 4 KiB prefix and its size.
    let dead = read_jsonl(&dir.join("dead.jsonl"));
    let big = dead
        .iter()
        .find(|d| d["reason"] == "oversized")
        .expect("the oversized dead letter");
    assert!(big["payload_bytes"].as_u64() > Some(200_000), "{big}");
    assert_eq!(big["payload_truncated"], true);
    assert!(big["payload"].as_str().map_or(0, str::len) <= 4096);
    let on_disk = std::fs::metadata(dir.join("dead.jsonl"))
        .expect("dead letters")
        .len();
    assert!(
        on_disk < 64 * 1024,
        "the dead-letter file holds {on_disk} bytes"
    );

    // Totals stay sane: the line made 50 units per 10 s.
    for r in read_jsonl(&out.join("kpis.jsonl")) {
        if let Some(p) = r["produced"].as_u64() {
            assert!(p <= 30 * 50, "produced {p} in {r}");
        }
        assert!(r["produced"].as_i64().is_none_or(|p| p >= 0), "{r}");
    }
    // Every journal line parses (no name broke out of its tag), and the
    // produced fields are never negative.
    let journal = std::fs::read_to_string(dir.join("journal").join("ctower.lp")).expect("journal");
    for line in journal.lines() {
        match influxdb_line_protocol::parse_lines(line).next() {
            Some(Ok(parsed)) => {
                for (key, value) in &parsed.field_set {
                    if key.as_str() == "produced" {
                        let v = value.to_string();
                        assert!(!v.starts_with('-'), "negative produced: {line}");
                    }
                }
                if let Some(tags) = &parsed.series.tag_set {
                    for (k, v) in tags {
                        if k.as_str() == "site" {
                            // The sender's site, and the configured ones
                            // (reported, without data).
                            assert!(
                                ["lyon-fill", "basel-api", "shanghai-pack"].contains(&v.as_str()),
                                "a site tag that is not a real site: {line}"
                            );
                        }
                    }
                }
            }
            Some(Err(e)) => panic!("journal line is not line protocol ({e}): {line}"),
            None => {}
        }
    }
}

/// Issue #8 item 12: `mqtt://user:pass@host` used to pass as a host name and
/// be printed in every log line.
#[test]
fn credentials_in_a_broker_url_are_refused_and_never_printed() {
    let dir = scratch("credentials-in-url");
    let config = dir.join("creds.toml");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    std::fs::write(
        &config,
        text.replace(
            "broker_url = \"embedded\"",
            "broker_url = \"mqtt://plant:S3cr3tPw@127.0.0.1:1883\"",
        ),
    )
    .expect("config");
    let run = process::run(
        ctower().args(["run", "-c"]).arg(&config),
        "ctower run with credentials in the broker URL",
        Duration::from_secs(30),
    );
    assert!(!run.status.success(), "refused at load");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(all.contains("sources[0].broker_url"), "{all}");
    assert!(
        all.contains("password_env"),
        "points to the credential keys: {all}"
    );
    assert!(!all.contains("S3cr3tPw"), "the password was printed: {all}");
}
