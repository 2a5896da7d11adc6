//! Redis frontier throughput: requests admitted, leased and acked per second through
//! `RedisFrontier` (batches of 1 and 64, one handle, one task), beside `redis-benchmark -t
//! lpush,rpop` (50 clients, its default, and 1 client) on the same redis-server in the same
//! run. The bench starts its own redis-server on a free port (no persistence) and stops it.
//!
//! `cargo bench --bench redis_frontier` prints the table. `ARACHNE_BENCH_REQUESTS=N` sets
//! the requests per case (default 20,000). Run by `cargo test --all-targets` (no `--bench`
//! in argv) it does a tiny smoke run (and skips, loudly, without redis-server).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::bridges::redis::frontier::{Layout, RedisFrontier};
use arachne::bridges::redis::politeness::RedisPoliteness;
use arachne::bridges::redis::RedisBroker;
use arachne::crawl::shared::{Permit, PermitAsk};
use arachne::crawl::urls::fingerprint;
use arachne::spec::QueueOrder;
use arachne::state::PendingRequest;
use url::Url;

/// The redis-server of this run; killed and reaped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Option<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server { child, port };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return Some(server);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// `n` requests through admit + lease + ack, `batch` at a time: requests per second.
async fn frontier_case(url: &str, name: &str, n: usize, batch: usize) -> f64 {
    let broker = RedisBroker::new(url).expect("broker");
    let f = RedisFrontier::new(&broker, name, QueueOrder::Fifo, Layout::Native, Duration::from_secs(60));
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let u = Url::parse(&format!("http://bench.example/page/{i}")).expect("url");
            (fingerprint(&u), PendingRequest { url: u.to_string(), depth: 1, redirect_chain: Vec::new() }, 0)
        })
        .collect();
    // Connect (and load the scripts) before the clock starts.
    f.pending().await.expect("pending");
    let start = Instant::now();
    let mut done = 0;
    for chunk in requests.chunks(batch) {
        let new = f.admit(chunk).await.expect("admit");
        assert!(new.iter().all(|b| *b), "fresh names: every request is new");
        let leased = f.lease(chunk.len()).await.expect("lease");
        let tokens: Vec<_> = leased.into_iter().map(|l| l.token).collect();
        done += f.ack(&tokens).await.expect("ack");
    }
    let elapsed = start.elapsed();
    assert_eq!(done, n, "every request acked");
    assert_eq!(f.pending().await.expect("pending"), (0, 0));
    n as f64 / elapsed.as_secs_f64()
}

/// The cost of shared politeness: `n` permits (a slot each, no rate, many hosts), `batch`
/// asks per call, each call also giving back the previous call's slots: permits per second.
async fn politeness_case(url: &str, name: &str, n: usize, batch: usize) -> f64 {
    let broker = RedisBroker::new(url).expect("broker");
    let f = RedisFrontier::new(&broker, name, QueueOrder::Fifo, Layout::Native, Duration::from_secs(60));
    let polite = RedisPoliteness::new(&f);
    f.pending().await.expect("pending");
    let start = Instant::now();
    let mut done = Vec::new();
    let mut granted = 0;
    for i in (0..n).step_by(batch) {
        let asks: Vec<PermitAsk> = (i..(i + batch).min(n))
            .map(|j| PermitAsk {
                host: format!("h{}", j % 16).into(),
                interval: Duration::ZERO,
                concurrency: 1000,
            })
            .collect();
        let permits = polite.permits(&std::mem::take(&mut done), &asks).await.expect("permits");
        for p in permits {
            if let Permit::Granted { slot: Some(slot), .. } = p {
                granted += 1;
                done.push(slot);
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(granted, n, "every permit granted");
    n as f64 / elapsed.as_secs_f64()
}

/// `redis-benchmark -t lpush,rpop -n N -q -p PORT -c clients`: (LPUSH/s, RPOP/s).
fn redis_benchmark(port: u16, n: usize, clients: usize) -> Option<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .args(["-t", "lpush,rpop", "-n", &n.to_string(), "-q", "-p", &port.to_string()])
        .args(["-c", &clients.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines like "LPUSH: 123456.79 requests per second, p50=0.191 msec" (after \r progress).
    let rate = |cmd: &str| -> Option<f64> {
        let line = text.split(['\r', '\n']).rfind(|l| l.starts_with(cmd))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((rate("LPUSH:")?, rate("RPOP:")?))
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("ARACHNE_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
    } else {
        256
    };
    let Some(server) = start_server() else {
        eprintln!("*** SKIPPED redis_frontier bench: redis-server is not installed or did not start ***");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/", server.port);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let run = std::process::id();
    let b1 = runtime.block_on(frontier_case(
        &url,
        &format!("bench-{run}-1"),
        n.min(if bench { 10_000 } else { n }),
        1,
    ));
    let b64 = runtime.block_on(frontier_case(&url, &format!("bench-{run}-64"), n * 5, 64));
    let p1 = runtime.block_on(politeness_case(&url, &format!("bench-{run}-p1"), n.min(10_000), 1));
    let p64 = runtime.block_on(politeness_case(&url, &format!("bench-{run}-p64"), n * 5, 64));
    let rb_n = if bench { 100_000 } else { 1_000 };
    let rb50 = redis_benchmark(server.port, rb_n, 50);
    let rb1 = redis_benchmark(server.port, rb_n, 1);
    println!("redis frontier (admit + lease + ack, one handle, one task), redis-server on 127.0.0.1:");
    println!("  batch  1: {b1:>12.0} requests/s  (3 round trips per request)");
    println!("  batch 64: {b64:>12.0} requests/s  (3 round trips per 64 requests)");
    println!("shared politeness (permit + slot given back, one script call per batch):");
    println!("  batch  1: {p1:>12.0} permits/s");
    println!("  batch 64: {p64:>12.0} permits/s");
    for (label, rb) in [("redis-benchmark -c 50", rb50), ("redis-benchmark -c 1 ", rb1)] {
        match rb {
            Some((lpush, rpop)) => {
                let ceiling = lpush.min(rpop);
                println!("  {label}: LPUSH {lpush:>10.0}/s  RPOP {rpop:>10.0}/s");
                println!(
                    "    ratio frontier/min(LPUSH,RPOP): batch 1 = {:.3}, batch 64 = {:.2}",
                    b1 / ceiling,
                    b64 / ceiling
                );
            }
            None => println!("  {label}: not available (redis-benchmark missing?)"),
        }
    }
    drop(server);
}
