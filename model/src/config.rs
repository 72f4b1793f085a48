//! The one shape of a configuration problem, shared by every crate so the
//! binary can report all of them at once, each with the key that is wrong.
//!
//! # Vocabulary (the same in every crate)
//!
//! - `FooConfig` is what the TOML says: plain serde types with
//!   `#[serde(deny_unknown_fields)]`, nothing checked yet.
//! - `Foo` (a plain domain name) is the checked type the running code uses;
//!   it is only ever made by `FooConfig::check`.
//! - The one validation signature:
//!
//!   ```text
//!   fn check(&self, key: &str, /* context it needs */, issues: &mut Vec<ConfigIssue>) -> Option<Foo>
//!   ```
//!
//!   `key` is the path of `self` in the file (e.g. `alerts.rules[1]`); every
//!   problem is pushed with its full path ([`key_field`], [`key_index`]) and
//!   checking goes on, so one run reports every problem; the result is
//!   `None` exactly when something was pushed.

use std::fmt;

/// One problem in a configuration, with the key that is wrong and, once
/// the binary has attached it, where the value was written.
///
/// The crates' checks only know keys: they make issues with
/// [`ConfigIssue::new`]; the binary, which read the file and the
/// environment, adds the origin and line with [`ConfigIssue::at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Full key path, e.g. `sources[1].broker_url`.
    pub key: String,
    /// What is wrong, for the user.
    pub message: String,
    /// Where the value came from: the file's path, or the name of the
    /// environment variable that set it. `None` until the binary says.
    pub origin: Option<String>,
    /// The 1-based line in that file, where known.
    pub line: Option<u32>,
}

impl ConfigIssue {
    /// An issue at `key` (origin not known yet).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            key: key.into(),
            message: message.into(),
            origin: None,
            line: None,
        }
    }

    /// This issue, written at `origin` (a file or an environment variable),
    /// on `line` where known.
    pub fn at(mut self, origin: impl Into<String>, line: Option<u32>) -> Self {
        self.origin = Some(origin.into());
        self.line = line;
        self
    }
}

/// `key: message`, preceded by `origin:line: ` when known:
/// `configs/x.toml:12: alerts.rules[1].threshold: expected a number …`.
impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.origin, self.line) {
            (Some(o), Some(l)) => write!(f, "{o}:{l}: ")?,
            (Some(o), None) => write!(f, "{o}: ")?,
            _ => {}
        }
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The path of field `name` under `base`: `alerts` + `hooks` → `alerts.hooks`
/// (`name` alone when `base` is empty).
pub fn key_field(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

/// The path of element `i` of list `name` under `base`:
/// `alerts` + `rules` + 1 → `alerts.rules[1]`.
pub fn key_index(base: &str, name: &str, i: usize) -> String {
    format!("{}[{i}]", key_field(base, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_the_toml() {
        assert_eq!(key_field("", "pipeline"), "pipeline");
        assert_eq!(key_field("alerts", "hooks"), "alerts.hooks");
        let rule = key_index("alerts", "rules", 1);
        assert_eq!(rule, "alerts.rules[1]");
        assert_eq!(key_field(&rule, "threshold"), "alerts.rules[1].threshold");
        assert_eq!(key_index("", "sources", 0), "sources[0]");
    }

    #[test]
    fn an_issue_shows_its_origin_and_line_when_known() {
        let i = ConfigIssue::new("pipeline.workers", "too many");
        assert_eq!(i.to_string(), "pipeline.workers: too many");
        let f = i.clone().at("configs/x.toml", Some(3));
        assert_eq!(
            f.to_string(),
            "configs/x.toml:3: pipeline.workers: too many"
        );
        let e = i.at("CTOWER__PIPELINE__WORKERS", None);
        assert_eq!(
            e.to_string(),
            "CTOWER__PIPELINE__WORKERS: pipeline.workers: too many"
        );
    }
}
