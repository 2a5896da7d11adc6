//! Kafka frontier throughput: requests admitted (produced and confirmed), leased (consumed,
//! deduped against the partition's seen-set, changelog written) and acked (committed) per
//! second through `KafkaFrontier`, beside rdkafka's own producer and consumer doing the
//! same round trip (produce and await the confirmations, consume, commit) on the same
//! broker in the same run, A B A B interleaved. Both go in chunks of 64 requests.
//!
//! The bench starts its own tansu broker on a free port (memory storage) from
//! `ARACHNE_TEST_TANSU` or `target/kafka/tansu` (`scripts/kafka.sh start` fetches it).
//! `cargo bench --bench kafka_frontier` prints the table; `ARACHNE_BENCH_REQUESTS=N` sets
//! the requests per case (default 20,000). Run by `cargo test --all-targets` (no `--bench`
//! in argv) it does a tiny smoke run (and skips, loudly, without tansu).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::bridges::kafka::KafkaFrontier;
use arachne::crawl::shared::SharedStore;
use arachne::crawl::urls::fingerprint;
use arachne::state::PendingRequest;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use url::Url;

const CHUNK: usize = 64;

/// The broker of this run; killed and reaped on drop.
struct Broker {
    child: Child,
    bootstrap: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Option<Broker> {
    let binary = std::env::var("ARACHNE_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kafka/tansu"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(binary)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let broker = Broker { child, bootstrap: format!("127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(broker)
}

fn requests(n: usize, salt: &str) -> Vec<(arachne::crawl::urls::Fingerprint, PendingRequest, i32)> {
    (0..n)
        .map(|i| {
            let u = Url::parse(&format!("http://bench.example/{salt}/page/{i}")).expect("url");
            (fingerprint(&u), PendingRequest { url: u.to_string(), depth: 1, redirect_chain: Vec::new() }, 0)
        })
        .collect()
}

/// `n` requests through admit + lease + ack: requests per second (the group join and a
/// warm-up request are before the clock starts).
async fn frontier_case(bootstrap: &str, name: &str, n: usize) -> f64 {
    let yaml = format!(
        "name: {name}\nseeds: []\nfrontier: {{ backend: kafka, kafka: {{ partitions: 6, key: url }} }}\n\
         brokers: {{ kafka: {{ bootstrap: \"{bootstrap}\", client: {{ \"session.timeout.ms\": 6000 }} }} }}\n"
    );
    let spec = arachne::spec::load_str(&yaml, "bench.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let f = KafkaFrontier::open(&spec).await.expect("open the Kafka frontier");
    let warm = requests(1, "warm");
    f.admit(warm).await.expect("admit");
    let mut leased = Vec::new();
    while leased.is_empty() {
        leased = f.lease(1).await.expect("lease");
    }
    f.ack(leased.into_iter().map(|l| l.token).collect()).await.expect("ack");

    let all = requests(n, "run");
    let start = Instant::now();
    for chunk in all.chunks(CHUNK) {
        f.admit(chunk.to_vec()).await.expect("admit");
        let mut got = 0;
        while got < chunk.len() {
            let leased = f.lease(chunk.len() - got).await.expect("lease");
            got += leased.len();
            f.ack(leased.into_iter().map(|l| l.token).collect()).await.expect("ack");
        }
    }
    while !f.pending().await.expect("pending").is_done() {}
    let rate = n as f64 / start.elapsed().as_secs_f64();
    f.close().await;
    rate
}

/// The same round trip with rdkafka alone: produce a chunk and await its confirmations,
/// consume it, commit synchronously.
async fn raw_case(bootstrap: &str, name: &str, n: usize) -> f64 {
    let topic = format!("{name}.raw");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let produce = |i: usize| {
        let key = format!("http://bench.example/raw/page/{i}");
        let payload = format!("{{\"url\":\"{key}\",\"depth\":1}}");
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            producer.send(record, Duration::from_secs(30)).await.map(drop).map_err(|(e, _)| e)
        }
    };
    produce(usize::MAX).await.expect("warm-up produce");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let consume = |want: usize| {
        let mut got = 0;
        while got < want {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                got += 1;
            }
        }
        consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
    };
    consume(1);
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let chunk = CHUNK.min(n - sent);
        futures::future::try_join_all((sent..sent + chunk).map(produce)).await.expect("produce");
        consume(chunk);
        sent += chunk;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("ARACHNE_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
    } else {
        200
    };
    let Some(broker) = start_broker() else {
        eprintln!(
            "*** SKIPPED kafka_frontier bench: no tansu binary (scripts/kafka.sh start fetches it) ***"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let rounds = if bench { 3 } else { 1 };
    let run = std::process::id();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        ours.push(runtime.block_on(frontier_case(&broker.bootstrap, &format!("kbench-{run}-{round}"), n)));
        raw.push(runtime.block_on(raw_case(&broker.bootstrap, &format!("kraw-{run}-{round}"), n)));
    }
    println!("kafka frontier vs rdkafka alone, {n} requests per case in chunks of {CHUNK}, tansu on 127.0.0.1, A B interleaved x{rounds}:");
    println!(
        "  KafkaFrontier (admit + lease + ack): {ours:.0?} requests/s, median {:.0}",
        median(ours.clone())
    );
    println!(
        "  rdkafka (produce + consume + commit): {raw:.0?} requests/s, median {:.0}",
        median(raw.clone())
    );
    println!("  ratio (median): {:.2}", median(ours) / median(raw));
    drop(broker);
}
