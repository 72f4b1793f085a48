//! A Sparkplug B payload as a host reads it: the metrics with their names
//! or aliases, flags, timestamps and raw values; [`typed_value`] reads a
//! raw value as its data type (from the metric, or from the birth that
//! bound its alias: data messages may leave the type out).

use super::wire::{self, MetricValue};
use prost::Message;

/// Sparkplug B 3.0 data types (the `datatype` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// 1: signed 8-bit, in `int_value`.
    Int8,
    /// 2: signed 16-bit, in `int_value`.
    Int16,
    /// 3: signed 32-bit, in `int_value`.
    Int32,
    /// 4: signed 64-bit, in `long_value`.
    Int64,
    /// 5: unsigned 8-bit.
    UInt8,
    /// 6: unsigned 16-bit.
    UInt16,
    /// 7: unsigned 32-bit.
    UInt32,
    /// 8: unsigned 64-bit, in `long_value`.
    UInt64,
    /// 9: 32-bit float.
    Float,
    /// 10: 64-bit float.
    Double,
    /// 11: boolean.
    Boolean,
    /// 12: string.
    String,
    /// 13: date and time, ms since the epoch, in `long_value`.
    DateTime,
    /// 14: text.
    Text,
    /// 15: UUID, as text.
    Uuid,
    /// 17: bytes.
    Bytes,
    /// 18: a file, as bytes.
    File,
    /// Data sets (16), templates (19), property sets (20, 21) and the
    /// arrays (22–34): types this host does not take (refused by name).
    Unsupported(u32),
}

impl DataType {
    /// The type of a `datatype` code; `None` for 0 (unknown) and codes the
    /// specification does not define.
    pub fn from_code(code: u32) -> Option<DataType> {
        use DataType::*;
        Some(match code {
            1 => Int8,
            2 => Int16,
            3 => Int32,
            4 => Int64,
            5 => UInt8,
            6 => UInt16,
            7 => UInt32,
            8 => UInt64,
            9 => Float,
            10 => Double,
            11 => Boolean,
            12 => String,
            13 => DateTime,
            14 => Text,
            15 => Uuid,
            17 => Bytes,
            18 => File,
            16 | 19..=34 => Unsupported(code),
            _ => return None,
        })
    }

    /// Its name, for dead letters.
    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Int8 => "Int8",
            Int16 => "Int16",
            Int32 => "Int32",
            Int64 => "Int64",
            UInt8 => "UInt8",
            UInt16 => "UInt16",
            UInt32 => "UInt32",
            UInt64 => "UInt64",
            Float => "Float",
            Double => "Double",
            Boolean => "Boolean",
            String => "String",
            DateTime => "DateTime",
            Text => "Text",
            Uuid => "UUID",
            Bytes => "Bytes",
            File => "File",
            Unsupported(16) => "DataSet",
            Unsupported(19) => "Template",
            Unsupported(20) => "PropertySet",
            Unsupported(21) => "PropertySetList",
            Unsupported(_) => "array",
        }
    }
}

/// A metric's value, read as its type.
#[derive(Debug, Clone, PartialEq)]
pub enum SpValue {
    /// A signed integer type.
    Int(i64),
    /// An unsigned integer type.
    UInt(u64),
    /// Float or Double (a Float widened exactly).
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// String, Text or UUID.
    Text(String),
    /// DateTime, ms since the epoch.
    DateTime(i64),
    /// Bytes or File.
    Bytes(Vec<u8>),
}

/// One metric of a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SpMetric {
    /// Its name (births always, data messages may leave it out).
    pub name: Option<String>,
    /// Its alias, when the edge node uses them.
    pub alias: Option<u64>,
    /// Acquisition time, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Its data type code, when the message gives it.
    pub datatype: Option<u32>,
    /// Historical data, with its own timestamp: not the current value.
    pub historical: bool,
    /// Not to be stored.
    pub transient: bool,
    /// `None`: the value is null (`is_null`, or no value field at all).
    pub raw: Option<MetricValue>,
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SpPayload {
    /// Sending time, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Sequence number (0..=255; absent in deaths).
    pub seq: Option<u64>,
    /// The metrics, in message order.
    pub metrics: Vec<SpMetric>,
}

/// Decodes a Sparkplug B payload; the error says why it is not one.
pub fn decode_payload(bytes: &[u8]) -> Result<SpPayload, String> {
    let p = wire::Payload::decode(bytes).map_err(|e| format!("not a Sparkplug B payload: {e}"))?;
    let ms = |t: Option<u64>, what: &str| -> Result<Option<i64>, String> {
        t.map(|t| i64::try_from(t).map_err(|_| format!("{what} {t} is out of range")))
            .transpose()
    };
    let metrics = p
        .metrics
        .into_iter()
        .map(|m| {
            Ok(SpMetric {
                timestamp_ms: ms(m.timestamp, "metric timestamp")?,
                name: m.name,
                alias: m.alias,
                datatype: m.datatype,
                historical: m.is_historical.unwrap_or(false),
                transient: m.is_transient.unwrap_or(false),
                raw: if m.is_null.unwrap_or(false) {
                    None
                } else {
                    m.value
                },
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SpPayload {
        timestamp_ms: ms(p.timestamp, "payload timestamp")?,
        seq: p.seq,
        metrics,
    })
}

/// Reads `raw` as `datatype`. Signed types are stored as their two's
/// complement in an unsigned field; only the type's own bits are read, so
/// an encoder that sign-extends into all 32 bits and one that does not
/// give the same value. Refused: unsupported types (by name), a value in
/// the wrong field for its type.
pub fn typed_value(datatype: DataType, raw: &MetricValue) -> Result<SpValue, String> {
    use DataType as T;
    use MetricValue as V;
    Ok(match (datatype, raw) {
        (T::Int8, V::IntValue(v)) => SpValue::Int(i64::from(*v as u8 as i8)),
        (T::Int16, V::IntValue(v)) => SpValue::Int(i64::from(*v as u16 as i16)),
        (T::Int32, V::IntValue(v)) => SpValue::Int(i64::from(*v as i32)),
        (T::Int64, V::LongValue(v)) => SpValue::Int(*v as i64),
        (T::UInt8, V::IntValue(v)) => SpValue::UInt(u64::from(*v as u8)),
        (T::UInt16, V::IntValue(v)) => SpValue::UInt(u64::from(*v as u16)),
        (T::UInt32, V::IntValue(v)) => SpValue::UInt(u64::from(*v)),
        // Some encoders put small unsigned types in long_value.
        (T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64, V::LongValue(v)) => SpValue::UInt(*v),
        (T::Float, V::FloatValue(v)) => SpValue::Float(f64::from(*v)),
        (T::Double, V::DoubleValue(v)) => SpValue::Float(*v),
        (T::Boolean, V::BooleanValue(v)) => SpValue::Bool(*v),
        (T::String | T::Text | T::Uuid, V::StringValue(s)) => SpValue::Text(s.clone()),
        (T::DateTime, V::LongValue(v)) => SpValue::DateTime(
            i64::try_from(*v).map_err(|_| format!("DateTime {v} is out of range"))?,
        ),
        (T::Bytes | T::File, V::BytesValue(b)) => SpValue::Bytes(b.clone()),
        (T::Unsupported(_), _) => {
            return Err(format!("{} metrics are not supported", datatype.name()))
        }
        (_, V::DatasetValue(_)) => return Err("DataSet values are not supported".into()),
        (_, V::TemplateValue(_)) => return Err("Template values are not supported".into()),
        (_, V::ExtensionValue(_)) => return Err("extension values are not supported".into()),
        (t, _) => {
            return Err(format!(
                "a {} metric with its value in the wrong field",
                t.name()
            ))
        }
    })
}
