//! Celery-style routing with the local frontier (docs/routing.md), in process through the
//! library, against a `SandboxServer` whose truth, request counters and request log are the
//! oracle; and the routing keys' spec errors, at their line and column.
//!
//! - a crawl routed into two queues gives exactly the sandbox's items, each queue fetched
//!   its share of the truth, and the capped queue never had more in flight than its cap;
//! - a queue with `retries: 0` asks the sandbox's `/trap/flaky` page (500 once) once and
//!   fails it; `default` (3 retries) asks twice and gets it;
//! - a queue's rate is an upper bound on the sandbox's request log.

use std::collections::BTreeMap;
use std::path::Path;

use arachne::observe::Summary;
use arachne::runtime::Runtime;
use arachne::sandbox::{SandboxOptions, SandboxServer};
use arachne::spec::{load_str, SpecError, SpecErrors, NO_OVERRIDES};
use serde_json::Value;
use support::procs::{assert_product_rate, assert_truth_items, collect, no_page_twice, sandbox, PRODUCTS};

mod support;

/// Runs `yaml` in process; its summary and the items of `items.jsonl` in `dir`.
fn run(dir: &Path, yaml: &str) -> (Summary, Vec<Value>) {
    let spec = load_str(yaml, "crawl.yaml", NO_OVERRIDES).unwrap_or_else(|e| panic!("spec:\n{e}"));
    let summary = Runtime::builder(spec).run().unwrap_or_else(|e| panic!("run: {e}"));
    let items = std::fs::read_to_string(dir.join("items.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (summary, items)
}

fn output(dir: &Path) -> String {
    format!("output:\n  - jsonl: {}\n", dir.join("items.jsonl").display())
}

#[test]
fn a_routed_crawl_fetches_each_queue_within_its_cap_and_matches_the_truth() {
    let (site, want) = sandbox(400);
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "name: routed\nseeds: [\"{}/\"]\nfetch: {{ concurrency: 16, per_host: {{ concurrency: 8 }} }}\n\
         routes:\n  - {{ match: \"/item/\\\\d+$\", queue: documents }}\n\
         queues:\n  documents: {{ concurrency: 2 }}\n{PRODUCTS}{}",
        site.base_url(),
        output(dir.path())
    );
    let (summary, items) = run(dir.path(), &yaml);
    let mut got = BTreeMap::new();
    collect(&mut got, &items, true);
    assert_truth_items(&got, &want);
    no_page_twice(&site);
    assert_eq!(summary.pages_fetched, want.pages_fetched, "{summary:?}");
    let docs = &summary.queues["documents"];
    let default = &summary.queues["default"];
    assert_eq!(docs.fetched, want.items, "every product page, and only those, went to documents");
    assert_eq!(default.fetched, want.pages_fetched - want.items, "{summary:?}");
    assert!(
        (1..=2).contains(&docs.max_in_flight),
        "documents had {} in flight at once, its cap is 2",
        docs.max_in_flight
    );
    assert!(default.max_in_flight <= 8, "the host's cap (8) holds: {}", default.max_in_flight);
}

#[test]
fn a_queue_rate_is_an_upper_bound_on_the_servers_request_log() {
    let (site, want) = sandbox(80);
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "name: rated\nseeds: [\"{}/\"]\nfetch: {{ concurrency: 16, per_host: {{ concurrency: 8 }} }}\n\
         routes:\n  - {{ match: \"/item/\\\\d+$\", queue: documents }}\n\
         queues:\n  documents: {{ rate: \"20/s\" }}\n{PRODUCTS}{}",
        site.base_url(),
        output(dir.path())
    );
    let (summary, items) = run(dir.path(), &yaml);
    assert_eq!(items.len() as u64, want.items, "{summary:?}");
    assert_product_rate(&site, &want, 20);
    let log = site.requests();
    let others = log.max_in_window(1000, |p| !p.starts_with("/item/"));
    assert!(others >= 1, "the other queue was not held back");
}

/// The sandbox with its traps, crawling only home, `/traps` and `/trap/flaky`.
fn flaky_spec(site: &SandboxServer, dir: &Path, routes: &str) -> String {
    format!(
        "name: flaky\nseeds: [\"{}/\"]\nscope: {{ include: [\"/$\", \"/traps$\", \"/trap/flaky$\"] }}\n\
         fetch: {{ retries: 3 }}\n{routes}queues:\n  fragile: {{ retries: 0 }}\n\
         parse:\n  items:\n    - {{ name: t, match: \"/trap/flaky$\", fields: {{ title: h1 }} }}\n{}",
        site.base_url(),
        output(dir)
    )
}

#[test]
fn each_queue_retries_as_often_as_it_says() {
    let traps = SandboxOptions { pages: 20, traps: true };

    let site = SandboxServer::start(traps.clone(), 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = "routes:\n  - { match: \"/trap/flaky$\", queue: fragile }\n";
    let (summary, items) = run(dir.path(), &flaky_spec(&site, dir.path(), routes));
    assert_eq!(site.stats().paths["/trap/flaky"].requests, 1, "retries: 0 asks once");
    assert_eq!(summary.queues["fragile"].failed, 1, "{summary:?}");
    assert_eq!(summary.queues["fragile"].fetched, 0, "{summary:?}");
    assert_eq!(summary.errors.get("http_500"), Some(&1), "{summary:?}");
    assert!(items.is_empty(), "{items:?}");

    let site = SandboxServer::start(traps, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let (summary, items) = run(dir.path(), &flaky_spec(&site, dir.path(), ""));
    assert_eq!(site.stats().paths["/trap/flaky"].requests, 2, "default retries after the 500");
    assert_eq!(summary.queues["fragile"].fetched + summary.queues["fragile"].failed, 0);
    assert_eq!(summary.pages_failed, 0, "{summary:?}");
    assert_eq!(items.len(), 1, "{items:?}");
}

// ---- spec errors ---------------------------------------------------------------------------

const BASE: &str = "name: x\nseeds: [\"https://example.com/\"]\n";

fn errors_of(rest: &str) -> Vec<SpecError> {
    match load_str(&format!("{BASE}{rest}"), "crawl.yaml", NO_OVERRIDES) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(SpecErrors(errors)) => errors,
    }
}

fn only_error(rest: &str) -> SpecError {
    let errors = errors_of(rest);
    assert_eq!(errors.len(), 1, "expected one error, got: {}", SpecErrors(errors.clone()));
    errors.into_iter().next().expect("one error")
}

fn assert_error(e: &SpecError, line: usize, column: usize, words: &[&str]) {
    assert_eq!((e.line, e.column), (Some(line), Some(column)), "wrong place for: {e}");
    for w in words {
        assert!(e.to_string().contains(w), "{w:?} missing from: {e}");
    }
}

#[test]
fn routing_mistakes_are_reported_where_they_are() {
    let e = only_error("routes:\n  - { match: x, queue: documnets }\nqueues: { documents: {} }\n");
    assert_error(
        &e,
        4,
        24,
        &["routes[0] sends to the unknown queue 'documnets'", "did you mean 'documents'?"],
    );

    let e = only_error("routes:\n  - { host: \"*.a.org\", queue: slow }\n");
    assert_error(&e, 4, 31, &["unknown queue 'slow'", "add it under `queues:`"]);

    let e = only_error("queues:\n  documents: { rate: 10/d }\n");
    assert_error(&e, 4, 22, &["'10/d' is not a rate", "N/s, N/m or N/h"]);

    let e = only_error("routes:\n  - { match: \"(\", queue: default }\n");
    assert_error(&e, 4, 14, &["bad regex in routes[0].match"]);

    let e = only_error("routes:\n  - { queue: default }\n");
    assert_error(&e, 4, 5, &["neither `match` nor `host`"]);

    let e = only_error("routes:\n  - { host: \"a.org/x\", queue: default }\n");
    assert_error(&e, 4, 13, &["not a host name glob"]);

    let e = only_error("queues:\n  \"my queue\": {}\n");
    assert_error(&e, 4, 3, &["queue name 'my queue' is not usable"]);

    let e = only_error("fetch: { concurrency: 4 }\nqueues:\n  documents: { concurrency: 8 }\n");
    assert_error(&e, 5, 29, &["queues.documents.concurrency (8) is larger than fetch.concurrency (4)"]);

    // With Kafka each queue is a topic: two whose topics Kafka would take for one.
    let e = only_error(
        "frontier: { backend: kafka }\nbrokers: { kafka: { bootstrap: \"127.0.0.1:9092\" } }\n\
         queues:\n  a.b: {}\n  a_b: {}\n",
    );
    assert_error(&e, 7, 3, &["queues 'a.b' and 'a_b' would be Kafka topics that differ only in `.` and `_`"]);

    let kafka = "frontier: { backend: kafka }\nbrokers: { kafka: { bootstrap: \"127.0.0.1:9092\" } }\n\
                 routes:\n  - { match: x, queue: documents }\nqueues: { documents: {} }\n";
    let ok = load_str(&format!("{BASE}{kafka}"), "crawl.yaml", NO_OVERRIDES);
    assert!(ok.is_ok(), "kafka routes: {:?}", ok.err());

    let ok = load_str(
        &format!(
            "{BASE}routes:\n  - {{ match: \"\\\\.pdf$\", queue: documents }}\n  - {{ host: \"*.example.org\", queue: slow }}\n\
             queues:\n  documents: {{ concurrency: 4, rate: \"10/m\", retries: 1, priority: 3 }}\n  slow: {{ rate: 2 }}\n"
        ),
        "crawl.yaml",
        NO_OVERRIDES,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.queues["documents"].rate.map(|r| r.to_string()).as_deref(), Some("10/m"));
    assert_eq!(ok.queues["slow"].rate.map(|r| r.per_second()), Some(2.0));
    assert_eq!(ok.routes[1].host.as_deref(), Some("*.example.org"));
}

#[test]
fn a_worker_of_some_queues_needs_a_shared_frontier() {
    let (site, _) = sandbox(20);
    let yaml =
        format!("name: w\nseeds: [\"{}/\"]\nqueues: {{ documents: {{}} }}\noutput: []\n", site.base_url());
    let spec = load_str(&yaml, "crawl.yaml", NO_OVERRIDES).expect("spec");
    let err = Runtime::builder(spec.clone()).queues(["documents"]).run().expect_err("local").to_string();
    assert!(err.contains("needs a shared frontier, `frontier.backend: redis`, `amqp` or `kafka`"), "{err}");
    let err = Runtime::builder(spec).queues(["nope"]).run().expect_err("unknown").to_string();
    assert!(
        err.contains("unknown queue 'nope' in --queues (the crawl's queues: default, documents)"),
        "{err}"
    );
    assert_eq!(site.stats().total_requests, 0, "nothing was fetched");
}
