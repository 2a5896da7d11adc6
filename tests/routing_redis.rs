//! Workers that consume some queues of one crawl (`arachne run --queues`, Celery's
//! `celery worker -Q`) through a Redis frontier, end to end through the binary, against an
//! external `SandboxServer` whose truth and request counters are the oracle
//! (docs/routing.md):
//!
//! - a worker with `--queues documents` and one with `--queues default` crawl the sandbox
//!   together: the first fetches exactly the product pages (the `documents` route), the
//!   second everything else, both end by themselves when the whole crawl is done, and their
//!   items together are exactly the sandbox's, with no page fetched twice.
//!
//! Which server: `ARACHNE_TEST_REDIS_URL` (scripts/test.sh starts one); without it, under
//! `CI` the test fails, elsewhere it starts its own `redis-server` (skipped, loudly, when
//! none is installed). Every wait has a deadline; the children are killed on failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::procs::{assert_truth_items, collect, no_page_twice, sandbox, Arachne};
use support::{conn, test_redis, unique};

mod support;

/// Deletes the crawl's keys (`arachne:<name>:*`).
fn drop_keys(url: &str, name: &str) {
    let mut c = conn(url);
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("arachne:{name}:*")).query(&mut c).expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
    }
}

#[test]
fn workers_take_only_their_queues_and_end_together() {
    let Some(redis) = test_redis("workers_take_only_their_queues_and_end_together") else { return };
    let (site, want) = sandbox(1000);
    let name = unique("routed");
    let spec = format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier: {{ backend: redis, lease: 30s }}
brokers: {{ redis: {{ url: "{url}" }} }}
routes:
  - {{ match: "/item/\\d+$", queue: documents }}
queues:
  documents: {{ concurrency: 8, priority: 1 }}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1" }}
output:
  - jsonl: items.jsonl
"#,
        base = site.base_url(),
        url = redis.url,
    );
    let (dir_docs, dir_rest) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut docs = Arachne::spawn("documents", dir_docs.path(), &spec, &["--queues", "documents"]);
    let mut rest = Arachne::spawn("default", dir_rest.path(), &spec, &["--queues", "default"]);
    assert_eq!(docs.wait(deadline), 0, "documents:\n{}", docs.stderr());
    assert_eq!(rest.wait(deadline), 0, "default:\n{}", rest.stderr());

    let mut items = BTreeMap::new();
    collect(&mut items, &docs.items(false), true);
    assert_truth_items(&items, &want);
    assert!(rest.items(false).is_empty(), "the default worker fetched a product page");
    no_page_twice(&site);

    let (sd, sr) = (docs.summary(), rest.summary());
    assert_eq!(sd["pages_fetched"], want.items, "documents fetched the product pages:\n{sd}");
    assert_eq!(sr["pages_fetched"], want.pages_fetched - want.items, "default fetched the rest:\n{sr}");
    assert_eq!(sd["queues"]["default"]["fetched"], 0, "{sd}");
    assert_eq!(sd["queues"]["documents"]["fetched"], want.items, "{sd}");
    assert_eq!(sr["queues"]["documents"]["fetched"], 0, "{sr}");
    drop_keys(&redis.url, &name);
}
