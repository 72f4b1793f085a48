//! The catalogue of writable parameters, as checked from the configuration
//! (`[[control.parameters]]`, README "Parameter control").

use ctower_model::{ParamType, ParamValue};
use std::sync::Arc;

/// An asset pattern, `site/area/line/asset`, each level a name or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetPattern(pub [String; 4]);

impl AssetPattern {
    /// Reads `site/area/line/asset` (four non-empty levels, `*` for any).
    pub fn parse(text: &str) -> Option<AssetPattern> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() != 4
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(['+', '#']) || (p.contains('*') && *p != "*"))
        {
            return None;
        }
        Some(AssetPattern([
            parts[0].to_string(),
            parts[1].to_string(),
            parts[2].to_string(),
            parts[3].to_string(),
        ]))
    }

    /// Whether some asset matches both patterns.
    pub fn overlaps(&self, other: &AssetPattern) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(a, b)| a == "*" || b == "*" || a == b)
    }

    /// Whether `asset` (`site/area/line/asset`) matches.
    pub fn matches(&self, asset: &str) -> bool {
        let mut n = 0;
        for (p, a) in self.0.iter().zip(asset.split('/')) {
            if p != "*" && p != a {
                return false;
            }
            n += 1;
        }
        n == 4 && asset.split('/').count() == 4
    }
}

/// One writable parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name (a command topic level, the audit trail's `param`).
    pub name: Arc<str>,
    /// The assets that have it.
    pub assets: Vec<AssetPattern>,
    /// The source (by name) its commands go through.
    pub source: String,
    /// Its unit, for people.
    pub unit: String,
    /// Its type.
    pub ty: ParamType,
    /// Least value (numbers).
    pub min: Option<f64>,
    /// Greatest value (numbers).
    pub max: Option<f64>,
    /// Largest change in one request, from the read-back value (numbers).
    pub max_step: Option<f64>,
    /// The signal that reports the value the plant runs with (the asset's;
    /// for Sparkplug, the metric written).
    pub readback: Arc<str>,
    /// How far the read-back may be from the value asked and still confirm.
    pub tolerance: f64,
    /// How long after sending the read-back must confirm, ms.
    pub confirm_ms: i64,
    /// How long a request waits for its approval, ms.
    pub approval_ms: i64,
    /// Least time between two requests on one asset's parameter, ms.
    pub min_interval_ms: i64,
    /// A read-back older than this means the source is stale or dead, ms.
    pub stale_ms: i64,
    /// Roles that may request a write.
    pub request_roles: Vec<String>,
    /// Roles that may approve or reject one.
    pub approve_roles: Vec<String>,
    /// Whether a second person must approve.
    pub two_person: bool,
}

impl ParamSpec {
    /// Whether `asset` has this parameter.
    pub fn applies_to(&self, asset: &str) -> bool {
        self.assets.iter().any(|p| p.matches(asset))
    }

    /// A read-back sample as this parameter's type (a number for a
    /// switch: non-zero is on; an integer rounded). `None` when not finite.
    pub fn value_of(&self, x: f64) -> Option<ParamValue> {
        if !x.is_finite() {
            return None;
        }
        Some(match self.ty {
            ParamType::Bool => ParamValue::Bool(x != 0.0),
            ParamType::Int => ParamValue::Int(x.round().clamp(-9.0e15, 9.0e15) as i64),
            ParamType::Float => ParamValue::Float(x),
        })
    }

    /// Whether the read-back `got` confirms the value asked, `want`.
    pub fn confirms(&self, want: ParamValue, got: ParamValue) -> bool {
        match (want, got) {
            (ParamValue::Bool(a), ParamValue::Bool(b)) => a == b,
            (a, b) => (a.as_f64() - b.as_f64()).abs() <= self.tolerance,
        }
    }

    /// The value formatted with its unit.
    pub fn show(&self, v: ParamValue) -> String {
        if self.unit.is_empty() {
            v.to_string()
        } else {
            format!("{v} {}", self.unit)
        }
    }
}

/// The checked catalogue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    /// The parameters, in configuration order.
    pub params: Vec<ParamSpec>,
}

impl Catalogue {
    /// The index of parameter `name` of `asset`, if the catalogue has it.
    pub fn find(&self, asset: &str, name: &str) -> Option<usize> {
        self.params
            .iter()
            .position(|p| &*p.name == name && p.applies_to(asset))
    }

    /// Every read-back signal (the stream sends their samples to the
    /// output stage as they arrive).
    pub fn readback_signals(&self) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self.params.iter().map(|p| p.readback.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_levels_only() {
        let p = AssetPattern::parse("*/utilities/*/ro-1").unwrap();
        assert!(p.matches("lyon/utilities/water/ro-1"));
        assert!(!p.matches("lyon/utilities/water/ro-10"));
        assert!(!p.matches("lyon/utilities/water/ro-1/x"));
        assert!(!p.matches("lyon/utilities/ro-1"));
        let q = AssetPattern::parse("lyon/*/water/*").unwrap();
        assert!(p.overlaps(&q) && q.overlaps(&p));
        assert!(!p.overlaps(&AssetPattern::parse("*/packaging/*/*").unwrap()));
        for bad in [
            "a/b/c",
            "a/b/c/d/e",
            "a//c/d",
            "a/b*/c/d",
            "a/+/c/d",
            "a/#/c/d",
        ] {
            assert_eq!(AssetPattern::parse(bad), None, "{bad}");
        }
    }
}
