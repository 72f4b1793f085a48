//! Memory and CPU figures of this process from /proc (Linux; zero elsewhere).
fn status_kib(field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident set size, KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

/// Current resident set size, KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0); false if refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU time of the whole process (exited threads
/// included), seconds.
pub fn cpu_secs() -> f64 {
    stat_secs(14, 15)
}

/// User + system CPU time of this process's children that have been
/// waited for, seconds (the A/B runs' fresh processes).
pub fn children_cpu_secs() -> f64 {
    stat_secs(16, 17)
}

/// Fields `a` + `b` of /proc/self/stat (clock ticks), in seconds. Assumes
/// USER_HZ = 100, as on every Linux target.
fn stat_secs(a: usize, b: usize) -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name may contain spaces: fields start after the last ')'.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime field 14, stime field 15.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(a) + ticks(b)) as f64 / 100.0
}
