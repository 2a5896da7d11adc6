//! Which delivery made an actor panic.
//!
//! An actor with many deliveries in flight (a fetcher with 32 requests) loses all of them
//! when it is restarted. Counting every one of those returns towards `max_deliveries` would
//! dead-letter innocent messages after a few unrelated panics. So the actor marks the
//! delivery it is working on ([`working_on`], or [`Blamed`] for a future), the panic hook
//! records it as guilty, and while the supervisor restarts the actor, every other dropped
//! delivery goes back to its queue uncounted.
//!
//! The same marks tell the supervisor whether a panic was a message's fault (it was blamed
//! on a delivery) and whether the actor is getting work done (`finished` counts the
//! deliveries each supervised actor acks), which is what separates a poison message from a
//! crash loop (docs/reliability.md).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The identity of one delivery: its queue and its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId {
    /// The queue (its address in memory).
    pub queue: usize,
    /// The delivery tag within the queue.
    pub tag: u64,
    /// Which delivery of its message this is that counts towards `max_deliveries`: 1 for a
    /// message that never failed before.
    pub attempt: u32,
}

thread_local! {
    static CURRENT: Cell<Option<DeliveryId>> = const { Cell::new(None) };
    static GUILTY: RefCell<Vec<DeliveryId>> = const { RefCell::new(Vec::new()) };
    static RESTARTING: Cell<bool> = const { Cell::new(false) };
    /// Why the actor being restarted failed (`actor 'parser-0' panicked: ...`).
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The delivery blamed for the last panic on this thread, for the supervisor.
    static LAST_BLAMED: Cell<Option<DeliveryId>> = const { Cell::new(None) };
    /// The supervised actor being polled: its name and finished-deliveries counter.
    static POLLED: RefCell<Option<(Arc<str>, Arc<AtomicU64>)>> = const { RefCell::new(None) };
}

/// Marks `id` as the delivery this thread works on until the guard is dropped.
pub fn working_on(id: DeliveryId) -> WorkingOn {
    WorkingOn(CURRENT.with(|c| c.replace(Some(id))))
}

/// Restores the previous delivery on drop.
#[derive(Debug)]
pub struct WorkingOn(Option<DeliveryId>);

impl Drop for WorkingOn {
    fn drop(&mut self) {
        // On a panic the hook has read it before unwinding gets here.
        CURRENT.with(|c| c.set(self.0));
    }
}

/// A future working on one delivery: each poll marks it.
pub struct Blamed<F> {
    id: DeliveryId,
    inner: Pin<Box<F>>,
}

impl<F: Future> Blamed<F> {
    /// Wraps `inner`, the work on delivery `id`.
    pub fn new(id: DeliveryId, inner: F) -> Self {
        Self { id, inner: Box::pin(inner) }
    }
}

impl<F: Future> Future for Blamed<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _working = working_on(self.id);
        self.inner.as_mut().poll(cx)
    }
}

/// Called by the panic hook with the panic's text: the delivery being worked on is guilty,
/// and its return to the queue carries the failure.
pub(crate) fn note_panic(text: &str) {
    let current = CURRENT.with(Cell::take);
    LAST_BLAMED.with(|l| l.set(current));
    if let Some(id) = current {
        GUILTY.with(|g| g.borrow_mut().push(id));
        let actor = POLLED.with(|p| p.borrow().as_ref().map(|(name, _)| name.clone()));
        let failure = match actor {
            Some(name) => format!("actor '{name}' panicked: {text}"),
            None => format!("panicked: {text}"),
        };
        FAILURE.with(|f| *f.borrow_mut() = Some(failure));
    }
}

/// The delivery blamed for the last panic on this thread (taken: asked once per panic).
pub(crate) fn take_blamed() -> Option<DeliveryId> {
    LAST_BLAMED.with(Cell::take)
}

/// Runs `f` (a poll of the supervised actor `name`) with deliveries acked meanwhile counted
/// in `progress`.
pub(crate) fn polling<R>(name: &Arc<str>, progress: &Arc<AtomicU64>, f: impl FnOnce() -> R) -> R {
    let was = POLLED.with(|p| p.replace(Some((name.clone(), progress.clone()))));
    let out = f();
    POLLED.with(|p| *p.borrow_mut() = was);
    out
}

/// A delivery was acked: the actor being polled finished a piece of work.
pub(crate) fn finished() {
    POLLED.with(|p| {
        if let Some((_, progress)) = p.borrow().as_ref() {
            progress.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Runs a restart: deliveries dropped meanwhile are innocent unless guilty.
pub(crate) fn restarting<R>(f: impl FnOnce() -> R) -> R {
    let was = RESTARTING.with(|r| r.replace(true));
    let out = f();
    RESTARTING.with(|r| r.set(was));
    GUILTY.with(|g| g.borrow_mut().clear());
    FAILURE.with(|r| r.borrow_mut().take());
    out
}

/// Why the actor failed, from its panic until its restart: the guilty delivery's return
/// (while unwinding, or when the restart drops it) carries it to a dead letter's reason.
pub(crate) fn failure() -> Option<String> {
    FAILURE.with(|r| r.borrow().clone())
}

/// Whether a delivery dropped now was caught up in another's restart.
pub(crate) fn innocent(id: DeliveryId) -> bool {
    RESTARTING.with(Cell::get) && !GUILTY.with(|g| g.borrow().contains(&id))
}
