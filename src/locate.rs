//! Where the configuration is when the command line names none: so that
//! `ctower` works from any directory, and says where it looked when it
//! finds nothing (a new user otherwise meets "No such file" for a path
//! they never typed).

use std::path::{Path, PathBuf};

/// The default configuration's path inside a project checkout.
pub const DEFAULT_CONFIG: &str = "configs/default.toml";

/// The configuration to load: `given` (from `-c` or `CTOWER_CONFIG`) as
/// is; otherwise the first of [`candidates`] that exists.
pub fn config_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    let candidates = candidates(cwd.as_deref(), exe.as_deref());
    match first_existing(&candidates, |p| p.is_file()) {
        Some(path) => {
            tracing::debug!(path = %path.display(), "configuration found");
            Ok(path)
        }
        None => anyhow::bail!(
            "no configuration given (-c FILE or CTOWER_CONFIG) and none found; looked for {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Where the default configuration may be, in order: the working
/// directory's `configs/default.toml`; beside the executable
/// (`<dir>/configs/default.toml`); the checkout the executable was built
/// in (`<checkout>/target/{debug,release}/ctower` →
/// `<checkout>/configs/default.toml`); `/etc/ctower/default.toml`.
pub fn candidates(cwd: Option<&Path>, exe: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(cwd) = cwd {
        out.push(cwd.join(DEFAULT_CONFIG));
    }
    if let Some(dir) = exe.and_then(Path::parent) {
        out.push(dir.join(DEFAULT_CONFIG));
        if let Some(checkout) = dir.parent().and_then(Path::parent) {
            out.push(checkout.join(DEFAULT_CONFIG));
        }
    }
    out.push(PathBuf::from("/etc/ctower/default.toml"));
    out.dedup();
    out
}

/// The demo's recording: `path` as configured if it exists (a relative
/// path from the working directory); otherwise, for a relative path and a
/// configuration in a checkout's `configs/`, the same path in that
/// checkout (so `ctower` runs its demo from any directory).
pub fn demo_recording(path: &Path, config: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let checkout = config.parent().and_then(Path::parent);
    match checkout.map(|c| c.join(path)) {
        Some(p) if p.exists() => p,
        _ => path.to_path_buf(),
    }
}

/// The first path `exists` accepts.
fn first_existing(paths: &[PathBuf], exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    paths.iter().find(|p| exists(p)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_directory_first_then_the_executable_then_etc() {
        let c = candidates(
            Some(Path::new("/home/op")),
            Some(Path::new("/src/ctower/target/release/ctower")),
        );
        let want: Vec<PathBuf> = [
            "/home/op/configs/default.toml",
            "/src/ctower/target/release/configs/default.toml",
            "/src/ctower/configs/default.toml",
            "/etc/ctower/default.toml",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(c, want);
        let found = first_existing(&c, |p| p.starts_with("/src/ctower/configs"));
        assert_eq!(
            found,
            Some(PathBuf::from("/src/ctower/configs/default.toml"))
        );
        assert_eq!(first_existing(&c, |_| false), None);
    }

    #[test]
    fn a_given_path_is_taken_as_is() {
        let p = PathBuf::from("nowhere/x.toml");
        assert_eq!(config_path(Some(p.clone())).ok(), Some(p));
    }

    #[test]
    fn nothing_found_says_where_it_looked() {
        let c = candidates(None, None);
        assert_eq!(c, vec![PathBuf::from("/etc/ctower/default.toml")]);
    }
}
