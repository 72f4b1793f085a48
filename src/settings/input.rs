//! What the user wrote, before any checking: the TOML file as a tree of
//! [`Node`]s, each with its [`Origin`] (the file and line, or the
//! environment variable), with the `CTOWER__…` variables laid over it.
//!
//! Environment variables are text: a variable's value is kept as
//! [`Value::Text`] and read as the type the key expects by the walker
//! ([`super::walk`]). A variable's path is resolved here, against the
//! schema: `CTOWER__SECTION__KEY`, segments separated by `__`, matched to
//! struct keys without regard to case, to table keys (a site, a product)
//! as existing keys without regard to case or else lower-cased, and to
//! array elements by their index in the file (`CTOWER__SOURCES__0__QOS`).

use super::schema::Shape;
use ctower_model::{key_field, ConfigIssue};
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::de::{DeTable, DeValue};

/// The prefix of the variables that override the file.
pub const ENV_PREFIX: &str = "CTOWER__";

/// Where a value was written: a file (and line) or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file's path as given, or the variable's name.
    pub source: Arc<str>,
    /// 1-based line in the file.
    pub line: Option<u32>,
}

impl Origin {
    /// Attaches this origin to an issue.
    pub fn attach(&self, issue: ConfigIssue) -> ConfigIssue {
        issue.at(self.source.to_string(), self.line)
    }
}

/// A value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// A TOML integer.
    Int(i128),
    /// A TOML float.
    Float(f64),
    /// A TOML string.
    Str(String),
    /// A TOML date-time (its text).
    Datetime(String),
    /// A TOML array.
    List(Vec<Node>),
    /// A TOML table.
    Table(BTreeMap<String, Node>),
    /// An environment variable's value: text, read as the expected type.
    Text(String),
}

impl Value {
    /// `the string "60"`, `a table` … for messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the whole number {i}"),
            Value::Float(f) => format!("the number {f} (not a whole number)"),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Datetime(d) => format!("the date-time {d} (a string needs quotes)"),
            Value::List(_) => "an array".into(),
            Value::Table(_) => "a table".into(),
            Value::Text(t) => format!("`{t}`"),
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where: for a table entry, its key's line.
    pub at: Origin,
}

/// Byte offset → 1-based line.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = text.match_indices('\n').map(|(i, _)| i + 1);
        Lines(std::iter::once(0).chain(starts).collect())
    }

    fn line(&self, offset: usize) -> u32 {
        let n = self.0.partition_point(|&start| start <= offset);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// Parses a TOML document; `source` names it in origins. Syntax errors
/// (every one the parser recovers from) are returned as issues instead.
pub fn parse_toml(source: &str, text: &str) -> Result<Node, Vec<ConfigIssue>> {
    let lines = Lines::new(text);
    let source: Arc<str> = source.into();
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let line = e.span().map(|s| lines.line(s.start));
                ConfigIssue::new("", format!("not valid TOML: {}", e.message().trim()))
                    .at(source.to_string(), line)
            })
            .collect());
    }
    let at = Origin {
        source: source.clone(),
        line: None,
    };
    let convert = Convert {
        lines: &lines,
        source,
    };
    Ok(Node {
        value: convert.table(doc.get_ref()),
        at,
    })
}

/// Converts the parser's values, turning spans into lines.
struct Convert<'a> {
    lines: &'a Lines,
    source: Arc<str>,
}

impl Convert<'_> {
    fn at(&self, offset: usize) -> Origin {
        Origin {
            source: self.source.clone(),
            line: Some(self.lines.line(offset)),
        }
    }

    fn table(&self, t: &DeTable<'_>) -> Value {
        let entries = t.iter().map(|(k, v)| {
            let node = Node {
                value: self.value(v.get_ref()),
                at: self.at(k.span().start),
            };
            (k.get_ref().to_string(), node)
        });
        Value::Table(entries.collect())
    }

    fn value(&self, v: &DeValue<'_>) -> Value {
        match v {
            DeValue::String(s) => Value::Str(s.to_string()),
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::Int(n),
                Err(_) => Value::Text(i.as_str().to_string()),
            },
            DeValue::Float(f) => Value::Float(parse_float(f.as_str())),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::Datetime(d.to_string()),
            DeValue::Array(a) => Value::List(
                a.iter()
                    .map(|e| Node {
                        value: self.value(e.get_ref()),
                        at: self.at(e.span().start),
                    })
                    .collect(),
            ),
            DeValue::Table(t) => self.table(t),
        }
    }
}

/// A TOML float's text as a number (`inf`, `nan` with their signs too).
fn parse_float(s: &str) -> f64 {
    let s = s.replace('_', "");
    s.parse().unwrap_or(match s.trim_start_matches(['+', '-']) {
        "nan" => f64::NAN,
        _ if s.starts_with('-') => f64::NEG_INFINITY,
        _ => f64::INFINITY,
    })
}

/// A variable's text read as a TOML value (an array, an inline table),
/// every part of it blamed on the variable.
pub fn parse_env_value(at: &Origin, text: &str) -> Option<Node> {
    fn blame(n: &mut Node, at: &Origin) {
        n.at = at.clone();
        match &mut n.value {
            Value::List(items) => items.iter_mut().for_each(|i| blame(i, at)),
            Value::Table(t) => t.values_mut().for_each(|v| blame(v, at)),
            _ => {}
        }
    }
    let Value::Table(mut doc) = parse_toml(&at.source, &format!("v = {text}")).ok()?.value else {
        return None;
    };
    let mut v = doc.remove("v")?;
    blame(&mut v, at);
    Some(v)
}

/// Lays the `CTOWER__…` variables of `vars` over `root` (in name order);
/// a variable that names no key is an issue blamed on it.
pub fn apply_env(root: &mut Node, shape: &Shape, vars: &[(String, String)]) -> Vec<ConfigIssue> {
    let mut vars: Vec<&(String, String)> = vars
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    let mut issues = Vec::new();
    for (name, text) in vars {
        let segments: Vec<&str> = name[ENV_PREFIX.len()..].split("__").collect();
        let at = Origin {
            source: name.as_str().into(),
            line: None,
        };
        let mut target = EnvTarget {
            var: name,
            done: Vec::new(),
        };
        if let Err((key, message)) = target.set(root, shape, "", &segments, text) {
            issues.push(at.attach(ConfigIssue::new(key, message)));
        }
    }
    issues
}

/// Resolving one variable's path: `done` holds the segments matched so far.
struct EnvTarget<'a> {
    var: &'a str,
    done: Vec<String>,
}

type EnvError = (String, String);

impl EnvTarget<'_> {
    fn set(
        &mut self,
        node: &mut Node,
        shape: &Shape,
        key: &str,
        segments: &[&str],
        text: &str,
    ) -> Result<(), EnvError> {
        let Some((segment, rest)) = segments.split_first() else {
            *node = Node {
                value: Value::Text(text.to_string()),
                at: Origin {
                    source: self.var.into(),
                    line: None,
                },
            };
            return Ok(());
        };
        let lower = segment.to_ascii_lowercase();
        match shape {
            Shape::Struct(fields) => {
                let Some(f) = fields.iter().find(|f| f.name == lower) else {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    return Err(self.unknown(key, &lower, &names, rest));
                };
                let child = self.table_entry(node, key, f.name)?;
                self.done.push(f.name.to_ascii_uppercase());
                self.set(child, &f.shape, &key_field(key, f.name), rest, text)
            }
            Shape::Map(inner) => {
                let existing = match &node.value {
                    Value::Table(t) => t.keys().find(|k| k.eq_ignore_ascii_case(&lower)).cloned(),
                    _ => None,
                };
                let name = existing.unwrap_or(lower);
                let child = self.table_entry(node, key, &name)?;
                self.done.push(segment.to_string());
                self.set(child, inner, &key_field(key, &name), rest, text)
            }
            Shape::List(inner) => {
                let Value::List(items) = &mut node.value else {
                    return Err(self.not_in_file(key, "array"));
                };
                let len = items.len();
                let Some(child) = segment.parse::<usize>().ok().and_then(|i| items.get_mut(i))
                else {
                    return Err((
                        format!("{key}[{segment}]"),
                        format!(
                            "`{}` names element `{segment}` of `{key}`, which has {len} in the file (indexes 0 to {}); a variable can change an element, not add one",
                            self.var,
                            len.saturating_sub(1)
                        ),
                    ));
                };
                self.done.push(segment.to_string());
                self.set(child, inner, &format!("{key}[{segment}]"), rest, text)
            }
            _ => Err((
                key.to_string(),
                format!("`{}` goes below `{key}`, which is a single value", self.var),
            )),
        }
    }

    /// The entry `name` of the table `node`, made (empty) if absent.
    fn table_entry<'n>(
        &self,
        node: &'n mut Node,
        key: &str,
        name: &str,
    ) -> Result<&'n mut Node, EnvError> {
        let Value::Table(t) = &mut node.value else {
            return Err(self.not_in_file(key, "table"));
        };
        Ok(t.entry(name.to_string()).or_insert_with(|| Node {
            value: Value::Table(BTreeMap::new()),
            at: Origin {
                source: self.var.into(),
                line: None,
            },
        }))
    }

    fn not_in_file(&self, key: &str, what: &str) -> EnvError {
        (
            key.to_string(),
            format!(
                "`{}` goes below `{key}`, which is not a {what} in the file",
                self.var
            ),
        )
    }

    fn unknown(&self, key: &str, segment: &str, names: &[&str], rest: &[&str]) -> EnvError {
        let where_ = if key.is_empty() {
            "at the top".to_string()
        } else {
            format!("under `{key}`")
        };
        let hint = match super::suggest::closest(segment, names) {
            Some(best) => {
                let mut fixed = self.done.clone();
                fixed.push(best.to_ascii_uppercase());
                fixed.extend(rest.iter().map(|s| s.to_string()));
                format!(" (did you mean `{ENV_PREFIX}{}`?)", fixed.join("__"))
            }
            None => format!(" (keys {where_}: {})", names.join(", ")),
        };
        (
            key_field(key, segment),
            format!(
                "unknown environment variable `{}`: there is no key `{segment}` {where_}{hint}",
                self.var
            ),
        )
    }
}
