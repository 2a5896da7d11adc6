//! Workers that consume some queues of one crawl (`arachne run --queues`, Celery's
//! `celery worker -Q`) through a Kafka frontier (`frontier.backend: kafka`, a topic per
//! queue), end to end through the binary, against a real Kafka-protocol broker (tansu) and
//! an external `SandboxServer` whose truth, request counters and request log are the
//! oracle (docs/routing.md):
//!
//! - a worker with `--queues documents` and one with `--queues default` crawl the sandbox
//!   together: the first fetches exactly the product pages, the second everything else,
//!   both end by themselves, their items together are exactly the sandbox's, no page is
//!   fetched twice; the `documents` topic (`<name>.requests.documents`) holds only product
//!   URLs and the plain requests topic only the others;
//! - two workers of `documents` (and one of `default`) share the documents topic's
//!   partitions as one consumer group: each fetches some, no item twice, nothing missing;
//! - a queue's rate (`20/s`) is an upper bound on the sandbox's request log;
//! - two processes that consume every queue share a routed crawl, and one is SIGKILLed
//!   halfway: the survivor finishes both queues, nothing missing.
//!
//! Which broker: `ARACHNE_TEST_KAFKA` (scripts/test.sh starts tansu); see
//! `support::kafka`. Every test uses its own crawl name, so its own topics and groups.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::kafka::test_kafka;
use support::procs::{
    assert_product_rate, assert_truth_items, assert_workers_split_the_crawl, collect, kill_one_halfway,
    no_page_twice, sandbox, Arachne, PRODUCTS,
};
use support::unique;

mod support;

const PARTITIONS: i32 = 3;

/// A Kafka frontier spec routing the product pages to `documents` (`queue` its settings).
fn routed(name: &str, bootstrap: &str, base: &str, queue: &str) -> String {
    format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier:
  backend: kafka
  kafka: {{ partitions: {PARTITIONS}, key: url, rebalance_wait: 10s }}
brokers:
  kafka:
    bootstrap: "{bootstrap}"
    connect_timeout: 5s
    client: {{ "session.timeout.ms": 6000, "heartbeat.interval.ms": 500 }}
fetch: {{ concurrency: 16, per_host: {{ concurrency: 8 }} }}
routes:
  - {{ match: "/item/\\d+$", queue: documents }}
queues:
  documents: {queue}
{PRODUCTS}output:
  - jsonl: items.jsonl
"#
    )
}

/// Every message of `topic` (its `PARTITIONS` partitions), as text, read from the start to
/// each partition's end (bounded).
fn read_topic(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}.reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let (mut out, mut ended) = (Vec::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while ended.len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "{topic}: read only {} messages in 20 s", out.len());
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn kafka_workers_take_only_their_queues_and_end_together() {
    let test = "kafka_workers_take_only_their_queues_and_end_together";
    let Some(kafka) = test_kafka(test) else { return };
    let (site, want) = sandbox(1000);
    let name = unique("krouted");
    let spec = routed(&name, kafka.bootstrap(), &site.base_url(), "{ concurrency: 8, priority: 1 }");
    assert_workers_split_the_crawl(&spec, &site, &want, Instant::now() + Duration::from_secs(120));

    // Each queue is its own topic: the product URLs went to the documents topic only.
    let is_product = |m: &String| m.contains("/item/");
    let documents = read_topic(kafka.bootstrap(), &format!("{name}.requests.documents"));
    let default = read_topic(kafka.bootstrap(), &format!("{name}.requests"));
    assert!(documents.len() as u64 >= want.items, "{} messages in the documents topic", documents.len());
    assert!(documents.iter().all(is_product), "a non-product request in the documents topic");
    assert!(!default.is_empty() && !default.iter().any(is_product), "a product request in the default topic");
}

#[test]
fn two_workers_of_one_queue_share_its_topic() {
    let Some(kafka) = test_kafka("two_workers_of_one_queue_share_its_topic") else { return };
    let (site, want) = sandbox(1000);
    let spec = routed(&unique("kshared"), kafka.bootstrap(), &site.base_url(), "{ concurrency: 8 }");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut docs_a = Arachne::spawn("documents-a", dirs[0].path(), &spec, &["--queues", "documents"]);
    let mut docs_b = Arachne::spawn("documents-b", dirs[1].path(), &spec, &["--queues", "documents"]);
    let mut rest = Arachne::spawn("default", dirs[2].path(), &spec, &["--queues", "default"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    for p in [&mut docs_a, &mut docs_b, &mut rest] {
        let code = p.wait(deadline);
        assert_eq!(code, 0, "{}", p.stderr());
    }

    let mut items = BTreeMap::new();
    for p in [&docs_a, &docs_b] {
        collect(&mut items, &p.items(false), true);
    }
    assert_truth_items(&items, &want);
    assert!(rest.items(false).is_empty(), "the default worker fetched a product page");
    no_page_twice(&site);
    let (a, b) = (docs_a.pages_fetched(), docs_b.pages_fetched());
    eprintln!("documents workers fetched {a} and {b} pages");
    assert_eq!(a + b, want.items, "the documents workers fetched the product pages");
    assert!(a > 0 && b > 0, "one documents worker got no partition: {a} and {b} pages");
}

#[test]
fn a_kafka_queue_rate_is_an_upper_bound_on_the_servers_request_log() {
    let test = "a_kafka_queue_rate_is_an_upper_bound_on_the_servers_request_log";
    let Some(kafka) = test_kafka(test) else { return };
    let (site, want) = sandbox(80);
    let spec = routed(&unique("krated"), kafka.bootstrap(), &site.base_url(), "{ rate: \"20/s\" }");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut worker = Arachne::spawn("worker", dir.path(), &spec, &[]);
    assert_eq!(worker.wait(Instant::now() + Duration::from_secs(90)), 0, "{}", worker.stderr());
    assert_eq!(worker.items(false).len() as u64, want.items, "{}", worker.summary());

    assert_product_rate(&site, &want, 20);
}

#[test]
fn a_killed_process_of_a_routed_crawl_leaves_nothing_missing() {
    let Some(kafka) = test_kafka("a_killed_process_of_a_routed_crawl") else { return };
    let (site, want) = sandbox(2000);
    let spec = routed(&unique("kkilled"), kafka.bootstrap(), &site.base_url(), "{ concurrency: 8 }")
        // Slow enough that the kill lands mid-crawl.
        .replace("per_host: { concurrency: 8 }", "per_host: { concurrency: 8, rate: 300 }");
    let started = Instant::now();
    kill_one_halfway(&spec, &want, started, Duration::from_secs(90), Duration::from_secs(180));
}
