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
//! counted in `pending`. A lease token of a named queue is `<queue>/<the queue's token>`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::frontier::{requests_queue, AmqpFrontier, QueueRole};
use crate::bridges::BridgeError;
use crate::crawl::routing::Routing;
use crate::crawl::shared::{
    Admit, LeaseAsk, LeaseToken, Leased, LeasedFrom, Pending, SharedStore, StoreError, StoreResult,
};
use crate::spec::{CrawlSpec, DEFAULT_QUEUE};

/// Tokens of one queue (its name, its frontier), each with something of its own.
type Group<T> = (Arc<str>, AmqpFrontier, Vec<(LeaseToken, T)>);

/// The frontier of a routed crawl: one [`AmqpFrontier`] per queue (see the module docs).
#[derive(Clone)]
pub struct RoutedAmqpFrontier {
    /// `default` first.
    queues: Arc<Vec<(Arc<str>, AmqpFrontier)>>,
    exchange: String,
}

impl std::fmt::Debug for RoutedAmqpFrontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.queues.iter().map(|(n, _)| &**n).collect();
        f.debug_struct("RoutedAmqpFrontier")
            .field("exchange", &self.exchange)
            .field("queues", &names)
            .finish()
    }
}

impl RoutedAmqpFrontier {
    /// Opens one queue per queue of `routing` (connected, declared, bound), consuming those
    /// `routing` says this process consumes.
    pub async fn open(spec: &CrawlSpec, routing: &Routing) -> Result<Self, BridgeError> {
        let exchange = requests_queue(spec);
        let mut queues = Vec::new();
        for q in routing.queues() {
            let role = QueueRole {
                queue: if &*q.name == DEFAULT_QUEUE {
                    exchange.clone()
                } else {
                    format!("{exchange}.{}", q.name)
                },
                exchange: Some((exchange.clone(), q.name.to_string())),
                consume: q.consumed,
                // As the plain frontier's: held deliveries are acked only after the sinks
                // flush, so a prefetch of the queue's (smaller) cap would cap its rate at
                // that many a flush; the lane keeps the queue's cap in flight.
                prefetch: spec.fetch.concurrency.clamp(1, u32::from(u16::MAX)) as u16,
            };
            queues.push((q.name.clone(), AmqpFrontier::open_queue(spec, role).await?));
        }
        Ok(Self { queues: Arc::new(queues), exchange })
    }

    fn queue(&self, name: &str) -> Option<&AmqpFrontier> {
        self.queues.iter().find(|(n, _)| &**n == name).map(|(_, f)| f)
    }

    fn default_queue(&self) -> &AmqpFrontier {
        &self.queues[0].1
    }

    /// Tokens (each with something of its own) grouped by their queue's frontier, as each
    /// queue knows them.
    fn by_queue<T>(&self, items: Vec<(LeaseToken, T)>) -> Vec<(AmqpFrontier, Vec<(LeaseToken, T)>)> {
        let mut groups: Vec<Group<T>> = Vec::new();
        for (token, extra) in items {
            let (queue, inner) = token.split_queue();
            let Some((name, frontier)) = self.queues.iter().find(|(n, _)| &**n == queue) else {
                tracing::warn!(token = token.as_str(), "amqp frontier: a lease of an unknown queue; ignored");
                continue;
            };
            match groups.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, _, ts)) => ts.push((inner, extra)),
                None => groups.push((name.clone(), frontier.clone(), vec![(inner, extra)])),
            }
        }
        groups.into_iter().map(|(_, f, ts)| (f, ts)).collect()
    }

    /// [`RoutedAmqpFrontier::by_queue`] of bare tokens.
    fn tokens_by_queue(&self, tokens: Vec<LeaseToken>) -> Vec<(AmqpFrontier, Vec<LeaseToken>)> {
        let groups = self.by_queue(tokens.into_iter().map(|t| (t, ())).collect());
        groups.into_iter().map(|(f, ts)| (f, ts.into_iter().map(|(t, ())| t).collect())).collect()
    }
}

impl SharedStore for RoutedAmqpFrontier {
    fn describe(&self) -> String {
        let names: Vec<&str> = self.queues.iter().map(|(n, _)| &**n).collect();
        format!(
            "AMQP exchange '{}' routing to queues {} ({})",
            self.exchange,
            names.join(", "),
            self.default_queue().describe()
        )
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
            None => Box::pin(async move { Err(StoreError::new(format!("no AMQP queue for '{queue}'"))) }),
        }
    }

    fn lease_from(&self, asks: Vec<LeaseAsk>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        let this = self.clone();
        Box::pin(async move {
            let mut out = Vec::new();
            for ask in asks {
                let Some((name, f)) = this.queues.iter().find(|(n, _)| *n == ask.queue) else { continue };
                let leased = f.lease(ask.max).await?;
                out.extend(leased.into_iter().map(|l| LeasedFrom::of_queue(name, l)));
            }
            Ok(out)
        })
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let groups = self.tokens_by_queue(tokens);
        Box::pin(async move {
            for (f, tokens) in groups {
                f.ack(tokens).await?;
            }
            Ok(())
        })
    }

    fn lease_duration(&self) -> Option<Duration> {
        None
    }

    /// Each queue's dead letters to that queue's dead-letter exchange (or acked).
    fn dead_letter(&self, letters: Vec<(LeaseToken, String)>) -> BoxFuture<'static, StoreResult<()>> {
        let groups = self.by_queue(letters);
        Box::pin(async move {
            for (f, letters) in groups {
                f.dead_letter(letters).await?;
            }
            Ok(())
        })
    }

    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let groups = self.tokens_by_queue(tokens);
        Box::pin(async move {
            let mut released = 0;
            for (f, tokens) in groups {
                released += f.release(tokens).await?;
            }
            Ok(released)
        })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        self.default_queue().take_start_urls(max)
    }

    /// Every queue's: ready messages, and held or consumed anywhere.
    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let this = self.clone();
        Box::pin(async move {
            let mut all = Pending::default();
            for (_, f) in this.queues.iter() {
                let p = f.pending().await?;
                all.queued += p.queued;
                all.leased += p.leased;
            }
            Ok(all)
        })
    }

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
        let this = self.clone();
        Box::pin(async move {
            for (_, f) in this.queues.iter() {
                f.close().await;
            }
        })
    }
}
