//! What every bridge shares, whatever its broker: its counters and its reconnection
//! backoff.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a bridge actor runs: a future made anew on each (re)start.
pub(crate) type Runner = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Starts a bridge's `runner` in its actor's context: when it ends (its local channel closed
/// and drained), the bridge counts as finished and the actor stops.
pub(crate) fn run_bridge<A>(runner: &Runner, counters: &Arc<BridgeCounters>, ctx: &mut actix::Context<A>)
where
    A: actix::Actor<Context = actix::Context<A>>,
{
    use actix::{ActorFutureExt, AsyncContext};
    let counters = counters.clone();
    let run = actix::fut::wrap_future::<_, A>(runner());
    ctx.spawn(run.map(move |(), _act, ctx: &mut actix::Context<A>| {
        counters.set_finished();
        actix::ActorContext::stop(ctx);
    }));
}

/// An inbound bridge's consumer lag per `topic/partition` (messages behind the end),
/// updated while it runs; shared.
pub type ConsumerLag = Arc<Mutex<BTreeMap<String, i64>>>;

/// What one bridge or handler did, shared with its actor (read them any time). Logged when
/// the actor stops.
#[derive(Debug, Default)]
pub struct BridgeCounters {
    /// Messages carried across (published to the broker, or delivered locally).
    pub forwarded: AtomicU64,
    /// Outbound: local messages dropped because the broker was unreachable (or the
    /// publish failed). Inbound (Redis pub/sub): what Redis published while the subscription
    /// was down is lost too (pub/sub keeps nothing), but cannot be counted; see `disconnects`.
    pub undelivered: AtomicU64,
    /// Connections lost (closed by the server, or a PING unanswered within the interval).
    pub disconnects: AtomicU64,
    /// Successful reconnections (resubscriptions for inbound bridges).
    pub reconnects: AtomicU64,
    /// Health checks (PING) that failed or timed out.
    pub health_checks_failed: AtomicU64,
    connected: AtomicBool,
    finished: AtomicBool,
}

impl BridgeCounters {
    /// Whether the bridge holds a working connection (subscribed, for inbound ones).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Whether the bridge has done its work: outbound, its local topic closed and every
    /// message sent; inbound, its local topic closed.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Logs what a bridge did, when its actor stops.
    pub(crate) fn log_stopped(&self, label: &str) {
        tracing::info!(
            bridge = %label,
            forwarded = Self::get(&self.forwarded),
            undelivered = Self::get(&self.undelivered),
            disconnects = Self::get(&self.disconnects),
            reconnects = Self::get(&self.reconnects),
            health_checks_failed = Self::get(&self.health_checks_failed),
            "bridge stopped"
        );
    }

    pub(crate) fn set_finished(&self) {
        self.finished.store(true, Ordering::Release);
    }

    pub(crate) fn set_connected(&self, on: bool) {
        self.connected.store(on, Ordering::Release);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Exponential backoff with full jitter between reconnection attempts: 100 ms doubling up
/// to 30 s (redis-py's and most clients' shape).
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The next wait: a random time between half the current step and the step.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new();
        let first = b.next_wait();
        assert!(first <= Backoff::FIRST && first >= Backoff::FIRST / 2);
        for _ in 0..20 {
            assert!(b.next_wait() <= Backoff::MAX);
        }
        b.reset();
        assert!(b.next_wait() <= Backoff::FIRST);
    }
}
