//! `ctower check`: a configuration validated exactly as `ctower run` reads
//! it (the file, the `CTOWER__…` environment over it, every type and
//! semantic check), without needing the secrets of parts it does not use:
//! a secret's variable that is set must hold a usable secret, one that is
//! not set is a note, not a problem. With `--connect`, each source and
//! each webhook is tried once.

use crate::settings::{self, Loaded, SecretRef};
use ctower_alerts::{Hook, Secrets};
use ctower_collector::config::SecretRef as PasswordRef;
use ctower_collector::endpoint::{BrokerAddr, BrokerEndpoint};
use ctower_collector::probe::probe_source;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// What a check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Problems in the configuration (each printed with file, line, key).
    pub problems: usize,
    /// Sources or webhooks that could not be reached (with `--connect`).
    pub unreachable: usize,
}

impl Outcome {
    /// Whether everything checked passed.
    pub fn passed(&self) -> bool {
        self.problems == 0 && self.unreachable == 0
    }
}

/// Checks the configuration `path` with the environment `vars` over it,
/// writing what it finds to `out`; with `connect`, also tries each source
/// and webhook once, each attempt bounded by that duration.
pub fn check(
    path: &Path,
    vars: &[(String, String)],
    connect: Option<Duration>,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let loaded = match settings::read(path, vars, Secrets::IfSet(&lookup)) {
        Ok(loaded) => loaded,
        Err(issues) => {
            writeln!(out, "{}", settings::report(path, &issues))?;
            return Ok(Outcome {
                problems: issues.len(),
                unreachable: 0,
            });
        }
    };
    summary(path, &loaded, out)?;
    let unset: Vec<&SecretRef> = loaded
        .secrets
        .iter()
        .filter(|r| {
            if is_file(r) {
                PasswordRef::read_file(Path::new(&r.var)).is_none()
            } else {
                lookup(&r.var).is_none()
            }
        })
        .collect();
    for r in &unset {
        let line = r.at.line.map(|l| format!(":{l}")).unwrap_or_default();
        let what = if is_file(r) {
            format!("the file {}, which cannot be read here", r.var)
        } else {
            format!("{}, which is not set here", r.var)
        };
        writeln!(
            out,
            "  note: {}{line}: {} names {what}; `ctower run` needs it",
            r.at.source, r.key
        )?;
    }
    let unreachable = match connect {
        Some(timeout) => try_connections(&loaded, &unset, timeout, out)?,
        None => 0,
    };
    Ok(Outcome {
        problems: 0,
        unreachable,
    })
}

/// Whether a secret's key names a file rather than a variable.
fn is_file(r: &SecretRef) -> bool {
    r.key.ends_with("_file")
}

/// The one line saying what the configuration holds.
fn summary(path: &Path, loaded: &Loaded, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &loaded.settings;
    writeln!(
        out,
        "{}: OK: {} source(s), {} alarm rule(s), {} hook(s), {} worker(s), journal in {}",
        path.display(),
        s.sources.len(),
        s.rules.len(),
        s.hooks.len(),
        s.workers,
        s.journal_dir.display()
    )
}

/// Tries each source and webhook once; returns how many failed.
fn try_connections(
    loaded: &Loaded,
    unset: &[&SecretRef],
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = 0;
    for (i, source) in loaded.settings.sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        let line = runtime.block_on(try_source(i, source, unset, timeout));
        failed += usize::from(line.starts_with("FAILED"));
        writeln!(out, "  {key} ({}): {line}", source.name)?;
    }
    for (i, hook) in loaded.settings.hooks.iter().enumerate() {
        let key = format!("alerts.hooks[{i}]");
        let line = match hook {
            Hook::Log(_) => "log hook: writes to ctower's log, nothing to try".to_string(),
            Hook::Webhook(w) => runtime.block_on(try_webhook(w.address(), timeout)),
        };
        failed += usize::from(line.starts_with("FAILED"));
        writeln!(out, "  {key} ({}): {line}", hook.name())?;
    }
    Ok(failed)
}

/// One source: an MQTT connection and its subscriptions.
async fn try_source(
    index: usize,
    source: &ctower_collector::Source,
    unset: &[&SecretRef],
    timeout: Duration,
) -> String {
    let password = [
        format!("sources[{index}].password_env"),
        format!("sources[{index}].password_file"),
    ];
    if let Some(r) = unset.iter().find(|r| password.contains(&r.key)) {
        return format!("not tried: its password ({}) is not available here", r.var);
    }
    let endpoint = match &source.broker {
        BrokerAddr::Embedded => {
            return "embedded: the broker ctower starts itself, nothing to try".into()
        }
        addr @ BrokerAddr::Tcp { .. } => match BrokerEndpoint::resolve(addr, None) {
            Ok(e) => e,
            Err(e) => return format!("FAILED: {e}"),
        },
    };
    match probe_source(source, &endpoint, timeout).await {
        Ok(r) if r.refused_filters.is_empty() => {
            format!("connected to {endpoint}, subscriptions accepted")
        }
        Ok(r) => format!(
            "FAILED: connected to {endpoint}, but it refused the subscription(s) {}",
            r.refused_filters.join(", ")
        ),
        Err(e) => format!("FAILED: {endpoint}: {e}"),
    }
}

/// One webhook: a TCP connection to its host and port. Nothing is sent:
/// a test request would page whoever is on call.
async fn try_webhook(address: Option<(String, u16)>, timeout: Duration) -> String {
    let Some((host, port)) = address else {
        return "FAILED: its URL names no host".into();
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(_)) => format!("TCP connection to {host}:{port} accepted (nothing sent)"),
        Ok(Err(e)) => format!("FAILED: {host}:{port}: {e}"),
        Err(_) => format!(
            "FAILED: {host}:{port}: no answer within {} s",
            timeout.as_secs_f64()
        ),
    }
}
