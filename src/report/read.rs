//! The journal's KPI records read back: each `kpi` line parsed by InfluxDB
//! IOx's line-protocol parser and rebuilt as the [`KpiRecord`] it was
//! written from (names through the one KPI field table), keeping the
//! latest revision of each record.

use crate::influx::export::journal_files;
use ctower_model::kpi::{FieldKind, KpiRecord};
use influxdb_line_protocol::{parse_lines, FieldValue};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// The KPI records of the journal in `dir` that lie within
/// `[from_ms, to_ms]` (start at or after `from_ms`, end at or before
/// `to_ms`) and that `keep` wants, the latest revision of each, ordered by
/// period, scope and time.
pub fn read_kpis(
    dir: &Path,
    from_ms: i64,
    to_ms: i64,
    keep: &dyn Fn(&KpiRecord) -> bool,
) -> anyhow::Result<Vec<KpiRecord>> {
    let files = journal_files(dir)
        .map_err(|e| anyhow::anyhow!("cannot list the journal in {}: {e}", dir.display()))?;
    if files.is_empty() {
        anyhow::bail!("no journal files in {}", dir.display());
    }
    let mut latest: BTreeMap<(String, i64), KpiRecord> = BTreeMap::new();
    let mut skipped: u64 = 0;
    for path in files {
        let file = std::fs::File::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            if !line.starts_with("kpi,") {
                continue;
            }
            let record = match parse_kpi(&line) {
                Ok(r) => r,
                Err(e) => {
                    if skipped == 0 {
                        tracing::warn!(file = %path.display(), line = n + 1, error = %e, "a journal line that is no KPI record: skipped (and counted)");
                    }
                    skipped += 1;
                    continue;
                }
            };
            if record.window_start_ms < from_ms || record.window_end_ms > to_ms || !keep(&record) {
                continue;
            }
            let key = (
                format!("{}|{}", record.period.as_str(), record.scope),
                record.window_start_ms,
            );
            match latest.get(&key) {
                Some(old) if old.revision > record.revision => {}
                _ => {
                    latest.insert(key, record);
                }
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(skipped, "journal lines skipped: not KPI records");
    }
    Ok(latest.into_values().collect())
}

/// One `kpi` line as its record.
pub fn parse_kpi(line: &str) -> anyhow::Result<KpiRecord> {
    let parsed = parse_lines(line)
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty line"))?
        .map_err(|e| anyhow::anyhow!("not line protocol: {e}"))?;
    let mut obj = Map::new();
    for (k, v) in parsed.series.tag_set.iter().flatten() {
        obj.insert(k.to_string(), Value::String(v.to_string()));
    }
    let ts = parsed
        .timestamp
        .ok_or_else(|| anyhow::anyhow!("no timestamp"))?;
    obj.insert("window_end_ms".into(), Value::from(ts / 1_000_000));
    let mut keyed: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let is_keyed = |k: FieldKind| matches!(k, FieldKind::IntByKey | FieldKind::FloatByKey);
    // A plain field and a keyed one may share a journal name
    // (`unplanned_stop_ms` and `unplanned_stop_ms.REASON`).
    let by_journal: BTreeMap<&str, _> = KpiRecord::FIELDS
        .iter()
        .filter(|f| !is_keyed(f.kind))
        .map(|f| (f.journal_name, f))
        .collect();
    let keyed_by_journal: BTreeMap<&str, _> = KpiRecord::FIELDS
        .iter()
        .filter(|f| is_keyed(f.kind))
        .map(|f| (f.journal_name, f))
        .collect();
    for f in KpiRecord::FIELDS {
        if matches!(f.kind, FieldKind::IntByKey | FieldKind::FloatByKey) {
            keyed.insert(f.name, Map::new());
        }
    }
    for (k, v) in &parsed.field_set {
        let value = match v {
            FieldValue::I64(i) => Value::from(*i),
            FieldValue::U64(u) => Value::from(*u),
            FieldValue::F64(f) => Value::from(*f),
            FieldValue::Boolean(b) => Value::from(*b),
            FieldValue::String(s) => Value::from(s.to_string()),
        };
        let k = k.to_string();
        match k.as_str() {
            "period_start_ms" => {
                obj.insert("window_start_ms".into(), value);
            }
            "revision" | "complete" => {
                obj.insert(k, value);
            }
            _ => {
                if let Some(f) = by_journal.get(k.as_str()) {
                    obj.insert(f.name.to_string(), value);
                } else if let Some((prefix, key)) = k.split_once('.') {
                    let f = keyed_by_journal
                        .get(prefix)
                        .ok_or_else(|| anyhow::anyhow!("unknown field `{k}`"))?;
                    keyed
                        .entry(f.name)
                        .or_default()
                        .insert(key.to_string(), value);
                } else {
                    anyhow::bail!("unknown field `{k}`");
                }
            }
        }
    }
    for (name, map) in keyed {
        obj.insert(name.to_string(), Value::Object(map));
    }
    Ok(serde_json::from_value(Value::Object(obj))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::kpi::KpiSums;
    use ctower_model::{Level, Period, ScopeKey};
    use std::sync::Arc;

    #[test]
    fn a_journal_line_reads_back_as_the_record_it_was_written_from() {
        let mut sums = KpiSums {
            running_ms: 40_000,
            unplanned_stop_ms: 20_000,
            produced: Some(100),
            good: Some(97),
            ideal_time_ms: 30_000.0,
            energy_kwh: Some(1.5),
            ..Default::default()
        };
        sums.unplanned_stop_by_reason_ms
            .insert(Arc::from("jam, left"), 20_000);
        let mut k = KpiRecord::new(
            1_772_427_600_000,
            1_772_427_660_000,
            ScopeKey {
                level: Level::Line,
                site: Some("lyon fill".into()),
                area: Some("a".into()),
                line: Some("l=1".into()),
                asset: None,
            },
            sums,
        );
        k.period = Period::Shift;
        k.shift = Some("early".into());
        k.revision = 2;
        let mut line = String::new();
        crate::journal::kpi_line(&k, &mut line);
        let back = parse_kpi(&line).unwrap();
        assert_eq!(back, k, "{line}");
    }
}
