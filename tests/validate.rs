//! The spec loader through its public API: each kind of broken spec is reported at the
//! right line and column with a useful message and hint; valid specs load with their
//! values and defaults; `--set` and `${ENV}` work.

use std::path::Path;
use std::time::Duration;

use arachne::spec::{
    load_file, load_str, CrawlSpec, FetchSpec, OutputSpec, QueueOrder, RobotsPolicy, SpecError, SpecErrors,
    Strategy, DURATION_FORMS, SIZE_FORMS,
};

/// Two valid lines that most cases start with.
const BASE: &str = "name: x\nseeds: [\"https://example.com/\"]\n";

fn errors_of(yaml: &str) -> Vec<SpecError> {
    match load_str(yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(SpecErrors(errors)) => errors,
    }
}

/// The only error of `BASE + rest`.
fn only_error(rest: &str) -> SpecError {
    let errors = errors_of(&format!("{BASE}{rest}"));
    assert_eq!(errors.len(), 1, "expected one error, got: {}", SpecErrors(errors.clone()));
    errors.into_iter().next().expect("one error")
}

fn assert_at(e: &SpecError, line: usize, column: usize) {
    assert_eq!((e.line, e.column), (Some(line), Some(column)), "wrong place for: {e}");
    assert_eq!(e.origin, "crawl.yaml");
}

fn assert_says(e: &SpecError, words: &[&str]) {
    for w in words {
        assert!(e.message.contains(w), "message lacks {w:?}: {e}");
    }
}

fn hint(e: &SpecError) -> &str {
    e.hint.as_deref().unwrap_or_else(|| panic!("no hint: {e}"))
}

fn ok(yaml: &str) -> CrawlSpec {
    load_str(yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES).unwrap_or_else(|e| panic!("should load:\n{e}"))
}

fn sets(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---- unknown keys ------------------------------------------------------------------------

#[test]
fn unknown_key_hints_the_nearest() {
    let e = only_error("fetch:\n  concurency: 8\n");
    assert_at(&e, 4, 3);
    assert_eq!(e.message, "unknown key 'concurency' in fetch");
    assert_eq!(hint(&e), "did you mean 'concurrency'?");
}

#[test]
fn unknown_key_with_nothing_near_lists_the_keys() {
    let e = only_error("fetch: { concurrency: 8, zzz: 1 }\n");
    assert_at(&e, 3, 26);
    assert_says(&e, &["unknown key 'zzz' in fetch"]);
    assert!(hint(&e).contains("concurrency, per_host, timeout"), "{e}");
}

#[test]
fn unknown_key_at_top_level_and_deep() {
    let errors = errors_of(&format!(
        "{BASE}nmae: y\nparse:\n  items:\n    - name: a\n      match: x\n      feilds: {{ t: h1 }}\n      fields: {{ t: h1 }}\n"
    ));
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 3, 1);
    assert_says(&errors[0], &["unknown key 'nmae' at the top level"]);
    assert_eq!(hint(&errors[0]), "did you mean 'name'?");
    assert_at(&errors[1], 8, 7);
    assert_says(&errors[1], &["unknown key 'feilds' in parse.items[0]"]);
    assert_eq!(hint(&errors[1]), "did you mean 'fields'?");
}

// ---- types and units ---------------------------------------------------------------------

#[test]
fn wrong_type() {
    let e = only_error("fetch:\n  concurrency: lots\n");
    assert_at(&e, 4, 16);
    assert_says(&e, &["fetch.concurrency", "whole number", "'lots'"]);
}

#[test]
fn negative_where_unsigned_and_list_where_scalar() {
    let e = only_error("scope: { max_depth: -1 }\n");
    assert_at(&e, 3, 21);
    assert_says(&e, &["scope.max_depth", "whole number", "'-1'"]);
    let e = only_error("sandbox: { port: 70000 }\nseeds2: 1\n".replace("seeds2: 1\n", "").as_str());
    assert_at(&e, 3, 18);
    assert_says(&e, &["sandbox.port", "0 to 65535"]);
    let errors = errors_of("name: x\nseeds: https://example.com/\n");
    assert_eq!(errors.len(), 1);
    assert_at(&errors[0], 2, 8);
    assert_says(&errors[0], &["seeds", "expected a list"]);
    assert_eq!(hint(&errors[0]), "write a list: [\"https://example.com/\"]");
}

#[test]
fn bad_duration() {
    let e = only_error("fetch:\n  timeout: 30 parsecs\n");
    assert_at(&e, 4, 12);
    assert_says(&e, &["fetch.timeout", "'30 parsecs' is not a duration"]);
    assert_eq!(hint(&e), format!("use {DURATION_FORMS}"));
}

#[test]
fn bad_size() {
    let e = only_error("fetch: { max_body: ten }\n");
    assert_at(&e, 3, 20);
    assert_says(&e, &["fetch.max_body", "'ten' is not a size"]);
    assert_eq!(hint(&e), format!("use {SIZE_FORMS}"));
}

#[test]
fn enum_values_list_the_choices() {
    let e = only_error("fetch:\n  robots_txt: maybe\n");
    assert_at(&e, 4, 15);
    assert_says(&e, &["unknown value 'maybe' for fetch.robots_txt"]);
    assert!(hint(&e).contains("obey, ignore"), "{e}");
    let e = only_error("frontier: { order: lifi }\n");
    assert_at(&e, 3, 20);
    assert_eq!(hint(&e), "did you mean 'lifo'? (one of: fifo, lifo, priority)");
}

// ---- regexes and selectors ---------------------------------------------------------------

#[test]
fn bad_regexes() {
    let e = only_error("scope:\n  include: [\"/p/\", \"(unclosed\"]\n");
    assert_at(&e, 4, 20);
    assert_says(&e, &["bad regex in scope.include[1]", "unclosed group"]);
    assert!(!e.message.contains('\n'), "one line: {e}");
    let e = only_error("scope:\n  exclude:\n    - \"[z-a]\"\n");
    assert_at(&e, 5, 7);
    assert_says(&e, &["scope.exclude[0]"]);
    let e = only_error("parse:\n  items:\n    - name: a\n      match: \"(\"\n      fields: { t: h1 }\n");
    assert_at(&e, 6, 14);
    assert_says(&e, &["bad regex in parse.items[0].match"]);
}

#[test]
fn bad_css_selectors() {
    let e = only_error("parse:\n  follow: [\"a[href]\", \"div >\"]\n");
    assert_at(&e, 4, 23);
    assert_says(&e, &["bad CSS selector 'div >' in parse.follow[1]", "dangling combinator"]);
    let e = only_error(
        "parse:\n  items:\n    - name: a\n      match: x\n      fields:\n        t: h1\n        u: \"a:hover @href\"\n",
    );
    assert_at(&e, 9, 12);
    assert_says(&e, &["bad CSS selector 'a:hover' in parse.items[0].fields.u", "unsupported pseudo-class"]);
    let e = only_error("parse:\n  items:\n    - name: a\n      match: x\n      fields: { t: \"h1 @\" }\n");
    assert_at(&e, 7, 20);
    assert_says(&e, &["bad field selector 'h1 @'", "attribute"]);
}

// ---- seeds -------------------------------------------------------------------------------

#[test]
fn empty_seeds() {
    let errors = errors_of("name: x\nseeds: []\n");
    assert_eq!(errors.len(), 1);
    assert_at(&errors[0], 2, 8);
    assert_says(&errors[0], &["seeds is empty"]);
}

#[test]
fn seeds_must_be_http_urls() {
    let errors =
        errors_of("name: x\nseeds:\n  - https://ok.example/\n  - ftp://example.com/\n  - not a url\n");
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 4, 5);
    assert_says(&errors[0], &["'ftp://example.com/' is not an http(s) URL"]);
    assert_at(&errors[1], 5, 5);
    assert_says(&errors[1], &["'not a url' is not an http(s) URL"]);
}

#[test]
fn sandbox_placeholder_needs_a_sandbox() {
    let errors = errors_of("name: x\nseeds: [\"{sandbox}/\"]\n");
    assert_eq!(errors.len(), 1);
    assert_at(&errors[0], 2, 9);
    assert_says(&errors[0], &["{sandbox}", "no sandbox"]);
    assert!(hint(&errors[0]).contains("sandbox: {}"));
    let spec = ok("name: x\nsandbox: {}\nseeds: [\"{sandbox}/start\"]\n");
    assert_eq!(spec.seeds, vec!["{sandbox}/start".to_string()], "substituted at run time");
    assert_eq!(spec.sandbox.map(|s| s.pages), Some(500));
}

// ---- required keys -----------------------------------------------------------------------

#[test]
fn missing_required_keys() {
    let errors = errors_of("seeds: [\"https://example.com/\"]\n");
    assert_eq!(errors.len(), 1);
    assert_at(&errors[0], 1, 1);
    assert_eq!(errors[0].message, "missing required key 'name'");
    assert!(hint(&errors[0]).contains("name:"));

    let errors = errors_of("name: x\n");
    assert_eq!(errors[0].message, "missing required key 'seeds'");

    let e = only_error("parse:\n  items:\n    - name: a\n      match: x\n");
    assert_at(&e, 5, 7);
    assert_eq!(e.message, "missing required key 'fields' in parse.items[0]");
}

// ---- numbers with limits -----------------------------------------------------------------

#[test]
fn zero_concurrency() {
    let errors = errors_of(&format!("{BASE}fetch:\n  concurrency: 0\n  per_host:\n    concurrency: 0\n"));
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 4, 16);
    assert_says(&errors[0], &["fetch.concurrency must be at least 1"]);
    assert_at(&errors[1], 6, 18);
    assert_says(&errors[1], &["fetch.per_host.concurrency must be at least 1"]);
}

#[test]
fn per_host_above_concurrency_is_an_error_only_when_explicit() {
    let e = only_error("fetch: { concurrency: 4, per_host: { concurrency: 16 } }\n");
    assert_at(&e, 3, 51);
    assert_says(&e, &["(16) is larger than fetch.concurrency (4)"]);
    assert!(hint(&e).contains("at most 4"));
    let spec = ok(&format!("{BASE}fetch: {{ concurrency: 4 }}\n"));
    assert_eq!(spec.fetch.per_host.concurrency, 4, "the default is clamped");
}

#[test]
fn bad_rates() {
    let e = only_error("fetch: { per_host: { rate: -1 } }\n");
    assert_at(&e, 3, 28);
    assert_says(&e, &["fetch.per_host.rate", "0 or more"]);
    assert_eq!(hint(&e), "0 means no limit");
    let e = only_error("fetch: { per_host: { rate: .nan } }\n");
    assert_says(&e, &["NaN"]);
    let spec = ok(&format!("{BASE}fetch: {{ per_host: {{ rate: 2.5 }} }}\n"));
    assert_eq!(spec.fetch.per_host.rate, 2.5);
}

#[test]
fn frontier_memory() {
    let e = only_error("frontier:\n  memory: 1KiB\n");
    assert_at(&e, 4, 11);
    assert_says(&e, &["frontier.memory must be at least 64KiB (found 1024 bytes)"]);
    assert!(hint(&e).contains("16MiB"), "{e}");
    let e = only_error("frontier: { memory: lots }\n");
    assert_says(&e, &["frontier.memory"]);
    assert_eq!(ok(BASE).frontier.memory.0, 16 << 20, "the default");
    assert_eq!(ok(&format!("{BASE}frontier: {{ memory: 64KiB }}\n")).frontier.memory.0, 64 << 10);
    assert_eq!(ok(&format!("{BASE}frontier: {{ memory: 1GiB }}\n")).frontier.memory.0, 1 << 30);
}

#[test]
fn sandbox_pages_zero() {
    let e = only_error("sandbox:\n  pages: 0\n");
    assert_at(&e, 4, 10);
    assert_says(&e, &["sandbox.pages: the sandbox has from 1 to 1000000 pages (found 0)"]);
}

// ---- item rules --------------------------------------------------------------------------

#[test]
fn duplicate_item_names_and_rules_without_fields() {
    let errors = errors_of(&format!(
        "{BASE}parse:\n  items:\n    - name: book\n      match: /p/\n      fields: {{ t: h1 }}\n    - name: book\n      match: /q/\n      fields: {{}}\n"
    ));
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 8, 13);
    assert_says(&errors[0], &["duplicate item rule name 'book'"]);
    assert!(hint(&errors[0]).contains("line 5"), "{}", errors[0]);
    assert_at(&errors[1], 10, 7);
    assert_says(&errors[1], &["item rule 'book' has no fields"]);
}

// ---- not supported yet -------------------------------------------------------------------

#[test]
fn what_was_not_supported_yet_is_now() {
    // AMQP everywhere (once "not supported yet"): only what it lacks is an error, here the
    // amqp bridge's `channel`.
    let errors = errors_of(&format!(
        "{BASE}frontier: {{ backend: amqp }}\nbrokers:\n  redis: {{ url: \"redis://localhost\" }}\n  amqp: {{ url: \"amqp://k\" }}\nbridges:\n  - {{ kind: amqp, topic: events, direction: out }}\nschedules:\n  - {{ name: refresh, every: 6h, action: reseed }}\n"
    ));
    assert_eq!(errors.len(), 1, "{}", SpecErrors(errors.clone()));
    assert_says(&errors[0], &["(amqp) has no `channel`"]);
    assert!(
        errors.iter().all(|e| !e.message.contains("not supported yet")),
        "{}",
        SpecErrors(errors.clone())
    );
    // Empty ones are fine, as in the design's example.
    ok(&format!("{BASE}brokers: {{}}\nbridges: []\nschedules: []\nfrontier: {{ backend: local }}\n"));
}

#[test]
fn amqp_specs_are_checked() {
    let errors = errors_of(&format!("{BASE}frontier: {{ backend: amqp }}\n"));
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 3, 22);
    assert_says(&errors[0], &["needs an AMQP broker"]);
    assert_says(&errors[1], &["seen-set in Redis", "`brokers.redis` is not set"]);
    let e = only_error("brokers: { amqp: { url: \"redis://h\" } }\n");
    assert_at(&e, 3, 25);
    assert_says(&e, &["brokers.amqp.url", "amqp://"]);
    let e = only_error("brokers: { amqp: { url: \"amqp://h\", heartbet: 5s } }\n");
    assert_says(&e, &["unknown key 'heartbet' in brokers.amqp"]);
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("did you mean 'heartbeat'")), "{e}");
    let e = only_error(
        "frontier: { backend: amqp, order: lifo }\nbrokers: { amqp: { url: \"amqp://h\" }, redis: { url: \"redis://h\" } }\n",
    );
    assert_says(&e, &["'lifo' is not possible with `backend: amqp`"]);
    let e = only_error("output:\n  - amqp: { exchange: items }\n");
    assert_says(&e, &["`brokers.amqp` is not set"]);
    let e = only_error(concat!(
        "brokers:\n  amqp:\n    url: \"amqp://h\"\n    topology:\n      exchanges: [ { name: h, type: headers } ]\n",
        "      queues: [ { name: q } ]\n      bindings: [ { exchange: h, queue: q } ]\n",
    ));
    assert_says(&e, &["headers exchange 'h' has no `headers`"]);
    let e = only_error(
        "brokers: { amqp: { url: \"amqp://h\", topology: { exchanges: [ { name: h, type: fnout } ] } } }\n",
    );
    assert_says(&e, &["unknown"]);
    // A whole AMQP setup, waiting for start URLs (no seeds); the password from ${ENV}.
    ok(concat!(
        "name: x\nseeds: []\nfrontier: { backend: amqp, order: priority, amqp: { queue: x.q } }\n",
        "brokers:\n  redis: { url: \"redis://127.0.0.1:6379/\" }\n",
        "  amqp:\n    url: \"amqps://app:secret@127.0.0.1:5671/%2f\"\n    heartbeat: 10s\n    prefetch: 32\n",
        "    ca_file: ca.pem\n    topology:\n      exchanges: [ { name: ev, type: topic, durable: true } ]\n",
        "      queues: [ { name: ev.all, type: quorum, dead_letter_exchange: dlx, message_ttl: 1h } ]\n",
        "      bindings: [ { exchange: ev, queue: ev.all, routing_key: \"crawl.#\" } ]\n",
        "output:\n  - amqp: { exchange: ev, routing_key: \"item.{host}\", headers: { rule: product } }\n",
    ));
}

#[test]
fn redis_frontier_needs_a_broker_and_may_wait_for_start_urls() {
    let e = only_error("frontier: { backend: redis }\n");
    assert_says(&e, &["needs a Redis broker"]);
    ok("name: x\nseeds: []\nfrontier: { backend: redis, layout: scrapy-redis, lease: 30s }\nbrokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }\n");
    let errors = errors_of("name: x\nseeds: []\n");
    assert!(errors.iter().any(|e| e.message.contains("seeds is empty")), "{}", SpecErrors(errors.clone()));
}

#[test]
fn kafka_specs_are_checked() {
    let e = only_error("frontier: { backend: kafka }\n");
    assert_says(&e, &["needs a Kafka broker"]);
    let e = only_error("output:\n  - kafka: { topic: items }\n");
    assert_says(&e, &["`brokers.kafka` is not set"]);
    let e = only_error("brokers: { kafka: { bootstrap: \"localhost\" } }\n");
    assert_at(&e, 3, 32);
    assert_says(&e, &["brokers.kafka.bootstrap", "no port"]);
    let e = only_error("brokers: { kafka: { bootstrap: \"k:9092\", bootstrp: 1 } }\n");
    assert_says(&e, &["unknown key 'bootstrp' in brokers.kafka"]);
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("did you mean 'bootstrap'")), "{e}");
    let e = only_error(
        "brokers: { kafka: { bootstrap: \"k:9092\" } }\nbridges:\n  - { kind: kafka, topic: events, direction: out }\n",
    );
    assert_says(&e, &["(kafka) has no `channel`"]);
    let e = only_error("frontier: { backend: kafka, kafka: { partitions: 0 } }\nbrokers: { kafka: { bootstrap: \"k:9092\" } }\n");
    assert_says(&e, &["partitions must be at least 1"]);
    // A whole Kafka setup, waiting for start URLs (no seeds).
    ok(concat!(
        "name: x\nseeds: []\nfrontier: { backend: kafka, kafka: { partitions: 4, key: url, rebalance_wait: 5s } }\n",
        "brokers: { kafka: { bootstrap: \"127.0.0.1:9092\", client: { \"session.timeout.ms\": 6000 },",
        " security: { protocol: sasl_plaintext, mechanism: PLAIN, username: u, password: p } } }\n",
        "output:\n  - kafka: { topic: items, key: host, compression: zstd }\n",
        "bridges:\n  - { kind: kafka, topic: events, direction: out, channel: x.events, key: kind }\n",
        "  - { kind: kafka, topic: remote.jobs, direction: in, channel: x.jobs, group: g }\n",
    ));
}

#[test]
fn redis_queue_bridges_are_checked() {
    let redis = "brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }\n";
    ok(&format!(
        "{BASE}{redis}bridges:\n  - {{ kind: redis-queue, topic: jobs, direction: in, channel: \"jobs:requests\", order: priority, lease: 30s }}\n"
    ));
    let e =
        only_error(&format!("{redis}bridges:\n  - {{ kind: redis-queue, topic: jobs, direction: out }}\n"));
    assert_says(&e, &["(redis-queue) has no `channel`"]);
    let e = only_error(&format!(
        "{redis}bridges:\n  - {{ kind: redis-queue, topic: requests, direction: in, channel: k }}\n"
    ));
    assert_says(&e, &["'requests' is one of the crawl's own channels"]);
    let e = only_error("bridges:\n  - { kind: redis-queue, topic: jobs, direction: in, channel: k }\n");
    assert_says(&e, &["`brokers.redis` is not set"]);
}

#[test]
fn unsupported_output_kinds() {
    let e = only_error("output:\n  - jsonl: items.jsonl\n  - amq: { exchange: items }\n");
    assert_at(&e, 5, 5);
    assert_says(&e, &["unknown"]);
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("did you mean 'amqp'")), "{e}");
    let e = only_error("output:\n  - jsonl\n");
    assert_at(&e, 4, 5);
    assert_says(&e, &["'jsonl' needs a value"]);
}

// ---- YAML itself -------------------------------------------------------------------------

#[test]
fn yaml_syntax_error_has_a_place() {
    let errors = errors_of("name: x\nseeds: [\"https://example.com/\"\nfetch: {}\n");
    assert_eq!(errors.len(), 1);
    assert_says(&errors[0], &["YAML syntax error"]);
    assert!(errors[0].line.is_some() && errors[0].column.is_some(), "{}", errors[0]);
}

#[test]
fn duplicate_keys() {
    let errors = errors_of("name: x\nseeds: [\"https://example.com/\"]\nname: y\n");
    assert_eq!(errors.len(), 1);
    assert_at(&errors[0], 3, 1);
    assert_says(&errors[0], &["duplicate key 'name'"]);
    assert_eq!(hint(&errors[0]), "first given at line 1");
}

#[test]
fn not_a_mapping() {
    let errors = errors_of("- a\n- b\n");
    assert_at(&errors[0], 1, 1);
    assert_says(&errors[0], &["expected a mapping"]);
}

// ---- all errors at once ------------------------------------------------------------------

#[test]
fn all_errors_are_reported_in_file_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs/broken.yaml");
    let errors = load_file(&path, arachne::spec::NO_OVERRIDES).expect_err("broken").0;
    let summary: Vec<_> = errors.iter().map(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0))).collect();
    assert_eq!(
        summary,
        vec![(2, 33), (4, 13), (6, 3), (7, 12), (8, 15), (10, 12)],
        "{}",
        SpecErrors(errors.clone())
    );
    assert!(errors.iter().all(|e| e.origin == path.display().to_string()));
}

#[test]
fn several_type_errors_are_reported_together() {
    let errors = errors_of(&format!(
        "{BASE}fetch:\n  concurrency: lots\n  retries: many\n  robots_txt: maybe\nsupervision: {{ strategy: one_for_none }}\n"
    ));
    let places: Vec<_> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        places,
        vec![(Some(4), Some(16)), (Some(5), Some(12)), (Some(6), Some(15)), (Some(7), Some(26))],
        "{}",
        SpecErrors(errors.clone())
    );
    assert_eq!(
        hint(&errors[3]),
        "did you mean 'one_for_one'? (one of: one_for_one, one_for_all, rest_for_one)"
    );
}

// ---- valid specs -------------------------------------------------------------------------

#[test]
fn the_design_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs/design.yaml");
    let spec = load_file(&path, arachne::spec::NO_OVERRIDES).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.name, "demo");
    assert_eq!(spec.sandbox.as_ref().map(|s| s.pages), Some(500));
    assert_eq!(spec.seeds, vec!["{sandbox}/".to_string()]);
    assert_eq!(spec.scope.max_depth, 20);
    assert_eq!(spec.scope.max_pages, 0);
    assert_eq!(spec.fetch.concurrency, 64);
    assert_eq!(spec.fetch.per_host.concurrency, 8);
    assert_eq!(spec.fetch.per_host.rate, 0.0);
    assert_eq!(spec.fetch.timeout.0, Duration::from_secs(30));
    assert_eq!(spec.fetch.retries, 3);
    assert_eq!(spec.fetch.robots_txt, RobotsPolicy::Obey);
    assert_eq!(spec.fetch.user_agent, "arachne/0.1");
    assert_eq!(spec.fetch.max_body.0, 10 * 1024 * 1024);
    assert_eq!(spec.parse.follow, vec!["a[href]".to_string()]);
    let book = &spec.parse.items[0];
    assert_eq!((book.name.as_str(), book.matches.as_str()), ("book", "/p/"));
    let fields: Vec<_> = book.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(fields, vec![("title", "h1"), ("price", ".price"), ("link", "a.more @href")]);
    assert_eq!(spec.output, vec![OutputSpec::Jsonl("items.jsonl".into())]);
    assert_eq!(spec.frontier.order, QueueOrder::Fifo);
    assert_eq!(spec.supervision.strategy, Strategy::OneForOne);
    assert_eq!(spec.supervision.max_restarts, 10);
    assert_eq!(spec.supervision.within.0, Duration::from_secs(60));
    assert_eq!(spec.supervision.max_deliveries, 5);
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let spec = ok(BASE);
    assert_eq!(spec.sandbox, None);
    assert_eq!(spec.fetch, FetchSpec::default());
    assert_eq!(spec.scope.max_depth, 20);
    assert!(spec.scope.domains.is_empty() && spec.scope.include.is_empty());
    assert_eq!(spec.parse.follow, ["a[href]", "iframe[src]", "frame[src]"]);
    assert!(spec.parse.items.is_empty());
    assert_eq!(spec.output, vec![OutputSpec::Stdout]);
    assert_eq!(spec.supervision.max_deliveries, 5);
    // An empty section is the same as an absent one.
    assert_eq!(ok(&format!("{BASE}fetch:\nscope: {{}}\n")).fetch, FetchSpec::default());
}

#[test]
fn other_forms_load() {
    let spec = ok(&format!(
        "{BASE}fetch: {{ timeout: 1.5s, max_body: 512, robots_txt: ignore, retries: 0 }}\noutput: [stdout, {{ jsonl: out/x.jsonl }}]\nfrontier: {{ order: priority }}\nsupervision: {{ strategy: rest_for_one, within: 2m }}\n"
    ));
    assert_eq!(spec.fetch.timeout.0, Duration::from_millis(1500));
    assert_eq!(spec.fetch.max_body.0, 512);
    assert_eq!(spec.fetch.robots_txt, RobotsPolicy::Ignore);
    assert_eq!(spec.output, vec![OutputSpec::Stdout, OutputSpec::Jsonl("out/x.jsonl".into())]);
    assert_eq!(spec.frontier.order, QueueOrder::Priority);
    assert_eq!(spec.supervision.within.0, Duration::from_secs(120));
    // Anchors and aliases are plain YAML.
    let spec = ok(&format!(
        "{BASE}parse:\n  items:\n    - {{ name: a, match: /a/, fields: &f {{ t: h1 }} }}\n    - {{ name: b, match: /b/, fields: *f }}\n"
    ));
    assert_eq!(spec.parse.items[1].fields.get("t").map(String::as_str), Some("h1"));
}

// ---- overrides ---------------------------------------------------------------------------

#[test]
fn overrides_set_scalars_anywhere() {
    let spec = load_str(
        "name: x\nseeds: [\"https://example.com/\"]\nfetch: { concurrency: 4 }\n",
        "crawl.yaml",
        sets(&[
            "fetch.concurrency=8",
            "scope.max_depth=3",
            "sandbox.pages=100",
            "seeds.0=http://a.example/",
            "seeds.1={sandbox}/",
            "fetch.timeout=5s",
            "sandbox.traps=true",
            "fetch.per_host.rate=0.5",
            "output.0.jsonl=out.jsonl",
            "parse.follow=[a.next, \"link[rel=next]\"]",
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.fetch.concurrency, 8);
    assert_eq!(spec.scope.max_depth, 3);
    let sandbox = spec.sandbox.expect("created by --set");
    assert_eq!((sandbox.pages, sandbox.traps), (100, true));
    assert_eq!(spec.seeds, vec!["http://a.example/".to_string(), "{sandbox}/".to_string()]);
    assert_eq!(spec.fetch.timeout.0, Duration::from_secs(5));
    assert_eq!(spec.fetch.per_host.rate, 0.5);
    assert_eq!(spec.output, vec![OutputSpec::Jsonl("out.jsonl".into())]);
    assert_eq!(spec.parse.follow, vec!["a.next".to_string(), "link[rel=next]".to_string()]);
}

#[test]
fn bad_overrides_get_the_same_checks() {
    let err =
        load_str(BASE, "crawl.yaml", sets(&["fetch.concurrency=0", "fetch.timeot=3s", "fetch.retries=lots"]))
            .expect_err("bad overrides");
    let errors = err.0;
    assert_eq!(errors.len(), 3, "{}", SpecErrors(errors.clone()));
    let find = |origin: &str| {
        errors.iter().find(|e| e.origin == origin).unwrap_or_else(|| panic!("no error from {origin}"))
    };
    let e = find("--set fetch.concurrency=0");
    assert_eq!((e.line, e.column), (None, None));
    assert_says(e, &["fetch.concurrency must be at least 1"]);
    let e = find("--set fetch.timeot=3s");
    assert_says(e, &["unknown key 'timeot' in fetch"]);
    assert_eq!(hint(e), "did you mean 'timeout'?");
    assert_says(find("--set fetch.retries=lots"), &["whole number", "'lots'"]);
    assert_eq!(
        SpecErrors(vec![find("--set fetch.concurrency=0").clone()]).to_string(),
        "--set fetch.concurrency=0: fetch.concurrency must be at least 1"
    );
}

#[test]
fn malformed_override() {
    let errors = load_str(BASE, "crawl.yaml", sets(&["fetch.concurrency"])).expect_err("no =").0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].origin, "--set fetch.concurrency");
    assert_says(&errors[0], &["no '='"]);
    assert!(hint(&errors[0]).contains("KEY=VALUE"));
    let errors = load_str(BASE, "crawl.yaml", sets(&["seeds.7=http://x/"])).expect_err("index").0;
    assert_says(&errors[0], &["past the end"]);
}

// ---- environment -------------------------------------------------------------------------

#[test]
fn env_variables_are_substituted() {
    std::env::set_var("ARACHNE_TEST_UA_7F3", "bot/9");
    std::env::set_var("ARACHNE_TEST_SECRET_7F3", "s3cr3t-value");
    let spec = ok(&format!("{BASE}fetch: {{ user_agent: \"${{ARACHNE_TEST_UA_7F3}} (+x)\" }}\n"));
    assert_eq!(spec.fetch.user_agent, "bot/9 (+x)");

    let e = only_error("fetch: { user_agent: \"${ARACHNE_TEST_SURELY_UNSET_7F3}\" }\n");
    assert_at(&e, 3, 22);
    assert_says(&e, &["'ARACHNE_TEST_SURELY_UNSET_7F3' is not set"]);

    // A secret that lands in a bad value is shown as its ${VAR}, never as its value.
    let e = only_error("fetch: { timeout: \"${ARACHNE_TEST_SECRET_7F3}\" }\n");
    let shown = SpecErrors(vec![e]).to_string();
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("${ARACHNE_TEST_SECRET_7F3}"), "{shown}");
}

// ---- what `arachne validate` prints ------------------------------------------------------

#[test]
fn validate_output_format() {
    let yaml = "name: x\nseeds: [\"https://example.com/\"]\nfetch:\n  concurency: 8\n  robots_txt: maybe\n";
    let err = load_str(yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES).expect_err("two errors");
    assert_eq!(
        err.to_string(),
        "crawl.yaml:4:3: unknown key 'concurency' in fetch\n  hint: did you mean 'concurrency'?\n\
         crawl.yaml:5:15: unknown value 'maybe' for fetch.robots_txt\n  hint: use one of: obey, ignore"
    );
}

#[test]
fn unreadable_file() {
    let errors =
        load_file(Path::new("/nonexistent/crawl.yaml"), arachne::spec::NO_OVERRIDES).expect_err("missing").0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].origin, "/nonexistent/crawl.yaml");
    assert_says(&errors[0], &["cannot read the spec"]);
}

#[test]
fn bloom_dedup_needs_a_native_redis_frontier_and_a_sane_size() {
    let e = only_error("frontier: { dedup: bloom }\n");
    assert_says(&e, &["needs `backend: redis` and `layout: native`"]);
    let broker = "brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }\n";
    let e = only_error(&format!(
        "frontier: {{ backend: redis, dedup: bloom, bloom: {{ error_rate: 1.5 }} }}\n{broker}"
    ));
    assert_says(&e, &["error_rate 1.5 is not between 0 and 1"]);
    ok(&format!(
        "{BASE}frontier: {{ backend: redis, dedup: bloom, bloom: {{ capacity: 1000000 }} }}\n{broker}"
    ));
}

#[test]
fn a_pickle_serializer_needs_the_scrapy_redis_layout() {
    let broker = "brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }\n";
    let e = only_error(&format!("frontier: {{ backend: redis, serializer: pickle }}\n{broker}"));
    assert_says(&e, &["serializer 'pickle' needs `backend: redis` and `layout: scrapy-redis`"]);
    ok(&format!("{BASE}frontier: {{ backend: redis, layout: scrapy-redis, serializer: pickle }}\n{broker}"));
}

#[test]
fn redis_cluster_settings_are_checked() {
    let cluster = "brokers: { redis: { url: \"redis://127.0.0.1:7000/\", cluster: true, nodes: [\"redis://127.0.0.1:7001/\"] } }\n";
    let spec = ok(&format!("{BASE}frontier: {{ backend: redis }}\n{cluster}"));
    let redis = spec.brokers.redis.as_ref().expect("redis");
    assert!(redis.cluster);
    assert_eq!(redis.nodes, ["redis://127.0.0.1:7001/"]);
    // A single-node spec is unchanged: no `cluster`, no `nodes` (and none serialised).
    let single = ok(&format!("{BASE}brokers: {{ redis: {{ url: \"redis://:pw@127.0.0.1:6379/\" }} }}\n"));
    let json = serde_json::to_string(&single.brokers).expect("json");
    assert!(!json.contains("cluster") && !json.contains("nodes"), "{json}");
    let masked = ok(&format!(
        "{BASE}brokers: {{ redis: {{ url: \"redis://127.0.0.1:7000/\", cluster: true, nodes: [\"redis://:s3cret@h:7001/\"] }} }}\n"
    ));
    let json = serde_json::to_string(&masked.brokers).expect("json");
    assert!(json.contains("redis://:***@h:7001/") && !json.contains("s3cret"), "{json}");
    assert!(!format!("{masked:?}").contains("s3cret"));

    let e = only_error(
        "brokers: { redis: { url: \"redis://127.0.0.1:7000/\", nodes: [\"redis://127.0.0.1:7001/\"] } }\n",
    );
    assert_says(&e, &["brokers.redis.nodes are seed nodes of a Redis Cluster", "`cluster` is not set"]);
    assert!(hint(&e).contains("cluster: true"), "{e}");
    let e = only_error("brokers: { redis: { url: \"redis://127.0.0.1:7000/2\", cluster: true } }\n");
    assert_says(&e, &["brokers.redis.url is not a usable Redis Cluster node", "only database 0"]);
    let e = only_error("brokers: { redis: { url: \"redis+unix:///tmp/r.sock\", cluster: true } }\n");
    assert_says(&e, &["not a Unix socket"]);
    let e = only_error(
        "brokers: { redis: { url: \"redis://127.0.0.1:7000/\", cluster: true, nodes: [\"http://x/\"] } }\n",
    );
    assert_says(&e, &["brokers.redis.nodes[0] is not a usable Redis Cluster node"]);
}

#[test]
fn a_redis_cluster_refuses_what_needs_one_server_or_one_slot() {
    let cluster = "brokers:\n  redis: { url: \"redis://127.0.0.1:7000/\", cluster: true }\n";
    let queue = |channel: &str| {
        format!("{cluster}bridges:\n  - {{ kind: redis-queue, topic: jobs, direction: in, channel: \"{channel}\" }}\n")
    };
    let e = only_error(&queue("jobs:requests"));
    assert_says(&e, &["on a Redis Cluster the redis-queue key 'jobs:requests' needs a hash tag"]);
    assert!(hint(&e).contains("{jobs:requests}"), "{e}");
    ok(&format!("{BASE}{}", queue("{jobs}:requests")));
    let e = only_error(&format!(
        "frontier: {{ backend: amqp }}\n{cluster}  amqp: {{ url: \"amqp://guest:guest@127.0.0.1:5672/%2f\" }}\n"
    ));
    assert_says(&e, &["frontier.backend 'amqp' keeps its seen-set on one Redis server"]);
}
