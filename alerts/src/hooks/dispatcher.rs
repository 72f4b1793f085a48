//! The dispatcher: log hooks inline; for the delivering hooks, the
//! [`Notifier`]'s notifications written to each hook's durable outbox
//! (synced before [`HookDispatcher::send`] returns), one delivery thread
//! per hook draining it, and one timer thread for repeats and escalations.

use super::delivery::{describe, Health, Worker};
use super::log::log_event;
use super::queue::Abort;
use super::HookStats;
use crate::config::{Hook, LogHook, Target, WebhookHook};
use crate::notify::{FloodLimits, Notification, Notifier};
use crate::AlertsError;
use ctower_model::{AlarmEvent, Clock, Fault, OutboxStatus};
use ctower_outbox::{Outbox, OutboxRules};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A hook failing this long raises its fault (and ctower's system alarm).
pub const FAILING_FAULT_AFTER_MS: i64 = 60_000;

/// Tuning of a [`HookDispatcher`].
#[derive(Clone, Debug)]
pub struct DispatcherOptions {
    /// The wall clock: `webhook-timestamp`, repeat and escalation timers.
    pub clock: Clock,
    /// Each delivering hook's outbox is `outbox_dir/<hook name>/`, its
    /// dead letters `outbox_dir/<hook name>/dead-letters.jsonl`.
    pub outbox_dir: PathBuf,
    /// Disk budget of each hook's outbox.
    pub outbox_budget_bytes: u64,
    /// Flood limits per site console.
    pub flood: FloodLimits,
    /// How often repeats and escalations are looked at.
    pub tick: Duration,
    /// How long [`HookDispatcher::shutdown`] waits for the outboxes to drain
    /// (what is left is sent at the next start).
    pub shutdown_wait: Duration,
}

impl DispatcherOptions {
    /// Defaults with the outboxes under `outbox_dir`.
    pub fn new(outbox_dir: PathBuf) -> Self {
        DispatcherOptions {
            clock: Clock::system(),
            outbox_dir,
            outbox_budget_bytes: 256 << 20,
            flood: FloodLimits::default(),
            tick: Duration::from_secs(1),
            shutdown_wait: Duration::from_secs(10),
        }
    }
}

/// One delivering hook.
struct Delivering {
    hook: WebhookHook,
    outbox: Arc<Outbox>,
    health: Arc<Mutex<Health>>,
    thread: Option<JoinHandle<()>>,
}

/// One hook as the metrics see it: its configuration, outbox and delivery health.
type Watched = (WebhookHook, Arc<Outbox>, Arc<Mutex<Health>>);

/// What the metrics read of the hooks, from any thread.
#[derive(Clone)]
pub struct HooksHealth {
    hooks: Arc<Vec<Watched>>,
}

impl std::fmt::Debug for HooksHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HooksHealth")
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl HooksHealth {
    /// One outbox status per delivering hook (named `hook.<name>`).
    pub fn statuses(&self, now_ms: i64) -> Vec<OutboxStatus> {
        self.hooks
            .iter()
            .map(|(hook, outbox, health)| {
                let n = outbox.numbers(now_ms);
                let h = health.lock().map(|h| h.clone()).unwrap_or_default();
                OutboxStatus {
                    name: format!("hook.{}", hook.name),
                    target: describe(hook),
                    pending_lines: n.pending_lines,
                    used_bytes: n.used_bytes,
                    budget_bytes: n.budget_bytes,
                    oldest_age_ms: n.oldest_age_ms,
                    written: h.delivered,
                    rejected: h.dead_lettered,
                    lost: n.lost,
                    last_error: n.write_error.or(h.last_error).or(h.dead_letter_error),
                }
            })
            .collect()
    }

    /// A fault per hook that has failed for a minute, cannot write its
    /// outbox or its dead letters (stage `hook.<name>`).
    pub fn faults(&self, now_ms: i64) -> Vec<Fault> {
        self.hooks
            .iter()
            .filter_map(|(hook, outbox, health)| {
                let n = outbox.numbers(now_ms);
                let h = health.lock().map(|h| h.clone()).unwrap_or_default();
                let failing = h
                    .failing_since_ms
                    .is_some_and(|t| now_ms - t >= FAILING_FAULT_AFTER_MS);
                let error = match (&n.write_error, &h.dead_letter_error, failing) {
                    (Some(e), _, _) => format!("cannot write its outbox: {e}"),
                    (None, Some(e), _) => format!("cannot write its dead letters: {e}"),
                    (None, None, true) => format!(
                        "not delivered for {} s ({} waiting): {}",
                        (now_ms - h.failing_since_ms.unwrap_or(now_ms)) / 1000,
                        n.pending_lines,
                        h.last_error.unwrap_or_default()
                    ),
                    (None, None, false) => return None,
                };
                Some(Fault {
                    stage: format!("hook.{}", hook.name),
                    path: describe(hook),
                    error,
                    lost: n.lost,
                })
            })
            .collect()
    }
}

/// Fans alarm events out to the hooks. See the [module docs](super).
pub struct HookDispatcher {
    logs: Vec<LogHook>,
    notifier: Arc<Mutex<Notifier>>,
    hooks: Arc<Vec<Delivering>>,
    health: HooksHealth,
    abort: Arc<Abort>,
    ticker: Option<(Arc<Abort>, JoinHandle<()>)>,
    clock: Clock,
    shutdown_wait: Duration,
}

impl std::fmt::Debug for HookDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDispatcher")
            .field("logs", &self.logs.len())
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes notifications to their hooks' outboxes (each synced).
fn write(hooks: &[Delivering], notes: Vec<Notification>, now_ms: i64) {
    for d in hooks {
        let lines: Vec<String> = notes
            .iter()
            .filter(|n| n.hook == d.hook.name)
            .filter_map(|n| serde_json::to_string(n).ok())
            .collect();
        // The outbox logs and counts its own write errors (a fault).
        let _ = d.outbox.append(&lines, now_ms);
    }
}

impl HookDispatcher {
    /// Opens each delivering hook's outbox (what a previous run left is
    /// delivered first), starts its thread, and the timer thread.
    pub fn start(
        hooks: Vec<Hook>,
        options: DispatcherOptions,
    ) -> Result<HookDispatcher, AlertsError> {
        let mut logs = Vec::new();
        let mut routes = Vec::new();
        let mut delivering = Vec::new();
        for hook in hooks {
            routes.push(hook.route().clone());
            match hook {
                Hook::Log(h) => logs.push(h),
                Hook::Webhook(h) => delivering.push(h),
            }
        }
        let abort = Arc::new(Abort::default());
        let mut started = Vec::new();
        for (i, hook) in delivering.into_iter().enumerate() {
            match &hook.target {
                Target::Webhook {
                    secret: None,
                    secret_from: Some(from),
                    ..
                } => {
                    return Err(AlertsError::UnreadSecret {
                        hook: hook.name.to_string(),
                        var: from.to_string(),
                    });
                }
                Target::PagerDuty {
                    routing_key: None, ..
                } => {
                    return Err(AlertsError::UnreadSecret {
                        hook: hook.name.to_string(),
                        var: "routing key".into(),
                    });
                }
                _ => {}
            }
            let dir = options.outbox_dir.join(&*hook.name);
            let outbox = Outbox::open(OutboxRules {
                name: format!("hook outbox `{}`", hook.name),
                lost_hint: "these notifications will not be sent; the journal and the audit trail still hold the alarms".into(),
                dir: dir.clone(),
                segment_bytes: (options.outbox_budget_bytes / 8).clamp(64 << 10, 16 << 20),
                budget_bytes: options.outbox_budget_bytes,
            })
            .map_err(|source| AlertsError::Outbox { hook: hook.name.to_string(), dir: dir.clone(), source })?;
            let health = Arc::new(Mutex::new(Health::default()));
            let worker = Worker {
                hook: hook.clone(),
                outbox: outbox.clone(),
                dead_letters: dir.join("dead-letters.jsonl"),
                health: health.clone(),
                abort: abort.clone(),
                clock: options.clock.clone(),
                seed: ctower_model::backoff::jitter_seed(i),
            };
            let thread = std::thread::Builder::new()
                .name(format!("hook-{}", hook.name))
                .spawn(move || worker.run())
                .map_err(|source| AlertsError::Spawn {
                    hook: hook.name.to_string(),
                    source,
                })?;
            started.push(Delivering {
                hook,
                outbox,
                health,
                thread: Some(thread),
            });
        }
        let health = HooksHealth {
            hooks: Arc::new(
                started
                    .iter()
                    .map(|d| (d.hook.clone(), d.outbox.clone(), d.health.clone()))
                    .collect(),
            ),
        };
        let hooks = Arc::new(started);
        let notifier = Arc::new(Mutex::new(Notifier::new(routes, options.flood)));
        let ticker = if hooks.is_empty() {
            None
        } else {
            let stop = Arc::new(Abort::default());
            let (s, n, h, clock, every) = (
                stop.clone(),
                notifier.clone(),
                hooks.clone(),
                options.clock.clone(),
                options.tick,
            );
            let thread = std::thread::Builder::new()
                .name("hook-timers".into())
                .spawn(move || {
                    while !s.sleep(every) {
                        let now = clock.now_ms();
                        // Held across the write, so that no repeat or
                        // escalation lands after the ack or clear that
                        // ended it.
                        let mut notifier = lock(&n);
                        let notes = notifier.tick(now);
                        if !notes.is_empty() {
                            write(&h, notes, now);
                        }
                        drop(notifier);
                    }
                })
                .map_err(|source| AlertsError::Spawn {
                    hook: "timers".into(),
                    source,
                })?;
            Some((stop, thread))
        };
        Ok(HookDispatcher {
            logs,
            notifier,
            hooks,
            health,
            abort,
            ticker,
            clock: options.clock,
            shutdown_wait: options.shutdown_wait,
        })
    }

    /// One alarm event: logged by the log hooks it is for, and its
    /// notifications on disk in the outboxes of the hooks it is for before
    /// this returns.
    pub fn send(&self, ev: &AlarmEvent) {
        for h in &self.logs {
            if h.route
                .wants(ev.scope.site.as_deref(), &ev.rule, ev.priority)
            {
                log_event(&h.name, ev);
            }
        }
        if self.hooks.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let mut notifier = lock(&self.notifier);
        let notes = notifier.on_event(ev, now);
        write(&self.hooks, notes, now);
    }

    /// An event from before a restart (already notified then): the
    /// notifier's state only, so that its acknowledgement or clear still
    /// reaches the hooks that were told, and its escalation goes on.
    pub fn note(&self, ev: &AlarmEvent) {
        lock(&self.notifier).rebuild(ev, self.clock.now_ms());
    }

    /// What the metrics read of the hooks.
    pub fn health(&self) -> HooksHealth {
        self.health.clone()
    }

    /// Counters over all delivering hooks.
    pub fn stats(&self) -> HookStats {
        let mut s = HookStats::default();
        for d in self.hooks.iter() {
            let h = lock(&d.health).clone();
            s.delivered += h.delivered;
            s.dead_lettered += h.dead_lettered;
            s.pending += d.outbox.pending();
        }
        s
    }

    /// Stops the timers, lets the outboxes drain for at most the shutdown
    /// wait, then stops the delivery threads: what is left stays on disk
    /// and is sent at the next start.
    pub fn shutdown(mut self) -> HookStats {
        if let Some((stop, t)) = self.ticker.take() {
            stop.trigger();
            let _ = t.join();
        }
        for d in self.hooks.iter() {
            d.outbox.close();
        }
        let deadline = Instant::now() + self.shutdown_wait;
        while Instant::now() < deadline && self.hooks.iter().any(|d| d.outbox.pending() > 0) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.abort.trigger();
        let stats = self.stats();
        if let Some(hooks) = Arc::get_mut(&mut self.hooks) {
            for d in hooks.iter_mut() {
                // A thread inside a request ends at its timeout on its own.
                if let Some(t) = d.thread.take() {
                    if t.is_finished() {
                        let _ = t.join();
                    }
                }
            }
        }
        if stats.pending > 0 {
            tracing::warn!(pending = stats.pending, "hook notifications not delivered yet stay in their outboxes; they are sent at the next start");
        }
        stats
    }
}

impl Drop for HookDispatcher {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.ticker {
            stop.trigger();
        }
        self.abort.trigger();
        for d in self.hooks.iter() {
            d.outbox.close();
        }
    }
}
