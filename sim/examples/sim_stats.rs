//! Writes a recording and prints its summary, size and timing:
//! `cargo run -p ctower-sim --release --example sim_stats -- [SEED HOURS PLANTS [FILE]]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = ctower_sim::SimConfig::default();
    if let [seed, hours, plants, ..] = &args[..] {
        cfg.seed = seed.parse()?;
        cfg.hours = hours.parse()?;
        cfg.plants = plants.parse()?;
    }
    let started = Instant::now();
    let mut w = ctower_model::ReplayWriter::new(Vec::new())?;
    let s = ctower_sim::simulate(&cfg, &mut w)?;
    let bytes = w.finish()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seed {} hours {} plants {}: {} messages ({} malformed, {} late), {} bytes gzip, {secs:.2} s",
        cfg.seed,
        cfg.hours,
        cfg.plants,
        s.messages,
        s.malformed,
        s.late,
        bytes.len()
    );
    for i in &s.incidents {
        println!(
            "{:<18} {}/{}/{}  {} .. {}",
            i.kind.as_str(),
            i.site,
            i.area,
            i.line,
            ctower_model::time::rfc3339_ms(i.start_ms),
            ctower_model::time::rfc3339_ms(i.end_ms)
        );
    }
    if let Some(r) = &s.counter_reset {
        println!(
            "counter_reset      {}/{}/{}/{}  {}",
            r.site,
            r.area,
            r.line,
            r.asset,
            ctower_model::time::rfc3339_ms(r.at_ms)
        );
    }
    if let Some(path) = args.get(3) {
        std::fs::write(path, &bytes)?;
    }
    Ok(())
}
