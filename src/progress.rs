//! Progress of long work (replay, simulate, batch) on stderr: a bar with a
//! total and an ETA once the total is known, a spinner with the count and
//! the elapsed time until then (and for work without an end, a looping
//! replay). Hidden when stderr is not a terminal.
//!
//! Rates are whole numbers with thousands separators (`12,480/s`), and a
//! log line never tears the bar: the log writer ([`LogWriter`], used by
//! [`crate::logs`]) clears the bar, writes the line and draws the bar
//! again below it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;

/// The bar on screen, if any: log lines are written around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A progress bar for `unit`s of work (`records`, `s of plant time` …).
pub struct Bar {
    bar: ProgressBar,
    unit: &'static str,
}

impl Bar {
    /// A bar (`show`: drawn; otherwise hidden) for work named `what`,
    /// counted in `unit`, of `total` units when known.
    pub fn new(show: bool, what: &str, unit: &'static str, total: Option<u64>) -> Bar {
        let bar = ProgressBar::new_spinner();
        if !show {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_message(what.to_string());
        let b = Bar { bar, unit };
        match total {
            Some(t) => b.set_total(t),
            None => b.bar.set_style(style(SPINNER, unit)),
        }
        b.bar.enable_steady_tick(Duration::from_millis(200));
        if show {
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(b.bar.clone());
            }
        }
        b
    }

    /// The total is known: from now on a bar with an ETA.
    pub fn set_total(&self, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
            self.bar.set_style(style(BAR, self.unit));
        }
    }

    /// Whether the total is known.
    pub fn has_total(&self) -> bool {
        self.bar.length().is_some()
    }

    /// Units done so far.
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// The text before the bar.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// A handle for another thread.
    pub fn handle(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// Removes the bar from the screen (as dropping it does).
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
    }
}

const SPINNER: &str = "{spinner} {msg} {pos_sep} {unit} · {rate} · {elapsed}";
const BAR: &str = "{msg} [{bar:30}] {percent:>3}% {pos_sep}/{len_sep} {unit} · {rate} · ETA {eta}";

fn style(template: &str, unit: &'static str) -> ProgressStyle {
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| {
        // The templates are constants: a broken one is a bug, shown plainly.
        ProgressStyle::default_spinner()
    });
    style
        .progress_chars("=> ")
        .with_key(
            "unit",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(unit);
            },
        )
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", thousands(s.per_sec().max(0.0).round() as u64));
        })
        .with_key(
            "pos_sep",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&thousands(s.pos()));
            },
        )
        .with_key(
            "len_sep",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&s.len().map_or_else(|| "?".into(), thousands));
            },
        )
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// stderr for the logs: while a bar is drawn, each log line is written
/// with the bar cleared and drawn again after it. The fmt subscriber
/// writes one event per `write` call, so a line is never split.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = ACTIVE.lock().ok().and_then(|a| a.clone());
        match active {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_counts_are_whole_numbers_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(606_096), "606,096");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn a_spinner_becomes_a_bar_when_the_total_is_known() {
        let bar = Bar::new(false, "replay", "records", None);
        assert!(!bar.has_total());
        bar.set_position(10);
        bar.set_total(1_000);
        assert!(bar.has_total());
        assert_eq!(bar.handle().length(), Some(1_000));
        assert_eq!(bar.handle().position(), 10);
        let known = Bar::new(false, "simulate", "s", Some(3_600));
        assert_eq!(known.handle().length(), Some(3_600));
    }

    #[test]
    fn the_templates_parse() {
        assert!(ProgressStyle::with_template(SPINNER).is_ok());
        assert!(ProgressStyle::with_template(BAR).is_ok());
    }
}
