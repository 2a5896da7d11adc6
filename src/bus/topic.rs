//! Publish/subscribe topics: every subscriber gets every message it asked for.
//!
//! Each [`Subscription`] has its own bounded buffer and an [`Overflow`] policy: `Block` makes
//! publishers wait for a slow subscriber (backpressure), `DropOldest` keeps the newest
//! messages and counts what it dropped. Memory stays bounded either way. A subscription may
//! carry a content filter; dropping it unsubscribes.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

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

struct TopicInner<T> {
    name: String,
    subscribers: RwLock<Vec<Arc<Slot<T>>>>,
    closed: AtomicBool,
    published: AtomicU64,
}

struct Slot<T> {
    buffer: Mutex<VecDeque<Arc<T>>>,
    capacity: usize,
    overflow: Overflow,
    filter: Option<Filter<T>>,
    readable: Notify,
    writable: Notify,
    dropped: AtomicU64,
    gone: AtomicBool,
}

impl<T: Send + Sync + 'static> Topic<T> {
    /// A new topic with no subscribers.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(TopicInner {
                name: name.into(),
                subscribers: RwLock::new(Vec::new()),
                closed: AtomicBool::new(false),
                published: AtomicU64::new(0),
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
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
        let slot = Arc::new(Slot {
            buffer: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            overflow,
            filter,
            readable: Notify::new(),
            writable: Notify::new(),
            dropped: AtomicU64::new(0),
            gone: AtomicBool::new(false),
        });
        self.write_subscribers().push(slot.clone());
        Subscription { topic: self.clone(), slot }
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.read_subscribers().len()
    }

    /// Publishes to every matching subscriber, waiting on full `Block` subscribers.
    pub async fn publish(&self, message: T) {
        let message = Arc::new(message);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let slots: Vec<Arc<Slot<T>>> = self.read_subscribers().clone();
        for slot in slots {
            if !slot.wants(&message) {
                continue;
            }
            loop {
                let mut writable = pin!(slot.writable.notified());
                writable.as_mut().enable();
                if slot.offer(&message) {
                    break;
                }
                writable.await;
            }
        }
    }

    /// Publishes without waiting: a full `Block` subscriber misses the message, which is
    /// counted as dropped on it. For publishers that must never wait (events, logs).
    pub fn publish_now(&self, message: T) {
        let message = Arc::new(message);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        for slot in self.read_subscribers().iter() {
            if slot.wants(&message) && !slot.offer(&message) {
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the topic: subscriptions end once they have read what they hold.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for slot in self.read_subscribers().iter() {
            slot.readable.notify_waiters();
        }
    }

    fn read_subscribers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Slot<T>>>> {
        self.inner.subscribers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_subscribers(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Slot<T>>>> {
        self.inner.subscribers.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Slot<T> {
    fn wants(&self, message: &T) -> bool {
        !self.gone.load(Ordering::Acquire) && self.filter.as_ref().is_none_or(|f| f(message))
    }

    /// Puts the message in the buffer; false when a `Block` buffer is full.
    fn offer(&self, message: &Arc<T>) -> bool {
        if self.gone.load(Ordering::Acquire) {
            return true;
        }
        {
            let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            if buf.len() >= self.capacity {
                match self.overflow {
                    Overflow::Block => return false,
                    Overflow::DropOldest => {
                        buf.pop_front();
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            buf.push_back(message.clone());
        }
        self.readable.notify_waiters();
        true
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
        loop {
            let mut readable = pin!(self.slot.readable.notified());
            readable.as_mut().enable();
            if let Some(m) = self.try_recv() {
                return Some(m);
            }
            if self.topic.inner.closed.load(Ordering::Acquire) {
                return self.try_recv();
            }
            readable.await;
        }
    }

    /// The next buffered message, if any.
    pub fn try_recv(&self) -> Option<Arc<T>> {
        let m = self.slot.buffer.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        if m.is_some() {
            self.slot.writable.notify_waiters();
        }
        m
    }

    /// Messages this subscription lost to its overflow policy.
    pub fn dropped(&self) -> u64 {
        self.slot.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in this subscription's buffer.
    pub fn buffered(&self) -> usize {
        self.slot.buffer.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Turns this subscription into a stream (for `ctx.add_stream` in an actor).
    pub fn into_stream(self) -> impl futures::Stream<Item = Arc<T>> + Send + 'static {
        Self::shared_stream(Arc::new(self))
    }

    /// A stream over a shared subscription: an actor keeps the `Arc` and makes a new stream
    /// after a restart, without losing what is buffered.
    pub fn shared_stream(this: Arc<Self>) -> impl futures::Stream<Item = Arc<T>> + Send + 'static {
        futures::stream::unfold(this, |s| async move { s.recv().await.map(|m| (m, s)) })
    }
}

impl<T: Send + Sync + 'static> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.slot.gone.store(true, Ordering::Release);
        self.slot.writable.notify_waiters();
        self.topic.write_subscribers().retain(|s| !Arc::ptr_eq(s, &self.slot));
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
