//! A routed crawl's frontier in RabbitMQ (`routes:`/`queues:` with `frontier.backend:
//! amqp`; docs/routing.md): one durable queue per queue of the crawl, each bound by its
//! name as routing key to the direct exchange `<requests queue>` (so `default` is
//! `<name>.requests` bound with `default`, `documents` is `<name>.requests.documents`
//! bound with `documents`), requests published to the exchange with the queue's name as
//! routing key (mandatory: an unroutable request is an error, never dropped).
//!
//! Each queue is an [`AmqpFrontier`] of its own (its connection, its consumer with the
//! plain frontier's prefetch, the one seen-set in Redis); a queue this process
//! does not consume (`--queues`) never gets a consumer here, but is published to and
//! counted in `pending`. The queues make one [`SharedStore`] as [`QueueStores`] does (a
//! lease token of a named queue is `<queue>/<the queue's token>`).

use super::frontier::{requests_queue, AmqpFrontier, QueueRole};
use crate::bridges::BridgeError;
use crate::crawl::routing::{QueueConfig, QueueId, Routing};
#[cfg(doc)]
use crate::crawl::shared::SharedStore;
use crate::crawl::shared::{QueueStore, QueueStores};
use crate::spec::{CrawlSpec, DEFAULT_QUEUE};

/// The frontier of a routed crawl: one [`AmqpFrontier`] per queue (see the module docs).
pub type RoutedAmqpFrontier = QueueStores<AmqpFrontier>;

/// Each queue's lease in turn (an [`AmqpFrontier`]'s lease does not wait).
impl QueueStore for AmqpFrontier {}

/// Opens one queue per queue of `routing` (connected, declared, bound), consuming those
/// `routing` says this process consumes.
pub async fn open_routed(spec: &CrawlSpec, routing: &Routing) -> Result<RoutedAmqpFrontier, BridgeError> {
    let exchange = requests_queue(spec);
    let role = |q: &QueueConfig| QueueRole {
        queue: if &*q.name == DEFAULT_QUEUE { exchange.clone() } else { format!("{exchange}.{}", q.name) },
        exchange: Some((exchange.clone(), q.name.to_string())),
        consume: q.consumed,
        // As the plain frontier's: held deliveries are acked only after the sinks
        // flush, so a prefetch of the queue's (smaller) cap would cap its rate at
        // that many a flush; the lane keeps the queue's cap in flight.
        prefetch: spec.fetch.concurrency.clamp(1, u32::from(u16::MAX)) as u16,
    };
    let default = AmqpFrontier::open_queue(spec, role(routing.queue(QueueId::DEFAULT))).await?;
    let mut named = Vec::new();
    for q in routing.queues().iter().filter(|q| &*q.name != DEFAULT_QUEUE) {
        named.push((q.name.clone(), AmqpFrontier::open_queue(spec, role(q)).await?));
    }
    Ok(QueueStores::new(default, named))
}
