//! Point-to-point queues with acknowledged deliveries.
//!
//! A [`Queue`] hands each message to one of its competing [`Consumer`]s at a time. The
//! consumer holds a [`Delivery`] until it [`ack`](Delivery::ack)s it; a delivery that is
//! nacked with requeue, or simply dropped (the consumer panicked, or its actor was restarted),
//! goes back to the queue. After `max_deliveries` deliveries without an ack a message is
//! dead-lettered instead of being tried again. The queue is bounded: publishers wait for room
//! ([`Queue::publish`]) or are told it is full ([`Queue::try_publish`]).
//!
//! Order is `fifo`, `lifo` or `priority` (highest first, fifo among equals), the three queue
//! kinds of scrapy-redis. A message given back is served next (RabbitMQ requeues to the head).

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::ops::Deref;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::spec::QueueOrder;
use crate::supervise::blame::{self, DeliveryId};

/// Settings of one queue.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Ready messages held before publishers wait.
    pub capacity: usize,
    /// The order messages are handed out in.
    pub order: QueueOrder,
    /// Deliveries without an ack before a message is dead-lettered (at least 1).
    pub max_deliveries: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { capacity: 1024, order: QueueOrder::Fifo, max_deliveries: 5 }
    }
}

/// A message that was delivered `max_deliveries` times without an ack, or rejected.
#[derive(Debug, Clone)]
pub struct DeadLetter<T> {
    /// The message.
    pub message: Arc<T>,
    /// How often it was delivered.
    pub deliveries: u32,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// Why a message could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The queue holds `capacity` ready messages.
    #[error("queue is full")]
    Full,
    /// The queue was closed.
    #[error("queue is closed")]
    Closed,
}

/// [`Queue::try_publish`] refused a message: why, and the message, given back. It is a
/// `std::error::Error` (its `source` is the [`PublishError`]), so `?` carries it into
/// `anyhow::Error` or `Box<dyn Error>`; [`TryPublishError::into_message`] takes the message
/// back to retry it.
///
/// ```
/// use arachne::bus::{Bus, PublishError, QueueConfig};
///
/// let bus = Bus::new();
/// let jobs = bus.queue::<String>("jobs", QueueConfig { capacity: 1, ..Default::default() })?;
/// jobs.try_publish("first".to_string(), 0)?;
/// let refused = jobs.try_publish("second".to_string(), 0).unwrap_err();
/// assert_eq!(refused.kind, PublishError::Full);
/// assert_eq!(refused.to_string(), "queue is full");
/// assert_eq!(refused.into_message(), "second");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
#[error("{kind}")]
pub struct TryPublishError<T> {
    /// Why it was refused.
    #[source]
    pub kind: PublishError,
    /// The message, not published.
    pub message: T,
}

impl<T> TryPublishError<T> {
    /// The message that was not published.
    pub fn into_message(self) -> T {
        self.message
    }
}

impl<T> std::fmt::Debug for TryPublishError<T> {
    /// The reason only: the message's type need not be `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TryPublishError").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A point-to-point queue with acked deliveries. Cloning gives another handle to the same
/// queue.
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct Inner<T> {
    name: String,
    config: QueueConfig,
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
    stats: QueueStats,
    dead_letter_hook: Mutex<Option<DeadLetterHook<T>>>,
}

type DeadLetterHook<T> = Box<dyn Fn(DeadLetter<T>) + Send + Sync>;

/// Counters of one queue, readable while it runs.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Messages published.
    pub published: AtomicU64,
    /// Deliveries acked.
    pub acked: AtomicU64,
    /// Deliveries that went back to the queue (nack with requeue, or dropped unacked).
    pub redeliveries: AtomicU64,
    /// Messages dead-lettered.
    pub dead_letters: AtomicU64,
}

struct Envelope<T> {
    message: Arc<T>,
    priority: i32,
    seq: u64,
    deliveries: u32,
}

struct State<T> {
    ready: Store<T>,
    unacked: HashMap<u64, Envelope<T>>,
    next_tag: u64,
    next_seq: u64,
    closed: bool,
    dead: Vec<DeadLetter<T>>,
}

enum Store<T> {
    Fifo(VecDeque<Envelope<T>>),
    Lifo(Vec<Envelope<T>>),
    Priority(BinaryHeap<ByPriority<T>>),
}

/// Heap order: higher priority first, then lower sequence number (fifo among equals).
struct ByPriority<T>(Envelope<T>);

impl<T> PartialEq for ByPriority<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.priority == other.0.priority && self.0.seq == other.0.seq
    }
}
impl<T> Eq for ByPriority<T> {}
impl<T> PartialOrd for ByPriority<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for ByPriority<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.priority.cmp(&other.0.priority).then_with(|| other.0.seq.cmp(&self.0.seq))
    }
}

impl<T> Store<T> {
    fn new(order: QueueOrder) -> Self {
        match order {
            QueueOrder::Fifo => Store::Fifo(VecDeque::new()),
            QueueOrder::Lifo => Store::Lifo(Vec::new()),
            QueueOrder::Priority => Store::Priority(BinaryHeap::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Store::Fifo(q) => q.len(),
            Store::Lifo(s) => s.len(),
            Store::Priority(h) => h.len(),
        }
    }

    fn push(&mut self, env: Envelope<T>) {
        match self {
            Store::Fifo(q) => q.push_back(env),
            Store::Lifo(s) => s.push(env),
            Store::Priority(h) => h.push(ByPriority(env)),
        }
    }

    /// A message given back is served next; in a priority queue, next among its priority.
    fn push_returned(&mut self, env: Envelope<T>) {
        match self {
            Store::Fifo(q) => q.push_front(env),
            Store::Lifo(s) => s.push(env),
            Store::Priority(h) => h.push(ByPriority(env)),
        }
    }

    fn pop(&mut self) -> Option<Envelope<T>> {
        match self {
            Store::Fifo(q) => q.pop_front(),
            Store::Lifo(s) => s.pop(),
            Store::Priority(h) => h.pop().map(|p| p.0),
        }
    }
}

impl<T: Send + Sync + 'static> Queue<T> {
    /// A new, empty queue.
    pub fn new(name: impl Into<String>, config: QueueConfig) -> Self {
        let state = State {
            ready: Store::new(config.order),
            unacked: HashMap::new(),
            next_tag: 0,
            next_seq: 0,
            closed: false,
            dead: Vec::new(),
        };
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                config,
                state: Mutex::new(state),
                readable: Notify::new(),
                writable: Notify::new(),
                stats: QueueStats::default(),
                dead_letter_hook: Mutex::new(None),
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counters of this queue.
    pub fn stats(&self) -> &QueueStats {
        &self.inner.stats
    }

    /// Ready messages (not counting those delivered and not yet acked).
    pub fn len(&self) -> usize {
        self.inner.lock().ready.len()
    }

    /// Whether no message is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deliveries handed out and not yet settled.
    pub fn unacked(&self) -> usize {
        self.inner.lock().unacked.len()
    }

    /// Room for this many more ready messages before publishers wait.
    pub fn room(&self) -> usize {
        self.inner.config.capacity.saturating_sub(self.len())
    }

    /// Whether [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Calls `hook` for every message dead-lettered from now on, instead of keeping it in
    /// [`Queue::take_dead_letters`].
    pub fn on_dead_letter(&self, hook: impl Fn(DeadLetter<T>) + Send + Sync + 'static) {
        *self.inner.dead_letter_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    /// The dead letters kept so far (when no hook is set), emptied.
    pub fn take_dead_letters(&self) -> Vec<DeadLetter<T>> {
        std::mem::take(&mut self.inner.lock().dead)
    }

    /// Publishes with priority 0, waiting while the queue is full.
    pub async fn publish(&self, message: T) -> Result<(), PublishError> {
        self.publish_with_priority(message, 0).await
    }

    /// Publishes, waiting while the queue is full.
    pub async fn publish_with_priority(&self, message: T, priority: i32) -> Result<(), PublishError> {
        // Fast path: room now, no waiter registered (registering takes the Notify's lock).
        let mut message = match self.push(message, priority) {
            Ok(()) => return Ok(()),
            Err(TryPublishError { kind: PublishError::Full, message }) => message,
            Err(e) => return Err(e.kind),
        };
        loop {
            let mut writable = pin!(self.inner.writable.notified());
            writable.as_mut().enable();
            match self.push(message, priority) {
                Ok(()) => return Ok(()),
                Err(TryPublishError { kind: PublishError::Full, message: refused }) => message = refused,
                Err(e) => return Err(e.kind),
            }
            writable.await;
        }
    }

    /// Publishes without waiting; gives the message back (in the error) when the queue is
    /// full or closed.
    pub fn try_publish(&self, message: T, priority: i32) -> Result<(), TryPublishError<T>> {
        self.push(message, priority)
    }

    fn push(&self, message: T, priority: i32) -> Result<(), TryPublishError<T>> {
        {
            let mut st = self.inner.lock();
            if st.closed {
                return Err(TryPublishError { kind: PublishError::Closed, message });
            }
            if st.ready.len() >= self.inner.config.capacity {
                return Err(TryPublishError { kind: PublishError::Full, message });
            }
            let seq = st.next_seq;
            st.next_seq += 1;
            st.ready.push(Envelope { message: Arc::new(message), priority, seq, deliveries: 0 });
        }
        self.inner.stats.published.fetch_add(1, Ordering::Relaxed);
        // One message, one consumer to wake: with no waiter this only leaves a permit (no
        // lock); a woken consumer that goes away unserved passes it on (tokio's Notified
        // forwards a `notify_one` on drop), so no wakeup is lost.
        self.inner.readable.notify_one();
        Ok(())
    }

    /// A new competing consumer that holds at most `prefetch` unsettled deliveries.
    pub fn consumer(&self, prefetch: usize) -> Consumer<T> {
        Consumer {
            queue: self.clone(),
            credit: Arc::new(Credit {
                prefetch: prefetch.max(1),
                in_flight: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
        }
    }

    /// Closes the queue: publishing fails, and consumers end once it holds nothing.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.readable.notify_waiters();
        self.inner.writable.notify_waiters();
    }

    fn settle(&self, tag: u64, outcome: Settle) {
        let (dead, drained) = {
            let mut st = self.inner.lock();
            let Some(mut env) = st.unacked.remove(&tag) else { return };
            let drained = st.closed && st.unacked.is_empty() && st.ready.len() == 0;
            let dead = match outcome {
                Settle::Ack => {
                    self.inner.stats.acked.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Settle::Return => {
                    env.deliveries = env.deliveries.saturating_sub(1);
                    self.inner.stats.redeliveries.fetch_add(1, Ordering::Relaxed);
                    st.ready.push_returned(env);
                    drop(st);
                    self.inner.readable.notify_one();
                    return;
                }
                Settle::Requeue(_) if env.deliveries < self.inner.config.max_deliveries.max(1) => {
                    self.inner.stats.redeliveries.fetch_add(1, Ordering::Relaxed);
                    st.ready.push_returned(env);
                    drop(st);
                    self.inner.readable.notify_one();
                    return;
                }
                Settle::Requeue(failure) => Some(DeadLetter {
                    reason: match failure {
                        Some(f) => {
                            format!("delivered {} times without an ack; the last: {f}", env.deliveries)
                        }
                        None => format!("delivered {} times without an ack", env.deliveries),
                    },
                    message: env.message,
                    deliveries: env.deliveries,
                }),
                Settle::Reject(reason) => {
                    Some(DeadLetter { reason, message: env.message, deliveries: env.deliveries })
                }
            };
            (dead, drained)
        };
        if drained {
            // Closed and nothing left anywhere: every waiting consumer ends. (Settling never
            // frees room for publishers: capacity counts ready messages only.)
            self.inner.readable.notify_waiters();
        }
        if let Some(letter) = dead {
            self.inner.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
            let hook = self.inner.dead_letter_hook.lock().unwrap_or_else(|e| e.into_inner());
            match hook.as_ref() {
                Some(hook) => hook(letter),
                None => self.inner.lock().dead.push(letter),
            }
        }
    }
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the state half-changed: every
        // critical section is a few container operations.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

enum Settle {
    Ack,
    /// Back to the queue, counted towards `max_deliveries`; with the failure, if known
    /// (the panic of the actor that held it), for the dead letter's reason.
    Requeue(Option<String>),
    /// Back to the queue, not counted: its consumer was restarted because of another
    /// message (see `supervise::blame`).
    Return,
    Reject(String),
}

struct Credit {
    prefetch: usize,
    in_flight: AtomicUsize,
    freed: Notify,
}

/// One competing consumer of a queue, with its own prefetch window.
pub struct Consumer<T> {
    queue: Queue<T>,
    credit: Arc<Credit>,
}

impl<T: Send + Sync + 'static> Consumer<T> {
    /// The next delivery: waits until this consumer has fewer than `prefetch` unsettled
    /// deliveries and a message is ready. `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<Delivery<T>> {
        loop {
            if self.window_full() {
                let mut freed = pin!(self.credit.freed.notified());
                freed.as_mut().enable();
                if self.window_full() {
                    freed.await;
                }
                continue;
            }
            // Fast path: a message is ready, no waiter registered.
            match self.try_next() {
                Ok(Some(d)) => return Some(d),
                Ok(None) => {}
                Err(Closed) => return None,
            }
            let mut readable = pin!(self.queue.inner.readable.notified());
            readable.as_mut().enable();
            match self.try_next() {
                Ok(Some(d)) => return Some(d),
                // Another task sharing this consumer filled the window: wait for credit
                // instead (dropping `readable` passes on a wakeup it may have taken).
                Ok(None) if self.window_full() => continue,
                Ok(None) => readable.await,
                Err(Closed) => return None,
            }
        }
    }

    fn window_full(&self) -> bool {
        self.credit.in_flight.load(Ordering::Acquire) >= self.credit.prefetch
    }

    /// The next delivery if one is ready and the prefetch window allows it.
    pub fn try_next(&self) -> Result<Option<Delivery<T>>, Closed> {
        if self.window_full() {
            return Ok(None);
        }
        let inner = &self.queue.inner;
        let mut st = inner.lock();
        let Some(mut env) = st.ready.pop() else {
            return if st.closed && st.unacked.is_empty() { Err(Closed) } else { Ok(None) };
        };
        env.deliveries += 1;
        let tag = st.next_tag;
        st.next_tag += 1;
        let delivery = Delivery {
            queue: self.queue.clone(),
            credit: self.credit.clone(),
            tag,
            message: env.message.clone(),
            deliveries: env.deliveries,
            settled: false,
        };
        st.unacked.insert(tag, env);
        drop(st);
        self.credit.in_flight.fetch_add(1, Ordering::AcqRel);
        // One place freed, one waiting publisher to wake.
        inner.writable.notify_one();
        Ok(Some(delivery))
    }

    /// Turns this consumer into a stream of deliveries (for `ctx.add_stream` in an actor).
    pub fn into_stream(self) -> impl futures::Stream<Item = Delivery<T>> + Send + 'static {
        futures::stream::unfold(self, |c| async move { c.next().await.map(|d| (d, c)) })
    }
}

/// The queue was closed and holds nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// One message handed to one consumer. Ack it when done; dropping it unacked gives it back.
pub struct Delivery<T: Send + Sync + 'static> {
    queue: Queue<T>,
    credit: Arc<Credit>,
    tag: u64,
    message: Arc<T>,
    deliveries: u32,
    settled: bool,
}

impl<T: Send + Sync + 'static> Delivery<T> {
    /// This delivery's identity (queue and tag), for [`blame`].
    pub fn id(&self) -> DeliveryId {
        DeliveryId {
            queue: Arc::as_ptr(&self.queue.inner) as *const () as usize,
            tag: self.tag,
            attempt: self.deliveries,
        }
    }

    /// How many times this message has been delivered, this time included.
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// The message, shared.
    pub fn message(&self) -> &Arc<T> {
        &self.message
    }

    /// Done: the message leaves the queue.
    pub fn ack(mut self) {
        blame::finished();
        self.finish(Settle::Ack);
    }

    /// Not done: with `requeue` the message goes back (or to the dead letters after
    /// `max_deliveries`); without, it is dead-lettered now.
    pub fn nack(mut self, requeue: bool) {
        let how =
            if requeue { Settle::Requeue(None) } else { Settle::Reject("rejected by its consumer".into()) };
        self.finish(how);
    }

    /// Gives the message back uncounted (not towards `max_deliveries`): its consumer could
    /// not finish for a reason that is not the message's (the run is ending).
    pub fn release(mut self) {
        self.finish(Settle::Return);
    }

    /// Dead-letters the message with a reason.
    pub fn reject(mut self, reason: impl Into<String>) {
        self.finish(Settle::Reject(reason.into()));
    }

    fn finish(&mut self, how: Settle) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        self.queue.settle(self.tag, how);
        self.credit.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.credit.freed.notify_one();
    }
}

impl<T: Send + Sync + 'static> Deref for Delivery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.message
    }
}

impl<T: Send + Sync + 'static> Drop for Delivery<T> {
    /// Unacked: back to the queue. When its actor is being restarted for another message's
    /// panic, this delivery was innocent and the return is not counted towards
    /// `max_deliveries`.
    fn drop(&mut self) {
        let how = if blame::innocent(self.id()) { Settle::Return } else { Settle::Requeue(blame::failure()) };
        self.finish(how);
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery").field("queue", &self.queue.name()).field("tag", &self.tag).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(order: QueueOrder, max_deliveries: u32) -> Queue<u32> {
        Queue::new("q", QueueConfig { capacity: 8, order, max_deliveries })
    }

    fn drain(q: &Queue<u32>) -> Vec<u32> {
        let c = q.consumer(100);
        let mut out = Vec::new();
        while let Ok(Some(d)) = c.try_next() {
            out.push(*d);
            d.ack();
        }
        out
    }

    #[test]
    fn orders() {
        for (order, want) in [
            (QueueOrder::Fifo, vec![1, 2, 3]),
            (QueueOrder::Lifo, vec![3, 2, 1]),
            (QueueOrder::Priority, vec![2, 3, 1]),
        ] {
            let q = queue(order, 3);
            q.try_publish(1, 0).unwrap();
            q.try_publish(2, 5).unwrap();
            q.try_publish(3, 5).unwrap();
            assert_eq!(drain(&q), want, "{order}");
        }
    }

    #[test]
    fn dropped_delivery_comes_back_then_dead_letters() {
        let q = queue(QueueOrder::Fifo, 2);
        q.try_publish(7, 0).unwrap();
        let c = q.consumer(1);
        let d = c.try_next().unwrap().unwrap();
        assert_eq!(d.deliveries(), 1);
        drop(d);
        let d = c.try_next().unwrap().unwrap();
        assert_eq!(d.deliveries(), 2);
        d.nack(true);
        assert!(c.try_next().unwrap().is_none());
        let dead = q.take_dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(*dead[0].message, 7);
        assert_eq!(q.stats().redeliveries.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn prefetch_and_capacity_bound() {
        let q = queue(QueueOrder::Fifo, 3);
        for i in 0..8 {
            q.try_publish(i, 0).unwrap();
        }
        assert!(matches!(q.try_publish(9, 0), Err(TryPublishError { kind: PublishError::Full, message: 9 })));
        let c = q.consumer(2);
        let a = c.try_next().unwrap().unwrap();
        let _b = c.try_next().unwrap().unwrap();
        assert!(c.try_next().unwrap().is_none(), "prefetch window is full");
        a.ack();
        assert!(c.try_next().unwrap().is_some());
    }

    #[tokio::test]
    async fn publisher_waits_for_room_and_consumer_ends_on_close() {
        let q = Queue::new("q", QueueConfig { capacity: 1, ..Default::default() });
        q.publish(1u32).await.unwrap();
        let q2 = q.clone();
        let publisher = tokio::spawn(async move { q2.publish(2).await });
        let c = q.consumer(4);
        let first = c.next().await.unwrap();
        first.ack();
        publisher.await.unwrap().unwrap();
        c.next().await.unwrap().ack();
        q.close();
        assert!(c.next().await.is_none());
    }
}
