//! Test certificates and broker secrets: a CA with a server certificate
//! (for `localhost` and 127.0.0.1) and a client certificate, made with
//! rcgen for one test, and Mosquitto's password file.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA and two certificates it signed, as PEM text.
pub struct TestPki {
    /// The CA's certificate.
    pub ca_pem: String,
    /// The server certificate and its private key (for `localhost` and
    /// 127.0.0.1).
    pub server: (String, String),
    /// A client certificate and its private key.
    pub client: (String, String),
}

impl TestPki {
    /// A fresh CA named `name`, with its server and client certificates.
    pub fn new(name: &str) -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        TestPki {
            ca_pem: ca.pem(),
            server: issued(&["localhost", "127.0.0.1"], &ca, &ca_key),
            client: issued(&["ctower-client"], &ca, &ca_key),
        }
    }
}

fn issued(names: &[&str], ca: &rcgen::Certificate, ca_key: &KeyPair) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, ca, ca_key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// Writes `text` to `dir/name`, readable by everyone (a broker started as
/// root reads its files as the user it drops to).
pub fn write_readable(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("making a test file readable");
    path
}

/// Mosquitto's password file `dir/passwd` for `user` and `password`, made
/// by `mosquitto_passwd` (Debian package `mosquitto`, beside the broker).
pub fn mosquitto_password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let broker = crate::services::MOSQUITTO
        .locate()
        .expect("mosquitto (the password file goes with it)");
    let tool = [
        "/usr/bin/mosquitto_passwd",
        "/usr/local/bin/mosquitto_passwd",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(broker.parent().map(|d| d.join("mosquitto_passwd")))
    .find(|p| p.exists())
    .expect("mosquitto_passwd (Debian package mosquitto) beside mosquitto");
    let passwd = write_readable(dir, "passwd", "");
    let made = std::process::Command::new(tool)
        .arg("-b")
        .arg(&passwd)
        .args([user, password])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(made.success(), "mosquitto_passwd: {made}");
    std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("password file readable");
    passwd
}
