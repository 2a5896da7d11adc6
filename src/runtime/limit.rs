//! The item limit (`scope.max_items`, [`StopHandle::stop_after_items`](super::StopHandle)):
//! items past it are never published, and reaching it stops the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::crawl::{Page, PageParser, Parsed};

/// How many items a run may still publish, shared by every parser.
#[derive(Debug)]
pub(crate) struct ItemBudget {
    /// The limit (`u64::MAX`: none).
    limit: AtomicU64,
    /// Items granted so far.
    taken: AtomicU64,
    /// The run's stop switch, thrown when the limit is reached.
    stop: Arc<watch::Sender<bool>>,
}

impl ItemBudget {
    pub(crate) fn new(stop: Arc<watch::Sender<bool>>) -> Self {
        Self { limit: AtomicU64::new(u64::MAX), taken: AtomicU64::new(0), stop }
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
        self.taken.load(Ordering::Acquire) >= self.limit.load(Ordering::Acquire)
    }

    /// Grants up to `wanted` items; stops the run when the grant reaches the limit.
    fn take(&self, wanted: u64) -> u64 {
        let limit = self.limit.load(Ordering::Acquire);
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
