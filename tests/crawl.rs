//! End-to-end crawls of the sandbox through the `arachne` binary, checked against the
//! sandbox's own truth: exact page, item and error counts, and the exact item set.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use arachne::sandbox::{truth, SandboxOptions, SandboxServer};
use serde_json::Value;

fn arachne() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arachne"))
}

/// Runs `arachne run` on a spec text; returns (exit code, summary, items, stderr).
fn run_spec(dir: &Path, spec: &str, extra: &[&str]) -> (i32, Value, Vec<Value>, String) {
    let spec_path = dir.join("crawl.yaml");
    std::fs::write(&spec_path, spec).expect("write spec");
    let summary_path = dir.join("summary.json");
    let out = arachne()
        .arg("run")
        .arg(&spec_path)
        .arg("--summary-json")
        .arg(&summary_path)
        .arg("--quiet")
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run arachne");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = std::fs::read(&summary_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let items = std::fs::read_to_string(dir.join("items.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a whole JSON object"))
        .collect();
    (out.status.code().unwrap_or(-1), summary, items, stderr)
}

fn titles(items: &[Value]) -> Vec<String> {
    let mut t: Vec<String> =
        items.iter().map(|i| i["title"].as_str().unwrap_or("<none>").to_string()).collect();
    t.sort();
    t
}

/// The sandbox's items: its products and the items on trap pages.
const ITEM_RULES: &str = r#"
parse:
  follow: ["a[href]"]
  items:
    - name: product
      match: "/item/|/trap/(chain-end|flaky|busy|malformed|latin1|sjis|based/)"
      fields: { title: "h1", price: ".price", rating: ".rating" }
output:
  - jsonl: items.jsonl
"#;

#[test]
fn crawl_yaml_matches_the_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crawl.yaml")).expect("crawl.yaml");
    let (code, summary, items, stderr) = run_spec(dir.path(), &spec, &[]);
    assert_eq!(code, 0, "{stderr}");
    let pages = summary_pages(&spec);
    let want = truth(&SandboxOptions { pages, traps: false }, 20);
    assert_eq!(summary["pages_fetched"], want.pages_fetched, "{summary}");
    assert_eq!(summary["pages_failed"], 0, "{summary}");
    assert_eq!(summary["items"], want.items, "{summary}");
    assert_eq!(items.len() as u64, want.items);
    assert_eq!(titles(&items), want.item_titles);
    for item in &items {
        assert!(item["price"].as_str().is_some_and(|p| !p.is_empty()), "{item}");
        assert!(item["url"].as_str().is_some_and(|u| u.contains("/item/")), "{item}");
        assert!(item["fetched_at"].is_string(), "{item}");
    }
}

/// The frontier at its smallest budget spills nearly every waiting request to disk and reads
/// it back: the crawl is the same, page for page and item for item, and leaves no file.
#[test]
fn a_tiny_frontier_memory_spills_and_the_crawl_still_matches_the_truth() {
    let opts = SandboxOptions { pages: 3000, traps: false };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let want = truth(&opts, 20);
    for order in ["fifo", "lifo"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let spec = format!(
            "name: spill\nseeds: [\"{}/\"]\nfrontier: {{ memory: 64KiB, order: {order} }}\n{ITEM_RULES}",
            server.base_url()
        );
        std::fs::write(dir.path().join("crawl.yaml"), spec).expect("spec");
        let out = arachne()
            .args(["run", "crawl.yaml", "--quiet", "--summary-json", "summary.json"])
            .env("TMPDIR", &tmp)
            .current_dir(dir.path())
            .output()
            .expect("run arachne");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("waiting requests spill to disk"), "{order}: it never spilled: {stderr}");
        let summary: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).expect("summary"))
                .expect("json");
        assert_eq!(summary["pages_fetched"], want.pages_fetched, "{order}: {summary}");
        assert_eq!(summary["pages_failed"], 0, "{order}: {summary}");
        assert_eq!(summary["items"], want.items, "{order}: {summary}");
        let items: Vec<Value> = std::fs::read_to_string(dir.path().join("items.jsonl"))
            .expect("items")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(titles(&items), want.item_titles, "{order}");
        let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").collect();
        assert!(left.is_empty(), "{order}: the spill directory was left behind: {left:?}");
    }
}

/// The `pages:` of crawl.yaml's sandbox key.
fn summary_pages(spec: &str) -> u32 {
    let parsed = arachne::spec::load_str(spec, "crawl.yaml", arachne::spec::NO_OVERRIDES)
        .expect("crawl.yaml is valid");
    parsed.sandbox.expect("crawl.yaml runs the sandbox").pages
}

#[test]
fn traps_are_survived_and_counted_exactly() {
    let opts = SandboxOptions { pages: 60, traps: true };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let base = server.base_url();
    let max_depth = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "name: traps\nseeds: [\"{base}/\"]\nscope: {{ max_depth: {max_depth} }}\n\
         fetch: {{ concurrency: 16, per_host: {{ concurrency: 16 }}, timeout: 1s, retries: 2, max_body: 1MiB }}\n{ITEM_RULES}"
    );
    let (code, summary, items, stderr) = run_spec(dir.path(), &spec, &[]);
    assert_eq!(code, 0, "{stderr}");
    let want = truth(&opts, max_depth);
    assert_eq!(summary["pages_fetched"], want.pages_fetched, "{summary}\n{want:?}");
    assert_eq!(summary["pages_failed"], want.pages_failed, "{summary}\n{want:?}");
    assert_eq!(summary["items"], want.items, "{summary}");
    assert_eq!(summary["robots_blocked"], want.robots_blocked, "{summary}");
    assert_eq!(summary["redirects"], want.redirects, "{summary}");
    let errors: BTreeMap<String, u64> =
        serde_json::from_value(summary["errors"].clone()).expect("errors map");
    assert_eq!(errors, want.errors, "{summary}");
    // Malformed and non-UTF-8 pages give their items, with correctly decoded titles.
    assert_eq!(titles(&items), want.item_titles);

    let stats: Value = reqwest::blocking::get(format!("{base}/_sandbox/stats.json"))
        .and_then(|r| r.json())
        .expect("sandbox stats");
    assert_eq!(stats["private_hits"], 0, "a robots-disallowed URL was requested");
    assert_eq!(
        stats["repeated_ok"], 0,
        "a page was fetched twice with success: {}",
        stats["repeated_ok_paths"]
    );
}

#[test]
fn validate_reports_errors_with_positions_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "name: x\nseeds: [\"http://a.test/\"]\nfetch:\n  concurency: 8\n").expect("write");
    let out = arachne().arg("validate").arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:4:3"), "{stderr}");
    assert!(stderr.contains("concurrency"), "{stderr}");
    let ok = arachne()
        .arg("validate")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/crawl.yaml"))
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "ok");
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn bad_usage_exits_2() {
    let out = arachne().args(["run"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = arachne().args(["run", "/nonexistent/spec.yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scheduled_reseed_recrawls_with_304s_and_no_duplicate_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "name: refresh\nsandbox: {{ pages: 100 }}\nseeds: [\"{{sandbox}}/\"]\n\
         schedules: [{{ name: refresh, every: 2s, action: reseed }}]\n{ITEM_RULES}"
    );
    let started = std::time::Instant::now();
    let (code, summary, items, stderr) = run_spec(dir.path(), &spec, &["--stop-after", "7s"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped after about 7 s");
    assert!(summary["firings"].as_u64().unwrap_or(0) >= 3, "{summary}");
    assert!(summary["not_modified"].as_u64().unwrap_or(0) > 0, "{summary}");
    let want = truth(&SandboxOptions { pages: 100, traps: false }, 20);
    assert_eq!(items.len() as u64, want.items, "no item twice: {summary}");
    let urls: std::collections::BTreeSet<_> = items.iter().map(|i| i["url"].to_string()).collect();
    assert_eq!(urls.len(), items.len());
}

/// On a terminal the `done:` line starts on a line of its own, not glued to the progress
/// line. The run lasts two seconds (the slow page is cut off by `--stop-after`), so the
/// progress line is drawn a few times first.
#[test]
fn on_a_terminal_the_done_line_is_not_glued_to_the_progress_line() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "`script` (util-linux) is needed under CI");
        eprintln!("\n*** SKIPPED: no `script` here to give arachne a terminal ***\n");
        return;
    }
    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: true }, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "name: tty\nseeds: [\"{}/trap/slow\"]\nfetch: {{ timeout: 60s, robots_txt: ignore }}\noutput: [{{ jsonl: items.jsonl }}]\n",
        server.base_url()
    );
    std::fs::write(dir.path().join("crawl.yaml"), spec).expect("spec");
    let command = format!("{} run crawl.yaml --stop-after 2s --grace 0s", env!("CARGO_BIN_EXE_arachne"));
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains(" pages/s "), "a progress line was drawn: {text:?}");
    let at = text.find("done:").unwrap_or_else(|| panic!("no done line: {text:?}"));
    let before = &text[..at];
    assert!(before.ends_with("\r\x1b[2K") || before.ends_with('\n'), "glued: {text:?}");
}

/// docs/spec.md: a fresh run writes its jsonl output anew (a resumed `--state-dir` run
/// appends after its committed position: tests/reliability.rs).
#[test]
fn a_fresh_run_writes_its_jsonl_output_anew() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("items.jsonl"), "{\"stale\":true}\n").expect("stale output");
    let spec = format!("name: fresh\nsandbox: {{ pages: 20 }}\nseeds: [\"{{sandbox}}/\"]\n{ITEM_RULES}");
    let (code, _, items, stderr) = run_spec(dir.path(), &spec, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i.get("stale").is_none()), "the old content is gone");
}

/// Serves `pages` (path -> HTML) on 127.0.0.1 until the test process ends; 404 otherwise.
fn serve_pages(pages: BTreeMap<String, String>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let pages = std::sync::Arc::new(pages);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let pages = pages.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let Ok(mut out) = conn.try_clone() else { return };
                let mut reader = BufReader::new(conn);
                // One request per loop (keep-alive), each head read to its blank line.
                for _ in 0..10_000 {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim().is_empty() {
                            break;
                        }
                    }
                    let (status, body) = match pages.get(&path) {
                        Some(b) => ("200 OK", b.as_str()),
                        None => ("404 Not Found", "not here"),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if out.write_all(head.as_bytes()).and_then(|()| out.write_all(body.as_bytes())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

/// With the default `follow`, a page linked only from `<noscript><iframe src>` (mdBook's
/// table of contents) is crawled; a source page with 74,000 `#line` anchors to itself is
/// read whole (the link after them is followed); a page with more distinct links than the
/// cap is named in the summary with the number dropped.
#[test]
fn noscript_links_and_the_link_cap_end_to_end() {
    use arachne::crawl::extract::MAX_LINKS;
    let page = |title: &str, body: &str| {
        format!("<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
    };
    let mut anchors = String::new();
    for i in 1..=74_000 {
        anchors.push_str(&format!("<a href=\"#{i}\" id=\"{i}\">{i}</a>\n"));
    }
    anchors.push_str("<a href=\"../ch2.html\">next</a>");
    let many: String = (0..MAX_LINKS + 10).map(|i| format!("<a href=\"/many/{i}.html\">{i}</a>\n")).collect();
    let pages: BTreeMap<String, String> = [
        (
            "/book/index.html",
            page(
                "Index",
                r#"<noscript><iframe class="sidebar-iframe-outer" src="toc.html"></iframe></noscript>"#,
            ),
        ),
        (
            "/book/toc.html",
            page(
                "Contents",
                r#"<ol><li><a href="ch1.html">1</a></li><li><a href="src/lib.rs.html">src</a></li></ol>"#,
            ),
        ),
        ("/book/ch1.html", page("Chapter 1", r#"<a href="big.html">big</a>"#)),
        ("/book/src/lib.rs.html", page("lib.rs", &anchors)),
        ("/book/ch2.html", page("Chapter 2", "")),
        ("/book/big.html", page("Big", &many)),
    ]
    .into_iter()
    .map(|(p, b)| (p.to_string(), b))
    .collect();
    let base = serve_pages(pages);
    let dir = tempfile::tempdir().expect("tempdir");
    // big.html is at depth 3: its links are not fetched, but the cap is applied first.
    let spec = format!(
        "name: book\nseeds: [\"{base}/book/index.html\"]\nscope: {{ max_depth: 3 }}\nfetch: {{ timeout: 10s }}\n\
         parse:\n  items:\n    - name: page\n      match: \".\"\n      fields: {{ title: h1 }}\noutput:\n  - jsonl: items.jsonl\n"
    );
    let (code, summary, items, stderr) = run_spec(dir.path(), &spec, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(titles(&items), ["Big", "Chapter 1", "Chapter 2", "Contents", "Index", "lib.rs"], "{summary}");
    assert_eq!(summary["pages_fetched"], 6, "{summary}");
    assert_eq!(summary["links_dropped"], 10, "{summary}");
    assert_eq!(summary["links_dropped_pages"][format!("{base}/book/big.html")], 10, "{summary}");
    assert!(!stderr.contains("too hostile"), "{stderr}");
}
