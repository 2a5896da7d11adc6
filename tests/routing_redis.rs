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

use std::time::{Duration, Instant};

use support::procs::{assert_workers_split_the_crawl, sandbox};
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
    assert_workers_split_the_crawl(&spec, &site, &want, Instant::now() + Duration::from_secs(60));
    drop_keys(&redis.url, &name);
}
