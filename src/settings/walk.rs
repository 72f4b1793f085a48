//! The strict reading of a configuration: every value of the [`Node`] tree
//! (the file with the environment laid over it) checked against the
//! [`Shape`] traced from the Rust types, every problem collected (a wrong
//! type, an unknown key with a "did you mean", a missing required key), and
//! a clean `toml::Value` built from what is right for serde to read.
//!
//! Types are strict: a string is not a number, a number with a fraction is
//! not a whole number (a whole number is a number, though: `threshold = 1`).
//! Environment variables are text, read as the type the key expects.
//!
//! A wrong value is left out of the clean value (its default applies), or,
//! where the key is required, replaced by a placeholder; its key is
//! remembered as `bad` so that the semantic checks' findings about the
//! same key are not reported twice. Array elements are never left out, so
//! the indexes in the semantic checks' keys are the file's.

use super::input::{Node, Origin, Value};
use super::schema::{Field, Shape};
use super::suggest::closest;
use ctower_model::{key_field, ConfigIssue};
use std::collections::BTreeMap;

/// A key naming where a secret is: an environment variable (`…_env`) or a
/// password file (`…password_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Its key, e.g. `sources[0].password_env`.
    pub key: String,
    /// The variable's name, or the file's path.
    pub var: String,
    /// Where the key was written.
    pub at: Origin,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The values that passed, ready for serde (`None`: the root was not a table).
    pub value: Option<toml::Value>,
    /// Every type, unknown-key and missing-key problem, with its origin.
    pub issues: Vec<ConfigIssue>,
    /// The keys of those problems.
    pub bad: Vec<String>,
    /// Where each key was written.
    pub at: BTreeMap<String, Origin>,
    /// Every key naming where a secret is (`…_env`, `…password_file`).
    pub secrets: Vec<SecretRef>,
}

impl Walked {
    /// The origin of `key`, or of its nearest ancestor that was written.
    pub fn locate(&self, key: &str) -> Option<&Origin> {
        let mut k = key;
        loop {
            if let Some(o) = self.at.get(k) {
                return Some(o);
            }
            k = &k[..k.rfind(['.', '['])?];
        }
    }

    /// Whether `key` is at or below a key already reported as wrong.
    pub fn is_bad(&self, key: &str) -> bool {
        self.bad.iter().any(|b| {
            key.strip_prefix(b.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

/// Walks `root` against `shape`.
pub fn walk(root: &Node, shape: &Shape) -> Walked {
    let mut w = Walked::default();
    w.value = node(&mut w, root, shape, "");
    w
}

fn fail(w: &mut Walked, key: &str, at: &Origin, message: String) -> Option<toml::Value> {
    w.issues.push(at.attach(ConfigIssue::new(key, message)));
    w.bad.push(key.to_string());
    None
}

fn node(w: &mut Walked, n: &Node, shape: &Shape, key: &str) -> Option<toml::Value> {
    w.at.insert(key.to_string(), n.at.clone());
    if let (Value::Text(text), false) = (&n.value, shape.is_scalar()) {
        // A variable setting an array or a table: its text is a TOML value.
        return match super::input::parse_env_value(&n.at, text) {
            Some(v) => node(w, &v, shape, key),
            None => {
                let message = format!("`{text}` is not a TOML value ({})", shape.describe());
                fail(w, key, &n.at, message)
            }
        };
    }
    match shape {
        Shape::Struct(fields) => table(w, n, fields, key),
        Shape::Map(inner) => map(w, n, inner, key),
        Shape::List(inner) => list(w, n, inner, key),
        _ => match scalar(&n.value, shape) {
            Ok(v) => {
                let names_secret = key.ends_with("_env")
                    || key.ends_with("password_file")
                    || key.ends_with("token_file");
                if let (Some(var), true) = (v.as_str(), names_secret) {
                    w.secrets.push(SecretRef {
                        key: key.to_string(),
                        var: var.to_string(),
                        at: n.at.clone(),
                    });
                }
                Some(v)
            }
            Err(message) => fail(w, key, &n.at, message),
        },
    }
}

fn not_a_table(w: &mut Walked, n: &Node, key: &str) -> Option<toml::Value> {
    let message = format!("expected a table, found {}", n.value.describe());
    fail(w, key, &n.at, message)
}

fn table(w: &mut Walked, n: &Node, fields: &[Field], key: &str) -> Option<toml::Value> {
    let Value::Table(entries) = &n.value else {
        return not_a_table(w, n, key);
    };
    let mut out = toml::Table::new();
    for (name, child) in entries {
        let k = key_field(key, name);
        let Some(f) = fields.iter().find(|f| f.name == name) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            fail(w, &k, &child.at, unknown_key(name, &names));
            continue;
        };
        match node(w, child, &f.shape, &k) {
            Some(v) => out.insert(name.clone(), v),
            None if f.required => out.insert(name.clone(), placeholder(&f.shape)),
            None => None,
        };
    }
    for f in fields.iter().filter(|f| f.required) {
        if !entries.contains_key(f.name) {
            let message = format!("missing: `{}` is required here", f.name);
            fail(w, &key_field(key, f.name), &n.at, message);
            out.insert(f.name.to_string(), placeholder(&f.shape));
        }
    }
    Some(toml::Value::Table(out))
}

fn map(w: &mut Walked, n: &Node, inner: &Shape, key: &str) -> Option<toml::Value> {
    let Value::Table(entries) = &n.value else {
        return not_a_table(w, n, key);
    };
    let out = entries.iter().filter_map(|(name, child)| {
        let v = node(w, child, inner, &key_field(key, name))?;
        Some((name.clone(), v))
    });
    Some(toml::Value::Table(out.collect()))
}

fn list(w: &mut Walked, n: &Node, inner: &Shape, key: &str) -> Option<toml::Value> {
    let Value::List(items) = &n.value else {
        let message = format!("expected an array, found {}", n.value.describe());
        return fail(w, key, &n.at, message);
    };
    let out = items.iter().enumerate().map(|(i, item)| {
        node(w, item, inner, &format!("{key}[{i}]")).unwrap_or_else(|| placeholder(inner))
    });
    Some(toml::Value::Array(out.collect()))
}

/// A single value of the expected shape, or why it is not one.
fn scalar(v: &Value, shape: &Shape) -> Result<toml::Value, String> {
    use toml::Value as T;
    match (shape, v) {
        (Shape::Bool, Value::Bool(b)) => Ok(T::Boolean(*b)),
        (Shape::Bool, Value::Text(t)) => match t.trim() {
            "true" => Ok(T::Boolean(true)),
            "false" => Ok(T::Boolean(false)),
            _ => Err(format!("`{t}` is not true or false")),
        },
        (Shape::Int { min, max }, Value::Int(i)) => int_in(*i, *min, *max),
        (Shape::Int { min, max }, Value::Text(t)) => match t.trim().parse::<i128>() {
            Ok(i) => int_in(i, *min, *max),
            Err(_) => Err(format!("`{t}` is not {}", shape.describe())),
        },
        (Shape::Int { .. }, Value::Str(s)) if s.trim().parse::<i128>().is_ok() => Err(format!(
            "expected {}, found the string {s:?} (write {} without quotes)",
            shape.describe(),
            s.trim()
        )),
        (Shape::Float, Value::Float(f)) => Ok(T::Float(*f)),
        (Shape::Float, Value::Int(i)) => Ok(T::Float(*i as f64)),
        (Shape::Float, Value::Text(t)) => match t.trim().parse::<f64>() {
            Ok(f) => Ok(T::Float(f)),
            Err(_) => Err(format!("`{t}` is not a number")),
        },
        (Shape::Float, Value::Str(s)) if s.trim().parse::<f64>().is_ok() => Err(format!(
            "expected a number, found the string {s:?} (write {} without quotes)",
            s.trim()
        )),
        (Shape::Str, Value::Str(s) | Value::Text(s)) => Ok(T::String(s.clone())),
        (Shape::Enum(names), Value::Str(s) | Value::Text(s)) => {
            if names.contains(&s.as_str()) {
                Ok(T::String(s.clone()))
            } else {
                let hint =
                    closest(s, names).map_or(String::new(), |b| format!("; did you mean `{b}`?"));
                Err(format!(
                    "unknown value `{s}`: expected one of {}{hint}",
                    names.join(", ")
                ))
            }
        }
        (_, v) => Err(format!(
            "expected {}, found {}",
            shape.describe(),
            v.describe()
        )),
    }
}

fn int_in(i: i128, min: i128, max: i128) -> Result<toml::Value, String> {
    // toml::Value holds an i64: a u64 key accepts up to i64::MAX.
    let max = max.min(i64::MAX as i128);
    match i64::try_from(i) {
        Ok(v) if (min..=max).contains(&i) => Ok(toml::Value::Integer(v)),
        _ => Err(format!(
            "{i} is out of range: a whole number from {min} to {max}"
        )),
    }
}

/// A value of `shape` standing in for a wrong required one.
fn placeholder(shape: &Shape) -> toml::Value {
    use toml::Value as T;
    match shape {
        Shape::Bool => T::Boolean(false),
        Shape::Int { min, .. } => T::Integer(i64::try_from((*min).max(0)).unwrap_or(0)),
        Shape::Float => T::Float(0.0),
        Shape::Str | Shape::Unknown => T::String(String::new()),
        Shape::Enum(names) => T::String(names.first().copied().unwrap_or_default().into()),
        Shape::List(_) => T::Array(Vec::new()),
        Shape::Map(_) => T::Table(toml::Table::new()),
        Shape::Struct(fields) => T::Table(
            fields
                .iter()
                .filter(|f| f.required)
                .map(|f| (f.name.to_string(), placeholder(&f.shape)))
                .collect(),
        ),
    }
}

fn unknown_key(name: &str, names: &[&str]) -> String {
    match closest(name, names) {
        Some(best) => format!("unknown key `{name}` (did you mean `{best}`?)"),
        None => format!("unknown key `{name}` (the keys here: {})", names.join(", ")),
    }
}
