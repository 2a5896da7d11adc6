//! The sandbox site over real HTTP: a `SandboxServer` and a plain reqwest client.

use std::time::Duration;

use arachne::sandbox::{truth, RequestLogSnapshot, SandboxOptions, SandboxServer, StatsSnapshot, Truth};
use reqwest::header;
use reqwest::redirect::Policy;
use reqwest::StatusCode;

fn start(pages: u32, traps: bool) -> SandboxServer {
    SandboxServer::start(SandboxOptions { pages, traps }, 0).expect("start the sandbox")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn get(c: &reqwest::Client, url: &str) -> reqwest::Response {
    c.get(url).send().await.expect("request")
}

async fn text(c: &reqwest::Client, url: &str) -> String {
    let resp = get(c, url).await;
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.text().await.expect("body")
}

fn links(html: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("a[href]").expect("selector");
    doc.select(&sel).filter_map(|a| a.value().attr("href")).map(str::to_string).collect()
}

fn first_text(html: &str, css: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(css).expect("selector");
    doc.select(&sel).next().map(|e| e.text().collect::<String>())
}

#[tokio::test]
async fn home_links_every_category_and_the_featured_items() {
    let server = start(500, false);
    let c = client();
    let home = text(&c, &format!("{}/", server.base_url())).await;
    let l = links(&home);
    for slug in
        ["books", "music", "garden", "kitchen", "toys", "outdoor", "office", "lighting", "textiles", "tools"]
    {
        assert!(l.contains(&format!("/category/{slug}")), "{slug}");
    }
    for n in 1..=12 {
        assert!(l.contains(&format!("/item/{n}")), "featured {n}");
    }
    assert!(!l.contains(&"/traps".to_string()));
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(!server.base_url().ends_with('/'));
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{}", server.port()));
    // With traps, home links the traps page.
    let traps = start(50, true);
    let home = text(&c, &format!("{}/", traps.base_url())).await;
    assert!(links(&home).contains(&"/traps".to_string()));
}

#[tokio::test]
async fn item_pages_hold_title_price_rating_and_eleven_links() {
    let server = start(20_000, false);
    let t = truth(server.options(), 20);
    let c = client();
    for n in [1, 42, 777, 19_999] {
        let html = text(&c, &format!("{}/item/{n}", server.base_url())).await;
        let title = first_text(&html, "h1").expect("h1");
        assert!(title.ends_with(&format!("No. {n}")), "{title}");
        assert!(t.item_titles.binary_search(&title).is_ok(), "{title} in the truth");
        let price = first_text(&html, ".price").expect("price");
        assert!(price.starts_with('£') && price.contains('.'), "{price}");
        let rating = first_text(&html, ".rating").expect("rating");
        assert!(rating.ends_with(" of 5"), "{rating}");
        assert_eq!(links(&html).len(), 11, "item {n}");
        assert!((11 * 1024..=12 * 1024).contains(&html.len()), "item {n}: {} bytes", html.len());
    }
    for path in ["/category/books", "/category/music?page=2", "/category/tools?page=100", "/"] {
        let html = text(&c, &format!("{}{path}", server.base_url())).await;
        assert!((11 * 1024..=12 * 1024).contains(&html.len()), "{path}: {} bytes", html.len());
        let n = links(&html).len();
        assert!((3..=31).contains(&n), "{path}: {n} links");
    }
    // Alternative pagination URL, and pages that do not exist.
    let a = text(&c, &format!("{}/category/music?page=2", server.base_url())).await;
    let b = text(&c, &format!("{}/category/music/page/2", server.base_url())).await;
    assert_eq!(a, b);
    for path in ["/item/0", "/item/20001", "/ITEM/1", "/category/music?page=101", "/traps", "/nope"] {
        assert_eq!(get(&c, &format!("{}{path}", server.base_url())).await.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn flaky_and_busy_pages_fail_once_then_work() {
    let server = start(50, true);
    let c = client();
    let base = server.base_url();
    let r = get(&c, &format!("{base}/trap/flaky")).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let html = text(&c, &format!("{base}/trap/flaky")).await;
    assert_eq!(first_text(&html, "h1").as_deref(), Some(arachne::sandbox::FLAKY_TITLE));
    let r = get(&c, &format!("{base}/trap/busy")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    let html = text(&c, &format!("{base}/trap/busy")).await;
    assert_eq!(first_text(&html, "h1").as_deref(), Some(arachne::sandbox::BUSY_TITLE));
    text(&c, &format!("{base}/trap/busy")).await;
    let stats = server.stats();
    assert_eq!(stats.paths["/trap/flaky"].requests, 2);
    assert_eq!(stats.paths["/trap/flaky"].ok, 1);
    assert_eq!(stats.paths["/trap/busy"].requests, 3);
    assert_eq!(stats.repeated_ok, 1);
    assert_eq!(stats.repeated_ok_paths, vec!["/trap/busy".to_string()]);
}

#[tokio::test]
async fn redirect_chain_and_loop() {
    let server = start(50, true);
    let c = client();
    let base = server.base_url();
    let r = get(&c, &format!("{base}/trap/redirect/1")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[header::LOCATION], "/trap/redirect/2");
    let r = get(&c, &format!("{base}/trap/redirect/2")).await;
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.headers()[header::LOCATION].to_str().ok(), Some(format!("{base}/trap/redirect/3").as_str()));
    let r = get(&c, &format!("{base}/trap/redirect/3")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[header::LOCATION], "/trap/chain-end");
    // A following client ends on the item.
    let follow = reqwest::Client::new();
    let r = follow.get(format!("{base}/trap/redirect/1")).send().await.expect("request");
    assert_eq!(r.url().path(), "/trap/chain-end");
    let html = r.text().await.expect("body");
    assert_eq!(first_text(&html, "h1").as_deref(), Some(arachne::sandbox::CHAIN_END_TITLE));
    // The loop.
    let r = get(&c, &format!("{base}/trap/loop/a")).await;
    assert_eq!(r.headers()[header::LOCATION], "/trap/loop/b");
    let r = get(&c, &format!("{base}/trap/loop/b")).await;
    assert_eq!(r.headers()[header::LOCATION], "/trap/loop/a");
    assert!(follow.get(format!("{base}/trap/loop/a")).send().await.is_err());
}

#[tokio::test]
async fn robots_txt() {
    let c = client();
    let normal = start(50, false);
    let body = text(&c, &format!("{}/robots.txt", normal.base_url())).await;
    assert!(body.contains("User-agent: *"));
    assert!(body.contains("Disallow: /_sandbox/"));
    assert!(!body.contains("/private/"));
    let traps = start(50, true);
    let body = text(&c, &format!("{}/robots.txt", traps.base_url())).await;
    assert!(body.contains("Disallow: /_sandbox/"));
    assert!(body.contains("Disallow: /private/"));
    assert_eq!(traps.stats().private_hits, 0);
    text(&c, &format!("{}/private/admin", traps.base_url())).await;
    assert_eq!(traps.stats().private_hits, 1);
}

#[tokio::test]
async fn etag_and_last_modified_give_304() {
    let server = start(500, false);
    let c = client();
    let url = format!("{}/item/5", server.base_url());
    let r = get(&c, &url).await;
    let etag = r.headers()[header::ETAG].clone();
    let lm = r.headers()[header::LAST_MODIFIED].clone();
    assert!(httpdate::parse_http_date(lm.to_str().expect("ascii")).is_ok());
    let body = r.text().await.expect("body");
    let r = get(&c, &url).await;
    assert_eq!(r.headers()[header::ETAG], etag, "stable");
    assert_eq!(r.headers()[header::LAST_MODIFIED], lm, "stable");
    assert_eq!(r.text().await.expect("body"), body, "deterministic");
    let r = c.get(&url).header(header::IF_NONE_MATCH, etag.clone()).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()[header::ETAG], etag);
    let r = c.get(&url).header(header::IF_MODIFIED_SINCE, lm.clone()).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = c.get(&url).header(header::IF_NONE_MATCH, "\"stale\"").send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let other = get(&c, &format!("{}/item/6", server.base_url())).await;
    assert_ne!(other.headers()[header::ETAG], etag);
    assert_eq!(server.stats().not_modified, 2);
}

#[tokio::test]
async fn truth_and_stats_are_served() {
    let server = start(50, true);
    let c = client();
    let base = server.base_url();
    let served: Truth =
        serde_json::from_str(&text(&c, &format!("{base}/_sandbox/truth.json")).await).expect("json");
    assert_eq!(served, truth(&SandboxOptions { pages: 50, traps: true }, 20));
    let served: Truth =
        serde_json::from_str(&text(&c, &format!("{base}/_sandbox/truth.json?max_depth=3")).await)
            .expect("json");
    assert_eq!(served, server.truth(3));
    assert_eq!(served.calendar_pages, 3);
    text(&c, &format!("{base}/item/1")).await;
    let stats: StatsSnapshot =
        serde_json::from_str(&text(&c, &format!("{base}/_sandbox/stats.json")).await).expect("json");
    assert_eq!(stats.total_requests, 1);
    assert_eq!(stats.ok_responses, 1);
    assert_eq!(stats.by_kind["item"], 1);
    assert_eq!(stats.sandbox_requests, 3);
    assert_eq!(stats.private_hits, 0);
}

#[tokio::test]
async fn the_request_log_holds_each_request_with_its_arrival_time() {
    let server = start(50, false);
    let c = client();
    let base = server.base_url();
    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    text(&c, &format!("{base}/item/1")).await;
    text(&c, &format!("{base}/category/books")).await;
    assert_eq!(get(&c, &format!("{base}/no-such-page?x=1")).await.status(), StatusCode::NOT_FOUND);
    let served: RequestLogSnapshot =
        serde_json::from_str(&text(&c, &format!("{base}/_sandbox/requests.json")).await).expect("json");
    assert_eq!(served, server.requests());
    let paths: Vec<&str> = served.requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/item/1", "/category/books", "/no-such-page?x=1"]);
    assert_eq!(served.dropped, 0);
    assert!(served.requests.iter().all(|r| u128::from(r.t_ms) >= before - 1));
    assert!(served.requests.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    assert_eq!(served.max_in_window(60_000, |p| p.starts_with("/item/")), 1);
}

#[tokio::test]
async fn trap_pages() {
    let server = start(50, true);
    let c = client();
    let base = server.base_url();
    // The traps page: duplicates by fragment and scheme case, mailto, javascript.
    let l = links(&text(&c, &format!("{base}/traps")).await);
    assert!(l.contains(&"/item/3#reviews".to_string()));
    assert!(l.contains(&format!("HTTP://127.0.0.1:{}/item/3", server.port())));
    assert!(l.iter().any(|h| h.starts_with("mailto:")));
    assert!(l.iter().any(|h| h.starts_with("javascript:")));
    assert!(l.contains(&"/calendar/2026/11".to_string()));
    // Charsets.
    let r = get(&c, &format!("{base}/trap/latin1")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=windows-1252");
    let bytes = r.bytes().await.expect("body");
    let (html, _, bad) = encoding_rs::WINDOWS_1252.decode(&bytes);
    assert!(!bad);
    assert_eq!(first_text(&html, "h1").as_deref(), Some("Café crème"));
    let r = get(&c, &format!("{base}/trap/sjis")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html");
    let bytes = r.bytes().await.expect("body");
    assert!(std::str::from_utf8(&bytes).is_err());
    let (html, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad);
    assert!(html.contains("<meta charset=\"Shift_JIS\">"));
    assert_eq!(first_text(&html, "h1").as_deref(), Some("抹茶ラテ"));
    // Malformed HTML still has the item for html5ever.
    let html = text(&c, &format!("{base}/trap/malformed")).await;
    assert_eq!(first_text(&html, "h1").as_deref(), Some(arachne::sandbox::MALFORMED_TITLE));
    assert_eq!(first_text(&html, ".price").as_deref(), Some("£7.50"));
    assert_eq!(first_text(&html, ".rating").as_deref(), Some("3 of 5"));
    // Base href.
    let html = text(&c, &format!("{base}/trap/base")).await;
    assert!(html.contains("<base href=\"/trap/based/\">"));
    let html = text(&c, &format!("{base}/trap/based/beta?ref=base")).await;
    assert_eq!(first_text(&html, "h1").as_deref(), Some(arachne::sandbox::BASED_BETA_TITLE));
    assert_eq!(get(&c, &format!("{base}/trap/alpha")).await.status(), StatusCode::NOT_FOUND);
    // Calendar forever.
    let l = links(&text(&c, &format!("{base}/calendar/2027/1")).await);
    assert_eq!(l, vec!["/calendar/2026/12", "/calendar/2027/2", "/"]);
    // Files.
    let r = get(&c, &format!("{base}/files/catalog.pdf")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/pdf");
    assert!(r.bytes().await.expect("body").starts_with(b"%PDF-"));
    let r = get(&c, &format!("{base}/img/1.jpg")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert!(r.bytes().await.expect("body").starts_with(&[0xFF, 0xD8]));
    let r = get(&c, &format!("{base}/files/download?id=7")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/pdf");
    // Huge: streamed, no length, 3 MiB and more.
    let r = get(&c, &format!("{base}/trap/huge")).await;
    assert!(r.content_length().is_none());
    assert!(r.bytes().await.expect("body").len() >= arachne::sandbox::HUGE_PAGE_BYTES);
    // Slow: slower than a 1 s timeout.
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client");
    let err = quick.get(format!("{base}/trap/slow")).send().await.expect_err("times out");
    assert!(err.is_timeout());
}

#[test]
fn stop_shuts_the_server_down() {
    let server = start(10, false);
    let addr = format!("127.0.0.1:{}", server.port());
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    server.stop();
    assert!(std::net::TcpStream::connect(&addr).is_err());
}
