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
//! against the topic's end), never consumed. Start URLs come with `default`. The queues
//! make one [`SharedStore`] as [`QueueStores`] does (a lease token of a named queue is
//! `<queue>/<the queue's token>`).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::frontier::{KafkaFrontier, LEASE_WAIT};
use crate::bridges::BridgeError;
use crate::crawl::routing::{QueueId, Routing};
#[cfg(doc)]
use crate::crawl::shared::SharedStore;
use crate::crawl::shared::{LeasedFrom, QueueStore, QueueStores, StoreResult};
use crate::spec::{CrawlSpec, DEFAULT_QUEUE};

/// The frontier of a routed crawl: one [`KafkaFrontier`] per queue (see the module docs).
pub type RoutedKafkaFrontier = QueueStores<KafkaFrontier>;

/// Opens one topic (created when missing) per queue of `routing`, joining the groups of
/// those `routing` says this process consumes.
pub async fn open_routed(spec: &CrawlSpec, routing: &Routing) -> Result<RoutedKafkaFrontier, BridgeError> {
    let default =
        KafkaFrontier::open_queue(spec, DEFAULT_QUEUE, routing.queue(QueueId::DEFAULT).consumed).await?;
    let mut named = Vec::new();
    for q in routing.queues().iter().filter(|q| &*q.name != DEFAULT_QUEUE) {
        named.push((q.name.clone(), KafkaFrontier::open_queue(spec, &q.name, q.consumed).await?));
    }
    Ok(QueueStores::new(default, named))
}

/// Each ask from its queue's consumed requests, in the asks' order, without waiting.
fn lease_ready(asks: &[(Arc<str>, KafkaFrontier, usize)]) -> Vec<LeasedFrom> {
    let mut out = Vec::new();
    for (name, frontier, max) in asks {
        out.extend(frontier.lease_ready(*max).into_iter().map(|l| LeasedFrom::of_queue(name, l)));
    }
    out
}

impl QueueStore for KafkaFrontier {
    /// What each asked queue has consumed already; when none has anything, waits (a long
    /// poll, as the plain frontier's lease) until any of them has, and takes again.
    fn lease_queues(asks: Vec<(Arc<str>, Self, usize)>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        Box::pin(async move {
            if asks.is_empty() {
                return Ok(Vec::new());
            }
            let mut told: Vec<_> = asks.iter().map(|(_, f, _)| Box::pin(f.ready().notified())).collect();
            for notified in &mut told {
                notified.as_mut().enable();
            }
            let leased = lease_ready(&asks);
            if !leased.is_empty() {
                return Ok(leased);
            }
            let _ = tokio::time::timeout(LEASE_WAIT, futures::future::select_all(told)).await;
            Ok(lease_ready(&asks))
        })
    }
}
