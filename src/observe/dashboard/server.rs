//! The HTTP server: routes, the access check, and the handlers that turn the run's state
//! into pages, JSON and metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::json;

use super::auth::Access;
use super::collector::Collector;
use super::{api, metrics};
use crate::bus::Queue;
use crate::crawl::scheduler::FrontierView;
use crate::crawl::{CrawlRequest, Page};
use crate::observe::{ControlError, ControlRequest, Controller, RemoteCommand, Stats, WorkerRegistry};

/// The web page, with its script and styles inline (no CDN: works offline).
const INDEX: &str = include_str!("assets/index.html");

/// Everything the handlers read.
pub struct AppState {
    pub(super) stats: Arc<Stats>,
    pub(super) collector: Arc<Collector>,
    pub(super) controller: Controller,
    pub(super) requests: Queue<CrawlRequest>,
    pub(super) pages: Queue<Page>,
    pub(super) access: Access,
    pub(super) registry: Option<Arc<dyn WorkerRegistry>>,
    pub(super) worker_id: String,
    pub(super) crawl: String,
    pub(super) url: String,
    pub(super) started: Instant,
    pub(super) started_ms: u64,
}

type Shared = Arc<AppState>;

/// The dashboard's routes.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/actors", get(actors))
        .route("/api/hosts", get(hosts))
        .route("/api/queues", get(queues))
        .route("/api/errors", get(errors))
        .route("/api/workers", get(workers))
        .route("/api/history", get(history))
        .route("/api/events", get(events))
        .route("/api/control", post(control))
        .with_state(state)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "a valid `Authorization: Bearer <token>` is required" })),
    )
        .into_response()
}

/// Answers `answer()` if the request may read, 401 otherwise.
fn read(state: &AppState, headers: &HeaderMap, answer: impl FnOnce() -> Response) -> Response {
    if state.access.may_read(headers) {
        answer()
    } else {
        unauthorized()
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// Answers `answer(view)` with the scheduler's view (with its `hosts` busiest hosts) if the
/// request may read, 401 otherwise.
async fn read_view(
    state: &AppState,
    headers: &HeaderMap,
    hosts: usize,
    answer: impl FnOnce(Option<&FrontierView>) -> Response,
) -> Response {
    if !state.access.may_read(headers) {
        return unauthorized();
    }
    let view = state.controller.inspect(hosts).await;
    answer(view.as_ref())
}

async fn metrics(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read_view(&state, &headers, 0, |view| {
        ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&state, view)).into_response()
    })
    .await
}

async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read_view(&state, &headers, 0, |view| Json(api::status(&state, view)).into_response()).await
}

async fn actors(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read(&state, &headers, || Json(api::actors(&state)).into_response())
}

async fn hosts(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read_view(&state, &headers, api::HOSTS_SHOWN, |view| Json(api::hosts(&state, view)).into_response()).await
}

async fn queues(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read(&state, &headers, || Json(api::queues(&state)).into_response())
}

async fn errors(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read_view(&state, &headers, 0, |view| Json(api::errors(&state, view)).into_response()).await
}

async fn history(State(state): State<Shared>, headers: HeaderMap) -> Response {
    read(&state, &headers, || Json(state.collector.history()).into_response())
}

async fn workers(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.access.may_read(&headers) {
        return unauthorized();
    }
    match api::workers(&state).await {
        Ok(workers) => Json(json!({ "workers": workers })).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e }))).into_response(),
    }
}

async fn events(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.access.may_read(&headers) {
        return unauthorized();
    }
    let (recent, live) = state.collector.stream();
    Sse::new(event_stream(recent, live)).keep_alive(KeepAlive::default()).into_response()
}

/// The recent events, then the live ones, as SSE messages; a reader that lags skips what it
/// missed.
fn event_stream(
    recent: Vec<Arc<str>>,
    rx: tokio::sync::broadcast::Receiver<Arc<str>>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let recent = futures::stream::iter(recent.into_iter().map(|json| Ok(SseEvent::default().data(&*json))));
    recent.chain(futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(json) => return Some((Ok(SseEvent::default().data(&*json)), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

async fn control(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // The token first: nothing of an unauthorised request is even parsed.
    if !state.access.authorized(&headers) {
        tracing::warn!("dashboard: control request without a valid token refused");
        return unauthorized();
    }
    let request: ControlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("bad control request: {e}") })))
                .into_response()
        }
    };
    match steer(&state, request).await {
        Ok(done) => Json(json!({ "ok": true, "done": done })).into_response(),
        Err(e) => {
            let code = match e {
                ControlError::Ending => StatusCode::SERVICE_UNAVAILABLE,
                ControlError::Broker(_) => StatusCode::BAD_GATEWAY,
                ControlError::UnknownActor(_) | ControlError::UnknownWorker(_) => StatusCode::NOT_FOUND,
                ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            };
            (code, Json(json!({ "ok": false, "error": e.to_string() }))).into_response()
        }
    }
}

/// Carries out a control request here, on another worker, or everywhere.
async fn steer(state: &AppState, request: ControlRequest) -> Result<String, ControlError> {
    let target = request.worker.as_deref().filter(|w| *w != state.worker_id);
    let Some(target) = target else {
        return state.controller.apply(&request.action).await;
    };
    let Some(registry) = &state.registry else {
        return Err(ControlError::UnknownWorker(target.to_string()));
    };
    if target != "*" {
        let known = registry.workers().await.map_err(|e| ControlError::Broker(e.to_string()))?;
        if !known.iter().any(|w| w.worker == target) {
            return Err(ControlError::UnknownWorker(target.to_string()));
        }
    }
    let command = RemoteCommand {
        target: target.to_string(),
        from: state.worker_id.clone(),
        action: request.action.clone(),
    };
    registry.send(&command).await.map_err(|e| ControlError::Broker(e.to_string()))?;
    if target == "*" {
        let here = state.controller.apply(&request.action).await?;
        return Ok(format!("{here}; sent to every worker"));
    }
    Ok(format!("sent to {target}"))
}
