//! The broker seam for a shared frontier: what the scheduler needs from a queue and a
//! seen-set that many processes share, whatever broker keeps them.
//!
//! A [`SharedStore`] is implemented by each broker in `bridges/<broker>/` (Redis lists and
//! Lua scripts, Kafka partitions and committed offsets, ...); the runtime picks one from
//! the spec through `bridges::open_frontier`, and the scheduler talks only to this trait
//! (`crawl/scheduler/remote.rs`). Every implementation keeps the same promises:
//!
//! - **admit**: a discovered link is queued once across all processes (dedup holds across
//!   processes); when `admit` returns `Ok`, the broker has it.
//! - **lease**: a request handed out here is held by this process until it is acked; if
//!   the process dies, the request comes back to the others (a lease that expires, a
//!   partition that is reassigned, a message that is redelivered).
//! - **ack**: called only when the request is fully done (its links admitted, its items
//!   acked by every sink), so nothing is lost between the broker and the sinks.
//! - **pending**: the crawl is done across processes when nothing is queued or held, in
//!   any queue of the crawl.
//!
//! Routing (docs/routing.md): a store that keeps one broker queue per queue of the crawl
//! says so ([`SharedStore::supports_queues`]) and takes [`SharedStore::admit_to`] and
//! [`SharedStore::lease_from`]; the plain `admit` and `lease` are the `default` queue's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::crawl::urls::Fingerprint;
use crate::state::PendingRequest;

/// Why a shared-frontier call failed (the broker's own error, with its message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps a broker's error.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(e.into())
    }
}

/// A `Result` with a [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

/// One held request, as a store identifies it: give it back to [`SharedStore::ack`] or
/// [`SharedStore::renew`]. Opaque to the scheduler; each store writes what it needs into
/// it (a Redis lease member, which may hold a binary queue entry; a Kafka partition and
/// offset; an AMQP delivery tag).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(Arc<[u8]>);

impl LeaseToken {
    /// A token with this text.
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Self(Arc::<[u8]>::from(text.into()))
    }

    /// A token of any bytes (e.g. a lease member that holds a pickled request).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    /// The token's text: what [`LeaseToken::new`] was given (empty for a token made from
    /// bytes that are not UTF-8; use [`LeaseToken::as_bytes`] for those).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl LeaseToken {
    /// The token of a lease that a store of one named queue (of several that make a routed
    /// crawl's frontier) gave as `token`: `<queue>/<token>`, or `token` itself for
    /// `default`. Queue names have no `/`.
    pub fn of_queue(queue: &str, token: LeaseToken) -> Self {
        if queue == crate::spec::DEFAULT_QUEUE {
            return token;
        }
        Self::new(format!("{queue}/{}", token.as_str()))
    }

    /// The queue a [`LeaseToken::of_queue`] token names, and the token its queue's store gave.
    pub fn split_queue(&self) -> (&str, LeaseToken) {
        match self.as_str().split_once('/') {
            Some((queue, token)) => (queue, LeaseToken::new(token)),
            None => (crate::spec::DEFAULT_QUEUE, self.clone()),
        }
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseToken({})", String::from_utf8_lossy(&self.0))
    }
}

/// A leased request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The lease, for [`SharedStore::ack`] and [`SharedStore::renew`].
    pub token: LeaseToken,
    /// The request.
    pub request: PendingRequest,
    /// Its priority (0 unless it was admitted with one).
    pub priority: i32,
}

/// A request to admit: its fingerprint, the request, its priority.
pub type Admit = (Fingerprint, PendingRequest, i32);

/// Up to `max` requests wanted from `queue` ([`SharedStore::lease_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAsk {
    /// The queue's name.
    pub queue: Arc<str>,
    /// How many at most.
    pub max: usize,
}

/// A request leased from a named queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedFrom {
    /// The queue it came from.
    pub queue: Arc<str>,
    /// The lease.
    pub lease: Leased,
}

impl LeasedFrom {
    /// `lease`, given by the store of the queue `queue` alone, with its token made
    /// [`LeaseToken::of_queue`].
    pub fn of_queue(queue: &Arc<str>, lease: Leased) -> Self {
        let token = LeaseToken::of_queue(queue, lease.token);
        Self { queue: queue.clone(), lease: Leased { token, ..lease } }
    }
}

/// A store of one queue of a routed crawl, for [`QueueStores`].
pub trait QueueStore: SharedStore + Clone {
    /// Leases from several queues' stores (each ask: the queue, its store, how many at
    /// most), in the asks' order (highest priority first). By default each store's
    /// [`SharedStore::lease`] in turn; a store whose lease waits when it has nothing (a long
    /// poll) waits once, for any of them, instead.
    fn lease_queues(asks: Vec<(Arc<str>, Self, usize)>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (queue, store, max) in asks {
                let leased = store.lease(max).await?;
                out.extend(leased.into_iter().map(|lease| LeasedFrom::of_queue(&queue, lease)));
            }
            Ok(out)
        })
    }
}

/// The frontier of a routed crawl made of one store per queue of the crawl, `default`
/// first: what a broker that keeps a queue (a broker queue, a topic) per queue of the crawl
/// opens (docs/routing.md). `default`'s store takes the plain calls (admit, lease, start
/// URLs, schedule claims); a named queue's lease tokens are [`LeaseToken::of_queue`]; the
/// crawl is done when every queue's store says so. Cheap to clone.
#[derive(Debug)]
pub struct QueueStores<S> {
    queues: Arc<Vec<(Arc<str>, S)>>,
}

impl<S> Clone for QueueStores<S> {
    fn clone(&self) -> Self {
        Self { queues: self.queues.clone() }
    }
}

impl<S> QueueStores<S> {
    /// `default`'s store and the named queues' ones.
    pub fn new(default: S, named: Vec<(Arc<str>, S)>) -> Self {
        let mut queues = vec![(Arc::<str>::from(crate::spec::DEFAULT_QUEUE), default)];
        queues.extend(named);
        Self { queues: Arc::new(queues) }
    }

    /// Every queue's name and store, `default` first.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &S)> {
        self.queues.iter().map(|(name, store)| (name, store))
    }

    /// The store of the queue `name`.
    pub fn get(&self, name: &str) -> Option<(&Arc<str>, &S)> {
        self.iter().find(|(n, _)| &***n == name)
    }

    /// `default`'s store.
    pub fn default_store(&self) -> &S {
        &self.queues[0].1
    }

    /// Leases (each with something of its own) grouped by the store of the queue their
    /// tokens name ([`LeaseToken::of_queue`]), each token as its queue's store gave it; a
    /// token of a queue this crawl does not have is left out, with a warning.
    pub fn by_queue<T>(&self, items: Vec<(LeaseToken, T)>) -> Vec<(&S, Vec<(LeaseToken, T)>)> {
        let mut groups: Vec<(usize, Vec<(LeaseToken, T)>)> = Vec::new();
        for (token, extra) in items {
            let (queue, inner) = token.split_queue();
            let Some(i) = self.queues.iter().position(|(n, _)| &**n == queue) else {
                tracing::warn!(
                    token = token.as_str(),
                    "shared frontier: a lease of an unknown queue; ignored"
                );
                continue;
            };
            match groups.iter_mut().find(|(g, _)| *g == i) {
                Some((_, group)) => group.push((inner, extra)),
                None => groups.push((i, vec![(inner, extra)])),
            }
        }
        groups.into_iter().map(|(i, group)| (&self.queues[i].1, group)).collect()
    }

    /// [`QueueStores::by_queue`] of bare tokens.
    pub fn tokens_by_queue(&self, tokens: Vec<LeaseToken>) -> Vec<(&S, Vec<LeaseToken>)> {
        let groups = self.by_queue(tokens.into_iter().map(|t| (t, ())).collect());
        groups.into_iter().map(|(s, group)| (s, group.into_iter().map(|(t, ())| t).collect())).collect()
    }
}

impl<S: QueueStore> SharedStore for QueueStores<S> {
    fn describe(&self) -> String {
        let names: Vec<&str> = self.iter().map(|(n, _)| &**n).collect();
        format!("{}, a queue each for {}", self.default_store().describe(), names.join(", "))
    }

    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        self.default_store().admit(batch)
    }

    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>> {
        self.default_store().lease(max)
    }

    fn supports_queues(&self) -> bool {
        true
    }

    fn admit_to(&self, queue: Arc<str>, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        match self.get(&queue) {
            Some((_, store)) => store.admit(batch),
            None => {
                Box::pin(async move { Err(StoreError::new(format!("this frontier has no queue '{queue}'"))) })
            }
        }
    }

    fn lease_from(&self, asks: Vec<LeaseAsk>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        let asks = asks
            .into_iter()
            .filter(|ask| ask.max > 0)
            .filter_map(|ask| {
                self.get(&ask.queue).map(|(name, store)| (name.clone(), store.clone(), ask.max))
            })
            .collect();
        S::lease_queues(asks)
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let acks: Vec<_> = self.tokens_by_queue(tokens).into_iter().map(|(s, ts)| s.ack(ts)).collect();
        Box::pin(async move { futures::future::try_join_all(acks).await.map(drop) })
    }

    /// Each queue's dead letters to its own store (a RabbitMQ queue's dead-letter exchange).
    fn dead_letter(&self, letters: Vec<(LeaseToken, String)>) -> BoxFuture<'static, StoreResult<()>> {
        let each: Vec<_> = self.by_queue(letters).into_iter().map(|(s, ls)| s.dead_letter(ls)).collect();
        Box::pin(async move { futures::future::try_join_all(each).await.map(drop) })
    }

    fn lease_duration(&self) -> Option<Duration> {
        self.default_store().lease_duration()
    }

    fn renew(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let renewals: Vec<_> = self.tokens_by_queue(tokens).into_iter().map(|(s, ts)| s.renew(ts)).collect();
        Box::pin(async move { futures::future::try_join_all(renewals).await.map(drop) })
    }

    fn reap(&self) -> BoxFuture<'static, StoreResult<usize>> {
        let reaps: Vec<_> = self.iter().map(|(_, s)| s.reap()).collect();
        Box::pin(async move { Ok(futures::future::try_join_all(reaps).await?.into_iter().sum()) })
    }

    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let releases: Vec<_> =
            self.tokens_by_queue(tokens).into_iter().map(|(s, ts)| s.release(ts)).collect();
        Box::pin(async move { Ok(futures::future::try_join_all(releases).await?.into_iter().sum()) })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        self.default_store().take_start_urls(max)
    }

    /// Every queue's, consumed by this process or not.
    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let each: Vec<_> = self.iter().map(|(_, s)| s.pending()).collect();
        Box::pin(async move { Ok(futures::future::try_join_all(each).await?.into_iter().sum()) })
    }

    /// `default`'s store decides (as without routing).
    fn claim(&self, key: String, hold: Duration) -> BoxFuture<'static, StoreResult<bool>> {
        self.default_store().claim(key, hold)
    }

    /// `default`'s store counts the crawl's items.
    fn take_items(&self, wanted: u64, limit: u64) -> Option<BoxFuture<'static, StoreResult<(u64, bool)>>> {
        self.default_store().take_items(wanted, limit)
    }

    fn reconnects(&self) -> u64 {
        self.iter().map(|(_, s)| s.reconnects()).sum()
    }

    fn dead_letters(&self) -> u64 {
        self.iter().map(|(_, s)| s.dead_letters()).sum()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let closes: Vec<_> = self.iter().map(|(_, s)| s.close()).collect();
        Box::pin(async move {
            futures::future::join_all(closes).await;
        })
    }
}

/// What is left of the crawl across every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    /// Requests queued and not handed out yet (for Kafka: not committed yet, so including
    /// those other processes hold).
    pub queued: u64,
    /// Requests handed out and not acked yet.
    pub leased: u64,
}

/// What is left in several stores (a routed crawl's queues) together.
impl std::iter::Sum for Pending {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |all, p| Self {
            queued: all.queued + p.queued,
            leased: all.leased + p.leased,
        })
    }
}

impl Pending {
    /// Nothing queued, nothing held anywhere.
    pub fn is_done(&self) -> bool {
        self.queued == 0 && self.leased == 0
    }
}

/// A frontier shared by many processes through a broker. See the module documentation for
/// the promises; every method may be called from any task, concurrently.
pub trait SharedStore: Send + Sync + 'static {
    /// The broker and where the frontier lives in it, for logs (no secrets).
    fn describe(&self) -> String;

    /// Admits a batch: each request new to the shared seen-set is queued. A store whose
    /// dedup happens later (Kafka dedups as a partition's owner consumes) queues them all.
    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>>;

    /// Leases up to `max` requests (fewer, or none, when there are fewer queued).
    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>>;

    /// Whether the store keeps the named queues of a crawl's routing (one broker queue
    /// each); without, only `default` is served ([`SharedStore::admit_to`] and
    /// [`SharedStore::lease_from`] refuse the others).
    fn supports_queues(&self) -> bool {
        false
    }

    /// [`SharedStore::admit`] into the named queue `queue` (`default` is the plain one).
    fn admit_to(&self, queue: Arc<str>, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        if &*queue == crate::spec::DEFAULT_QUEUE {
            return self.admit(batch);
        }
        Box::pin(async move {
            Err(StoreError::new(format!("this frontier has no queue '{queue}' (only `default`)")))
        })
    }

    /// Leases from several queues at once, each ask in turn (the caller orders them,
    /// highest priority first); a lease's token is acked, renewed and released as any other.
    fn lease_from(&self, asks: Vec<LeaseAsk>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        let max: usize = asks.iter().filter(|a| &*a.queue == crate::spec::DEFAULT_QUEUE).map(|a| a.max).sum();
        if max == 0 {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let leased = self.lease(max);
        Box::pin(async move {
            let queue: Arc<str> = crate::spec::DEFAULT_QUEUE.into();
            Ok(leased.await?.into_iter().map(|lease| LeasedFrom { queue: queue.clone(), lease }).collect())
        })
    }

    /// Acknowledges leases: their requests are fully done.
    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>>;

    /// Gives up leases whose requests were dead-lettered (each with the reason): they are
    /// done, and a store with a dead-letter place of its own (AMQP's dead-letter exchange)
    /// sends them there. By default they are acked.
    fn dead_letter(&self, letters: Vec<(LeaseToken, String)>) -> BoxFuture<'static, StoreResult<()>> {
        self.ack(letters.into_iter().map(|(token, _)| token).collect())
    }

    /// How long a lease lasts unless renewed, for stores whose leases expire (then the
    /// scheduler renews what it holds every third of it and calls [`SharedStore::reap`]
    /// every half of it); `None` for stores that take work back otherwise (Kafka's
    /// rebalances, AMQP's redelivery on a closed channel).
    fn lease_duration(&self) -> Option<Duration>;

    /// Extends the leases still held (stores with [`SharedStore::lease_duration`]).
    fn renew(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let _ = tokens;
        Box::pin(async { Ok(()) })
    }

    /// Takes back expired leases of any process; returns how many came back.
    fn reap(&self) -> BoxFuture<'static, StoreResult<usize>> {
        Box::pin(async { Ok(0) })
    }

    /// Gives back leases this process will not work on (it is stopping): their requests go
    /// back to the shared queue at once, for the other processes; returns how many.
    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>>;

    /// Takes up to `max` start URLs that were pushed to the broker (plain URLs or JSON
    /// objects with a `url`).
    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>>;

    /// What is left across every process.
    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>>;

    /// Claims `key` (a schedule's tick) for this process, for at least `hold`: `true` for
    /// the one process of the crawl that gets it, so a schedule fires once per tick across
    /// every process.
    fn claim(&self, key: String, hold: Duration) -> BoxFuture<'static, StoreResult<bool>>;

    /// Forgets what the crawl has seen (the shared seen-set, and the counts `max_pages`
    /// and `max_items` keep), for `action: reseed`: the next admits start a new crawl. A store that cannot
    /// (Kafka, AMQP) answers with an error, and the reseed is skipped.
    fn forget_seen(&self) -> BoxFuture<'static, StoreResult<()>> {
        Box::pin(async {
            Err(StoreError::new("this broker's shared frontier cannot forget what it has seen"))
        })
    }

    /// Grants up to `wanted` more of the crawl's `limit` items (`scope.max_items`) across
    /// every process: how many, and whether the crawl has reached the limit with them.
    /// `None`: this store keeps no count, and each process counts its own items.
    fn take_items(&self, wanted: u64, limit: u64) -> Option<BoxFuture<'static, StoreResult<(u64, bool)>>> {
        let _ = (wanted, limit);
        None
    }

    /// Reconnections to the broker so far (for the summary).
    fn reconnects(&self) -> u64;

    /// Entries of the shared queue that could not be read and were moved aside (each
    /// store says where), for the summary's `dead_letters`.
    fn dead_letters(&self) -> u64 {
        0
    }

    /// Politeness shared by every process of the crawl (per-host rate, Crawl-delay and
    /// concurrency held in the broker), or `None`: each process then keeps its own (a
    /// crawl of N processes may reach a host N times as hard).
    fn politeness(&self) -> Option<Arc<dyn SharedPoliteness>> {
        None
    }

    /// Called once when the run ends, after the last ack: leave the broker cleanly (a Kafka
    /// consumer leaves its group, so its partitions move at once).
    fn close(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// What a process asks before it fetches from a host: one request's permit.
#[derive(Debug, Clone, PartialEq)]
pub struct PermitAsk {
    /// The host (`host[:port]`).
    pub host: Arc<str>,
    /// The least time between two requests to the host across the crawl (the larger of
    /// `1 / per_host.rate` and robots.txt's Crawl-delay); zero for none.
    pub interval: Duration,
    /// Requests in flight to the host across the crawl, at most (0: no limit).
    pub concurrency: u32,
}

/// A held per-host concurrency slot: give it back with [`SharedPoliteness::permits`] when
/// the fetch ends (it expires by itself if its process dies).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The host.
    pub host: Arc<str>,
    /// The slot's id, unique across processes.
    pub id: Arc<str>,
}

/// The answer to one [`PermitAsk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    /// Fetch `after` from now (the host's turn, reserved); the slot (when the ask had a
    /// concurrency) is held from now until given back.
    Granted {
        /// When the request may start, from the answer.
        after: Duration,
        /// The concurrency slot, if any.
        slot: Option<Slot>,
    },
    /// The host's rate allows the next request this much later: ask again then.
    Wait(Duration),
    /// The host has `concurrency` requests in flight across the crawl: ask again when a
    /// slot is given back (or after a short poll, for other processes' slots).
    Full,
}

/// Per-host politeness across every process of a crawl: a rate limiter (GCRA) and
/// concurrency slots kept in the broker. Every call is one round trip for a whole batch.
pub trait SharedPoliteness: Send + Sync + 'static {
    /// Gives back `done` slots, then answers each ask in order (asks for the same host in
    /// one batch see each other's grants).
    fn permits(&self, done: Vec<Slot>, asks: Vec<PermitAsk>) -> BoxFuture<'static, StoreResult<Vec<Permit>>>;
}

/// A start URL as pushed to a broker: a plain URL, or a JSON object with a string `url`
/// (scrapy-redis's JSON start URLs; the other fields are ignored). Blank entries and JSON
/// without a string `url` give `None` (logged); text that only looks like JSON is taken as
/// it is.
pub fn parse_start_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) => match v.get("url").and_then(|u| u.as_str()) {
                Some(u) if !u.trim().is_empty() => return Some(u.trim().to_string()),
                _ => {
                    tracing::warn!(entry = %s, "shared frontier: JSON start URL without a string \"url\"; skipped");
                    return None;
                }
            },
            Err(_) => return Some(s.to_string()),
        }
    }
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_urls_plain_and_json() {
        assert_eq!(parse_start_url(" http://a/ \n").as_deref(), Some("http://a/"));
        assert_eq!(parse_start_url(r#"{"url": "http://b/", "meta": {}}"#).as_deref(), Some("http://b/"));
        assert_eq!(parse_start_url(r#"{"u": 1}"#), None);
        assert_eq!(parse_start_url("{not json").as_deref(), Some("{not json"));
        assert_eq!(parse_start_url("   "), None);
    }

    #[test]
    fn named_queue_tokens_carry_their_queue() {
        let lease = Leased {
            token: LeaseToken::new("3:12:1"),
            request: PendingRequest { url: "http://a.test/".into(), depth: 0, redirect_chain: vec![] },
            priority: 0,
        };
        let (docs, default): (Arc<str>, Arc<str>) = ("documents".into(), crate::spec::DEFAULT_QUEUE.into());
        let named = LeasedFrom::of_queue(&docs, lease.clone());
        assert_eq!((&*named.queue, named.lease.token.as_str()), ("documents", "documents/3:12:1"));
        assert_eq!(named.lease.token.split_queue(), ("documents", LeaseToken::new("3:12:1")));
        let plain = LeasedFrom::of_queue(&default, lease);
        assert_eq!(plain.lease.token.as_str(), "3:12:1");
        assert_eq!(plain.lease.token.split_queue(), ("default", LeaseToken::new("3:12:1")));
    }

    #[test]
    fn leases_go_back_to_their_queues_store() {
        let stores = QueueStores::new("d", vec![("documents".into(), "docs")]);
        assert_eq!(stores.default_store(), &"d");
        assert_eq!(stores.get("documents").map(|(_, s)| *s), Some("docs"));
        let tokens = ["1:5:1", "documents/2:7:1", "nope/1:1:1", "1:6:1"].map(LeaseToken::new).to_vec();
        let groups: Vec<(&str, Vec<String>)> = stores
            .tokens_by_queue(tokens)
            .into_iter()
            .map(|(s, ts)| (*s, ts.iter().map(|t| t.as_str().to_string()).collect()))
            .collect();
        assert_eq!(
            groups,
            [("d", vec!["1:5:1".to_string(), "1:6:1".to_string()]), ("docs", vec!["2:7:1".to_string()])],
            "an unknown queue's lease is left out"
        );
    }
}
