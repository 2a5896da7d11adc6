//! The dashboard in a real browser: headless Chromium loads it during a crawl of the
//! sandbox, a screenshot is taken, the pause button stops the crawl (the fetched count stops
//! growing), the resume button starts it again, and the crawl ends with every item.
//!
//! Chromium comes from Debian (scripts/chromium.sh, sourced by scripts/test.sh). Without it
//! the test is skipped loudly, except under CI, where that is a failure.

#[path = "support/cdp.rs"]
mod cdp;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arachne::sandbox::{truth, SandboxOptions};
use serde_json::Value;

const PAGES: u32 = 100;

fn status(base: &str) -> Value {
    reqwest::blocking::get(format!("{base}api/status")).and_then(|r| r.json()).expect("status")
}

fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(text: &str) -> u64 {
    text.replace(',', "").trim().parse().unwrap_or(0)
}

#[test]
fn pause_and_resume_from_the_browser() {
    let Some(chromium) = cdp::find_chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed under CI: scripts/test.sh installs it (scripts/chromium.sh)");
        }
        eprintln!("\n*** SKIPPED pause_and_resume_from_the_browser: no chromium (scripts/chromium.sh installs it) ***\n");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // 5 pages a second until the browser has paused and resumed it; then no limit.
    let spec = format!(
        "name: browser\nsandbox: {{ pages: {PAGES} }}\nseeds: [\"{{sandbox}}/\"]\nfetch: {{ per_host: {{ rate: 5 }} }}\n\
         parse:\n  follow: [\"a[href]\"]\n  items:\n    - name: product\n      match: \"/item/\\\\d+$\"\n      fields: {{ title: \"h1\", price: \".price\" }}\n\
         output: [{{ jsonl: items.jsonl }}]\n"
    );
    std::fs::write(dir.path().join("crawl.yaml"), spec).expect("write spec");
    let mut run = Command::new(env!("CARGO_BIN_EXE_arachne"))
        .args(["run", "crawl.yaml", "--quiet", "--dashboard", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn arachne");
    let mut lines = BufReader::new(run.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("arachne printed its dashboard").expect("line");
        if let Some(url) = line.strip_prefix("dashboard: ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let (base, token) =
        url.split_once("#token=").map(|(b, t)| (b.to_string(), t.to_string())).expect("token");

    let browser = cdp::Browser::launch(&chromium);
    let mut page = browser.page();
    page.navigate(&url);
    wait_until(Duration::from_secs(30), "the page shows pages being fetched", || {
        page.text("state") == "running"
            && count(&page.text("fetched")) >= 15
            && count(&page.text("items")) > 0
    });
    assert!(page.text("actors").contains("scheduler"), "the actor tree is on the page");
    assert!(page.text("hosts").contains("127.0.0.1"), "the hosts table is on the page");
    // The token came in the URL's fragment and is kept by the page, not in its address.
    assert_eq!(page.eval("document.getElementById('token').value"), Value::String(token.clone()));
    assert!(!page.eval("location.href").as_str().unwrap_or_default().contains("token"));

    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real screenshot");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", shot.display());

    page.click("pause");
    wait_until(Duration::from_secs(10), "the page says paused", || page.text("state") == "paused");
    wait_until(Duration::from_secs(30), "what was in flight has finished", || {
        status(&base)["in_flight"] == 0
    });
    let paused_at = status(&base)["summary"]["pages_fetched"].as_u64().expect("count");
    let want = truth(&SandboxOptions { pages: PAGES, traps: false }, 20);
    assert!(paused_at < want.pages_fetched, "paused before the end ({paused_at} pages)");
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&base);
    assert_eq!(s["summary"]["pages_fetched"].as_u64(), Some(paused_at), "paused: the count stops growing");
    assert_eq!(s["state"], "paused");
    wait_until(Duration::from_secs(5), "the page shows the paused count", || {
        count(&page.text("fetched")) == paused_at
    });

    page.click("resume");
    wait_until(Duration::from_secs(10), "the page says running", || page.text("state") == "running");
    // From here on, no rate limit: the default-rate box and its button, as an operator would.
    page.eval("document.getElementById('defrate').value = '0'");
    page.click("setdefrate");
    wait_until(Duration::from_secs(10), "the crawl goes on", || {
        status(&base)["summary"]["pages_fetched"].as_u64() > Some(paused_at)
    });
    let exit = run.wait().expect("wait for arachne");
    assert!(exit.success(), "{exit:?}");

    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items");
    let mut titles: Vec<String> = items
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json line")["title"].as_str().unwrap_or("").to_string()
        })
        .collect();
    titles.sort();
    assert_eq!(titles.len() as u64, want.items);
    let mut want_titles = want.item_titles.clone();
    want_titles.sort();
    assert_eq!(titles, want_titles, "the full item set");
}
