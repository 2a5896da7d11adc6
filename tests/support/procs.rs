//! `arachne run` as a child process, and checks of its items against the sandbox's truth:
//! what the multi-process suites (a shared frontier through Redis, Kafka, ...) share.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::sandbox::{truth, SandboxOptions, SandboxServer, Truth};
use serde_json::Value;

/// The spec's `parse:` of the sandbox's product pages (`/item/<n>`, the item `product`
/// with its `title`).
pub const PRODUCTS: &str = r#"parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: { title: "h1" }
"#;

/// A running `arachne run crawl.yaml` in its own working directory (stderr to
/// `stderr.log`, summary to `summary.json` there); killed and reaped on drop.
pub struct Arachne {
    label: &'static str,
    dir: PathBuf,
    child: Option<Child>,
}

impl Arachne {
    pub fn spawn(label: &'static str, dir: &Path, spec: &str, extra: &[&str]) -> Self {
        fs::write(dir.join("crawl.yaml"), spec).expect("write spec");
        let stderr = fs::File::create(dir.join("stderr.log")).expect("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_arachne"))
            .args(["run", "crawl.yaml", "--quiet", "--summary-json", "summary.json"])
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn arachne");
        Arachne { label, dir: dir.to_path_buf(), child: Some(child) }
    }

    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Sends `kill -<sig>` (e.g. `INT`, `TERM`) to it.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// SIGKILLs it; whether it was still running.
    pub fn sigkill(&mut self) -> bool {
        let was_running = self.running();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        was_running
    }

    /// Its exit code; panics (and the guard kills it) if it still runs at `deadline`.
    pub fn wait(&mut self, deadline: Instant) -> i32 {
        let child = self.child.as_mut().expect("not killed");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                panic!("arachne {} still runs at the deadline; stderr:\n{}", self.label, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All of its stderr.
    pub fn full_stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// The end of its stderr, for failure messages.
    pub fn stderr(&self) -> String {
        let text = fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        let cut = text.len().saturating_sub(4000);
        let cut = (cut..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text[cut..].to_string()
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn summary(&self) -> Value {
        fs::read(self.dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    pub fn pages_fetched(&self) -> u64 {
        let summary = self.summary();
        summary["pages_fetched"]
            .as_u64()
            .unwrap_or_else(|| panic!("arachne {}: no pages_fetched in the summary: {summary}", self.label))
    }

    /// Whole lines in its items.jsonl so far.
    pub fn item_lines(&self) -> usize {
        fs::read(self.dir.join("items.jsonl")).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
    }

    /// The items of its items.jsonl. A torn last line (a process SIGKILLed mid-write) is
    /// skipped when `torn_ok`; any other line must be a whole JSON object.
    pub fn items(&self, torn_ok: bool) -> Vec<Value> {
        let text = fs::read_to_string(self.dir.join("items.jsonl")).unwrap_or_default();
        let whole = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        let torn = &text[whole.len()..];
        assert!(
            torn_ok || torn.is_empty(),
            "arachne {}: a torn last line in items.jsonl: {torn}",
            self.label
        );
        whole
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad JSON line ({e}): {l}", self.label))
            })
            .collect()
    }
}

impl Drop for Arachne {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// URL -> title. With `once`, panics on a URL seen before (in this or an earlier call).
pub fn collect(into: &mut BTreeMap<String, String>, items: &[Value], once: bool) {
    for item in items {
        let url = item["url"].as_str().unwrap_or_else(|| panic!("item without url: {item}")).to_string();
        let title = item["title"].as_str().unwrap_or("<none>").to_string();
        let before = into.insert(url.clone(), title);
        assert!(!once || before.is_none(), "item {url} written twice");
    }
}

/// The items are exactly the truth's: as many, with the same titles.
pub fn assert_truth_items(got: &BTreeMap<String, String>, want: &Truth) {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &want.item_titles {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    for t in got.values() {
        *counts.entry(t.as_str()).or_default() -= 1;
    }
    let missing: Vec<&str> = counts.iter().filter(|(_, &n)| n > 0).map(|(t, _)| *t).take(10).collect();
    let extra: Vec<&str> = counts.iter().filter(|(_, &n)| n < 0).map(|(t, _)| *t).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} distinct item URLs, the truth has {} items; missing titles (first 10): {missing:?}; \
         unexpected (first 10): {extra:?}",
        got.len(),
        want.items
    );
    assert_eq!(got.len() as u64, want.items);
    assert!(got.keys().all(|u| u.contains("/item/")), "an item that is not a product page");
}

pub fn sandbox(pages: u32) -> (SandboxServer, Truth) {
    let opts = SandboxOptions { pages, traps: false };
    let want = truth(&opts, 20);
    (SandboxServer::start(opts, 0).expect("sandbox"), want)
}

/// No page of `site` was fetched twice with success.
pub fn no_page_twice(site: &SandboxServer) {
    let stats = site.stats();
    assert_eq!(
        stats.repeated_ok,
        0,
        "pages fetched twice with success (first 10): {:?}",
        stats.repeated_ok_paths.iter().take(10).collect::<Vec<_>>()
    );
}

/// Waits (bounded by `by`) until `p` wrote `at_least` items or ended.
pub fn wait_for_items(p: &mut Arachne, at_least: usize, by: Instant) {
    while p.item_lines() < at_least && Instant::now() < by && p.running() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs two processes on `spec`, each in a directory of its own (returned with them),
/// until both end with exit 0 (within `within`).
pub fn two_to_the_end(spec: &str, within: Duration) -> (Arachne, Arachne, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let deadline = Instant::now() + within;
    let mut a = Arachne::spawn("a", dirs[0].path(), spec, &[]);
    let mut b = Arachne::spawn("b", dirs[1].path(), spec, &[]);
    assert_eq!(a.wait(deadline), 0, "a:\n{}", a.stderr());
    assert_eq!(b.wait(deadline), 0, "b:\n{}", b.stderr());
    (a, b, dirs)
}

/// Shown only when a test fails: what each process said it did (its summary, warnings and
/// the shared frontier's news).
pub fn show_news(processes: &[&Arachne]) {
    for p in processes {
        let label = p.label;
        eprintln!(
            "--- {label}'s summary:\n{}\n--- {label}'s log (warnings, the frontier's news):",
            p.summary()
        );
        let log = p.log();
        let news =
            log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("frontier:"));
        for line in news.take(120) {
            eprintln!("{line}");
        }
    }
}

/// Two processes that shared one crawl: their items together are exactly the truth's (none
/// twice), no page was fetched twice with success, their fetches add up, and each did at
/// least a fifth.
pub fn assert_shared_crawl(a: &Arachne, b: &Arachne, site: &SandboxServer, want: &Truth) {
    show_news(&[a, b]);
    let stats = site.stats();
    eprintln!("--- the site: {} ok answers, by kind {:?}", stats.ok_responses, stats.by_kind);
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), true);
    collect(&mut items, &b.items(false), true);
    assert_truth_items(&items, want);
    no_page_twice(site);
    let (fetched_a, fetched_b) = (a.pages_fetched(), b.pages_fetched());
    assert_eq!(fetched_a + fetched_b, want.pages_fetched, "a: {}\nb: {}", a.summary(), b.summary());
    for (label, fetched) in [("a", fetched_a), ("b", fetched_b)] {
        assert!(
            fetched * 5 >= want.pages_fetched,
            "{label} fetched {fetched} of {} pages: less than a fair share (20%)",
            want.pages_fetched
        );
    }
}

/// Two processes on `spec` share a crawl; the second is SIGKILLed once the first wrote a
/// fifth of the items (within `kill_by` of `started`). The survivor must finish by
/// `finish_by` with exit 0, and the two together wrote every item of the truth.
pub fn kill_one_halfway(spec: &str, want: &Truth, started: Instant, kill_by: Duration, finish_by: Duration) {
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = Arachne::spawn("a", dir_a.path(), spec, &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), spec, &[]);
    wait_for_items(&mut a, (want.items * 2 / 10) as usize, started + kill_by);
    let (a_lines, b_lines) = (a.item_lines(), b.item_lines());
    let was_running = b.sigkill();
    eprintln!("killed b after {:?}: a had {a_lines} items, b {b_lines}", started.elapsed());
    assert!(was_running, "b ended before it was killed:\n{}", b.stderr());
    assert!(b_lines > 0, "b had done nothing before it was killed:\n{}", b.stderr());
    assert!(a.running(), "a ended before b was killed:\n{}", a.stderr());

    assert_eq!(a.wait(started + finish_by), 0, "the survivor:\n{}", a.stderr());
    show_news(&[&a, &b]);
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), false);
    collect(&mut items, &b.items(true), false);
    assert_truth_items(&items, want);
}

/// Runs a worker with `--queues documents` and one with `--queues default` on `spec` (whose
/// routes send the product pages to `documents`), each in its own directory, until both end
/// by themselves (by `deadline`): the first fetched exactly the product pages, the second
/// everything else, their items together are exactly the truth's, and no page was fetched
/// twice. The routing suites of each shared frontier (Redis, RabbitMQ, Kafka) share it.
pub fn assert_workers_split_the_crawl(spec: &str, site: &SandboxServer, want: &Truth, deadline: Instant) {
    let (dir_docs, dir_rest) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut docs = Arachne::spawn("documents", dir_docs.path(), spec, &["--queues", "documents"]);
    let mut rest = Arachne::spawn("default", dir_rest.path(), spec, &["--queues", "default"]);
    assert_eq!(docs.wait(deadline), 0, "documents:\n{}", docs.stderr());
    assert_eq!(rest.wait(deadline), 0, "default:\n{}", rest.stderr());

    let mut items = BTreeMap::new();
    collect(&mut items, &docs.items(false), true);
    assert_truth_items(&items, want);
    assert!(rest.items(false).is_empty(), "the default worker fetched a product page");
    no_page_twice(site);

    let (sd, sr) = (docs.summary(), rest.summary());
    assert_eq!(sd["pages_fetched"], want.items, "documents fetched the product pages:\n{sd}");
    assert_eq!(sr["pages_fetched"], want.pages_fetched - want.items, "default fetched the rest:\n{sr}");
    assert_eq!(sd["queues"]["default"]["fetched"], 0, "{sd}");
    assert_eq!(sd["queues"]["documents"]["fetched"], want.items, "{sd}");
    assert_eq!(sr["queues"]["documents"]["fetched"], 0, "{sr}");
}

/// The sandbox's request log after a crawl whose product pages (`/item/...`) were a queue
/// with the rate `per_second`: each product page was asked once, and never more than
/// `per_second` of them within one second (an upper bound, not a timing assertion).
pub fn assert_product_rate(site: &SandboxServer, want: &Truth, per_second: usize) {
    let log = site.requests();
    assert_eq!(log.dropped, 0);
    let is_product = |path: &str| path.starts_with("/item/");
    let times: Vec<u64> = log.requests.iter().filter(|r| is_product(&r.path)).map(|r| r.t_ms).collect();
    assert_eq!(times.len() as u64, want.items, "every product page once");
    let busiest = log.max_in_window(1000, is_product);
    // The tightest run of `per_second + 1` product requests, for the record (at least 1 s).
    let tightest = times.windows(per_second + 1).map(|w| w[per_second] - w[0]).min();
    eprintln!(
        "busiest second: {busiest} product requests; tightest {} in a row: {tightest:?} ms",
        per_second + 1
    );
    assert!(busiest <= per_second, "{busiest} requests of a `{per_second}/s` queue within one second");
}
