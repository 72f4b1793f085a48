//! One site's tile: OEE and its factors, power and energy per good unit,
//! water recovery, the shifts, and how fresh its data is.

use super::format::{
    avg_kw, fmt_age, fmt_num, fmt_opt, fmt_pct, fmt_pct0, oee_style, truncate_line, DASH,
};
use crate::app::STALE_COVERAGE;
use ctower_model::KpiRecord;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};
use ratatui::Frame;

/// Tile height: five lines of content and the borders.
pub(super) const TILE_H: u16 = 8;

/// What one tile shows.
pub(super) struct SiteTile<'a> {
    /// Position in the site list (shown 1-based: the digit key that jumps to it).
    pub index: usize,
    pub name: &'a str,
    /// Newest site-level window.
    pub kpi: Option<&'a KpiRecord>,
    /// Latest finished (or corrected) shift.
    pub last_shift: Option<&'a KpiRecord>,
    /// Wall time of the site's last KPI, ms since the epoch.
    pub last_update_ms: Option<i64>,
    /// Listed alarms in the site.
    pub alarms: usize,
    pub stale: bool,
    pub selected: bool,
}

impl SiteTile<'_> {
    /// Draws the tile in `area`; `now_ms` (wall time) ages its data.
    pub(super) fn render(&self, frame: &mut Frame, area: Rect, now_ms: i64) {
        let block = self.block();
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let w = inner.width as usize;

        let mut lines = Vec::with_capacity(6);
        match self.kpi {
            Some(k) => lines.extend(kpi_lines(k, w)),
            None => {
                lines.push(Line::from("no site KPI yet").dark_gray());
                lines.extend(std::iter::repeat_n(Line::from(""), 3));
            }
        }
        lines.push(self.shift_line(w));
        lines.push(self.status_line(now_ms, w));
        let lines: Vec<Line> = lines.into_iter().map(|l| truncate_line(l, w)).collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }

    /// The border: thick and cyan when selected, with the alarm count.
    fn block(&self) -> Block<'static> {
        let marker = if self.selected { "▶" } else { " " };
        let title = format!("{marker}{} {} ", self.index + 1, self.name);
        let mut block = Block::bordered().title(Line::from(title));
        if self.alarms > 0 {
            let alarms = Span::from(format!(" ALARMS {} ", self.alarms)).bold().red();
            block = block.title_top(Line::from(alarms).right_aligned());
        }
        if self.selected {
            block
                .border_type(BorderType::Thick)
                .border_style(Style::new().cyan().bold())
                .title_style(Style::new().cyan().bold())
        } else {
            block.border_style(Style::new().dark_gray())
        }
    }

    /// The shift now (from the calendar) and the last one that ended;
    /// empty when it does not fit whole.
    fn shift_line(&self, w: usize) -> Line<'static> {
        let mut shift = Vec::new();
        if let Some(now) = self.kpi.and_then(|k| k.shift.as_deref()) {
            shift.push(Span::raw(format!("shift {now}")));
        }
        if let Some(s) = self.last_shift {
            if !shift.is_empty() {
                shift.push(Span::raw(" · ").dark_gray());
            }
            let name = s.shift.as_deref().unwrap_or("?");
            let rev = if s.revision > 0 { "*" } else { "" };
            shift.push(Span::raw(format!(
                "{name} OEE {}{rev}",
                fmt_pct(s.ratios.oee)
            )));
        }
        let shift = Line::from(shift);
        if shift.width() <= w {
            shift
        } else {
            Line::from("")
        }
    }

    /// How fresh the data is, STALE with the data coverage when low.
    fn status_line(&self, now_ms: i64, w: usize) -> Line<'static> {
        let age = match self.last_update_ms {
            Some(t) if self.stale => fmt_age(now_ms - t),
            Some(t) => format!("updated {}", fmt_age(now_ms - t)),
            None => "no data".to_string(),
        };
        let mut status = Vec::new();
        if self.stale {
            status.push(Span::from(" STALE ").bold().black().on_yellow());
            status.push(Span::raw(" "));
        }
        status.push(Span::raw(age));
        let low_coverage = self
            .kpi
            .and_then(|k| k.ratios.data_coverage)
            .filter(|c| self.stale && *c < STALE_COVERAGE);
        if let Some(c) = low_coverage {
            let cov = Span::raw(format!(" · data {}", fmt_pct0(Some(c)))).yellow();
            // Only when it fits whole: a cut percentage would mislead.
            if Line::from(status.clone()).width() + cov.width() <= w {
                status.push(cov);
            }
        }
        Line::from(status)
    }
}

/// OEE, its factors, power and energy per good unit, water recovery.
fn kpi_lines(k: &KpiRecord, w: usize) -> [Line<'static>; 4] {
    let r = &k.ratios;
    let oee_style = r.oee.map_or(Style::new(), oee_style);
    let oee = Line::from(vec![
        Span::raw("OEE "),
        Span::raw(fmt_pct(r.oee)).style(oee_style.bold()),
    ]);
    // P as the OEE uses it (at most 100 %), so that the three factors shown
    // multiply to the OEE shown; `↑` marks a measured performance above
    // 100 % (the ideal cycle time is probably too long).
    let p = r.performance.map(|p| p.min(1.0));
    let above = if r.ideal_rate_suspect { "↑" } else { "" };
    let apq = format!(
        "A {} P {}{above} Q {}",
        fmt_pct(r.availability),
        fmt_pct(p),
        fmt_pct(r.quality)
    );
    let apq = if apq.chars().count() <= w {
        apq
    } else {
        format!(
            "A {} P {}{above} Q {}",
            fmt_pct0(r.availability),
            fmt_pct0(p),
            fmt_pct0(r.quality)
        )
    };
    let kw = match (k.sums.power_kw, avg_kw(k)) {
        (Some(kw), _) => format!("{} kW", fmt_num(kw)),
        (None, Some(avg)) => format!("~{} kW", fmt_num(avg)),
        (None, None) => format!("{DASH} kW"),
    };
    [
        oee,
        Line::from(apq),
        Line::from(format!("{kw} · {} kWh/u", fmt_opt(r.kwh_per_good_unit))),
        Line::from(format!("water recovery {}", fmt_pct(r.water_recovery))),
    ]
}
