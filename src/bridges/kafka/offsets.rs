//! Which offset of a partition may be committed: pages finish out of order, and an offset
//! is committed only when every message before it is done, so the commit position is the
//! lowest offset still unfinished (or one past the last consumed, when none is).

use std::collections::BTreeSet;

/// The consumed-but-unfinished offsets of one partition.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    /// Consumed and not yet done.
    unfinished: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: Option<i64>,
    /// The position last committed.
    committed: Option<i64>,
}

impl OffsetTracker {
    /// A message at `offset` was consumed and is now being worked on.
    pub fn consumed(&mut self, offset: i64) {
        self.unfinished.insert(offset);
        self.bump(offset);
    }

    /// A message at `offset` was consumed and needs no work (a duplicate, an unreadable
    /// entry): done at once.
    pub fn skipped(&mut self, offset: i64) {
        self.bump(offset);
    }

    fn bump(&mut self, offset: i64) {
        let next = offset + 1;
        if self.next.is_none_or(|n| next > n) {
            self.next = Some(next);
        }
    }

    /// The message at `offset` is done; `false` if it was not unfinished here.
    pub fn done(&mut self, offset: i64) -> bool {
        self.unfinished.remove(&offset)
    }

    /// Offsets consumed and not done.
    pub fn unfinished(&self) -> usize {
        self.unfinished.len()
    }

    /// Whether `offset` is consumed and not done.
    pub fn is_unfinished(&self, offset: i64) -> bool {
        self.unfinished.contains(&offset)
    }

    /// Whether `offset` was consumed here and is done (below the highest consumed, and
    /// not unfinished).
    pub fn is_done(&self, offset: i64) -> bool {
        self.next.is_some_and(|n| offset < n) && !self.unfinished.contains(&offset)
    }

    /// The position to commit (the next offset to consume after a restart), if it moved
    /// past the last commit.
    pub fn to_commit(&self) -> Option<i64> {
        let position = self.unfinished.first().copied().or(self.next)?;
        (self.committed.is_none_or(|c| position > c)).then_some(position)
    }

    /// `position` was committed.
    pub fn committed(&mut self, position: i64) {
        if self.committed.is_none_or(|c| position > c) {
            self.committed = Some(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_the_lowest_unfinished() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.to_commit(), None);
        for o in 10..15 {
            t.consumed(o);
        }
        assert_eq!(t.to_commit(), Some(10));
        t.committed(10);
        assert_eq!(t.to_commit(), None, "nothing new");
        assert!(t.done(12));
        assert!(t.done(11));
        assert_eq!(t.to_commit(), None, "10 still unfinished");
        assert!(t.done(10));
        assert_eq!(t.to_commit(), Some(13));
        t.skipped(15);
        assert!(t.done(13) && t.done(14));
        assert!(!t.done(14), "twice");
        assert_eq!(t.to_commit(), Some(16));
        assert!(t.is_done(12) && t.is_done(15) && !t.is_done(16));
        t.committed(16);
        t.committed(3);
        assert_eq!(t.to_commit(), None, "never goes back");
        assert_eq!(t.unfinished(), 0);
    }
}
