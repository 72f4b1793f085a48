//! The Sparkplug B protobuf messages (specification 3.0, "Payload"
//! definition), with its field numbers and types, for prost. Only what a
//! host reads is typed; a data set, a template, an extension or a property
//! set is kept as its raw bytes so that [`super::payload`] can refuse it by
//! name, and any field not listed here is skipped by prost.

/// `Payload`: one Sparkplug message body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Sending time, ms since the epoch (UTC).
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// Sequence number, 0..=255 (absent in NDEATH and STATE).
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// Schema identifier (unused here).
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// A body bypassing the metrics (unused here).
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// `Payload.Metric`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Name: in births; later messages may carry the alias only.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Alias, bound to the name in the birth.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Acquisition time, ms since the epoch (UTC).
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// Data type code ([`super::DataType`]).
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// Historical data: not the current value.
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// Not to be stored.
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// The value is null.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// Metadata (kept raw, unused).
    #[prost(bytes = "vec", optional, tag = "8")]
    pub metadata: Option<Vec<u8>>,
    /// Properties (kept raw, unused).
    #[prost(bytes = "vec", optional, tag = "9")]
    pub properties: Option<Vec<u8>>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19")]
    pub value: Option<MetricValue>,
}

/// `Metric.value`: which field holds it.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    /// Int8, Int16, Int32 (two's complement), UInt8, UInt16, UInt32.
    #[prost(uint32, tag = "10")]
    IntValue(u32),
    /// Int64 (two's complement), UInt64, DateTime.
    #[prost(uint64, tag = "11")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "12")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "13")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    BooleanValue(bool),
    /// String, Text, UUID.
    #[prost(string, tag = "15")]
    StringValue(String),
    /// Bytes, File, and the 3.0 arrays.
    #[prost(bytes = "vec", tag = "16")]
    BytesValue(Vec<u8>),
    /// A data set (raw).
    #[prost(bytes = "vec", tag = "17")]
    DatasetValue(Vec<u8>),
    /// A template (raw).
    #[prost(bytes = "vec", tag = "18")]
    TemplateValue(Vec<u8>),
    /// An extension (raw).
    #[prost(bytes = "vec", tag = "19")]
    ExtensionValue(Vec<u8>),
}
