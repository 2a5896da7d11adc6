//! Publish/subscribe topics: every subscriber gets every message it asked for.
//!
//! Each [`Subscription`] has its own bounded buffer and an [`Overflow`] policy: `Block` makes
//! publishers wait for a slow subscriber (backpressure), `DropOldest` keeps the newest
//! messages and counts what it dropped. Memory stays bounded either way. A subscription may
//! carry a content filter; dropping it unsubscribes.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use tokio::sync::Notify;

/// What a full subscription does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The publisher waits until the subscriber has room.
    #[default]
    Block,
    /// The oldest buffered message is dropped and counted.
    DropOldest,
}

/// A content filter on a subscription.
pub type Filter<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;

/// A publish/subscribe topic. Cloning gives another handle to the same topic.
pub struct Topic<T> {
    inner: Arc<TopicInner<T>>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

pub(super) struct TopicInner<T> {
    name: Arc<str>,
    /// Copy on write: a publisher takes the current list with one `Arc` clone, and
    /// (un)subscribing builds a new one, so publishing never allocates for the list.
    subscribers: RwLock<Arc<Vec<Arc<Slot<T>>>>>,
    closed: AtomicBool,
    published: AtomicU64,
}

/// One subscriber's bounded buffer: a plain subscription's, or a pattern subscription's
/// shared by every topic it is attached to.
pub(super) struct Slot<T> {
    buffer: Mutex<VecDeque<Entry<T>>>,
    capacity: usize,
    overflow: Overflow,
    filter: Option<Filter<T>>,
    /// Woken (one waiter at a time) when a message is buffered, and (all) on close.
    readable: Notify,
    /// Woken (one waiter at a time) when a message is taken, and (all) on unsubscribe and
    /// close.
    writable: Notify,
    pub(super) dropped: AtomicU64,
    gone: AtomicBool,
    /// A pattern subscription's end (its topics close one by one, it ends with the bus).
    closed: AtomicBool,
    /// Whether entries carry their topic's name (pattern subscriptions).
    named: bool,
    /// Live streams reading this buffer (an actor's, usually): what the runtime waits for
    /// at the end of a run.
    streams: AtomicUsize,
    /// The topics a pattern subscription is attached to; `gone` is set under this lock.
    attached: Mutex<Vec<Weak<TopicInner<T>>>>,
}

struct Entry<T> {
    topic: Option<Arc<str>>,
    message: Arc<T>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few container operations: a panic elsewhere cannot
    // leave the data half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send + Sync + 'static> Topic<T> {
    /// A new topic with no subscribers.
    pub fn new(name: impl Into<String>) -> Self {
        let name: String = name.into();
        Self {
            inner: Arc::new(TopicInner {
                name: name.into(),
                subscribers: RwLock::new(Arc::new(Vec::new())),
                closed: AtomicBool::new(false),
                published: AtomicU64::new(0),
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Messages published so far (not counting those published after [`Topic::close`]).
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Whether [`Topic::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Subscribes with a buffer of `capacity` messages.
    pub fn subscribe(&self, capacity: usize, overflow: Overflow) -> Subscription<T> {
        self.subscribe_filtered(capacity, overflow, None)
    }

    /// Subscribes to the messages for which `filter` is true.
    pub fn subscribe_filtered(
        &self,
        capacity: usize,
        overflow: Overflow,
        filter: Option<Filter<T>>,
    ) -> Subscription<T> {
        let slot = Arc::new(Slot::new(capacity, overflow, filter, false));
        self.add_slot(slot.clone());
        Subscription { topic: self.clone(), slot }
    }

    /// Number of live subscriptions (pattern subscriptions attached to it included).
    pub fn subscriber_count(&self) -> usize {
        self.snapshot().len()
    }

    /// Publishes to every matching subscriber, waiting on full `Block` subscribers. After
    /// [`Topic::close`] it does nothing.
    pub async fn publish(&self, message: T) {
        if self.is_closed() {
            return;
        }
        let message = Arc::new(message);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let slots = self.snapshot();
        for slot in slots.iter() {
            if !slot.wants(&message) || slot.offer(&self.inner.name, &message) {
                continue;
            }
            loop {
                let mut writable = pin!(slot.writable.notified());
                writable.as_mut().enable();
                if slot.offer(&self.inner.name, &message) || self.is_closed() {
                    break;
                }
                writable.await;
            }
        }
    }

    /// Publishes without waiting: a full `Block` subscriber misses the message, which is
    /// counted as dropped on it. For publishers that must never wait (events, logs).
    pub fn publish_now(&self, message: T) {
        if self.is_closed() {
            return;
        }
        let message = Arc::new(message);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        for slot in self.snapshot().iter() {
            if slot.wants(&message) && !slot.offer(&self.inner.name, &message) {
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the topic: later publishes do nothing, publishers waiting on a full
    /// subscriber give up, and subscriptions end once they have read what they hold.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for slot in self.snapshot().iter() {
            slot.readable.notify_waiters();
            slot.writable.notify_waiters();
        }
    }

    /// Attaches a pattern subscription's slot (once, and never after it was dropped).
    pub(super) fn attach(&self, slot: &Arc<Slot<T>>) {
        let mut attached = lock(&slot.attached);
        if slot.gone.load(Ordering::Acquire)
            || attached.iter().any(|t| std::ptr::eq(t.as_ptr(), Arc::as_ptr(&self.inner)))
        {
            return;
        }
        self.add_slot(slot.clone());
        attached.push(Arc::downgrade(&self.inner));
    }

    /// Messages buffered in the subscriptions read as streams (actors' subscriptions):
    /// what they have yet to handle.
    pub(super) fn streamed_backlog(&self) -> usize {
        self.snapshot().iter().map(|slot| slot.streamed_backlog()).sum()
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Slot<T>>>> {
        self.inner.subscribers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn add_slot(&self, slot: Arc<Slot<T>>) {
        let mut list = self.inner.subscribers.write().unwrap_or_else(|e| e.into_inner());
        Arc::make_mut(&mut list).push(slot);
    }
}

impl<T> TopicInner<T> {
    fn remove_slot(&self, slot: *const Slot<T>) {
        let mut list = self.subscribers.write().unwrap_or_else(|e| e.into_inner());
        if list.iter().any(|s| std::ptr::eq(Arc::as_ptr(s), slot)) {
            let kept = list.iter().filter(|s| !std::ptr::eq(Arc::as_ptr(s), slot)).cloned().collect();
            *list = Arc::new(kept);
        }
    }
}

impl<T> Slot<T> {
    pub(super) fn new(capacity: usize, overflow: Overflow, filter: Option<Filter<T>>, named: bool) -> Self {
        Slot {
            buffer: Mutex::new(VecDeque::with_capacity(capacity.clamp(1, 1024))),
            capacity: capacity.max(1),
            overflow,
            filter,
            readable: Notify::new(),
            writable: Notify::new(),
            dropped: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            named,
            streams: AtomicUsize::new(0),
            attached: Mutex::new(Vec::new()),
        }
    }

    /// Messages buffered for a live stream (none when no stream reads this buffer).
    pub(super) fn streamed_backlog(&self) -> usize {
        if self.streams.load(Ordering::Acquire) == 0 {
            0
        } else {
            self.buffered()
        }
    }

    /// Counts a stream reading this buffer until the guard is dropped.
    pub(super) fn stream_guard(self: &Arc<Self>) -> StreamGuard<T> {
        self.streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }

    fn wants(&self, message: &T) -> bool {
        !self.gone.load(Ordering::Acquire) && self.filter.as_ref().is_none_or(|f| f(message))
    }

    /// Puts the message in the buffer; false when a `Block` buffer is full.
    fn offer(&self, topic: &Arc<str>, message: &Arc<T>) -> bool {
        if self.gone.load(Ordering::Acquire) {
            return true;
        }
        {
            let mut buf = lock(&self.buffer);
            if buf.len() >= self.capacity {
                match self.overflow {
                    Overflow::Block => return false,
                    Overflow::DropOldest => {
                        buf.pop_front();
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            buf.push_back(Entry { topic: self.named.then(|| topic.clone()), message: message.clone() });
        }
        // One message, one reader to wake. Without a waiter this only leaves a permit
        // (no lock taken); a woken reader whose future is dropped passes it on (tokio).
        self.readable.notify_one();
        true
    }

    fn pop(&self) -> Option<Entry<T>> {
        let entry = lock(&self.buffer).pop_front();
        if entry.is_some() {
            // One place freed, one blocked publisher to wake.
            self.writable.notify_one();
        }
        entry
    }

    /// The next entry; `None` once `closed()` and the buffer is empty.
    async fn recv_entry(&self, closed: impl Fn() -> bool) -> Option<Entry<T>> {
        if let Some(e) = self.pop() {
            return Some(e);
        }
        loop {
            let mut readable = pin!(self.readable.notified());
            readable.as_mut().enable();
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if closed() {
                return self.pop();
            }
            readable.await;
        }
    }

    pub(super) async fn recv_named(&self, closed: impl Fn() -> bool) -> Option<(Arc<str>, Arc<T>)> {
        self.recv_entry(closed).await.map(Entry::named)
    }

    pub(super) fn try_recv_named(&self) -> Option<(Arc<str>, Arc<T>)> {
        self.pop().map(Entry::named)
    }

    pub(super) fn buffered(&self) -> usize {
        lock(&self.buffer).len()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends a pattern subscription once it has read what it holds.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.readable.notify_waiters();
    }

    pub(super) fn attached_topics(&self) -> Vec<Arc<str>> {
        lock(&self.attached).iter().filter_map(|t| t.upgrade().map(|t| t.name.clone())).collect()
    }

    /// Unsubscribes a pattern subscription from every topic, for good.
    pub(super) fn detach_all(&self) {
        let topics = {
            let mut attached = lock(&self.attached);
            self.gone.store(true, Ordering::Release);
            std::mem::take(&mut *attached)
        };
        self.writable.notify_waiters();
        for topic in topics.iter().filter_map(Weak::upgrade) {
            topic.remove_slot(self);
        }
    }
}

/// A live stream over a [`Slot`]: counted while it exists.
pub(super) struct StreamGuard<T>(Arc<Slot<T>>);

impl<T> Drop for StreamGuard<T> {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T> Entry<T> {
    fn named(self) -> (Arc<str>, Arc<T>) {
        (self.topic.unwrap_or_else(|| Arc::from("")), self.message)
    }
}

/// One subscriber's end of a topic. Dropping it unsubscribes.
pub struct Subscription<T: Send + Sync + 'static> {
    topic: Topic<T>,
    slot: Arc<Slot<T>>,
}

impl<T: Send + Sync + 'static> Subscription<T> {
    /// The next message; `None` once the topic is closed and this buffer is empty.
    pub async fn recv(&self) -> Option<Arc<T>> {
        self.slot.recv_entry(|| self.topic.is_closed()).await.map(|e| e.message)
    }

    /// The next buffered message, if any.
    pub fn try_recv(&self) -> Option<Arc<T>> {
        self.slot.pop().map(|e| e.message)
    }

    /// Messages this subscription lost to its overflow policy.
    pub fn dropped(&self) -> u64 {
        self.slot.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in this subscription's buffer.
    pub fn buffered(&self) -> usize {
        self.slot.buffered()
    }

    /// Turns this subscription into a stream (for `ctx.add_stream` in an actor).
    pub fn into_stream(self) -> impl futures::Stream<Item = Arc<T>> + Send + 'static {
        Self::shared_stream(Arc::new(self))
    }

    /// A stream over a shared subscription: an actor keeps the `Arc` and makes a new stream
    /// after a restart, without losing what is buffered.
    pub fn shared_stream(this: Arc<Self>) -> impl futures::Stream<Item = Arc<T>> + Send + 'static {
        let guard = this.slot.stream_guard();
        futures::stream::unfold((this, guard), |(s, g)| async move { s.recv().await.map(|m| (m, (s, g))) })
    }
}

impl<T: Send + Sync + 'static> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.slot.gone.store(true, Ordering::Release);
        self.slot.writable.notify_waiters();
        self.topic.inner.remove_slot(Arc::as_ptr(&self.slot));
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_filter_and_close() {
        let t = Topic::new("t");
        let all = t.subscribe(8, Overflow::Block);
        let even = t.subscribe_filtered(8, Overflow::Block, Some(Arc::new(|n: &u32| n % 2 == 0)));
        for i in 0..4u32 {
            t.publish(i).await;
        }
        t.close();
        let mut got_all = Vec::new();
        while let Some(m) = all.recv().await {
            got_all.push(*m);
        }
        let mut got_even = Vec::new();
        while let Some(m) = even.recv().await {
            got_even.push(*m);
        }
        assert_eq!(got_all, vec![0, 1, 2, 3]);
        assert_eq!(got_even, vec![0, 2]);
    }

    #[tokio::test]
    async fn drop_oldest_bounds_memory() {
        let t = Topic::new("t");
        let slow = t.subscribe(2, Overflow::DropOldest);
        for i in 0..100u32 {
            t.publish(i).await;
        }
        assert_eq!(slow.buffered(), 2);
        assert_eq!(slow.dropped(), 98);
        assert_eq!(*slow.try_recv().unwrap(), 98);
    }

    #[tokio::test]
    async fn block_waits_for_reader_and_unsubscribe_releases() {
        let t = Topic::new("t");
        let sub = t.subscribe(1, Overflow::Block);
        t.publish(1u32).await;
        let t2 = t.clone();
        let publisher = tokio::spawn(async move { t2.publish(2).await });
        tokio::task::yield_now().await;
        assert!(!publisher.is_finished());
        drop(sub);
        publisher.await.unwrap();
        assert_eq!(t.subscriber_count(), 0);
    }
}
