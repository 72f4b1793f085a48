//! `ctower check` as a new user runs it (issue #9, item 5): every shipped
//! configuration passes without its secrets; a file with planted mistakes
//! gets every one of them reported with where it was written and its key;
//! `--connect` tries sources and webhooks once and says which failed,
//! without hanging.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{root, scratch};
use ctower_testkit::process;
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const CHECK: Duration = Duration::from_secs(60);

/// `ctower check -c CONFIG ARGS…` with only `vars` in its environment
/// (none of the caller's `CTOWER_…` variables or secrets).
fn check(config: &Path, args: &[&str], vars: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctower"));
    cmd.current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["--log", "warn", "check", "-c"])
        .arg(config)
        .args(args)
        .envs(vars.iter().copied());
    let out = process::run(&mut cmd, "ctower check", CHECK);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn every_shipped_configuration_passes_without_its_secrets() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let (out, text) = check(&path, &[], &[]);
        assert!(out.status.success(), "{}:\n{text}", path.display());
        assert!(text.contains(": OK: "), "{}:\n{text}", path.display());
    }
    assert!(
        seen >= 2,
        "configs/ holds default.toml and example-plant.toml"
    );

    // The example's secrets are named, not needed: each is a note.
    let (_, text) = check(&root().join("configs/example-plant.toml"), &[], &[]);
    for var in ["CTOWER_LYON_MQTT_PASSWORD", "CTOWER_ONCALL_WEBHOOK_SECRET"] {
        assert!(
            text.lines()
                .any(|l| l.contains("note: ") && l.contains(var) && l.contains("not set")),
            "{var} noted as not set:\n{text}"
        );
    }
    // A secret that is set must be usable: `whsec_` and no base64 is not.
    let (out, text) = check(
        &root().join("configs/example-plant.toml"),
        &[],
        &[("CTOWER_ONCALL_WEBHOOK_SECRET", "whsec_!!")],
    );
    assert!(!out.status.success(), "{text}");
    let example = std::fs::read_to_string(root().join("configs/example-plant.toml")).unwrap();
    let line = 1 + example
        .lines()
        .position(|l| l.starts_with("secret_env ="))
        .unwrap();
    assert!(
        text.contains(&format!(
            "example-plant.toml:{line}: alerts.hooks[1].secret_env: "
        )),
        "{text}"
    );
    assert!(
        !text.contains("whsec_!!"),
        "a secret is never printed:\n{text}"
    );
}

#[test]
fn five_planted_mistakes_are_all_reported_with_file_and_key() {
    let dir = scratch("check-planted");
    let config = dir.join("planted.toml");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).unwrap();
    let planted = text
        // 1. a wrong type: a string where a number belongs
        .replacen("window_secs = 60", "window_secs = \"60\"", 1)
        // 2. an unknown key
        .replacen("queue_batches = 64", "queue_batches = 64\nworkerz = 3", 1)
        // 4. a bad time zone
        .replacen(
            "time_zone = \"Europe/Paris\"",
            "time_zone = \"Europe/Pariss\"",
            1,
        )
        // 5. a bad URL
        .replacen(
            "broker_url = \"embedded\"",
            "broker_url = \"htp://localhost:1883\"",
            1,
        );
    assert_eq!(planted.lines().count(), text.lines().count() + 1);
    std::fs::write(&config, &planted).unwrap();
    // 3. a mistyped CTOWER__ variable
    let (out, report) = check(&config, &[], &[("CTOWER__PIPELINE__WORKRS", "4")]);
    assert!(!out.status.success(), "{report}");

    let file = config.display().to_string();
    let line_of = |needle: &str| {
        1 + planted
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in the planted file"))
    };
    let expected = [
        (
            format!("{file}:{}: pipeline.window_secs: ", line_of("window_secs")),
            "",
        ),
        (
            format!("{file}:{}: pipeline.workerz: ", line_of("workerz")),
            "workers",
        ),
        (
            "CTOWER__PIPELINE__WORKRS: ".to_string(),
            "CTOWER__PIPELINE__WORKERS",
        ),
        (
            format!(
                "{file}:{}: sites.lyon-fill.time_zone: ",
                line_of("Europe/Pariss")
            ),
            "",
        ),
        (
            format!("{file}:{}: sources[0].broker_url: ", line_of("htp://")),
            "",
        ),
    ];
    for (prefix, hint) in &expected {
        let line = report
            .lines()
            .find(|l| {
                l.trim_start_matches(['-', ' '])
                    .starts_with(prefix.as_str())
            })
            .unwrap_or_else(|| panic!("no problem reported as `{prefix}…` in:\n{report}"));
        assert!(line.contains(hint), "`{line}` suggests {hint}");
    }
    assert!(
        report.contains("5 problem(s)"),
        "exactly the five planted mistakes:\n{report}"
    );
}

#[test]
fn connect_tries_each_source_and_webhook_once_and_says_which_failed() {
    // A port nobody listens on (bound, then let go): a refused source.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = refused.local_addr().unwrap().port();
    drop(refused);
    // A webhook receiver that accepts connections.
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = receiver.local_addr().unwrap().port();

    let broker = services::require(&MOSQUITTO).map(|bin| Mosquitto::start(&bin));
    let good_url = broker.as_ref().map(Mosquitto::url);
    let mut sources =
        format!("[[sources]]\nname = \"down\"\nbroker_url = \"mqtt://127.0.0.1:{refused_port}\"\n");
    if let Some(url) = &good_url {
        sources += &format!(
            "\n[[sources]]\nname = \"up\"\nbroker_url = \"{url}\"\nsubscriptions = [\"acme/#\"]\n"
        );
    }
    let text = std::fs::read_to_string(root().join("configs/default.toml")).unwrap();
    let at = text.find("[[sources]]").unwrap();
    let end = text[at..].find("\n\n").unwrap() + at;
    let hooks = format!(
        "\n[[alerts.hooks]]\nkind = \"webhook\"\nname = \"oncall\"\nurl = \"http://127.0.0.1:{hook_port}/alarms\"\n"
    );
    let config_text = format!("{}{sources}{}{hooks}", &text[..at], &text[end..]);
    let dir = scratch("check-connect");
    let config = dir.join("connect.toml");
    std::fs::write(&config, config_text).unwrap();

    let started = std::time::Instant::now();
    let (out, report) = check(&config, &["--connect", "--connect-timeout", "5"], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the timeout"
    );
    assert!(
        !out.status.success(),
        "a refused source fails the check:\n{report}"
    );
    let line = |name: &str| {
        report
            .lines()
            .find(|l| l.contains(&format!("({name}): ")))
            .unwrap_or_else(|| panic!("a line for {name} in:\n{report}"))
            .to_string()
    };
    assert!(line("down").contains("FAILED"), "{report}");
    assert!(
        line("down").contains(&format!("127.0.0.1:{refused_port}")),
        "{report}"
    );
    assert!(
        line("oncall").contains("accepted (nothing sent)"),
        "{report}"
    );
    if good_url.is_some() {
        assert!(
            line("up").contains("connected to") && line("up").contains("subscriptions accepted"),
            "{report}"
        );
    }
    drop(receiver);
}

#[test]
fn a_password_file_is_a_secret_like_a_variable() {
    let dir = scratch("check-password-file");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).unwrap();
    let secret = dir.join("mqtt-password");
    let _ = std::fs::remove_file(&secret);
    let source = format!(
        "[[sources]]\nname = \"gw\"\nbroker_url = \"mqtt://127.0.0.1:1883\"\n\
         username = \"ctower\"\npassword_file = \"{}\"\n",
        secret.display()
    );
    let at = text.find("[[sources]]").unwrap();
    let end = text[at..].find("\n\n").unwrap() + at;
    let config = dir.join("password-file.toml");
    std::fs::write(&config, format!("{}{source}{}", &text[..at], &text[end..])).unwrap();

    // Not there: checking needs no secret, it says `run` will.
    let (out, report) = check(&config, &[], &[]);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("sources[0].password_file names the file")
            && report.contains("cannot be read here"),
        "{report}"
    );
    // There: no note, and the password is never printed.
    std::fs::write(&secret, "pl4nt-s3cret\n").unwrap();
    let (out, report) = check(&config, &[], &[]);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("note:"), "{report}");
    assert!(!report.contains("pl4nt-s3cret"), "{report}");
}
