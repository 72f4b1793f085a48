//! Sparkplug B payloads made by three independent implementations, the PyPI
//! packages `pysparkplug` (`pysparkplug_cases.py`) and `mqtt-spb-wrapper`
//! (`spb_wrapper_cases.py`, Eclipse Tahu's Python helpers) and the npm
//! package `sparkplug-payload` (`tahu_js_cases.js`, Eclipse Tahu's
//! JavaScript), each in its own environment, decode to the values,
//! aliases, types and timestamps it was given: every scalar type of the
//! specification (signed integers from their unsigned encoding, the
//! largest UInt64, DateTime, bytes), a null and a historical metric, a
//! birth with names and types and a data message by alias only, its types
//! left out (taken from the birth). An array metric is refused by name.

use ctower_collector::sparkplug::payload::typed_value;
use ctower_collector::sparkplug::{decode_payload, DataType, SpValue};
use serde_json::Value;
use std::collections::BTreeMap;

fn run_cases(mut cmd: std::process::Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn script(name: &str) -> String {
    format!("{}/tests/io/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> Option<Value> {
    let python = ctower_testkit::services::require_pysparkplug()?;
    let mut c = std::process::Command::new(python);
    c.arg(script("pysparkplug_cases.py"));
    Some(run_cases(c))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Whether `got` is the JSON `want` of the Python side.
fn same(got: &SpValue, want: &Value) -> bool {
    match got {
        SpValue::Int(v) => want.as_i64() == Some(*v),
        // JavaScript gives the largest UInt64 as a string.
        SpValue::UInt(v) => {
            want.as_u64()
                .or_else(|| want.as_str().and_then(|s| s.parse().ok()))
                == Some(*v)
        }
        SpValue::Float(v) => want.as_f64() == Some(*v),
        SpValue::Bool(v) => want.as_bool() == Some(*v),
        SpValue::Text(v) => want.as_str() == Some(v),
        SpValue::DateTime(v) => want.as_i64() == Some(*v),
        SpValue::Bytes(v) => {
            want.as_str() == Some(&v.iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
    }
}

#[test]
fn payloads_of_pysparkplug_decode_to_their_values() {
    let Some(cases) = cases() else {
        return;
    };
    check(&cases, true);
}

#[test]
fn payloads_of_mqtt_spb_wrapper_decode_to_their_values() {
    let Some(python) = ctower_testkit::services::require_spb_wrapper() else {
        return;
    };
    let mut c = std::process::Command::new(python);
    c.arg(script("spb_wrapper_cases.py"));
    check(&run_cases(c), false);
}

#[test]
fn payloads_of_tahu_javascript_decode_to_their_values() {
    let Some((node, modules)) = ctower_testkit::services::require_tahu_js() else {
        return;
    };
    let mut c = std::process::Command::new(node);
    c.arg(script("tahu_js_cases.js")).env("NODE_PATH", modules);
    check(&run_cases(c), false);
}

/// The payloads of `cases` hold what it says; `alias_only`: its data
/// message leaves names and types out (only aliases).
fn check(cases: &Value, alias_only: bool) {
    let t = cases["t"].as_i64().unwrap();
    let birth = decode_payload(&hex(cases["nbirth"].as_str().unwrap())).unwrap();
    let data = decode_payload(&hex(cases["ndata"].as_str().unwrap())).unwrap();
    assert_eq!((birth.seq, birth.timestamp_ms), (Some(0), Some(t)));
    assert_eq!((data.seq, data.timestamp_ms), (Some(1), Some(t + 1000)));

    // The birth binds names, aliases and types; data messages use aliases.
    let mut types = BTreeMap::new();
    let mut checked = 0;
    for want in cases["metrics"].as_array().unwrap() {
        let name = want["name"].as_str().unwrap();
        let alias = want["alias"].as_u64().unwrap();
        let code = want["datatype"].as_u64().unwrap() as u32;
        let b = birth
            .metrics
            .iter()
            .find(|m| m.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} in the birth"));
        assert_eq!((b.alias, b.datatype), (Some(alias), Some(code)), "{name}");
        assert_eq!(b.timestamp_ms, Some(t + alias as i64), "{name}");
        types.insert(alias, code);

        let d = data
            .metrics
            .iter()
            .find(|m| m.alias == Some(alias))
            .unwrap_or_else(|| panic!("{name} in the data"));
        assert_eq!(d.name.as_deref(), None, "{name}: alias only");
        if alias_only {
            assert_eq!(d.datatype, None, "{name}: no type in data");
        }
        assert_eq!(d.timestamp_ms, Some(t + 1000 + alias as i64), "{name}");

        let datatype = DataType::from_code(types[&alias]).unwrap();
        for m in [b, d] {
            let raw = m.raw.as_ref().unwrap();
            match (&want["value"], typed_value(datatype, raw)) {
                (Value::Null, Err(e)) => assert!(e.contains("array"), "{name}: {e}"),
                (want, Ok(got)) => assert!(same(&got, want), "{name}: {got:?} is not {want}"),
                (want, Err(e)) => panic!("{name}: {e} (want {want})"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, cases["metrics"].as_array().unwrap().len());
    assert!(checked >= 15);

    let null = birth
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("nothing"))
        .unwrap();
    assert_eq!(null.raw, None, "a null metric has no value");
    let historical = data.metrics.iter().find(|m| m.alias == Some(91)).unwrap();
    assert!(historical.historical);
    assert_eq!(historical.timestamp_ms, Some(t - 60_000));
}

#[test]
fn what_is_not_a_payload_is_refused_not_a_crash() {
    for bad in [&b"\xff\xff\xff"[..], b"{\"ts\":1}", &[0x12, 0x80]] {
        assert!(decode_payload(bad).is_err(), "{bad:?}");
    }
    assert_eq!(decode_payload(b"").unwrap().metrics.len(), 0);
}

/// The parameter writes ctower sends (DCMD payloads, `encode_write`) decode
/// with pysparkplug to the metric name, alias, data type and value they
/// were given: the edge node reads what the engine meant.
#[test]
fn write_commands_decode_with_pysparkplug() {
    use ctower_collector::sparkplug::encode_write;
    use ctower_model::ParamValue;
    let Some(python) = ctower_testkit::services::require_pysparkplug() else {
        return;
    };
    let t = 1_772_427_600_000i64;
    let cases: Vec<(&str, u64, DataType, ParamValue, Value)> = vec![
        (
            "Filler/trim",
            1,
            DataType::Int8,
            ParamValue::Int(-5),
            (-5).into(),
        ),
        (
            "Filler/gap",
            2,
            DataType::Int16,
            ParamValue::Int(-300),
            (-300).into(),
        ),
        (
            "Filler/offset",
            3,
            DataType::Int32,
            ParamValue::Float(-70_000.0),
            (-70_000).into(),
        ),
        (
            "Filler/total",
            4,
            DataType::Int64,
            ParamValue::Int(-5_000_000_000),
            (-5_000_000_000i64).into(),
        ),
        (
            "Filler/mode",
            5,
            DataType::UInt8,
            ParamValue::Int(200),
            200.into(),
        ),
        (
            "Filler/rpm_sp",
            6,
            DataType::UInt16,
            ParamValue::Int(60_000),
            60_000.into(),
        ),
        (
            "Filler/count_sp",
            7,
            DataType::UInt32,
            ParamValue::Int(4_000_000_000),
            4_000_000_000u64.into(),
        ),
        (
            "Filler/big_sp",
            8,
            DataType::UInt64,
            ParamValue::Int(i64::MAX),
            (i64::MAX as u64).into(),
        ),
        (
            "Filler/temp_sp",
            9,
            DataType::Float,
            ParamValue::Float(72.5),
            72.5.into(),
        ),
        (
            "Filler/flow_sp",
            10,
            DataType::Double,
            ParamValue::Int(75),
            75.0.into(),
        ),
        (
            "Filler/enable",
            11,
            DataType::Boolean,
            ParamValue::Bool(true),
            true.into(),
        ),
    ];
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script("pysparkplug_dcmd.py"));
    for (name, alias, dt, v, _) in &cases {
        let bytes = encode_write(name, Some(*alias), *dt, *v, t).unwrap();
        cmd.arg(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    let decoded = run_cases(cmd);
    let decoded = decoded.as_array().unwrap();
    assert_eq!(decoded.len(), cases.len());
    for ((name, alias, dt, _, want), got) in cases.iter().zip(decoded) {
        assert_eq!(got["timestamp"].as_i64(), Some(t), "{name}");
        let m = &got["metrics"].as_array().unwrap()[..];
        assert_eq!(m.len(), 1, "{name}");
        assert_eq!(m[0]["name"].as_str(), Some(*name));
        assert_eq!(m[0]["alias"].as_u64(), Some(*alias), "{name}");
        let code = m[0]["datatype"].as_u64().unwrap() as u32;
        assert_eq!(DataType::from_code(code), Some(*dt), "{name}");
        assert_eq!(&m[0]["value"], want, "{name}");
    }
}
