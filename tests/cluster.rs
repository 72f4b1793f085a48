//! Timely cluster mode: two local processes
//! (`--processes 2 --process-id I --hostfile F`) must write byte-identical
//! batch output to one process with one worker. Only `summary.json`'s
//! `workers` and `processes` legitimately differ (they describe the run).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{
    assert_same_files, batch_command, dead_letter_total, read_jsonl, read_summary, recording, root,
    run_batch, scratch,
};
use ctower_model::ReplayReader;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Two distinct ports that were free a moment ago. Timely's cluster needs
/// fixed addresses known to every process, so they are released before the
/// processes bind them; a port taken in between (by anything, another test
/// included) fails the connection phase, and the whole run is retried.
fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    let b = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    [
        a.local_addr().expect("local address").port(),
        b.local_addr().expect("local address").port(),
    ]
}

fn ctower_run(args: &[&str], out: &Path) -> Command {
    let mut c = batch_command(&recording(), out);
    c.args(args);
    c
}

/// Waits for a child, killing it past the deadline (a hung cluster must
/// fail the test, not stall CI).
fn wait(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait().expect("waiting for ctower") {
            Some(status) => return Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

struct Process {
    status: Option<ExitStatus>,
    stderr: String,
    out: PathBuf,
}

/// Starts processes 0 and 1 of a two-process cluster (free ports, a
/// hostfile, outputs `p0`/`p1` in `dir`), process `i` with the extra
/// environment variable `env(i)`, and waits for both.
fn run_pair(
    dir: &Path,
    env: impl Fn(usize) -> Option<(&'static str, &'static str)>,
) -> Vec<Process> {
    std::fs::create_dir_all(dir).expect("creating the run directory");
    let [p0, p1] = free_ports();
    let hostfile = dir.join("hosts.txt");
    std::fs::write(&hostfile, format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n"))
        .expect("writing the hostfile");
    let hostfile = hostfile.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut children = Vec::new();
    for i in 0..2 {
        let out = dir.join(format!("p{i}"));
        let log = dir.join(format!("p{i}.stderr"));
        let mut cmd = ctower_run(
            &[
                "-w",
                "1",
                "--processes",
                "2",
                "--process-id",
                &i.to_string(),
                "--hostfile",
                &hostfile,
            ],
            &out,
        );
        if let Some((k, v)) = env(i) {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("creating the log file"))
            .spawn()
            .expect("starting the ctower binary");
        children.push((child, out, log));
    }
    children
        .into_iter()
        .map(|(mut child, out, log)| {
            let status = wait(&mut child, deadline);
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            Process {
                status,
                stderr,
                out,
            }
        })
        .collect()
}

/// One attempt at a two-process cluster run; `Err` (the processes' logs)
/// when the processes could not connect, e.g. because a port was taken.
fn cluster_run(base: &Path, attempt: usize) -> Result<[Process; 2], String> {
    let done = run_pair(&base.join(format!("attempt-{attempt}")), |_| None);
    // Errors of the connection phase read `error: cluster: process I of N: …`.
    if done
        .iter()
        .any(|p| p.stderr.contains("error: cluster: process "))
    {
        let logs: Vec<String> = done
            .iter()
            .enumerate()
            .map(|(i, p)| format!("process {i}:\n{}", p.stderr))
            .collect();
        eprintln!("attempt {attempt}: the processes did not connect, retrying");
        return Err(logs.join("\n"));
    }
    done.try_into()
        .map_err(|_| "two processes were started".to_string())
}

/// The sites of the recording and the process each goes to.
fn shares() -> BTreeSet<usize> {
    let mut sites = BTreeSet::new();
    for rec in ReplayReader::open(&recording()).expect("opening the recording") {
        let rec = rec.expect("reading the recording");
        if let Some(site) = rec.topic.split('/').nth(1) {
            sites.insert(site.to_string());
        }
    }
    sites
        .iter()
        .map(|s| ctower_stream::cluster::share_of(s, 2))
        .collect()
}

/// `late_dropped` goes too: a stream process counts only its own workers'
/// drops, so a cluster's summary says it does not know (null; asserted on
/// its own below).
fn without_run_shape(summary: &str) -> String {
    summary
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("\"workers\":")
                && !l.starts_with("\"processes\":")
                && !l.starts_with("\"late_dropped\":")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_processes_write_what_one_process_writes() {
    // Not a trivial split: each process takes some of the sites.
    assert_eq!(shares(), BTreeSet::from([0, 1]), "both processes get sites");

    let base = scratch("cluster");
    let started = Instant::now();
    let mut last = String::new();
    let [p0, p1] = (0..5)
        .find_map(|attempt| cluster_run(&base, attempt).map_err(|e| last = e).ok())
        .unwrap_or_else(|| panic!("no attempt of five connected; the last one's logs:\n{last}"));
    for (i, p) in [&p0, &p1].into_iter().enumerate() {
        assert!(
            p.status.is_some_and(|s| s.success()),
            "process {i} ended with {:?} (None: killed at the deadline)\nstderr:\n{}",
            p.status,
            p.stderr
        );
    }
    eprintln!(
        "cluster run: 2 processes in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // Process 1 writes nothing.
    assert!(
        !p1.out.exists(),
        "process 1 must not write outputs: {}",
        p1.out.display()
    );

    let single = base.join("single");
    run_batch(&recording(), &single, 1);

    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl", "dead-letters.jsonl"],
        (&single, "one process"),
        (&p0.out, "the cluster"),
    );

    let (s1, s2) = (read_summary(&single), read_summary(&p0.out));
    // Late drops are counted per process: known for one process (none in
    // this recording), unknown (null, not 0) for a cluster.
    assert_eq!(s1["late_dropped"].as_u64(), Some(0));
    assert!(s2["late_dropped"].is_null(), "{s2}");
    // The cluster's counts describe its files.
    assert_eq!(
        s2["kpi_records"].as_u64(),
        Some(read_jsonl(&p0.out.join("kpis.jsonl")).len() as u64)
    );
    assert_eq!(
        dead_letter_total(&s2),
        read_jsonl(&p0.out.join("dead-letters.jsonl")).len() as u64
    );
    assert_eq!(
        (s1["workers"].as_u64(), s1["processes"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (s2["workers"].as_u64(), s2["processes"].as_u64()),
        (Some(2), Some(2))
    );
    let text =
        |d: &Path| std::fs::read_to_string(d.join("summary.json")).expect("reading summary.json");
    assert_eq!(
        without_run_shape(&text(&single)),
        without_run_shape(&text(&p0.out)),
        "summary.json differs beyond workers and processes"
    );
}

fn fails_with(cmd: &mut Command, expected: &[&str]) {
    let out = cmd.output().expect("starting the ctower binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure, got success:\n{stderr}"
    );
    for e in expected {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}

#[test]
fn cluster_flags_are_checked_before_anything_starts() {
    let base = scratch("cluster-flags");
    let out = base.join("out");
    let one_line = base.join("one-line.txt");
    std::fs::write(&one_line, "127.0.0.1:1\n").expect("writing a hostfile");
    let two_lines = base.join("two-lines.txt");
    std::fs::write(&two_lines, "127.0.0.1:1\n127.0.0.1:2\n").expect("writing a hostfile");
    let h1 = one_line.display().to_string();
    let h2 = two_lines.display().to_string();

    fails_with(
        &mut ctower_run(
            &["--processes", "2", "--process-id", "2", "--hostfile", &h2],
            &out,
        ),
        &["--process-id 2 is out of range for --processes 2"],
    );
    fails_with(
        &mut ctower_run(
            &["--processes", "2", "--process-id", "0", "--hostfile", &h1],
            &out,
        ),
        &["1 address(es) for 2 processes"],
    );
    fails_with(
        &mut ctower_run(&["--processes", "2", "--process-id", "0"], &out),
        &["--hostfile"],
    );
    // Live mode runs in one process.
    fails_with(
        Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args([
                "run",
                "--processes",
                "2",
                "--process-id",
                "0",
                "--hostfile",
                &h2,
            ]),
        &["batch mode"],
    );
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn an_absent_peer_is_a_clear_error_after_the_timeout() {
    // Process 1 alone: process 0 never answers on its address.
    let base = scratch("cluster-absent");
    let [p0, p1] = free_ports();
    let hostfile = base.join("hosts.txt");
    std::fs::write(&hostfile, format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n"))
        .expect("writing the hostfile");
    let started = Instant::now();
    fails_with(
        &mut ctower_run(
            &[
                "--processes",
                "2",
                "--process-id",
                "1",
                "--hostfile",
                &hostfile.display().to_string(),
                "--connect-timeout",
                "1",
            ],
            &base.join("out"),
        ),
        &["process 0", &format!("127.0.0.1:{p0}")],
    );
    eprintln!(
        "absent peer reported in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn processes_with_different_inputs_refuse_each_other() {
    // Process 1 runs with another correction horizon: its KPIs would differ
    // from process 0's, so the handshake must refuse it, on both sides.
    let base = scratch("cluster-fingerprint");
    for attempt in 0..3 {
        let dir = base.join(format!("attempt-{attempt}"));
        let done = run_pair(&dir, |i| {
            (i == 1).then_some(("CTOWER__PIPELINE__CORRECTION_HORIZON_SECS", "600"))
        });
        let refused = |s: &str| s.contains("different recording or configuration");
        // One side sees the other's hello first; the other may only see
        // the connection close. At least one says why, and neither runs.
        if done.iter().any(|p| refused(&p.stderr)) {
            for (i, p) in done.iter().enumerate() {
                assert!(
                    p.status.is_some_and(|s| !s.success()),
                    "process {i} must fail:\n{}",
                    p.stderr
                );
            }
            assert!(
                !done[0].out.join("kpis.jsonl").exists(),
                "nothing may be written"
            );
            return;
        }
        eprintln!(
            "attempt {attempt}: no refusal (a port taken in between?):\n{}\n{}",
            done[0].stderr, done[1].stderr
        );
    }
    panic!("the processes were never refused for their different inputs");
}
