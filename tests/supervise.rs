//! Supervision through the public API: panics become restarts with the same address,
//! strategies restart the right siblings, and too many restarts escalate.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arachne::observe::Stats;
use arachne::supervise::{Restart, Strategy, Supervisor, SupervisorConfig};

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
