//! The commands of `ctower`, one function each, called with what the
//! command line said ([`crate::cli`]).

use crate::cli::{
    CheckArgs, Cli, Command, DemoArgs, ExportArgs, RecordArgs, ReplayArgs, ReportArgs, RunArgs,
    SimulateArgs,
};
use crate::pipeline::runtime;
use crate::progress::{thousands, Bar};
use crate::{batch, check, live, locate, logs, settings};
use anyhow::{bail, Context};
use ctower_collector::endpoint::BrokerEndpoint;

/// Runs the command the command line names (the demo without one).
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Run(a)) => run(&cli.log, a),
        Some(Command::Demo(a)) => demo(&cli.log, a),
        None => demo(&cli.log, DemoArgs::default()),
        Some(Command::Replay(a)) => replay(&cli.log, a),
        Some(Command::Record(a)) => record(&cli.log, a),
        Some(Command::Simulate(a)) => simulate(&cli.log, a),
        Some(Command::Check(a)) => check(&cli.log, a),
        Some(Command::Export(a)) => export(&cli.log, a),
        Some(Command::Report(a)) => report(&cli.log, a),
        Some(Command::Audit(crate::cli::AuditCommand::Verify(a))) => audit_verify(&cli.log, a),
        Some(Command::Alarms(a)) => crate::alarms::run(&cli.log, a),
        Some(Command::Set(a)) => crate::params::set(&cli.log, a),
        Some(Command::Approve(a)) => crate::params::decide(&cli.log, a, true),
        Some(Command::Reject(a)) => crate::params::decide(&cli.log, a, false),
        Some(Command::Params(c)) => crate::params::list(&cli.log, c),
        Some(Command::Signature(crate::cli::SignatureCommand::Hash)) => crate::params::hash(),
        Some(Command::Plant(a)) => crate::plant::main(&cli.log, a),
        Some(Command::Tui(a)) => crate::attach::run(&cli.log, a),
    }
}

/// `ctower audit verify`: the trail's hash chain checked.
fn audit_verify(log: &str, a: crate::cli::AuditVerifyArgs) -> anyhow::Result<()> {
    use ctower_alerts::audit;
    logs::init(log)?;
    let path = match a.path {
        Some(p) => p,
        None => settings::load(&locate::config_path(a.config)?)?.audit_path,
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the audit trail {}", path.display()))?;
    let head = std::fs::read_to_string(audit::head_path(&path)).ok();
    match audit::verify(&text, head.as_deref()) {
        Ok(n) => {
            println!(
                "{}: OK, {n} record(s), the hash chain unbroken",
                path.display()
            );
            Ok(())
        }
        Err(b) => bail!("{}: broken at {b}", path.display()),
    }
}

/// `ctower report`: figures of a site over a period, from the journal.
fn report(log: &str, a: ReportArgs) -> anyhow::Result<()> {
    use crate::report::{self, Format};
    logs::init(log)?;
    let parse = |flag: &str, s: &str| {
        ctower_model::time::parse_rfc3339_ms(s)
            .with_context(|| format!("{flag} `{s}` is not RFC 3339 (e.g. 2026-03-02T05:00:00Z)"))
    };
    let (from, to) = (parse("--from", &a.from)?, parse("--to", &a.to)?);
    if from >= to {
        bail!("--from must be before --to");
    }
    let config = locate::config_path(a.config)?;
    let settings = settings::load(&config)?;
    if a.kind == report::Kind::Alarms {
        if a.format == Format::Html {
            bail!("the alarms report is a table, CSV or JSON");
        }
        let events = report::alarms::read_alarms(&settings.journal_dir, to)?;
        let (lines, actors) = report::alarms::kpis(&events, from, to, a.site.as_deref());
        if lines.is_empty() {
            bail!(
                "no alarm in the journal {} up to {}",
                settings.journal_dir.display(),
                a.to
            );
        }
        let text = report::alarms::render(&lines, &actors, a.format)?;
        return write_out(a.output.as_deref(), &text);
    }
    let Some(site) = a.site.clone() else {
        bail!("--site is required for the {} report", a.kind.as_str());
    };
    let records = report::read::read_kpis(&settings.journal_dir, from, to, &|r| {
        r.scope.site.as_deref() == Some(site.as_str())
    })?;
    if records.is_empty() {
        bail!(
            "no KPI records of site `{}` between {} and {} in the journal {}",
            site,
            a.from,
            a.to,
            settings.journal_dir.display()
        );
    }
    let spec = report::Spec {
        kind: a.kind,
        site,
        from_ms: from,
        to_ms: to,
        by: a.by,
    };
    let r = report::build(spec, &records);
    let text = match a.format {
        Format::Table => report::render::table(&r),
        Format::Csv => report::render::csv(&r)?,
        Format::Json => format!("{:#}\n", report::render::json(&r)),
        Format::Html => report::html::html(&r),
    };
    write_out(a.output.as_deref(), &text)
}

/// A report to its file, or to standard output.
fn write_out(output: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// `ctower export --to-influx`: a journal period into InfluxDB.
fn export(log: &str, a: ExportArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let parse = |flag: &str, s: &str| {
        ctower_model::time::parse_rfc3339_ms(s)
            .with_context(|| format!("{flag} `{s}` is not RFC 3339 (e.g. 2026-03-02T05:00:00Z)"))
    };
    let (from, to) = (parse("--from", &a.from)?, parse("--to", &a.to)?);
    if from >= to {
        bail!("--from must be before --to");
    }
    let config = locate::config_path(a.config)?;
    let settings = settings::load(&config)?;
    let Some(rules) = &settings.influx else {
        bail!(
            "{} has no [influx] section: nowhere to export to",
            config.display()
        );
    };
    let bar = Bar::new(stderr_is_terminal(), "export", "lines", None);
    let handle = bar.handle();
    let done =
        crate::influx::export::export(rules, &settings.journal_dir, from, to, &|sent, total| {
            handle.set_length(total);
            handle.set_position(sent);
        })?;
    bar.finish();
    tracing::info!(
        files = done.files,
        lines = done.lines,
        rejected = done.rejected,
        left = done.left,
        url = %rules.url,
        "export done"
    );
    if done.left > 0 {
        bail!(
            "{} of {} lines not taken by {} yet: they wait in the export outbox and go with the next export",
            thousands(done.left),
            thousands(done.lines),
            rules.url
        );
    }
    Ok(())
}

/// `ctower run`: live mode, or batch mode with `--replay`.
fn run(log: &str, a: RunArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    if a.processes.is_some() && a.replay.is_none() {
        bail!("--processes (timely cluster mode) is for the batch mode (--replay …); live mode runs in one process, scale it with -w N");
    }
    let cluster = batch::cluster_from_args(
        a.processes,
        a.process_id,
        a.hostfile.as_deref(),
        a.connect_timeout,
    )?;
    let config = locate::config_path(a.config)?;
    let settings = settings::load(&config)?;
    let workers = a.workers.unwrap_or(settings.workers);
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    let (Some(recording), Some(out)) = (a.replay.clone(), a.out.clone()) else {
        let opts = live::LiveOptions {
            workers,
            tui: false,
            demo_replay: None,
            out_dir: a.out,
            stop_after: a.stop_after,
        };
        return live::run(settings, opts);
    };
    if a.speed.as_deref() != Some("max") || !a.until_end {
        bail!("batch mode needs --speed max --until-end (for a paced replay publish to a broker with `ctower replay`)");
    }
    if a.decode_threads == Some(0) {
        bail!("--decode-threads must be at least 1");
    }
    let mut opts = batch::BatchOptions::new(workers, a.decode_threads);
    opts.show_progress = stderr_is_terminal();
    opts.cluster = cluster;
    batch::run_command(&settings, &config, &recording, &out, opts)
}

/// Whether progress bars can be drawn (stderr is a terminal).
fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// `ctower check`: the report on stdout; non-zero when anything failed.
fn check(log: &str, a: CheckArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let config = locate::config_path(a.config)?;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let connect = a
        .connect
        .then(|| std::time::Duration::from_secs(a.connect_timeout.max(1)));
    let outcome = check::check(&config, &vars, connect, &mut std::io::stdout().lock())?;
    if outcome.passed() {
        return Ok(());
    }
    match outcome.problems {
        0 => bail!(
            "{} source(s) or hook(s) could not be reached",
            outcome.unreachable
        ),
        n => bail!("{n} problem(s) in {}", config.display()),
    }
}

/// `ctower demo` (and `ctower` alone).
fn demo(log: &str, a: DemoArgs) -> anyhow::Result<()> {
    let config = locate::config_path(a.config)?;
    let settings = settings::load(&config)?;
    if a.headless {
        logs::init(log)?;
    } else {
        logs::init_file(log, &settings.journal_dir.join("ctower.log"))?;
    }
    let workers = a.workers.unwrap_or(settings.workers).max(1);
    let recording = locate::demo_recording(&settings.demo.recording, &config);
    if !recording.exists() {
        bail!(
            "the demo recording {} is missing (a relative path is looked up in the working directory, then in the checkout of the configuration {}); regenerate it with `ctower simulate -o {}`",
            settings.demo.recording.display(),
            config.display(),
            settings.demo.recording.display()
        );
    }
    let speed = a.speed.unwrap_or(settings.demo.speed);
    let opts = live::LiveOptions {
        workers,
        tui: !a.headless,
        demo_replay: Some((recording, speed)),
        out_dir: None,
        stop_after: None,
    };
    live::run(settings, opts)
}

/// A `--broker` URL as an endpoint. These commands start no embedded
/// broker, so `embedded` is refused, saying why.
fn endpoint(url: &str) -> anyhow::Result<BrokerEndpoint> {
    BrokerEndpoint::from_url(url, None).context("--broker")
}

/// `ctower replay`: a recording to a broker.
fn replay(log: &str, a: ReplayArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let endpoint = endpoint(&a.broker)?;
    let mut o = ctower_collector::replay::PublishOptions::new(a.client_id);
    o.speed = a
        .speed
        .parse()
        .map_err(|e| anyhow::anyhow!("--speed: {e}"))?;
    o.loop_forever = a.loop_forever;
    if a.now {
        o.shift_to_now = Some(ctower_model::Clock::system());
    }
    let bar = Bar::new(stderr_is_terminal(), "replay", "records", None);
    let publish = ctower_collector::replay::publish_recording(&a.file, &endpoint, o, |p| {
        if let Some(total) = p.total_hint {
            bar.set_total(total);
        }
        bar.set_position(p.published);
        bar.set_message(format!(
            "replay @ {}",
            ctower_model::time::rfc3339_ms(p.event_time_ms)
        ));
    });
    let stats = runtime()?.block_on(publish)?;
    bar.finish();
    tracing::info!(published = stats.published, acknowledged = stats.acknowledged, passes = stats.passes, broker = %endpoint, "replay done");
    Ok(())
}

/// `ctower record`: live traffic to a recording.
fn record(log: &str, a: RecordArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let endpoint = endpoint(&a.broker)?;
    let rt = runtime()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let n = rt.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        });
        ctower_collector::replay::record(
            &endpoint,
            &a.client_id,
            a.topics,
            &a.output,
            stop_rx,
            a.count,
            None,
        )
        .await
    })?;
    tracing::info!(records = n, "recording written");
    Ok(())
}

/// `ctower simulate`: a deterministic recording of simulated plants.
fn simulate(log: &str, a: SimulateArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let mut cfg = ctower_sim::SimConfig {
        seed: a.seed,
        hours: a.hours,
        plants: a.plants,
        clean: a.clean,
        very_late_per_hour: a.very_late_per_hour,
        ..Default::default()
    };
    if let Some(s) = a.start {
        cfg.start_ms = ctower_model::time::parse_rfc3339_ms(&s)
            .with_context(|| format!("--start `{s}` is not RFC 3339"))?;
    }
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = ctower_model::ReplayWriter::create(&a.output)?;
    let total_s = (cfg.hours * 3600.0).ceil().max(0.0) as u64;
    let bar = Bar::new(
        stderr_is_terminal(),
        "simulate",
        "s of plant time",
        Some(total_s),
    );
    let summary = ctower_sim::simulate_with_progress(&cfg, &mut w, |p| {
        bar.set_position((p.done_ms / 1000).max(0) as u64);
        bar.set_message(format!("simulate ({} records)", thousands(p.messages)));
    })?;
    w.finish()?;
    bar.finish();
    tracing::info!(
        messages = summary.messages,
        malformed = summary.malformed,
        late = summary.late,
        very_late = summary.very_late,
        very_late_per_site = ?summary.very_late_per_site(),
        incidents = summary.incidents.len(),
        output = %a.output.display(),
        "recording written"
    );
    Ok(())
}
