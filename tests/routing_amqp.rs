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

use std::time::{Duration, Instant};

use support::procs::{assert_workers_split_the_crawl, sandbox};
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
    assert_workers_split_the_crawl(&spec, &site, &want, Instant::now() + Duration::from_secs(90));
}
