//! Where a report was measured: machine, commit, time.

fn cmd_out(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit measured (and whether the tree has changes).
pub fn commit() -> String {
    match cmd_out("git", &["rev-parse", "--short", "HEAD"]) {
        None => "unknown".into(),
        Some(c) => match cmd_out("git", &["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{c} (uncommitted changes)"),
            _ => c,
        },
    }
}

/// The machine: cores, CPU model, RAM.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    format!(
        "{cores} CPUs available (nproc), {model}, {:.1} GiB RAM",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

/// Now, to the minute, UTC.
pub fn today() -> String {
    let s = ctower_model::time::rfc3339_ms(ctower_model::wall_ms());
    // Minutes are enough.
    format!("{} UTC", s.get(..16).unwrap_or(&s).replace('T', " "))
}
