//! Helpers shared by the batch-mode integration tests: run the real `ctower`
//! binary, read its output files.

// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use ctower_testkit::process;

pub mod tmux;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `ctower` binary, to be run from the package's root.
pub fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// `ctower audit verify --path TRAIL` passes (the hash chain is whole).
pub fn assert_audit_verifies(trail: &Path) {
    let verify = ctower()
        .args(["--log", "warn", "audit", "verify", "--path"])
        .arg(trail)
        .output()
        .expect("ctower audit verify runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The root package's directory: the working directory of every run.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed recording.
pub fn recording() -> PathBuf {
    root().join("replay-data/plants-2h.jsonl.gz")
}

/// A fresh, empty scratch directory under cargo's per-target temporary
/// directory (removed and recreated on every run, so nothing piles up).
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// `ctower run -c configs/default.toml --replay REC --speed max --until-end
/// --out OUT`, from the project root, logging warnings only; add the rest.
pub fn batch_command(recording: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root())
        .args([
            "--log",
            "warn",
            "run",
            "-c",
            "configs/default.toml",
            "--replay",
        ])
        .arg(recording)
        .args(["--speed", "max", "--until-end", "--out"])
        .arg(out);
    c
}

/// How long one batch run may take. The committed recording takes well
/// under a second and the largest generated one a few; the margin is for a
/// loaded 2-core CI machine. A run past it is killed and fails with its log.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the batch mode through the real command line:
/// `ctower run -c configs/default.toml --replay REC --speed max --until-end --out OUT -w N`.
pub fn run_batch(recording: &Path, out: &Path, workers: usize) {
    let started = Instant::now();
    process::run_ok(
        batch_command(recording, out).args(["-w", &workers.to_string()]),
        &format!(
            "ctower batch run ({workers} workers, {})",
            recording.display()
        ),
        BATCH_TIMEOUT,
    );
    eprintln!(
        "batch run: {} with {workers} worker(s) in {:.2} s",
        recording.display(),
        started.elapsed().as_secs_f64()
    );
}

/// One JSON value per non-empty line; a missing file reads as no lines.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

/// `summary.json` of an output directory.
pub fn read_summary(out: &Path) -> Value {
    let path = out.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Σ of `summary.json`'s `dead_letters` counts by reason.
pub fn dead_letter_total(summary: &Value) -> u64 {
    summary["dead_letters"]
        .as_object()
        .expect("summary.json: dead_letters is an object")
        .values()
        .map(|v| v.as_u64().expect("summary.json: dead letter count"))
        .sum()
}

/// Asserts that each of `files` is non-empty and byte-identical in the two
/// output directories; on a difference, says where it first is.
pub fn assert_same_files(
    files: &[&str],
    (a_dir, a_what): (&Path, &str),
    (b_dir, b_what): (&Path, &str),
) {
    for file in files {
        let a =
            std::fs::read(a_dir.join(file)).unwrap_or_else(|e| panic!("{file} ({a_what}): {e}"));
        let b =
            std::fs::read(b_dir.join(file)).unwrap_or_else(|e| panic!("{file} ({b_what}): {e}"));
        assert!(!a.is_empty(), "{file} is empty");
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let line = a[..at].iter().filter(|c| **c == b'\n').count() + 1;
            panic!(
                "{file} differs between {a_what} ({} bytes) and {b_what} ({} bytes), first at byte {at} (line {line})",
                a.len(),
                b.len()
            );
        }
    }
}

/// `configs/default.toml` without the demo's live plant and parameter
/// control (its own source, `[commands]`, `[control]`): what a test that
/// configures those itself starts from.
pub fn default_config_text() -> String {
    let text = std::fs::read_to_string(root().join("configs/default.toml"))
        .unwrap_or_else(|e| panic!("reading configs/default.toml: {e}"));
    let begin = "# --- the demo's live plant and parameter control: begin ---";
    let end = "# --- the demo's live plant and parameter control: end ---\n";
    let (a, b) = (
        text.find(begin).expect("the demo block's begin"),
        text.find(end).expect("the demo block's end") + end.len(),
    );
    format!("{}{}", &text[..a], &text[b..])
        .lines()
        .filter(|l| !l.contains("# --- demo live plant ---"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `configs/default.toml` ([`default_config_text`]) with its `[[sources]]`
/// replaced by `sources` (TOML text), written to `path`.
pub fn default_config_with_sources(path: &Path, sources: &str) -> PathBuf {
    let text = default_config_text();
    let at = text
        .find("[[sources]]")
        .expect("a [[sources]] in default.toml");
    let end = text[at..].find("\n\n").expect("a blank line after it") + at;
    let text = format!("{}{sources}{}", &text[..at], &text[end..]);
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_path_buf()
}
