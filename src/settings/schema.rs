//! The shape every configuration value must have, traced from the Rust
//! types themselves ([`super::RawSettings`] and everything it holds), so
//! the schema is never written twice.
//!
//! [`trace`] runs `T::deserialize` on a [`serde::Deserializer`] that
//! answers each `deserialize_*` call by noting the type asked for and
//! handing back a sample value (the idea of the `serde-reflection` crate,
//! reduced to what a TOML configuration holds). Whether a struct field is
//! required is found by tracing once more with that one field left out:
//! serde's derive then calls `missing_field` exactly when the field has no
//! default and is not an `Option`.
//!
//! Traced: derived structs, unit enums, `Option`, sequences, maps with
//! string keys, booleans, integers (with their type's range), floats and
//! strings (`String`, `PathBuf`, …). Anything else (a data-carrying or
//! untagged enum, a hand-written impl calling `deserialize_any`) fails the
//! trace; a unit test traces `RawSettings`, so a configuration type the
//! walker could not check is caught at once.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use std::fmt;

/// The shape a configuration value must have.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `true` or `false`.
    Bool,
    /// A whole number within the Rust type's range.
    Int {
        /// The smallest accepted value.
        min: i128,
        /// The largest accepted value.
        max: i128,
    },
    /// A number; a whole number is accepted too (`threshold = 1`).
    Float,
    /// A string.
    Str,
    /// One of these names.
    Enum(&'static [&'static str]),
    /// An array of values of one shape.
    List(Box<Shape>),
    /// A table of any keys, each value of one shape.
    Map(Box<Shape>),
    /// A table of these keys only.
    Struct(Vec<Field>),
    /// Not traced (only while tracing).
    Unknown,
}

/// One key of a [`Shape::Struct`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key, as written in the file.
    pub name: &'static str,
    /// The shape of its value.
    pub shape: Shape,
    /// Whether the table must have it (no default, not an `Option`).
    pub required: bool,
}

impl Shape {
    /// `an integer`, `a table` … for messages.
    pub fn describe(&self) -> String {
        match self {
            Shape::Bool => "true or false".into(),
            Shape::Int { min, .. } if *min >= 0 => "a whole number (0 or more)".into(),
            Shape::Int { .. } => "a whole number".into(),
            Shape::Float => "a number".into(),
            Shape::Str => "a string".into(),
            Shape::Enum(names) => format!("one of {}", names.join(", ")),
            Shape::List(_) => "an array".into(),
            Shape::Map(_) | Shape::Struct(_) => "a table".into(),
            Shape::Unknown => "anything".into(),
        }
    }

    /// Whether values of this shape are single values, not arrays or tables.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Shape::List(_) | Shape::Map(_) | Shape::Struct(_))
    }
}

/// Traces `T`: its shape, with each struct field's `required` set.
pub fn trace<T: DeserializeOwned>() -> Result<Shape, String> {
    let mut shape = trace_omitting::<T>(None).map_err(|e| e.to_string())?;
    mark_required::<T>(&mut shape, "")?;
    Ok(shape)
}

fn trace_omitting<T: DeserializeOwned>(omit: Option<&str>) -> Result<Shape, TraceError> {
    let mut shape = Shape::Unknown;
    T::deserialize(Tracer {
        slot: &mut shape,
        path: String::new(),
        omit,
    })?;
    Ok(shape)
}

/// Sets `required` on every struct field under `shape` (at `path`).
fn mark_required<T: DeserializeOwned>(shape: &mut Shape, path: &str) -> Result<(), String> {
    match shape {
        Shape::Struct(fields) => {
            for f in fields {
                let child = child_path(path, f.name);
                f.required = match trace_omitting::<T>(Some(&child)) {
                    Ok(_) => false,
                    Err(TraceError::Missing(name)) if name == f.name => true,
                    Err(e) => return Err(format!("{child}: {e}")),
                };
                mark_required::<T>(&mut f.shape, &child)?;
            }
            Ok(())
        }
        Shape::List(inner) => mark_required::<T>(inner, &format!("{path}[]")),
        Shape::Map(inner) => mark_required::<T>(inner, &child_path(path, "*")),
        _ => Ok(()),
    }
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Why a trace stopped.
#[derive(Debug)]
enum TraceError {
    /// serde's derive asked for a field that was left out.
    Missing(&'static str),
    /// A type the tracer cannot describe.
    Other(String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Missing(name) => write!(f, "missing field `{name}`"),
            TraceError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        TraceError::Other(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        TraceError::Missing(field)
    }
}

/// Records the shape asked for into `slot`; `path` is where it is
/// (`sources[].name`), `omit` the one struct field to leave out.
struct Tracer<'a> {
    slot: &'a mut Shape,
    path: String,
    omit: Option<&'a str>,
}

fn unsupported<T>(what: &str) -> Result<T, TraceError> {
    Err(TraceError::Other(format!(
        "{what} cannot be described as a configuration value"
    )))
}

macro_rules! trace_int {
    ($($method:ident $visit:ident $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
            *self.slot = Shape::Int { min: <$t>::MIN as i128, max: <$t>::MAX as i128 };
            v.$visit(0)
        }
    )*};
}

macro_rules! trace_unsupported {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, TraceError> {
            unsupported(stringify!($method))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    trace_int!(deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64,
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64);
    trace_unsupported!(
        deserialize_any,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_ignored_any
    );

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Bool;
        v.visit_bool(false)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Float;
        v.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Float;
        v.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Str;
        v.visit_char(' ')
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Str;
        v.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        // TOML has no null: an optional value has the shape of its content.
        v.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _v: V,
    ) -> Result<V::Value, TraceError> {
        unsupported("a unit struct")
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, TraceError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::List(Box::new(Shape::Unknown));
        let Shape::List(inner) = self.slot else {
            return unsupported("a sequence");
        };
        v.visit_seq(One {
            slot: Some(inner),
            path: format!("{}[]", self.path),
            omit: self.omit,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _v: V,
    ) -> Result<V::Value, TraceError> {
        unsupported("a tuple")
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _v: V,
    ) -> Result<V::Value, TraceError> {
        unsupported("a tuple struct")
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Map(Box::new(Shape::Unknown));
        let Shape::Map(inner) = self.slot else {
            return unsupported("a map");
        };
        v.visit_map(One {
            slot: Some(inner),
            path: child_path(&self.path, "*"),
            omit: self.omit,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TraceError> {
        let fields = fields.iter().map(|&name| Field {
            name,
            shape: Shape::Unknown,
            required: false,
        });
        *self.slot = Shape::Struct(fields.collect());
        let Shape::Struct(fields) = self.slot else {
            return unsupported("a struct");
        };
        v.visit_map(Fields {
            fields,
            next: 0,
            path: self.path,
            omit: self.omit,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TraceError> {
        let Some(first) = variants.first() else {
            return unsupported("an enum without variants");
        };
        *self.slot = Shape::Enum(variants);
        v.visit_enum(UnitVariant(first))
    }
}

/// A sequence of one traced element, or a map of one traced entry (its
/// key a string): the one value to trace, until it is taken.
struct One<'a> {
    slot: Option<&'a mut Shape>,
    path: String,
    omit: Option<&'a str>,
}

impl<'a> One<'a> {
    /// The tracer of the one value, the first time; `None` after.
    fn take(&mut self) -> Option<Tracer<'a>> {
        Some(Tracer {
            slot: self.slot.take()?,
            path: self.path.clone(),
            omit: self.omit,
        })
    }
}

impl<'de> de::SeqAccess<'de> for One<'_> {
    type Error = TraceError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        self.take().map(|t| seed.deserialize(t)).transpose()
    }
}

impl<'de> de::MapAccess<'de> for One<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        if self.slot.is_none() {
            return Ok(None);
        }
        seed.deserialize(BorrowedStrDeserializer::new("key"))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        match self.take() {
            Some(t) => seed.deserialize(t),
            None => unsupported("a map value without its key"),
        }
    }
}

/// A struct's fields, each traced, the omitted one left out.
struct Fields<'a> {
    fields: &'a mut Vec<Field>,
    next: usize,
    path: String,
    omit: Option<&'a str>,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        while let Some(f) = self.fields.get(self.next) {
            if self.omit == Some(child_path(&self.path, f.name).as_str()) {
                self.next += 1;
                continue;
            }
            return seed
                .deserialize(BorrowedStrDeserializer::new(f.name))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let Some(f) = self.fields.get_mut(self.next) else {
            return unsupported("a struct value without its key");
        };
        self.next += 1;
        seed.deserialize(Tracer {
            path: child_path(&self.path, f.name),
            slot: &mut f.shape,
            omit: self.omit,
        })
    }
}

/// The first variant of a unit enum.
struct UnitVariant(&'static str);

impl<'de> de::EnumAccess<'de> for UnitVariant {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), TraceError> {
        let v = seed.deserialize(BorrowedStrDeserializer::new(self.0))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        _seed: S,
    ) -> Result<S::Value, TraceError> {
        unsupported("an enum variant with data")
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, TraceError> {
        unsupported("an enum variant with data")
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, TraceError> {
        unsupported("an enum variant with data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Colour {
        Red,
        DarkBlue,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        colour: Option<Colour>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        count: u8,
        ratio: f64,
        path: std::path::PathBuf,
        items: Vec<Inner>,
        #[serde(default)]
        by_name: BTreeMap<String, Inner>,
    }

    fn field<'a>(s: &'a Shape, name: &str) -> &'a Field {
        let Shape::Struct(fields) = s else {
            panic!("{s:?} is not a struct")
        };
        fields.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn traces_types_ranges_and_required_fields() {
        let s = trace::<Outer>().unwrap();
        let count = field(&s, "count");
        assert_eq!(count.shape, Shape::Int { min: 0, max: 255 });
        assert!(count.required);
        assert_eq!(field(&s, "ratio").shape, Shape::Float);
        assert_eq!(field(&s, "path").shape, Shape::Str);
        assert!(!field(&s, "by_name").required);
        let Shape::List(inner) = &field(&s, "items").shape else {
            panic!()
        };
        assert!(field(inner, "name").required);
        let colour = field(inner, "colour");
        assert!(!colour.required);
        assert_eq!(colour.shape, Shape::Enum(&["red", "dark_blue"]));
        let tags = field(inner, "tags");
        assert!(!tags.required);
        assert_eq!(tags.shape, Shape::List(Box::new(Shape::Str)));
        let Shape::Map(value) = &field(&s, "by_name").shape else {
            panic!()
        };
        assert!(field(value, "name").required);
    }

    #[test]
    fn a_type_it_cannot_describe_fails_the_trace() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Either {
            N(u8),
            S(String),
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct S {
            e: Either,
        }
        assert!(trace::<S>().is_err());
    }
}
