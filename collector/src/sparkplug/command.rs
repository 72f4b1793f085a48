//! A parameter write as a Sparkplug B command payload (NCMD for a node's
//! own metric, DCMD for a device's): one metric with the name, alias and
//! data type its birth declared, the value in the field that type
//! requires. Pure.
//!
//! Sparkplug 3.0 on command payloads: a payload `timestamp` (the time it is
//! sent) is required, a `seq` is forbidden (`tck-id-payloads-ncmd-seq`,
//! `-dcmd-seq`: only the edge node numbers its messages). The metric
//! carries its name as well as its alias, so that a node which lost its
//! alias table (or never used one) still knows the metric.
//!
//! Strict on values: a value must be representable in the metric's type
//! or it is refused with the reason, never wrapped or clamped into
//! something the operator did not ask for. One exception, said here and in
//! the README: a 32-bit `Float` metric gets the nearest 32-bit float (its
//! step is 0.002 near 16,000), so the catalogue's `tolerance` must cover
//! that step or the read-back never confirms.

use super::payload::DataType;
use super::wire;
use ctower_model::ParamValue;
use prost::Message;

/// The Sparkplug B payload writing `value` to the metric `metric` (its
/// `alias` and `datatype` from the birth), sent at `ts_ms` (UTC ms); the
/// error says why the value cannot be written to that metric.
pub fn encode_write(
    metric: &str,
    alias: Option<u64>,
    datatype: DataType,
    value: ParamValue,
    ts_ms: i64,
) -> Result<Vec<u8>, String> {
    if metric.is_empty() {
        return Err("the metric has no name".into());
    }
    let ts = u64::try_from(ts_ms).map_err(|_| format!("the time {ts_ms} ms is before 1970"))?;
    let value = metric_value(datatype, value).map_err(|why| {
        format!(
            "cannot write {value} to the {} metric `{metric}`: {why}",
            datatype.name()
        )
    })?;
    let payload = wire::Payload {
        timestamp: Some(ts),
        metrics: vec![wire::Metric {
            name: Some(metric.to_string()),
            alias,
            timestamp: Some(ts),
            datatype: Some(code(datatype)),
            value: Some(value),
            ..Default::default()
        }],
        // Commands carry no sequence number (module docs).
        seq: None,
        uuid: None,
        body: None,
    };
    Ok(payload.encode_to_vec())
}

/// The Sparkplug `datatype` code of a writable type.
fn code(datatype: DataType) -> u32 {
    use DataType::*;
    match datatype {
        Int8 => 1,
        Int16 => 2,
        Int32 => 3,
        Int64 => 4,
        UInt8 => 5,
        UInt16 => 6,
        UInt32 => 7,
        UInt64 => 8,
        Float => 9,
        Double => 10,
        Boolean => 11,
        String => 12,
        DateTime => 13,
        Text => 14,
        Uuid => 15,
        Bytes => 17,
        File => 18,
        Unsupported(c) => c,
    }
}

/// `value` in the field `datatype` requires: signed integers as their
/// two's complement in the type's own bits (Int8 −5 is 251, as the
/// reference implementations write it), Int64 and UInt64 in `long_value`.
fn metric_value(datatype: DataType, value: ParamValue) -> Result<wire::MetricValue, String> {
    use wire::MetricValue as V;
    use DataType as T;
    Ok(match datatype {
        T::Int8 => V::IntValue(u32::from(
            int_in(value, i8::MIN.into(), i8::MAX.into())? as i8 as u8,
        )),
        T::Int16 => V::IntValue(u32::from(
            int_in(value, i16::MIN.into(), i16::MAX.into())? as i16 as u16,
        )),
        T::Int32 => V::IntValue(int_in(value, i32::MIN.into(), i32::MAX.into())? as i32 as u32),
        T::Int64 => V::LongValue(int_in(value, i64::MIN.into(), i64::MAX.into())? as i64 as u64),
        T::UInt8 => V::IntValue(int_in(value, 0, u8::MAX.into())? as u32),
        T::UInt16 => V::IntValue(int_in(value, 0, u16::MAX.into())? as u32),
        T::UInt32 => V::IntValue(int_in(value, 0, u32::MAX.into())? as u32),
        T::UInt64 => V::LongValue(int_in(value, 0, u64::MAX.into())? as u64),
        T::Float => {
            let x = number(value)?;
            if x.abs() > f64::from(f32::MAX) {
                return Err(format!("{x} is beyond the range of a 32-bit float"));
            }
            V::FloatValue(x as f32)
        }
        T::Double => V::DoubleValue(number(value)?),
        T::Boolean => match value {
            ParamValue::Bool(b) => V::BooleanValue(b),
            _ => return Err("a Boolean metric takes true or false, not a number".into()),
        },
        other => return Err(format!("{} metrics are not writable", other.name())),
    })
}

/// `value` as a whole number in `min..=max`: an integer, or a float with
/// no fraction; never a switch.
fn int_in(value: ParamValue, min: i128, max: i128) -> Result<i128, String> {
    let i = match value {
        ParamValue::Int(i) => i128::from(i),
        ParamValue::Float(f) if !f.is_finite() => return Err(format!("{f} is not a number")),
        ParamValue::Float(f) if f.fract() != 0.0 => {
            return Err(format!(
                "{f} has a fraction, the metric takes whole numbers"
            ))
        }
        // Whole and finite: exact within ±2^127, and anything that large
        // is out of every range below (the cast saturates).
        ParamValue::Float(f) => f as i128,
        ParamValue::Bool(_) => {
            return Err("a number metric takes a number, not true or false".into())
        }
    };
    if (min..=max).contains(&i) {
        Ok(i)
    } else {
        Err(format!("{i} is outside {min}..={max}"))
    }
}

/// `value` as a finite number; never a switch.
fn number(value: ParamValue) -> Result<f64, String> {
    match value {
        ParamValue::Bool(_) => Err("a number metric takes a number, not true or false".into()),
        ParamValue::Int(i) => Ok(i as f64),
        ParamValue::Float(f) if f.is_finite() => Ok(f),
        ParamValue::Float(f) => Err(format!("{f} is not a finite number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::payload::{decode_payload, typed_value};
    use crate::sparkplug::SpValue;

    const T: i64 = 1_772_427_600_000;

    /// Encodes, decodes with the crate's own reader, and gives the metric's
    /// name, alias, type code and typed value.
    fn round_trip(dt: DataType, v: ParamValue) -> (String, Option<u64>, u32, SpValue) {
        let bytes = encode_write("Filler/setpoint", Some(7), dt, v, T).unwrap();
        let p = decode_payload(&bytes).unwrap();
        assert_eq!(
            (p.timestamp_ms, p.seq),
            (Some(T), None),
            "timestamp, no seq"
        );
        assert_eq!(p.metrics.len(), 1);
        let m = &p.metrics[0];
        assert_eq!(m.timestamp_ms, Some(T));
        let code = m.datatype.unwrap();
        let value =
            typed_value(DataType::from_code(code).unwrap(), m.raw.as_ref().unwrap()).unwrap();
        (m.name.clone().unwrap(), m.alias, code, value)
    }

    #[test]
    fn each_writable_type_round_trips_in_its_field() {
        use ParamValue::*;
        let cases = [
            (DataType::Int8, Int(-5), SpValue::Int(-5), 1),
            (DataType::Int16, Int(-300), SpValue::Int(-300), 2),
            (DataType::Int32, Float(-70_000.0), SpValue::Int(-70_000), 3),
            (
                DataType::Int64,
                Int(-5_000_000_000),
                SpValue::Int(-5_000_000_000),
                4,
            ),
            (DataType::UInt8, Int(200), SpValue::UInt(200), 5),
            (DataType::UInt16, Int(60_000), SpValue::UInt(60_000), 6),
            (
                DataType::UInt32,
                Int(4_000_000_000),
                SpValue::UInt(4_000_000_000),
                7,
            ),
            (
                DataType::UInt64,
                Int(i64::MAX),
                SpValue::UInt(i64::MAX as u64),
                8,
            ),
            (DataType::Float, Float(1.5), SpValue::Float(1.5), 9),
            (DataType::Double, Int(75), SpValue::Float(75.0), 10),
            (DataType::Double, Float(72.25), SpValue::Float(72.25), 10),
            (DataType::Boolean, Bool(true), SpValue::Bool(true), 11),
        ];
        for (dt, v, want, code) in cases {
            let got = round_trip(dt, v);
            assert_eq!(
                got,
                ("Filler/setpoint".into(), Some(7), code, want),
                "{dt:?} {v}"
            );
        }
    }

    #[test]
    fn negative_small_integers_take_only_their_own_bits() {
        let bytes = encode_write("x", None, DataType::Int8, ParamValue::Int(-5), T).unwrap();
        let p = wire::Payload::decode(&bytes[..]).unwrap();
        assert_eq!(p.metrics[0].value, Some(wire::MetricValue::IntValue(251)));
        assert_eq!(p.metrics[0].alias, None);
        let bytes = encode_write("x", None, DataType::Int64, ParamValue::Int(-1), T).unwrap();
        let p = wire::Payload::decode(&bytes[..]).unwrap();
        assert_eq!(
            p.metrics[0].value,
            Some(wire::MetricValue::LongValue(u64::MAX))
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused_with_the_reason() {
        use ParamValue::*;
        let refused = |dt, v| encode_write("m", Some(1), dt, v, T).unwrap_err();
        let e = refused(DataType::Int8, Int(128));
        assert!(
            e.contains("outside -128..=127") && e.contains("Int8 metric `m`"),
            "{e}"
        );
        assert!(refused(DataType::UInt16, Int(-1)).contains("outside 0..=65535"));
        assert!(refused(DataType::UInt32, Float(1e12)).contains("outside"));
        assert!(refused(DataType::Int32, Float(2.5)).contains("fraction"));
        assert!(refused(DataType::Int64, Float(f64::NAN)).contains("not a number"));
        assert!(refused(DataType::Double, Float(f64::INFINITY)).contains("finite"));
        assert!(refused(DataType::Float, Float(1e39)).contains("32-bit"));
        assert!(refused(DataType::Int32, Bool(true)).contains("not true or false"));
        assert!(refused(DataType::Double, Bool(false)).contains("not true or false"));
        assert!(refused(DataType::Boolean, Int(1)).contains("true or false"));
        assert!(refused(DataType::Boolean, Float(0.0)).contains("true or false"));
        for dt in [
            DataType::String,
            DataType::Text,
            DataType::DateTime,
            DataType::Bytes,
        ] {
            assert!(refused(dt, Int(1)).contains("not writable"), "{dt:?}");
        }
        assert!(
            refused(DataType::Unsupported(16), Int(1)).contains("DataSet metrics are not writable")
        );
        assert!(encode_write("m", None, DataType::Int8, Int(1), -1)
            .unwrap_err()
            .contains("1970"));
        assert!(encode_write("", None, DataType::Int8, Int(1), T).is_err());
    }
}
