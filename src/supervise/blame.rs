//! Which delivery made an actor panic.
//!
//! An actor with many deliveries in flight (a fetcher with 32 requests) loses all of them
//! when it is restarted. Counting every one of those returns towards `max_deliveries` would
//! dead-letter innocent messages after a few unrelated panics. So the actor marks the
//! delivery it is working on ([`working_on`], or [`Blamed`] for a future), the panic hook
//! records it as guilty, and while the supervisor restarts the actor, every other dropped
//! delivery goes back to its queue uncounted.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The identity of one delivery: its queue and its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId {
    /// The queue (its address in memory).
    pub queue: usize,
    /// The delivery tag within the queue.
    pub tag: u64,
}

thread_local! {
    static CURRENT: Cell<Option<DeliveryId>> = const { Cell::new(None) };
    static GUILTY: RefCell<Vec<DeliveryId>> = const { RefCell::new(Vec::new()) };
    static RESTARTING: Cell<bool> = const { Cell::new(false) };
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

/// Called by the panic hook: the delivery being worked on is guilty.
pub(crate) fn note_panic() {
    if let Some(id) = CURRENT.with(Cell::take) {
        GUILTY.with(|g| g.borrow_mut().push(id));
    }
}

/// Runs a restart: deliveries dropped meanwhile are innocent unless guilty.
pub(crate) fn restarting<R>(f: impl FnOnce() -> R) -> R {
    let was = RESTARTING.with(|r| r.replace(true));
    let out = f();
    RESTARTING.with(|r| r.set(was));
    GUILTY.with(|g| g.borrow_mut().clear());
    out
}

/// Whether a delivery dropped now was caught up in another's restart.
pub(crate) fn innocent(id: DeliveryId) -> bool {
    RESTARTING.with(Cell::get) && !GUILTY.with(|g| g.borrow().contains(&id))
}
