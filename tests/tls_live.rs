//! `ctower run` against a secured Mosquitto (issue #10, secured sources):
//! TLS with a test CA, client certificates required, users and ACLs from
//! Mosquitto's dynamic-security plugin. Five sources on it: `secured` (the
//! right CA, certificate and a password from a file) ingests the whole
//! recording, its KPIs byte-identical to the batch mode's and its alarms
//! batch mode's; `wrong-password`, `untrusted-ca` (a CA that did not sign
//! the server's certificate) and `no-client-cert` fail attempt after
//! attempt with log lines naming them and saying why; `forbidden` logs in
//! but the broker's ACL refuses its subscription: one error line naming it,
//! a fault and its system alarm `ctower.source.forbidden`. None disturbs
//! the first. No secret (the passwords, the client's private key) is in any
//! line the process writes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{assert_same_files, default_config_with_sources, recording, root, run_batch, scratch};
use ctower_testkit::pki::{mosquitto_dynsec, write_readable, DynsecUser, TestPki};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use std::process::Command;
use std::time::Duration;

const USER: &str = "plant-gw";
const PASSWORD: &str = "Pl4nt-s3cret-pw";
const WRONG: &str = "not-the-Pa55word";
/// A user who may log in but not read the plant's topics.
const VIEWER: &str = "line-viewer";
const VIEWER_PASSWORD: &str = "V1ewer-only-pw";
const START: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(120);

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// Mosquitto with TLS (client certificates and a password required) on its
/// port, users and ACLs by its dynamic-security plugin (`USER` reads
/// `acme/#`, `VIEWER` reads nothing), and an anonymous plain listener on
/// `plain` for the gateway's replay.
fn secured_broker(bin: &std::path::Path, pki: &TestPki, plain: u16) -> Mosquitto {
    Mosquitto::start_configured(bin, &|dir| {
        let ca = write_readable(dir, "ca.pem", &pki.ca_pem);
        let cert = write_readable(dir, "server.pem", &pki.server.0);
        let key = write_readable(dir, "server.key", &pki.server.1);
        let users = [
            DynsecUser {
                user: USER,
                password: PASSWORD,
                subscribe: &["acme/#"],
            },
            DynsecUser {
                user: VIEWER,
                password: VIEWER_PASSWORD,
                subscribe: &[],
            },
        ];
        let (plugin, users) = mosquitto_dynsec(dir, &users);
        format!(
            "per_listener_settings true\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\nallow_anonymous false\n\
             plugin {}\nplugin_opt_config_file {}\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n",
            ca.display(),
            cert.display(),
            key.display(),
            plugin.display(),
            users.display()
        )
    })
}

#[test]
fn a_secured_source_ingests_beside_failing_ones_and_no_secret_is_logged() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let pki = TestPki::new("plant CA");
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker = secured_broker(&bin, &pki, plain);

    let dir = scratch("live-tls");
    let ca = write_readable(&dir, "ca.pem", &pki.ca_pem);
    let cert = write_readable(&dir, "client.pem", &pki.client.0);
    let key = write_readable(&dir, "client.key", &pki.client.1);
    let password_file = write_readable(&dir, "mqtt-password", &format!("{PASSWORD}\n"));
    let tls = format!(
        "[sources.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        ca.display(),
        cert.display(),
        key.display()
    );
    let url = format!("mqtts://localhost:{}", broker.port());
    let rogue = write_readable(&dir, "rogue-ca.pem", &TestPki::new("rogue CA").ca_pem);
    let source = |name: &str, user: &str, password: &str, tls: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nbroker_url = \"{url}\"\n\
             subscriptions = [\"acme/#\"]\nusername = \"{user}\"\n{password}\n{tls}\n"
        )
    };
    let from_env = |var: &str| format!("password_env = \"{var}\"");
    let untrusted = format!(
        "[sources.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        rogue.display(),
        cert.display(),
        key.display()
    );
    let no_client_cert = format!("[sources.tls]\nca_file = \"{}\"\n", ca.display());
    let sources = [
        source(
            "secured",
            USER,
            &format!("password_file = \"{}\"", password_file.display()),
            &tls,
        ),
        source(
            "wrong-password",
            USER,
            &from_env("CTOWER_TEST_WRONG_PW"),
            &tls,
        ),
        source(
            "forbidden",
            VIEWER,
            &from_env("CTOWER_TEST_VIEWER_PW"),
            &tls,
        ),
        source(
            "untrusted-ca",
            USER,
            &from_env("CTOWER_TEST_PW"),
            &untrusted,
        ),
        source(
            "no-client-cert",
            USER,
            &from_env("CTOWER_TEST_PW"),
            &no_client_cert,
        ),
    ]
    .concat();
    let config = default_config_with_sources(&dir.join("tls.toml"), &sources);

    let n = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--stop-after", &n.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"))
            .env("CTOWER_TEST_WRONG_PW", WRONG)
            .env("CTOWER_TEST_VIEWER_PW", VIEWER_PASSWORD)
            .env("CTOWER_TEST_PW", PASSWORD),
        "ctower run (TLS)",
    );
    live.wait_line("source subscribed source=secured", START);
    let refused = live.wait_line("MQTT connection failed", START);
    assert!(refused.contains("mqtts://localhost"), "{refused}");

    // The gateway publishes the recording; the secured source takes all of it.
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args([
                "--broker",
                &format!("mqtt://127.0.0.1:{plain}"),
                "--speed",
                "max",
            ]),
        "ctower replay (plain listener)",
        RUN,
    );
    live.wait_success(RUN);

    let reference = dir.join("batch");
    run_batch(&recording(), &reference, 2);
    assert_same_files(
        &["kpis.jsonl"],
        (&reference, "batch mode"),
        (&out, "live mode over TLS"),
    );
    // The alarms are batch mode's, and the refused source's system alarm.
    let alarms = std::fs::read_to_string(out.join("alarms.jsonl")).unwrap();
    let (system, process): (Vec<&str>, Vec<&str>) = alarms
        .lines()
        .partition(|l| l.contains("\"rule\":\"ctower.source.forbidden\""));
    assert_eq!(system.len(), 1, "one system alarm: {system:#?}");
    assert!(
        system[0].contains("ctower cannot read its source forbidden (acme/#)"),
        "{}",
        system[0]
    );
    let batch = std::fs::read_to_string(reference.join("alarms.jsonl")).unwrap();
    assert!(
        process == batch.lines().collect::<Vec<_>>(),
        "the process alarms are batch mode's"
    );

    let output = live.output();
    let failures = output
        .iter()
        .filter(|l| l.contains("MQTT connection failed"))
        .collect::<Vec<_>>();
    // Each failing source says why on every attempt, naming itself; the
    // secured one never fails.
    for (source, why) in [
        (
            "wrong-password",
            "the broker refused the connection (NotAuthorized)",
        ),
        ("untrusted-ca", "UnknownIssuer"),
        ("no-client-cert", "CertificateRequired"),
    ] {
        let mine: Vec<&&String> = failures
            .iter()
            .filter(|l| l.contains(&format!("source={source} ")))
            .collect();
        assert!(!mine.is_empty(), "{source} logged no failure");
        assert!(mine.iter().all(|l| l.contains(why)), "{source}: {mine:#?}");
    }
    assert!(
        !failures.iter().any(|l| l.contains("source=secured ")),
        "{failures:#?}"
    );
    let acl_errors: Vec<&String> = output
        .iter()
        .filter(|l| l.contains("refused this source's subscription"))
        .collect();
    assert_eq!(acl_errors.len(), 1, "one clear error: {acl_errors:#?}");
    assert!(
        acl_errors[0].contains("source=forbidden"),
        "{}",
        acl_errors[0]
    );
    assert!(
        acl_errors[0].contains("refused=acme/#"),
        "{}",
        acl_errors[0]
    );
    let key_line = pki.client.1.lines().nth(1).unwrap();
    for secret in [PASSWORD, WRONG, VIEWER_PASSWORD, key_line] {
        let leaks: Vec<&String> = output.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "a secret in the log: {leaks:#?}");
    }
}
