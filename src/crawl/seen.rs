//! The local frontier's seen-set: every URL fingerprint offered, exact, in ~17–19 bytes a URL.
//!
//! A fingerprint is already a uniform 128-bit hash, so the set stores the 16 bytes and
//! nothing else: an open-addressing table of `u128` slots (0 marks an empty slot; the one
//! fingerprint that is 0 has a flag of its own) with Robin Hood linear probing. A slot's
//! home is the fingerprint's low 64 bits scaled to the table's length (a multiply and a
//! shift, so the length need not be a power of two): the table can grow by 1/8 at a time
//! and stay 82–92 % full, where a `HashSet<u128>` (16 bytes + a control byte a slot, 44–88 %
//! full, doubling) takes 19–39 bytes a URL and twice that while it doubles.
//!
//! The set is split into [`SHARDS`] shards by the fingerprint's top bits, each behind its own
//! lock: a shard grows alone (the copy made while growing is 1/64 of the set), and other
//! threads (parsers screening links) may test and insert while the scheduler does.
//! `benches/memory.rs` measures it beside the `DashSet` it replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::urls::Fingerprint;

/// Shards of the set (a power of two).
pub const SHARDS: usize = 64;
const SHARD_SHIFT: u32 = 128 - SHARDS.trailing_zeros();

/// A shard grows when an insert would take it past this share of its slots (in 1/1024ths).
const MAX_LOAD_1024: usize = 942; // 92 %
/// The slots a shard starts with.
const MIN_SLOTS: usize = 64;

/// An exact set of URL fingerprints, shared between threads (see the module docs).
pub struct SeenSet {
    shards: Box<[Mutex<Table>]>,
    /// The slots of every shard (kept as they grow, so reading it takes no lock).
    slots: AtomicUsize,
}

impl Default for SeenSet {
    fn default() -> Self {
        Self::new()
    }
}

impl SeenSet {
    /// An empty set (no table is allocated before the first insert).
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Table::default())).collect(),
            slots: AtomicUsize::new(0),
        }
    }

    fn shard(&self, fingerprint: Fingerprint) -> MutexGuard<'_, Table> {
        let i = (fingerprint.0 >> SHARD_SHIFT) as usize;
        // A panic while a shard was locked cannot leave a table half-changed in a way that
        // breaks it (a slot is written whole), so a poisoned lock is used as it is.
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a fingerprint; true when it was not in the set.
    pub fn insert(&self, fingerprint: Fingerprint) -> bool {
        let mut shard = self.shard(fingerprint);
        let before = shard.slots.len();
        let new = shard.insert(fingerprint.0);
        if shard.slots.len() != before {
            self.slots.fetch_add(shard.slots.len() - before, Ordering::Relaxed);
        }
        new
    }

    /// Whether the set holds a fingerprint.
    pub fn contains(&self, fingerprint: Fingerprint) -> bool {
        self.shard(fingerprint).contains(fingerprint.0)
    }

    /// Fingerprints in the set.
    pub fn len(&self) -> usize {
        self.each_shard(|t| t.len)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the set's tables take (what it costs in memory, give or take the
    /// allocator's rounding).
    pub fn memory_bytes(&self) -> usize {
        self.slots.load(Ordering::Relaxed) * std::mem::size_of::<u128>()
    }

    /// Empties the set and gives its memory back.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut table = shard.lock().unwrap_or_else(PoisonError::into_inner);
            self.slots.fetch_sub(table.slots.len(), Ordering::Relaxed);
            *table = Table::default();
        }
    }

    fn each_shard(&self, f: impl Fn(&Table) -> usize) -> usize {
        self.shards.iter().map(|s| f(&s.lock().unwrap_or_else(PoisonError::into_inner))).sum()
    }
}

impl std::fmt::Debug for SeenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenSet").field("len", &self.len()).field("bytes", &self.memory_bytes()).finish()
    }
}

/// One shard: a Robin Hood table of non-zero fingerprints, plus whether 0 is in the set.
#[derive(Default)]
struct Table {
    slots: Vec<u128>,
    /// Keys in the set (0 included).
    len: usize,
    zero: bool,
}

/// The empty slot.
const EMPTY: u128 = 0;

impl Table {
    /// A key's home slot in a table of `n` slots: its low 64 bits scaled to `0..n`.
    fn home(key: u128, n: usize) -> usize {
        ((u128::from(key as u64) * n as u128) >> 64) as usize
    }

    /// How far slot `i` is from `key`'s home, going forward (and round the end).
    fn distance(key: u128, i: usize, n: usize) -> usize {
        let home = Self::home(key, n);
        if i >= home {
            i - home
        } else {
            i + n - home
        }
    }

    fn contains(&self, key: u128) -> bool {
        if key == EMPTY {
            return self.zero;
        }
        let n = self.slots.len();
        if n == 0 {
            return false;
        }
        let mut i = Self::home(key, n);
        // Robin Hood: the key cannot be past a slot whose own key is nearer its home.
        for dist in 0..n {
            let slot = self.slots[i];
            if slot == key {
                return true;
            }
            if slot == EMPTY || Self::distance(slot, i, n) < dist {
                return false;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        false
    }

    fn insert(&mut self, key: u128) -> bool {
        if key == EMPTY {
            let new = !std::mem::replace(&mut self.zero, true);
            self.len += usize::from(new);
            return new;
        }
        if (self.len + 1) * 1024 > self.slots.len() * MAX_LOAD_1024 {
            self.grow();
        }
        if !self.place(key, true) {
            return false;
        }
        self.len += 1;
        true
    }

    /// Puts `key` in its place, moving richer keys on (Robin Hood); with `check`, stops
    /// with false when the key is there already.
    fn place(&mut self, mut key: u128, mut check: bool) -> bool {
        let n = self.slots.len();
        let mut i = Self::home(key, n);
        let mut dist = 0;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                self.slots[i] = key;
                return true;
            }
            if check && slot == key {
                return false;
            }
            let slot_dist = Self::distance(slot, i, n);
            if slot_dist < dist {
                // Past here the key cannot be (see `contains`): it is new; the slot's key moves on.
                self.slots[i] = key;
                key = slot;
                dist = slot_dist;
                check = false;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
            dist += 1;
        }
    }

    /// Grows by 1/8 (at least to [`MIN_SLOTS`]) and puts every key in its new place.
    fn grow(&mut self) {
        let n = self.slots.len();
        let new_len = (n + n / 8).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; new_len]);
        for key in old.into_iter().filter(|k| *k != EMPTY) {
            self.place(key, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn zero_and_clear() {
        let set = SeenSet::new();
        assert!(!set.contains(Fingerprint(0)));
        assert!(set.insert(Fingerprint(0)));
        assert!(!set.insert(Fingerprint(0)));
        assert!(set.insert(Fingerprint(u128::MAX)));
        assert_eq!(set.len(), 2);
        set.clear();
        assert!(set.is_empty());
        assert_eq!(set.memory_bytes(), 0);
        assert!(!set.contains(Fingerprint(u128::MAX)));
    }

    #[test]
    fn a_million_fingerprints_in_under_20_bytes_each() {
        let set = SeenSet::new();
        let fp = |i: u64| Fingerprint(xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()));
        for i in 0..1_000_000u64 {
            assert!(set.insert(fp(i)));
        }
        for i in 0..1_000_000u64 {
            assert!(!set.insert(fp(i)), "{i} is a duplicate");
            assert!(!set.contains(fp(i + 1_000_000)), "{} was never inserted", i + 1_000_000);
        }
        assert_eq!(set.len(), 1_000_000);
        let per_url = set.memory_bytes() as f64 / 1e6;
        assert!(per_url < 20.0, "{per_url} bytes a fingerprint");
    }

    /// Keys that crowd a few homes (low bits alike) and wrap round the table's end.
    fn key() -> impl Strategy<Value = u128> {
        prop_oneof![
            any::<u128>(),
            (0u128..4, 0u128..64).prop_map(|(hi, lo)| (hi << 122) | lo),
            (0u128..4, 0u64..8).prop_map(|(hi, lo)| (hi << 122) | u128::from(u64::MAX - lo)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Against a `HashSet`: no false positive, no false negative, the same answers to
        /// every insert, whatever the keys and however many times the tables grew.
        #[test]
        fn exact_like_a_hash_set(ops in proptest::collection::vec((key(), any::<bool>()), 0..3000)) {
            let set = SeenSet::new();
            let mut model = HashSet::new();
            for (k, insert) in &ops {
                if *insert {
                    prop_assert_eq!(set.insert(Fingerprint(*k)), model.insert(*k));
                } else {
                    prop_assert_eq!(set.contains(Fingerprint(*k)), model.contains(k));
                }
            }
            prop_assert_eq!(set.len(), model.len());
            for k in &model {
                prop_assert!(set.contains(Fingerprint(*k)));
            }
            for (k, _) in &ops {
                prop_assert_eq!(set.contains(Fingerprint(k.wrapping_add(1))), model.contains(&k.wrapping_add(1)));
            }
        }
    }
}
