//! Progress bars for long work (replay, batch), on stderr, hidden when
//! stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn records_bar(show: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if !show {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} {pos} messages ({per_sec}) {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
