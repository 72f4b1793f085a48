//! The cluster flags of `ctower run --processes N`: checked before anything
//! starts, and the fingerprint of the inputs every process must share.

use anyhow::{bail, Context};
use ctower_stream::Cluster;
use std::path::Path;
use std::time::Duration;

/// The cluster from the flags: the process index is in range and the
/// hostfile has exactly one address per process. One process is no
/// cluster (`None`). Its fingerprint is set once the inputs are known
/// ([`input_fingerprint`]).
pub fn cluster_from_args(
    processes: Option<usize>,
    process_id: Option<usize>,
    hostfile: Option<&Path>,
    connect_timeout_secs: u64,
) -> anyhow::Result<Option<Cluster>> {
    let (Some(processes), Some(process), Some(hostfile)) = (processes, process_id, hostfile) else {
        return Ok(None);
    };
    if processes == 0 {
        bail!("--processes must be at least 1");
    }
    if process >= processes {
        bail!(
            "--process-id {process} is out of range for --processes {processes} (0 to {})",
            processes - 1
        );
    }
    if connect_timeout_secs == 0 {
        bail!("--connect-timeout must be at least 1 s");
    }
    let text = std::fs::read_to_string(hostfile)
        .with_context(|| format!("reading the hostfile {}", hostfile.display()))?;
    let addresses = ctower_stream::cluster::parse_hostfile(&text, processes)
        .map_err(|e| anyhow::anyhow!("--hostfile {}: {e}", hostfile.display()))?;
    if processes == 1 {
        return Ok(None);
    }
    Ok(Some(Cluster {
        process,
        addresses,
        connect_timeout: Duration::from_secs(connect_timeout_secs),
        fingerprint: 0,
    }))
}

/// What every process of a cluster must compute from: the configuration
/// file, the `CTOWER__` variables layered on it (by name) and the recording.
/// Only hashed, never logged: the variables may hold secrets.
pub fn input_fingerprint(config: &Path, recording: &Path) -> anyhow::Result<u64> {
    let mut f = ctower_stream::cluster::Fingerprint::default();
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("reading {}", p.display()));
    f.reader(open(config)?)
        .with_context(|| format!("reading {}", config.display()))?;
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CTOWER__"))
        .collect();
    vars.sort();
    for (k, v) in &vars {
        f.bytes(k.as_bytes());
        f.bytes(&[0]);
        f.bytes(v.as_bytes());
        f.bytes(&[0]);
    }
    f.end_part(vars.len() as u64);
    f.reader(open(recording)?)
        .with_context(|| format!("reading {}", recording.display()))?;
    Ok(f.value())
}
