//! The palette: colour-blind safe (Okabe–Ito), and a monochrome mode
//! (`NO_COLOR`) that keeps every meaning with bold, reverse, underline
//! and dim. No colour is ever the only carrier of a meaning: priorities
//! have their letter, stale figures their age.

use ctower_model::{ParamState, Priority};
use ratatui::style::{Color, Modifier, Style};

/// Colours or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// `NO_COLOR`: modifiers only.
    pub mono: bool,
}

const ORANGE: Color = Color::Rgb(0xE6, 0x9F, 0x00);
const SKY: Color = Color::Rgb(0x56, 0xB4, 0xE9);
const GREEN: Color = Color::Rgb(0x00, 0x9E, 0x73);
const YELLOW: Color = Color::Rgb(0xF0, 0xE4, 0x42);
const BLUE: Color = Color::Rgb(0x00, 0x72, 0xB2);
const VERMILLION: Color = Color::Rgb(0xD5, 0x5E, 0x00);
const PURPLE: Color = Color::Rgb(0xCC, 0x79, 0xA7);
const GREY: Color = Color::Rgb(0x88, 0x88, 0x88);

impl Theme {
    /// The theme the environment asks for: monochrome when `NO_COLOR` is
    /// set to anything non-empty (no-color.org).
    pub fn from_env() -> Theme {
        Theme {
            mono: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.mono {
            Style::new()
        } else {
            Style::new().fg(c)
        }
    }

    /// An alarm's priority.
    pub fn priority(self, p: Priority) -> Style {
        match p {
            Priority::Urgent => self
                .fg(VERMILLION)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            Priority::High => self.fg(VERMILLION).add_modifier(Modifier::BOLD),
            Priority::Medium => self.fg(ORANGE).add_modifier(Modifier::UNDERLINED),
            Priority::Low => self.fg(SKY),
        }
    }

    /// A write request's state; its name is always written too. Waiting
    /// for a second person: bold; not confirmed by the read-back: bold
    /// and reversed (an alarm is raised); confirmed: plain; rejected and
    /// expired (nothing was sent): dimmed.
    pub fn param_state(self, s: ParamState) -> Style {
        match s {
            ParamState::Requested => self.fg(ORANGE).add_modifier(Modifier::BOLD),
            ParamState::Approved | ParamState::Sent => self.fg(SKY),
            ParamState::Confirmed => self.fg(GREEN),
            ParamState::Unconfirmed => self
                .fg(VERMILLION)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            ParamState::Rejected | ParamState::Expired => self.stale(),
        }
    }

    /// A figure older than its freshness limit.
    pub fn stale(self) -> Style {
        self.fg(GREY).add_modifier(Modifier::DIM)
    }

    /// A warning mark (suspect, partial, corrected).
    pub fn mark(self) -> Style {
        self.fg(YELLOW).add_modifier(Modifier::BOLD)
    }

    /// The row or tile under the cursor.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Titles and headers.
    pub fn title(self) -> Style {
        self.fg(SKY).add_modifier(Modifier::BOLD)
    }

    /// A banner: the engine gone, a flood.
    pub fn banner(self) -> Style {
        self.fg(VERMILLION)
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }

    /// Good (running, within limits).
    pub fn good(self) -> Style {
        self.fg(GREEN)
    }

    /// Bad (stopped, beyond a limit).
    pub fn bad(self) -> Style {
        self.fg(VERMILLION).add_modifier(Modifier::BOLD)
    }

    /// Charts' main series.
    pub fn series(self) -> Style {
        self.fg(BLUE)
    }

    /// Charts' second series (expected, a limit).
    pub fn second(self) -> Style {
        self.fg(PURPLE)
    }

    /// OEE bands: from 85 % good, below 60 % bad, else plain; the number
    /// is always written.
    pub fn oee(self, oee: Option<f64>) -> Style {
        match oee {
            Some(v) if v >= 0.85 => self.good(),
            Some(v) if v < 0.6 => self.bad(),
            Some(_) => self.fg(ORANGE),
            None => self.stale(),
        }
    }

    /// A timeline mark's style.
    pub fn timeline(self, m: ctower_model::board::TimelineMark) -> Style {
        use ctower_model::board::TimelineMark as T;
        match m {
            T::Running => self.good(),
            T::Stop => self.bad(),
            T::MicroStop => self.fg(ORANGE),
            T::Changeover => self.fg(PURPLE),
            T::Planned => self.fg(SKY),
            T::NoShift => self.stale(),
            T::Unknown => self.stale(),
        }
    }
}
