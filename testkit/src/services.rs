//! External programs the tests run, found in one place.
//!
//! ```no_run
//! use ctower_testkit::services;
//! # fn a_test() {
//! let Some(mosquitto) = services::require(&services::MOSQUITTO) else {
//!     return; // skipped loudly, or failed under CTOWER_REQUIRE_SERVICES=1
//! };
//! # }
//! ```
//!
//! Lookup: the program's environment variable (`CTOWER_MOSQUITTO`,
//! `CTOWER_TMUX`) when set, and then nothing else, so that `.ci/run`, which
//! exports the path it found or installed, makes every test use that one
//! binary; otherwise `PATH`, then the usual system directories (Debian puts
//! `mosquitto` in `/usr/sbin`, which a normal user's `PATH` lacks).

use std::io::Write;
use std::path::{Path, PathBuf};

/// `1`: a missing program fails the test instead of skipping it. `.ci/run`
/// sets it, so CI never passes by skipping.
pub const REQUIRE_ENV: &str = "CTOWER_REQUIRE_SERVICES";

/// An external program some tests need.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The executable's file name.
    pub name: &'static str,
    /// The environment variable that names the executable's path.
    pub env: &'static str,
    /// How to install it, for the skip notice and the failure.
    pub install: &'static str,
    /// Searched after `PATH`.
    pub extra_dirs: &'static [&'static str],
}

/// The Mosquitto broker (Debian package `mosquitto`).
pub const MOSQUITTO: Program = Program {
    name: "mosquitto",
    env: "CTOWER_MOSQUITTO",
    install: "sudo apt-get update && sudo apt-get install mosquitto (Debian/Ubuntu; \
              brew install mosquitto on macOS), or run `bash .ci/run`, which installs it",
    extra_dirs: &["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"],
};

/// tmux, the terminal the end-to-end demo test runs in (Debian package `tmux`).
pub const TMUX: Program = Program {
    name: "tmux",
    env: "CTOWER_TMUX",
    install: "sudo apt-get update && sudo apt-get install tmux (Debian/Ubuntu; \
              brew install tmux on macOS), or run `bash .ci/run`, which installs it",
    extra_dirs: &["/usr/local/bin", "/opt/homebrew/bin"],
};

/// A Python with the PyPI package `pysparkplug` (an independent Sparkplug B
/// implementation), in a virtual environment: `.ci/run` makes `.venv` at
/// the project's root; `CTOWER_PYSPARKPLUG_PYTHON` names another.
pub const PYSPARKPLUG: Program = Program {
    name: "python",
    env: "CTOWER_PYSPARKPLUG_PYTHON",
    install: "python3 -m venv .venv && .venv/bin/pip install pysparkplug==0.6.1 \
              (what `bash .ci/run` does)",
    extra_dirs: &[],
};

/// A Python with the PyPI package `mqtt-spb-wrapper` (another Sparkplug B
/// implementation, with Eclipse Tahu's Python payload code), in its own
/// virtual environment (its dependencies conflict with pysparkplug's):
/// `.ci/run` makes `.venv-spb`; `CTOWER_SPB_WRAPPER_PYTHON` names another.
pub const SPB_WRAPPER: Program = Program {
    name: "python",
    env: "CTOWER_SPB_WRAPPER_PYTHON",
    install: "python3 -m venv .venv-spb && .venv-spb/bin/pip install mqtt-spb-wrapper==2.1.2 \
              (what `bash .ci/run` does)",
    extra_dirs: &[],
};

/// Node.js with the npm package `sparkplug-payload` (Eclipse Tahu's
/// JavaScript Sparkplug B payloads) in `node_modules` of a directory:
/// `.ci/run` installs it under `.npm-spb`; `CTOWER_TAHU_JS_MODULES` names
/// another `node_modules`.
pub const TAHU_JS: Program = Program {
    name: "node",
    env: "CTOWER_TAHU_JS_MODULES",
    install: "sudo apt-get install nodejs npm && npm install --prefix .npm-spb \
              sparkplug-payload@1.0.3 aedes@0.51.3 ws@8.18.0 (what `bash .ci/run` does)",
    extra_dirs: &[],
};

/// A Python with the PyPI package `standardwebhooks` (the Standard Webhooks
/// reference verifier): `.ci/run` installs it in `.venv` too;
/// `CTOWER_STANDARDWEBHOOKS_PYTHON` names another.
pub const STANDARDWEBHOOKS: Program = Program {
    name: "python",
    env: "CTOWER_STANDARDWEBHOOKS_PYTHON",
    install: "python3 -m venv .venv && .venv/bin/pip install standardwebhooks==1.0.0 \
              (what `bash .ci/run` does)",
    extra_dirs: &[],
};

/// The Python of [`STANDARDWEBHOOKS`] (`.venv`), as [`require_pysparkplug`].
#[track_caller]
pub fn require_standardwebhooks() -> Option<PathBuf> {
    require_python(&STANDARDWEBHOOKS, ".venv", "standardwebhooks")
}

/// The Python of [`PYSPARKPLUG`]: `CTOWER_PYSPARKPLUG_PYTHON`, else the
/// project's `.venv/bin/python`, if it imports `pysparkplug`; when it does
/// not, the test fails or skips as [`require`] says.
#[track_caller]
pub fn require_pysparkplug() -> Option<PathBuf> {
    require_python(&PYSPARKPLUG, ".venv", "pysparkplug")
}

/// The Python of [`SPB_WRAPPER`] (`.venv-spb`), as [`require_pysparkplug`].
#[track_caller]
pub fn require_spb_wrapper() -> Option<PathBuf> {
    require_python(&SPB_WRAPPER, ".venv-spb", "mqtt_spb_wrapper")
}

#[track_caller]
fn require_python(program: &Program, venv: &str, module: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(venv)
        .join("bin/python");
    let python = match std::env::var_os(program.env).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => venv,
    };
    let imports = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if imports {
        return Some(python);
    }
    skip_or_fail(&Missing {
        program: *program,
        problem: format!("at {} cannot import {module}", python.display()),
    });
    None
}

/// `node` and the `node_modules` directory holding `sparkplug-payload`
/// ([`TAHU_JS`]), or `None` as [`require`] says.
#[track_caller]
pub fn require_tahu_js() -> Option<(PathBuf, PathBuf)> {
    require_node_package("sparkplug-payload")
}

/// `node` and the `node_modules` directory of [`TAHU_JS`] (`.npm-spb`,
/// where `.ci/run` installs every npm package the tests use) if it holds
/// `package`, or `None` as [`require`] says.
#[track_caller]
pub fn require_node_package(package: &str) -> Option<(PathBuf, PathBuf)> {
    let modules = match std::env::var_os(TAHU_JS.env).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.npm-spb/node_modules"),
    };
    let found = which("node").filter(|node| {
        std::process::Command::new(node)
            .args(["-e", &format!("require.resolve('{package}')")])
            .env("NODE_PATH", &modules)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if let Some(node) = found {
        return Some((node, modules));
    }
    skip_or_fail(&Missing {
        program: TAHU_JS,
        problem: format!(
            "node cannot load sparkplug-payload from {}",
            modules.display()
        ),
    });
    None
}

/// `name` in `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Why a program cannot be used.
#[derive(Debug, Clone)]
pub struct Missing {
    /// The program.
    pub program: Program,
    /// What was looked at, e.g. "not found in PATH, /usr/sbin".
    pub problem: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}. Install it: {}; or set {} to its path.",
            self.program.name, self.problem, self.program.install, self.program.env
        )
    }
}

impl Program {
    /// The program's path (see the module documentation for the order).
    pub fn locate(&self) -> Result<PathBuf, Missing> {
        let missing = |problem: String| Missing {
            program: *self,
            problem,
        };
        if let Some(path) = std::env::var_os(self.env).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(path);
            return if is_executable(&path) {
                Ok(path)
            } else {
                Err(missing(format!(
                    "is not an executable file at {}={}",
                    self.env,
                    path.display()
                )))
            };
        }
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.extend(self.extra_dirs.iter().map(PathBuf::from));
        dirs.iter()
            .map(|d| d.join(self.name))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                missing(format!(
                    "was not found (looked in PATH and {}; {} is not set)",
                    self.extra_dirs.join(", "),
                    self.env
                ))
            })
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Whether a missing program must fail the test ([`REQUIRE_ENV`] is `1`).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_ENV).as_deref() == Ok("1")
}

/// The program's path; or, when it is missing: a panic that says how to
/// install it if [`services_required`], else a loud skip notice and `None`
/// (the caller returns, and the harness reports the test as passed).
#[track_caller]
pub fn require(program: &Program) -> Option<PathBuf> {
    match program.locate() {
        Ok(path) => Some(path),
        Err(missing) => {
            skip_or_fail(&missing);
            None
        }
    }
}

/// Panics with `missing` when services are required, else prints the skip
/// notice. For a test that finds its part some other way.
#[track_caller]
pub fn skip_or_fail(missing: &Missing) {
    let test = test_name();
    if services_required() {
        panic!("{test}: {missing} ({REQUIRE_ENV}=1: required, not skipped)");
    }
    // Straight to the process's stderr handle: the test harness captures
    // `eprintln!` (and `print!`) of a passing test, so a skip written that
    // way would be invisible. This one shows in a plain `cargo test`.
    let notice = format!(
        "\n\
         *** SKIPPED {test}\n\
         ***   {missing}\n\
         ***   The test reports `ok` without having run; {REQUIRE_ENV}=1 makes this a failure.\n\n"
    );
    let _ = std::io::stderr().lock().write_all(notice.as_bytes());
}

/// The running test's name: the harness names each test's thread after it
/// (with `--test-threads=1` it may run on `main`, which names nothing).
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}
