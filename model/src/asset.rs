//! The ISA-95 asset model: enterprise → site → area → line → asset.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The path of one asset: site, area, line and asset names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssetPath {
    /// The site (plant), as named in the topic tree.
    pub site: Arc<str>,
    /// The area within the site.
    pub area: Arc<str>,
    /// The production line within the area.
    pub line: Arc<str>,
    /// The asset within the line.
    pub asset: Arc<str>,
}

/// One physical asset (a filler, a freeze-dryer, an RO skid, a meter).
///
/// The enterprise level is not kept: one tower serves one group.
///
/// Every observation carries its asset, so the key is one pointer: cloning
/// it is one reference count (not four), and its stable hash is computed
/// once, when the decoder first maps the asset. Equality and order are the
/// path's (site, area, line, asset); `Hash` writes the stable hash. Read
/// the names through `Deref` (`key.site`). Serialized as the path.
#[derive(Clone)]
pub struct AssetKey(Arc<KeyInner>);

struct KeyInner {
    path: AssetPath,
    hash: u64,
}

impl AssetKey {
    /// The key of site/area/line/asset.
    pub fn new(site: &str, area: &str, line: &str, asset: &str) -> Self {
        AssetKey::from_names(site.into(), area.into(), line.into(), asset.into())
    }

    /// A key from names the caller already shares (a decoder's cache).
    pub fn from_names(site: Arc<str>, area: Arc<str>, line: Arc<str>, asset: Arc<str>) -> Self {
        AssetKey::from_path(AssetPath {
            site,
            area,
            line,
            asset,
        })
    }

    /// The key of `path` (its stable hash computed here, once).
    pub fn from_path(path: AssetPath) -> Self {
        // FNV-1a over the names, each followed by 0xff so that "ab"/"c"
        // and "a"/"bc" differ.
        let mut h = crate::hash::Fnv1a::default();
        for part in [&path.site, &path.area, &path.line, &path.asset] {
            h.write(part.as_bytes());
            h.write(&[0xff]);
        }
        AssetKey(Arc::new(KeyInner {
            path,
            hash: h.finish(),
        }))
    }

    /// Its site, area, line and asset names.
    pub fn path(&self) -> &AssetPath {
        &self.0.path
    }

    /// A stable 64-bit hash (FNV-1a) used to spread assets over workers.
    /// Stable across processes and runs, unlike `std`'s `DefaultHasher`.
    pub fn stable_hash(&self) -> u64 {
        self.0.hash
    }

    /// The scope of this asset at `level`: its group, site, line or
    /// itself (names below the level left out).
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

impl std::ops::Deref for AssetKey {
    type Target = AssetPath;
    fn deref(&self) -> &AssetPath {
        &self.0.path
    }
}

impl PartialEq for AssetKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.path == other.0.path)
    }
}

impl Eq for AssetKey {}

impl PartialOrd for AssetKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AssetKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.path.cmp(&other.0.path)
    }
}

impl std::hash::Hash for AssetKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Debug for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetKey")
            .field("site", &self.site)
            .field("area", &self.area)
            .field("line", &self.line)
            .field("asset", &self.asset)
            .finish()
    }
}

impl Serialize for AssetKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.path.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AssetKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AssetPath::deserialize(d).map(AssetKey::from_path)
    }
}

/// Hashes an [`AssetKey`] by its precomputed stable hash (already well
/// mixed), so a per-observation lookup never rehashes the names.
#[derive(Default, Clone, Copy)]
pub struct AssetKeyHasher(u64);

impl std::hash::Hasher for AssetKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached by keys other than `AssetKey` (names): FNV-1a.
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(crate::hash::FNV_PRIME);
        }
    }
}

/// A hash map keyed by a short name (a site, a signal) hashed with FNV:
/// looked up once per message, where SipHash would cost more than the work.
pub type NameMap<V> =
    std::collections::HashMap<Arc<str>, V, std::hash::BuildHasherDefault<AssetKeyHasher>>;

/// A hash map keyed by asset that uses [`AssetKeyHasher`].
pub type AssetMap<V> =
    std::collections::HashMap<AssetKey, V, std::hash::BuildHasherDefault<AssetKeyHasher>>;

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.site, self.area, self.line, self.asset
        )
    }
}

/// The asset name under which a line's retired assets (silent for
/// `pipeline.asset_retire_after_secs`) are reported together: they count
/// in the line's assets and unknown time, without a record of their own.
/// Parentheses are outside the names a topic may carry, so no real asset
/// can be called this.
pub const RETIRED_ASSETS: &str = "(retired)";

impl AssetKey {
    /// The key under which the retired assets of `line`'s line are reported.
    pub fn retired_of(line: &AssetKey) -> AssetKey {
        AssetKey::from_names(
            line.site.clone(),
            line.area.clone(),
            line.line.clone(),
            Arc::from(RETIRED_ASSETS),
        )
    }

    /// Whether this key stands for a line's retired assets.
    pub fn is_retired_group(&self) -> bool {
        &*self.asset == RETIRED_ASSETS
    }
}

/// Roll-up levels, from the widest to the narrowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Every site the tower serves.
    Group,
    /// One site (plant).
    Site,
    /// One production line (or a utility such as the RO skid's line).
    Line,
    /// One asset.
    Asset,
}

impl Level {
    /// Every level, widest first.
    pub const ALL: [Level; 4] = [Level::Group, Level::Site, Level::Line, Level::Asset];

    /// Its name in files, the journal and configuration (`group` …).
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
    /// The roll-up level.
    pub level: Level,
    /// The site, from [`Level::Site`] down.
    pub site: Option<Arc<str>>,
    /// The area, from [`Level::Line`] down.
    pub area: Option<Arc<str>>,
    /// The line, from [`Level::Line`] down.
    pub line: Option<Arc<str>>,
    /// The asset, at [`Level::Asset`].
    pub asset: Option<Arc<str>>,
}

impl ScopeKey {
    /// The whole group's scope.
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
    fn keys_compare_by_path_whatever_their_allocation() {
        let a = AssetKey::new("s", "ar", "l", "x");
        let b = AssetKey::new("s", "ar", "l", "x");
        let c = AssetKey::new("s", "ar", "l", "y");
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert!(a < c && c > b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"site":"s","area":"ar","line":"l","asset":"x"}"#);
        let back: AssetKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.stable_hash(), a.stable_hash());
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
