//! Supervision through the public API: panics become restarts with the same address,
//! strategies restart the right siblings, too many restarts escalate, and panics blamed on
//! a message are that message's business unless the actor fails on everything.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arachne::bus::{Delivery, Queue, QueueConfig};
use arachne::observe::Stats;
use arachne::spec::QueueOrder;
use arachne::supervise::{blame, Restart, Strategy, Supervisor, SupervisorConfig};

/// Counts its starts; panics on `Boom`.
struct Worker {
    starts: Arc<AtomicU32>,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.starts.fetch_add(1, Ordering::SeqCst);
    }
}

impl Supervised for Worker {}

#[derive(Message)]
#[rtype(result = "u32")]
struct Ping;

#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

impl Handler<Ping> for Worker {
    type Result = u32;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }
}

impl Handler<Boom> for Worker {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom on purpose");
    }
}

fn config(strategy: Strategy, max_restarts: u32) -> SupervisorConfig {
    SupervisorConfig { name: "test".into(), strategy, max_restarts, within: Duration::from_secs(60) }
}

fn start_workers(sup: &mut Supervisor, n: usize) -> (Vec<Addr<Worker>>, Vec<Arc<AtomicU32>>) {
    let arbiter = Arbiter::current();
    (0..n)
        .map(|i| {
            let starts = Arc::new(AtomicU32::new(0));
            let s = starts.clone();
            let addr =
                sup.start(format!("worker-{i}"), Restart::Permanent, &arbiter, move |_| Worker { starts: s });
            (addr, starts)
        })
        .unzip()
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[test]
fn panic_restarts_in_place_one_for_one() {
    System::new().block_on(async {
        let stats = Arc::new(Stats::default());
        let mut sup = Supervisor::new(config(Strategy::OneForOne, 10), stats.clone());
        let (addrs, starts) = start_workers(&mut sup, 3);
        settle().await;
        addrs[1].do_send(Boom);
        settle().await;
        // Same address still answers, after a second `started`.
        assert_eq!(addrs[1].send(Ping).await.expect("restarted actor answers"), 2);
        assert_eq!(starts[0].load(Ordering::SeqCst), 1, "siblings untouched");
        assert_eq!(starts[2].load(Ordering::SeqCst), 1, "siblings untouched");
        assert_eq!(stats.restarts.load(Ordering::SeqCst), 0, "counted when the supervisor hears of it");
        let _ = tokio::time::timeout(Duration::from_millis(50), sup.watch()).await;
        assert_eq!(stats.restarts.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn one_for_all_and_rest_for_one_restart_siblings() {
    for (strategy, want) in [(Strategy::OneForAll, [2, 2, 2]), (Strategy::RestForOne, [1, 2, 2])] {
        System::new().block_on(async {
            let stats = Arc::new(Stats::default());
            let mut sup = Supervisor::new(config(strategy, 10), stats);
            let (addrs, starts) = start_workers(&mut sup, 3);
            settle().await;
            addrs[1].do_send(Boom);
            let _ = tokio::time::timeout(Duration::from_millis(200), sup.watch()).await;
            settle().await;
            let got: Vec<u32> = starts.iter().map(|s| s.load(Ordering::SeqCst)).collect();
            assert_eq!(got, want, "{strategy:?}");
            for addr in &addrs {
                addr.send(Ping).await.expect("every child answers after the restart");
            }
        });
    }
}

#[test]
fn too_many_restarts_escalate_with_the_actor_name() {
    System::new().block_on(async {
        let stats = Arc::new(Stats::default());
        let mut sup = Supervisor::new(config(Strategy::OneForOne, 3), stats);
        let (addrs, _) = start_workers(&mut sup, 2);
        settle().await;
        let target = addrs[1].clone();
        actix::spawn(async move {
            for _ in 0..10 {
                target.do_send(Boom);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let escalation = tokio::time::timeout(Duration::from_secs(10), sup.watch())
            .await
            .expect("escalates well within the window")
            .expect_err("intensity exceeded");
        assert_eq!(escalation.child, "worker-1");
        assert!(escalation.to_string().contains("boom on purpose"), "{escalation}");
    });
}

/// Consumes `jobs`, marking each delivery it works on; panics on every message that is a
/// multiple of `poison_every` (0: on every message).
struct Consumer {
    jobs: Queue<u32>,
    poison_every: u32,
}

impl Actor for Consumer {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(self.jobs.consumer(2).into_stream());
    }
}

impl Supervised for Consumer {}

impl StreamHandler<Delivery<u32>> for Consumer {
    fn handle(&mut self, d: Delivery<u32>, _: &mut Context<Self>) {
        let _working = blame::working_on(d.id());
        if self.poison_every == 0 || *d % self.poison_every == 0 {
            panic!("bad message {}", *d);
        }
        d.ack();
    }
}

/// Runs one consumer over 1..=`messages` under the default intensity (10 within 60s); the
/// escalation, if any.
fn consume(messages: u32, poison_every: u32) -> (Option<String>, u64) {
    System::new().block_on(async move {
        let jobs =
            Queue::new("jobs", QueueConfig { capacity: 1024, order: QueueOrder::Fifo, max_deliveries: 5 });
        let mut sup = Supervisor::new(config(Strategy::OneForOne, 10), Arc::new(Stats::default()));
        let j = jobs.clone();
        let _addr = sup.start("consumer", Restart::Permanent, &Arbiter::current(), move |_| Consumer {
            jobs: j,
            poison_every,
        });
        for m in 1..=messages {
            jobs.publish(m).await.expect("publish");
        }
        let watched = async {
            loop {
                let settled = jobs.stats().acked.load(Ordering::SeqCst)
                    + jobs.stats().dead_letters.load(Ordering::SeqCst);
                if settled == u64::from(messages) {
                    return None;
                }
                if let Ok(Err(e)) = tokio::time::timeout(Duration::from_millis(20), sup.watch()).await {
                    return Some(e.to_string());
                }
            }
        };
        let escalation =
            tokio::time::timeout(Duration::from_secs(30), watched).await.expect("settles in time");
        (escalation, jobs.stats().dead_letters.load(Ordering::SeqCst))
    })
}

#[test]
fn poison_messages_are_dead_lettered_without_escalating() {
    // 8 poison messages among 40: 40 panics, far past max_restarts = 10, all blamed.
    let (escalation, dead) = consume(40, 5);
    assert_eq!(escalation, None);
    assert_eq!(dead, 8);
}

#[test]
fn an_actor_failing_on_every_message_escalates() {
    let (escalation, _) = consume(40, 0);
    let escalation = escalation.expect("a crash loop escalates");
    assert!(
        escalation.contains("more than 10 restarts within 60s in supervisor 'test' (consumer ×11)"),
        "{escalation}"
    );
    assert!(escalation.contains("bad message"), "{escalation}");
}
