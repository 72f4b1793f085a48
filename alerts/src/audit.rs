//! The audit trail (GMP data integrity, 21 CFR Part 11 / ALCOA+): every
//! operator action and every alarm state change, one append-only JSON line
//! each, hash-chained so that an edited, reordered, inserted or deleted
//! record is found.
//!
//! ```text
//! {"seq":1,"ts":"2026-03-02T05:15:00.000Z","user":"alice","action":"acknowledged","rule":"…","scope":"…","signal":null,"before":"unack_active","after":"ack_active","reason":"…","prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! `hash` is the SHA-256 of the line's bytes before `,"hash":` (which
//! include `prev`, the previous record's hash; the first record's `prev` is
//! 64 zeros), so a record cannot change, move or vanish without breaking
//! the chain from there on. `DIR/FILE.head` holds the last record's
//! sequence number and hash, replaced atomically after each append, so a
//! deleted last record is found too. Each append is written with one
//! `write` and synced (`fdatasync`) before the action it records takes
//! effect: a trail that cannot be written blocks operator actions rather
//! than losing their records.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record says (the trail adds `seq`, `prev` and `hash`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// UTC time of the action or change, RFC 3339.
    pub ts: String,
    /// Who: an operator's name, or `system` for the engine's own changes.
    pub user: String,
    /// What: `acknowledged`, `shelved`, `raised`, `cleared` …
    pub action: String,
    /// The alarm's rule.
    pub rule: String,
    /// The alarm's scope.
    pub scope: String,
    /// The alarm's signal, for telemetry rules.
    pub signal: Option<String>,
    /// The alarm's state before.
    pub before: String,
    /// The alarm's state after.
    pub after: String,
    /// Why (an operator's reason, or the rule's message).
    pub reason: String,
    /// For a shelf: when it ends, RFC 3339 (a restart puts it back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Parameter records (`param_*` actions; `rule` is `param`, `scope`
    /// the asset, `signal` the parameter, `before`/`after` the request's
    /// states): the write request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Parameter records: the value before (the read-back when requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Parameter records: the value asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// Whether the user signed this action with their electronic signature
    /// (checked against its salted hash before the record was written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<bool>,
}

impl Entry {
    /// Whether this is a parameter record (not an alarm's).
    pub fn is_param(&self) -> bool {
        self.action.starts_with("param_")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    #[serde(flatten)]
    entry: &'a Entry,
    prev: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The line of record `seq` after `prev` (with its newline), and its hash.
pub fn line(seq: u64, entry: &Entry, prev: &str) -> (String, String) {
    let body = serde_json::to_string(&Body { seq, entry, prev })
        .unwrap_or_else(|_| unreachable!("an entry of strings always serializes"));
    // `{…}` → `{…,"hash":"H"}`: the hash covers everything before it.
    let open = &body[..body.len() - 1];
    let hash = digest(open.as_bytes());
    (format!("{open},\"hash\":\"{hash}\"}}\n"), hash)
}

/// The last state-changing record of each alarm in a trail's text: (rule,
/// scope, signal) → that record (lines that do not parse are skipped: `verify`
/// is the check).
pub fn last_records(
    text: &str,
) -> std::collections::BTreeMap<(String, String, Option<String>), Entry> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Ok(e) = serde_json::from_str::<Entry>(line) {
            // A comment or a refusal changes no state (and carries no
            // shelf's end): the record before it says where the alarm is.
            if e.action != "comment" && e.action != "refused" && !e.is_param() {
                out.insert((e.rule.clone(), e.scope.clone(), e.signal.clone()), e);
            }
        }
    }
    out
}

/// The time (RFC 3339) of each alarm's last `raised` record.
pub fn last_raises(
    text: &str,
) -> std::collections::BTreeMap<(String, String, Option<String>), String> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Ok(e) = serde_json::from_str::<Entry>(line) {
            if e.action == "raised" {
                out.insert((e.rule, e.scope, e.signal), e.ts);
            }
        }
    }
    out
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Its line number in the file (from 1).
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// Checks a trail's text (and its head, `seq hash`, when there is one):
/// the number of records, or the first bad one.
pub fn verify(text: &str, head: Option<&str>) -> Result<u64, Broken> {
    let (mut prev, mut seq) = (GENESIS.to_string(), 0u64);
    for (i, l) in text.lines().enumerate() {
        let bad = |why: String| Broken { line: i + 1, why };
        let Some(cut) = l.rfind(",\"hash\":\"") else {
            return Err(bad("no hash".into()));
        };
        let (open, tail) = l.split_at(cut);
        let claimed = tail
            .strip_prefix(",\"hash\":\"")
            .and_then(|t| t.strip_suffix("\"}"))
            .ok_or_else(|| bad("a malformed hash".into()))?;
        if digest(open.as_bytes()) != claimed {
            return Err(bad("its hash does not match its content (edited?)".into()));
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| bad(format!("not a JSON record: {e}")))?;
        if v["prev"].as_str() != Some(prev.as_str()) {
            return Err(bad(
                "it does not follow the record before it (inserted, deleted or moved?)".into(),
            ));
        }
        if v["seq"].as_u64() != Some(seq + 1) {
            return Err(bad(format!(
                "sequence number {} where {} was due",
                v["seq"],
                seq + 1
            )));
        }
        seq += 1;
        prev = claimed.to_string();
    }
    if let Some(head) = head {
        let want = format!("{seq} {prev}");
        if head.trim() != want {
            return Err(Broken {
                line: text.lines().count() + 1,
                why: format!(
                    "the trail ends at record {seq} but its head says `{}` (last records deleted?)",
                    head.trim()
                ),
            });
        }
    }
    Ok(seq)
}

/// The head file beside a trail.
pub fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

/// An open trail, appended to record by record.
#[derive(Debug)]
pub struct AuditTrail {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: String,
}

impl AuditTrail {
    /// Opens (or creates) the trail at `path`, checking the chain first:
    /// a broken trail is refused (it must be looked at, not appended to).
    /// What a crash leaves is repaired and logged: a last line cut short
    /// (never synced, so its action never took effect) is cut off, and a
    /// head one record behind (the crash fell between the record's sync and
    /// the head's rename) is brought up to date.
    pub fn open(path: &Path) -> io::Result<AuditTrail> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            tracing::warn!(trail = %path.display(), bytes_cut = text.len() - keep, "audit trail: a record cut short by a crash is cut off (it was never synced)");
            OpenOptions::new()
                .write(true)
                .open(path)?
                .set_len(keep as u64)?;
            text.truncate(keep);
        }
        let broken = |b: Broken| {
            io::Error::other(format!(
                "the audit trail {} is broken at {b}",
                path.display()
            ))
        };
        let seq = verify(&text, None).map_err(broken)?;
        let hash_of = |l: &str| {
            l.rsplit_once(",\"hash\":\"")
                .and_then(|(_, t)| t.strip_suffix("\"}"))
                .unwrap_or(GENESIS)
                .to_string()
        };
        let lines: Vec<&str> = text.lines().collect();
        let prev = lines.last().map_or(GENESIS.to_string(), |l| hash_of(l));
        let head_file = head_path(path);
        let head = std::fs::read_to_string(&head_file).ok();
        let current = format!("{seq} {prev}");
        let one_behind = match lines.len() {
            0 => None,
            1 => Some(String::new()),
            n => Some(format!("{} {}", seq - 1, hash_of(lines[n - 2]))),
        };
        match head.as_deref().map(str::trim) {
            Some(h) if h == current => {}
            // No head yet with no records, or one record behind.
            None if seq <= 1 => write_head(&head_file, seq, &prev)?,
            Some(h) if Some(h) == one_behind.as_deref() => {
                tracing::warn!(trail = %path.display(), seq, "audit trail: its head was one record behind (a crash); brought up to date");
                write_head(&head_file, seq, &prev)?;
            }
            _ => {
                let why = format!(
                    "the trail ends at record {seq} but its head says `{}` (last records deleted?)",
                    head.as_deref().unwrap_or("nothing").trim()
                );
                return Err(broken(Broken {
                    line: lines.len() + 1,
                    why,
                }));
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditTrail {
            path: path.to_path_buf(),
            file,
            seq,
            prev,
        })
    }

    /// Appends `entry`, synced; on an error nothing is recorded (and the
    /// caller must not carry out the action).
    pub fn append(&mut self, entry: &Entry) -> io::Result<u64> {
        let seq = self.seq + 1;
        let (text, hash) = line(seq, entry, &self.prev);
        let before = self.file.metadata()?.len();
        if let Err(e) = self
            .file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
        {
            let _ = self.file.set_len(before);
            return Err(e);
        }
        write_head(&head_path(&self.path), seq, &hash)?;
        self.seq = seq;
        self.prev = hash;
        Ok(seq)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Replaces the head atomically (a temporary file, synced, renamed).
fn write_head(head: &Path, seq: u64, hash: &str) -> io::Result<()> {
    let mut tmp = head.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut h = File::create(&tmp)?;
    write!(h, "{seq} {hash}")?;
    h.sync_data()?;
    std::fs::rename(&tmp, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> Entry {
        Entry {
            ts: format!("2026-03-02T05:{i:02}:00.000Z"),
            user: if i.is_multiple_of(2) {
                "alice"
            } else {
                "system"
            }
            .into(),
            action: "acknowledged".into(),
            rule: "line-availability-low".into(),
            scope: "lyon-fill/aseptic/fill-1".into(),
            signal: None,
            before: "unack_active".into(),
            after: "ack_active".into(),
            reason: format!("checked the filler, \"jam\" #{i}"),
            until: None,
            request: None,
            old: None,
            new: None,
            signed: None,
        }
    }

    fn trail(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut t = AuditTrail::open(&path).unwrap();
        for i in 0..n {
            t.append(&entry(i)).unwrap();
        }
        (dir, path)
    }

    fn check(path: &Path, text: &str) -> Result<u64, Broken> {
        let head = std::fs::read_to_string(head_path(path)).ok();
        verify(text, head.as_deref())
    }

    #[test]
    fn an_untouched_trail_verifies_and_reopens() {
        let (_d, path) = trail(5);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(check(&path, &text), Ok(5));
        let mut t = AuditTrail::open(&path).unwrap();
        assert_eq!(t.append(&entry(9)).unwrap(), 6);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(check(&path, &text), Ok(6));
    }

    #[test]
    fn tampering_is_found_at_the_first_bad_record() {
        let (_d, path) = trail(6);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: Vec<&str>| ls.join("\n") + "\n";
        // One byte changed in record 3.
        let edited = text.replacen("#2", "#7", 1);
        assert_eq!(check(&path, &edited).unwrap_err().line, 3);
        // Record 4 deleted.
        let mut ls = lines.clone();
        ls.remove(3);
        assert_eq!(check(&path, &join(ls)).unwrap_err().line, 4);
        // A copy of record 2 inserted after it.
        let mut ls = lines.clone();
        ls.insert(2, lines[1]);
        assert_eq!(check(&path, &join(ls)).unwrap_err().line, 3);
        // Records 2 and 3 swapped.
        let mut ls = lines.clone();
        ls.swap(1, 2);
        assert_eq!(check(&path, &join(ls)).unwrap_err().line, 2);
        // The last record deleted: the head says so.
        let mut ls = lines.clone();
        ls.pop();
        let b = check(&path, &join(ls)).unwrap_err();
        assert!(b.why.contains("head"), "{b}");
        // What a crash leaves is repaired: a torn last line, a head one behind.
        let (_d2, p2) = trail(3);
        let head3 = std::fs::read_to_string(head_path(&p2)).unwrap();
        AuditTrail::open(&p2).unwrap().append(&entry(3)).unwrap();
        std::fs::write(head_path(&p2), head3).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p2).unwrap();
        f.write_all(b"{\"seq\":5,\"ts\":\"2026").unwrap();
        let mut t = AuditTrail::open(&p2).unwrap();
        assert_eq!(t.append(&entry(5)).unwrap(), 5);
        let text = std::fs::read_to_string(&p2).unwrap();
        assert_eq!(check(&p2, &text), Ok(5));
        // A broken trail is not appended to.
        std::fs::write(&path, &edited).unwrap();
        assert!(AuditTrail::open(&path).is_err());
    }
}
