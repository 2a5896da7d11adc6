//! The `redis-queue` bridge against a real redis-server: a local queue pushed to a Redis
//! list, a Redis list (and sorted set) consumed into a local queue with a reliable pop, and
//! what a bridge that dies holding entries leaves: nothing lost, the entries come back
//! after their lease. Which server: see tests/support/mod.rs.

use std::time::{Duration, Instant};

use actix::prelude::*;
use arachne::bridges::redis::{RedisBroker, RedisQueueBridge, RedisQueueMessage};
use arachne::bus::{Queue, QueueConfig};
use arachne::spec::QueueOrder;
use serde_json::json;
use support::{conn, test_redis, unique};

mod support;

fn local<T: Send + Sync + 'static>(name: &str) -> Queue<T> {
    Queue::new(name, QueueConfig { capacity: 256, order: QueueOrder::Fifo, max_deliveries: 5 })
}

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn a_local_queue_is_pushed_to_a_redis_list_in_order() {
    let Some(redis) = test_redis("a_local_queue_is_pushed_to_a_redis_list_in_order") else { return };
    let key = unique("rq-out");
    let broker = RedisBroker::new(&redis.url).expect("broker");
    let queue = local::<serde_json::Value>("jobs.out");
    let _bridge = RedisQueueBridge::outbound(&broker, &key, QueueOrder::Fifo, queue.clone()).start();
    for i in 0..50 {
        queue.publish(json!({ "job": i })).await.expect("publish");
    }
    let mut c = conn(&redis.url);
    eventually("50 entries in Redis", || {
        redis::cmd("LLEN").arg(&key).query::<i64>(&mut c).unwrap_or(0) == 50
    })
    .await;
    // scrapy-redis's FifoQueue: LPUSH in, RPOP out, so RPOP gives the first one.
    let first: String = redis::cmd("RPOP").arg(&key).query(&mut c).expect("RPOP");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&first).expect("JSON"), json!({ "job": 0 }));
    eventually("every local delivery acked", || queue.unacked() == 0 && queue.is_empty()).await;
    let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).expect("DEL");
}

#[actix::test]
async fn entries_are_removed_from_redis_only_when_acked_locally() {
    let Some(redis) = test_redis("entries_are_removed_from_redis_only_when_acked_locally") else { return };
    let key = unique("rq-in");
    let mut c = conn(&redis.url);
    for i in 0..30 {
        let _: i64 =
            redis::cmd("LPUSH").arg(&key).arg(json!({ "n": i }).to_string()).query(&mut c).expect("LPUSH");
    }
    let _: i64 = redis::cmd("LPUSH").arg(&key).arg("plain text").query(&mut c).expect("LPUSH");
    let broker = RedisBroker::new(&redis.url).expect("broker");
    let queue = local::<RedisQueueMessage>("jobs.in");
    let lease = Duration::from_millis(800);
    let bridge = RedisQueueBridge::inbound(&broker, &key, QueueOrder::Fifo, lease, queue.clone()).start();

    // Ack 20; keep 11 unacked, as a consumer that has not finished would.
    let consumer = queue.consumer(64);
    let mut kept = Vec::new();
    let mut payloads = Vec::new();
    while payloads.len() < 31 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a delivery")
            .expect("open");
        payloads.push(d.message().payload.clone());
        if payloads.len() <= 20 {
            d.ack();
        } else {
            kept.push(d);
        }
    }
    assert_eq!(payloads[0], json!({ "n": 0 }), "fifo: the first pushed comes first");
    assert!(payloads.contains(&json!("plain text")), "a payload that is not JSON arrives as text");
    let leases = format!("{key}:leases");
    eventually("20 acked in Redis, 11 held", || {
        redis::cmd("ZCARD").arg(&leases).query::<i64>(&mut c).unwrap_or(-1) == 11
            && redis::cmd("LLEN").arg(&key).query::<i64>(&mut c).unwrap_or(-1) == 0
    })
    .await;

    // The bridge dies holding them (its actor stops; the local consumer never acks): the
    // leases stop being renewed, expire, and a new bridge on the key gets the 11 again.
    bridge.do_send(StopBridge);
    drop(kept);
    drop(consumer);
    tokio::time::sleep(lease * 2).await;
    let queue2 = local::<RedisQueueMessage>("jobs.in2");
    let _bridge2 = RedisQueueBridge::inbound(&broker, &key, QueueOrder::Fifo, lease, queue2.clone()).start();
    let consumer2 = queue2.consumer(64);
    let mut again = Vec::new();
    while again.len() < 11 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer2.next())
            .await
            .expect("redelivered")
            .expect("open");
        again.push(d.message().payload.clone());
        d.ack();
    }
    let mut want = payloads[20..].to_vec();
    let key_of = |v: &serde_json::Value| v.to_string();
    want.sort_by_key(key_of);
    again.sort_by_key(key_of);
    assert_eq!(again, want, "exactly the unacked entries come back");
    eventually("nothing left in Redis", || {
        redis::cmd("ZCARD").arg(&leases).query::<i64>(&mut c).unwrap_or(-1) == 0
            && redis::cmd("LLEN").arg(&key).query::<i64>(&mut c).unwrap_or(-1) == 0
    })
    .await;
    let _: i64 =
        redis::cmd("DEL").arg(&key).arg(&leases).arg(format!("{key}:lease_seq")).query(&mut c).expect("DEL");
}

/// Stops a bridge actor (as a crash of its process would, minus the process).
#[derive(Message)]
#[rtype(result = "()")]
struct StopBridge;

impl Handler<StopBridge> for RedisQueueBridge {
    type Result = ();
    fn handle(&mut self, _: StopBridge, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
