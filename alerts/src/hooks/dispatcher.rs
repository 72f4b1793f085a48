//! The dispatcher: fans each alarm event out to the hooks that want it,
//! owns the webhook threads and their queues, and shuts them down in order.

use super::delivery::Worker;
use super::log::{log_dropped, log_event};
use super::queue::{Abort, PushError, Queue};
use super::{Counters, HookStats};
use crate::config::{Hook, LogHook, WebhookHook};
use crate::AlertsError;
use ctower_model::{AlarmEvent, Clock, Priority};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Tuning of a [`HookDispatcher`].
#[derive(Clone)]
pub struct DispatcherOptions {
    /// The wall clock, read for `webhook-timestamp` (whole seconds);
    /// injected so tests can fix it.
    pub clock: Clock,
    /// Capacity of each webhook's queue (at least 1).
    pub queue_capacity: usize,
    /// How long [`HookDispatcher::send`] may block on a full queue.
    pub enqueue_wait: Duration,
    /// How long [`HookDispatcher::shutdown`] waits for the queues to drain.
    pub shutdown_wait: Duration,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            clock: Clock::system(),
            queue_capacity: 1024,
            enqueue_wait: Duration::from_millis(250),
            shutdown_wait: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for DispatcherOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherOptions")
            .field("queue_capacity", &self.queue_capacity)
            .field("enqueue_wait", &self.enqueue_wait)
            .field("shutdown_wait", &self.shutdown_wait)
            .finish_non_exhaustive()
    }
}

/// Sends the worker's index when the worker ends, even by a panic.
struct DoneGuard {
    index: usize,
    tx: mpsc::Sender<usize>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(self.index);
    }
}

/// The dispatcher's side of one webhook.
struct WebhookHandle {
    name: Arc<str>,
    min_priority: Priority,
    queue: Arc<Queue<AlarmEvent>>,
    /// Set while the queue is full, so a dead endpoint costs one wait.
    congested: AtomicBool,
    thread: Option<JoinHandle<()>>,
}

/// Fans alarm events out to the hooks. See the [module docs](super) for
/// queueing, retries and shutdown.
pub struct HookDispatcher {
    logs: Vec<LogHook>,
    webhooks: Vec<WebhookHandle>,
    counters: Arc<Counters>,
    abort: Arc<Abort>,
    done_rx: mpsc::Receiver<usize>,
    enqueue_wait: Duration,
    shutdown_wait: Duration,
    closed: bool,
}

impl std::fmt::Debug for HookDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDispatcher")
            .field("logs", &self.logs)
            .field(
                "webhooks",
                &self.webhooks.iter().map(|w| &w.name).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats())
            .finish()
    }
}

impl HookDispatcher {
    /// Starts the hooks with [`DispatcherOptions::default`].
    pub fn start(hooks: Vec<Hook>) -> Result<HookDispatcher, AlertsError> {
        Self::start_with(hooks, DispatcherOptions::default())
    }

    /// Starts the hooks: one thread per webhook. Fails if a thread cannot
    /// be started, or if a webhook's signing secret was never read (its
    /// configuration was checked with [`Secrets::IfSet`](crate::Secrets::IfSet)
    /// and the variable was not set): such a webhook is never sent unsigned.
    pub fn start_with(
        hooks: Vec<Hook>,
        options: DispatcherOptions,
    ) -> Result<HookDispatcher, AlertsError> {
        let (done_tx, done_rx) = mpsc::channel();
        let mut d = HookDispatcher {
            logs: Vec::new(),
            webhooks: Vec::new(),
            counters: Arc::new(Counters::default()),
            abort: Arc::new(Abort::default()),
            done_rx,
            enqueue_wait: options.enqueue_wait,
            shutdown_wait: options.shutdown_wait,
            closed: false,
        };
        for hook in hooks {
            match hook {
                Hook::Log(h) => d.logs.push(h),
                // On error `d` is dropped, which stops the workers already started.
                Hook::Webhook(h) => d.spawn_webhook(h, &options, &done_tx)?,
            }
        }
        Ok(d)
    }

    /// Starts the thread and the queue of one webhook.
    fn spawn_webhook(
        &mut self,
        hook: WebhookHook,
        options: &DispatcherOptions,
        done_tx: &mpsc::Sender<usize>,
    ) -> Result<(), AlertsError> {
        if let (Some(var), None) = (&hook.secret_env, &hook.secret) {
            return Err(AlertsError::UnreadSecret {
                hook: hook.name.to_string(),
                var: var.to_string(),
            });
        }
        let queue = Arc::new(Queue::new(options.queue_capacity));
        let name = hook.name.clone();
        let min_priority = hook.min_priority;
        let worker = Worker {
            hook,
            queue: queue.clone(),
            counters: self.counters.clone(),
            abort: self.abort.clone(),
            clock: options.clock.clone(),
        };
        let guard = DoneGuard {
            index: self.webhooks.len(),
            tx: done_tx.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("hook-{name}"))
            .spawn(move || {
                let _guard = guard;
                worker.run();
            })
            .map_err(|source| AlertsError::Spawn {
                hook: name.to_string(),
                source,
            })?;
        self.webhooks.push(WebhookHandle {
            name,
            min_priority,
            queue,
            congested: AtomicBool::new(false),
            thread: Some(thread),
        });
        Ok(())
    }

    /// Hands one event to every hook whose `min_priority` it meets. Log
    /// hooks write at once; webhooks get it queued (see the module docs for
    /// a full queue). Never fails: problems are counted and logged.
    pub fn send(&self, ev: &AlarmEvent) {
        for h in &self.logs {
            if ev.priority >= h.min_priority {
                log_event(&h.name, ev);
                Counters::inc(&self.counters.sent);
            }
        }
        for w in &self.webhooks {
            if ev.priority >= w.min_priority {
                self.enqueue(w, ev);
            }
        }
    }

    /// Queues `ev` for one webhook, or drops it (counted, logged).
    fn enqueue(&self, w: &WebhookHandle, ev: &AlarmEvent) {
        let wait = if w.congested.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            self.enqueue_wait
        };
        match w.queue.push(ev.clone(), wait) {
            Ok(()) => w.congested.store(false, Ordering::Relaxed),
            Err((why, ev)) => {
                let reason = match why {
                    PushError::Full => {
                        w.congested.store(true, Ordering::Relaxed);
                        "queue full"
                    }
                    PushError::Closed => "hook stopped",
                };
                Counters::inc(&self.counters.dropped);
                log_dropped(&w.name, &ev, reason);
            }
        }
    }

    /// The delivery counters so far.
    pub fn stats(&self) -> HookStats {
        HookStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// Drains the queues, then joins the workers, waiting at most
    /// [`DispatcherOptions::shutdown_wait`]; returns the final counters.
    pub fn shutdown(mut self) -> HookStats {
        self.close();
        self.stats()
    }

    /// Closes the queues, waits for the workers until the shutdown
    /// deadline, abandons what is left, and joins the finished workers.
    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for w in &self.webhooks {
            w.queue.close();
        }
        let mut done = Done::new(self.webhooks.len());
        self.wait_for(&mut done, self.shutdown_wait);
        if done.remaining > 0 {
            tracing::error!(
                busy = done.remaining,
                wait_ms = self.shutdown_wait.as_millis() as u64,
                "hook dispatcher: webhooks still busy at the shutdown deadline; dropping their queued events"
            );
            self.abandon_queued();
            // Workers between attempts stop at once; give them a moment.
            self.wait_for(&mut done, Duration::from_millis(200));
        }
        self.join_workers(&done.finished);
    }

    /// Receives workers' "done" signals for at most `wait`.
    fn wait_for(&self, done: &mut Done, wait: Duration) {
        let deadline = Instant::now() + wait;
        while done.remaining > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.done_rx.recv_timeout(deadline - now) {
                Ok(i) => done.mark(i),
                Err(_) => break,
            }
        }
    }

    /// Past the deadline: stops retries and drops every queued event.
    fn abandon_queued(&self) {
        self.abort.trigger();
        for w in &self.webhooks {
            for ev in w.queue.take_all() {
                Counters::inc(&self.counters.dropped);
                log_dropped(&w.name, &ev, "shutdown deadline passed");
            }
        }
    }

    /// Joins the finished workers; detaches those still in a request.
    fn join_workers(&mut self, finished: &[bool]) {
        for (w, &finished) in self.webhooks.iter_mut().zip(finished) {
            let Some(t) = w.thread.take() else { continue };
            if finished {
                if t.join().is_err() {
                    tracing::error!(hook = %w.name, "webhook worker panicked");
                }
            } else {
                tracing::error!(hook = %w.name, "webhook worker still in a request at shutdown; detached");
            }
        }
    }
}

impl Drop for HookDispatcher {
    fn drop(&mut self) {
        self.close();
    }
}

/// Which workers have signalled that they ended.
struct Done {
    finished: Vec<bool>,
    remaining: usize,
}

impl Done {
    fn new(n: usize) -> Self {
        Done {
            finished: vec![false; n],
            remaining: n,
        }
    }

    fn mark(&mut self, i: usize) {
        if let Some(d) = self.finished.get_mut(i) {
            if !*d {
                *d = true;
                self.remaining -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::AlarmEventKind;
    use ctower_model::{AlarmState, AssetKey, Level};

    fn ev(kind: AlarmEventKind) -> AlarmEvent {
        AlarmEvent {
            ts_ms: 1_772_427_600_000,
            rule: "r".into(),
            scope: AssetKey::new("s", "a", "l", "m").scope(Level::Asset),
            signal: Some("x".into()),
            kind,
            state: AlarmState::UnackActive,
            priority: Priority::High,
            metric: "x.max".into(),
            value: Some(2.0),
            threshold: 1.3,
            message: "m".into(),
        }
    }

    #[test]
    fn log_only_dispatcher_counts_sent() {
        let hooks = vec![Hook::Log(LogHook {
            name: "log".into(),
            min_priority: Priority::Urgent,
        })];
        let d = match HookDispatcher::start(hooks) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        d.send(&ev(AlarmEventKind::Raised)); // high < urgent: filtered
        let mut urgent = ev(AlarmEventKind::Raised);
        urgent.priority = Priority::Urgent;
        d.send(&urgent);
        assert_eq!(
            d.shutdown(),
            HookStats {
                sent: 1,
                failed: 0,
                dropped: 0
            }
        );
    }
}
