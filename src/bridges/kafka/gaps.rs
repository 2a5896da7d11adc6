//! Offsets a broker skipped. The requests topic is written without transactions and never
//! compacted, so its offsets have no holes: a consumer that gets offset `o` of a partition
//! when it expected `e < o` was handed a later record batch before an earlier one became
//! readable. A Kafka-protocol broker can do that while several producers append to one
//! partition (tansu's memory engine did, here: a batch of 54 requests was skipped and,
//! its offsets committed past, never crawled). The consumer then reads again from `e`;
//! a hole that is still there after [`PATIENCE`] is real (records deleted by retention,
//! or a transactional producer's markers in a user's topic) and is accepted, with a
//! warning.

use std::time::{Duration, Instant};

/// How long a hole may last before it counts as real.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// Reads again from the hole at most this often.
pub const REREAD_EVERY: Duration = Duration::from_millis(100);

/// What to do with a consumed message, by its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Next in line: take it.
    Take,
    /// Before the next expected offset: delivered (and taken) already.
    Old,
    /// After a hole: drop it and read the partition again from this offset.
    Reread(i64),
    /// After a hole that was just read again: drop it and wait.
    Hold,
    /// After a hole that outlasted the patience (2 s): take it; the offsets `from..to` are gone.
    Accept {
        /// The first missing offset.
        from: i64,
        /// The offset taken (one past the last missing).
        to: i64,
    },
}

/// Watches the offsets of one partition as they are consumed.
#[derive(Debug, Default, Clone)]
pub struct GapGuard {
    /// The offset the next message should have (`None`: take whatever comes first).
    expect: Option<i64>,
    /// The hole waited on: its first offset, and since when.
    hole: Option<(i64, Instant)>,
    /// When the partition was last read again.
    reread: Option<Instant>,
}

impl GapGuard {
    /// A guard for a partition whose consumption starts at `position` (its committed
    /// offset; `None` when unknown).
    pub fn starting_at(position: Option<i64>) -> Self {
        Self { expect: position, hole: None, reread: None }
    }

    /// The verdict on a message at `offset`, consumed at `now`.
    pub fn check(&mut self, offset: i64, now: Instant) -> Verdict {
        let Some(expect) = self.expect else {
            self.expect = Some(offset + 1);
            return Verdict::Take;
        };
        if offset < expect {
            return Verdict::Old;
        }
        if offset == expect {
            self.expect = Some(offset + 1);
            self.hole = None;
            return Verdict::Take;
        }
        let since = match self.hole {
            Some((from, since)) if from == expect => since,
            _ => {
                self.hole = Some((expect, now));
                now
            }
        };
        if now.duration_since(since) >= PATIENCE {
            self.expect = Some(offset + 1);
            self.hole = None;
            return Verdict::Accept { from: expect, to: offset };
        }
        if self.reread.is_some_and(|at| now.duration_since(at) < REREAD_EVERY) {
            return Verdict::Hold;
        }
        self.reread = Some(now);
        Verdict::Reread(expect)
    }

    /// The offset to read again from, if a hole is waited on and the last read again was
    /// long enough ago (a read again that failed, or found nothing yet, is repeated).
    pub fn due(&mut self, now: Instant) -> Option<i64> {
        let (from, _) = self.hole?;
        if self.reread.is_some_and(|at| now.duration_since(at) < REREAD_EVERY) {
            return None;
        }
        self.reread = Some(now);
        Some(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_offsets_are_taken_and_old_ones_are_not() {
        let now = Instant::now();
        let mut g = GapGuard::starting_at(Some(10));
        assert_eq!(g.check(10, now), Verdict::Take);
        assert_eq!(g.check(11, now), Verdict::Take);
        assert_eq!(g.check(11, now), Verdict::Old, "delivered twice");
        assert_eq!(g.check(3, now), Verdict::Old);
        let mut fresh = GapGuard::starting_at(None);
        assert_eq!(fresh.check(42, now), Verdict::Take, "no position known: the first comes first");
        assert_eq!(fresh.check(43, now), Verdict::Take);
    }

    #[test]
    fn a_hole_is_read_again_until_it_fills() {
        let t0 = Instant::now();
        let mut g = GapGuard::starting_at(Some(295));
        assert_eq!(g.check(349, t0), Verdict::Reread(295), "295..349 skipped by the broker");
        assert_eq!(g.check(350, t0), Verdict::Hold, "the rest of the late batch");
        assert_eq!(g.due(t0), None, "just read again");
        let later = t0 + REREAD_EVERY;
        assert_eq!(g.due(later), Some(295), "read again once more: nothing came");
        // The skipped batch is readable now.
        assert_eq!(g.check(295, later), Verdict::Take);
        assert_eq!(g.due(later + PATIENCE), None, "no hole any more");
        for o in 296..=350 {
            assert_eq!(g.check(o, later), Verdict::Take);
        }
    }

    #[test]
    fn a_hole_that_outlasts_the_patience_is_accepted() {
        let t0 = Instant::now();
        let mut g = GapGuard::starting_at(Some(7));
        assert_eq!(g.check(9, t0), Verdict::Reread(7));
        assert_eq!(g.check(9, t0 + PATIENCE / 2), Verdict::Reread(7));
        assert_eq!(g.check(9, t0 + PATIENCE), Verdict::Accept { from: 7, to: 9 });
        assert_eq!(g.check(10, t0 + PATIENCE), Verdict::Take);
        // A new hole has a patience of its own.
        let t1 = t0 + PATIENCE * 3;
        assert_eq!(g.check(20, t1), Verdict::Reread(11));
        assert_eq!(g.check(20, t1 + PATIENCE / 2), Verdict::Reread(11));
    }
}
