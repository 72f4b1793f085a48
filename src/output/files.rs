//! The JSON Lines outputs of `--out DIR` (batch mode, and live mode when
//! asked): `kpis.jsonl`, `alarms.jsonl` and `summary.json`. One writer for
//! both modes, so a live run and a batch run of the same traffic can be
//! compared byte for byte.

use super::{RunEnd, Sink};
use anyhow::Context;
use ctower_model::{AlarmEvent, Fault, KpiRecord, StreamOutput};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `summary.json`: what a run read, accepted, refused and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The recording of a batch run.
    pub recording: Option<String>,
    /// Timely workers of the whole run: processes × worker threads each.
    pub workers: usize,
    /// Processes of the run: 1, or N in timely cluster mode.
    pub processes: usize,
    /// Messages read.
    pub messages: u64,
    /// Messages admitted into the pipeline.
    pub accepted: u64,
    /// Refused messages by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Late observations admitted but dropped by the stream because they
    /// no longer reach a window it keeps for corrections (see
    /// ARCHITECTURE.md, "Late data"). `null` in a cluster run of several
    /// processes: each process counts only its own workers' drops.
    pub late_dropped: Option<u64>,
    /// Windows closed.
    pub windows: u64,
    /// KPI records written.
    pub kpi_records: u64,
    /// Alarm events written.
    pub alarm_events: u64,
}

/// The two JSON Lines files and `summary.json` of one output directory.
pub struct JsonlOutputs {
    dir: PathBuf,
    kpis: BufWriter<File>,
    alarms: BufWriter<File>,
    /// One encoded line.
    line: Vec<u8>,
}

fn create(path: &Path, append: bool) -> anyhow::Result<BufWriter<File>> {
    let file = if append {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    } else {
        File::create(path)
    };
    // 256 KiB: the KPI file grows by tens of MB per hour of 100 plants;
    // fewer, larger writes.
    Ok(BufWriter::with_capacity(
        1 << 18,
        file.with_context(|| format!("creating {}", path.display()))?,
    ))
}

impl JsonlOutputs {
    /// Creates (truncates) `kpis.jsonl` and `alarms.jsonl` in `dir`, which
    /// is created if missing.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        Self::open(dir, false)
    }

    /// `append`: a restart goes on after what the files hold (cut back to
    /// the checkpoint); otherwise they are created anew.
    fn open(dir: &Path, append: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(JsonlOutputs {
            dir: dir.to_path_buf(),
            kpis: create(&dir.join("kpis.jsonl"), append)?,
            alarms: create(&dir.join("alarms.jsonl"), append)?,
            line: Vec::with_capacity(4096),
        })
    }

    /// Flushes and syncs both files; their lengths.
    fn sync(&mut self) -> std::io::Result<Vec<super::checkpoint::FileLen>> {
        let mut out = Vec::new();
        for (w, name) in [
            (&mut self.kpis, "kpis.jsonl"),
            (&mut self.alarms, "alarms.jsonl"),
        ] {
            w.flush()?;
            w.get_ref().sync_data()?;
            out.push(super::checkpoint::FileLen {
                path: self.dir.join(name),
                len: w.get_ref().metadata()?.len(),
            });
        }
        Ok(out)
    }

    /// Appends one KPI record.
    pub fn kpi(&mut self, k: &KpiRecord) -> anyhow::Result<()> {
        // Into a reused buffer, then one write (see `write_json`).
        self.line.clear();
        k.write_json(&mut self.line);
        self.line.push(b'\n');
        self.kpis.write_all(&self.line)?;
        Ok(())
    }

    /// Appends one alarm event.
    pub fn alarm(&mut self, ev: &AlarmEvent) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.alarms, ev)?;
        self.alarms.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes both files and writes `summary.json`.
    pub fn finish(&mut self, summary: &Summary) -> anyhow::Result<()> {
        self.kpis.flush()?;
        self.alarms.flush()?;
        let mut f = create(&self.dir.join("summary.json"), false)?;
        serde_json::to_writer_pretty(&mut f, summary)?;
        f.write_all(b"\n")?;
        f.flush()?;
        Ok(())
    }
}

/// The `--out` files as a sink. At the first error the files are no longer
/// written (a half-written JSON Lines file is worse than a stopped one):
/// said once, loudly, with the path, then reported as a fault that counts
/// the records not written.
pub struct FilesSink {
    files: Option<JsonlOutputs>,
    dir: PathBuf,
    /// The first error, and the records lost since.
    failed: Option<(String, u64)>,
}

impl FilesSink {
    /// Creates the files in `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        Self::open(dir, false)
    }

    /// Creates the files, or with `append` goes on after what they hold.
    pub fn open(dir: &Path, append: bool) -> anyhow::Result<Self> {
        Ok(FilesSink {
            files: Some(JsonlOutputs::open(dir, append)?),
            dir: dir.to_path_buf(),
            failed: None,
        })
    }

    fn write(&mut self, w: impl FnOnce(&mut JsonlOutputs) -> anyhow::Result<()>) {
        match self.files.as_mut() {
            Some(f) => {
                if let Err(e) = w(f) {
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %format!("{e:#}"),
                        "cannot write the --out files: they are no longer written"
                    );
                    self.files = None;
                    self.failed = Some((format!("{e:#}"), 1));
                }
            }
            None => {
                if let Some((_, lost)) = self.failed.as_mut() {
                    *lost += 1;
                }
            }
        }
    }
}

impl Sink for FilesSink {
    fn checkpoint(&mut self) -> Option<Vec<super::checkpoint::FileLen>> {
        if self.failed.is_some() {
            return None;
        }
        self.files.as_mut()?.sync().ok()
    }

    fn record(&mut self, out: &StreamOutput) {
        if let StreamOutput::Kpi(k) = out {
            self.write(|f| f.kpi(k));
        }
    }

    fn alarm(&mut self, ev: &AlarmEvent) {
        self.write(|f| f.alarm(ev));
    }

    fn fault(&self) -> Option<Fault> {
        self.failed.as_ref().map(|(error, lost)| Fault {
            stage: "out_files".into(),
            path: self.dir.display().to_string(),
            error: error.clone(),
            lost: *lost,
        })
    }

    fn finish(&mut self, end: &RunEnd) -> anyhow::Result<()> {
        if let Some((e, lost)) = &self.failed {
            anyhow::bail!("--out files: {e}; {lost} record(s) not written");
        }
        match self.files.as_mut() {
            Some(f) => f.finish(&end.summary).context("--out files"),
            None => Ok(()),
        }
    }
}
