//! The dashboard: `/metrics` parsed as Prometheus text and checked against the run's
//! summary, the token rules of control, the CLI, and two processes sharing a Redis frontier
//! on one dashboard. The browser test is tests/dashboard_browser.rs.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::observe::dashboard::{Dashboard, DashboardError, DashboardOptions};
use arachne::runtime::Runtime;
use arachne::sandbox::{truth, SandboxOptions, SandboxServer};
use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{json, Value};

const ITEM_RULES: &str = r#"
parse:
  follow: ["a[href]"]
  items:
    - name: product
      match: "/item/|/trap/(chain-end|flaky|busy|malformed|latin1|sjis|based/)"
      fields: { title: "h1", price: ".price" }
"#;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

fn get_json(base: &str, path: &str) -> Value {
    http().get(format!("{base}{path}")).send().and_then(|r| r.json()).expect("dashboard answers JSON")
}

fn control(base: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http().post(format!("{base}api/control")).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().expect("dashboard answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of one sample (`labels` all match), or 0 when absent.
fn sample(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

fn parse_metrics(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text")
}

#[test]
fn metrics_parse_and_agree_with_the_summary() {
    let opts = SandboxOptions { pages: 60, traps: true };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let items = dir.path().join("items.jsonl");
    // The hourly schedule keeps the run up once the crawl is done, so that the finished
    // crawl can be scraped; the test then stops it through the control API.
    let yaml = format!(
        "name: metrics\nseeds: [\"{}/\"]\nscope: {{ max_depth: 8 }}\n\
         fetch: {{ concurrency: 16, per_host: {{ concurrency: 16 }}, timeout: 1s, retries: 2, max_body: 1MiB }}\n\
         output: [{{ jsonl: \"{}\" }}]\nschedules: [{{ name: keep, every: 1h, publish: {{ topic: keepalive }} }}]\n{ITEM_RULES}",
        server.base_url(),
        items.display()
    );
    let spec = arachne::spec::load_str(&yaml, "metrics.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let dashboard = Dashboard::bind(DashboardOptions::loopback(0)).expect("bind");
    let base = dashboard.url();
    let token = dashboard.token().to_string();
    let run = std::thread::spawn(move || Runtime::builder(spec).dashboard(dashboard).run());
    let want = truth(&opts, 8);

    wait_until(Duration::from_secs(60), "the crawl is done", || {
        let s = get_json(&base, "api/status");
        s["summary"]["pages_fetched"] == json!(want.pages_fetched)
            && s["summary"]["pages_failed"] == json!(want.pages_failed)
            && s["outstanding"] == json!(0)
            && s["in_flight"] == json!(0)
    });
    // The sinks flush every second: wait until every item is written.
    wait_until(Duration::from_secs(10), "the sink wrote every item", || {
        let m = parse_metrics(
            &http().get(format!("{base}metrics")).send().and_then(|r| r.text()).expect("scrape"),
        );
        sample(&m, "arachne_sink_items_total", &[]) == want.items as f64
    });
    let response = http().get(format!("{base}metrics")).send().expect("scrape");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let scrape = parse_metrics(&response.text().expect("body"));

    let (code, answer) = control(&base, Some(&token), json!({ "action": "stop" }));
    assert_eq!(code, 200, "{answer}");
    let summary = run.join().expect("run thread").expect("run");

    // Types.
    let kind = |metric: &str| {
        scrape.samples.iter().find(|s| s.metric == metric).map(|s| match s.value {
            Metric::Counter(_) => "counter",
            Metric::Gauge(_) => "gauge",
            Metric::Histogram(_) => "histogram",
            Metric::Summary(_) => "summary",
            Metric::Untyped(_) => "untyped",
        })
    };
    for counter in [
        "arachne_pages_fetched_total",
        "arachne_items_total",
        "arachne_response_bytes_total",
        "process_cpu_seconds_total",
    ] {
        assert_eq!(kind(counter), Some("counter"), "{counter}");
    }
    for gauge in [
        "arachne_in_flight_requests",
        "arachne_frontier_requests",
        "arachne_queue_depth",
        "process_resident_memory_bytes",
    ] {
        assert_eq!(kind(gauge), Some("gauge"), "{gauge}");
    }
    assert_eq!(kind("arachne_request_duration_seconds"), Some("histogram"));
    for documented in
        ["arachne_pages_failed_total", "arachne_dead_letters_total", "arachne_actor_restarts_total"]
    {
        assert!(scrape.docs.contains_key(documented), "no HELP for {documented}");
    }

    // Values: the summary's.
    assert_eq!(summary.pages_fetched, want.pages_fetched);
    assert_eq!(sample(&scrape, "arachne_pages_fetched_total", &[]), summary.pages_fetched as f64);
    assert_eq!(
        sample(&scrape, "arachne_pages_fetched_total", &[("status", "200")]),
        summary.pages_fetched as f64
    );
    assert_eq!(sample(&scrape, "arachne_pages_failed_total", &[]), summary.pages_failed as f64);
    let failed_by_kind: BTreeMap<String, u64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "arachne_pages_failed_total")
        .filter_map(|s| match s.value {
            Metric::Counter(v) => Some((s.labels.get("kind")?.to_string(), v as u64)),
            _ => None,
        })
        .collect();
    let summary_errors: BTreeMap<String, u64> =
        summary.errors.clone().into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(failed_by_kind, summary_errors);
    assert!(summary.pages_failed > 0, "the traps fail some pages: {summary:?}");
    assert_eq!(sample(&scrape, "arachne_items_total", &[]), summary.items as f64);
    assert_eq!(sample(&scrape, "arachne_sink_items_total", &[]), summary.items as f64);
    assert_eq!(sample(&scrape, "arachne_response_bytes_total", &[]), summary.bytes as f64);
    assert_eq!(sample(&scrape, "arachne_redirects_total", &[]), summary.redirects as f64);
    assert_eq!(sample(&scrape, "arachne_retries_total", &[]), summary.retries as f64);
    assert_eq!(sample(&scrape, "arachne_robots_blocked_total", &[]), summary.robots_blocked as f64);
    assert_eq!(sample(&scrape, "arachne_dead_letters_total", &[]), summary.dead_letters as f64);
    assert_eq!(sample(&scrape, "arachne_redeliveries_total", &[]), summary.redeliveries as f64);
    assert_eq!(sample(&scrape, "arachne_actor_restarts_total", &[]), summary.restarts as f64);
    assert_eq!(sample(&scrape, "arachne_in_flight_requests", &[]), 0.0);
    assert!(sample(&scrape, "process_resident_memory_bytes", &[]) > 0.0);

    // One host, whose histogram counted every request that ended: each fetched or failed
    // page, and each redirect hop (a redirect that is followed is a request of its own).
    let host = server.base_url().trim_start_matches("http://").to_string();
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "arachne_request_duration_seconds" && s.labels.get("host") == Some(host.as_str())
        })
        .expect("a latency histogram for the sandbox host");
    let Metric::Histogram(buckets) = &histogram.value else { panic!("not a histogram") };
    let inf = buckets.iter().find(|b| b.less_than.is_infinite()).expect("+Inf bucket").count;
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count), "cumulative buckets");
    let ended = (summary.pages_fetched + summary.pages_failed) as f64 - redirect_failures(&summary);
    let most = (summary.pages_fetched + summary.pages_failed + summary.redirects) as f64;
    assert!(inf >= ended && inf <= most, "{inf} requests, {summary:?}");
    let _ = std::fs::remove_dir_all(dir.path());
}

/// Redirect loops and over-long chains fail at the scheduler: the failure is not a request
/// of its own (the hop that led there was, without counting as a followed redirect).
fn redirect_failures(summary: &arachne::observe::Summary) -> f64 {
    ["redirect_loop", "too_many_redirects"]
        .iter()
        .map(|k| summary.errors.get(*k).copied().unwrap_or(0) as f64)
        .sum()
}

/// `arachne run` with `--dashboard 127.0.0.1:0`; returns the child and the dashboard's
/// browser URL (with its made-up token) from its first line.
fn spawn_run(dir: &Path, yaml: &str) -> (Child, String) {
    let spec = dir.join("crawl.yaml");
    std::fs::write(&spec, yaml).expect("write spec");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arachne"))
        .args(["run", "--quiet", "--dashboard", "127.0.0.1:0", "--summary-json", "summary.json"])
        .arg(&spec)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn arachne");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("arachne printed its dashboard").expect("stderr line");
        if let Some(url) = line.strip_prefix("dashboard: ") {
            break url.to_string();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn split_url(browser_url: &str) -> (String, String) {
    let (base, token) = browser_url.split_once("#token=").expect("a made-up token in the URL");
    (base.to_string(), token.to_string())
}

fn arachne_cli(args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arachne"));
    cmd.args(args).env_remove("ARACHNE_TOKEN");
    if let Some(t) = token {
        cmd.env("ARACHNE_TOKEN", t);
    }
    cmd.output().expect("run arachne")
}

#[test]
fn control_without_the_token_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 5 pages a second: the crawl is still running while the test steers it.
    let yaml = format!(
        "name: tokens\nsandbox: {{ pages: 40 }}\nseeds: [\"{{sandbox}}/\"]\nfetch: {{ per_host: {{ rate: 5 }} }}\n\
         output: [{{ jsonl: items.jsonl }}]\n{ITEM_RULES}"
    );
    let (mut child, url) = spawn_run(dir.path(), &yaml);
    let (base, token) = split_url(&url);

    // Reads are open on loopback.
    assert_eq!(get_json(&base, "api/status")["state"], "running");
    // No token, a wrong one, a malformed header: 401, and the crawl goes on.
    for bad in [None, Some("wrong"), Some(&token[1..])] {
        let (code, answer) = control(&base, bad, json!({ "action": "pause" }));
        assert_eq!(code, 401, "{answer}");
    }
    let (code, _) = control(&base, None, json!({ "action": "stop" }));
    assert_eq!(code, 401);
    let (code, _) = control(&base, None, json!({ "action": "restart_actor", "actor": "fetcher-0" }));
    assert_eq!(code, 401);
    let out = arachne_cli(&["control", &base, "pause"], None);
    assert!(!out.status.success(), "control without a token must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = arachne_cli(&["control", &base, "--token", "nope", "stop"], None);
    assert!(!out.status.success());
    let status = get_json(&base, "api/status");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(get_json(&base, "api/actors")["children"][0]["restarts"], 0);
    let before = status["summary"]["pages_fetched"].as_u64().expect("count");
    wait_until(Duration::from_secs(20), "the crawl goes on", || {
        get_json(&base, "api/status")["summary"]["pages_fetched"].as_u64() > Some(before)
    });

    // With the token (from ARACHNE_TOKEN): pause, and the state says so.
    let out = arachne_cli(&["control", &base, "pause"], Some(&token));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(get_json(&base, "api/status")["state"], "paused");
    let out = arachne_cli(&["inspect", &base, "--json"], None);
    assert!(out.status.success());
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON");
    assert_eq!(inspected["status"]["state"], "paused");
    assert!(inspected["actors"]["children"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["name"] == "scheduler")));
    let text = arachne_cli(&["inspect", &base], None);
    assert!(String::from_utf8_lossy(&text.stdout).contains("paused"));

    // Bad requests with the token are refused with a reason, not carried out.
    let (code, _) = control(&base, Some(&token), json!({ "action": "restart_actor", "actor": "nobody" }));
    assert_eq!(code, 404);
    let (code, _) = control(&base, Some(&token), json!({ "action": "set_rate", "rate": -1 }));
    assert_eq!(code, 400);
    let (code, _) = control(&base, Some(&token), json!({ "action": "fly" }));
    assert_eq!(code, 400);

    // Speed up, resume; the run finishes with every item.
    assert!(arachne_cli(&["control", &base, "--token", &token, "rate", "0"], None).status.success());
    assert!(arachne_cli(&["control", &base, "--token", &token, "resume"], None).status.success());
    let status = child.wait().expect("wait");
    assert!(status.success());
    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items");
    assert_eq!(items.lines().count() as u64, truth(&SandboxOptions { pages: 40, traps: false }, 20).items);
}

#[test]
fn a_public_address_needs_a_token() {
    let open = DashboardOptions { listen: "0.0.0.0:0".parse().expect("addr"), token: None };
    assert!(matches!(Dashboard::bind(open), Err(DashboardError::NeedsToken(_))));
    let errors = arachne::spec::load_str(
        "name: x\nseeds: [\"http://a.test/\"]\nobserve:\n  listen: \"0.0.0.0:9000\"\n",
        "x.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect_err("a public address without a token");
    let text = errors.to_string();
    assert!(text.contains("x.yaml:4:") && text.contains("no observe.token"), "{text}");
    let errors = arachne::spec::load_str(
        "name: x\nseeds: [\"http://a.test/\"]\nobserve: { listen: \"nowhere\" }\n",
        "x.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect_err("a bad address");
    assert!(errors.to_string().contains("x.yaml:3:"), "{errors}");
    let spec = arachne::spec::load_str(
        "name: x\nseeds: [\"http://a.test/\"]\nobserve: { listen: \"0.0.0.0:9000\", token: \"s3cret-token\" }\n",
        "x.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("a public address with a token");
    let observe = spec.observe.expect("observe");
    assert!(!format!("{observe:?}").contains("s3cret"), "the token is never printed");
    let options = DashboardOptions::from_spec(Some(&observe), Some("127.0.0.1:0")).expect("options");
    assert!(options.listen.ip().is_loopback());
}

#[test]
fn two_processes_sharing_a_redis_frontier_appear_on_one_dashboard() {
    let Some(redis) = support::test_redis("two_processes_sharing_a_redis_frontier_appear_on_one_dashboard")
    else {
        return;
    };
    let opts = SandboxOptions { pages: 60, traps: false };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let name = support::unique("observe-two");
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let yaml = format!(
        "name: {name}\nseeds: [\"{}/\"]\nfetch: {{ per_host: {{ rate: 10 }} }}\n\
         frontier: {{ backend: redis, lease: 2s }}\nbrokers: {{ redis: {{ url: \"{}\" }} }}\n\
         output: [{{ jsonl: items.jsonl }}]\n{ITEM_RULES}",
        server.base_url(),
        redis.url
    );
    let (mut a, url_a) = spawn_run(dirs[0].path(), &yaml);
    let (mut b, url_b) = spawn_run(dirs[1].path(), &yaml);
    let (base_a, token_a) = split_url(&url_a);
    let (base_b, _) = split_url(&url_b);
    let id_b = get_json(&base_b, "api/status")["worker"].as_str().expect("worker id").to_string();
    let id_a = get_json(&base_a, "api/status")["worker"].as_str().expect("worker id").to_string();

    // Both workers on A's dashboard, alive.
    wait_until(Duration::from_secs(20), "A lists both workers", || {
        let w = get_json(&base_a, "api/workers");
        let workers = w["workers"].as_array().cloned().unwrap_or_default();
        workers.len() == 2 && workers.iter().all(|w| w["lost"] == false)
    });
    // A broadcast from A's dashboard pauses B too; one aimed at B resumes only B.
    let (code, answer) = control(&base_a, Some(&token_a), json!({ "action": "pause", "worker": "*" }));
    assert_eq!(code, 200, "{answer}");
    wait_until(Duration::from_secs(10), "B is paused by A's broadcast", || {
        get_json(&base_b, "api/status")["state"] == "paused"
    });
    assert_eq!(get_json(&base_a, "api/status")["state"], "paused");
    let (code, answer) = control(&base_a, Some(&token_a), json!({ "action": "resume", "worker": id_b }));
    assert_eq!(code, 200, "{answer}");
    wait_until(Duration::from_secs(10), "B resumed", || {
        get_json(&base_b, "api/status")["state"] == "running"
    });
    assert_eq!(get_json(&base_a, "api/status")["state"], "paused");
    let (code, _) =
        control(&base_a, Some(&token_a), json!({ "action": "pause", "worker": "no-such-worker" }));
    assert_eq!(code, 404);

    // B dies: A marks it lost once its heartbeats stop.
    b.kill().expect("kill B");
    let _ = b.wait();
    wait_until(Duration::from_secs(20), "A marks B lost", || {
        let w = get_json(&base_a, "api/workers");
        w["workers"]
            .as_array()
            .is_some_and(|ws| ws.iter().any(|w| w["worker"] == id_b.as_str() && w["lost"] == true))
    });
    let (code, _) = control(&base_a, Some(&token_a), json!({ "action": "resume" }));
    assert_eq!(code, 200);
    // A finishes the crawl, B's leases included.
    let status = a.wait().expect("wait A");
    assert!(status.success());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dirs[0].path().join("summary.json")).expect("summary"))
            .expect("json");
    assert!(summary["pages_fetched"].as_u64() > Some(0), "{summary}");
    // A ended normally: it left the registry; B, killed, is still listed (as lost).
    let mut conn = support::conn(&redis.url);
    let workers: Vec<String> =
        redis::cmd("HKEYS").arg(format!("{name}:workers")).query(&mut conn).expect("HKEYS");
    assert!(!workers.contains(&id_a), "A left: {workers:?}");
    assert_eq!(workers, vec![id_b.clone()], "B, killed, did not leave");
    let _: () = redis::cmd("DEL").arg(format!("{name}:workers")).query(&mut conn).expect("DEL");
}

#[test]
fn every_control_action_acts() {
    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: false }, 0).expect("sandbox");
    let site = server.base_url();
    let host = site.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    // One page to start with (depth 0 only); the hourly schedule keeps the run up.
    let yaml = format!(
        "name: steer\nseeds: [\"{site}/item/1\"]\nscope: {{ max_depth: 0 }}\n\
         output: [{{ jsonl: \"{}\" }}]\nschedules: [{{ name: keep, every: 1h, publish: {{ topic: keepalive }} }}]\n\
         {ITEM_RULES}",
        dir.path().join("items.jsonl").display()
    );
    let spec = arachne::spec::load_str(&yaml, "steer.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let dashboard = Dashboard::bind(DashboardOptions::loopback(0)).expect("bind");
    let (base, token) = (dashboard.url(), dashboard.token().to_string());
    let chaos = "poison=/item/3$".parse().expect("chaos");
    let run = std::thread::spawn(move || Runtime::builder(spec).chaos(chaos).dashboard(dashboard).run());
    let steer = |body: Value| {
        let (code, answer) = control(&base, Some(&token), body);
        assert_eq!(code, 200, "{answer}");
        answer
    };
    let fetched = || get_json(&base, "api/status")["summary"]["pages_fetched"].as_u64().unwrap_or(0);
    let dead = || get_json(&base, "api/status")["summary"]["dead_letters"].as_u64().unwrap_or(0);
    wait_until(Duration::from_secs(20), "the seed is fetched", || fetched() == 1);

    // Seeds: a page, and a poisoned one that is dead-lettered.
    steer(json!({ "action": "add_seeds", "urls": [format!("{site}/item/2"), format!("{site}/item/3")] }));
    wait_until(Duration::from_secs(30), "both seeds are done", || fetched() == 3 && dead() == 1);
    let errors = get_json(&base, "api/errors");
    assert!(errors["dead_letters"][0]["url"].as_str().is_some_and(|u| u.ends_with("/item/3")), "{errors}");
    assert_eq!(errors["requeueable"], 1);
    // The event stream (server-sent events) starts with the recent events.
    let events = http().get(format!("{base}api/events")).send().expect("event stream");
    assert!(events.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/event-stream")));
    let dead_event = BufReader::new(events)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("data:") && l.contains("\"event\":\"dead_lettered\""));
    assert!(dead_event.is_some_and(|l| l.contains("/item/3")), "the dead letter is on the event stream");
    // Requeued, fetched again, dead-lettered again.
    let answer = steer(json!({ "action": "requeue_dead_letters" }));
    assert!(answer["done"].as_str().is_some_and(|d| d.starts_with("1 ")), "{answer}");
    wait_until(Duration::from_secs(30), "the requeued page is done", || fetched() == 4 && dead() == 2);

    // A paused host gets no request; resumed, it does.
    steer(json!({ "action": "pause_host", "host": host }));
    steer(json!({ "action": "add_seeds", "urls": [format!("{site}/item/4")] }));
    wait_until(Duration::from_secs(10), "the seed waits", || {
        let hosts = get_json(&base, "api/hosts");
        hosts["hosts"][0]["paused"] == true && hosts["hosts"][0]["queued"] == 1
    });
    assert_eq!(fetched(), 4);
    steer(json!({ "action": "resume_host", "host": host }));
    wait_until(Duration::from_secs(10), "the host is crawled again", || fetched() == 5);

    steer(json!({ "action": "set_rate", "host": host, "rate": 2.5 }));
    assert_eq!(get_json(&base, "api/hosts")["hosts"][0]["rate"], 2.5);
    steer(json!({ "action": "set_rate", "queue": "requests", "rate": 100 }));
    assert_eq!(get_json(&base, "api/hosts")["queue_rate"], 100.0);
    let (code, _) =
        control(&base, Some(&token), json!({ "action": "set_rate", "queue": "pages", "rate": 1 }));
    assert_eq!(code, 400, "only the requests queue has a rate");
    steer(json!({ "action": "restart_actor", "actor": "fetcher-0" }));
    wait_until(Duration::from_secs(10), "the restart is counted", || {
        let actors = get_json(&base, "api/actors");
        actors["children"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["name"] == "fetcher-0" && a["restarts"] == 1)
    });
    // The restarted fetcher still works.
    steer(json!({ "action": "add_seeds", "urls": [format!("{site}/item/5")] }));
    wait_until(Duration::from_secs(10), "a page after the restart", || fetched() == 6);

    steer(json!({ "action": "stop" }));
    let summary = run.join().expect("run thread").expect("run");
    assert_eq!(summary.pages_fetched, 6);
    assert_eq!(summary.dead_letters, 2);
}

/// An actor that does nothing: for the supervision tree's listing.
struct Idle;

impl actix::Actor for Idle {
    type Context = actix::Context<Self>;
}

impl actix::Supervised for Idle {}

/// An actor of a user subtree is listed on the dashboard as `<subtree>/<actor>`, and remote
/// control restarts it by that name.
#[test]
fn a_subtree_actor_is_listed_and_restarted_by_remote_control() {
    let server = SandboxServer::start(SandboxOptions { pages: 5, traps: false }, 0).expect("sandbox");
    let site = server.base_url();
    // One page; the hourly schedule keeps the run up.
    let yaml = format!(
        "name: subtree\nseeds: [\"{site}/item/1\"]\nscope: {{ max_depth: 0 }}\n\
         schedules: [{{ name: keep, every: 1h, publish: {{ topic: keepalive }} }}]\n{ITEM_RULES}"
    );
    let spec = arachne::spec::load_str(&yaml, "subtree.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let dashboard = Dashboard::bind(DashboardOptions::loopback(0)).expect("bind");
    let (base, token) = (dashboard.url(), dashboard.token().to_string());
    let config = arachne::supervise::SupervisorConfig {
        name: String::new(),
        strategy: arachne::supervise::Strategy::OneForOne,
        max_restarts: 3,
        within: Duration::from_secs(60),
    };
    let run = std::thread::spawn(move || {
        Runtime::builder(spec)
            .supervisor("side", config, |s| s.actor("idle", |_| Ok(Idle)))
            .without_spec_outputs()
            .dashboard(dashboard)
            .run()
    });
    let idle = |actors: &Value| {
        actors["children"].as_array().into_iter().flatten().find(|a| a["name"] == "side/idle").cloned()
    };
    wait_until(Duration::from_secs(20), "side/idle is listed", || {
        idle(&get_json(&base, "api/actors")).is_some()
    });
    let (code, answer) =
        control(&base, Some(&token), json!({ "action": "restart_actor", "actor": "side/idle" }));
    assert_eq!(code, 200, "{answer}");
    wait_until(Duration::from_secs(10), "the restart is counted", || {
        idle(&get_json(&base, "api/actors")).is_some_and(|a| a["restarts"] == 1)
    });
    let (code, answer) = control(&base, Some(&token), json!({ "action": "stop" }));
    assert_eq!(code, 200, "{answer}");
    let summary = run.join().expect("run thread").expect("run");
    assert_eq!(summary.pages_fetched, 1);
}
