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
