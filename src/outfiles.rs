//! The JSON Lines outputs of `--out DIR` (batch mode, and live mode when
//! asked): `kpis.jsonl`, `alarms.jsonl` and `summary.json`. One writer for
//! both modes, so a live run and a batch run of the same traffic can be
//! compared byte for byte.

use ctower_model::{AlarmEvent, KpiRecord, PipelineMetrics};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub recording: Option<String>,
    /// Timely workers of the whole run: processes × worker threads each.
    pub workers: usize,
    /// Processes of the run: 1, or N in timely cluster mode.
    pub processes: usize,
    pub messages: u64,
    pub accepted: u64,
    pub dead_letters: BTreeMap<String, u64>,
    pub windows: u64,
    pub kpi_records: u64,
    pub alarm_events: u64,
}

pub struct JsonlOutputs {
    dir: PathBuf,
    kpis: BufWriter<File>,
    alarms: BufWriter<File>,
    windows: u64,
    kpi_records: u64,
    alarm_events: u64,
    /// One encoded line.
    line: Vec<u8>,
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    use anyhow::Context;
    // 256 KiB: the KPI file grows by tens of MB per hour of 100 plants;
    // fewer, larger writes.
    Ok(BufWriter::with_capacity(
        1 << 18,
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

impl JsonlOutputs {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        Ok(JsonlOutputs {
            dir: dir.to_path_buf(),
            kpis: create(&dir.join("kpis.jsonl"))?,
            alarms: create(&dir.join("alarms.jsonl"))?,
            windows: 0,
            kpi_records: 0,
            alarm_events: 0,
            line: Vec::with_capacity(4096),
        })
    }

    pub fn window_closed(&mut self) {
        self.windows += 1;
    }

    pub fn kpi(&mut self, k: &KpiRecord) -> anyhow::Result<()> {
        // Into a reused buffer, then one write (see `write_json`).
        self.line.clear();
        k.write_json(&mut self.line);
        self.line.push(b'\n');
        self.kpis.write_all(&self.line)?;
        self.kpi_records += 1;
        Ok(())
    }

    pub fn alarm(&mut self, ev: &AlarmEvent) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.alarms, ev)?;
        self.alarms.write_all(b"\n")?;
        self.alarm_events += 1;
        Ok(())
    }

    /// Flushes both files and writes `summary.json` from the final metrics.
    pub fn finish(
        mut self,
        metrics: &PipelineMetrics,
        workers: usize,
        processes: usize,
        recording: Option<String>,
    ) -> anyhow::Result<Summary> {
        self.kpis.flush()?;
        self.alarms.flush()?;
        let summary = Summary {
            recording,
            workers,
            processes,
            messages: metrics.received,
            accepted: metrics.accepted,
            dead_letters: metrics.dead_letters.clone(),
            windows: self.windows,
            kpi_records: self.kpi_records,
            alarm_events: self.alarm_events,
        };
        let mut f = create(&self.dir.join("summary.json"))?;
        serde_json::to_writer_pretty(&mut f, &summary)?;
        f.write_all(b"\n")?;
        f.flush()?;
        Ok(summary)
    }
}
