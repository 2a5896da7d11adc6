//! The bus through its public API: queue orders, acks, redelivery (after a nack and after a
//! consumer's crash under the supervisor), dead letters, prefetch and backpressure; topics
//! and pattern subscriptions with filters, bounded memory under a stalled subscriber, and
//! (un)subscribing while messages flow. No sleep is longer than 100 ms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use arachne::bus::{
    Bus, Delivery, Filter, Overflow, PatternError, PublishError, Queue, QueueConfig, Topic, WrongType,
};
use arachne::observe::Stats;
use arachne::spec::{QueueOrder, Strategy};
use arachne::supervise::{Restart, Supervisor, SupervisorConfig};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(10);

fn queue(order: QueueOrder, capacity: usize, max_deliveries: u32) -> Queue<u32> {
    Queue::new("q", QueueConfig { capacity, order, max_deliveries })
}

/// Waits for `fut`, failing the test if it takes longer than `LONG`.
async fn soon<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(LONG, fut).await.expect("finished in time")
}

/// Asserts that `fut` is still pending after `SHORT`.
async fn stays_pending<F: std::future::Future>(fut: F, what: &str) {
    assert!(tokio::time::timeout(SHORT, fut).await.is_err(), "{what} should wait");
}

// ---------------------------------------------------------------------------------- queues

#[tokio::test]
async fn each_order_fifo_lifo_priority() {
    for (order, want) in [
        (QueueOrder::Fifo, vec![10, 11, 12, 13, 14]),
        (QueueOrder::Lifo, vec![14, 13, 12, 11, 10]),
        // Highest priority first, fifo among equals.
        (QueueOrder::Priority, vec![12, 14, 10, 13, 11]),
    ] {
        let q = queue(order, 16, 3);
        for (m, prio) in [(10, 5), (11, 0), (12, 9), (13, 5), (14, 9)] {
            q.publish_with_priority(m, prio).await.unwrap();
        }
        q.close();
        let c = q.consumer(1);
        let mut got = Vec::new();
        while let Some(d) = soon(c.next()).await {
            got.push(*d);
            d.ack();
        }
        assert_eq!(got, want, "{order:?}");
        assert_eq!(q.stats().acked.load(Ordering::Relaxed), 5);
    }
}

#[tokio::test]
async fn nack_with_requeue_redelivers_next_in_every_order() {
    for order in [QueueOrder::Fifo, QueueOrder::Lifo, QueueOrder::Priority] {
        let q = queue(order, 16, 5);
        for m in [1, 2, 3] {
            q.publish(m).await.unwrap();
        }
        let c = q.consumer(1);
        let first = soon(c.next()).await.unwrap();
        let value = *first;
        assert_eq!(first.deliveries(), 1);
        first.nack(true);
        let again = soon(c.next()).await.unwrap();
        assert_eq!((*again, again.deliveries()), (value, 2), "{order:?}: a requeued message is served next");
        again.ack();
        assert_eq!(q.stats().redeliveries.load(Ordering::Relaxed), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.unacked(), 0);
    }
}

#[tokio::test]
async fn dropped_delivery_in_a_panicking_task_comes_back_to_another_consumer() {
    let q = queue(QueueOrder::Fifo, 16, 5);
    q.publish(42).await.unwrap();
    let crashing = q.consumer(4);
    // The consumer and its unacked delivery die with the task that panics.
    let crash = tokio::spawn(async move {
        let d = crashing.next().await.unwrap();
        assert_eq!(*d, 42);
        panic!("consumer crashed on purpose");
    });
    assert!(crash.await.unwrap_err().is_panic());
    let survivor = q.consumer(4);
    let d = soon(survivor.next()).await.unwrap();
    assert_eq!((*d, d.deliveries()), (42, 2));
    d.ack();
    assert_eq!(q.stats().redeliveries.load(Ordering::Relaxed), 1);
}

/// Consumes the `jobs` queue through `ctx.add_stream`; panics on 13 the first time.
struct Worker {
    jobs: Queue<u32>,
    crashed: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<(u32, u32)>>>,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // Also after a restart: the old stream (and its consumer) went with the old context.
        ctx.add_stream(self.jobs.consumer(4).into_stream());
    }
}

impl Supervised for Worker {}

impl StreamHandler<Delivery<u32>> for Worker {
    fn handle(&mut self, d: Delivery<u32>, _: &mut Context<Self>) {
        if *d == 13 && !self.crashed.swap(true, Ordering::SeqCst) {
            panic!("worker crashed on 13 on purpose");
        }
        self.done.lock().unwrap().push((*d, d.deliveries()));
        d.ack();
    }
}

#[test]
fn supervised_actor_crash_gives_its_delivery_back() {
    System::new().block_on(async {
        let jobs = queue(QueueOrder::Fifo, 64, 5);
        let stats = Arc::new(Stats::default());
        let config = SupervisorConfig {
            name: "bus-test".into(),
            strategy: Strategy::OneForOne,
            max_restarts: 10,
            within: Duration::from_secs(60),
        };
        let mut sup = Supervisor::new(config, stats.clone());
        let crashed = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (j, c, d) = (jobs.clone(), crashed.clone(), done.clone());
        // Keep the address: actix restarts only an actor whose mailbox still has a sender.
        let _addr = sup.start("worker", Restart::Permanent, &Arbiter::current(), move |_| Worker {
            jobs: j,
            crashed: c,
            done: d,
        });
        for m in 1..=20 {
            jobs.publish(m).await.unwrap();
        }
        soon(async {
            while done.lock().unwrap().len() < 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let _ = tokio::time::timeout(SHORT, sup.watch()).await;
        assert!(crashed.load(Ordering::SeqCst));
        let done = done.lock().unwrap().clone();
        let by_message: HashMap<u32, u32> = done.iter().copied().collect();
        assert_eq!(by_message.len(), 20, "every message acked once: {done:?}");
        assert_eq!(by_message[&13], 2, "the crashed delivery came back as its second delivery");
        assert!(by_message.iter().all(|(m, n)| *m == 13 || *n == 1));
        assert_eq!(jobs.stats().acked.load(Ordering::Relaxed), 20);
        assert_eq!(jobs.stats().redeliveries.load(Ordering::Relaxed), 1);
        assert_eq!(jobs.unacked(), 0);
        assert_eq!(stats.restarts.load(Ordering::SeqCst), 1);
        sup.stop_all();
    });
}

#[tokio::test]
async fn max_deliveries_then_dead_letter() {
    let q = queue(QueueOrder::Fifo, 16, 3);
    q.publish(7).await.unwrap();
    let c = q.consumer(1);
    for n in 1..=3 {
        let d = soon(c.next()).await.unwrap();
        assert_eq!(d.deliveries(), n);
        if n == 2 {
            drop(d); // a crash counts like a nack
        } else {
            d.nack(true);
        }
    }
    assert!(c.try_next().unwrap().is_none(), "dead-lettered, not retried a fourth time");
    let dead = q.take_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!((*dead[0].message, dead[0].deliveries), (7, 3));
    assert!(dead[0].reason.contains("3 times"), "{}", dead[0].reason);
    assert_eq!(q.stats().dead_letters.load(Ordering::Relaxed), 1);
    assert_eq!(q.stats().redeliveries.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn reject_and_nack_without_requeue_dead_letter_at_once_through_the_hook() {
    let q = queue(QueueOrder::Fifo, 16, 5);
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let h = hooked.clone();
    q.on_dead_letter(move |letter| h.lock().unwrap().push((*letter.message, letter.reason)));
    q.publish(1).await.unwrap();
    q.publish(2).await.unwrap();
    let c = q.consumer(2);
    soon(c.next()).await.unwrap().reject("bad page");
    soon(c.next()).await.unwrap().nack(false);
    let hooked = hooked.lock().unwrap().clone();
    assert_eq!(hooked[0], (1, "bad page".to_string()));
    assert_eq!(hooked[1].0, 2);
    assert!(q.take_dead_letters().is_empty(), "the hook took them");
    assert_eq!(q.stats().dead_letters.load(Ordering::Relaxed), 2);
}

/// A consumer waiting on a closed queue ends when the last unacked delivery settles, even
/// when that settlement is a dead letter (it used to wait forever: a dead letter woke only
/// publishers).
#[tokio::test]
async fn closed_queue_ends_its_consumers_when_the_last_delivery_is_dead_lettered() {
    let q = queue(QueueOrder::Fifo, 16, 5);
    q.publish(1).await.unwrap();
    let holder = q.consumer(1);
    let d = holder.next().await.unwrap();
    q.close();
    let waiter = q.consumer(1);
    let ended = tokio::spawn(async move { waiter.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!ended.is_finished(), "an unacked delivery may still come back");
    d.reject("gave up");
    assert!(soon(ended).await.unwrap());
    assert!(matches!(q.publish(2).await, Err(PublishError::Closed)));
}

#[tokio::test]
async fn prefetch_limits_each_consumer() {
    let q = queue(QueueOrder::Fifo, 16, 5);
    for m in 0..6 {
        q.publish(m).await.unwrap();
    }
    let a = q.consumer(2);
    let b = q.consumer(3);
    let a1 = soon(a.next()).await.unwrap();
    let a2 = soon(a.next()).await.unwrap();
    stays_pending(a.next(), "a third delivery past prefetch 2").await;
    let bs: Vec<_> =
        [soon(b.next()).await.unwrap(), soon(b.next()).await.unwrap(), soon(b.next()).await.unwrap()].into();
    assert_eq!(bs.iter().map(|d| **d).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert_eq!(q.unacked(), 5);
    a1.ack();
    assert_eq!(*soon(a.next()).await.unwrap(), 5, "credit freed by the ack");
    drop((a2, bs));
}

#[tokio::test]
async fn full_queue_makes_publish_wait_for_room() {
    let q = queue(QueueOrder::Fifo, 2, 5);
    q.publish(1).await.unwrap();
    q.publish(2).await.unwrap();
    assert_eq!(q.room(), 0);
    let refused = q.try_publish(3, 0).unwrap_err();
    assert_eq!((refused.kind.clone(), refused.message), (PublishError::Full, 3));
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(q.try_publish(4, 0).unwrap_err());
    assert_eq!(boxed.source().map(|s| s.to_string()).as_deref(), Some("queue is full"));
    stays_pending(q.publish(3), "publish on a full queue").await;
    let q2 = q.clone();
    let publisher = tokio::spawn(async move { q2.publish(3).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!publisher.is_finished());
    let c = q.consumer(1);
    soon(c.next()).await.unwrap().ack();
    soon(publisher).await.unwrap().unwrap();
    assert_eq!(q.len(), 2);
}

/// Many publishers and consumers on small buffers, consumers that give up waiting (their
/// `next` future dropped: a wakeup meant for them must pass on), nacks: every message is
/// acked exactly once and nobody hangs. This is what proves the one-waiter wakeups
/// (`notify_one`) lose none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_wakeups_under_contention() {
    for capacity in [1, 3, 64] {
        let q = Queue::<u64>::new(
            "stress",
            QueueConfig { capacity, order: QueueOrder::Fifo, max_deliveries: 100 },
        );
        let per_publisher = 5_000u64;
        let publishers: Vec<_> = (0..4u64)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..per_publisher {
                        q.publish(p * per_publisher + i).await.unwrap();
                    }
                })
            })
            .collect();
        let seen = Arc::new(Mutex::new(vec![0u32; 4 * per_publisher as usize]));
        let consumers: Vec<_> = (0..6usize)
            .map(|k| {
                let c = q.consumer(1 + k % 3);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    loop {
                        n += 1;
                        let d = if k % 2 == 0 && n % 7 == 0 {
                            // Give up waiting now and then.
                            match tokio::time::timeout(Duration::from_micros(50), c.next()).await {
                                Ok(d) => d,
                                Err(_) => continue,
                            }
                        } else {
                            c.next().await
                        };
                        let Some(d) = d else { break };
                        if n % 11 == 0 {
                            d.nack(true);
                            continue;
                        }
                        seen.lock().unwrap()[*d as usize] += 1;
                        d.ack();
                    }
                })
            })
            .collect();
        soon(async {
            for p in publishers {
                p.await.unwrap();
            }
            while q.len() + q.unacked() > 0 {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            q.close();
            for c in consumers {
                c.await.unwrap();
            }
        })
        .await;
        assert!(seen.lock().unwrap().iter().all(|&n| n == 1), "capacity {capacity}: each acked once");
        assert!(q.take_dead_letters().is_empty());
    }
}

// ---------------------------------------------------------------------------------- topics

#[tokio::test]
async fn topic_fan_out_keeps_each_publishers_order_and_filters_content() {
    let t = Topic::<(u8, u32)>::new("t");
    let all = t.subscribe(4096, Overflow::Block);
    let only_b = t.subscribe_filtered(4096, Overflow::Block, Some(Arc::new(|m: &(u8, u32)| m.0 == b'b')));
    let pubs: Vec<_> = [b'a', b'b']
        .into_iter()
        .map(|who| {
            let t = t.clone();
            tokio::spawn(async move {
                for i in 0..1000 {
                    t.publish((who, i)).await;
                }
            })
        })
        .collect();
    for p in pubs {
        soon(p).await.unwrap();
    }
    t.close();
    let mut next = HashMap::new();
    while let Some(m) = soon(all.recv()).await {
        let want = next.entry(m.0).or_insert(0);
        assert_eq!(m.1, *want, "per-publisher order");
        *want += 1;
    }
    assert_eq!(next, HashMap::from([(b'a', 1000), (b'b', 1000)]));
    let mut got = Vec::new();
    while let Some(m) = soon(only_b.recv()).await {
        got.push(*m);
    }
    assert_eq!(got, (0..1000).map(|i| (b'b', i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn stalled_drop_oldest_subscriber_keeps_capacity_and_counts_drops() {
    let t = Topic::<u32>::new("t");
    let stalled = t.subscribe(16, Overflow::DropOldest);
    let live = t.subscribe(16, Overflow::Block);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while live.recv().await.is_some() {
            n += 1;
        }
        n
    });
    for i in 0..10_000 {
        soon(t.publish(i)).await;
    }
    t.close();
    assert_eq!(soon(reader).await.unwrap(), 10_000, "the stalled one slows nobody");
    assert_eq!(stalled.buffered(), 16);
    assert_eq!(stalled.dropped(), 10_000 - 16);
    assert_eq!(*stalled.recv().await.unwrap(), 10_000 - 16, "the newest are kept");
}

#[tokio::test]
async fn stalled_block_subscriber_makes_the_publisher_wait() {
    let t = Topic::<u32>::new("t");
    let stalled = t.subscribe(4, Overflow::Block);
    for i in 0..4 {
        soon(t.publish(i)).await;
    }
    stays_pending(t.publish(4), "publish to a full Block subscriber").await;
    assert_eq!(stalled.buffered(), 4, "bounded");
    // publish_now never waits: the full subscriber misses it, counted.
    t.publish_now(5);
    assert_eq!(stalled.dropped(), 1);
    let t2 = t.clone();
    let publisher = tokio::spawn(async move { t2.publish(6).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!publisher.is_finished());
    assert_eq!(*stalled.recv().await.unwrap(), 0);
    soon(publisher).await.unwrap();
    assert_eq!(stalled.buffered(), 4);
    // Closing releases a waiting publisher too.
    let t3 = t.clone();
    let blocked = tokio::spawn(async move { t3.publish(7).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished());
    t.close();
    soon(blocked).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_unsubscribe_while_publishing() {
    let t = Topic::<u64>::new("t");
    let keep = t.subscribe(64, Overflow::Block);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (t2, stop2, sent2) = (t.clone(), stop.clone(), sent.clone());
    let publisher = tokio::spawn(async move {
        let mut i = 0;
        while !stop2.load(Ordering::Relaxed) {
            t2.publish(i).await;
            i += 1;
            sent2.store(i, Ordering::Relaxed);
        }
    });
    let keeper = tokio::spawn(async move {
        let mut expect = 0;
        while let Some(m) = keep.recv().await {
            assert_eq!(*m, expect, "no gap, no reorder");
            expect += 1;
        }
        expect
    });
    for round in 0..20 {
        // Late subscribe: a contiguous run from wherever the flow is.
        let late = t.subscribe(8, Overflow::Block);
        let first = *soon(late.recv()).await.unwrap();
        for k in 1..=20 {
            assert_eq!(*soon(late.recv()).await.unwrap(), first + k, "round {round}");
        }
        // Unsubscribe while the publisher may be blocked on this (full) buffer.
        tokio::time::sleep(Duration::from_millis(1)).await;
        drop(late);
    }
    assert_eq!(t.subscriber_count(), 1);
    stop.store(true, Ordering::Relaxed);
    soon(publisher).await.unwrap();
    t.close();
    assert_eq!(soon(keeper).await.unwrap(), sent.load(Ordering::Relaxed));
}

// ------------------------------------------------------------------------------- patterns

#[tokio::test]
async fn pattern_subscription_sees_matching_topics_old_and_new() {
    let bus = Bus::new();
    let pages = bus.topic::<String>("crawl.pages").unwrap();
    let other = bus.topic::<String>("other").unwrap();
    let wrong_type = bus.topic::<u32>("crawl.count").unwrap();
    let sub = bus.subscribe_pattern::<String>("crawl.*", 16, Overflow::Block, None).unwrap();
    assert_eq!(sub.topics(), vec![Arc::<str>::from("crawl.pages")]);
    assert_eq!(pages.subscriber_count(), 1);
    pages.publish("p1".into()).await;
    other.publish("nope".into()).await;
    wrong_type.publish(1).await;
    // Created after the subscription: attached when the bus creates it.
    let late = bus.topic::<String>("crawl.items").unwrap();
    late.publish("i1".into()).await;
    assert_eq!(bus.topic::<String>("crawl.items").unwrap().subscriber_count(), 1, "attached once");
    pages.publish("p2".into()).await;
    let got: Vec<(String, String)> =
        std::iter::from_fn(|| sub.try_recv()).map(|(t, m)| (t.to_string(), (*m).clone())).collect();
    assert_eq!(
        got,
        [("crawl.pages", "p1"), ("crawl.items", "i1"), ("crawl.pages", "p2")]
            .map(|(t, m)| (t.to_string(), m.to_string()))
    );
    let err: WrongType = bus.topic::<u32>("crawl.pages").unwrap_err();
    assert_eq!((err.name.as_str(), err.kind, err.expected), ("crawl.pages", "topic", "u32"));
    assert_eq!(err.found, std::any::type_name::<String>());
    assert_eq!(err.to_string(), "bus topic 'crawl.pages' carries alloc::string::String, not u32");
}

#[tokio::test]
async fn pattern_globs_and_content_filters() {
    let bus = Bus::new();
    let even: Filter<u32> = Arc::new(|n: &u32| n % 2 == 0);
    let events = bus.subscribe_pattern::<u32>("events.?", 64, Overflow::Block, None).unwrap();
    let abc = bus.subscribe_pattern::<u32>("[abc]", 64, Overflow::Block, Some(even)).unwrap();
    let escaped = bus.subscribe_pattern::<u32>("lit\\*", 64, Overflow::Block, None).unwrap();
    for name in ["events.1", "events.12", "events.", "a", "b", "d", "ab", "lit*", "litx"] {
        let t = bus.topic::<u32>(name).unwrap();
        for n in 0..4 {
            t.publish(n).await;
        }
    }
    let names =
        |s: Vec<(Arc<str>, Arc<u32>)>| s.into_iter().map(|(t, n)| format!("{t}:{n}")).collect::<Vec<_>>();
    let drain = |f: &dyn Fn() -> Option<(Arc<str>, Arc<u32>)>| std::iter::from_fn(f).collect::<Vec<_>>();
    assert_eq!(names(drain(&|| events.try_recv())), ["events.1:0", "events.1:1", "events.1:2", "events.1:3"]);
    assert_eq!(names(drain(&|| abc.try_recv())), ["a:0", "a:2", "b:0", "b:2"]);
    assert_eq!(names(drain(&|| escaped.try_recv())).len(), 4);
    assert!(matches!(
        bus.subscribe_pattern::<u32>("oops[", 1, Overflow::Block, None),
        Err(PatternError::UnclosedClass(_))
    ));
}

#[tokio::test]
async fn pattern_subscription_bounded_drop_and_block() {
    let bus = Bus::new();
    let a = bus.topic::<u32>("m.a").unwrap();
    let b = bus.topic::<u32>("m.b").unwrap();
    let dropping = bus.subscribe_pattern::<u32>("m.*", 8, Overflow::DropOldest, None).unwrap();
    for i in 0..100 {
        a.publish(i).await;
        b.publish(1000 + i).await;
    }
    assert_eq!(dropping.buffered(), 8);
    assert_eq!(dropping.dropped(), 192);
    assert_eq!(*dropping.try_recv().unwrap().1, 96);
    drop(dropping);
    assert_eq!(a.subscriber_count(), 0, "dropping unsubscribes from every topic");
    assert_eq!(b.subscriber_count(), 0);

    let blocking = bus.subscribe_pattern::<u32>("m.*", 2, Overflow::Block, None).unwrap();
    a.publish(1).await;
    b.publish(2).await;
    stays_pending(a.publish(3), "publish to a full Block pattern subscription").await;
    let a2 = a.clone();
    let publisher = tokio::spawn(async move { a2.publish(4).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!publisher.is_finished());
    assert_eq!(*blocking.recv().await.unwrap().1, 1);
    soon(publisher).await.unwrap();
    // Unsubscribing releases a publisher blocked on it.
    let b2 = b.clone();
    let blocked = tokio::spawn(async move { b2.publish(5).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished());
    drop(blocking);
    soon(blocked).await.unwrap();
    // A topic created after the drop is not attached.
    assert_eq!(bus.topic::<u32>("m.c").unwrap().subscriber_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_pattern_subscribe_while_flowing_then_bus_close_ends_it() {
    let bus = Bus::new();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = ["feed.x", "feed.y"]
        .into_iter()
        .map(|name| {
            let t = bus.topic::<u64>(name).unwrap();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    t.publish(i).await;
                    i += 1;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let sub = bus.subscribe_pattern::<u64>("feed.*", 32, Overflow::Block, None).unwrap();
    let mut last: HashMap<String, u64> = HashMap::new();
    for _ in 0..2_000 {
        let (topic, m) = soon(sub.recv()).await.unwrap();
        if let Some(prev) = last.insert(topic.to_string(), *m) {
            assert_eq!(*m, prev + 1, "{topic}: contiguous and in order");
        }
    }
    assert_eq!(last.len(), 2, "both topics seen");
    stop.store(true, Ordering::Relaxed);
    let sub = Arc::new(sub);
    let drainer = {
        let sub = sub.clone();
        tokio::spawn(async move { while sub.recv().await.is_some() {} })
    };
    for p in publishers {
        soon(p).await.unwrap();
    }
    bus.close();
    soon(drainer).await.unwrap();
    assert!(sub.recv().await.is_none());
}
