//! Journal rotation and retention: `ctower.lp` grows to at most
//! [`Retention::max_file_bytes`], then (at a commit, so a window never spans
//! two files) it is renamed `ctower-YYYYMMDDTHHMMSSZ.lp` after the time of
//! the rotation and a new `ctower.lp` begins. Rotated files are deleted
//! when older than [`Retention::max_age_ms`], and the oldest first while
//! all of them together exceed [`Retention::max_total_bytes`]. The live
//! file is never deleted. Which files go is decided by [`to_prune`], a
//! pure function of the names, sizes and the time.

use std::path::{Path, PathBuf};

/// The live journal file's name.
pub const LIVE: &str = "ctower.lp";

/// How much journal is kept (README, "The journal"; `journal.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rotate once the live file reaches this size.
    pub max_file_bytes: u64,
    /// Delete rotated files older than this (by the time in their name).
    pub max_age_ms: i64,
    /// Delete the oldest rotated files while they total more than this.
    pub max_total_bytes: u64,
}

impl Default for Retention {
    /// 256 MiB per file, 30 days, 4 GiB of rotated files.
    fn default() -> Self {
        Retention {
            max_file_bytes: 256 << 20,
            max_age_ms: 30 * 86_400_000,
            max_total_bytes: 4 << 30,
        }
    }
}

/// A rotated file: its name, the time it was rotated, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// File name in the journal directory.
    pub name: String,
    /// When it was rotated (from its name), ms since the epoch.
    pub rotated_ms: i64,
    /// Size in bytes.
    pub bytes: u64,
}

/// The name of a file rotated at `now_ms`.
pub fn rotated_name(now_ms: i64) -> String {
    let t = ctower_model::time::rfc3339_ms(now_ms);
    // 2026-12-04T23:30:00.000Z → 20261204T233000Z
    let compact: String = t
        .get(..19)
        .unwrap_or(&t)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("ctower-{compact}Z.lp")
}

/// The rotation time of a rotated file's name (`None`: not one of ours).
pub fn parse_rotated(name: &str) -> Option<i64> {
    let stamp = name.strip_prefix("ctower-")?.strip_suffix("Z.lp")?;
    let d = stamp.get(..8)?;
    let t = stamp.get(9..15)?;
    if stamp.len() != 15 || stamp.get(8..9)? != "T" {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[..4],
        &d[4..6],
        &d[6..8],
        &t[..2],
        &t[2..4],
        &t[4..6]
    );
    ctower_model::time::parse_rfc3339_ms(&iso)
}

/// Which rotated files to delete at `now_ms`: those older than the
/// maximum age, then the oldest of the rest while they exceed the total.
pub fn to_prune(files: &[Rotated], now_ms: i64, r: &Retention) -> Vec<String> {
    let mut files: Vec<&Rotated> = files.iter().collect();
    files.sort_by(|a, b| (a.rotated_ms, &a.name).cmp(&(b.rotated_ms, &b.name)));
    let mut prune = Vec::new();
    let mut total: u64 = files.iter().map(|f| f.bytes).sum();
    for f in files {
        let too_old = now_ms.saturating_sub(f.rotated_ms) > r.max_age_ms;
        if too_old || total > r.max_total_bytes {
            total -= f.bytes;
            prune.push(f.name.clone());
        }
    }
    prune
}

/// The rotated files in `dir`.
pub fn list(dir: &Path) -> std::io::Result<Vec<Rotated>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rotated_ms) = parse_rotated(&name) {
            let bytes = entry.metadata()?.len();
            out.push(Rotated {
                name,
                rotated_ms,
                bytes,
            });
        }
    }
    Ok(out)
}

/// Renames the live file to its rotated name and syncs the directory;
/// returns the rotated path. A second rotation within the same second
/// would clobber the first: it does nothing (`None`) and waits for a later
/// commit.
pub fn rotate(dir: &Path, now_ms: i64) -> std::io::Result<Option<PathBuf>> {
    let to = dir.join(rotated_name(now_ms));
    if to.exists() {
        return Ok(None);
    }
    std::fs::rename(dir.join(LIVE), &to)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(Some(to))
}

/// Deletes what [`to_prune`] names; returns how many files went.
pub fn prune(dir: &Path, now_ms: i64, r: &Retention) -> std::io::Result<usize> {
    let names = to_prune(&list(dir)?, now_ms, r);
    for n in &names {
        std::fs::remove_file(dir.join(n))?;
    }
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn names_carry_the_rotation_time_and_only_ours_parse() {
        let t = 1_772_430_600_000; // 2026-03-02T05:50:00Z
        let n = rotated_name(t + 999);
        assert_eq!(n, "ctower-20260302T055000Z.lp");
        assert_eq!(parse_rotated(&n), Some(t));
        for other in [
            "ctower.lp",
            "ctower-2026.lp",
            "notes.txt",
            "ctower-20260302T055000Z.lp.gz",
            "ctower-2026030XT055000Z.lp",
        ] {
            assert_eq!(parse_rotated(other), None, "{other}");
        }
    }

    #[test]
    fn prunes_by_age_then_oldest_first_by_total_size() {
        let r = Retention {
            max_file_bytes: 100,
            max_age_ms: 10 * DAY,
            max_total_bytes: 250,
        };
        let f = |name: &str, age_days: i64, bytes| Rotated {
            name: name.into(),
            rotated_ms: 100 * DAY - age_days * DAY,
            bytes,
        };
        let files = [
            f("a", 11, 10),
            f("b", 5, 100),
            f("c", 3, 100),
            f("d", 1, 100),
            f("e", 0, 40),
        ];
        // a is too old; of the rest (340 bytes) b goes, leaving 240 ≤ 250.
        assert_eq!(to_prune(&files, 100 * DAY, &r), ["a", "b"]);
        assert!(to_prune(&files[1..3], 100 * DAY, &r).is_empty());
        assert!(to_prune(&[], 0, &r).is_empty());
    }

    #[test]
    fn rotate_and_prune_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(LIVE), b"x 1\n").unwrap();
        let now = 1_772_430_600_000;
        let rotated = rotate(d, now).unwrap().unwrap();
        assert!(!d.join(LIVE).exists());
        assert_eq!(std::fs::read(&rotated).unwrap(), b"x 1\n");
        // The same second again: no clobbering, rotation waits.
        std::fs::write(d.join(LIVE), b"x 2\n").unwrap();
        assert_eq!(rotate(d, now + 10).unwrap(), None);
        assert!(d.join(LIVE).exists());
        let r = Retention {
            max_file_bytes: 1,
            max_age_ms: DAY,
            max_total_bytes: 1 << 20,
        };
        assert_eq!(prune(d, now + DAY / 2, &r).unwrap(), 0);
        assert_eq!(prune(d, now + 2 * DAY, &r).unwrap(), 1);
        assert!(!rotated.exists() && d.join(LIVE).exists());
    }
}
