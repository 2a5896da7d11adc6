//! The HTTP side: one axum fallback handler that routes by hand, conditional requests,
//! the trap behaviours and the request statistics.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::request_log::RequestLog;
use super::site::{hash_str, Layout, Route, Trap};
use super::{render, traps, truth, SandboxOptions, HUGE_PAGE_BYTES, SLOW_PAGE_DELAY};

/// Request counts of one path (trap pages, the calendar, files, robots.txt, 404s).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PathStats {
    /// Requests for the path.
    pub requests: u64,
    /// Of those, answered with a 2xx.
    pub ok: u64,
}

/// A snapshot of the server's request counters (`/_sandbox/stats.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests, not counting `/_sandbox/` ones.
    pub total_requests: u64,
    /// Of those, answered with a 2xx.
    pub ok_responses: u64,
    /// Of those, answered `304 Not Modified`.
    pub not_modified: u64,
    /// Requests under `/private/` (disallowed by robots.txt).
    pub private_hits: u64,
    /// Requests under `/_sandbox/`.
    pub sandbox_requests: u64,
    /// 2xx answers for a path (with its query) that had already been answered with a 2xx:
    /// a crawler that fetches no page twice keeps this at 0. `robots.txt` is not counted.
    pub repeated_ok: u64,
    /// The first (at most 100) paths counted in `repeated_ok`.
    pub repeated_ok_paths: Vec<String>,
    /// Requests by kind of path: `home`, `category`, `item`, `robots`, `traps`, `trap`,
    /// `calendar`, `private`, `file`, `not_found`.
    pub by_kind: BTreeMap<String, u64>,
    /// Per-path counts for every path that is not home, a category page or an item.
    pub paths: BTreeMap<String, PathStats>,
    /// The most requests (not counting `robots.txt`) being answered at once: with a
    /// latency set ([`super::SandboxServer::set_latency`]), a crawler's concurrency as the
    /// server saw it.
    #[serde(default)]
    pub max_in_flight: u64,
}

const KINDS: [&str; 10] =
    ["home", "category", "item", "robots", "traps", "trap", "calendar", "private", "file", "not_found"];

/// Most per-path entries kept (a scan of random URLs cannot grow memory without bound).
const MAX_PATH_ENTRIES: usize = 10_000;

/// The server's counters, shared with [`super::SandboxServer`].
pub(crate) struct Stats {
    total: AtomicU64,
    ok: AtomicU64,
    not_modified: AtomicU64,
    private_hits: AtomicU64,
    sandbox: AtomicU64,
    repeated_ok: AtomicU64,
    kinds: [AtomicU64; KINDS.len()],
    /// 2xx answers per item (index = item number), saturating.
    item_ok: Vec<AtomicU8>,
    /// 2xx answers per category page (index = `cat_offset[c] + k`), saturating.
    cat_ok: Vec<AtomicU8>,
    cat_offset: Vec<usize>,
    home_ok: AtomicU8,
    paths: Mutex<HashMap<String, PathStats>>,
    repeated_paths: Mutex<Vec<String>>,
    /// When each request arrived (`/_sandbox/requests.json`).
    pub(crate) log: RequestLog,
    /// Requests (not robots.txt) being answered now, and the most at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// How long each answer (but robots.txt's) waits first, in ms.
    pub(crate) latency_ms: AtomicU64,
}

impl Stats {
    pub(crate) fn new(layout: &Layout) -> Stats {
        let mut cat_offset = Vec::with_capacity(layout.cats as usize);
        let mut total = 0usize;
        for c in 0..layout.cats {
            cat_offset.push(total);
            total += layout.cat_pages(c) as usize + 1;
        }
        Stats {
            total: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            private_hits: AtomicU64::new(0),
            sandbox: AtomicU64::new(0),
            repeated_ok: AtomicU64::new(0),
            kinds: Default::default(),
            item_ok: (0..=layout.n).map(|_| AtomicU8::new(0)).collect(),
            cat_ok: (0..total).map(|_| AtomicU8::new(0)).collect(),
            cat_offset,
            home_ok: AtomicU8::new(0),
            paths: Mutex::new(HashMap::new()),
            repeated_paths: Mutex::new(Vec::new()),
            log: RequestLog::default(),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            latency_ms: AtomicU64::new(0),
        }
    }

    /// Counts a request of `kind` on a per-path entry (if `key` is given); returns how many
    /// requests that path had before this one.
    fn request(&self, kind: usize, key: Option<&str>) -> u64 {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.kinds[kind].fetch_add(1, Ordering::Relaxed);
        let Some(key) = key else { return 0 };
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let len = paths.len();
        match paths.get_mut(key) {
            Some(p) => {
                p.requests += 1;
                p.requests - 1
            }
            None if len < MAX_PATH_ENTRIES => {
                paths.insert(key.to_string(), PathStats { requests: 1, ok: 0 });
                0
            }
            None => 0,
        }
    }

    fn repeated(&self, key: &str) {
        self.repeated_ok.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(path = key, "sandbox: page served with success again");
        let mut list = self.repeated_paths.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < 100 {
            list.push(key.to_string());
        }
    }

    fn saturating_bump(cell: &AtomicU8) -> u8 {
        let prev = cell.load(Ordering::Relaxed);
        if prev < u8::MAX {
            cell.fetch_add(1, Ordering::Relaxed)
        } else {
            prev
        }
    }

    /// Counts a 2xx answer for `route` (whose per-path key is `key`).
    fn ok(&self, route: &Route, key: &str) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        let before = match *route {
            Route::Home => Stats::saturating_bump(&self.home_ok),
            Route::Item(n) => Stats::saturating_bump(&self.item_ok[n as usize]),
            Route::Category { c, k } => {
                Stats::saturating_bump(&self.cat_ok[self.cat_offset[c as usize] + k as usize])
            }
            Route::Robots => {
                self.bump_path_ok(key);
                return;
            }
            _ => match self.bump_path_ok(key) {
                Some(before) => before.min(1) as u8,
                None => 0,
            },
        };
        if before > 0 {
            self.repeated(key);
        }
    }

    fn bump_path_ok(&self, key: &str) -> Option<u64> {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.get_mut(key).map(|p| {
            p.ok += 1;
            p.ok - 1
        })
    }

    /// A snapshot of every counter.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        StatsSnapshot {
            total_requests: self.total.load(Ordering::Relaxed),
            ok_responses: self.ok.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
            private_hits: self.private_hits.load(Ordering::Relaxed),
            sandbox_requests: self.sandbox.load(Ordering::Relaxed),
            repeated_ok: self.repeated_ok.load(Ordering::Relaxed),
            repeated_ok_paths: self.repeated_paths.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            by_kind: KINDS
                .iter()
                .zip(self.kinds.iter())
                .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed)))
                .collect(),
            paths: paths.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Shared state of one running server.
pub(crate) struct App {
    pub(crate) opts: SandboxOptions,
    pub(crate) layout: Layout,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    pub(crate) stats: Arc<Stats>,
}

impl App {
    pub(crate) fn new(opts: SandboxOptions, port: u16) -> App {
        let layout = Layout::new(&opts);
        let stats = Arc::new(Stats::new(&layout));
        App { opts, layout, base: format!("http://127.0.0.1:{port}"), stats }
    }
}

/// Serves `app` on `listener` until the future is dropped or accepting fails for good.
pub(crate) async fn run(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    tracing::info!(
        base = %app.base,
        pages = app.opts.pages,
        traps = app.opts.traps,
        "sandbox site listening"
    );
    let router = Router::new().fallback(handle).with_state(app);
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "sandbox: cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).await
}

const HTML_UTF8: &str = "text/html; charset=utf-8";

/// `Last-Modified` of a path: a fixed instant in 2025, by the path's hash.
fn last_modified(key: &str) -> SystemTime {
    // 2026-01-01T00:00:00Z, minus up to 180 days.
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    base - Duration::from_secs(hash_str(key) % (180 * 24 * 3600))
}

/// Whether the request's validators match (RFC 9110: `If-None-Match` wins over
/// `If-Modified-Since`).
fn not_modified(req: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let bare = etag.trim_start_matches("W/");
        return inm.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == bare);
    }
    if let Some(ims) = req
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        return modified <= ims;
    }
    false
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn plain(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A 200 page with `ETag` and `Last-Modified`, or a 304 when the request's validators
/// match.
fn page(
    app: &App,
    req: &HeaderMap,
    route: &Route,
    key: &str,
    ctype: &'static str,
    body: Vec<u8>,
) -> Response {
    let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
    let modified = last_modified(key);
    let lm = header_value(&httpdate::fmt_http_date(modified));
    if not_modified(req, &etag, modified) {
        app.stats.not_modified.fetch_add(1, Ordering::Relaxed);
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp.headers_mut().insert(header::ETAG, header_value(&etag));
        resp.headers_mut().insert(header::LAST_MODIFIED, lm);
        return resp;
    }
    app.stats.ok(route, key);
    let mut resp = plain(StatusCode::OK, ctype, body);
    resp.headers_mut().insert(header::ETAG, header_value(&etag));
    resp.headers_mut().insert(header::LAST_MODIFIED, lm);
    resp
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = plain(status, HTML_UTF8, format!("<a href=\"{location}\">moved</a>"));
    resp.headers_mut().insert(header::LOCATION, header_value(location));
    resp
}

fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        HTML_UTF8,
        "<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><h1>Not found</h1><p><a href=\"/\">Home</a></p></body></html>\n",
    )
}

/// One 64 KiB chunk of the huge page's filler.
fn huge_chunk() -> Bytes {
    static CHUNK: OnceLock<Bytes> = OnceLock::new();
    CHUNK
        .get_or_init(|| {
            let line = "<p>This page goes on and on, far beyond any sensible body size limit.</p>\n";
            let mut s = String::with_capacity(64 * 1024);
            while s.len() + line.len() <= 64 * 1024 {
                s.push_str(line);
            }
            while s.len() < 64 * 1024 {
                s.push(' ');
            }
            Bytes::from(s)
        })
        .clone()
}

fn huge_page() -> Response {
    let chunks = HUGE_PAGE_BYTES / (64 * 1024);
    let head = Bytes::from_static(b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Huge</title></head><body><h1>Huge</h1>\n");
    let tail = Bytes::from_static(b"</body></html>\n");
    let stream = futures::stream::iter(
        std::iter::once(head)
            .chain((0..chunks).map(|_| huge_chunk()))
            .chain(std::iter::once(tail))
            .map(Ok::<Bytes, Infallible>),
    );
    plain(StatusCode::OK, HTML_UTF8, Body::from_stream(stream))
}

fn kind_of(route: &Route) -> usize {
    let name = match route {
        Route::Home => "home",
        Route::Category { .. } => "category",
        Route::Item(_) => "item",
        Route::Robots => "robots",
        Route::Traps => "traps",
        Route::Trap(_) => "trap",
        Route::Calendar { .. } => "calendar",
        Route::Private => "private",
        Route::Image | Route::Pdf | Route::Download => "file",
        Route::NotFound | Route::TruthJson | Route::StatsJson | Route::RequestsJson => "not_found",
    };
    KINDS.iter().position(|k| *k == name).unwrap_or(KINDS.len() - 1)
}

/// A request being answered (counted in `max_in_flight` while it lives).
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn query_u32(query: Option<&str>, name: &str) -> Option<u32> {
    query?.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let uri = req.uri();
    let path = uri.path();
    let query = uri.query();
    let route = app.layout.route(path, query);
    let headers = req.headers();
    match route {
        Route::TruthJson | Route::StatsJson | Route::RequestsJson => {
            app.stats.sandbox.fetch_add(1, Ordering::Relaxed);
            return sandbox_json(&app, &route, query).await;
        }
        _ => {}
    }
    app.stats.log.record(match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    });
    let _in_flight = (route != Route::Robots).then(|| InFlight::enter(&app.stats));
    let latency = app.stats.latency_ms.load(Ordering::Relaxed);
    if latency > 0 && route != Route::Robots {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let kind = kind_of(&route);
    let normal = matches!(route, Route::Home | Route::Category { .. } | Route::Item(_));
    let key_owned;
    let key: &str = match query {
        Some(q) if !normal => {
            key_owned = format!("{path}?{q}");
            &key_owned
        }
        _ => path,
    };
    let before = app.stats.request(kind, (!normal).then_some(key));
    let layout = &app.layout;
    match route {
        Route::Home => page(&app, headers, &route, key, HTML_UTF8, render::home(layout).into_bytes()),
        Route::Category { c, k } => {
            page(&app, headers, &route, key, HTML_UTF8, render::category(layout, c, k).into_bytes())
        }
        Route::Item(n) => {
            let mut related = Vec::with_capacity(super::site::RELATED);
            layout.related(n, &mut related);
            page(&app, headers, &route, key, HTML_UTF8, render::item(layout, n, &related).into_bytes())
        }
        Route::Robots => {
            app.stats.ok(&route, key);
            plain(StatusCode::OK, "text/plain; charset=utf-8", traps::robots_txt(layout.traps))
        }
        Route::Image => {
            app.stats.ok(&route, key);
            plain(StatusCode::OK, "image/jpeg", Bytes::from_static(traps::JPEG_BYTES))
        }
        Route::Pdf => {
            app.stats.ok(&route, key);
            plain(StatusCode::OK, "application/pdf", Bytes::from_static(traps::PDF_BYTES))
        }
        Route::Download => {
            app.stats.ok(&route, key);
            let mut resp = plain(StatusCode::OK, "application/pdf", Bytes::from_static(traps::PDF_BYTES));
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"price-list.pdf\""),
            );
            resp
        }
        Route::Traps => {
            page(&app, headers, &route, key, HTML_UTF8, traps::traps_page(layout, &app.base).into_bytes())
        }
        Route::Calendar { y, m } => {
            page(&app, headers, &route, key, HTML_UTF8, traps::calendar_page(y, m).into_bytes())
        }
        Route::Private => {
            app.stats.private_hits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = key, "sandbox: request for a robots-disallowed page");
            page(&app, headers, &route, key, HTML_UTF8, traps::private_page().into_bytes())
        }
        Route::Trap(t) => trap(&app, headers, &route, key, t, before).await,
        Route::NotFound | Route::TruthJson | Route::StatsJson | Route::RequestsJson => not_found(),
    }
}

async fn trap(app: &App, headers: &HeaderMap, route: &Route, key: &str, t: Trap, before: u64) -> Response {
    match t {
        Trap::Redirect(1) => redirect(StatusCode::FOUND, "/trap/redirect/2"),
        Trap::Redirect(2) => {
            redirect(StatusCode::MOVED_PERMANENTLY, &format!("{}/trap/redirect/3", app.base))
        }
        Trap::Redirect(_) => redirect(StatusCode::FOUND, "/trap/chain-end"),
        Trap::LoopA => redirect(StatusCode::FOUND, "/trap/loop/b"),
        Trap::LoopB => redirect(StatusCode::FOUND, "/trap/loop/a"),
        Trap::Flaky if before == 0 => {
            tracing::debug!(path = key, "sandbox: first request, answering 500");
            plain(StatusCode::INTERNAL_SERVER_ERROR, HTML_UTF8, "<h1>Internal Server Error</h1>")
        }
        Trap::Busy if before == 0 => {
            tracing::debug!(path = key, "sandbox: first request, answering 503");
            let mut resp =
                plain(StatusCode::SERVICE_UNAVAILABLE, HTML_UTF8, "<h1>Busy, come back in a second</h1>");
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Trap::Slow => {
            tokio::time::sleep(SLOW_PAGE_DELAY).await;
            page(app, headers, route, key, HTML_UTF8, traps::slow_page().into_bytes())
        }
        Trap::Huge => {
            app.stats.ok(route, key);
            huge_page()
        }
        Trap::Malformed => page(app, headers, route, key, HTML_UTF8, traps::malformed_page().into_bytes()),
        Trap::Latin1 => {
            page(app, headers, route, key, "text/html; charset=windows-1252", traps::latin1_page())
        }
        Trap::ShiftJis => page(app, headers, route, key, "text/html", traps::sjis_page()),
        Trap::Base => page(app, headers, route, key, HTML_UTF8, traps::base_page().into_bytes()),
        Trap::ChainEnd | Trap::Flaky | Trap::Busy | Trap::BasedAlpha | Trap::BasedBeta => {
            page(app, headers, route, key, HTML_UTF8, traps::trap_item_page(t).into_bytes())
        }
    }
}

async fn sandbox_json(app: &Arc<App>, route: &Route, query: Option<&str>) -> Response {
    let body = match route {
        Route::StatsJson => serde_json::to_vec_pretty(&app.stats.snapshot()),
        Route::RequestsJson => serde_json::to_vec(&app.stats.log.snapshot()),
        _ => {
            let max_depth = query_u32(query, "max_depth").unwrap_or(20);
            let opts = app.opts.clone();
            match tokio::task::spawn_blocking(move || truth::truth(&opts, max_depth)).await {
                Ok(t) => serde_json::to_vec_pretty(&t),
                Err(e) => {
                    tracing::error!(error = %e, "sandbox: computing the truth failed");
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "truth failed");
                }
            }
        }
    };
    match body {
        Ok(b) => plain(StatusCode::OK, "application/json", b),
        Err(e) => {
            tracing::error!(error = %e, "sandbox: serialising JSON failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "json failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        let lm = last_modified("/item/1");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"abc\"", lm));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", \"abc\""));
        assert!(not_modified(&h, "\"abc\"", lm));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"abc\""));
        assert!(not_modified(&h, "\"abc\"", lm));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        h.insert(header::IF_MODIFIED_SINCE, header_value(&httpdate::fmt_http_date(lm)));
        assert!(!not_modified(&h, "\"abc\"", lm), "If-None-Match wins");
        h.remove(header::IF_NONE_MATCH);
        assert!(not_modified(&h, "\"abc\"", lm));
        h.insert(
            header::IF_MODIFIED_SINCE,
            header_value(&httpdate::fmt_http_date(lm - Duration::from_secs(1))),
        );
        assert!(!not_modified(&h, "\"abc\"", lm));
    }
}
