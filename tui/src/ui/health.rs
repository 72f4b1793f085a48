//! The header's second line: the pipeline's own health (ingest rate,
//! watermark lag, dead letters, failing stages, outboxes, corrections,
//! late drops)
//! and the alarm counts.

use super::format::{fmt_duration_ms, fmt_rate};
use crate::app::App;
use ctower_model::PipelineMetrics;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Draws the health line.
pub(super) fn render(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    match app.metrics() {
        Some(m) => pipeline_spans(&mut spans, m, app.corrections()),
        None => spans.push(Span::raw("pipeline metrics: none yet").dark_gray()),
    }
    spans.push(sep());
    spans.push(alarm_span(app));
    frame.render_widget(Line::from(spans), area);
}

fn sep() -> Span<'static> {
    Span::raw(" │ ").dark_gray()
}

/// The pipeline's figures, from its latest self-metrics.
fn pipeline_spans(spans: &mut Vec<Span<'static>>, m: &PipelineMetrics, corrections: u64) {
    spans.push(Span::raw(format!(
        "ingest {} msg/s",
        fmt_rate(m.ingest_rate_per_s)
    )));
    spans.push(sep());
    spans.push(Span::raw(format!(
        "watermark lag {}",
        fmt_duration_ms(m.watermark_lag_ms)
    )));
    spans.push(sep());
    let dl = m.dead_letter_total();
    let dl_span = Span::raw(format!("dead letters {dl}"));
    spans.push(if dl > 0 { dl_span.yellow() } else { dl_span });
    for f in &m.faults {
        spans.push(sep());
        spans.push(
            Span::raw(format!(
                "{}: {} ({}, {} lost)",
                f.stage, f.error, f.path, f.lost
            ))
            .red()
            .bold(),
        );
    }
    for o in &m.outboxes {
        spans.push(sep());
        spans.push(outbox_span(o));
    }
    nonzero(spans, "corrections", corrections, Style::new().cyan());
    // Admitted but too late for any window the stream still keeps.
    nonzero(spans, "late dropped", m.late_dropped, Style::new().yellow());
}

/// An outbox in front of a remote store: its depth (and age) when lines
/// wait, yellow while writes fail.
fn outbox_span(o: &ctower_model::OutboxStatus) -> Span<'static> {
    let text = match o.oldest_age_ms {
        Some(age) if o.pending_lines > 0 => format!(
            "{} outbox {} lines, {} old",
            o.name,
            o.pending_lines,
            fmt_duration_ms(age)
        ),
        _ => format!("{} outbox empty", o.name),
    };
    let span = Span::raw(text);
    if o.last_error.is_some() || o.lost > 0 {
        span.yellow().bold()
    } else {
        span
    }
}

/// Adds `label n` (after a separator) when `n` is not zero: a count that
/// is only news when something happened.
fn nonzero(spans: &mut Vec<Span<'static>>, label: &str, n: u64, style: Style) {
    if n > 0 {
        spans.push(sep());
        spans.push(Span::raw(format!("{label} {n}")).style(style));
    }
}

/// Listed and unacknowledged alarms: red while any is unacknowledged.
fn alarm_span(app: &App) -> Span<'static> {
    let alarms = app.alarm_count();
    let unack = app.unacked_count();
    let span = Span::raw(format!("alarms {alarms} ({unack} unack)"));
    if unack > 0 {
        span.red().bold()
    } else if alarms > 0 {
        span.yellow()
    } else {
        span
    }
}
