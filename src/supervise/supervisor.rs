//! The supervisor: starts children, hears of their failures, applies the strategy and the
//! restart intensity, and escalates.

use std::collections::VecDeque;
use std::fmt;
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
}

impl fmt::Display for Escalation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "actor '{}' failed more than {} times within {:?} (supervisor '{}'); last error: {}",
            self.child, self.max_restarts, self.within, self.supervisor, self.reason
        )
    }
}

/// What a child's future tells its supervisor.
#[derive(Debug)]
pub(crate) enum Report {
    Panicked { index: usize, reason: String, restarted: bool },
    Restarted { index: usize, reason: String },
    Exited { index: usize },
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
    history: VecDeque<Instant>,
    on_restart: Option<RestartHook>,
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
            history: VecDeque::new(),
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
        let name = name.into();
        let index = self.children.len();
        let signal = Arc::new(RestartSignal::default());
        self.children.push(ChildInfo { name: name.clone(), restart, signal: signal.clone() });
        let (tx, rx) = channel::channel(16);
        let reports = self.reports_tx.clone();
        arbiter.spawn_fn(move || {
            let mut ctx = Context::with_receiver(rx);
            let act = make(&mut ctx);
            let fut = ctx.into_future(act);
            actix::spawn(SupervisedActor {
                fut,
                index,
                restart,
                signal,
                reports,
                backoff: None,
                consecutive: 0,
                last_panic: None,
            });
        });
        let addr = Addr::new(tx);
        self.addresses.push(Box::new(addr.clone()));
        addr
    }

    /// Watches the children until every one has ended (`Ok`) or the restart intensity is
    /// exceeded (`Err`, after stopping every child).
    pub async fn watch(&mut self) -> Result<(), Escalation> {
        let mut running = self.children.len();
        while running > 0 {
            let Some(report) = self.reports.recv().await else { return Ok(()) };
            match report {
                Report::Exited { index } => {
                    tracing::debug!(actor = %self.children[index].name, "actor ended");
                    running -= 1;
                }
                Report::Panicked { index, reason, restarted } => {
                    let name = self.children[index].name.clone();
                    if !restarted {
                        running -= 1;
                    }
                    tracing::warn!(actor = %name, restarted, "actor panicked: {reason}");
                    self.note_restart(&name, &reason)?;
                    self.apply_strategy(index);
                }
                Report::Restarted { index, reason } => {
                    let name = self.children[index].name.clone();
                    tracing::info!(actor = %name, "actor restarted: {reason}");
                    self.note_restart(&name, &reason)?;
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

    fn note_restart(&mut self, child: &str, reason: &str) -> Result<(), Escalation> {
        Stats::incr(&self.stats.restarts);
        if let Some(hook) = &self.on_restart {
            hook(child, reason);
        }
        let now = Instant::now();
        self.history.push_back(now);
        while self.history.front().is_some_and(|t| now.duration_since(*t) > self.config.within) {
            self.history.pop_front();
        }
        if self.history.len() as u32 > self.config.max_restarts {
            self.stop_all();
            return Err(Escalation {
                supervisor: self.config.name.clone(),
                child: child.to_string(),
                reason: reason.to_string(),
                max_restarts: self.config.max_restarts,
                within: self.config.within,
            });
        }
        Ok(())
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
