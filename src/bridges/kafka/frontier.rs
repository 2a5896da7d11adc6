//! `frontier: { backend: kafka }`: the crawl's requests on a Kafka topic, shared by every
//! process of the crawl as one consumer group.
//!
//! - **Admit**: each request is produced to the requests topic (`<name>.requests`), keyed
//!   by its host (or URL), with an idempotent producer; `admit` returns when the broker
//!   confirmed every message.
//! - **Dedup**: Kafka has no set, so the owner of a partition dedups as it consumes: a
//!   request's key decides its partition, so one URL always lands in the same partition,
//!   and its owner keeps that partition's seen-set. The seen-set is persisted as a compacted
//!   changelog topic (`<name>.seen`, partitioned like the requests, as Kafka Streams keeps
//!   its state stores): key the URL's fingerprint, value the offset of the first message
//!   that carried it. A new owner restores the partition's seen-set before it consumes. A
//!   message whose fingerprint was first seen at another offset is a duplicate; one seen
//!   at its own offset is a request that an earlier owner took and did not finish: it is
//!   done again.
//! - **Lease and ack**: a consumed request is held until the scheduler acks it (links
//!   admitted, items acked by every sink). Pages finish out of order, so the committed
//!   offset of a partition is its lowest unfinished one ([`OffsetTracker`]).
//! - **Rebalance**: on a revoke, the process waits (up to `rebalance_wait`) for the requests
//!   it holds from the revoked partitions to finish, commits, and lets them go; requests it
//!   consumed but had not handed out are simply not committed, and the new owner reads them.
//!   A process that dies commits nothing more: its partitions go to the others after
//!   `session.timeout.ms`, which read from the last commit.
//! - **Holes**: the requests topic's offsets have none, so a message after a hole was
//!   handed out by the broker before an earlier batch was readable: the partition is read
//!   again from the hole ([`GapGuard`]; a hole that lasts is accepted with a warning).
//! - **Done**: when every partition's committed offset has reached its end (no process
//!   holds or has queued anything).
//! - **Start URLs**: `<name>.start_urls`, one URL (or a JSON object with `url`) a message,
//!   as `kafka-console-producer` writes them.
//! - **Routing** (`routes:`/`queues:`): each queue of the crawl is a frontier of this kind
//!   with topics and a group of its own ([`KafkaFrontier::open_queue`]; `routed.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use url::Url;

use super::broker::{KafkaBroker, LinkContext, TopicSpec};
use super::config::{FrontierKey, KafkaFrontierSpec};
use super::gaps::{GapGuard, Verdict};
use super::offsets::OffsetTracker;
use crate::bridges::BridgeError;
use crate::crawl::shared::{
    parse_start_url, Admit, LeaseToken, Leased, Pending, SharedStore, StoreError, StoreResult,
};
use crate::crawl::urls;
use crate::spec::{CrawlSpec, DEFAULT_QUEUE};
use crate::state::PendingRequest;

/// Requests consumed ahead of the scheduler's leases, at most.
const READ_AHEAD: usize = 256;
/// Messages taken from one poll, at most.
const POLL_BATCH: usize = 128;
/// How often the poll thread commits finished offsets.
const COMMIT_EVERY: Duration = Duration::from_millis(100);
/// How long a lease call waits for requests when none is ready (a long poll: the
/// scheduler hears of new requests as soon as the poll thread has them).
pub(super) const LEASE_WAIT: Duration = Duration::from_millis(100);

/// A request as it travels on the requests topic (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    url: String,
    #[serde(default)]
    depth: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    redirect_chain: Vec<u128>,
    #[serde(default, skip_serializing_if = "is_zero")]
    priority: i32,
}

fn is_zero(p: &i32) -> bool {
    *p == 0
}

/// The topics and group of one queue of the crawl (of the whole crawl without routing).
#[derive(Debug, Clone)]
struct Names {
    requests: String,
    seen: String,
    start: String,
    group: String,
}

impl Names {
    fn of(spec: &CrawlSpec, k: &KafkaFrontierSpec) -> Self {
        let name = &spec.name;
        Self {
            requests: k.topic.clone().unwrap_or_else(|| format!("{name}.requests")),
            seen: k.seen_topic.clone().unwrap_or_else(|| format!("{name}.seen")),
            start: k.start_topic.clone().unwrap_or_else(|| format!("{name}.start_urls")),
            group: k.group.clone().unwrap_or_else(|| name.clone()),
        }
    }

    /// Queue `queue`'s: `default` has the plain names; any other queue `q` its own requests
    /// topic `<requests>.q`, seen-set `<seen>.q` and consumer group `<group>.q` (the start
    /// topic stays the crawl's one).
    fn of_queue(spec: &CrawlSpec, queue: &str) -> Self {
        let plain = Self::of(spec, &spec.frontier.kafka);
        if queue == DEFAULT_QUEUE {
            return plain;
        }
        Self {
            requests: format!("{}.{queue}", plain.requests),
            seen: format!("{}.{queue}", plain.seen),
            group: format!("{}.{queue}", plain.group),
            start: plain.start,
        }
    }
}

/// How one queue's frontier is opened.
#[derive(Debug, Clone, Copy)]
struct Role {
    rebalance_wait: Duration,
    key: FrontierKey,
    partitions: i32,
    /// This process consumes the queue (joins its group).
    consume: bool,
    /// And the start-URL topic with it.
    starts: bool,
}

/// A consumed request, not yet leased.
struct Ready {
    partition: i32,
    offset: i64,
    request: PendingRequest,
    priority: i32,
}

/// One partition this process owns (or owned until a rebalance, and may get back).
#[derive(Default)]
struct Part {
    /// Tokens carry it: an ack for another epoch of the partition is for a request given
    /// up to another owner.
    epoch: u64,
    tracker: OffsetTracker,
    /// Fingerprint -> the offset of the first message that carried it.
    seen: HashMap<u128, i64>,
    /// Offsets handed to the scheduler and not acked.
    leased: HashSet<i64>,
    /// Holes in what the broker hands out.
    gaps: GapGuard,
}

#[derive(Default)]
struct State {
    /// The last partition epoch handed out.
    epochs: u64,
    parts: HashMap<i32, Part>,
    /// Partitions revoked by the last rebalance: if the group gives one back, its state
    /// (what is done, what is in progress here) carries on, so a commit that failed in
    /// between (a broker connection cut) costs no page twice.
    retired: HashMap<i32, Part>,
    ready: VecDeque<Ready>,
    starts: VecDeque<String>,
    /// Start-URL partitions' next offsets, to commit.
    start_positions: HashMap<i32, i64>,
    duplicates: u64,
    /// Requests messages that could not be read (skipped, offset done).
    unreadable: u64,
}

/// What the poll thread, the rebalance callbacks and the scheduler's calls share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Told when requests or start URLs became ready.
    ready: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The consumer's context: counts the connection's ups and downs, and handles rebalances.
struct GroupContext {
    link: LinkContext,
    shared: Arc<Shared>,
    names: Names,
    rebalance_wait: Duration,
    restorer: Mutex<BaseConsumer<LinkContext>>,
    timeout: Duration,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.link.record(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked = partitions_of(list, &self.names.requests);
            self.give_up(consumer, &revoked);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let assigned = partitions_of(list, &self.names.requests);
            let starts = self.start_positions(consumer, &assigned);
            for &p in &assigned {
                let gaps = GapGuard::starting_at(starts.get(&p).copied());
                let back = self.shared.lock().retired.remove(&p);
                if let Some(mut part) = back {
                    tracing::debug!(partition = p, "kafka frontier: got a partition back");
                    part.gaps = gaps;
                    self.shared.lock().parts.insert(p, part);
                    continue;
                }
                let seen = self.restore(p);
                tracing::info!(partition = p, seen = seen.len(), "kafka frontier: took over a partition");
                let mut state = self.shared.lock();
                state.epochs += 1;
                let epoch = state.epochs;
                state.parts.insert(p, Part { epoch, seen, gaps, ..Part::default() });
            }
            // What was revoked and not given back belongs to another process now.
            self.shared.lock().retired.clear();
        }
    }
}

impl GroupContext {
    /// Revoked partitions: wait (bounded) for their leased requests to finish, commit, and
    /// forget them.
    fn give_up(&self, consumer: &BaseConsumer<Self>, revoked: &[i32]) {
        let deadline = Instant::now() + self.rebalance_wait;
        let mut state = self.shared.lock();
        state.ready.retain(|r| !revoked.contains(&r.partition));
        loop {
            let held: usize = revoked.iter().filter_map(|p| state.parts.get(p)).map(|p| p.leased.len()).sum();
            let now = Instant::now();
            if held == 0 || now >= deadline {
                if held > 0 {
                    tracing::warn!(
                        requests = held,
                        "kafka frontier: rebalance: giving up requests still in progress (the new owner does them again)"
                    );
                }
                break;
            }
            state = match self
                .shared
                .changed
                .wait_timeout(state, (deadline - now).min(Duration::from_millis(50)))
            {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        let positions = positions(&state, &self.names, Some(revoked));
        drop(state);
        if positions.count() > 0 {
            if let Err(e) = consumer.commit(&positions, CommitMode::Sync) {
                tracing::warn!("kafka frontier: commit on revoke failed: {e}");
            }
        }
        let mut state = self.shared.lock();
        for p in revoked {
            if let Some(part) = state.parts.remove(p) {
                state.retired.insert(*p, part);
            }
        }
        state.start_positions.clear();
    }

    /// Where consumption of the `assigned` partitions starts (their committed offsets, or
    /// the start of the partition when none is): the first offset the gap guard expects.
    /// A partition not found (the query failed) starts unguarded until its first message.
    fn start_positions(&self, consumer: &BaseConsumer<Self>, assigned: &[i32]) -> HashMap<i32, i64> {
        let mut list = TopicPartitionList::new();
        for &p in assigned {
            list.add_partition(&self.names.requests, p);
        }
        let committed = match consumer.committed_offsets(list, self.timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("kafka frontier: cannot read the committed offsets: {e}");
                return HashMap::new();
            }
        };
        let mut starts = HashMap::new();
        for e in committed.elements_for_topic(&self.names.requests) {
            let start = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => consumer
                    .fetch_watermarks(&self.names.requests, e.partition(), self.timeout)
                    .ok()
                    .map(|w| w.0),
            };
            if let Some(start) = start {
                starts.insert(e.partition(), start);
            }
        }
        starts
    }

    /// Reads partition `p` of the seen-set changelog from its start to its end (the end is
    /// where the broker says the partition ends: `enable.partition.eof`, which holds even
    /// where a broker's high watermark lags inside the last record batch).
    fn restore(&self, p: i32) -> HashMap<u128, i64> {
        let mut seen = HashMap::new();
        let restorer = self.restorer.lock().unwrap_or_else(|e| e.into_inner());
        let mut list = TopicPartitionList::new();
        if list.add_partition_offset(&self.names.seen, p, Offset::Beginning).is_err()
            || restorer.assign(&list).is_err()
        {
            tracing::warn!("kafka frontier: cannot assign the seen-set partition {p}");
            return seen;
        }
        let deadline = Instant::now() + self.timeout.max(Duration::from_secs(30));
        let mut complete = false;
        while !complete && Instant::now() < deadline {
            match restorer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if let (Some(key), Some(value)) = (m.key(), m.payload()) {
                        if let (Ok(k), Ok(v)) = (<[u8; 16]>::try_from(key), <[u8; 8]>::try_from(value)) {
                            seen.entry(u128::from_be_bytes(k)).or_insert(i64::from_be_bytes(v));
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => complete = true,
                Some(Err(e)) => tracing::debug!("kafka frontier: restoring the seen-set: {e}"),
                None => {}
            }
        }
        if !complete {
            tracing::warn!("kafka frontier: the seen-set of partition {p} was read only in part (timed out)");
        }
        let _ = restorer.assign(&TopicPartitionList::new());
        seen
    }

    /// How many of `positions`' partitions have a record at or after their position (each
    /// counts once): reads each from there until a record or the partition's end. One that
    /// cannot be told in time counts as having records (the crawl is not done).
    fn records_after(&self, positions: &TopicPartitionList) -> u64 {
        let probe = self.restorer.lock().unwrap_or_else(|e| e.into_inner());
        if probe.assign(positions).is_err() {
            return 1;
        }
        let mut told: HashMap<i32, bool> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while told.len() < positions.count() && Instant::now() < deadline {
            match probe.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    told.insert(m.partition(), true);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    told.entry(p).or_insert(false);
                }
                _ => {}
            }
        }
        let _ = probe.assign(&TopicPartitionList::new());
        let unknown = positions.count() - told.len();
        (told.values().filter(|&&found| found).count() + unknown) as u64
    }
}

fn partitions_of(list: &TopicPartitionList, topic: &str) -> Vec<i32> {
    list.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

/// The positions to commit: every owned partition's (or only `only`'s) that moved, and
/// the start-URL partitions'.
fn positions(state: &State, names: &Names, only: Option<&[i32]>) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (p, part) in &state.parts {
        if only.is_some_and(|o| !o.contains(p)) {
            continue;
        }
        if let Some(position) = part.tracker.to_commit() {
            let _ = list.add_partition_offset(&names.requests, *p, Offset::Offset(position));
        }
    }
    for (p, position) in &state.start_positions {
        let _ = list.add_partition_offset(&names.start, *p, Offset::Offset(*position));
    }
    list
}

/// The Kafka frontier (see the module documentation). Cheap to clone; dropping the last
/// handle stops its poll thread.
#[derive(Clone)]
pub struct KafkaFrontier {
    inner: Arc<Inner>,
    _handles: Arc<LastHandle>,
}

/// Shared by a frontier's handles (the poll thread holds only `Inner`): dropped with the
/// last one, it stops the poll thread.
struct LastHandle(Arc<Inner>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
    }
}

struct Inner {
    names: Names,
    key: FrontierKey,
    bootstrap: String,
    producer: FutureProducer<LinkContext>,
    producer_link: LinkContext,
    consumer: BaseConsumer<GroupContext>,
    shared: Arc<Shared>,
    stop: AtomicBool,
    poller: Mutex<Option<JoinHandle<()>>>,
    partitions: i32,
    timeout: Duration,
    /// The last lag query found nothing to consume.
    looked_empty: AtomicBool,
}

impl KafkaFrontier {
    /// Connects to `brokers.kafka` (checked first: a wrong address or login fails here),
    /// creates the crawl's topics when missing, joins the crawl's consumer group and starts
    /// consuming.
    pub async fn open(spec: &CrawlSpec) -> Result<Self, BridgeError> {
        Self::open_queue(spec, DEFAULT_QUEUE, true).await
    }

    /// [`KafkaFrontier::open`] for one queue of a routed crawl (docs/routing.md): its own
    /// topics and consumer group (see `Names::of_queue`), created with the crawl's
    /// partitions and replication. With `consume` false this process only produces to the
    /// queue and reads its group's committed offsets (for [`SharedStore::pending`]): it
    /// does not join the queue's group. The start-URL topic is consumed with `default`.
    pub(super) async fn open_queue(
        spec: &CrawlSpec,
        queue: &str,
        consume: bool,
    ) -> Result<Self, BridgeError> {
        let broker = KafkaBroker::from_spec(spec, "the frontier")?;
        broker.check().await?;
        let k = &spec.frontier.kafka;
        let names = Names::of_queue(spec, queue);
        let partitions = k.partitions.max(1);
        let mut topics = vec![
            TopicSpec::new(&names.requests, partitions, k.replication),
            TopicSpec::new(&names.seen, partitions, k.replication).config("cleanup.policy", "compact"),
        ];
        let starts = queue == DEFAULT_QUEUE;
        if starts {
            topics.push(TopicSpec::new(&names.start, 1, k.replication));
        }
        broker.ensure_topics(topics).await?;
        let role = Role { rebalance_wait: k.rebalance_wait.0, key: k.key, partitions, consume, starts };
        let (broker2, names2) = (broker.clone(), names.clone());
        let inner = tokio::task::spawn_blocking(move || Inner::connect(&broker2, names2, role))
            .await
            .map_err(|e| broker.other(format!("cannot start the consumer: {e}")))??;
        let inner = Arc::new(inner);
        if consume {
            let poll_inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name("kafka-frontier".into())
                .spawn(move || poll_inner.poll_loop())
                .map_err(|e| broker.other(format!("cannot start the poll thread: {e}")))?;
            *inner.poller.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            tracing::info!(topic = %names.requests, group = %names.group, "kafka frontier: joined the crawl");
        }
        Ok(Self { _handles: Arc::new(LastHandle(inner.clone())), inner })
    }

    /// Leases up to `max` requests consumed already, without waiting (a routed crawl's
    /// lease over several queues waits once, for any of them).
    pub(super) fn lease_ready(&self, max: usize) -> Vec<Leased> {
        self.inner.lease(max)
    }

    /// Told when requests become ready to lease.
    pub(super) fn ready(&self) -> &tokio::sync::Notify {
        &self.inner.shared.ready
    }

    /// Duplicates found by this process's partitions so far.
    pub fn duplicates(&self) -> u64 {
        self.inner.shared.lock().duplicates
    }
}

impl Inner {
    fn connect(broker: &KafkaBroker, names: Names, role: Role) -> Result<Self, BridgeError> {
        let Role { rebalance_wait, key, partitions, consume, starts } = role;
        let timeout = broker.connect_timeout();
        let producer_link = LinkContext::default();
        let producer: FutureProducer<LinkContext> = broker
            .client_config(&[("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "2")])
            .create_with_context(producer_link.clone())
            .map_err(|e| broker.error(&e, ""))?;
        let restore_group = format!("{}.restore", names.group);
        let restorer: BaseConsumer<LinkContext> = broker
            .client_config(&[
                ("group.id", restore_group.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "20"),
                ("enable.partition.eof", "true"),
            ])
            .create_with_context(LinkContext::default())
            .map_err(|e| broker.error(&e, ""))?;
        let shared = Arc::new(Shared::default());
        let context = GroupContext {
            link: LinkContext::default(),
            shared: shared.clone(),
            names: names.clone(),
            rebalance_wait,
            restorer: Mutex::new(restorer),
            timeout,
        };
        let consumer: BaseConsumer<GroupContext> = broker
            .client_config(&[
                ("group.id", names.group.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("partition.assignment.strategy", "roundrobin"),
                ("fetch.wait.max.ms", "50"),
            ])
            .create_with_context(context)
            .map_err(|e| broker.error(&e, ""))?;
        if consume {
            let mut topics = vec![names.requests.as_str()];
            if starts {
                topics.push(names.start.as_str());
            }
            consumer.subscribe(&topics).map_err(|e| broker.error(&e, ""))?;
        }
        Ok(Self {
            names,
            key,
            bootstrap: broker.bootstrap().to_string(),
            producer,
            producer_link,
            consumer,
            shared,
            stop: AtomicBool::new(false),
            poller: Mutex::new(None),
            partitions,
            timeout,
            looked_empty: AtomicBool::new(false),
        })
    }

    /// The poll thread: consumes ahead of the leases, dedups, writes the changelog, and
    /// commits finished offsets; rebalance callbacks run here too.
    fn poll_loop(&self) {
        let mut last_commit = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            let room = self.shared.lock().ready.len() < READ_AHEAD;
            if room {
                let batch = self.poll_batch();
                if !batch.is_empty() {
                    self.take(batch);
                }
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit();
                self.reread_due();
                last_commit = Instant::now();
            }
        }
    }

    fn poll_batch(&self) -> Vec<Polled> {
        let mut batch = Vec::new();
        let mut wait = Duration::from_millis(100);
        while batch.len() < POLL_BATCH {
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    self.consumer.context().link.alive();
                    batch.push(Polled {
                        topic_is_start: m.topic() == self.names.start,
                        partition: m.partition(),
                        offset: m.offset(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!("kafka frontier: poll: {e}");
                    break;
                }
                None => break,
            }
            wait = Duration::ZERO;
        }
        batch
    }

    /// Dedups consumed messages against their partition's seen-set and queues the new
    /// ones for leasing; persists first sightings to the changelog.
    fn take(&self, batch: Vec<Polled>) {
        let mut firsts: Vec<(i32, u128, i64)> = Vec::new();
        let mut rereads: Vec<(i32, i64)> = Vec::new();
        let now = Instant::now();
        {
            let mut state = self.shared.lock();
            for m in batch {
                if m.topic_is_start {
                    if let Some(url) = parse_start_url(&String::from_utf8_lossy(&m.payload)) {
                        state.starts.push_back(url);
                    }
                    state.start_positions.insert(m.partition, m.offset + 1);
                    continue;
                }
                let state = &mut *state;
                let Some(part) = state.parts.get_mut(&m.partition) else { continue };
                match part.gaps.check(m.offset, now) {
                    Verdict::Take => {}
                    Verdict::Old | Verdict::Hold => continue,
                    Verdict::Reread(from) => {
                        rereads.push((m.partition, from));
                        continue;
                    }
                    Verdict::Accept { from, to } => tracing::warn!(
                        partition = m.partition,
                        "kafka frontier: offsets {from}..{to} never came from the broker: going on without them"
                    ),
                }
                if part.leased.contains(&m.offset) || part.tracker.is_done(m.offset) {
                    // Read again after a rebalance gave the partition back: in progress
                    // here, or done (its commit was lost).
                    continue;
                }
                let Some((fp, request, priority)) = decode(&m.payload) else {
                    tracing::warn!(
                        partition = m.partition,
                        offset = m.offset,
                        "kafka frontier: skipping an unreadable request"
                    );
                    part.tracker.skipped(m.offset);
                    continue;
                };
                match part.seen.get(&fp) {
                    Some(&first) if first != m.offset => {
                        part.tracker.skipped(m.offset);
                        state.duplicates += 1;
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        part.seen.insert(fp, m.offset);
                        firsts.push((m.partition, fp, m.offset));
                    }
                }
                part.tracker.consumed(m.offset);
                state.ready.push_back(Ready { partition: m.partition, offset: m.offset, request, priority });
            }
        }
        self.shared.ready.notify_waiters();
        self.write_changelog(&firsts);
        for (p, from) in rereads {
            tracing::info!(
                partition = p,
                "kafka frontier: the broker skipped from offset {from}: reading again from there"
            );
            self.reread(p, from);
        }
    }

    /// Reads partition `p` again from `offset` (after a hole in what the broker handed out).
    fn reread(&self, p: i32, offset: i64) {
        if let Err(e) = self.consumer.seek(&self.names.requests, p, Offset::Offset(offset), self.timeout) {
            tracing::debug!(
                partition = p,
                "kafka frontier: cannot read again from offset {offset}: {e} (retried)"
            );
        }
    }

    /// Holes still waited on whose last read again was a while ago: read again.
    fn reread_due(&self) {
        let now = Instant::now();
        let due: Vec<(i32, i64)> = {
            let mut state = self.shared.lock();
            state.parts.iter_mut().filter_map(|(p, part)| part.gaps.due(now).map(|o| (*p, o))).collect()
        };
        for (p, from) in due {
            self.reread(p, from);
        }
    }

    /// Writes first sightings to the changelog and waits for the broker's confirmation, so
    /// a revoke (which runs on this thread, after this) commits only what a new owner can
    /// restore.
    fn write_changelog(&self, firsts: &[(i32, u128, i64)]) {
        let mut deliveries = Vec::with_capacity(firsts.len());
        for (p, fp, offset) in firsts {
            let key = fp.to_be_bytes();
            let value = offset.to_be_bytes();
            let record = FutureRecord::to(&self.names.seen).partition(*p).key(&key[..]).payload(&value[..]);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => tracing::warn!("kafka frontier: seen-set changelog write failed: {e}"),
            }
        }
        for delivery in futures::executor::block_on(futures::future::join_all(deliveries)) {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => tracing::warn!("kafka frontier: seen-set changelog write failed: {e}"),
                Err(_) => tracing::warn!("kafka frontier: seen-set changelog write cancelled"),
            }
        }
    }

    /// Commits what finished (synchronously: the caller may rely on it being done).
    fn commit(&self) {
        let list = positions(&self.shared.lock(), &self.names, None);
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                let mut state = self.shared.lock();
                for e in list.elements_for_topic(&self.names.requests) {
                    if let (Some(part), Offset::Offset(o)) = (state.parts.get_mut(&e.partition()), e.offset())
                    {
                        part.tracker.committed(o);
                    }
                }
                let starts: Vec<(i32, i64)> = list
                    .elements_for_topic(&self.names.start)
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect();
                for (p, o) in starts {
                    if state.start_positions.get(&p) == Some(&o) {
                        state.start_positions.remove(&p);
                    }
                }
            }
            Err(e) => tracing::debug!("kafka frontier: commit failed (retried): {e}"),
        }
    }

    /// Requests not committed across every partition of the crawl, after our own commit.
    ///
    /// A partition whose committed offset has reached its high watermark is probed too: a
    /// broker may report the watermark as one past its last record *batch* (tansu does), so
    /// records after the committed offset can still be there.
    fn lag(&self) -> Result<u64, StoreError> {
        self.commit();
        let topic = &self.names.requests;
        let mut all = TopicPartitionList::new();
        for p in 0..self.partitions {
            all.add_partition(topic, p);
        }
        let committed = self.consumer.committed_offsets(all, self.timeout).map_err(StoreError::new)?;
        let mut lag = 0u64;
        let mut at_end = TopicPartitionList::new();
        let mut figures = Vec::new();
        for e in committed.elements_for_topic(topic) {
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, e.partition(), self.timeout)
                .map_err(StoreError::new)?;
            let position = match e.offset() {
                Offset::Offset(o) => o.max(low),
                _ => low,
            };
            figures.push((e.partition(), position, high));
            if high > position {
                lag += u64::try_from(high - position).unwrap_or(0);
            } else if high > low {
                let _ = at_end.add_partition_offset(topic, e.partition(), Offset::Offset(position));
            }
        }
        if lag == 0 && at_end.count() > 0 {
            lag += self.consumer.context().records_after(&at_end);
        }
        // Told once each time the queue turns empty: the figures behind a "done".
        let looked_empty = self.looked_empty.swap(lag == 0, Ordering::Relaxed);
        if lag == 0 && !looked_empty {
            tracing::info!(
                topic = %topic,
                "kafka frontier: nothing left to consume (partition, committed, high watermark): {figures:?}"
            );
        }
        Ok(lag)
    }

    fn key_of(&self, url: &str) -> String {
        match self.key {
            FrontierKey::Url => url.to_string(),
            FrontierKey::Host => Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0))))
                .unwrap_or_else(|| url.to_string()),
        }
    }

    async fn admit(self: Arc<Self>, batch: Vec<Admit>) -> StoreResult<()> {
        let mut records = Vec::with_capacity(batch.len());
        for (_, request, priority) in batch {
            let entry = Entry {
                url: request.url,
                depth: request.depth,
                redirect_chain: request.redirect_chain,
                priority,
            };
            let payload = serde_json::to_vec(&entry).map_err(StoreError::new)?;
            records.push((self.key_of(&entry.url), payload));
        }
        let deliveries = records.iter().map(|(key, payload)| {
            let record = FutureRecord::to(&self.names.requests).key(key).payload(payload);
            self.producer.send(record, self.timeout * 3)
        });
        for delivery in futures::future::join_all(deliveries).await {
            if let Err((e, _)) = delivery {
                return Err(StoreError::new(format!("producing to {} failed: {e}", self.names.requests)));
            }
        }
        self.producer_link.alive();
        Ok(())
    }

    fn lease(&self, max: usize) -> Vec<Leased> {
        let mut state = self.shared.lock();
        let mut out = Vec::with_capacity(max.min(state.ready.len()));
        while out.len() < max {
            let Some(ready) = state.ready.pop_front() else { break };
            let Some(part) = state.parts.get_mut(&ready.partition) else { continue };
            part.leased.insert(ready.offset);
            out.push(Leased {
                token: LeaseToken::new(format!("{}:{}:{}", ready.partition, ready.offset, part.epoch)),
                request: ready.request,
                priority: ready.priority,
            });
        }
        out
    }

    fn ack(&self, tokens: &[LeaseToken]) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        for token in tokens {
            let Some((p, o, epoch)) = parse_token(token.as_str()) else { continue };
            // An ack may come while a rebalance is under way (the partition is retired
            // then); one for another epoch is for a request given up to another owner.
            let part = state.parts.get_mut(&p).or_else(|| state.retired.get_mut(&p));
            if let Some(part) = part.filter(|part| part.epoch == epoch) {
                part.leased.remove(&o);
                part.tracker.done(o);
            }
        }
        drop(guard);
        self.shared.changed.notify_all();
    }
}

struct Polled {
    topic_is_start: bool,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

fn decode(payload: &[u8]) -> Option<(u128, PendingRequest, i32)> {
    let entry: Entry = match serde_json::from_slice(payload) {
        Ok(e) => e,
        // A plain producer's bare URL.
        Err(_) => Entry {
            url: std::str::from_utf8(payload).ok()?.trim().to_string(),
            depth: 0,
            redirect_chain: Vec::new(),
            priority: 0,
        },
    };
    let mut url = Url::parse(&entry.url).ok()?;
    urls::normalize(&mut url);
    let fp = urls::fingerprint(&url).0;
    let request =
        PendingRequest { url: url.to_string(), depth: entry.depth, redirect_chain: entry.redirect_chain };
    Some((fp, request, entry.priority))
}

fn parse_token(text: &str) -> Option<(i32, i64, u64)> {
    let mut parts = text.split(':');
    let p = parts.next()?.parse().ok()?;
    let o = parts.next()?.parse().ok()?;
    let g = parts.next()?.parse().ok()?;
    Some((p, o, g))
}

impl SharedStore for KafkaFrontier {
    fn describe(&self) -> String {
        format!(
            "Kafka {} (topic {}, group {})",
            self.inner.bootstrap, self.inner.names.requests, self.inner.names.group
        )
    }

    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        Box::pin(self.inner.clone().admit(batch))
    }

    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let notified = inner.shared.ready.notified();
            let leased = inner.lease(max);
            if !leased.is_empty() {
                return Ok(leased);
            }
            let _ = tokio::time::timeout(LEASE_WAIT, notified).await;
            Ok(inner.lease(max))
        })
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        self.inner.ack(&tokens);
        Box::pin(async { Ok(()) })
    }

    fn lease_duration(&self) -> Option<Duration> {
        None
    }

    /// Released requests stay uncommitted (unfinished): whoever owns their partition next
    /// reads them again; a rebalance no longer waits for them.
    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let mut released = 0;
        {
            let mut guard = self.inner.shared.lock();
            let state = &mut *guard;
            for token in &tokens {
                let Some((p, o, epoch)) = parse_token(token.as_str()) else { continue };
                let part = state.parts.get_mut(&p).filter(|part| part.epoch == epoch);
                if part.is_some_and(|part| part.leased.remove(&o)) {
                    released += 1;
                }
            }
        }
        self.inner.shared.changed.notify_all();
        Box::pin(async move { Ok(released) })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        let mut state = self.inner.shared.lock();
        let n = max.min(state.starts.len());
        let starts: Vec<String> = state.starts.drain(..n).collect();
        Box::pin(async move { Ok(starts) })
    }

    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let held = {
                let state = inner.shared.lock();
                state.ready.len() + state.parts.values().map(|p| p.leased.len()).sum::<usize>()
            };
            let lag = tokio::task::spawn_blocking(move || inner.lag())
                .await
                .map_err(|e| StoreError::new(format!("lag query did not finish: {e}")))??;
            Ok(Pending { queued: lag, leased: held as u64 })
        })
    }

    /// Kafka has no shared key to set: the process that owns partition 0 of the requests
    /// topic takes every tick (one owner at a time, by the group's assignment).
    fn claim(&self, _key: String, _hold: Duration) -> BoxFuture<'static, StoreResult<bool>> {
        let owner = self.inner.shared.lock().parts.contains_key(&0);
        Box::pin(async move { Ok(owner) })
    }

    fn reconnects(&self) -> u64 {
        self.inner.consumer.context().link.reconnects() + self.inner.producer_link.reconnects()
    }

    /// Unreadable requests messages (skipped: they stay in the topic, for Kafka's tools).
    fn dead_letters(&self) -> u64 {
        self.inner.shared.lock().unreadable
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || inner.shutdown()).await;
        })
    }
}

impl Inner {
    /// Stops the poll thread, commits what finished, and leaves the group.
    fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let handle = self.poller.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        self.commit();
        self.consumer.unsubscribe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(parse_token("3:1200:7"), Some((3, 1200, 7)));
        assert_eq!(parse_token("3:x:7"), None);
        assert_eq!(parse_token("3:1"), None);
    }

    #[test]
    fn decodes_json_and_plain_urls() {
        let (fp, r, prio) = decode(br#"{"url":"http://a.test/x#f","depth":2,"priority":3}"#).unwrap();
        assert_eq!((r.url.as_str(), r.depth, prio), ("http://a.test/x", 2, 3));
        let (fp2, r2, _) = decode(b"http://a.test/x\n").unwrap();
        assert_eq!((fp, r2.depth), (fp2, 0), "same URL, same fingerprint");
        assert!(decode(b"not a url").is_none());
    }
}
