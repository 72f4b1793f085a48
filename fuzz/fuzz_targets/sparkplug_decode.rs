//! The Sparkplug B decoder and host session on arbitrary payloads: they
//! may refuse, never panic; every value they hand on has a name and a type
//! this host takes (an unsupported one is refused at the birth).
#![no_main]

use ctower_collector::sparkplug::{
    decode_payload, DataType, Event, HostSession, SessionLimits, SpTopic,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the message type, so births and data mix.
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let topics = [
        "spBv1.0/g/NBIRTH/n",
        "spBv1.0/g/NDATA/n",
        "spBv1.0/g/DBIRTH/n/d",
        "spBv1.0/g/DDATA/n/d",
        "spBv1.0/g/DDEATH/n/d",
        "spBv1.0/g/NDEATH/n",
    ];
    let Ok(topic) = SpTopic::parse(topics[usize::from(pick) % topics.len()]) else {
        return;
    };
    let Ok(payload) = decode_payload(payload) else {
        return;
    };
    // The same payload as a birth first, then as the picked message, so
    // that what it declares is used.
    let mut session = HostSession::new(SessionLimits::default());
    let Ok(born) = SpTopic::parse("spBv1.0/g/NBIRTH/n") else {
        return;
    };
    let mut events = session.handle(&born, payload.clone(), 0);
    events.extend(session.handle(&topic, payload, 1));
    events.extend(session.tick(10_000));
    for event in events {
        if let Event::Metric { name, datatype, .. } = event {
            assert!(!name.is_empty(), "a metric handed on without a name");
            assert!(
                !matches!(datatype, DataType::Unsupported(_)),
                "an unsupported type handed on"
            );
        }
    }
});
