//! The scheduler's side of a frontier shared through a broker (`frontier.backend: redis`,
//! `kafka`, ...), over the broker seam ([`SharedStore`]); this file names no broker.
//!
//! The local [`Frontier`](crate::crawl::frontier::Frontier) still screens links (depth,
//! scope, a local seen cache) and keeps politeness per host; the queue and the seen-set
//! that count live in the broker. A link that passes the local screen is admitted with the
//! other links of its page in one call (one call per queue of the crawl's routing it goes
//! to); the scheduler leases as many requests as it has room for (from each queue it
//! consumes, highest priority first, within each queue's cap), fetches them, and acks each
//! lease only after the page's links are admitted and its items written by every sink, so
//! a process that dies loses nothing: the broker gives its work to another process. The
//! crawl is done when nothing is queued or held anywhere, in any queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use url::Url;

use super::polite::Gate;
use super::Scheduler;
use crate::crawl::frontier::Admission;
use crate::crawl::messages::CrawlRequest;
use crate::crawl::routing::{QueueId, Routing};
use crate::crawl::shared::{Admit, LeaseAsk, LeaseToken, Pending, SharedStore, StoreError, StoreResult};
use crate::crawl::urls::{self, Fingerprint, FingerprintBuildHasher};
use crate::state::PendingRequest;

/// How often an idle process looks at the shared frontier (and at start URLs).
const IDLE_POLL: Duration = Duration::from_millis(200);

/// A frontier shared through a broker, as the runtime hands it to the scheduler.
pub struct SharedFrontier {
    /// The store (one broker's implementation of the seam).
    pub store: Arc<dyn SharedStore>,
    /// Keep running when there is nothing to do, polling for start URLs (no seeds).
    pub wait_for_start_urls: bool,
    /// Requests leased at a time, at most.
    pub lease_batch: usize,
    /// The sinks: a page's lease is given up only when every one has its items.
    pub sinks: u32,
}

/// A page done here whose lease waits for its links to be admitted and its items to be
/// written by every sink.
struct AwaitingAck {
    token: LeaseToken,
    sinks_left: u32,
    admitted: bool,
}

/// The scheduler's state for a shared frontier.
pub(super) struct Remote {
    shared: SharedFrontier,
    /// Links screened locally and not yet admitted to the broker, with their queues.
    batch: Vec<(QueueId, Admit)>,
    /// The leases this process holds.
    tokens: HashMap<Fingerprint, LeaseToken, FingerprintBuildHasher>,
    /// Admit/ack calls in flight.
    ops: u32,
    leasing: bool,
    polling: bool,
    awaiting: HashMap<Fingerprint, AwaitingAck, FingerprintBuildHasher>,
    /// A sink failed: pages with items can never be acked here any more.
    sink_failed: bool,
    /// Requests waiting for a permit of the politeness shared through the broker (`None`:
    /// the store shares none; the local limits alone apply).
    pub(super) gate: Option<Gate>,
}

impl Remote {
    pub(super) fn new(shared: SharedFrontier) -> Self {
        Self {
            gate: shared.store.politeness().map(Gate::new),
            shared,
            batch: Vec::new(),
            tokens: HashMap::default(),
            ops: 0,
            leasing: false,
            polling: false,
            awaiting: HashMap::default(),
            sink_failed: false,
        }
    }

    /// While draining: every admit and ack has been sent.
    pub(super) fn idle_for_drain(&self) -> bool {
        self.ops == 0 && self.batch.is_empty() && self.gate.as_ref().is_none_or(Gate::idle)
    }

    /// Admit/ack calls still in flight.
    pub(super) fn ops(&self) -> u32 {
        self.ops
    }

    /// A lease of a request this process already holds (a broker delivers a message twice
    /// when a publish was confirmed by nobody but persisted all the same, or after a
    /// reconnection): the new lease replaces the older one, which is returned to be acked.
    /// The request is fetched once, and one copy stays unacked until it is done, so a
    /// process that dies meanwhile loses nothing. Without this, the older lease would never
    /// be acked and the crawl would never count as done.
    fn adopt_duplicate(&mut self, fingerprint: Fingerprint, token: &LeaseToken) -> Option<LeaseToken> {
        if let Some(held) = self.tokens.get_mut(&fingerprint) {
            return Some(std::mem::replace(held, token.clone()));
        }
        let awaiting = self.awaiting.get_mut(&fingerprint)?;
        Some(std::mem::replace(&mut awaiting.token, token.clone()))
    }
}

impl Scheduler {
    fn remote(&mut self) -> &mut Remote {
        self.remote.as_mut().expect("called only with a shared frontier")
    }

    /// Starts the timers of a store whose leases expire: reaping expired leases (anyone's)
    /// and renewing ours.
    pub(super) fn remote_started(&mut self, ctx: &mut Context<Self>) {
        let Some(lease) = self.remote().shared.store.lease_duration() else { return };
        ctx.run_interval((lease / 2).max(Duration::from_millis(50)), |act, ctx| {
            let store = act.remote().shared.store.clone();
            ctx.spawn(async move { store.reap().await }.into_actor(act).map(
                |reaped, act, ctx| match reaped {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(requests = n, "took back expired leases");
                        act.pump(ctx);
                    }
                    Err(e) => tracing::warn!("shared frontier: reap failed: {e}"),
                },
            ));
        });
        ctx.run_interval((lease / 3).max(Duration::from_millis(30)), |act, ctx| {
            let remote = act.remote();
            if remote.tokens.is_empty() {
                return;
            }
            let tokens: Vec<LeaseToken> = remote.tokens.values().cloned().collect();
            let store = remote.shared.store.clone();
            ctx.spawn(async move { store.renew(tokens).await }.into_actor(act).map(|renewed, _, _| {
                if let Err(e) = renewed {
                    tracing::warn!("shared frontier: renewing leases failed: {e}");
                }
            }));
        });
    }

    /// A link passed the local screen: it goes to the broker with the next flush.
    pub(super) fn remote_admit(
        &mut self,
        fingerprint: Fingerprint,
        url: &Url,
        depth: u32,
        chain: &[Fingerprint],
    ) {
        let priority = self.frontier.priority_of(url);
        let queue = self.frontier.route(url);
        let request = PendingRequest {
            url: url.to_string(),
            depth,
            redirect_chain: chain.iter().map(|f| f.0).collect(),
        };
        self.remote().batch.push((queue, (fingerprint, request, priority)));
    }

    /// A future that admits `batch`, one call per queue it goes to.
    fn remote_admit_batch(
        &mut self,
        batch: Vec<(QueueId, Admit)>,
    ) -> impl std::future::Future<Output = StoreResult<()>> {
        let routing = self.frontier.routing().clone();
        let store = self.remote().shared.store.clone();
        admit_by_queue(store, routing, batch)
    }

    /// Admits the screened links, then acks `done` (the request they came from): a
    /// request's children are in the broker before its lease is given up.
    pub(super) fn remote_flush(&mut self, done: Option<LeaseToken>, ctx: &mut Context<Self>) {
        let remote = self.remote();
        let batch = std::mem::take(&mut remote.batch);
        if batch.is_empty() && done.is_none() {
            return;
        }
        remote.ops += 1;
        let store = remote.shared.store.clone();
        let admit = self.remote_admit_batch(batch);
        let work = async move {
            admit.await?;
            if let Some(token) = done {
                store.ack(vec![token]).await?;
            }
            Ok::<_, StoreError>(())
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            act.remote().ops -= 1;
            if let Err(e) = result {
                // The lease (if any) expires and the request is fetched again elsewhere.
                tracing::error!("shared frontier: admit/ack failed: {e}");
            }
            act.pump(ctx);
        }));
    }

    /// A request leased here is done: its links go to the broker now; its lease is given up when
    /// they are admitted and, for a page whose items went to the sinks, when every sink has
    /// written them (end to end: a process killed before that loses no item).
    pub(super) fn remote_complete(
        &mut self,
        fingerprint: Fingerprint,
        to_sinks: bool,
        ctx: &mut Context<Self>,
    ) {
        let token = self.remote_release(&fingerprint);
        let sinks = self.remote().shared.sinks;
        let token = match token {
            Some(token) if to_sinks && self.remote().sink_failed => {
                // Its items cannot be written here: another process does the page again.
                self.remote_flush(None, ctx);
                return self.remote_release_tokens(vec![token], ctx);
            }
            Some(token) if to_sinks && sinks > 0 => token,
            other => return self.remote_flush(other, ctx),
        };
        let remote = self.remote();
        remote.awaiting.insert(fingerprint, AwaitingAck { token, sinks_left: sinks, admitted: false });
        let batch = std::mem::take(&mut remote.batch);
        remote.ops += 1;
        let work = self.remote_admit_batch(batch);
        ctx.spawn(work.into_actor(self).map(move |admitted, act, ctx| {
            act.remote().ops -= 1;
            match admitted {
                Ok(_) => {
                    if let Some(waiting) = act.remote().awaiting.get_mut(&fingerprint) {
                        waiting.admitted = true;
                    }
                    act.remote_ack_if_ready(fingerprint, ctx);
                }
                Err(e) => {
                    // Keep the lease: it expires and the page is fetched again elsewhere.
                    tracing::error!("shared frontier: admit failed: {e}");
                    act.remote().awaiting.remove(&fingerprint);
                }
            }
            act.pump(ctx);
        }));
    }

    /// Sinks wrote these pages' items.
    pub(super) fn remote_durable(&mut self, pages: &[Fingerprint], ctx: &mut Context<Self>) {
        for fp in pages {
            if let Some(waiting) = self.remote().awaiting.get_mut(fp) {
                waiting.sinks_left = waiting.sinks_left.saturating_sub(1);
                self.remote_ack_if_ready(*fp, ctx);
            }
        }
    }

    fn remote_ack_if_ready(&mut self, fingerprint: Fingerprint, ctx: &mut Context<Self>) {
        let remote = self.remote();
        let ready = remote.awaiting.get(&fingerprint).is_some_and(|w| w.admitted && w.sinks_left == 0);
        if let Some(waiting) = ready.then(|| remote.awaiting.remove(&fingerprint)).flatten() {
            self.remote_flush(Some(waiting.token), ctx);
        }
    }

    /// The lease of a request that ends here, if this process holds one.
    pub(super) fn remote_release(&mut self, fingerprint: &Fingerprint) -> Option<LeaseToken> {
        self.remote.as_mut().and_then(|r| r.tokens.remove(fingerprint))
    }

    /// Leases requests while there is room; when idle, checks whether the crawl is done.
    pub(super) fn remote_refill(&mut self, ctx: &mut Context<Self>) {
        if self.draining {
            return;
        }
        let local = self.frontier.queued() + self.in_progress.len() + self.gated();
        let room = self.remote().shared.lease_batch.saturating_sub(local);
        let asks = lease_asks(self.frontier.routing(), |q| self.frontier.queue_load(q), room);
        let remote = self.remote();
        if remote.leasing || asks.is_empty() {
            return;
        }
        remote.leasing = true;
        let store = remote.shared.store.clone();
        ctx.spawn(async move { store.lease_from(asks).await }.into_actor(self).map(|leased, act, ctx| {
            act.remote().leasing = false;
            let leased = match leased {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("shared frontier: lease failed: {e}");
                    Vec::new()
                }
            };
            let got = leased.len();
            for from in leased {
                let queue = act.frontier.routing().id(&from.queue).unwrap_or(QueueId::DEFAULT);
                act.enqueue_leased(from.lease.request, from.lease.token, queue, ctx);
            }
            if got > 0 {
                act.pump(ctx);
            } else {
                act.remote_poll(ctx);
            }
        }));
    }

    fn enqueue_leased(
        &mut self,
        record: PendingRequest,
        token: LeaseToken,
        queue: QueueId,
        ctx: &mut Context<Self>,
    ) {
        let Ok(mut url) = Url::parse(&record.url) else {
            tracing::warn!(url = %record.url, "shared frontier: dropping an unparsable URL");
            let ack = Some(token);
            return self.remote_flush(ack, ctx);
        };
        urls::normalize(&mut url);
        let fingerprint = urls::fingerprint(&url);
        if let Some(older) = self.remote().adopt_duplicate(fingerprint, &token) {
            tracing::debug!(%url, "shared frontier: a second copy of a request held here; keeping the newer lease");
            return self.remote_flush(Some(older), ctx);
        }
        let chain = record.redirect_chain.into_iter().map(Fingerprint).collect();
        match self.frontier.restore_to(url.clone(), record.depth, chain, queue) {
            Admission::Queued { fetch_robots } => {
                self.remote().tokens.insert(fingerprint, token);
                if let Some(host) = fetch_robots {
                    self.fetch_robots(host, url, ctx);
                }
            }
            refused => {
                self.refused(refused, &url);
                self.remote_flush(Some(token), ctx);
            }
        }
    }

    /// Nothing here to do: start URLs waiting? the shared queue empty and no lease held
    /// anywhere? Then this process is done (unless it waits for start URLs).
    pub(super) fn remote_poll(&mut self, ctx: &mut Context<Self>) {
        let local_idle = self.frontier.queued() == 0 && self.in_progress.is_empty() && self.gated() == 0;
        let remote = self.remote();
        if remote.polling || remote.leasing || remote.ops > 0 || !remote.batch.is_empty() || !local_idle {
            return;
        }
        remote.polling = true;
        let store = remote.shared.store.clone();
        let work = async move {
            let starts = store.take_start_urls(64).await?;
            let pending = store.pending().await?;
            Ok::<_, StoreError>((starts, pending))
        };
        ctx.spawn(work.into_actor(self).map(|polled, act, ctx| {
            act.remote().polling = false;
            let (starts, pending) = match polled {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("shared frontier: poll failed: {e}");
                    (Vec::new(), Pending { queued: 1, leased: 0 })
                }
            };
            let mut offered = false;
            for start in starts {
                match Url::parse(start.trim()) {
                    Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
                        urls::normalize(&mut url);
                        tracing::info!(%url, "start URL from the broker");
                        act.frontier.add_start(&url);
                        offered |= act.offer(url, 0, Vec::new(), ctx);
                    }
                    _ => tracing::warn!(start = %start, "shared frontier: ignoring a start URL that is not an http(s) URL"),
                }
            }
            if offered {
                act.remote_flush(None, ctx);
                return;
            }
            if pending.is_done() {
                // This crawl is over everywhere: a reseed (here or in another process)
                // starts the next one with nothing seen.
                act.frontier.forget_seen();
            }
            if pending.is_done() && !act.remote().shared.wait_for_start_urls {
                act.report_idle();
                return;
            }
            ctx.run_later(IDLE_POLL, |act, ctx| {
                act.remote_refill(ctx);
                act.remote_poll(ctx);
            });
        }));
    }

    /// `action: reseed` with a shared frontier (this process claimed the tick): when the
    /// crawl is over across the processes, forgets what was seen (in the broker and here)
    /// and offers the seeds again; the other processes take part as they poll.
    pub(super) fn remote_reseed(&mut self, ctx: &mut Context<Self>) {
        let store = self.remote().shared.store.clone();
        let work = async move {
            if !store.pending().await?.is_done() {
                return Ok(false);
            }
            store.forget_seen().await?;
            Ok::<_, StoreError>(true)
        };
        ctx.spawn(work.into_actor(self).map(|reseed, act, ctx| match reseed {
            Ok(true) => {
                act.frontier.forget_seen();
                act.reseed_offer(ctx);
            }
            Ok(false) => {
                tracing::info!("reseed skipped: the last crawl is still running in the shared frontier")
            }
            Err(e) => tracing::warn!("reseed skipped: {e}"),
        }));
    }

    /// A request leased here will never complete normally (robots): done.
    pub(super) fn remote_done(&mut self, request: &CrawlRequest, ctx: &mut Context<Self>) {
        if let Some(token) = self.remote_release(&request.fingerprint) {
            self.remote_flush(Some(token), ctx);
        }
    }

    /// A request leased here was dead-lettered: the store takes it as done, to its own
    /// dead-letter place if it has one.
    pub(super) fn remote_dead(&mut self, request: &CrawlRequest, reason: String, ctx: &mut Context<Self>) {
        let Some(token) = self.remote_release(&request.fingerprint) else { return };
        let remote = self.remote();
        remote.ops += 1;
        let store = remote.shared.store.clone();
        ctx.spawn(async move { store.dead_letter(vec![(token, reason)]).await }.into_actor(self).map(
            |result, act, ctx| {
                act.remote().ops -= 1;
                if let Err(e) = result {
                    tracing::error!("shared frontier: giving up a dead-lettered request failed: {e}");
                }
                act.pump(ctx);
            },
        ));
    }

    /// A sink failed for good: the pages waiting for it go back to the shared queue (their
    /// links are admitted already, or on their way), and so does every later page with
    /// items.
    pub(super) fn remote_sink_failed(&mut self, sink: &str, ctx: &mut Context<Self>) {
        let remote = self.remote();
        remote.sink_failed = true;
        let tokens: Vec<LeaseToken> = remote.awaiting.drain().map(|(_, waiting)| waiting.token).collect();
        tracing::error!(
            sink,
            pages = tokens.len(),
            "a sink failed: its pages go back to the shared frontier for another process"
        );
        self.remote_release_tokens(tokens, ctx);
    }

    /// Gives `tokens` back to the shared queue now (not when their leases expire).
    fn remote_release_tokens(&mut self, tokens: Vec<LeaseToken>, ctx: &mut Context<Self>) {
        if tokens.is_empty() {
            return;
        }
        let remote = self.remote();
        remote.ops += 1;
        let store = remote.shared.store.clone();
        ctx.spawn(async move { store.release(tokens).await }.into_actor(self).map(|released, act, ctx| {
            act.remote().ops -= 1;
            match released {
                Ok(n) => {
                    tracing::info!(requests = n, "gave requests back to the shared frontier");
                    act.stats.released.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => tracing::warn!("shared frontier: release failed (the leases expire instead): {e}"),
            }
            act.pump(ctx);
        }));
    }

    /// Stopping: requests leased here go back to the shared queue at once (not after a
    /// lease expires), for the other processes: when the drain starts, those not started;
    /// at the very end (`all`), those the drain cut off too.
    pub(super) fn remote_give_back(&mut self, all: bool, ctx: &mut Context<Self>) {
        let in_progress = &self.in_progress;
        let remote = self.remote.as_mut().expect("called only with a shared frontier");
        let back: Vec<Fingerprint> =
            remote.tokens.keys().filter(|fp| all || !in_progress.contains_key(fp)).copied().collect();
        if back.is_empty() {
            return;
        }
        let tokens: Vec<LeaseToken> = back.iter().filter_map(|fp| remote.tokens.remove(fp)).collect();
        self.remote_release_tokens(tokens, ctx);
    }

    /// Copies the store's reconnect count into the stats.
    pub(super) fn remote_counters(&self) {
        if let Some(remote) = &self.remote {
            let reconnects = remote.shared.store.reconnects();
            self.stats.reconnects.store(reconnects, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Admits `batch`, one store call per queue it goes to (in the order the queues first
/// appear).
async fn admit_by_queue(
    store: Arc<dyn SharedStore>,
    routing: Arc<Routing>,
    batch: Vec<(QueueId, Admit)>,
) -> StoreResult<()> {
    let mut by_queue: Vec<(QueueId, Vec<Admit>)> = Vec::new();
    for (queue, admit) in batch {
        match by_queue.iter_mut().find(|(q, _)| *q == queue) {
            Some((_, admits)) => admits.push(admit),
            None => by_queue.push((queue, vec![admit])),
        }
    }
    for (queue, admits) in by_queue {
        store.admit_to(routing.queue(queue).name.clone(), admits).await?;
    }
    Ok(())
}

/// What to lease: from each queue this process consumes, as many as its concurrency leaves
/// room for (counting what it holds already), and `room` in all, asked highest priority
/// first. The room is shared out in turns, one request at a time, highest priority first:
/// a store cannot tell which queue has work before it is asked, and a queue given all the
/// room would starve the others whenever it is empty. (What is leased is then handed out by
/// the local frontier, highest priority first.)
fn lease_asks(routing: &Routing, load: impl Fn(QueueId) -> (usize, u32), room: usize) -> Vec<LeaseAsk> {
    let mut consumed: Vec<(usize, &crate::crawl::routing::QueueConfig)> =
        routing.queues().iter().enumerate().filter(|(_, q)| q.consumed).collect();
    consumed.sort_by_key(|(_, q)| std::cmp::Reverse(q.priority));
    let free: Vec<usize> = consumed
        .iter()
        .map(|(i, q)| {
            let (queued, in_flight) = load(QueueId(*i as u16));
            (q.concurrency as usize).saturating_sub(queued + in_flight as usize)
        })
        .collect();
    let mut max = vec![0usize; free.len()];
    let mut left = room;
    // Each turn gives at least one, or ends: at most `room` turns.
    while left > 0 {
        let before = left;
        for (m, f) in max.iter_mut().zip(&free) {
            if left > 0 && *m < *f {
                *m += 1;
                left -= 1;
            }
        }
        if left == before {
            break;
        }
    }
    consumed
        .iter()
        .zip(max)
        .filter(|(_, max)| *max > 0)
        .map(|((_, q), max)| LeaseAsk { queue: q.name.clone(), max })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(queues: serde_json::Value, only: Option<&[&str]>) -> Routing {
        let spec = serde_json::json!({
            "name": "t", "seeds": ["http://a.test/"], "fetch": { "concurrency": 16 }, "queues": queues,
        });
        let mut r = Routing::new(&serde_json::from_value(spec).expect("spec")).expect("routing");
        if let Some(only) = only {
            r.consume_only(only).expect("queues");
        }
        r
    }

    fn asks(asks: &[LeaseAsk]) -> Vec<(&str, usize)> {
        asks.iter().map(|a| (&*a.queue, a.max)).collect()
    }

    #[test]
    fn every_consumed_queue_with_room_is_asked() {
        let r = routing(
            serde_json::json!({ "documents": { "concurrency": 4, "priority": 1 }, "slow": {} }),
            None,
        );
        let idle = |_| (0, 0);
        // The room in turns, highest priority first: documents (4 at most) is asked, and
        // so are default and slow, which share what is left.
        assert_eq!(asks(&lease_asks(&r, idle, 16)), [("documents", 4), ("default", 6), ("slow", 6)]);
        assert_eq!(asks(&lease_asks(&r, idle, 2)), [("documents", 1), ("default", 1)]);
        // What a queue holds counts against its concurrency.
        let busy = |q: QueueId| if q == QueueId(1) { (3, 1) } else { (0, 0) };
        assert_eq!(asks(&lease_asks(&r, busy, 16)), [("default", 8), ("slow", 8)]);
        assert!(lease_asks(&r, idle, 0).is_empty());
        // A worker of some queues asks only those.
        let w = routing(serde_json::json!({ "documents": {} }), Some(&["documents"]));
        assert_eq!(asks(&lease_asks(&w, idle, 16)), [("documents", 16)]);
    }
}
