//! One supervised actor: its context future, polled under `catch_unwind`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

/// A panic this soon after a restart backs off more each time.
const CRASH_LOOP_GAP: Duration = Duration::from_millis(10);
/// The longest back-off between restarts in a row: 2^7 ms.
const MAX_BACKOFF_SHIFT: u32 = 7;

use actix::dev::ContextFut;
use actix::{Actor, ActorContext, Context, Supervised};
use tokio::sync::mpsc::UnboundedSender;

use super::supervisor::Report;
use super::{blame, panic, subscribe};

/// When a child is restarted (Erlang/OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always: after a panic and after it stops by itself.
    #[default]
    Permanent,
    /// Only after a panic; stopping by itself is a normal end.
    Transient,
    /// Never: a panic ends it.
    Temporary,
}

/// What a supervisor knows of one child.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The child's name, unique under its supervisor (`fetcher-0`).
    pub name: String,
    /// Its restart type.
    pub restart: Restart,
    pub(crate) signal: Arc<RestartSignal>,
    /// Deliveries it acked so far (its progress).
    pub(crate) progress: Arc<AtomicU64>,
}

impl ChildInfo {
    /// Asks the child to stop as actix actors stop: it handles what its mailbox holds,
    /// then `stopping` and `stopped` are called, and it is not restarted.
    pub(crate) fn stop_gracefully(&self) {
        self.signal.graceful.store(true, Ordering::Release);
        self.signal.waker.wake();
    }

    /// Resolves once the child has ended (for good: a restart is not an end).
    pub(crate) async fn ended(&self) {
        loop {
            let notified = self.signal.ended_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.signal.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// A request from the supervisor to restart (or stop) a child that did not fail itself.
#[derive(Debug, Default)]
pub(crate) struct RestartSignal {
    restart: AtomicBool,
    stop: AtomicBool,
    /// A graceful stop was asked for ([`ChildInfo::stop_gracefully`]).
    graceful: AtomicBool,
    /// The child's future is gone: it ended for good.
    ended: AtomicBool,
    ended_notify: tokio::sync::Notify,
    /// The subscriptions the child made with [`ContextExt::subscribe`](super::ContextExt):
    /// they outlive its restarts.
    pub(crate) attachments: Arc<subscribe::Attachments>,
    waker: futures::task::AtomicWaker,
}

impl RestartSignal {
    pub(crate) fn restart(&self) {
        self.restart.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The future that runs one actor and turns its panics into restarts.
pub(crate) struct SupervisedActor<A: Actor<Context = Context<A>> + Supervised> {
    pub(crate) fut: ContextFut<A, Context<A>>,
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) restart: Restart,
    pub(crate) signal: Arc<RestartSignal>,
    pub(crate) progress: Arc<AtomicU64>,
    pub(crate) reports: UnboundedSender<Report>,
    pub(crate) backoff: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Panics in a row, each soon after the restart before it.
    pub(crate) consecutive: u32,
    /// When the actor last came back from a restart.
    pub(crate) last_panic: Option<Instant>,
    /// Whether `ctx.stop()` was called for a graceful stop.
    pub(crate) stopping: bool,
}

impl<A: Actor<Context = Context<A>> + Supervised> Drop for SupervisedActor<A> {
    fn drop(&mut self) {
        self.signal.ended.store(true, Ordering::Release);
        self.signal.ended_notify.notify_waiters();
    }
}

impl<A: Actor<Context = Context<A>> + Supervised> Future for SupervisedActor<A> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        this.signal.waker.register(cx.waker());
        if this.signal.stop.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if let Some(sleep) = this.backoff.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.backoff = None;
            this.last_panic = Some(Instant::now());
        }
        let graceful = this.signal.graceful.load(Ordering::Acquire);
        if !graceful
            && this.signal.restart.swap(false, Ordering::AcqRel)
            && !blame::restarting(|| this.fut.restart())
        {
            return Poll::Ready(());
        }
        if graceful && !this.stopping {
            // The mailbox is still read while stopping (actix), then `stopping`, `stopped`.
            this.stopping = true;
            this.fut.ctx().stop();
        }
        let fut = &mut this.fut;
        let polled = subscribe::within(&this.signal.attachments, || {
            blame::polling(&this.name, &this.progress, || {
                panic::supervised(|| catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))))
            })
        });
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                if this.restart == Restart::Permanent && !graceful && blame::restarting(|| this.fut.restart())
                {
                    let _ =
                        this.reports.send(Report::Restarted { index: this.index, reason: "stopped".into() });
                    this.back_off();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let _ = this.reports.send(Report::Exited { index: this.index });
                Poll::Ready(())
            }
            Err(payload) => {
                let reason = panic::take_last(payload.as_ref());
                let blamed = blame::take_blamed().map(|id| id.attempt);
                let index = this.index;
                if this.restart == Restart::Temporary || graceful || !blame::restarting(|| this.fut.restart())
                {
                    let _ = this.reports.send(Report::Panicked { index, reason, blamed, restarted: false });
                    return Poll::Ready(());
                }
                let _ = this.reports.send(Report::Panicked { index, reason, blamed, restarted: true });
                this.back_off();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl<A: Actor<Context = Context<A>> + Supervised> SupervisedActor<A> {
    /// A failure soon after the last restart is a crash loop: back off more each time, so it
    /// doesn't spin a core while the supervisor decides whether to escalate. An actor that
    /// ran a while before failing restarts at once.
    fn back_off(&mut self) {
        let in_a_row = self.last_panic.is_some_and(|t| t.elapsed() < CRASH_LOOP_GAP);
        self.consecutive = if in_a_row { self.consecutive.saturating_add(1) } else { 0 };
        let delay =
            Duration::from_millis(if in_a_row { 1u64 << self.consecutive.min(MAX_BACKOFF_SHIFT) } else { 1 });
        self.backoff = Some(Box::pin(tokio::time::sleep(delay)));
    }
}
