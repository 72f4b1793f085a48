//! TLS to a broker (`mqtts://`): rustls with the `ring` provider (no
//! OpenSSL, no C crypto build), the broker's certificate checked against a
//! CA file or the system's trusted roots, its name checked against the
//! host of the URL (always: there is no switch to turn it off), and an
//! optional client certificate for brokers that require one.
//!
//! The files are read when the configuration is checked, so `ctower check`
//! reports a missing or unreadable one with its key, and a running source
//! never meets it. Nothing of a key is ever printed: [`Tls`]'s `Debug`
//! shows the file names only.

use ctower_model::{key_field, ConfigIssue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A client certificate chain and its private key.
type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// `[sources.tls]` as written: where the certificates are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) the broker's certificate must be
    /// signed by; default: the system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (and its chain), for a broker
    /// that requires one; with `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1
    /// or SEC1).
    pub client_key_file: Option<PathBuf>,
}

/// A checked TLS setup: the rustls client configuration a source connects
/// with. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    /// The rustls configuration.
    pub config: Arc<ClientConfig>,
    /// Where the trusted roots came from (`the system's trusted roots`, or
    /// the CA file), for logs.
    pub roots: String,
    /// The client certificate's file, when one is sent.
    pub client_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: only where things came from.
        f.debug_struct("Tls")
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Tls {
    /// Same files, same setup (the configuration holds no comparable form).
    fn eq(&self, other: &Self) -> bool {
        self.roots == other.roots && self.client_cert == other.client_cert
    }
}

impl TlsConfig {
    /// Reads the files and builds the client configuration; `key` is the
    /// table's path (`sources[0].tls`). Every problem is pushed with its
    /// key; `None` exactly when one was.
    pub fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Tls> {
        let before = issues.len();
        let roots = match &self.ca_file {
            Some(path) => read_roots(path).map_err(|m| {
                issues.push(ConfigIssue::new(key_field(key, "ca_file"), m));
            }),
            None => system_roots().map_err(|m| {
                issues.push(ConfigIssue::new(key_field(key, "ca_file"), m));
            }),
        };
        let client = self.check_client(key, issues);
        if issues.len() > before {
            return None;
        }
        let (roots, client) = (roots.ok()?, client?);
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| issues.push(ConfigIssue::new(key, format!("TLS: {e}"))))
                .ok()?
                .with_root_certificates(roots);
        let config = match client {
            Some((chain, private_key)) => builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| {
                    issues.push(ConfigIssue::new(
                        key_field(key, "client_key_file"),
                        format!("does not go with client_cert_file: {e}"),
                    ))
                })
                .ok()?,
            None => builder.with_no_client_auth(),
        };
        Some(Tls {
            config: Arc::new(config),
            roots: self.ca_file.as_ref().map_or_else(
                || "the system's trusted roots".to_string(),
                |p| p.display().to_string(),
            ),
            client_cert: self.client_cert_file.clone(),
        })
    }

    /// The client certificate chain and key, when both are given (`None`:
    /// a problem was pushed).
    fn check_client(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Option<ClientAuth>> {
        match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => Some(None),
            (Some(_), None) | (None, Some(_)) => {
                let missing = if self.client_cert_file.is_none() {
                    "client_cert_file"
                } else {
                    "client_key_file"
                };
                issues.push(ConfigIssue::new(
                    key_field(key, missing),
                    "a client certificate needs both client_cert_file and client_key_file",
                ));
                None
            }
            (Some(cert), Some(private_key)) => {
                let chain = read_certs(cert).map_err(|m| {
                    issues.push(ConfigIssue::new(key_field(key, "client_cert_file"), m))
                });
                let private_key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| {
                    issues.push(ConfigIssue::new(
                        key_field(key, "client_key_file"),
                        format!("`{}`: no private key read ({e})", private_key.display()),
                    ))
                });
                Some(Some((chain.ok()?, private_key.ok()?)))
            }
        }
    }
}

impl Tls {
    /// TLS with the system's trusted roots and no client certificate: what
    /// an `mqtts://` URL on the command line (`ctower replay`) gets.
    pub fn system() -> Result<Tls, String> {
        let mut issues = Vec::new();
        TlsConfig::default()
            .check("tls", &mut issues)
            .ok_or_else(|| {
                let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
                all.join("; ")
            })
    }
}

/// The certificates of a PEM file, at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The trusted roots of a CA file.
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("`{}`: not a usable CA certificate ({e})", path.display()))?;
    }
    Ok(roots)
}

/// The system's trusted roots (what its TLS libraries trust).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no trusted root certificate found on this system ({} error(s) reading them): \
             give the broker's CA as ca_file",
            found.errors.len()
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(c: &TlsConfig) -> Vec<String> {
        let mut issues = Vec::new();
        assert!(c.check("sources[0].tls", &mut issues).is_none());
        issues.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn missing_files_and_half_client_certificates_are_reported_with_their_keys() {
        let c = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            client_cert_file: Some("/nonexistent/client.pem".into()),
            client_key_file: None,
        };
        let shown = issues_of(&c);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("sources[0].tls.ca_file: `/nonexistent/ca.pem`"));
        assert!(shown[1].starts_with("sources[0].tls.client_key_file: "));
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("ctower-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let shown = issues_of(&TlsConfig {
            ca_file: Some(empty),
            ..TlsConfig::default()
        });
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].contains("holds no PEM certificate"), "{shown:?}");
    }
}
