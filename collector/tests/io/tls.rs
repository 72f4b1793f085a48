//! TLS to a real Mosquitto that requires it (issue #10, secured sources):
//! a CA, a server certificate and a client certificate made for the test
//! (`ctower_testkit::pki`),
//! a password file (`mosquitto_passwd`) and an ACL. A source with the
//! right CA, certificate and password connects over TLS and ingests; a
//! wrong password, an untrusted server certificate and a missing client
//! certificate each fail with an error saying so.

use crate::common::*;
use ctower_collector::mqtt::SourceStatus;
use ctower_collector::probe::probe_source;
use ctower_collector::tls::TlsConfig;
use ctower_collector::SourceConfig;
use ctower_testkit::pki::{mosquitto_password_file, write_readable as write, TestPki};
use std::path::Path;
use std::time::Duration;

const USER: &str = "plant-gw";
const PASSWORD: &str = "s3cret-Pa55";

/// Mosquitto with TLS on its port (client certificates required), a
/// password, and an ACL allowing `acme/#`; plus a plain listener on
/// `plain` for the test's publisher (password required there too).
fn secured_broker(pki: &TestPki, plain: u16) -> Option<Mosquitto> {
    Mosquitto::start_secured_or_skip(&|dir| {
        let ca = write(dir, "ca.pem", &pki.ca_pem);
        let cert = write(dir, "server.pem", &pki.server.0);
        let key = write(dir, "server.key", &pki.server.1);
        let acl = write(
            dir,
            "acl",
            &format!("user {USER}\ntopic readwrite acme/#\n"),
        );
        let passwd = mosquitto_password_file(dir, USER, PASSWORD);
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
             allow_anonymous false\npassword_file {}\nacl_file {}\n\
             listener {plain} 127.0.0.1\n",
            ca.display(),
            cert.display(),
            key.display(),
            passwd.display(),
            acl.display()
        )
    })
}

/// A TLS source to `port`: `tls` as given, the user and `password`.
fn tls_source(name: &str, port: u16, tls: TlsConfig, password: &str) -> ctower_collector::Source {
    let cfg = SourceConfig {
        name: name.into(),
        broker_url: format!("mqtts://localhost:{port}"),
        client_id: Some(format!("ctower-test-{name}")),
        subscriptions: vec!["acme/#".into()],
        qos: Some(1),
        keep_alive_secs: Some(10),
        username: Some(USER.into()),
        password_env: Some("TEST_PASSWORD".into()),
        tls: Some(tls),
        ..Default::default()
    };
    let mut issues = vec![];
    let password = password.to_string();
    let s = cfg.check("sources[0]", &|_| Some(password.clone()), &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    s.unwrap()
}

/// The error of the source's first failed connection.
async fn first_error(spec: ctower_collector::Source) -> String {
    let mut source = Source::spawn(spec, None);
    source
        .wait_status(|s| matches!(s, SourceStatus::Disconnected { .. }))
        .await;
    let error = match &*source.status.borrow() {
        SourceStatus::Disconnected { error, .. } => error.clone(),
        other => panic!("{other:?}"),
    };
    let stats = source.stop().await;
    assert_eq!(stats.connections, 0, "{error}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_and_password_connects_and_every_fault_says_why() {
    let pki = TestPki::new("ctower test CA");
    let rogue = TestPki::new("someone else's CA");
    let plain = free_port();
    let Some(m) = secured_broker(&pki, plain) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let rogue_ca = write(dir.path(), "rogue-ca.pem", &rogue.ca_pem);
    let client_cert = write(dir.path(), "client.pem", &pki.client.0);
    let client_key = write(dir.path(), "client.key", &pki.client.1);
    let good = TlsConfig {
        ca_file: Some(ca.clone()),
        client_cert_file: Some(client_cert.clone()),
        client_key_file: Some(client_key.clone()),
    };

    // The right CA, certificate and password: connected over TLS, and the
    // messages published to the broker arrive.
    let mut source = Source::start(tls_source("good", m.port, good.clone(), PASSWORD), None).await;
    let recs = records(50, 1, "tls");
    publish_as(dir.path(), &recs, plain, USER, PASSWORD).await;
    assert_same(&source.collect(50).await, &recs, 7);
    let stats = source.stop().await;
    assert_eq!((stats.connections, stats.received), (1, 50));

    // A wrong password.
    let e = first_error(tls_source("wrong-password", m.port, good.clone(), "nope")).await;
    assert!(
        e.contains("NotAuthorized") || e.contains("BadUserNamePassword"),
        "{e}"
    );
    assert!(!e.contains("nope") && !e.contains(PASSWORD), "{e}");

    // A server certificate the source does not trust.
    let untrusted = TlsConfig {
        ca_file: Some(rogue_ca),
        ..good.clone()
    };
    let e = first_error(tls_source("untrusted", m.port, untrusted, PASSWORD)).await;
    assert!(
        e.contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );

    // No client certificate, where the broker requires one.
    let anonymous = TlsConfig {
        ca_file: Some(ca),
        client_cert_file: None,
        client_key_file: None,
    };
    let e = first_error(tls_source("no-client-cert", m.port, anonymous, PASSWORD)).await;
    assert!(!e.is_empty(), "{e}");

    // `ctower check --connect`'s probe goes over TLS too. (A filter the ACL
    // forbids: `tests/tls_live.rs`, with Mosquitto's dynamic-security
    // plugin, which refuses it in the SUBACK; this broker's password file
    // and `acl_file` grant every subscription and filter at delivery.)
    let probed = tls_source("probe", m.port, good, PASSWORD);
    let endpoint =
        ctower_collector::endpoint::BrokerEndpoint::resolve(&probed.broker, None).unwrap();
    assert_eq!(
        endpoint.to_string(),
        format!("mqtts://localhost:{}", m.port)
    );
    let report = probe_source(&probed, &endpoint, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(report.refused_filters.is_empty(), "{}", m.log());
}

/// Publishes `recs` to the plain listener `port` as `user`.
async fn publish_as(
    dir: &Path,
    recs: &[ctower_model::ReplayRecord],
    port: u16,
    user: &str,
    password: &str,
) {
    let path = dir.join("publish.jsonl.gz");
    write_recording(&path, recs);
    let mut opts = ctower_collector::replay::PublishOptions::new("ctower-test-tls-pub");
    opts.speed = ctower_collector::replay::Speed::Max;
    opts.credentials = Some(ctower_collector::config::Credentials {
        username: user.into(),
        password: password.into(),
    });
    let endpoint = ctower_collector::endpoint::BrokerEndpoint::new("127.0.0.1", port);
    let stats = tokio::time::timeout(
        WAIT,
        ctower_collector::replay::publish_recording(&path, &endpoint, opts, |_| {}),
    )
    .await
    .expect("published in time")
    .unwrap();
    assert_eq!(stats.published, recs.len() as u64);
}
