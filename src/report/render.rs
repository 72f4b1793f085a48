//! A report as a table (80 columns), CSV or JSON.

use super::{Column, Report, Row, Unit};
use std::fmt::Write as _;

/// A value as the table and the HTML show it (`—`: unknown).
pub fn show(v: Option<f64>, unit: Unit) -> String {
    match v {
        None => "—".into(),
        Some(v) => match unit {
            Unit::Ratio => format!("{:.1}%", v * 100.0),
            Unit::Decimals(d) => format!("{v:.d$}"),
            Unit::Minutes => format!("{:.1}", v / 60_000.0),
        },
    }
}

/// The period of a report, for titles (`2026-03-02 05:00 to … UTC`).
pub fn period(r: &Report) -> String {
    let minute = |ms| {
        let t = ctower_model::time::rfc3339_ms(ms);
        t.get(..16).unwrap_or(&t).replace('T', " ")
    };
    format!("{} to {} UTC", minute(r.spec.from_ms), minute(r.spec.to_ms))
}

/// `text` folded into lines of at most `width` characters, at spaces.
fn fold(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The table: the label and the columns marked for it, each as wide as
/// its widest cell; fits 80 columns.
pub fn table(r: &Report) -> String {
    let cols: Vec<(usize, &Column)> = r
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.in_table)
        .collect();
    let rows: Vec<&Row> = r.rows.iter().chain(r.total.as_ref()).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut label = row.label.clone();
            if !row.complete {
                label.push('*');
            }
            std::iter::once(label)
                .chain(cols.iter().map(|(i, c)| show(row.values[*i], c.unit)))
                .collect()
        })
        .collect();
    let headings: Vec<String> = std::iter::once(r.spec.by.as_str().to_string())
        .chain(cols.iter().map(|(_, c)| c.heading.to_string()))
        .collect();
    let widths: Vec<usize> = (0..headings.len())
        .map(|j| {
            cells
                .iter()
                .map(|c| c[j].chars().count())
                .chain([headings[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} report, site {}, by {}",
        r.spec.kind.as_str(),
        r.spec.site,
        r.spec.by.as_str()
    );
    let _ = writeln!(out, "{}", period(r));
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (j, c) in cells.iter().enumerate() {
            let w = widths[j];
            if j == 0 {
                let _ = write!(l, "{c:<w$}");
            } else {
                let _ = write!(l, " {c:>w$}");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(&mut out, &headings);
    let rule: usize = widths.iter().sum::<usize>() + widths.len().saturating_sub(1);
    let _ = writeln!(out, "{}", "─".repeat(rule));
    for (k, c) in cells.iter().enumerate() {
        if k + 1 == cells.len() && r.total.is_some() {
            let _ = writeln!(out, "{}", "─".repeat(rule));
        }
        line(&mut out, c);
    }
    if rows.iter().any(|row| !row.complete) {
        let _ = writeln!(out, "* cut short: the input ended before the period did");
    }
    let hidden: Vec<&str> = r
        .columns()
        .iter()
        .filter(|c| !c.in_table)
        .map(|c| c.key)
        .collect();
    if !hidden.is_empty() {
        out.push_str(&fold(
            &format!("(--format csv, json or html adds {})", hidden.join(", ")),
            80,
        ));
    }
    out
}

/// CSV: a header of the keys, a row per period (and the total); unknown
/// values are empty cells.
pub fn csv(r: &Report) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![r.spec.by.as_str(), "start", "end", "complete"];
    header.extend(r.columns().iter().map(|c| c.key));
    w.write_record(&header)?;
    for row in r.rows.iter().chain(r.total.as_ref()) {
        let mut rec = vec![
            row.label.clone(),
            ctower_model::time::rfc3339_ms(row.start_ms),
            ctower_model::time::rfc3339_ms(row.end_ms),
            row.complete.to_string(),
        ];
        rec.extend(
            row.values
                .iter()
                .map(|v| v.map(|v| v.to_string()).unwrap_or_default()),
        );
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// JSON: the question, the rows and the total; unknown values are `null`.
pub fn json(r: &Report) -> serde_json::Value {
    let row = |row: &Row| {
        let mut o = serde_json::Map::new();
        o.insert("label".into(), row.label.clone().into());
        o.insert(
            "start".into(),
            ctower_model::time::rfc3339_ms(row.start_ms).into(),
        );
        o.insert(
            "end".into(),
            ctower_model::time::rfc3339_ms(row.end_ms).into(),
        );
        o.insert("complete".into(), row.complete.into());
        for (c, v) in r.columns().iter().zip(&row.values) {
            o.insert(c.key.into(), v.map_or(serde_json::Value::Null, Into::into));
        }
        serde_json::Value::Object(o)
    };
    serde_json::json!({
        "report": r.spec.kind.as_str(),
        "site": r.spec.site,
        "from": ctower_model::time::rfc3339_ms(r.spec.from_ms),
        "to": ctower_model::time::rfc3339_ms(r.spec.to_ms),
        "by": r.spec.by.as_str(),
        "rows": r.rows.iter().map(row).collect::<Vec<_>>(),
        "total": r.total.as_ref().map(row),
    })
}
