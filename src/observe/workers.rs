//! Many processes, one view: every process of a crawl that shares a broker publishes a
//! [`Heartbeat`] with its figures, and listens for [`RemoteCommand`]s (as Celery workers send
//! events and take `celery control` broadcasts). The broker is behind [`WorkerRegistry`]
//! (Redis: `crate::bridges::redis::heartbeat`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{unix_millis, ControlAction, Controller, ProcessFigures, Stats};

/// How often a worker publishes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A worker whose last heartbeat is older than this many periods is lost.
pub const LOST_AFTER_BEATS: u64 = 5;

/// The figures a worker publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerFigures {
    /// Pages fetched.
    pub pages_fetched: u64,
    /// Pages failed.
    pub pages_failed: u64,
    /// Items produced.
    pub items: u64,
    /// Requests in flight.
    pub in_flight: u64,
    /// Requests waiting in its local frontier.
    pub queued: u64,
    /// Actor restarts.
    pub restarts: u64,
    /// Resident memory and CPU.
    pub process: ProcessFigures,
}

impl WorkerFigures {
    /// The figures of this process now.
    pub fn of(stats: &Stats) -> Self {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Self {
            pages_fetched: get(&stats.pages_fetched),
            pages_failed: get(&stats.pages_failed),
            items: get(&stats.items),
            in_flight: get(&stats.in_flight),
            queued: get(&stats.queued),
            restarts: get(&stats.restarts),
            process: ProcessFigures::now(),
        }
    }
}

/// One heartbeat of one worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    /// The worker's id, unique in the crawl (`host-pid-random`).
    pub worker: String,
    /// When it was sent (Unix milliseconds).
    pub at_ms: u64,
    /// When the worker started (Unix milliseconds).
    pub started_ms: u64,
    /// Its heartbeat period, in milliseconds.
    pub every_ms: u64,
    /// Its dashboard's URL, if it serves one.
    pub dashboard: Option<String>,
    /// Its figures.
    pub figures: WorkerFigures,
}

impl Heartbeat {
    /// Whether its heartbeats stopped: the last is older than [`LOST_AFTER_BEATS`] periods.
    pub fn is_lost(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.at_ms) > LOST_AFTER_BEATS * self.every_ms.max(1)
    }
}

/// A control action sent to other workers of the crawl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteCommand {
    /// The worker it is for, or `"*"` for every one.
    pub target: String,
    /// The worker that sent it (it does not apply its own broadcast twice).
    pub from: String,
    /// What to do.
    pub action: ControlAction,
}

/// A broker error of the registry.
#[derive(Debug, thiserror::Error)]
#[error("worker registry: {0}")]
pub struct RegistryError(pub String);

/// Where heartbeats and remote commands go: a broker the workers of a crawl share.
pub trait WorkerRegistry: Send + Sync + 'static {
    /// Publishes one heartbeat.
    fn beat<'a>(&'a self, beat: &'a Heartbeat) -> BoxFuture<'a, Result<(), RegistryError>>;
    /// The last heartbeat of every worker heard of recently (lost ones included).
    fn workers(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, RegistryError>>;
    /// Sends a command to other workers.
    fn send<'a>(&'a self, command: &'a RemoteCommand) -> BoxFuture<'a, Result<(), RegistryError>>;
    /// Removes a worker that ends normally (one that just stops beating is lost instead).
    fn leave<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, Result<(), RegistryError>>;
    /// The commands sent by any worker, from now on.
    fn commands(&self) -> BoxFuture<'_, Result<BoxStream<'static, RemoteCommand>, RegistryError>>;
}

/// This process as a worker of a shared crawl: publishes its heartbeat every
/// [`HEARTBEAT_EVERY`] and carries out the commands meant for it. Stops when dropped.
pub struct WorkerAgent {
    id: String,
    registry: Arc<dyn WorkerRegistry>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerAgent {
    /// A new worker id: `host-pid-random`.
    pub fn new_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
    }

    /// Starts beating and listening on the current tokio runtime.
    pub fn start(
        id: String,
        registry: Arc<dyn WorkerRegistry>,
        stats: Arc<Stats>,
        controller: Controller,
        dashboard: Option<String>,
    ) -> Self {
        let started_ms = unix_millis();
        let beats = {
            let (registry, id) = (registry.clone(), id.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
                loop {
                    tick.tick().await;
                    let beat = Heartbeat {
                        worker: id.clone(),
                        at_ms: unix_millis(),
                        started_ms,
                        every_ms: HEARTBEAT_EVERY.as_millis() as u64,
                        dashboard: dashboard.clone(),
                        figures: WorkerFigures::of(&stats),
                    };
                    if let Err(e) = registry.beat(&beat).await {
                        tracing::warn!("heartbeat not sent: {e}");
                    }
                }
            })
        };
        let listen = {
            let (registry, id) = (registry.clone(), id.clone());
            tokio::spawn(async move {
                let mut commands = loop {
                    match registry.commands().await {
                        Ok(c) => break c,
                        Err(e) => {
                            tracing::warn!("remote control from other workers unavailable, retrying: {e}");
                            tokio::time::sleep(HEARTBEAT_EVERY).await;
                        }
                    }
                };
                while let Some(command) = commands.next().await {
                    if command.from == id || (command.target != "*" && command.target != id) {
                        continue;
                    }
                    match controller.apply(&command.action).await {
                        Ok(done) => tracing::info!(from = %command.from, "remote control: {done}"),
                        Err(e) => tracing::warn!(from = %command.from, "remote control refused: {e}"),
                    }
                }
            })
        };
        Self { id, registry, tasks: vec![beats, listen] }
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The registry it publishes to.
    pub fn registry(&self) -> &Arc<dyn WorkerRegistry> {
        &self.registry
    }

    /// Stops beating and leaves the registry: the run ended normally.
    pub async fn leave(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Err(e) = self.registry.leave(&self.id).await {
            tracing::debug!("leaving the worker registry: {e}");
        }
    }
}

impl Drop for WorkerAgent {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for WorkerAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerAgent").field("id", &self.id).finish()
    }
}
