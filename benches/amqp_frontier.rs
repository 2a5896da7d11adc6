//! AMQP frontier throughput: requests admitted (seen-set `SADD` in Redis, published
//! persistent and confirmed), leased (consumed with manual acks, prefetch 64) and acked per
//! second through `AmqpFrontier`, beside lapin alone doing the same broker round trip
//! (publish persistent with confirms, consume with manual acks, ack) on the same
//! rabbitmq-server in the same run, A B A B interleaved. Both go in chunks of 64 requests.
//!
//! The broker: `ARACHNE_TEST_AMQP` (an `amqp://` URL), else a node this bench starts with
//! scripts/amqp.sh (rabbitmq-server installed). The seen-set: a redis-server of its own on
//! a free port. `cargo bench --bench amqp_frontier` prints the table;
//! `ARACHNE_BENCH_REQUESTS=N` sets the requests per case (default 20,000). Run by `cargo
//! test --all-targets` (no `--bench` in argv) it does a tiny smoke run (and skips, loudly,
//! without a broker).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::bridges::amqp::{AmqpBroker, AmqpBrokerSpec, AmqpFrontier};
use arachne::crawl::shared::SharedStore;
use arachne::crawl::urls::fingerprint;
use arachne::state::PendingRequest;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use url::Url;

const CHUNK: usize = 64;

/// A child of this bench (redis-server), killed and reaped on drop.
struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A rabbitmq-server node this bench started; stopped by its PID on drop.
struct Node(PathBuf);

impl Drop for Node {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/amqp.sh");
        let _ = Command::new("bash").arg(script).arg("stop").arg(&self.0).status();
    }
}

fn free_port() -> Option<u16> {
    Some(std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port())
}

fn start_redis() -> Option<(Child_, String)> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Child_(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((guard, format!("redis://127.0.0.1:{port}/")))
}

fn amqp_url() -> Option<(Option<Node>, String)> {
    if let Ok(url) = std::env::var("ARACHNE_TEST_AMQP") {
        return Some((None, url));
    }
    if !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("amqp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let state = dir.join("node.env");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/amqp.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .arg(&state)
        .env("AMQP_BASE", dir.join("data"))
        .output()
        .ok()?;
    let node = Node(state);
    out.status.success().then(|| (Some(node), String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

fn requests(n: usize, salt: &str) -> Vec<(arachne::crawl::urls::Fingerprint, PendingRequest, i32)> {
    (0..n)
        .map(|i| {
            let u = Url::parse(&format!("http://bench.example/{salt}/page/{i}")).expect("url");
            (fingerprint(&u), PendingRequest { url: u.to_string(), depth: 1, redirect_chain: Vec::new() }, 0)
        })
        .collect()
}

/// `n` requests through admit + lease + ack: requests per second (connecting and a warm-up
/// request are before the clock starts).
async fn frontier_case(amqp: &str, redis: &str, name: &str, n: usize) -> f64 {
    let yaml = format!(
        "name: {name}\nseeds: []\nfetch: {{ concurrency: {CHUNK} }}\nfrontier: {{ backend: amqp }}\n\
         brokers: {{ amqp: {{ url: \"{amqp}\" }}, redis: {{ url: \"{redis}\" }} }}\n"
    );
    let spec = arachne::spec::load_str(&yaml, "bench.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let f = AmqpFrontier::open(&spec).await.expect("open the AMQP frontier");
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
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert!(f.pending().await.expect("pending").is_done(), "everything acked");
    f.close().await;
    rate
}

/// The same broker round trip with lapin alone: publish a chunk persistent and await its
/// confirms, consume it (prefetch 64, manual acks), ack each.
async fn raw_case(amqp: &str, name: &str, n: usize) -> f64 {
    let spec: AmqpBrokerSpec = serde_json::from_value(serde_json::json!({ "url": amqp })).expect("spec");
    let broker = AmqpBroker::new(spec).expect("broker");
    let conn = broker.connect("bench raw").await.expect("connect");
    let queue = format!("{name}.raw");
    let publish = conn.create_channel().await.expect("channel");
    publish
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    publish.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm");
    let consume = conn.create_channel().await.expect("channel");
    consume.basic_qos(CHUNK as u16, BasicQosOptions::default()).await.expect("qos");
    let mut consumer = consume
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let chunk = CHUNK.min(n - sent);
        let mut confirms = Vec::with_capacity(chunk);
        for i in sent..sent + chunk {
            let payload = format!("{{\"url\":\"http://bench.example/raw/page/{i}\",\"depth\":1}}");
            let confirm = publish
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    payload.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        for c in confirms {
            c.await.expect("confirm");
        }
        for _ in 0..chunk {
            let delivery = consumer.next().await.expect("a delivery").expect("delivery");
            consume.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await.expect("ack");
        }
        sent += chunk;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = publish.queue_delete(queue.as_str().into(), Default::default()).await;
    let _ = conn.close(200, "bench done".into()).await;
    rate
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
    let Some((_node, amqp)) = amqp_url() else {
        eprintln!("*** SKIPPED amqp_frontier bench: no RabbitMQ (ARACHNE_TEST_AMQP unset, rabbitmq-server not installed) ***");
        return;
    };
    let Some((_redis, redis)) = start_redis() else {
        eprintln!("*** SKIPPED amqp_frontier bench: redis-server is not installed or did not start ***");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let rounds = if bench { 3 } else { 1 };
    let run = std::process::id();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        ours.push(runtime.block_on(frontier_case(&amqp, &redis, &format!("abench-{run}-{round}"), n)));
        raw.push(runtime.block_on(raw_case(&amqp, &format!("araw-{run}-{round}"), n)));
    }
    println!("amqp frontier vs lapin alone, {n} requests per case in chunks of {CHUNK}, rabbitmq-server on 127.0.0.1, A B interleaved x{rounds}:");
    println!(
        "  AmqpFrontier (admit + lease + ack): {ours:.0?} requests/s, median {:.0}",
        median(ours.clone())
    );
    println!(
        "  lapin (publish+confirm, consume, ack): {raw:.0?} requests/s, median {:.0}",
        median(raw.clone())
    );
    println!("  ratio (median): {:.2}", median(ours) / median(raw));
}
