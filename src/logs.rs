//! Logging: `tracing` to stderr (around a progress bar, never through
//! it: [`crate::progress::LogWriter`]), or to a file while the dashboard
//! owns the terminal. The MQTT crates' internals (the embedded broker logs every
//! connection at INFO) are kept at WARN unless the filter names them:
//! see [`ctower_collector::broker::log_filter`].

use anyhow::Context;
use std::path::Path;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to stderr with `filter` (tracing `EnvFilter` syntax).
pub fn init(filter: &str) -> anyhow::Result<()> {
    let filter = env_filter(filter)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(crate::progress::LogWriter)
        .finish()
        .with(KnownNoise)
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
        .finish()
        .with(KnownNoise)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// The user's `--log` filter with the MQTT crates kept quiet.
fn env_filter(filter: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    let filter = ctower_collector::broker::log_filter(filter);
    tracing_subscriber::EnvFilter::try_new(&filter).with_context(|| format!("--log `{filter}`"))
}

/// Drops one known false alarm: rumqttd 0.20's router logs "no-connection
/// id N is already gone" at ERROR whenever a client of the embedded broker
/// disconnects (it handles the disconnection twice), so every stop of the
/// demo printed an error. Everything else rumqttd logs at WARN and above
/// stays.
struct KnownNoise;

impl<S: Subscriber> Layer<S> for KnownNoise {
    fn event_enabled(&self, event: &Event<'_>, _: LayerContext<'_, S>) -> bool {
        !is_known_noise(event.metadata().target(), |v| event.record(v))
    }
}

/// Whether an event of `target` whose fields `record` visits is the
/// known false alarm.
fn is_known_noise(target: &str, record: impl FnOnce(&mut dyn Visit)) -> bool {
    if target != "rumqttd::router::routing" {
        return false;
    }
    struct Message(bool);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let text = format!("{value:?}");
                self.0 =
                    text.starts_with("no-connection id ") && text.ends_with(" is already gone");
            }
        }
    }
    let mut m = Message(false);
    record(&mut m);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>);
    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &Event<'_>, _: LayerContext<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn only_the_known_false_alarm_is_dropped() {
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Count(seen.clone()))
            .with(KnownNoise);
        tracing::subscriber::with_default(subscriber, || {
            let id = 3;
            tracing::error!(target: "rumqttd::router::routing", "no-connection id {} is already gone", id);
            assert_eq!(
                seen.load(Ordering::Relaxed),
                0,
                "the false alarm is dropped"
            );
            tracing::error!(target: "rumqttd::router::routing", "no space for new connection");
            tracing::error!(target: "other", "no-connection id {} is already gone", id);
            tracing::warn!(target: "rumqttd::router::routing", "Read cursor start jumped");
        });
        assert_eq!(seen.load(Ordering::Relaxed), 3, "everything else is kept");
    }
}
