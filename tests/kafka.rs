//! One crawl shared by several `arachne run` processes through Kafka
//! (`frontier: { backend: kafka }`), end to end through the binary, against a real
//! Kafka-protocol broker (tansu) and an external `SandboxServer` whose truth and request
//! counters are the oracle:
//!
//! - two processes crawl the 5,000-page sandbox together: the union of their items is
//!   exactly the sandbox's item set, no page fetched twice with success, a fair share each;
//! - one of two is SIGKILLed mid-crawl: the survivor takes over its partitions and
//!   finishes, nothing missing;
//! - a third process joins mid-crawl: the rebalance loses nothing and fetches nothing twice;
//! - the connection to the broker is cut for a few seconds mid-crawl (a TCP proxy in this
//!   test, in front of a broker of this test's own): the crawl completes;
//! - a process with `seeds: []` waits; a plain producer's start URL starts it, and its
//!   `output: - kafka` items are read back with a plain consumer;
//! - a wrong address is a clear error before anything is crawled.
//!
//! Which broker: `ARACHNE_TEST_KAFKA` (the bootstrap address; scripts/test.sh starts tansu
//! with scripts/kafka.sh and sets it, with `ARACHNE_TEST_TANSU`, the broker's binary).
//! Without it, under `CI` the tests fail; elsewhere they start their own tansu from
//! `target/kafka/tansu` (`scripts/kafka.sh start` fetches it), or are skipped loudly.
//! Every test uses its own crawl name, so its own topics and consumer group.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;
use support::kafka::{start_broker, tansu_binary, test_kafka};
use support::procs::{
    assert_shared_crawl, assert_truth_items, collect, kill_one_halfway, no_page_twice, sandbox,
    two_to_the_end, wait_for_items, Arachne,
};
use support::{free_port, unique};

mod support;

// ---------------------------------------------------------------------------------------
// The broker

// Started by `support::kafka` (the suite's, or one of a test's own).

// ---------------------------------------------------------------------------------------
// The spec

/// A spec on a Kafka frontier with the product rule and a jsonl output. Keyed by URL: the
/// sandbox is one host, and host keys would put the whole crawl in one partition.
fn shop(name: &str, bootstrap: &str, seeds: &[String], extra: &str) -> String {
    let seeds = serde_json::to_string(seeds).expect("seeds");
    format!(
        r#"name: {name}
seeds: {seeds}
frontier:
  backend: kafka
  kafka: {{ partitions: 6, key: url, rebalance_wait: 10s }}
brokers:
  kafka:
    bootstrap: "{bootstrap}"
    connect_timeout: 5s
    client: {{ "session.timeout.ms": 6000, "heartbeat.interval.ms": 500 }}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
{extra}"#
    )
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn two_processes_share_one_crawl() {
    let Some(kafka) = test_kafka("two_processes_share_one_crawl") else { return };
    let (site, want) = sandbox(5000);
    let spec = shop(&unique("kshop"), kafka.bootstrap(), &[format!("{}/", site.base_url())], "");
    let (a, b, _dirs) = two_to_the_end(&spec, Duration::from_secs(90));

    assert_shared_crawl(&a, &b, &site, &want);
}

#[test]
fn a_killed_process_leaves_nothing_missing() {
    let Some(kafka) = test_kafka("a_killed_process_leaves_nothing_missing") else { return };
    let started = Instant::now();
    let (site, want) = sandbox(5000);
    let spec = shop(
        &unique("kkilled"),
        kafka.bootstrap(),
        &[format!("{}/", site.base_url())],
        // Slow enough that the kill lands mid-crawl.
        "fetch: { per_host: { rate: 500 } }\n",
    );
    kill_one_halfway(&spec, &want, started, Duration::from_secs(30), Duration::from_secs(120));
}

#[test]
fn a_process_joining_mid_crawl_loses_nothing_and_fetches_nothing_twice() {
    let Some(kafka) = test_kafka("a_process_joining_mid_crawl") else { return };
    let started = Instant::now();
    let (site, want) = sandbox(5000);
    let spec = shop(
        &unique("kjoin"),
        kafka.bootstrap(),
        &[format!("{}/", site.base_url())],
        "fetch: { per_host: { rate: 500 } }\n",
    );
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut a = Arachne::spawn("a", dirs[0].path(), &spec, &[]);
    let mut b = Arachne::spawn("b", dirs[1].path(), &spec, &[]);
    wait_for_items(&mut a, (want.items / 10) as usize, started + Duration::from_secs(30));
    assert!(a.running() && b.running(), "the crawl ended before the third joined");
    let mut c = Arachne::spawn("c", dirs[2].path(), &spec, &[]);
    let deadline = started + Duration::from_secs(120);
    for p in [&mut a, &mut b, &mut c] {
        let code = p.wait(deadline);
        assert_eq!(code, 0, "{}", p.stderr());
    }
    let mut items = BTreeMap::new();
    for p in [&a, &b, &c] {
        collect(&mut items, &p.items(false), true);
    }
    assert_truth_items(&items, &want);
    no_page_twice(&site);
    assert!(c.pages_fetched() > 0, "the third process got no work: {}", c.summary());
}

/// A TCP proxy that can cut every connection and refuse new ones for a while.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let (cut, conns, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (c2, k2, s2) = (cut.clone(), conns.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) if !c2.load(Ordering::Relaxed) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            pipe(&client, &server, &k2);
                        }
                    }
                    Ok((client, _)) => drop(client),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, cut, conns, stop }
    }

    /// Cuts every connection; new ones are refused until [`Proxy::restore`].
    fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        for c in self.conns.lock().expect("conns").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

fn pipe(client: &TcpStream, server: &TcpStream, conns: &Arc<Mutex<Vec<TcpStream>>>) {
    let mut list = conns.lock().expect("conns");
    for (from, to) in [(client, server), (server, client)] {
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    list.extend([client.try_clone(), server.try_clone()].into_iter().flatten());
}

#[test]
fn a_cut_connection_mid_crawl_completes_the_crawl() {
    if tansu_binary().is_none() {
        assert!(std::env::var_os("CI").is_none(), "no tansu binary under CI");
        eprintln!("SKIPPED a_cut_connection_mid_crawl_completes_the_crawl: no tansu binary");
        return;
    }
    let started = Instant::now();
    // The broker advertises the proxy's address, so every connection goes through it.
    let broker_port = free_port();
    let proxy = Proxy::start(broker_port);
    let _broker = start_broker(broker_port, proxy.port);
    let (site, want) = sandbox(2000);
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    let spec = shop(
        &unique("kcut"),
        &bootstrap,
        &[format!("{}/", site.base_url())],
        "fetch: { per_host: { rate: 300 } }\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    wait_for_items(&mut p, (want.items / 5) as usize, started + Duration::from_secs(30));
    assert!(p.running(), "the crawl ended before the cut:\n{}", p.stderr());
    proxy.cut();
    std::thread::sleep(Duration::from_secs(3));
    proxy.restore();
    assert_eq!(p.wait(started + Duration::from_secs(120)), 0, "{}", p.stderr());
    eprintln!("{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_truth_items(&items, &want);
    let reconnects = p.summary()["reconnects"].as_u64().unwrap_or(0);
    assert!(reconnects >= 1, "the cut was not seen: {}", p.summary());
}

#[test]
fn a_plain_producers_start_url_starts_a_waiting_process_and_a_plain_consumer_reads_items() {
    let Some(kafka) = test_kafka("start_url_and_items") else { return };
    let (site, want) = sandbox(200);
    let name = unique("kwait");
    let items_topic = format!("{name}.items");
    let spec = shop(
        &name,
        kafka.bootstrap(),
        &[],
        &format!("  - kafka: {{ topic: \"{items_topic}\", key: url }}\n"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut p = Arachne::spawn("p", dir.path(), &spec, &["--stop-after", "15s"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(p.running(), "a process with seeds: [] ended instead of waiting:\n{}", p.stderr());
    assert_eq!(p.item_lines(), 0);

    // What `kafka-console-producer --topic <name>.start_urls` does: one URL a message.
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    let url = format!("{}/", site.base_url());
    producer
        .send(BaseRecord::<(), _>::to(&format!("{name}.start_urls")).payload(&url))
        .map_err(|(e, _)| e)
        .expect("produce");
    producer.flush(Duration::from_secs(10)).expect("flush");

    assert_eq!(p.wait(started + Duration::from_secs(40)), 0, "{}", p.stderr());
    let mut from_file = BTreeMap::new();
    collect(&mut from_file, &p.items(false), true);
    assert_truth_items(&from_file, &want);

    // What `kafka-console-consumer --from-beginning` does.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", format!("{name}.reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    consumer.subscribe(&[items_topic.as_str()]).expect("subscribe");
    let mut read: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < want.items as usize && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let item: Value = serde_json::from_slice(m.payload().expect("payload")).expect("a JSON item");
            assert_eq!(
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                item["url"].as_str().map(String::from)
            );
            read.push(item);
        }
    }
    let mut from_kafka = BTreeMap::new();
    collect(&mut from_kafka, &read, true);
    assert_eq!(from_kafka, from_file, "the Kafka topic and the jsonl file hold the same items");
}

#[test]
fn a_wrong_address_is_a_clear_error_before_the_crawl() {
    let (site, _) = sandbox(20);
    let dead = format!("127.0.0.1:{}", free_port());
    let spec = shop(&unique("kdead"), &dead, &[format!("{}/", site.base_url())], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    let code = p.wait(Instant::now() + Duration::from_secs(30));
    assert_eq!(code, 1, "{}", p.stderr());
    let err = p.stderr();
    assert!(err.contains("cannot reach Kafka at") && err.contains(&dead), "{err}");
    assert_eq!(site.stats().total_requests, 0, "nothing may be crawled");
}

#[test]
fn items_bridged_out_reach_a_kafka_topic() {
    let Some(kafka) = test_kafka("items_bridged_out") else { return };
    let (site, want) = sandbox(100);
    let name = unique("kbridge");
    let out_topic = format!("{name}.bridged-items");
    // A local frontier: only the bridge talks to Kafka.
    let spec = format!(
        "name: {name}\nseeds: [\"{}/\"]\nbrokers: {{ kafka: {{ bootstrap: \"{}\" }} }}\n\
         bridges:\n  - {{ kind: kafka, topic: items, direction: out, channel: \"{out_topic}\", key: url }}\n\
         parse:\n  items:\n    - {{ name: product, match: \"/item/\\\\d+$\", fields: {{ title: \"h1\" }} }}\n\
         output:\n  - jsonl: items.jsonl\n",
        site.base_url(),
        kafka.bootstrap()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(60)), 0, "{}", p.stderr());
    let read = read_topic(kafka.bootstrap(), &out_topic, want.items as usize);
    let mut from_kafka = BTreeMap::new();
    collect(&mut from_kafka, &read, true);
    assert_truth_items(&from_kafka, &want);
}

/// Up to `n` JSON messages of `topic`, from the beginning, within 30 s.
fn read_topic(bootstrap: &str, topic: &str, n: usize) -> Vec<Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}.reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read.push(serde_json::from_slice(m.payload().expect("payload")).expect("JSON"));
        }
    }
    read
}

#[test]
fn a_kafka_topic_bridged_in_is_published_locally_then_committed() {
    use arachne::bridges::kafka::{KafkaBridge, KafkaBroker, KafkaBrokerSpec, KafkaMessage};
    use arachne::bus::{Overflow, Topic};

    let Some(kafka) = test_kafka("bridged_in") else { return };
    let name = unique("kin");
    let (topic, group) = (format!("{name}.jobs"), format!("{name}.group"));
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    for i in 0..20 {
        let payload = if i % 2 == 0 { format!("{{\"job\":{i}}}") } else { format!("plain {i}") };
        producer
            .send(BaseRecord::to(&topic).key(&format!("k{i}")).payload(&payload))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let spec: KafkaBrokerSpec = serde_json::from_value(serde_json::json!({
        "bootstrap": kafka.bootstrap(),
        "client": { "session.timeout.ms": 6000 }
    }))
    .expect("broker spec");
    let broker = KafkaBroker::new(spec).expect("broker");
    let local: Topic<KafkaMessage> = Topic::new("remote.jobs");
    let subscription = local.subscribe(64, Overflow::Block);
    let bridge = KafkaBridge::inbound(&broker, &topic, &group, local.clone()).expect("bridge");
    let lag = bridge.lag();
    let system = actix::System::new();
    let got = system.block_on(async move {
        use actix::Actor;
        let _addr = bridge.start();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 20 && Instant::now() < deadline {
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), subscription.recv()).await {
                got.push((*m).clone());
            }
        }
        // The lag falls to 0 once every offset is committed (measured every second).
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let behind: i64 = lag.lock().expect("lag").values().sum();
            let measured = !lag.lock().expect("lag").is_empty();
            if (measured && behind == 0) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        local.close();
        got
    });
    assert_eq!(got.len(), 20, "{got:?}");
    let first = got.iter().find(|m| m.key.as_deref() == Some("k0")).expect("k0");
    assert_eq!(first.payload, serde_json::json!({ "job": 0 }));
    let second = got.iter().find(|m| m.key.as_deref() == Some("k1")).expect("k1");
    assert_eq!(second.payload, serde_json::json!("plain 1"));

    // Committed after the local publish: each partition's committed offset is one past the
    // last message received from it.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", &group)
        .create()
        .expect("consumer");
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for m in &got {
        let e = last.entry(m.partition).or_insert(m.offset);
        *e = (*e).max(m.offset);
    }
    let mut list = rdkafka::TopicPartitionList::new();
    for p in last.keys() {
        list.add_partition(&topic, *p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).expect("committed");
    for e in committed.elements_for_topic(&topic) {
        assert_eq!(
            e.offset(),
            rdkafka::Offset::Offset(last[&e.partition()] + 1),
            "partition {}",
            e.partition()
        );
    }
}

/// What the frontier relies on of the broker: a consumer that starts inside a record batch
/// (a committed offset in the middle of what a producer sent at once, as after a rebalance)
/// reads the rest of that batch and the batches after it. (tansu reports the high watermark
/// as one past the last batch's *first* offset: `lag` probes past it.)
#[test]
fn a_consumer_starting_inside_a_record_batch_reads_the_rest_of_it() {
    let Some(kafka) = test_kafka("inside_a_batch") else { return };
    let topic = unique("batch");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("linger.ms", "200")
        .create()
        .expect("producer");
    // Three batches: 0..10, 10..20, 20..30.
    for batch in 0..3 {
        for i in 0..10 {
            let payload = format!("m{batch}.{i}");
            producer.send(BaseRecord::<(), _>::to(&topic).partition(0).payload(&payload)).expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
    }
    for start in [0i64, 3, 5, 9, 10, 13, 25] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap())
            .set("group.id", format!("{topic}.{start}"))
            .set("fetch.wait.max.ms", "50")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let (_, high) = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(5)).expect("watermarks");
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, rdkafka::Offset::Offset(start)).expect("offset");
        consumer.assign(&list).expect("assign");
        let mut read = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => read.push(m.offset()),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                _ => {}
            }
        }
        assert_eq!(read, (start..30).collect::<Vec<_>>(), "from {start} (high watermark {high})");
    }
}
