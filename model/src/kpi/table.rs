//! The KPI field table: each field of a KPI record is declared once, in
//! its struct, and [`kpi_table!`] derives from that one declaration
//! everything that lists fields — the sums' `add`/`sub`, the JSON writer,
//! the metric names alarm rules accept, the journal's line-protocol fields
//! (through [`FieldVisitor`]) and the field list the docs are checked
//! against ([`FieldInfo`]). How a field adds, prints and reads as a number
//! follows from its type ([`KpiValue`], [`Summable`]), so a new field is one
//! line in one struct.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What kind of value a KPI field holds, which decides how it is written
/// and whether it is one number (a metric an alarm rule can watch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A count, `u64` (or `Option<u64>` when it may be unknown).
    Count,
    /// A signed integer, `i64` (milliseconds of asset-time).
    Int,
    /// A float, `f64` (or `Option<f64>` when it may be unknown).
    Float,
    /// A yes/no flag.
    Flag,
    /// Integers by a key (e.g. stop time by reason code).
    IntByKey,
    /// Floats by a key (e.g. unmeasured quantity by field).
    FloatByKey,
}

impl FieldKind {
    /// A single number: alarm rules can watch it by name.
    pub const fn is_metric(self) -> bool {
        !matches!(self, FieldKind::IntByKey | FieldKind::FloatByKey)
    }
}

/// One entry of the field table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field's name: its JSON key and its metric name.
    pub name: &'static str,
    /// Its line-protocol field key in the journal (the name, unless the
    /// declaration gives another); keyed fields write `journal_name.KEY`.
    pub journal_name: &'static str,
    /// What it holds.
    pub kind: FieldKind,
}

impl FieldInfo {
    /// The entry of a field `name` of type `T`.
    pub const fn of<T: KpiValue>(name: &'static str) -> FieldInfo {
        FieldInfo {
            name,
            journal_name: name,
            kind: T::KIND,
        }
    }
}

/// A field's value, as a visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A count; `None` when unknown.
    Count(Option<u64>),
    /// A signed integer.
    Int(i64),
    /// A float; `None` when unknown.
    Float(Option<f64>),
    /// A flag.
    Flag(bool),
    /// Integers by key.
    IntByKey(&'a BTreeMap<Arc<str>, i64>),
    /// Floats by key.
    FloatByKey(&'a BTreeMap<Arc<str>, f64>),
}

/// Receives every field of a KPI record in table order (the journal writes
/// its line-protocol fields this way).
pub trait FieldVisitor {
    /// One field and its value.
    fn field(&mut self, info: &FieldInfo, value: FieldValue<'_>);
}

/// A type a KPI field can have.
pub trait KpiValue: Serialize {
    /// The kind every field of this type has.
    const KIND: FieldKind;
    /// The value for a [`FieldVisitor`].
    fn value(&self) -> FieldValue<'_>;
    /// The value as one number (for alarm rules); `None` when unknown or
    /// not a single number.
    fn number(&self) -> Option<f64>;
}

impl KpiValue for u64 {
    const KIND: FieldKind = FieldKind::Count;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Count(Some(*self))
    }
    fn number(&self) -> Option<f64> {
        Some(*self as f64)
    }
}

impl KpiValue for Option<u64> {
    const KIND: FieldKind = FieldKind::Count;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Count(*self)
    }
    fn number(&self) -> Option<f64> {
        self.map(|v| v as f64)
    }
}

impl KpiValue for i64 {
    const KIND: FieldKind = FieldKind::Int;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Int(*self)
    }
    fn number(&self) -> Option<f64> {
        Some(*self as f64)
    }
}

impl KpiValue for f64 {
    const KIND: FieldKind = FieldKind::Float;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Float(Some(*self))
    }
    fn number(&self) -> Option<f64> {
        Some(*self)
    }
}

impl KpiValue for Option<f64> {
    const KIND: FieldKind = FieldKind::Float;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Float(*self)
    }
    fn number(&self) -> Option<f64> {
        *self
    }
}

impl KpiValue for bool {
    const KIND: FieldKind = FieldKind::Flag;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Flag(*self)
    }
    fn number(&self) -> Option<f64> {
        Some(if *self { 1.0 } else { 0.0 })
    }
}

impl KpiValue for BTreeMap<Arc<str>, i64> {
    const KIND: FieldKind = FieldKind::IntByKey;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::IntByKey(self)
    }
    fn number(&self) -> Option<f64> {
        None
    }
}

impl KpiValue for BTreeMap<Arc<str>, f64> {
    const KIND: FieldKind = FieldKind::FloatByKey;
    fn value(&self) -> FieldValue<'_> {
        FieldValue::FloatByKey(self)
    }
    fn number(&self) -> Option<f64> {
        None
    }
}

/// How a field of [`KpiSums`](super::KpiSums) adds up in a roll-up and is
/// taken back out by a correction.
///
/// Unknown is not zero: `None + x = x`, and `None` stays `None`. Counts
/// never wrap (a saturated total is visibly implausible, a wrapped one
/// looks like a small real number).
pub trait Summable {
    /// `self += o`.
    fn add(&mut self, o: &Self);
    /// `self -= o` (`o` was added before).
    fn sub(&mut self, o: &Self);
}

impl Summable for u64 {
    fn add(&mut self, o: &Self) {
        *self = self.saturating_add(*o);
    }
    fn sub(&mut self, o: &Self) {
        *self = self.saturating_sub(*o);
    }
}

impl Summable for i64 {
    fn add(&mut self, o: &Self) {
        *self = self.saturating_add(*o);
    }
    fn sub(&mut self, o: &Self) {
        *self -= *o;
    }
}

impl Summable for f64 {
    fn add(&mut self, o: &Self) {
        *self += *o;
    }
    fn sub(&mut self, o: &Self) {
        *self -= *o;
    }
}

impl Summable for Option<u64> {
    fn add(&mut self, o: &Self) {
        *self = match (*self, *o) {
            (Some(x), Some(y)) => Some(x.saturating_add(y)),
            (x, y) => x.or(y),
        };
    }
    fn sub(&mut self, o: &Self) {
        if let (Some(x), Some(y)) = (self.as_mut(), o) {
            *x = x.saturating_sub(*y);
        }
    }
}

impl Summable for Option<f64> {
    fn add(&mut self, o: &Self) {
        *self = match (*self, *o) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
    }
    fn sub(&mut self, o: &Self) {
        if let (Some(x), Some(y)) = (self.as_mut(), o) {
            *x -= *y;
        }
    }
}

impl Summable for BTreeMap<Arc<str>, i64> {
    fn add(&mut self, o: &Self) {
        for (key, v) in o {
            let x = self.entry(key.clone()).or_default();
            *x = x.saturating_add(*v);
        }
    }
    fn sub(&mut self, o: &Self) {
        for (key, v) in o {
            if let Some(x) = self.get_mut(key) {
                *x -= v;
                if *x == 0 {
                    self.remove(key);
                }
            }
        }
    }
}

impl Summable for BTreeMap<Arc<str>, f64> {
    fn add(&mut self, o: &Self) {
        for (key, v) in o {
            *self.entry(key.clone()).or_default() += v;
        }
    }
    fn sub(&mut self, o: &Self) {
        for (key, v) in o {
            if let Some(x) = self.get_mut(key) {
                *x -= v;
                if *x == 0.0 {
                    self.remove(key);
                }
            }
        }
    }
}

/// Appends `v` as JSON (what `serde_json` writes for it).
pub(crate) fn json_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Into a Vec, and KPI values always serialize: cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Declares one struct of KPI fields and derives its table: `FIELDS`,
/// `visit`, `number` (a field as a metric), `write_json_fields` and, for
/// `additive` structs, `add` and `sub`. A field may name its journal key:
/// `pub field: Type => journal "key",`.
macro_rules! kpi_table {
    (@journal $f:ident) => { stringify!($f) };
    (@journal $f:ident $j:literal) => { $j };
    (@sums additive $name:ident { $($f:ident)* }) => {
        impl $name {
            /// Adds `o` field by field (see [`Summable`](crate::kpi::Summable)).
            pub fn add(&mut self, o: &$name) {
                $( $crate::kpi::Summable::add(&mut self.$f, &o.$f); )*
            }

            /// Takes `o` back out of a sum it was added to (a correction
            /// replaces a window's contribution to a shift or day).
            pub fn sub(&mut self, o: &$name) {
                $( $crate::kpi::Summable::sub(&mut self.$f, &o.$f); )*
            }
        }
    };
    (@sums derived $name:ident { $($f:ident)* }) => {};
    (
        $how:ident;
        $(#[$m:meta])*
        pub struct $name:ident {
            $(
                $(#[$fm:meta])*
                pub $f:ident : $t:ty $(=> journal $j:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        impl $name {
            /// The fields, in declaration (and JSON) order.
            pub const FIELDS: &'static [$crate::kpi::FieldInfo] = &[
                $( $crate::kpi::FieldInfo {
                    name: stringify!($f),
                    journal_name: kpi_table!(@journal $f $($j)?),
                    kind: <$t as $crate::kpi::KpiValue>::KIND,
                }, )*
            ];

            /// Visits every field, in declaration order.
            pub fn visit(&self, v: &mut impl $crate::kpi::FieldVisitor) {
                $( v.field(
                    &$crate::kpi::FieldInfo {
                        name: stringify!($f),
                        journal_name: kpi_table!(@journal $f $($j)?),
                        kind: <$t as $crate::kpi::KpiValue>::KIND,
                    },
                    $crate::kpi::KpiValue::value(&self.$f),
                ); )*
            }

            /// Field `name` as one number: `None` if there is no such
            /// field, `Some(None)` if its value is unknown or not a number.
            pub fn number(&self, name: &str) -> Option<Option<f64>> {
                match name {
                    $( stringify!($f) => Some($crate::kpi::KpiValue::number(&self.$f)), )*
                    _ => None,
                }
            }

            /// Appends `,"field":value` for every field, in order: what
            /// serde writes for them inside the flattened record.
            pub(crate) fn write_json_fields(&self, out: &mut Vec<u8>) {
                $(
                    out.extend_from_slice(concat!(",\"", stringify!($f), "\":").as_bytes());
                    $crate::kpi::table::json_value(out, &self.$f);
                )*
            }
        }

        kpi_table!(@sums $how $name { $($f)* });
    };
}
pub(crate) use kpi_table;

/// The number of entries in `parts`.
pub(crate) const fn total(parts: &[&[FieldInfo]]) -> usize {
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        n += parts[p].len();
        p += 1;
    }
    n
}

/// `parts` one after the other (`N` = [`total`]).
pub(crate) const fn concat<const N: usize>(parts: &[&[FieldInfo]]) -> [FieldInfo; N] {
    let mut out = [FieldInfo {
        name: "",
        journal_name: "",
        kind: FieldKind::Count,
    }; N];
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "N must be the total of the parts");
    out
}

/// The number of metric fields in `fields`.
pub(crate) const fn count_metrics(fields: &[FieldInfo]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < fields.len() {
        if fields[i].kind.is_metric() {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The names of the metric fields (`N` = [`count_metrics`]).
pub(crate) const fn metric_names<const N: usize>(fields: &[FieldInfo]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut n, mut i) = (0, 0);
    while i < fields.len() {
        if fields[i].kind.is_metric() {
            out[n] = fields[i].name;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "N must be the number of metrics");
    out
}
