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

/// One problem in a configuration, with the key that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Full key path, e.g. `sources[1].broker_url`.
    pub key: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
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
}
