//! The built-in sandbox site: a deterministic demo shop on 127.0.0.1 that crawls, tests and
//! benchmarks run against (`arachne sandbox`, or `sandbox:` in a crawl spec).
//!
//! # URL layout (normal mode)
//! - `/`: links to every category's first page, the featured items (items `1..=12`) and,
//!   with traps, `/traps`.
//! - `/category/<slug>` and `/category/<slug>?page=<k>` (also served, never linked, as
//!   `/category/<slug>/page/<k>`): 20 items per page. There are `min(10, ceil(pages/20))`
//!   categories (`books`, `music`, `garden`, `kitchen`, `toys`, `outdoor`, `office`,
//!   `lighting`, `textiles`, `tools`); item `n` is in category `(n-1) % categories`.
//!   Pagination is a tree of fan-out 8: page `k` links to pages `8(k-1)+2 ..= 8k+1`.
//! - `/item/<n>` for `n` in `1..=pages`: `<h1>` title, `<span class="price">£12.34</span>`,
//!   `<p class="rating">4 of 5</p>`, a description, and 8 related items.
//! - `/img/<x>.jpg` (`image/jpeg`), `/files/catalog.pdf` and `/files/download?id=<x>`
//!   (`application/pdf`), `/robots.txt` (`Disallow: /_sandbox/`),
//!   `/_sandbox/truth.json?max_depth=D` (default 20), `/_sandbox/stats.json` and
//!   `/_sandbox/requests.json` (each request's arrival time and path, the last
//!   [`REQUEST_LOG_CAPACITY`] kept: see [`RequestLogSnapshot::max_in_window`]).
//!
//! Every page carries three nav links (home, its category, the next category); item pages
//! have 11 links in all, category pages 3 + up to 20 items + up to 8 child pages. Normal
//! pages are padded to 11.1–11.7 KiB. HTML pages carry a content-hash `ETag` and a fixed
//! `Last-Modified`, and `If-None-Match` / `If-Modified-Since` get a `304`.
//!
//! # Depth
//! Every page's depth is the same by any path, whatever order a concurrent crawler
//! discovers links in: each link goes either to a page linked from home (depth ≤ 1, known
//! as soon as home is parsed) or to a page exactly one deeper than the linking page
//! (category page `k` at pagination level `l` is at depth `l + 1`, its items at `l + 2`, and
//! an item's related items are on pages one level down). The deepest normal page is at
//! depth **5 for up to 117,000 pages** (e.g. 20,000 pages: depth 5; 500 pages: depth 3),
//! and 6 up to 936,200 pages. Tested in `truth::tests::depth_is_path_independent_and_bounded`.
//!
//! # Traps (`traps: true`)
//! Linked from `/traps` (depth 1, linked from home), so each trap URL is at depth 2:
//! - `/trap/redirect/1` →302→ `/trap/redirect/2` →301 (absolute URL)→ `/trap/redirect/3`
//!   →302→ `/trap/chain-end`, an item reachable only through the chain (3 redirect hops;
//!   the item keeps depth 2).
//! - `/trap/loop/a` →302→ `/trap/loop/b` →302→ `/trap/loop/a` (one hop, then a loop).
//! - 404s: `/item/<pages+1>`, `/no-such-page`, `/ITEM/3` (paths are case-sensitive).
//! - `/trap/flaky`: 500 on the first request to it (per server, per path), then an item.
//! - `/trap/busy`: 503 with `Retry-After: 1` on the first request, then an item.
//! - `/trap/slow`: answers after [`SLOW_PAGE_DELAY`] (5 s).
//! - `/trap/huge`: [`HUGE_PAGE_BYTES`] (3 MiB) of HTML, streamed without a length.
//! - `/trap/malformed`: broken HTML holding an item.
//! - `/trap/latin1`: windows-1252 declared in the Content-Type header (item "Café crème");
//!   `/trap/sjis`: Shift_JIS declared only by `<meta charset>` (item "抹茶ラテ").
//! - `/item/3#reviews` and `HTTP://127.0.0.1:PORT/item/3`: the featured item 3 again.
//! - `/private/`, `/private/admin`, `/private/orders?id=7`: disallowed by robots.txt
//!   (`Disallow: /private/`); requests are counted as `private_hits`.
//! - `/calendar/2026/11`: an endless calendar (prev/next month forever), linked from `/traps`
//!   only; a crawl with `max_depth` D ≥ 2 fetches exactly `1 + 2(D-2)` months.
//! - `/files/catalog.pdf`, `/img/1.jpg` (binary extensions, not fetched) and
//!   `/files/download?id=7` (a PDF without an extension: fetched, 2xx, not HTML).
//! - `mailto:` and `javascript:` links.
//! - `/trap/base`: `<base href="/trap/based/">` with relative links `alpha` and
//!   `beta?ref=base`, items at `/trap/based/alpha` and `/trap/based/beta` (depth 3).
//!
//! See [`Truth`] for what a correct crawler sees, and [`truth`] to compute it.
//!
//! ```
//! use arachne::sandbox::{truth, SandboxOptions};
//!
//! // What a full crawl of a 50-page sandbox must find, computed without crawling it.
//! let expected = truth(&SandboxOptions { pages: 50, traps: false }, 20);
//! assert_eq!(expected.item_titles.len() as u64, expected.items);
//! assert!(expected.pages_fetched > 50, "item pages, categories and the home page");
//! ```
//!

// Used by the server; the truth alone needs less of them.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) mod render;
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
mod request_log;
#[cfg(feature = "sandbox")]
mod server;
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) mod site;
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) mod traps;
mod truth;

#[cfg(feature = "sandbox")]
use std::sync::Arc;
#[cfg(feature = "sandbox")]
use std::thread::JoinHandle;
use std::time::Duration;

pub use request_log::{RequestLogSnapshot, RequestRecord, REQUEST_LOG_CAPACITY};
#[cfg(feature = "sandbox")]
pub use server::{PathStats, StatsSnapshot};
pub use traps::{
    BASED_ALPHA_TITLE, BASED_BETA_TITLE, BUSY_TITLE, CALENDAR_START, CHAIN_END_TITLE, FLAKY_TITLE,
    LATIN1_TITLE, MALFORMED_TITLE, SJIS_TITLE,
};
pub use truth::{truth, Truth, ERROR_KINDS};

/// How long `/trap/slow` waits before answering (longer than the 1 s timeout tests use).
pub const SLOW_PAGE_DELAY: Duration = Duration::from_secs(5);

/// Size of `/trap/huge`'s filler (its body is a little more), larger than the 1 MiB
/// `max_body` tests use.
pub const HUGE_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// The most item pages a sandbox serves (its layout is computed up front, so the number
/// decides its memory).
pub const MAX_PAGES: u32 = 1_000_000;

/// Checks a number of sandbox pages: the one rule for `sandbox.pages` in a spec and for
/// `arachne sandbox --pages`.
pub fn check_pages(pages: u32) -> Result<u32, String> {
    if (1..=MAX_PAGES).contains(&pages) {
        Ok(pages)
    } else {
        Err(format!("the sandbox has from 1 to {MAX_PAGES} pages (found {pages})"))
    }
}

/// Options of the sandbox site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Number of item pages (at least 1 is served).
    pub pages: u32,
    /// Add the trap pages.
    pub traps: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions { pages: 500, traps: false }
    }
}

#[cfg(feature = "sandbox")]
/// Serves the sandbox site on `listener` until an accept error ends it (it normally runs
/// forever). Links the site writes with a host use `http://127.0.0.1:<listener's port>`.
pub async fn serve(listener: tokio::net::TcpListener, opts: SandboxOptions) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let app = Arc::new(server::App::new(opts, port));
    server::run(listener, app).await
}

/// A sandbox site running on its own thread (with its own single-threaded tokio runtime),
/// on 127.0.0.1. Dropping it, or [`SandboxServer::stop`], shuts it down and joins the thread.
#[cfg(feature = "sandbox")]
pub struct SandboxServer {
    port: u16,
    opts: SandboxOptions,
    stats: Arc<server::Stats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[cfg(feature = "sandbox")]
impl std::fmt::Debug for SandboxServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxServer").field("port", &self.port).field("opts", &self.opts).finish()
    }
}

#[cfg(feature = "sandbox")]
impl SandboxServer {
    /// Binds 127.0.0.1:`port` (0 = a free port) and starts serving; returns once the socket
    /// is listening (connections queue until the server thread accepts them).
    pub fn start(opts: SandboxOptions, port: u16) -> std::io::Result<SandboxServer> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let app = Arc::new(server::App::new(opts.clone(), port));
        let stats = app.stats.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("arachne-sandbox".to_string()).spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "sandbox: cannot register the listener");
                        return;
                    }
                };
                tokio::select! {
                    res = server::run(listener, app) => {
                        if let Err(e) = res {
                            tracing::error!(error = %e, "sandbox server stopped");
                        }
                    }
                    _ = rx => {}
                }
            });
            // Requests still in flight (the slow page) are dropped here.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(SandboxServer { port, opts, stats, shutdown: Some(tx), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options it serves.
    pub fn options(&self) -> &SandboxOptions {
        &self.opts
    }

    /// The request counters (the same as `/_sandbox/stats.json`).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Makes every answer but robots.txt's wait `latency` first (0: none, the default), so
    /// that a crawler's concurrency shows in [`StatsSnapshot::max_in_flight`].
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.stats.latency_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The requests it received, in arrival order, with their arrival times (the same as
    /// `/_sandbox/requests.json`; `/_sandbox/` requests are not in it).
    pub fn requests(&self) -> RequestLogSnapshot {
        self.stats.log.snapshot()
    }

    /// The truth for this site and a crawl limited to `max_depth`.
    pub fn truth(&self, max_depth: u32) -> Truth {
        truth(&self.opts, max_depth)
    }

    /// Shuts the server down and joins its thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("sandbox server thread panicked");
            }
        }
    }
}

#[cfg(feature = "sandbox")]
impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// The sandbox site, in a build without the `sandbox` feature: [`SandboxServer::start`]
/// says so (a spec with `sandbox:` is then a clear error at start), and no server exists.
#[cfg(not(feature = "sandbox"))]
#[derive(Debug)]
pub struct SandboxServer {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "sandbox"))]
impl SandboxServer {
    /// Always an error: this build has no sandbox server.
    pub fn start(_: SandboxOptions, _: u16) -> std::io::Result<SandboxServer> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this build has no sandbox support: rebuild with --features sandbox",
        ))
    }

    /// `http://127.0.0.1:PORT` (never called: no server exists).
    pub fn base_url(&self) -> String {
        match self.never {}
    }

    /// The port (never called: no server exists).
    pub fn port(&self) -> u16 {
        match self.never {}
    }

    /// The options (never called: no server exists).
    pub fn options(&self) -> &SandboxOptions {
        match self.never {}
    }

    /// The truth for this site (never called: no server exists).
    pub fn truth(&self, _: u32) -> Truth {
        match self.never {}
    }

    /// Shuts the server down (never called: no server exists).
    pub fn stop(self) {
        match self.never {}
    }
}

#[cfg(not(feature = "sandbox"))]
impl Drop for SandboxServer {
    fn drop(&mut self) {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::site::{Layout, Route};
    use super::*;

    fn parse_links(html: &str) -> Vec<String> {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("a[href]").expect("selector");
        doc.select(&sel).filter_map(|a| a.value().attr("href")).map(str::to_string).collect()
    }

    /// The links in every rendered page are exactly the ones the truth follows.
    #[test]
    fn rendered_links_match_the_model() {
        let base = "http://127.0.0.1:4242";
        for (pages, traps) in [(25, true), (2_000, false), (20_000, false)] {
            let opts = SandboxOptions { pages, traps };
            let layout = Layout::new(&opts);
            let mut routes = vec![Route::Home];
            for c in 0..layout.cats {
                for k in [1, 2, 9, 10, layout.cat_pages(c)] {
                    if k <= layout.cat_pages(c) {
                        routes.push(Route::Category { c, k });
                    }
                }
            }
            for n in [1, 2, 12, 13, 57, 400, 1999, 20_000] {
                if n <= pages {
                    routes.push(Route::Item(n));
                }
            }
            for route in routes {
                let html = match &route {
                    Route::Home => render::home(&layout),
                    Route::Category { c, k } => render::category(&layout, *c, *k),
                    Route::Item(n) => {
                        let mut related = Vec::new();
                        layout.related(*n, &mut related);
                        render::item(&layout, *n, &related)
                    }
                    _ => unreachable!(),
                };
                let (model, _) = truth::page_links(&layout, &route, base);
                let mut parsed = parse_links(&html);
                let mut model = model;
                parsed.sort();
                model.sort();
                assert_eq!(parsed, model, "{route:?}");
            }
            if traps {
                let traps_html = traps::traps_page(&layout, base);
                let (model, _) = truth::page_links(&layout, &Route::Traps, base);
                assert_eq!(parse_links(&traps_html), model);
                for (t, html) in [
                    (site::Trap::Malformed, traps::malformed_page()),
                    (site::Trap::Base, traps::base_page()),
                    (site::Trap::ChainEnd, traps::trap_item_page(site::Trap::ChainEnd)),
                    (site::Trap::Slow, traps::slow_page()),
                ] {
                    let (model, _) = truth::page_links(&layout, &Route::Trap(t), base);
                    assert_eq!(parse_links(&html), model, "{t:?}");
                }
                let cal = traps::calendar_page(2026, 11);
                let (model, _) = truth::page_links(&layout, &Route::Calendar { y: 2026, m: 11 }, base);
                assert_eq!(parse_links(&cal), model);
                for (bytes, enc) in [
                    (traps::latin1_page(), encoding_rs::WINDOWS_1252),
                    (traps::sjis_page(), encoding_rs::SHIFT_JIS),
                ] {
                    let (text, _, _) = enc.decode(&bytes);
                    assert_eq!(parse_links(&text), vec!["/".to_string(), "/category/books".to_string()]);
                }
            }
        }
    }

    /// The malformed page still has an h1, a .price and a .rating for html5ever.
    #[test]
    fn malformed_page_still_holds_an_item() {
        let doc = scraper::Html::parse_document(&traps::malformed_page());
        let text = |css: &str| {
            let sel = scraper::Selector::parse(css).expect("selector");
            doc.select(&sel).next().map(|e| e.text().collect::<String>())
        };
        assert_eq!(text("h1").as_deref(), Some(MALFORMED_TITLE));
        assert_eq!(text(".price").as_deref(), Some("£7.50"));
        assert_eq!(text(".rating").as_deref(), Some("3 of 5"));
    }

    /// Normal pages: 11–12 KiB, item pages 11 links, one h1/.price/.rating.
    #[test]
    fn page_shape() {
        let layout = Layout::new(&SandboxOptions { pages: 20_000, traps: false });
        let mut related = Vec::new();
        for n in [1, 13, 500, 7_777, 20_000] {
            layout.related(n, &mut related);
            let html = render::item(&layout, n, &related);
            assert!((11 * 1024..=12 * 1024).contains(&html.len()), "item {n}: {}", html.len());
            assert_eq!(parse_links(&html).len(), 11, "item {n}");
            let doc = scraper::Html::parse_document(&html);
            let sel = scraper::Selector::parse("h1").expect("selector");
            let h1: String = doc.select(&sel).next().map(|e| e.text().collect()).unwrap_or_default();
            assert_eq!(h1, site::item_title(n));
        }
        let (mut min, mut max, mut sum) = (usize::MAX, 0, 0);
        for n in (1..=20_000).step_by(37) {
            layout.related(n, &mut related);
            let len = render::item(&layout, n, &related).len();
            assert!((11 * 1024..=12 * 1024).contains(&len), "item {n}: {len}");
            (min, max, sum) = (min.min(len), max.max(len), sum + len);
        }
        eprintln!("item pages: {min}..={max} bytes, mean {}", sum / 541);
        for (c, k) in [(0, 1), (3, 7), (9, 100), (5, 55), (2, 3)] {
            let html = render::category(&layout, c, k);
            assert!((11 * 1024..=12 * 1024).contains(&html.len()), "category {c} {k}: {}", html.len());
        }
        let home = render::home(&layout);
        assert!((11 * 1024..=12 * 1024).contains(&home.len()), "home: {}", home.len());
    }
}

#[cfg(all(test, not(feature = "sandbox")))]
mod not_built_tests {
    #[test]
    fn starting_says_the_feature_is_missing() {
        let err = super::SandboxServer::start(super::SandboxOptions::default(), 0).err().expect("refused");
        assert_eq!(err.to_string(), "this build has no sandbox support: rebuild with --features sandbox");
    }
}
