//! The write requests' state machine.
//!
//! ```text
//! set ──► requested ──approve──► approved ──send──► sent ──read-back──► confirmed
//!   │         │ └─reject──► rejected             │
//!   │         └─deadline──► expired               ├─deadline──► unconfirmed (alarm)
//!   └─(no two-person rule)──► approved            └─send failed─► unconfirmed (alarm)
//! ```
//!
//! Every change is planned by a `plan_*` call (which refuses with a reason
//! an operator understands, and changes nothing), recorded by the caller in
//! the audit trail, then [`Desk::commit`]ted. Read-backs are noted as they
//! arrive ([`Desk::readback`]); deadlines are found by [`Desk::due`].

use crate::catalogue::{Catalogue, ParamSpec};
use ctower_model::{ParamEntryView, ParamRequestView, ParamState, ParamValue, ParamWrite};
use std::collections::BTreeMap;

/// Final requests kept for the dashboard and `params` (older ones are
/// forgotten here; the audit trail keeps them all).
pub const MAX_KEPT_REQUESTS: usize = 200;
/// Read-back values kept (assets × parameters); more are not tracked (and
/// so cannot be written: "no read-back").
pub const MAX_VALUES: usize = 100_000;
/// Requests waiting (requested, approved or sent) at once.
pub const MAX_OPEN: usize = 1_000;

/// One request, with what the desk needs beyond its view.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    /// What people see.
    pub view: ParamRequestView,
    /// Its parameter in the catalogue.
    pub spec: usize,
    /// Its number (the id is `P` and it, six digits at least).
    pub n: u64,
}

/// The requests, the read-backs and the rules (module docs).
#[derive(Debug, Clone)]
pub struct Desk {
    catalogue: Catalogue,
    read_only: bool,
    /// (asset, parameter index) → the latest read-back and when it was seen.
    values: BTreeMap<(String, usize), (ParamValue, i64)>,
    requests: BTreeMap<u64, Req>,
    /// (asset, parameter index) → the open request on it.
    open: BTreeMap<(String, usize), u64>,
    /// (asset, parameter index) → when the last request on it was made.
    last_request: BTreeMap<(String, usize), i64>,
    next: u64,
    /// Read-backs not tracked for want of room.
    untracked: u64,
}

/// A request's id from its number.
pub fn request_id(n: u64) -> String {
    format!("P{n:06}")
}

/// A request's number from its id.
pub fn request_number(id: &str) -> Option<u64> {
    id.strip_prefix('P')
        .filter(|d| !d.is_empty() && d.len() <= 18 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
}

fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The change from `old` to `new` is within the parameter's largest step.
fn check_step(p: &ParamSpec, old: ParamValue, new: ParamValue) -> Result<(), String> {
    if let Some(step) = p.max_step {
        let d = (new.as_f64() - old.as_f64()).abs();
        if d > step {
            return Err(format!(
                "a change of {} from {} is larger than the largest step {} of `{}`",
                p.show(ParamValue::Float(d)),
                p.show(old),
                p.show(ParamValue::Float(step)),
                p.name
            ));
        }
    }
    Ok(())
}

impl Desk {
    /// A desk for `catalogue`; `read_only` refuses every write.
    pub fn new(catalogue: Catalogue, read_only: bool) -> Self {
        Desk {
            catalogue,
            read_only,
            values: BTreeMap::new(),
            requests: BTreeMap::new(),
            open: BTreeMap::new(),
            last_request: BTreeMap::new(),
            next: 1,
            untracked: 0,
        }
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Whether every write is refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Request numbers start after `n` (the audit trail's highest, at a
    /// start: ids are never used twice).
    pub fn numbers_after(&mut self, n: u64) {
        self.next = self.next.max(n.saturating_add(1));
    }

    /// Read-backs not tracked for want of room ([`MAX_VALUES`]).
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// A request by id.
    pub fn get(&self, id: &str) -> Option<&Req> {
        request_number(id).and_then(|n| self.requests.get(&n))
    }

    /// The requests, newest first.
    pub fn recent(&self) -> impl Iterator<Item = &Req> {
        self.requests.values().rev()
    }

    /// Every tracked parameter of every asset, with its read-back.
    pub fn entries(&self) -> Vec<ParamEntryView> {
        self.values
            .iter()
            .filter_map(|((asset, i), (v, at))| {
                let p = self.catalogue.params.get(*i)?;
                Some(ParamEntryView {
                    asset: asset.clone(),
                    param: p.name.to_string(),
                    unit: p.unit.clone(),
                    ty: p.ty,
                    min: p.min,
                    max: p.max,
                    max_step: p.max_step,
                    two_person: p.two_person,
                    request_roles: p.request_roles.clone(),
                    approve_roles: p.approve_roles.clone(),
                    value: Some(*v),
                    value_ms: Some(*at),
                    in_flight: self.open.get(&(asset.clone(), *i)).map(|n| request_id(*n)),
                })
            })
            .collect()
    }

    /// A read-back sample of `signal` of `asset` (value `x`), seen at
    /// `now_ms`: noted for every parameter it reports; the sent requests it
    /// confirms are returned, planned (to record, then commit).
    pub fn readback(&mut self, asset: &str, signal: &str, x: f64, now_ms: i64) -> Vec<Req> {
        let mut out = Vec::new();
        for (i, p) in self.catalogue.params.iter().enumerate() {
            if &*p.readback != signal || !p.applies_to(asset) {
                continue;
            }
            let Some(v) = p.value_of(x) else {
                continue;
            };
            let key = (asset.to_string(), i);
            if !self.values.contains_key(&key) && self.values.len() >= MAX_VALUES {
                self.untracked += 1;
                continue;
            }
            self.values.insert(key.clone(), (v, now_ms));
            let Some(n) = self.open.get(&key).copied() else {
                continue;
            };
            let Some(mut r) = self
                .requests
                .get(&n)
                .filter(|r| r.view.state == ParamState::Sent)
                .cloned()
            else {
                continue;
            };
            r.view.readback = Some(v);
            if p.confirms(r.view.new, v) {
                r.view.state = ParamState::Confirmed;
                r.view.deadline_ms = None;
                r.view.updated_ms = now_ms;
                r.view.note = format!("the read-back reported {}", p.show(v));
                out.push(r);
            } else {
                // Not yet: the latest read-back is shown.
                self.requests.insert(n, r);
            }
        }
        out
    }

    fn spec_of(&self, asset: &str, param: &str) -> Result<(usize, &ParamSpec), String> {
        self.catalogue
            .find(asset, param)
            .and_then(|i| self.catalogue.params.get(i).map(|p| (i, p)))
            .ok_or_else(|| {
                format!("`{param}` of `{asset}` is not in the catalogue of writable parameters")
            })
    }

    /// Plans a new request by `user` (holding `roles`) to write `value` to
    /// `param` of `asset`, at `now_ms`: requested (two-person rule) or
    /// approved at once; or the reason it is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn plan_set(
        &self,
        user: &str,
        roles: &[String],
        asset: &str,
        param: &str,
        value: ParamValue,
        reason: &str,
        now_ms: i64,
    ) -> Result<Req, String> {
        if self.read_only {
            return Err("the engine is read-only (control.read_only): no write is possible".into());
        }
        let (i, p) = self.spec_of(asset, param)?;
        if !p.request_roles.iter().any(|r| roles.contains(r)) {
            return Err(format!(
                "user `{user}` may not request writes of `{param}` (roles that may: {})",
                p.request_roles.join(", ")
            ));
        }
        let Some(value) = value.to_type(p.ty) else {
            return Err(format!(
                "`{param}` takes a {} value, not `{value}`",
                p.ty.as_str()
            ));
        };
        let x = value.as_f64();
        if let Some(min) = p.min.filter(|m| x < *m) {
            return Err(format!(
                "{} is below the minimum {} of `{param}`",
                p.show(value),
                p.show(ParamValue::Float(min))
            ));
        }
        if let Some(max) = p.max.filter(|m| x > *m) {
            return Err(format!(
                "{} is above the maximum {} of `{param}`",
                p.show(value),
                p.show(ParamValue::Float(max))
            ));
        }
        let key = (asset.to_string(), i);
        let Some((old, seen)) = self.values.get(&key).copied() else {
            return Err(format!(
                "no read-back of `{}` from `{asset}` yet: its source is stale or dead, nothing is written blind",
                p.readback
            ));
        };
        if now_ms - seen > p.stale_ms {
            return Err(format!(
                "the read-back of `{}` from `{asset}` is {} old (limit {}): its source is stale or dead",
                p.readback,
                age(now_ms - seen),
                age(p.stale_ms)
            ));
        }
        check_step(p, old, value)?;
        if p.confirms(value, old) {
            return Err(format!(
                "`{param}` of `{asset}` is already at {} (its read-back): nothing to write",
                p.show(old)
            ));
        }
        if let Some(n) = self.open.get(&key) {
            let state = self
                .requests
                .get(n)
                .map_or("open", |r| r.view.state.as_str());
            return Err(format!(
                "request {} on `{param}` of `{asset}` is still in flight ({state})",
                request_id(*n)
            ));
        }
        if let Some(last) = self.last_request.get(&key) {
            if now_ms - last < p.min_interval_ms {
                return Err(format!(
                    "rate limit: one request on `{param}` of `{asset}` per {}; the next in {}",
                    age(p.min_interval_ms),
                    age(p.min_interval_ms - (now_ms - last))
                ));
            }
        }
        if self.open.len() >= MAX_OPEN {
            return Err(format!("{MAX_OPEN} requests are open: try again later"));
        }
        let n = self.next;
        let (state, deadline) = if p.two_person {
            (ParamState::Requested, Some(now_ms + p.approval_ms))
        } else {
            (ParamState::Approved, None)
        };
        Ok(Req {
            view: ParamRequestView {
                id: request_id(n),
                asset: asset.to_string(),
                param: param.to_string(),
                unit: p.unit.clone(),
                old: Some(old),
                new: value,
                state,
                requested_by: user.to_string(),
                reason: reason.to_string(),
                decided_by: None,
                two_person: p.two_person,
                requested_ms: now_ms,
                updated_ms: now_ms,
                deadline_ms: deadline,
                readback: None,
                note: if p.two_person {
                    "waits for a second person's approval".into()
                } else {
                    String::new()
                },
            },
            spec: i,
            n,
        })
    }

    fn decision(
        &self,
        user: &str,
        roles: &[String],
        id: &str,
        what: &str,
        now_ms: i64,
    ) -> Result<Req, String> {
        if self.read_only {
            return Err("the engine is read-only (control.read_only): no write is possible".into());
        }
        let r = self
            .get(id)
            .ok_or_else(|| format!("no write request `{id}` is known"))?;
        let p = self
            .catalogue
            .params
            .get(r.spec)
            .ok_or_else(|| format!("request `{id}`'s parameter is gone from the catalogue"))?;
        if r.view.state != ParamState::Requested {
            return Err(format!(
                "request {id} is {}: nothing to {what}",
                r.view.state.as_str()
            ));
        }
        if r.view.deadline_ms.is_some_and(|d| now_ms >= d) {
            return Err(format!("request {id} has expired: nothing to {what}"));
        }
        let own = r.view.requested_by == user;
        if own && what == "approve" {
            return Err(format!(
                "you cannot approve your own request {id}: a second person must (two-person rule)"
            ));
        }
        // The requester may withdraw their own request (a rejection).
        if !own && !p.approve_roles.iter().any(|x| roles.contains(x)) {
            return Err(format!(
                "user `{user}` may not {what} writes of `{}` (roles that may: {})",
                p.name,
                p.approve_roles.join(", ")
            ));
        }
        let mut r = r.clone();
        r.view.decided_by = Some(user.to_string());
        r.view.updated_ms = now_ms;
        r.view.deadline_ms = None;
        Ok(r)
    }

    /// Plans `user`'s approval of request `id`: approved (then sent by the
    /// caller); or why not. The source must still be fresh.
    pub fn plan_approve(
        &self,
        user: &str,
        roles: &[String],
        id: &str,
        now_ms: i64,
    ) -> Result<Req, String> {
        let mut r = self.decision(user, roles, id, "approve", now_ms)?;
        let p = &self.catalogue.params[r.spec];
        let now_value = match self.values.get(&(r.view.asset.clone(), r.spec)) {
            Some((v, seen)) if now_ms - seen <= p.stale_ms => *v,
            _ => {
                return Err(format!(
                    "the read-back of `{}` from `{}` is stale: its source is stale or dead, approve once it reports again",
                    p.readback, r.view.asset
                ))
            }
        };
        // The plant may have moved since the request: the step is from
        // where it is now, and the record says so.
        check_step(p, now_value, r.view.new).map_err(|e| {
            format!("{e} (the read-back moved since the request: reject it and ask again)")
        })?;
        r.view.old = Some(now_value);
        r.view.state = ParamState::Approved;
        r.view.note = format!("approved by {user}");
        Ok(r)
    }

    /// Plans `user`'s rejection of request `id`, with `reason`.
    pub fn plan_reject(
        &self,
        user: &str,
        roles: &[String],
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Req, String> {
        let mut r = self.decision(user, roles, id, "reject", now_ms)?;
        r.view.state = ParamState::Rejected;
        r.view.note = if r.view.requested_by == user {
            format!("withdrawn by {user}: {reason}")
        } else {
            format!("rejected by {user}: {reason}")
        };
        Ok(r)
    }

    /// The write an approved request sends.
    pub fn write_of(&self, r: &Req) -> Option<ParamWrite> {
        let p = self.catalogue.params.get(r.spec)?;
        let user = match &r.view.decided_by {
            Some(a) => format!("{}+{a}", r.view.requested_by),
            None => r.view.requested_by.clone(),
        };
        Some(ParamWrite {
            request: r.view.id.clone(),
            source: p.source.clone(),
            asset: r.view.asset.clone(),
            param: r.view.param.clone(),
            signal: p.readback.to_string(),
            value: r.view.new,
            user,
            ts_ms: r.view.updated_ms,
            expires_ms: r.view.updated_ms + p.confirm_ms,
        })
    }

    /// Plans: the approved request `r` was queued on `topic` at `now_ms`:
    /// sent, waiting for its read-back.
    pub fn plan_sent(&self, r: &Req, topic: &str, now_ms: i64) -> Req {
        let confirm = self
            .catalogue
            .params
            .get(r.spec)
            .map_or(30_000, |p| p.confirm_ms);
        let mut r = r.clone();
        r.view.state = ParamState::Sent;
        r.view.updated_ms = now_ms;
        r.view.deadline_ms = Some(now_ms + confirm);
        r.view.note = format!("sent on {topic} (QoS 1)");
        r
    }

    /// Plans: the approved request `r` could not be sent (`why`):
    /// unconfirmed.
    pub fn plan_send_failed(&self, r: &Req, why: &str, now_ms: i64) -> Req {
        let mut r = r.clone();
        r.view.state = ParamState::Unconfirmed;
        r.view.updated_ms = now_ms;
        r.view.deadline_ms = None;
        r.view.note = format!("could not be sent: {why}");
        r
    }

    /// The deadlines passed by `now_ms`, planned: requests nobody approved
    /// expire; sent ones without their read-back are unconfirmed.
    pub fn due(&self, now_ms: i64) -> Vec<Req> {
        let mut out = Vec::new();
        for n in self.open.values() {
            let Some(r) = self.requests.get(n) else {
                continue;
            };
            if r.view.deadline_ms.is_none_or(|d| now_ms < d) {
                continue;
            }
            let mut r = r.clone();
            let waited = now_ms - r.view.updated_ms;
            match r.view.state {
                ParamState::Requested => {
                    r.view.state = ParamState::Expired;
                    r.view.note = format!("nobody approved it within {}", age(waited));
                }
                ParamState::Sent => {
                    let p = &self.catalogue.params[r.spec];
                    r.view.state = ParamState::Unconfirmed;
                    r.view.note = match r.view.readback {
                        Some(v) => format!(
                            "the read-back {} did not reach {} within {}",
                            p.show(v),
                            p.show(r.view.new),
                            age(waited)
                        ),
                        None => format!("no read-back of `{}` within {}", p.readback, age(waited)),
                    };
                }
                _ => continue,
            }
            r.view.deadline_ms = None;
            r.view.updated_ms = now_ms;
            out.push(r);
        }
        out
    }

    /// Stores a planned change (after the audit trail holds it).
    pub fn commit(&mut self, r: Req) {
        let key = (r.view.asset.clone(), r.spec);
        if r.n >= self.next {
            self.next = r.n + 1;
        }
        if r.view.state == ParamState::Requested || r.view.state == ParamState::Approved {
            if !self.requests.contains_key(&r.n) {
                self.last_request.insert(key.clone(), r.view.requested_ms);
            }
            self.open.insert(key, r.n);
        } else if r.view.state.is_final() && self.open.get(&key) == Some(&r.n) {
            self.open.remove(&key);
        }
        self.requests.insert(r.n, r);
        // Forget the oldest final requests beyond the bound.
        let finals = self
            .requests
            .values()
            .filter(|r| r.view.state.is_final())
            .count();
        if finals > MAX_KEPT_REQUESTS {
            let drop: Vec<u64> = self
                .requests
                .values()
                .filter(|r| r.view.state.is_final())
                .take(finals - MAX_KEPT_REQUESTS)
                .map(|r| r.n)
                .collect();
            for n in drop {
                self.requests.remove(&n);
            }
        }
    }
}

#[cfg(test)]
mod tests;
