//! Logging: `tracing` to stderr, or to a file while the dashboard owns
//! the terminal. The MQTT crates' internals (the embedded broker logs every
//! connection at INFO) are kept at WARN unless the filter names them:
//! see [`ctower_collector::broker::log_filter`].

use anyhow::Context;
use std::path::Path;

/// Logs to stderr with `filter` (tracing `EnvFilter` syntax).
pub fn init(filter: &str) -> anyhow::Result<()> {
    let filter = env_filter(filter)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// Logs to the file `path` (appended; its directory is created).
pub fn init_file(filter: &str, path: &Path) -> anyhow::Result<()> {
    let filter = env_filter(filter)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// The user's `--log` filter with the MQTT crates kept quiet.
fn env_filter(filter: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    let filter = ctower_collector::broker::log_filter(filter);
    tracing_subscriber::EnvFilter::try_new(&filter).with_context(|| format!("--log `{filter}`"))
}
