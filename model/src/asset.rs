//! The ISA-95 asset model: enterprise → site → area → line → asset.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// One physical asset (a filler, a freeze-dryer, an RO skid, a meter).
///
/// The enterprise level is not kept: one tower serves one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssetKey {
    pub site: Arc<str>,
    pub area: Arc<str>,
    pub line: Arc<str>,
    pub asset: Arc<str>,
}

impl AssetKey {
    pub fn new(site: &str, area: &str, line: &str, asset: &str) -> Self {
        AssetKey {
            site: site.into(),
            area: area.into(),
            line: line.into(),
            asset: asset.into(),
        }
    }

    /// A stable 64-bit hash (FNV-1a) used to spread assets over workers.
    /// Stable across processes and runs, unlike `std`'s `DefaultHasher`.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [&self.site, &self.area, &self.line, &self.asset] {
            for b in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    pub fn scope(&self, level: Level) -> ScopeKey {
        let mut s = ScopeKey {
            level,
            site: None,
            area: None,
            line: None,
            asset: None,
        };
        if level >= Level::Site {
            s.site = Some(self.site.clone());
        }
        if level >= Level::Line {
            s.area = Some(self.area.clone());
            s.line = Some(self.line.clone());
        }
        if level >= Level::Asset {
            s.asset = Some(self.asset.clone());
        }
        s
    }
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.site, self.area, self.line, self.asset
        )
    }
}

/// Roll-up levels, from the widest to the narrowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Group,
    Site,
    Line,
    Asset,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Group, Level::Site, Level::Line, Level::Asset];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Group => "group",
            Level::Site => "site",
            Level::Line => "line",
            Level::Asset => "asset",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "group" => Ok(Level::Group),
            "site" => Ok(Level::Site),
            "line" => Ok(Level::Line),
            "asset" => Ok(Level::Asset),
            other => Err(format!(
                "unknown level `{other}` (expected group, site, line or asset)"
            )),
        }
    }
}

/// Where a KPI or an alarm applies: a level and the path down to it.
/// Fields below the level are `None`. Ordering sorts a report naturally.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeKey {
    pub level: Level,
    pub site: Option<Arc<str>>,
    pub area: Option<Arc<str>>,
    pub line: Option<Arc<str>>,
    pub asset: Option<Arc<str>>,
}

impl ScopeKey {
    pub fn group() -> Self {
        ScopeKey {
            level: Level::Group,
            site: None,
            area: None,
            line: None,
            asset: None,
        }
    }
}

impl fmt::Display for ScopeKey {
    /// `group`, `site-a`, `site-a/area/line-1`, `site-a/area/line-1/filler`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == Level::Group {
            return f.write_str("group");
        }
        let mut first = true;
        for part in [&self.site, &self.area, &self.line, &self.asset]
            .into_iter()
            .flatten()
        {
            if !first {
                f.write_str("/")?;
            }
            f.write_str(part)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_paths() {
        let a = AssetKey::new("s", "ar", "l", "x");
        assert_eq!(a.scope(Level::Group).to_string(), "group");
        assert_eq!(a.scope(Level::Site).to_string(), "s");
        assert_eq!(a.scope(Level::Line).to_string(), "s/ar/l");
        assert_eq!(a.scope(Level::Asset).to_string(), "s/ar/l/x");
    }

    #[test]
    fn stable_hash_separates_levels() {
        // "ab"/"c" and "a"/"bc" must not collide by concatenation.
        let a = AssetKey::new("ab", "c", "l", "x");
        let b = AssetKey::new("a", "bc", "l", "x");
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(
            a.stable_hash(),
            AssetKey::new("ab", "c", "l", "x").stable_hash()
        );
    }
}
