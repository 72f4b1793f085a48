//! The JSON decoder on arbitrary topics and payloads: it may refuse, never
//! panic, and what it accepts is what a KPI may take (a finite number, an
//! event time in range, a cumulative value within bounds).
#![no_main]

use ctower_collector::decode::{DecodeRules, Decoder, MAX_CUMULATIVE, TS_MAX_MS, TS_MIN_MS};
use ctower_model::Value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a signal of the default tree, so most inputs
    // reach the payload parser instead of stopping at the topic.
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let signals = [
        "state",
        "count_total",
        "energy_kwh",
        "product",
        "power_kw",
        "x/y",
    ];
    let topic = format!(
        "acme/lyon/aseptic/fill-1/filler/{}",
        signals[usize::from(pick) % signals.len()]
    );
    let mut decoder = Decoder::new(DecodeRules::default_uns());
    if let Ok(obs) = decoder.decode(&topic, payload, 0) {
        assert!((TS_MIN_MS..=TS_MAX_MS).contains(&obs.ts_ms));
        if let Value::Number(v) = obs.value {
            assert!(v.is_finite());
            if obs.role.is_cumulative() {
                assert!((0.0..=MAX_CUMULATIVE).contains(&v));
            }
        }
    }
});
