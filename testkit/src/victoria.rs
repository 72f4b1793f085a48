//! A real VictoriaMetrics for one test: a server speaking InfluxDB's v2
//! write API (`/api/v2/write`), read back through its own export API.
//!
//! Two of its ways differ from InfluxDB's, and the tests say so where it
//! matters: a point written twice (same series and timestamp) is kept
//! twice, not overwritten (unless `-dedup.minScrapeInterval` is set); and
//! it accepts malformed lines silently (it skips them and answers 204).

use crate::process::Spawned;
use crate::services::Program;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// VictoriaMetrics (Debian package `victoria-metrics`).
pub const VICTORIA_METRICS: Program = Program {
    name: "victoria-metrics",
    env: "CTOWER_VICTORIA_METRICS",
    install: "sudo apt-get update && sudo apt-get install victoria-metrics (Debian/Ubuntu), \
              or run `bash .ci/run`, which installs it",
    extra_dirs: &["/usr/bin", "/usr/local/bin"],
};

/// How long it may take to answer `/health`.
const READY: Duration = Duration::from_secs(30);

/// One exported series: its labels (with `__name__`), values and
/// timestamps (ms), in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels, `__name__` included (`kpi_availability` for field
    /// `availability` of measurement `kpi`).
    pub labels: BTreeMap<String, String>,
    /// The values.
    pub values: Vec<f64>,
    /// Their timestamps, ms.
    pub timestamps: Vec<i64>,
}

/// A VictoriaMetrics process on a free port of 127.0.0.1 with its data in
/// a temporary directory, keeping data of any age; killed on drop.
pub struct VictoriaMetrics {
    process: Option<Spawned>,
    port: u16,
    bin: PathBuf,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts `bin` with `extra` flags and waits until it is healthy.
    pub fn start(bin: &Path, extra: &[&str]) -> VictoriaMetrics {
        // It cannot report a port it chose itself: a free one is picked
        // (bind, read, release) and may be taken meanwhile; then another.
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("a directory for victoria-metrics");
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut args = vec![
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.path().join("data").display()),
                // Recordings are months old: keep everything.
                "-retentionPeriod=100y".into(),
                // Export what was just written, not only what is 30 s old.
                "-search.latencyOffset=0s".into(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut vm = VictoriaMetrics {
                process: None,
                port,
                bin: bin.to_path_buf(),
                args,
                _dir: dir,
            };
            if vm.launch() {
                return vm;
            }
        }
        panic!("victoria-metrics could not listen on a free port in 3 attempts");
    }

    /// Starts the process; `false` if it exited at once (port taken).
    fn launch(&mut self) -> bool {
        let mut process = Spawned::start(
            Command::new(&self.bin).args(&self.args),
            &format!("victoria-metrics :{}", self.port),
        );
        let deadline = Instant::now() + READY;
        loop {
            if self.get("/health").is_some_and(|b| b.trim() == "OK") {
                self.process = Some(process);
                return true;
            }
            if process.try_exit().is_some() {
                let log = process.tail();
                if log.contains("address already in use") {
                    return false;
                }
                panic!("victoria-metrics exited before answering:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics did not answer /health within {READY:?}:\n{}",
                process.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops it (SIGTERM, as an operator would), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let pid = p.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = p.wait_exit(READY);
            assert!(status.success(), "victoria-metrics stopped with {status}");
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn start_again(&mut self) {
        assert!(self.process.is_none(), "still running");
        assert!(self.launch(), "victoria-metrics could not listen again");
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut r = ureq::get(&format!("{}{path}", self.url())).call().ok()?;
        r.body_mut().read_to_string().ok()
    }

    /// Every series whose name matches the regular expression `name_re`,
    /// after making everything written readable (`/internal/force_flush`).
    pub fn export(&self, name_re: &str) -> Vec<Series> {
        self.get("/internal/force_flush")
            .expect("victoria-metrics /internal/force_flush");
        let mut r = ureq::post(&format!("{}/api/v1/export", self.url()))
            .send_form([
                ("match[]", format!("{{__name__=~\"{name_re}\"}}").as_str()),
                ("start", "1"),
            ])
            .expect("victoria-metrics /api/v1/export");
        let body = r.body_mut().read_to_string().expect("export body");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("an export line");
                let labels = v["metric"]
                    .as_object()
                    .expect("metric labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let values = v["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN))
                    .collect();
                let timestamps = v["timestamps"]
                    .as_array()
                    .expect("timestamps")
                    .iter()
                    .map(|x| x.as_i64().expect("a timestamp"))
                    .collect();
                Series {
                    labels,
                    values,
                    timestamps,
                }
            })
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(p) = &self.process {
            let _ = Command::new("kill")
                .args(["-KILL", &p.id().to_string()])
                .status();
        }
    }
}
