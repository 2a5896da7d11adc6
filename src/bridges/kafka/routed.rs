//! A routed crawl's frontier in Kafka (`routes:`/`queues:` with `frontier.backend: kafka`;
//! docs/routing.md): a topic per queue of the crawl. `default` is the plain frontier (the
//! requests topic `<name>.requests`, its seen-set `<name>.seen`, the consumer group
//! `<name>`), so a crawl that adds routes keeps its topics; queue `q` has the requests topic
//! `<requests topic>.q`, the seen-set `<seen topic>.q` and the consumer group `<group>.q`,
//! created with the same partitions and replication. A request is produced to its queue's
//! topic; each topic dedups as the plain one does (a URL always goes to one queue, so one
//! partition of one topic).
//!
//! Each queue is a [`KafkaFrontier`] of its own: a process joins the group of each queue
//! it consumes (`--queues`), so the workers of one queue share its partitions and a worker
//! that joins or leaves one queue rebalances only that queue. A queue this process does
//! not consume is produced to and counted in `pending` (its group's committed offsets
//! against the topic's end), never consumed. Start URLs come with `default`. A lease token
//! of a named queue is `<queue>/<the queue's token>`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::frontier::{KafkaFrontier, LEASE_WAIT};
use crate::bridges::BridgeError;
use crate::crawl::routing::Routing;
use crate::crawl::shared::{
    Admit, LeaseAsk, LeaseToken, Leased, LeasedFrom, Pending, SharedStore, StoreError, StoreResult,
};
use crate::spec::CrawlSpec;

/// The frontier of a routed crawl: one [`KafkaFrontier`] per queue (see the module docs).
#[derive(Clone)]
pub struct RoutedKafkaFrontier {
    /// `default` first (as `Routing::queues` has them).
    queues: Arc<Vec<(Arc<str>, KafkaFrontier)>>,
}

impl std::fmt::Debug for RoutedKafkaFrontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let topics: Vec<&str> = self.queues.iter().map(|(_, q)| q.topic()).collect();
        f.debug_struct("RoutedKafkaFrontier").field("topics", &topics).finish()
    }
}

impl RoutedKafkaFrontier {
    /// Opens one topic (created when missing) per queue of `routing`, joining the groups of
    /// those `routing` says this process consumes.
    pub async fn open(spec: &CrawlSpec, routing: &Routing) -> Result<Self, BridgeError> {
        let mut queues = Vec::new();
        for q in routing.queues() {
            queues.push((q.name.clone(), KafkaFrontier::open_queue(spec, &q.name, q.consumed).await?));
        }
        Ok(Self { queues: Arc::new(queues) })
    }

    fn queue(&self, name: &str) -> Option<&KafkaFrontier> {
        self.queues.iter().find(|(n, _)| &**n == name).map(|(_, f)| f)
    }

    fn default_queue(&self) -> &KafkaFrontier {
        &self.queues[0].1
    }

    /// Tokens grouped by their queue, each as its queue knows it.
    fn by_queue(&self, tokens: Vec<LeaseToken>) -> Vec<(usize, Vec<LeaseToken>)> {
        let mut groups: Vec<(usize, Vec<LeaseToken>)> = Vec::new();
        for token in tokens {
            let (queue, inner) = token.split_queue();
            let Some(i) = self.queues.iter().position(|(n, _)| &**n == queue) else {
                tracing::warn!(
                    token = token.as_str(),
                    "kafka frontier: a lease of an unknown queue; ignored"
                );
                continue;
            };
            match groups.iter_mut().find(|(g, _)| *g == i) {
                Some((_, ts)) => ts.push(inner),
                None => groups.push((i, vec![inner])),
            }
        }
        groups
    }

    /// Each ask from its queue's consumed requests, in the asks' order, without waiting.
    fn lease_ready(&self, asks: &[(usize, usize)]) -> Vec<LeasedFrom> {
        let mut out = Vec::new();
        for &(i, max) in asks {
            let (name, frontier) = &self.queues[i];
            out.extend(frontier.lease_ready(max).into_iter().map(|l| LeasedFrom::of_queue(name, l)));
        }
        out
    }
}

impl SharedStore for RoutedKafkaFrontier {
    fn describe(&self) -> String {
        let topics: Vec<&str> = self.queues.iter().map(|(_, f)| f.topic()).collect();
        format!("{}, a topic per queue: {}", self.default_queue().describe(), topics.join(", "))
    }

    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        self.default_queue().admit(batch)
    }

    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>> {
        self.default_queue().lease(max)
    }

    fn supports_queues(&self) -> bool {
        true
    }

    fn admit_to(&self, queue: Arc<str>, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        match self.queue(&queue) {
            Some(f) => f.admit(batch),
            None => {
                Box::pin(async move { Err(StoreError::new(format!("no Kafka topic for queue '{queue}'"))) })
            }
        }
    }

    /// What each asked queue has consumed already; when none has anything, waits (a long
    /// poll, as the plain frontier's lease) until any of them has, and takes again.
    fn lease_from(&self, asks: Vec<LeaseAsk>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        let this = self.clone();
        Box::pin(async move {
            let asks: Vec<(usize, usize)> = asks
                .iter()
                .filter(|a| a.max > 0)
                .filter_map(|a| this.queues.iter().position(|(n, _)| *n == a.queue).map(|i| (i, a.max)))
                .collect();
            if asks.is_empty() {
                return Ok(Vec::new());
            }
            let mut told: Vec<_> =
                asks.iter().map(|&(i, _)| Box::pin(this.queues[i].1.ready().notified())).collect();
            for notified in &mut told {
                notified.as_mut().enable();
            }
            let leased = this.lease_ready(&asks);
            if !leased.is_empty() {
                return Ok(leased);
            }
            let _ = tokio::time::timeout(LEASE_WAIT, futures::future::select_all(told)).await;
            Ok(this.lease_ready(&asks))
        })
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let acks: Vec<_> =
            self.by_queue(tokens).into_iter().map(|(i, ts)| self.queues[i].1.ack(ts)).collect();
        Box::pin(async move {
            for ack in acks {
                ack.await?;
            }
            Ok(())
        })
    }

    fn lease_duration(&self) -> Option<Duration> {
        None
    }

    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let releases: Vec<_> =
            self.by_queue(tokens).into_iter().map(|(i, ts)| self.queues[i].1.release(ts)).collect();
        Box::pin(async move {
            let mut released = 0;
            for release in releases {
                released += release.await?;
            }
            Ok(released)
        })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        self.default_queue().take_start_urls(max)
    }

    /// Every queue's, consumed here or not: what its group has not committed, and what this
    /// process holds.
    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let each: Vec<_> = self.queues.iter().map(|(_, f)| f.pending()).collect();
        Box::pin(async move { Ok(futures::future::try_join_all(each).await?.into_iter().sum()) })
    }

    /// The owner of partition 0 of `default`'s topic (as without routing).
    fn claim(&self, key: String, hold: Duration) -> BoxFuture<'static, StoreResult<bool>> {
        self.default_queue().claim(key, hold)
    }

    fn reconnects(&self) -> u64 {
        self.queues.iter().map(|(_, f)| f.reconnects()).sum()
    }

    fn dead_letters(&self) -> u64 {
        self.queues.iter().map(|(_, f)| f.dead_letters()).sum()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let closes: Vec<_> = self.queues.iter().map(|(_, f)| f.close()).collect();
        Box::pin(async move {
            futures::future::join_all(closes).await;
        })
    }
}
