//! The JSON answers of `/api/*`: what the web page, `arachne inspect` and scripts read.

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::{json, Value};

use super::server::AppState;
use crate::bus::Queue;
use crate::crawl::scheduler::FrontierView;
use crate::observe::{unix_millis, Heartbeat, ProcessFigures, Summary};

/// Hosts `/api/hosts` lists at most (the busiest).
pub const HOSTS_SHOWN: usize = 500;

/// `/api/status`: the run at a glance.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The crawl's name.
    pub crawl: String,
    /// This process's worker id.
    pub worker: String,
    /// `running`, `paused`, `draining` or `ending`.
    pub state: &'static str,
    /// The counters, as the final summary will have them.
    pub summary: Summary,
    /// Requests handed out and not finished.
    pub in_flight: u64,
    /// Requests waiting in the frontier.
    pub queued: u64,
    /// Admitted and not completed.
    pub outstanding: u64,
    /// Pages fetched per second over the last few seconds.
    pub pages_per_s_now: f64,
    /// Memory and CPU.
    pub process: ProcessFigures,
}

/// One bus queue.
#[derive(Debug, Serialize)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Messages waiting.
    pub ready: usize,
    /// Delivered, not settled.
    pub unacked: usize,
    /// Messages published.
    pub published: u64,
    /// Deliveries acked.
    pub acked: u64,
    /// Deliveries given back.
    pub redeliveries: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
}

impl QueueView {
    /// The figures of `queue` now.
    pub fn of<T: Send + Sync + 'static>(queue: &Queue<T>) -> Self {
        let s = queue.stats();
        Self {
            name: queue.name().to_string(),
            ready: queue.len(),
            unacked: queue.unacked(),
            published: s.published.load(Ordering::Relaxed),
            acked: s.acked.load(Ordering::Relaxed),
            redeliveries: s.redeliveries.load(Ordering::Relaxed),
            dead_letters: s.dead_letters.load(Ordering::Relaxed),
        }
    }
}

/// `/api/status`.
pub fn status(state: &AppState, view: Option<&FrontierView>) -> Status {
    let mut summary = state.stats.summary(state.started.elapsed());
    let queues = [QueueView::of(&state.requests), QueueView::of(&state.pages)];
    summary.redeliveries = queues.iter().map(|q| q.redeliveries).sum();
    summary.dead_letters = queues.iter().map(|q| q.dead_letters).sum();
    let history = state.collector.history();
    let first = history.get(history.len().saturating_sub(6)).copied();
    let pages_per_s_now = match (first, history.last()) {
        (Some(a), Some(b)) if b.t_ms > a.t_ms => {
            (b.pages_fetched - a.pages_fetched) as f64 * 1000.0 / (b.t_ms - a.t_ms) as f64
        }
        _ => 0.0,
    };
    let state_name = match view {
        None => "ending",
        Some(v) if v.draining => "draining",
        Some(v) if v.paused => "paused",
        Some(_) => "running",
    };
    Status {
        crawl: state.crawl.clone(),
        worker: state.worker_id.clone(),
        state: state_name,
        summary,
        in_flight: state.stats.in_flight.load(Ordering::Relaxed),
        queued: state.stats.queued.load(Ordering::Relaxed),
        outstanding: view.map_or(0, |v| v.outstanding),
        pages_per_s_now,
        process: ProcessFigures::now(),
    }
}

/// `/api/actors`: the supervision tree.
pub fn actors(state: &AppState) -> Value {
    let restarts = state.collector.restarts();
    let children: Vec<Value> = state
        .controller
        .children()
        .iter()
        .map(|c| {
            let r = restarts.get(&c.name);
            let recently = r.is_some_and(|r| unix_millis().saturating_sub(r.last_at_ms) < 2000);
            json!({
                "name": c.name,
                "restart": format!("{:?}", c.restart).to_lowercase(),
                "state": if recently { "restarted" } else { "running" },
                "restarts": r.map_or(0, |r| r.count),
                "last_reason": r.map(|r| r.last_reason.clone()),
                "mailbox": mailbox(state, &c.name),
            })
        })
        .collect();
    json!({ "name": "root", "kind": "supervisor", "children": children })
}

/// What waits for an actor where the bus knows it: the queue it consumes.
fn mailbox(state: &AppState, actor: &str) -> Value {
    if actor.starts_with("fetcher-") {
        json!({ "queue": "requests", "ready": state.requests.len(), "unacked": state.requests.unacked() })
    } else if actor.starts_with("parser-") {
        json!({ "queue": "pages", "ready": state.pages.len(), "unacked": state.pages.unacked() })
    } else {
        Value::Null
    }
}

/// `/api/hosts`: the frontier's hosts with their request figures.
pub fn hosts(state: &AppState, view: Option<&FrontierView>) -> Value {
    let mut figures = std::collections::HashMap::new();
    state.stats.hosts.for_each(|host, f| {
        let (_, count, sum) = f.latency.snapshot();
        figures.insert(
            host.to_string(),
            json!({
                "requests": f.requests.load(Ordering::Relaxed),
                "errors": f.errors.load(Ordering::Relaxed),
                "mean_latency_s": if count > 0 { sum / count as f64 } else { 0.0 },
            }),
        );
    });
    let hosts: Vec<Value> = view
        .map(|v| v.hosts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let mut entry = serde_json::to_value(h).unwrap_or(Value::Null);
            if let (Value::Object(map), Some(Value::Object(f))) = (&mut entry, figures.get(&h.host)) {
                map.extend(f.clone());
            }
            entry
        })
        .collect();
    json!({
        "default_rate": view.map_or(0.0, |v| v.default_rate),
        "queue_rate": view.map_or(0.0, |v| v.queue_rate),
        "host_count": view.map_or(0, |v| v.host_count),
        "hosts": hosts,
    })
}

/// `/api/queues`.
pub fn queues(state: &AppState) -> Value {
    json!({
        "frontier": { "queued": state.stats.queued.load(Ordering::Relaxed) },
        "queues": [QueueView::of(&state.requests), QueueView::of(&state.pages)],
    })
}

/// `/api/errors`: recent failures and dead letters.
pub fn errors(state: &AppState, view: Option<&FrontierView>) -> Value {
    json!({
        "errors": state.collector.errors(),
        "by_kind": state.stats.errors(),
        "dead_letters": state.collector.dead_letters(),
        "requeueable": view.map_or(0, |v| v.dead_letters),
    })
}

/// One worker of the crawl, as `/api/workers` lists it.
#[derive(Debug, Serialize)]
pub struct WorkerView {
    /// Its last heartbeat.
    #[serde(flatten)]
    pub beat: Heartbeat,
    /// Its heartbeats stopped.
    pub lost: bool,
    /// It is the process answering.
    pub this: bool,
}

/// `/api/workers`: every worker of the crawl (just this one without a shared broker).
pub async fn workers(state: &AppState) -> Result<Vec<WorkerView>, String> {
    let now = unix_millis();
    let Some(registry) = &state.registry else {
        let beat = Heartbeat {
            worker: state.worker_id.clone(),
            at_ms: now,
            started_ms: state.started_ms,
            every_ms: 1000,
            dashboard: Some(state.url.clone()),
            figures: crate::observe::WorkerFigures::of(&state.stats),
        };
        return Ok(vec![WorkerView { beat, lost: false, this: true }]);
    };
    let mut beats = registry.workers().await.map_err(|e| e.to_string())?;
    beats.sort_by(|a, b| a.worker.cmp(&b.worker));
    Ok(beats
        .into_iter()
        .map(|beat| WorkerView { lost: beat.is_lost(now), this: beat.worker == state.worker_id, beat })
        .collect())
}
