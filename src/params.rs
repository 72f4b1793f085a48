//! `ctower set|approve|reject|params`: parameter write requests to a
//! running engine through its command topic (like `ctower alarms`), signed
//! with the user's signature secret; and `ctower signature hash`, which
//! makes the salted hash the engine's configuration holds.

use crate::alarms::{request_id, send};
use crate::cli::{AlarmsConn, DecideArgs, SetArgs, SignArgs};
use crate::logs;
use anyhow::{bail, Context};
use ctower_model::time::rfc3339_ms;
use ctower_model::{CommandAction, CommandReply, CommandRequest, ParamValue, Signature};
use std::io::{BufRead, IsTerminal, Write};

/// `ctower set`.
pub fn set(log: &str, a: SetArgs) -> anyhow::Result<()> {
    logs::init(log)?;
    let value = parse_value(&a.value)?;
    let secret = secret(&a.sign, &a.conn.user)?;
    let mut req = CommandRequest::new(request_id(), a.conn.user.clone(), CommandAction::Set);
    req.asset = Some(a.asset);
    req.param = Some(a.param);
    req.value = Some(value);
    req.reason = a.reason;
    req.signature = Some(Signature(secret));
    send(&a.conn, &req, print)
}

/// `ctower approve` (`approve`) or `ctower reject`.
pub fn decide(log: &str, a: DecideArgs, approve: bool) -> anyhow::Result<()> {
    logs::init(log)?;
    if !approve && a.reason.trim().is_empty() {
        bail!("`reject` needs --reason");
    }
    let secret = secret(&a.sign, &a.conn.user)?;
    let action = if approve {
        CommandAction::Approve
    } else {
        CommandAction::Reject
    };
    let mut req = CommandRequest::new(request_id(), a.conn.user.clone(), action);
    req.request = Some(a.request);
    req.reason = a.reason;
    req.signature = Some(Signature(secret));
    send(&a.conn, &req, print)
}

/// `ctower params`.
pub fn list(log: &str, conn: AlarmsConn) -> anyhow::Result<()> {
    logs::init(log)?;
    let req = CommandRequest::new(request_id(), conn.user.clone(), CommandAction::Params);
    send(&conn, &req, print)
}

/// `ctower signature hash`.
pub fn hash() -> anyhow::Result<()> {
    let secret = read_secret("signature secret")?;
    if secret.chars().count() < 8 {
        bail!("a signature secret has at least 8 characters");
    }
    let again = if std::io::stdin().is_terminal() {
        read_secret("again")?
    } else {
        secret.clone()
    };
    if again != secret {
        bail!("the two secrets differ");
    }
    println!("{}", ctower_control::hash_secret(&secret)?);
    Ok(())
}

/// A value as typed: `true`/`false`/`on`/`off`, an integer, or a number
/// (the engine takes it as the catalogue's type).
fn parse_value(text: &str) -> anyhow::Result<ParamValue> {
    use ctower_model::ParamType;
    ParamValue::parse(text, ParamType::Bool)
        .filter(|_| !text.trim().chars().all(|c| c.is_ascii_digit()))
        .or_else(|| ParamValue::parse(text, ParamType::Int))
        .or_else(|| ParamValue::parse(text, ParamType::Float))
        .with_context(|| format!("`{text}` is not a number nor true/false"))
}

fn secret(sign: &SignArgs, user: &str) -> anyhow::Result<String> {
    match &sign.signature_env {
        Some(var) => std::env::var(var)
            .with_context(|| format!("environment variable `{var}` (--signature-env) is not set")),
        None => read_secret(&format!("signature for {user}")),
    }
}

/// A secret from the terminal, not echoed (raw mode), or the first line of
/// stdin when it is not a terminal.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the secret from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    use crossterm::event::{read, Event, KeyCode, KeyEventKind, KeyModifiers};
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    crossterm::terminal::enable_raw_mode().context("reading the secret from the terminal")?;
    let mut s = String::new();
    let result = loop {
        match read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err(anyhow::anyhow!("cancelled"))
                }
                KeyCode::Char(c) => s.push(c),
                KeyCode::Backspace => {
                    s.pop();
                }
                KeyCode::Esc => break Err(anyhow::anyhow!("cancelled")),
                _ => {}
            },
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    eprintln!();
    result.map(|()| s)
}

fn show(v: Option<ParamValue>) -> String {
    v.map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn print(reply: &CommandReply) {
    println!("{}", reply.message);
    if !reply.params.is_empty() {
        println!();
        println!(
            "{:<40} {:<24} {:>12} {:<6} {:<24} {:<16} {:<4} IN FLIGHT",
            "ASSET", "PARAMETER", "VALUE", "UNIT", "SEEN", "RANGE", "2P"
        );
        for p in &reply.params {
            let range = match (p.min, p.max) {
                (Some(a), Some(b)) => format!("{a}–{b}"),
                _ => "—".into(),
            };
            println!(
                "{:<40} {:<24} {:>12} {:<6} {:<24} {:<16} {:<4} {}",
                p.asset,
                p.param,
                show(p.value),
                p.unit,
                p.value_ms.map_or_else(|| "—".into(), rfc3339_ms),
                range,
                if p.two_person { "yes" } else { "no" },
                p.in_flight.as_deref().unwrap_or("—")
            );
        }
    }
    if !reply.requests.is_empty() {
        println!();
        println!(
            "{:<8} {:<12} {:<40} {:<24} {:>10} {:>10} {:<10} {:<10} NOTE",
            "ID", "STATE", "ASSET", "PARAMETER", "OLD", "NEW", "BY", "DECIDED"
        );
        for r in &reply.requests {
            println!(
                "{:<8} {:<12} {:<40} {:<24} {:>10} {:>10} {:<10} {:<10} {}",
                r.id,
                r.state.as_str(),
                r.asset,
                r.param,
                show(r.old),
                r.new.to_string(),
                r.requested_by,
                r.decided_by.as_deref().unwrap_or("—"),
                r.note
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_value;
    use ctower_model::ParamValue;

    #[test]
    fn values_are_read_as_typed() {
        assert_eq!(parse_value("80").unwrap(), ParamValue::Int(80));
        assert_eq!(parse_value("80.5").unwrap(), ParamValue::Float(80.5));
        assert_eq!(parse_value("on").unwrap(), ParamValue::Bool(true));
        assert_eq!(parse_value("false").unwrap(), ParamValue::Bool(false));
        assert_eq!(parse_value("1").unwrap(), ParamValue::Int(1));
        assert!(parse_value("abc").is_err());
        assert!(parse_value("NaN").is_err());
    }
}
