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
    mosquitto_password_file_users(dir, &[(user, password)])
}

/// [`mosquitto_password_file`] for several `(user, password)`.
pub fn mosquitto_password_file_users(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
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
    for (user, password) in users {
        let made = std::process::Command::new(&tool)
            .arg("-b")
            .arg(&passwd)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(made.success(), "mosquitto_passwd {user}: {made}");
    }
    std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("password file readable");
    passwd
}

/// A user of Mosquitto's dynamic-security plugin, and the topic filters it
/// may subscribe to (none: every subscription refused, as the plugin's
/// default ACL does).
pub struct DynsecUser<'a> {
    /// Username.
    pub user: &'a str,
    /// Password.
    pub password: &'a str,
    /// Filters it may subscribe to (and receive).
    pub subscribe: &'a [&'a str],
}

/// The dynamic-security plugin's configuration `dir/dynsec.json` for
/// `users`, and the plugin's path. Unlike the `acl_file`, which grants any
/// subscription and filters at delivery, this plugin refuses a forbidden
/// subscription in its SUBACK, as EMQX and HiveMQ do. The password hashes
/// are made by `mosquitto_ctrl dynsec init` (package `mosquitto-clients`).
pub fn mosquitto_dynsec(dir: &Path, users: &[DynsecUser]) -> (PathBuf, PathBuf) {
    let plugin = ["/usr/lib", "/usr/local/lib", "/usr/lib64"]
        .iter()
        .flat_map(|d| {
            let d = PathBuf::from(d);
            let arch = std::fs::read_dir(&d)
                .map(|r| r.flatten().map(|e| e.path()).collect::<Vec<_>>())
                .unwrap_or_default();
            std::iter::once(d).chain(arch)
        })
        .map(|d| d.join("mosquitto_dynamic_security.so"))
        .find(|p| p.exists())
        .expect("Mosquitto's dynamic-security plugin (Debian package mosquitto)");
    let tool = ["/usr/bin/mosquitto_ctrl", "/usr/local/bin/mosquitto_ctrl"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("mosquitto_ctrl (Debian package mosquitto-clients)");
    let mut clients = Vec::new();
    let mut roles = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let one = dir.join(format!("dynsec-{i}.json"));
        let made = std::process::Command::new(&tool)
            .args(["dynsec", "init"])
            .arg(&one)
            .args([u.user, u.password])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("mosquitto_ctrl runs");
        assert!(made.success(), "mosquitto_ctrl dynsec init: {made}");
        let text = std::fs::read_to_string(&one).expect("mosquitto_ctrl's file");
        let init: serde_json::Value = serde_json::from_str(&text).expect("dynsec JSON");
        let mut client = init["clients"][0].clone();
        let role = format!("read-{i}");
        client["roles"] = serde_json::json!([{ "rolename": role }]);
        clients.push(client);
        let acls: Vec<serde_json::Value> = u
            .subscribe
            .iter()
            .map(|t| serde_json::json!({"acltype": "subscribePattern", "topic": t, "allow": true}))
            .collect();
        roles.push(serde_json::json!({ "rolename": role, "acls": acls }));
    }
    let config = serde_json::json!({
        "clients": clients,
        "roles": roles,
        "defaultACLAccess": {
            "publishClientSend": false,
            "publishClientReceive": true,
            "subscribe": false,
            "unsubscribe": true
        }
    });
    let path = write_readable(dir, "dynsec.json", &config.to_string());
    (plugin, path)
}
