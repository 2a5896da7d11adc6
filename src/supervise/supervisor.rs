//! The supervisor: starts children, hears of their failures, applies the strategy and the
//! restart intensity, and escalates.
//!
//! Which restarts count towards the intensity (`max_restarts` within `within`), as
//! docs/reliability.md states it:
//!
//! - a restart not blamed on a delivery (a panic outside any message's handling, a permanent
//!   child that stopped) always counts, as in Erlang/OTP;
//! - a panic blamed on a delivery is that message's fault: it counts towards the message's
//!   `max_deliveries` (then the message is dead-lettered), not towards the intensity;
//! - except in a crash loop: a child whose failures on fresh messages (delivered for the
//!   first time) outnumber the deliveries it finished within the window is failing on
//!   whatever it is given, and those failures count.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::channel;
use actix::{Actor, Addr, ArbiterHandle, Context, Supervised};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::child::{ChildInfo, Restart, RestartSignal, SupervisedActor};
use super::panic;
use crate::observe::Stats;
use crate::spec::{Strategy, SupervisionSpec};

/// A supervisor's settings.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Its name, used in logs and escalations.
    pub name: String,
    /// Which children restart when one fails.
    pub strategy: Strategy,
    /// Restarts allowed within `within` before escalating.
    pub max_restarts: u32,
    /// The restart-intensity window.
    pub within: Duration,
}

impl SupervisorConfig {
    /// The settings of the spec's `supervision:` key.
    pub fn from_spec(name: impl Into<String>, spec: &SupervisionSpec) -> Self {
        Self {
            name: name.into(),
            strategy: spec.strategy,
            max_restarts: spec.max_restarts,
            within: spec.within.0,
        }
    }
}

/// Too many restarts: the supervisor gave up. At the root this ends the run.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Escalation {
    /// The supervisor that gave up.
    pub supervisor: String,
    /// The child whose failure went past the intensity.
    pub child: String,
    /// Its last panic message.
    pub reason: String,
    /// The intensity that was exceeded.
    pub max_restarts: u32,
    /// Its window.
    pub within: Duration,
    /// The restarts counted within the window, by child (those with any), in start order.
    pub counts: Vec<(String, u32)>,
}

impl fmt::Display for Escalation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self.counts.iter().map(|(name, n)| format!("{name} ×{n}")).collect();
        write!(
            f,
            "more than {} restarts within {:?} in supervisor '{}' ({}); the last: actor '{}' failed: {}",
            self.max_restarts,
            self.within,
            self.supervisor,
            counts.join(", "),
            self.child,
            self.reason
        )
    }
}

/// What a child's future tells its supervisor.
#[derive(Debug)]
pub(crate) enum Report {
    /// `blamed`: which delivery of the message it was working on panicked, if any.
    Panicked {
        index: usize,
        reason: String,
        blamed: Option<u32>,
        restarted: bool,
    },
    Restarted {
        index: usize,
        reason: String,
    },
    Exited {
        index: usize,
    },
}

/// What spawning one registered child takes.
struct ChildStarter {
    index: usize,
    name: Arc<str>,
    restart: Restart,
    signal: Arc<RestartSignal>,
    progress: Arc<AtomicU64>,
    reports: UnboundedSender<Report>,
}

impl ChildStarter {
    /// Spawns the actor's supervised future on the current arbiter.
    fn spawn<A: Actor<Context = Context<A>> + Supervised>(self, ctx: Context<A>, act: A) {
        actix::spawn(SupervisedActor {
            fut: ctx.into_future(act),
            index: self.index,
            name: self.name,
            restart: self.restart,
            signal: self.signal,
            progress: self.progress,
            reports: self.reports,
            backoff: None,
            consecutive: 0,
            last_panic: None,
            stopping: false,
        });
    }
}

/// Starts actors under a restart policy and watches them.
pub struct Supervisor {
    config: SupervisorConfig,
    stats: Arc<Stats>,
    children: Vec<ChildInfo>,
    /// One address of each child, held so its mailbox stays connected: actix can only
    /// restart a context whose mailbox has a sender.
    addresses: Vec<Box<dyn std::any::Any + Send>>,
    reports_tx: UnboundedSender<Report>,
    reports: UnboundedReceiver<Report>,
    /// One per child: what the restart intensity looks at.
    health: Vec<Health>,
    /// When the children's progress is sampled next.
    next_sample: Instant,
    on_restart: Option<RestartHook>,
}

/// What the intensity knows of one child, within the window.
#[derive(Debug, Default)]
struct Health {
    /// Restarts that always count (not blamed on a delivery).
    unblamed: VecDeque<Instant>,
    /// Panics blamed on a message delivered for the first time.
    fresh: VecDeque<Instant>,
    /// The child's finished deliveries over time: (when, how many so far), oldest first,
    /// from the last sample at or before the window's start.
    samples: VecDeque<(Instant, u64)>,
}

impl Health {
    /// Drops what fell out of the window ending `now`.
    fn prune(&mut self, now: Instant, within: Duration) {
        let old = |t: &Instant| now.duration_since(*t) > within;
        while self.unblamed.front().is_some_and(old) {
            self.unblamed.pop_front();
        }
        while self.fresh.front().is_some_and(old) {
            self.fresh.pop_front();
        }
        // Keep one sample at or before the window's start: the base to count from.
        while self.samples.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= within) {
            self.samples.pop_front();
        }
    }

    /// Deliveries finished within the window (a little more: since the base sample).
    fn finished(&self, now_count: u64) -> u64 {
        now_count.saturating_sub(self.samples.front().map_or(0, |(_, n)| *n))
    }

    /// The restarts of this child that count towards the intensity: every unblamed one,
    /// and in a crash loop (more failures on fresh messages than finished deliveries) the
    /// failures on fresh messages too.
    fn counted(&self, now_count: u64) -> u32 {
        let fresh = self.fresh.len() as u64;
        let looping = fresh > self.finished(now_count);
        (self.unblamed.len() as u64 + if looping { fresh } else { 0 }) as u32
    }
}

/// Told of every restart: the child's name and the reason.
type RestartHook = Box<dyn Fn(&str, &str) + Send>;

impl Supervisor {
    /// A supervisor with no children yet; restarts are counted in `stats`.
    pub fn new(config: SupervisorConfig, stats: Arc<Stats>) -> Self {
        panic::install_hook();
        let (reports_tx, reports) = unbounded_channel();
        Self {
            config,
            stats,
            children: Vec::new(),
            addresses: Vec::new(),
            reports_tx,
            reports,
            health: Vec::new(),
            next_sample: Instant::now(),
            on_restart: None,
        }
    }

    /// Calls `hook(child, reason)` on every restart (the runtime publishes them on `events`).
    pub fn on_restart(&mut self, hook: impl Fn(&str, &str) + Send + 'static) {
        self.on_restart = Some(Box::new(hook));
    }

    /// The children started so far, in start order.
    pub fn children(&self) -> &[ChildInfo] {
        &self.children
    }

    /// Starts an actor on `arbiter`, built by `make` there. On a panic it is restarted in
    /// place: same address, same mailbox, `Supervised::restarting` called, `started` again.
    pub fn start<A, F>(
        &mut self,
        name: impl Into<String>,
        restart: Restart,
        arbiter: &ArbiterHandle,
        make: F,
    ) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        let (tx, rx) = channel::channel(16);
        let child = self.register(name.into(), restart);
        arbiter.spawn_fn(move || {
            let mut ctx = Context::with_receiver(rx);
            let act = make(&mut ctx);
            child.spawn(ctx, act);
        });
        self.keep(Addr::new(tx))
    }

    /// Builds an actor with `make` on this thread (an arbiter's: inside an actix system)
    /// and starts it here under supervision, as [`Supervisor::start`]; when `make` fails,
    /// nothing is started and its error is returned.
    pub fn try_start_here<A, E>(
        &mut self,
        name: impl Into<String>,
        restart: Restart,
        make: impl FnOnce(&mut Context<A>) -> Result<A, E>,
    ) -> Result<Addr<A>, E>
    where
        A: Actor<Context = Context<A>> + Supervised,
    {
        let (tx, rx) = channel::channel(16);
        let mut ctx = Context::with_receiver(rx);
        let act = make(&mut ctx)?;
        self.register(name.into(), restart).spawn(ctx, act);
        Ok(self.keep(Addr::new(tx)))
    }

    /// Adds a child to the list; the returned starter spawns its actor.
    fn register(&mut self, name: String, restart: Restart) -> ChildStarter {
        let index = self.children.len();
        let signal = Arc::new(RestartSignal::default());
        let progress = Arc::new(AtomicU64::new(0));
        self.children.push(ChildInfo {
            name: name.clone(),
            restart,
            signal: signal.clone(),
            progress: progress.clone(),
        });
        let mut health = Health::default();
        health.samples.push_back((Instant::now(), 0));
        self.health.push(health);
        ChildStarter { index, name: name.into(), restart, signal, progress, reports: self.reports_tx.clone() }
    }

    /// Holds one address of the child, so its mailbox stays connected.
    fn keep<A: Actor>(&mut self, addr: Addr<A>) -> Addr<A> {
        self.addresses.push(Box::new(addr.clone()));
        addr
    }

    /// Watches the children until every one has ended (`Ok`) or the restart intensity is
    /// exceeded (`Err`, after stopping every child).
    pub async fn watch(&mut self) -> Result<(), Escalation> {
        let mut running = self.children.len();
        while running > 0 {
            let sample_at = tokio::time::Instant::from_std(self.next_sample);
            let report = tokio::select! {
                report = self.reports.recv() => report,
                _ = tokio::time::sleep_until(sample_at) => {
                    self.sample_progress();
                    continue;
                }
            };
            let Some(report) = report else { return Ok(()) };
            match report {
                Report::Exited { index } => {
                    tracing::debug!(actor = %self.children[index].name, "actor ended");
                    running -= 1;
                }
                Report::Panicked { index, reason, blamed, restarted } => {
                    let name = &self.children[index].name;
                    if !restarted {
                        running -= 1;
                    }
                    tracing::warn!(actor = %name, restarted, "actor panicked: {reason}");
                    if !tracing::dispatcher::has_been_set() {
                        // No subscriber to see the line above: the panic must not vanish.
                        let what = if restarted { "restarted" } else { "not restarted" };
                        eprintln!("arachne: actor '{name}' panicked ({what}): {reason}");
                    }
                    self.note_restart(index, blamed, &reason)?;
                    self.apply_strategy(index);
                }
                Report::Restarted { index, reason } => {
                    tracing::info!(actor = %self.children[index].name, "actor restarted: {reason}");
                    self.note_restart(index, None, &reason)?;
                }
            }
        }
        Ok(())
    }

    /// Stops every child (in reverse start order).
    pub fn stop_all(&self) {
        for child in self.children.iter().rev() {
            child.signal.stop();
        }
    }

    /// Counts a restart of child `index` (`blamed`: which delivery of the message it was
    /// working on, if any) and escalates past the intensity.
    fn note_restart(&mut self, index: usize, blamed: Option<u32>, reason: &str) -> Result<(), Escalation> {
        Stats::incr(&self.stats.restarts);
        let child = self.children[index].name.clone();
        if let Some(hook) = &self.on_restart {
            hook(&child, reason);
        }
        let now = Instant::now();
        let health = &mut self.health[index];
        match blamed {
            None => health.unblamed.push_back(now),
            Some(1) => health.fresh.push_back(now),
            // A message failing again: its own fault, for `max_deliveries` to settle.
            Some(_) => {}
        }
        let counts = self.counted(now);
        let total: u32 = counts.iter().map(|(_, n)| n).sum();
        if total > self.config.max_restarts {
            self.stop_all();
            return Err(Escalation {
                supervisor: self.config.name.clone(),
                child,
                reason: reason.to_string(),
                max_restarts: self.config.max_restarts,
                within: self.config.within,
                counts,
            });
        }
        Ok(())
    }

    /// The restarts counted towards the intensity within the window ending `now`, by child.
    fn counted(&mut self, now: Instant) -> Vec<(String, u32)> {
        let within = self.config.within;
        let mut counts = Vec::new();
        for (child, health) in self.children.iter().zip(&mut self.health) {
            health.prune(now, within);
            let n = health.counted(child.progress.load(Ordering::Relaxed));
            if n > 0 {
                counts.push((child.name.clone(), n));
            }
        }
        counts
    }

    /// Records each child's progress, so the deliveries finished within the window are
    /// known; four samples a window.
    fn sample_progress(&mut self) {
        let now = Instant::now();
        for (child, health) in self.children.iter().zip(&mut self.health) {
            health.samples.push_back((now, child.progress.load(Ordering::Relaxed)));
            health.prune(now, self.config.within);
        }
        self.next_sample = now + (self.config.within / 4).max(Duration::from_millis(100));
    }

    fn apply_strategy(&self, failed: usize) {
        let siblings = match self.config.strategy {
            Strategy::OneForOne => return,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => failed + 1..self.children.len(),
        };
        for (i, child) in self.children.iter().enumerate().skip(siblings.start).take(siblings.len()) {
            if i != failed && child.restart != Restart::Temporary {
                tracing::info!(actor = %child.name, "restarting by {:?}", self.config.strategy);
                child.signal.restart();
            }
        }
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor").field("config", &self.config).field("children", &self.children).finish()
    }
}
