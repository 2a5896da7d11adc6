//! The item limit (`scope.max_items`, [`StopHandle::stop_after_items`](super::StopHandle)):
//! items past it are never published, and reaching it stops the run. With a shared
//! frontier whose store counts items (Redis), the limit holds for the whole crawl: each
//! grant is taken from the broker's count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::crawl::shared::SharedStore;
use crate::crawl::{Page, PageParser, Parsed};

/// How long a parser waits for the broker's grant before it counts the items itself.
const GRANT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many items a run may still publish, shared by every parser.
pub(crate) struct ItemBudget {
    /// The limit (`u64::MAX`: none).
    limit: AtomicU64,
    /// Items granted so far (here).
    taken: AtomicU64,
    /// The crawl's count in the broker said the limit is reached.
    reached: AtomicBool,
    /// The broker's count, when the crawl shares one.
    shared: OnceLock<SharedCount>,
    /// The run's stop switch, thrown when the limit is reached.
    stop: Arc<watch::Sender<bool>>,
}

/// A store that counts the crawl's items, and the runtime its calls run on (parsers are
/// synchronous: they wait for the answer).
struct SharedCount {
    store: Arc<dyn SharedStore>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for ItemBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemBudget")
            .field("limit", &self.limit)
            .field("taken", &self.taken)
            .field("shared", &self.shared.get().is_some())
            .finish()
    }
}

impl ItemBudget {
    pub(crate) fn new(stop: Arc<watch::Sender<bool>>) -> Self {
        Self {
            limit: AtomicU64::new(u64::MAX),
            taken: AtomicU64::new(0),
            reached: AtomicBool::new(false),
            shared: OnceLock::new(),
            stop,
        }
    }

    /// Counts the items in `store` (across every process of the crawl) from now on, if it
    /// keeps a count; its calls run on `runtime`.
    pub(crate) fn share(&self, store: Arc<dyn SharedStore>, runtime: tokio::runtime::Handle) {
        let _ = self.shared.set(SharedCount { store, runtime });
    }

    /// Asks the broker for up to `wanted` items: `None` when it keeps no count or did not
    /// answer (then this process counts for itself, and says so).
    fn take_shared(&self, wanted: u64, limit: u64) -> Option<u64> {
        let shared = self.shared.get()?;
        let grant = shared.store.take_items(wanted, limit)?;
        let (tx, rx) = std::sync::mpsc::channel();
        shared.runtime.spawn(async move {
            let _ = tx.send(grant.await);
        });
        match rx.recv_timeout(GRANT_TIMEOUT) {
            Ok(Ok((granted, reached))) => {
                if reached {
                    self.reached.store(true, Ordering::Release);
                }
                Some(granted)
            }
            Ok(Err(e)) => {
                tracing::warn!("max_items: the broker's count failed ({e}); counting this page's items here");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "max_items: no answer from the broker's count; counting this page's items here"
                );
                None
            }
        }
    }

    /// Lowers the limit to `n` items in all (a higher one than set already is ignored);
    /// stops the run at once if that many were published already.
    pub(crate) fn limit_to(&self, n: u64) {
        self.limit.fetch_min(n, Ordering::AcqRel);
        if self.exhausted() {
            self.stop.send_replace(true);
        }
    }

    fn exhausted(&self) -> bool {
        self.reached.load(Ordering::Acquire)
            || self.taken.load(Ordering::Acquire) >= self.limit.load(Ordering::Acquire)
    }

    /// Grants up to `wanted` items; stops the run when the grant reaches the limit.
    fn take(&self, wanted: u64) -> u64 {
        let limit = self.limit.load(Ordering::Acquire);
        if limit != u64::MAX && wanted > 0 {
            if let Some(granted) = self.take_shared(wanted, limit) {
                self.taken.fetch_add(granted, Ordering::AcqRel);
                if self.exhausted() {
                    self.stop.send_replace(true);
                }
                return granted;
            }
        }
        let mut granted = 0;
        let _ = self.taken.fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
            granted = wanted.min(limit.saturating_sub(taken));
            Some(taken + granted)
        });
        if self.exhausted() {
            self.stop.send_replace(true);
        }
        granted
    }
}

/// A parser whose items are cut at the run's item limit; past it, pages yield no links.
pub(crate) struct LimitedParser {
    pub(crate) inner: Arc<dyn PageParser>,
    pub(crate) budget: Arc<ItemBudget>,
}

impl PageParser for LimitedParser {
    fn parse(&self, page: &Page) -> Parsed {
        if self.budget.exhausted() {
            return Parsed::default();
        }
        let mut parsed = self.inner.parse(page);
        let granted = self.budget.take(parsed.items.len() as u64);
        parsed.items.truncate(granted as usize);
        if self.budget.exhausted() {
            parsed.links.clear();
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stop_exactly_at_the_limit_and_throw_the_stop_switch() {
        let (tx, rx) = watch::channel(false);
        let budget = ItemBudget::new(Arc::new(tx));
        assert_eq!(budget.take(5), 5, "no limit yet");
        budget.limit_to(12);
        assert_eq!(budget.take(4), 4);
        assert!(!*rx.borrow());
        assert_eq!(budget.take(4), 3, "cut at the limit");
        assert!(*rx.borrow(), "the limit stops the run");
        assert_eq!(budget.take(1), 0);
        budget.limit_to(100);
        assert_eq!(budget.take(1), 0, "a higher limit does not lift a lower one");
    }
}
