//! The dashboard: an HTTP endpoint inside the run with the web page, the JSON API under
//! `/api/`, Prometheus `/metrics`, and remote control (docs/observe.md).
//!
//! It runs on a thread of its own with its own small tokio runtime, so that a scrape or a
//! page never competes with the crawl's actors for their threads; it reads the run's atomic
//! counters and asks the scheduler for its view once per request. Control goes through the
//! [`Controller`]; to other workers of a shared crawl through a
//! [`WorkerRegistry`].
//!
//! ```no_run
//! use arachne::observe::dashboard::{Dashboard, DashboardOptions};
//! use arachne::runtime::Runtime;
//!
//! let spec = arachne::spec::load_file("crawl.yaml".as_ref(), arachne::spec::NO_OVERRIDES)?;
//! let dashboard = Dashboard::bind(DashboardOptions::loopback(9000))?;
//! eprintln!("dashboard: {}", dashboard.browser_url());
//! Runtime::builder(spec).dashboard(dashboard).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "dashboard")]
mod api;
mod auth;
pub mod client;
// Its views are read by the dashboard only.
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
mod collector;
#[cfg(feature = "dashboard")]
mod metrics;
#[cfg(feature = "dashboard")]
mod server;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

#[cfg(feature = "dashboard")]
pub use api::{QueueView, Status, WorkerView};
pub use auth::parse_listen;
pub use collector::{Restarts, Sample, Stamped};

use crate::bus::{Queue, Topic};
use crate::crawl::{CrawlRequest, Event, Page};
use crate::observe::{Controller, Stats, WorkerAgent, WorkerRegistry};
use crate::spec::ObserveSpec;

/// Where the dashboard listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The listen address does not parse.
    #[error("dashboard: '{listen}' is not an address to listen on: {reason}")]
    BadAddress {
        /// What was given.
        listen: String,
        /// Why not.
        reason: String,
    },
    /// A non-loopback address without a token.
    #[error("dashboard: listening on {0} (not loopback) needs a token (observe.token, e.g. \"${{ARACHNE_TOKEN}}\")")]
    NeedsToken(SocketAddr),
    /// The address is taken or not ours.
    #[error("dashboard: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The dashboard's thread or runtime could not start.
    #[error("dashboard: cannot start: {0}")]
    Start(std::io::Error),
    /// A build without the `dashboard` feature.
    #[error("this build has no dashboard support: rebuild with --features dashboard")]
    NotBuilt,
}

/// Where to listen and the control token.
#[derive(Clone)]
pub struct DashboardOptions {
    /// The address.
    pub listen: SocketAddr,
    /// The bearer token for control (and for reads when not on loopback); `None` makes up
    /// a random one (see [`Dashboard::browser_url`]).
    pub token: Option<String>,
}

impl DashboardOptions {
    /// `127.0.0.1:port` with a made-up token.
    pub fn loopback(port: u16) -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], port)), token: None }
    }

    /// The spec's `observe:` (its `listen` replaced by `listen` when given, as
    /// `--dashboard` does).
    pub fn from_spec(spec: Option<&ObserveSpec>, listen: Option<&str>) -> Result<Self, DashboardError> {
        let text = listen.or(spec.and_then(|s| s.listen.as_deref())).unwrap_or(DEFAULT_LISTEN);
        let addr = parse_listen(text)
            .map_err(|reason| DashboardError::BadAddress { listen: text.to_string(), reason })?;
        Ok(Self { listen: addr, token: spec.and_then(|s| s.token.clone()) })
    }
}

impl std::fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOptions").field("listen", &self.listen).field("token", &"***").finish()
    }
}

/// A bound dashboard, not serving yet: hand it to
/// [`RuntimeBuilder::dashboard`](crate::runtime::RuntimeBuilder::dashboard).
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub struct Dashboard {
    listener: TcpListener,
    addr: SocketAddr,
    token: String,
    generated: bool,
}

impl Dashboard {
    /// Binds the address now (so its port is known, and a taken port is an error before
    /// the crawl starts). Refuses a non-loopback address without a token.
    pub fn bind(options: DashboardOptions) -> Result<Self, DashboardError> {
        if !cfg!(feature = "dashboard") {
            return Err(DashboardError::NotBuilt);
        }
        let loopback = options.listen.ip().is_loopback();
        let token = options.token.filter(|t| !t.trim().is_empty());
        if !loopback && token.is_none() {
            return Err(DashboardError::NeedsToken(options.listen));
        }
        let listener = TcpListener::bind(options.listen)
            .map_err(|source| DashboardError::Bind { addr: options.listen, source })?;
        let addr =
            listener.local_addr().map_err(|source| DashboardError::Bind { addr: options.listen, source })?;
        let generated = token.is_none();
        let token = token.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        Ok(Self { listener, addr, token, generated })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The control token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The URL to open: with a made-up token, it carries it in the fragment (`#token=`),
    /// which the browser never sends to a server; the page keeps it for its buttons.
    pub fn browser_url(&self) -> String {
        if self.generated {
            format!("{}#token={}", self.url(), self.token)
        } else {
            self.url()
        }
    }
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").field("addr", &self.addr).finish()
    }
}

/// What the observer of a run reads and steers.
pub struct ObserveParts {
    /// The crawl's name.
    pub crawl: String,
    /// The run's counters.
    pub stats: Arc<Stats>,
    /// The `events` topic.
    pub events: Topic<Event>,
    /// The `requests` queue.
    pub requests: Queue<CrawlRequest>,
    /// The `pages` queue.
    pub pages: Queue<Page>,
    /// Carries out control actions.
    pub controller: Controller,
    /// The dashboard to serve, if any.
    pub dashboard: Option<Dashboard>,
    /// The broker the crawl's workers share, if any: heartbeats and remote commands.
    pub registry: Option<Arc<dyn WorkerRegistry>>,
}

/// The running dashboard and worker agent of a run; both stop when it is dropped.
pub struct Observer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    /// Starts serving `parts.dashboard` (if any) and beating into `parts.registry` (if any)
    /// on a thread of their own. With neither, nothing starts.
    pub fn start(parts: ObserveParts) -> Result<Self, DashboardError> {
        if parts.dashboard.is_none() && parts.registry.is_none() {
            return Ok(Self { stop: None, thread: None });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DashboardError::Start)?;
        let collector = collector::Collector::new();
        // Subscribed here, before the crawl goes on: no event is missed.
        let collecting = collector.collect(&parts.events, parts.stats.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("arachne-observe".into())
            .spawn(move || runtime.block_on(serve(parts, collector, collecting, stop_rx)))
            .map_err(DashboardError::Start)?;
        Ok(Self { stop: Some(stop_tx), thread: Some(thread) })
    }
}

async fn serve(
    parts: ObserveParts,
    collector: Arc<collector::Collector>,
    collecting: impl std::future::Future<Output = ()> + Send + 'static,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    tokio::spawn(collecting);
    let worker_id = WorkerAgent::new_id();
    let url = parts.dashboard.as_ref().map(Dashboard::url);
    let agent = parts.registry.clone().map(|registry| {
        WorkerAgent::start(
            worker_id.clone(),
            registry,
            parts.stats.clone(),
            parts.controller.clone(),
            url.clone(),
        )
    });
    #[cfg(feature = "dashboard")]
    if let Some(dashboard) = parts.dashboard {
        let state = server::AppState {
            stats: parts.stats,
            collector,
            controller: parts.controller,
            requests: parts.requests,
            pages: parts.pages,
            access: auth::Access::new(dashboard.token.clone(), dashboard.addr.ip().is_loopback()),
            registry: parts.registry,
            worker_id,
            crawl: parts.crawl,
            url: url.unwrap_or_default(),
            started: std::time::Instant::now(),
            started_ms: crate::observe::unix_millis(),
        };
        tokio::select! {
            () = serve_http(dashboard, state) => {}
            _ = stop => {}
        }
    } else {
        let _ = stop.await;
    }
    // No dashboard in this build (`Dashboard::bind` refuses): the worker agent only.
    #[cfg(not(feature = "dashboard"))]
    {
        let _ = (collector, worker_id);
        let _ = stop.await;
    }
    if let Some(agent) = agent {
        // Bounded: the process is ending.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), agent.leave()).await;
    }
}

/// Serves the dashboard's routes until the listener fails.
#[cfg(feature = "dashboard")]
async fn serve_http(dashboard: Dashboard, state: server::AppState) {
    let listener = match dashboard
        .listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(dashboard.listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("dashboard: cannot serve on {}: {e}", dashboard.addr);
            return;
        }
    };
    if let Err(e) = axum::serve(listener, server::router(Arc::new(state))).await {
        tracing::error!("dashboard: {e}");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("running", &self.thread.is_some()).finish()
    }
}

#[cfg(all(test, not(feature = "dashboard")))]
mod not_built_tests {
    #[test]
    fn binding_says_the_feature_is_missing() {
        let err = super::Dashboard::bind(super::DashboardOptions::loopback(0)).err().expect("refused");
        assert_eq!(err.to_string(), "this build has no dashboard support: rebuild with --features dashboard");
    }
}
