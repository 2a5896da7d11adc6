//! Bus throughput: topic fan-out to 1, 4 and 16 subscribers and a queue with acks (1 and 4
//! consumers, prefetch 64), beside a bare bounded `tokio::sync::mpsc` channel of the same
//! capacity as the ceiling, all measured in one run on one tokio runtime.
//!
//! `cargo bench --bench bus` prints the table (best of 3 runs of each case).
//! `ARACHNE_BENCH_MESSAGES=N` sets the messages per case (default 1,000,000).
//! Run by `cargo test --all-targets` (no `--bench` in argv) it does a tiny smoke run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arachne::bus::{Overflow, Queue, QueueConfig, Topic};
use arachne::spec::QueueOrder;

/// Buffer of every channel: the mpsc bound, each subscription's and the queue's capacity.
const CAPACITY: usize = 1024;
/// The queue consumers' prefetch window.
const PREFETCH: usize = 64;

/// Messages through a bare bounded mpsc channel: one producer task, one consumer task.
async fn mpsc(n: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
    let start = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut sum = 0u64;
        while let Some(m) = rx.recv().await {
            sum = sum.wrapping_add(m);
        }
        sum
    });
    for i in 0..n {
        tx.send(i).await.expect("receiver alive");
    }
    drop(tx);
    std::hint::black_box(consumer.await.expect("consumer"));
    start.elapsed()
}

/// One publisher task to a topic with `subs` subscribers (`Block`), each drained by a task.
async fn fan_out(n: u64, subs: usize) -> Duration {
    let topic = Topic::<u64>::new("bench");
    let drains: Vec<_> = (0..subs)
        .map(|_| {
            let sub = topic.subscribe(CAPACITY, Overflow::Block);
            tokio::spawn(async move {
                let mut got = 0u64;
                while sub.recv().await.is_some() {
                    got += 1;
                }
                got
            })
        })
        .collect();
    let start = Instant::now();
    for i in 0..n {
        topic.publish(i).await;
    }
    topic.close();
    for d in drains {
        assert_eq!(d.await.expect("drain"), n, "every subscriber gets every message");
    }
    start.elapsed()
}

/// One publisher task to a queue; `consumers` tasks each take and ack with prefetch 64.
async fn queue(n: u64, consumers: usize) -> Duration {
    let q = Queue::<u64>::new(
        "bench",
        QueueConfig { capacity: CAPACITY, order: QueueOrder::Fifo, max_deliveries: 5 },
    );
    let acked = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..consumers)
        .map(|_| {
            let c = q.consumer(PREFETCH);
            let acked = acked.clone();
            tokio::spawn(async move {
                while let Some(d) = c.next().await {
                    d.ack();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    for i in 0..n {
        q.publish(i).await.expect("open");
    }
    q.close();
    for t in tasks {
        t.await.expect("consumer");
    }
    assert_eq!(acked.load(Ordering::Relaxed), n, "every message acked once");
    start.elapsed()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: u64 = if bench {
        std::env::var("ARACHNE_BENCH_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
    } else {
        2_000
    };
    let rounds = if bench { 3 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let best = |f: &dyn Fn() -> Duration| (0..rounds).map(|_| f()).min().expect("one round");

    let base = best(&|| rt.block_on(mpsc(n)));
    let base_rate = n as f64 / base.as_secs_f64();
    println!(
        "bus throughput: {n} messages per case, capacity {CAPACITY}, {} worker threads, best of {rounds}",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!("{:<42} {:>10} {:>14} {:>16} {:>9}", "case", "time", "messages/s", "deliveries/s", "vs mpsc");
    let row = |label: &str, took: Duration, fan: usize| {
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "{label:<42} {:>8.1}ms {:>14.0} {:>16.0} {:>8.2}x",
            took.as_secs_f64() * 1e3,
            rate,
            rate * fan as f64,
            rate / base_rate
        );
    };
    row("mpsc (bounded, ceiling)", base, 1);
    for subs in [1, 4, 16] {
        let took = best(&|| rt.block_on(fan_out(n, subs)));
        row(&format!("topic fan-out, {subs} subscriber(s)"), took, subs);
    }
    for consumers in [1, 4] {
        let took = best(&|| rt.block_on(queue(n, consumers)));
        row(&format!("queue + ack, {consumers} consumer(s), prefetch {PREFETCH}"), took, 1);
    }
}
