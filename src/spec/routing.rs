//! The spec's Celery-style routing: `routes:` send each request to a named queue, and
//! `queues:` give each queue its own fetch concurrency, rate limit, retries and priority
//! (docs/routing.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::Rate;

/// The queue a request goes to when no route matches it (Celery's `task_default_queue`).
pub const DEFAULT_QUEUE: &str = "default";

/// One entry of `routes:` (Celery's `task_routes`): requests whose URL matches go to
/// `queue`. The first route that matches wins; a request no route matches goes to
/// [`DEFAULT_QUEUE`]. A route names `match`, `host` or both (then both must match).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// A regex searched in the whole URL (`\.pdf$`).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// A glob on the URL's host name, without the port (`*.example.org`: `*` any run of
    /// characters, `?` one, `[a-z]` a class); case does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The queue: `default`, or one named under `queues:`.
    pub queue: String,
}

/// One entry of `queues:` (Celery's `task_queues`, with the task options Celery sets per
/// task kind): what the requests of this queue get. Every key may be left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Requests of this queue in flight in one process at most (Celery's worker
    /// `--concurrency` of a worker that consumes only this queue); `fetch.concurrency`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Requests of this queue started per second, minute or hour, in each process (Celery's
    /// `rate_limit`, which is per worker too): `10/m`, `20/s`, `100/h`; no limit when
    /// absent. The per-host politeness (`fetch.per_host`, robots.txt Crawl-delay) holds
    /// on top of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// Retries of a failed fetch (Celery's `max_retries`); `fetch.retries` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Higher is served first: a process with room for a request takes it from its
    /// highest-priority queue that has one ready (Celery's queue priority); 0 when absent.
    #[serde(default)]
    pub priority: i32,
}
