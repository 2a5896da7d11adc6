//! Workers that consume some queues of one crawl (`arachne run --queues`) through a
//! RabbitMQ frontier (`frontier.backend: amqp`, the seen-set in Redis), end to end through
//! the binary, against an external `SandboxServer` (docs/routing.md):
//!
//! - a worker with `--queues documents` and one with `--queues default` crawl the sandbox
//!   together: the first fetches exactly the product pages, the second everything else,
//!   both end by themselves, their items together are exactly the sandbox's, no page is
//!   fetched twice; each queue is a broker queue bound to the requests exchange by its name.
//!
//! Which broker: `ARACHNE_TEST_AMQP` (scripts/test.sh starts rabbitmq-server with
//! scripts/amqp.sh and sets it); without it the test fails under `CI` and is skipped
//! loudly elsewhere (`scripts/amqp.sh start` starts a node). Redis as in the other suites.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::procs::{assert_truth_items, collect, no_page_twice, sandbox, Arachne};
use support::{test_redis, unique};

mod support;

fn test_amqp(test: &str) -> Option<String> {
    match std::env::var("ARACHNE_TEST_AMQP") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var_os("CI").is_none(), "{test}: ARACHNE_TEST_AMQP is not set under CI");
            eprintln!("SKIPPED {test}: no RabbitMQ (run scripts/test.sh, or scripts/amqp.sh start)");
            None
        }
    }
}

#[test]
fn amqp_workers_take_only_their_queues_and_end_together() {
    let test = "amqp_workers_take_only_their_queues_and_end_together";
    let Some(amqp) = test_amqp(test) else { return };
    let Some(redis) = test_redis(test) else { return };
    let (site, want) = sandbox(1000);
    let name = unique("routed");
    let spec = format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier: {{ backend: amqp }}
brokers:
  amqp: {{ url: "{amqp}", connect_timeout: 5s, heartbeat: 5s }}
  redis: {{ url: "{redis}" }}
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
        redis = redis.url,
    );
    let (dir_docs, dir_rest) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let deadline = Instant::now() + Duration::from_secs(90);
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
    assert_eq!(sr["queues"]["documents"]["fetched"], 0, "{sr}");
}
