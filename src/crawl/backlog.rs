//! One host's waiting requests, in the frontier's order: `fifo` (breadth-first), `lifo`
//! (depth-first) or `priority` (highest first, fifo among equals), part of them in memory
//! and the rest spilled to disk ([`SpillStore`]) when the frontier is past its memory budget.
//!
//! Spilling never changes the order. A fifo lane is `head ++ spilled ++ tail`: requests
//! join the tail, leave from the head, and a spill writes the tail (and the head past the
//! few it keeps) as extents in their place in the line. A lifo stack is `spilled ++ top`: a
//! spill writes the older part of the top below it. A priority backlog is one fifo lane per
//! priority (rules give a handful), taken highest first.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;

use url::Url;

use super::messages::CrawlRequest;
use super::spill::{Extent, SpillStore, EXTENT_REQUESTS};
use crate::spec::QueueOrder;

/// What a request is taken to cost in memory: the struct, its URL's bytes, its redirect
/// chain, and the allocator's and the queue's overhead.
pub fn request_bytes(r: &CrawlRequest) -> usize {
    std::mem::size_of::<CrawlRequest>()
        + r.url.as_str().len()
        + r.redirect_chain.len() * std::mem::size_of::<super::urls::Fingerprint>()
        + 32
}

/// A host's backlog.
#[derive(Debug)]
pub struct Backlog {
    kind: Kind,
    /// Requests waiting, in memory and spilled.
    len: usize,
    /// [`request_bytes`] of the requests in memory.
    bytes: usize,
}

#[derive(Debug)]
enum Kind {
    Fifo(Lane),
    Lifo(Stack),
    /// Lanes by priority, highest first (the key is the negated priority).
    Priority(BTreeMap<i64, Lane>),
}

/// Requests that could not be read back from the spill file: they are gone from the
/// backlog (and counted as failed by the scheduler).
#[derive(Debug)]
pub struct Lost {
    /// How many.
    pub count: usize,
    /// Why.
    pub error: io::Error,
}

impl Backlog {
    /// An empty backlog in `order`.
    pub fn new(order: QueueOrder) -> Self {
        let kind = match order {
            QueueOrder::Fifo => Kind::Fifo(Lane::default()),
            QueueOrder::Lifo => Kind::Lifo(Stack::default()),
            QueueOrder::Priority => Kind::Priority(BTreeMap::new()),
        };
        Self { kind, len: 0, bytes: 0 }
    }

    /// Adds a request (`priority` matters only in a priority backlog).
    pub fn push(&mut self, request: CrawlRequest, priority: i32) {
        self.len += 1;
        self.bytes += request_bytes(&request);
        match &mut self.kind {
            Kind::Fifo(lane) => lane.tail.push_back(request),
            Kind::Lifo(stack) => stack.top.push(request),
            Kind::Priority(lanes) => lanes.entry(-i64::from(priority)).or_default().tail.push_back(request),
        }
    }

    /// The next request, reading spilled ones back when it comes to them (`store` is the
    /// frontier's spill store, if it has one). A spilled extent that cannot be read is
    /// reported as [`Lost`] and the backlog goes on with the next.
    pub fn pop(
        &mut self,
        store: Option<&mut SpillStore>,
        host: &Arc<str>,
    ) -> (Option<CrawlRequest>, Option<Lost>) {
        let mut lost = None;
        let request = match &mut self.kind {
            Kind::Fifo(lane) => lane.pop(store, host, &mut lost, &mut self.bytes),
            Kind::Lifo(stack) => stack.pop(store, host, &mut lost, &mut self.bytes),
            Kind::Priority(lanes) => {
                let mut store = store;
                let mut found = None;
                while let Some(mut entry) = lanes.first_entry() {
                    found = entry.get_mut().pop(store.as_deref_mut(), host, &mut lost, &mut self.bytes);
                    if entry.get().is_empty() {
                        entry.remove();
                    }
                    if found.is_some() {
                        break;
                    }
                }
                found
            }
        };
        self.len -= request.is_some() as usize + lost.as_ref().map_or(0, |l| l.count);
        (request, lost)
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// [`request_bytes`] of the requests in memory.
    pub fn memory_bytes(&self) -> usize {
        self.bytes
    }

    /// The URL of some waiting request held in memory.
    pub fn any_url(&self) -> Option<&Url> {
        match &self.kind {
            Kind::Fifo(lane) => lane.any_url(),
            Kind::Lifo(stack) => stack.top.last().map(|r| &r.url),
            Kind::Priority(lanes) => lanes.values().find_map(Lane::any_url),
        }
    }

    /// Writes all but the next `keep` requests in memory to `store`, keeping the order.
    /// On a write error what was not written stays in memory.
    pub fn spill(&mut self, store: &mut SpillStore, keep: usize) -> io::Result<()> {
        let bytes = &mut self.bytes;
        match &mut self.kind {
            Kind::Fifo(lane) => lane.spill(store, keep, bytes),
            Kind::Lifo(stack) => stack.spill(store, keep, bytes),
            Kind::Priority(lanes) => {
                let mut keep = keep;
                for lane in lanes.values_mut() {
                    let in_memory = lane.head.len() + lane.tail.len();
                    lane.spill(store, keep, bytes)?;
                    keep = keep.saturating_sub(in_memory);
                }
                Ok(())
            }
        }
    }

    /// Removes and returns the requests for which `drop` is true, keeping the order of the
    /// rest; spilled requests are read back, filtered and spilled again.
    pub fn remove_where(
        &mut self,
        drop: impl Fn(&CrawlRequest) -> bool,
        mut store: Option<&mut SpillStore>,
        host: &Arc<str>,
    ) -> (Vec<CrawlRequest>, Option<Lost>) {
        let mut out = Removed { drop: &drop, removed: Vec::new(), lost: None };
        let bytes = &mut self.bytes;
        match &mut self.kind {
            Kind::Fifo(lane) => lane.remove_where(&mut out, store, host, bytes),
            Kind::Lifo(stack) => stack.remove_where(&mut out, store, host, bytes),
            Kind::Priority(lanes) => {
                for lane in lanes.values_mut() {
                    lane.remove_where(&mut out, store.as_deref_mut(), host, bytes);
                }
                lanes.retain(|_, lane| !lane.is_empty());
            }
        }
        self.len -= out.removed.len() + out.lost.as_ref().map_or(0, |l| l.count);
        (out.removed, out.lost)
    }
}

/// What [`Backlog::remove_where`] collects.
struct Removed<'a> {
    drop: &'a dyn Fn(&CrawlRequest) -> bool,
    removed: Vec<CrawlRequest>,
    lost: Option<Lost>,
}

impl Removed<'_> {
    /// Keeps what stays of `requests`, taking the rest out (and, for requests in memory,
    /// their bytes off `bytes`).
    fn filter(
        &mut self,
        requests: impl IntoIterator<Item = CrawlRequest>,
        mut bytes: Option<&mut usize>,
    ) -> Vec<CrawlRequest> {
        let mut kept = Vec::new();
        for r in requests {
            if (self.drop)(&r) {
                if let Some(bytes) = bytes.as_deref_mut() {
                    *bytes -= request_bytes(&r);
                }
                self.removed.push(r);
            } else {
                kept.push(r);
            }
        }
        kept
    }

    /// Reads spilled extents back, filters them and spills what stays (in the same order).
    fn filter_spilled(
        &mut self,
        extents: impl IntoIterator<Item = Extent>,
        store: Option<&mut SpillStore>,
        host: &Arc<str>,
    ) -> Vec<Extent> {
        let Some(store) = store else {
            // Extents exist only with a store; without one they cannot be read.
            for extent in extents {
                note_lost(&mut self.lost, extent.count(), io::Error::other("no spill store"));
            }
            return Vec::new();
        };
        let mut kept_extents = Vec::new();
        for extent in extents {
            match store.read(extent, host) {
                Ok(requests) => {
                    let kept = self.filter(requests, None);
                    if kept.is_empty() {
                        continue;
                    }
                    match store.write(&kept) {
                        Ok(e) => kept_extents.push(e),
                        Err(error) => note_lost(&mut self.lost, kept.len(), error),
                    }
                }
                Err(error) => note_lost(&mut self.lost, extent.count(), error),
            }
        }
        kept_extents
    }
}

fn note_lost(lost: &mut Option<Lost>, count: usize, error: io::Error) {
    match lost {
        Some(l) => l.count += count,
        None => *lost = Some(Lost { count, error }),
    }
}

/// Writes `requests` to `store` in extents, in order, all or none: on an error the
/// extents written are let go and the requests are given back with the error.
fn write_extents(
    store: &mut SpillStore,
    requests: Vec<CrawlRequest>,
    bytes: &mut usize,
) -> Result<Vec<Extent>, (io::Error, Vec<CrawlRequest>)> {
    let mut extents = Vec::with_capacity(requests.len().div_ceil(EXTENT_REQUESTS));
    for chunk in requests.chunks(EXTENT_REQUESTS) {
        match store.write(chunk) {
            Ok(e) => extents.push(e),
            Err(error) => {
                extents.into_iter().for_each(|e| store.release(e));
                return Err((error, requests));
            }
        }
    }
    *bytes -= requests.iter().map(request_bytes).sum::<usize>();
    Ok(extents)
}

/// Reads the extent `extent` back, or notes it lost.
fn read_back(
    store: Option<&mut SpillStore>,
    extent: Extent,
    host: &Arc<str>,
    lost: &mut Option<Lost>,
    bytes: &mut usize,
) -> Vec<CrawlRequest> {
    let result = match store {
        Some(store) => store.read(extent, host),
        None => Err(io::Error::other("no spill store")),
    };
    match result {
        Ok(requests) => {
            *bytes += requests.iter().map(request_bytes).sum::<usize>();
            requests
        }
        Err(error) => {
            note_lost(lost, extent.count(), error);
            Vec::new()
        }
    }
}

/// A fifo line: `head ++ spilled ++ tail`.
#[derive(Debug, Default)]
struct Lane {
    head: VecDeque<CrawlRequest>,
    spilled: VecDeque<Extent>,
    tail: VecDeque<CrawlRequest>,
}

impl Lane {
    fn is_empty(&self) -> bool {
        self.head.is_empty() && self.spilled.is_empty() && self.tail.is_empty()
    }

    fn any_url(&self) -> Option<&Url> {
        self.head.front().or(self.tail.front()).map(|r| &r.url)
    }

    fn pop(
        &mut self,
        mut store: Option<&mut SpillStore>,
        host: &Arc<str>,
        lost: &mut Option<Lost>,
        bytes: &mut usize,
    ) -> Option<CrawlRequest> {
        loop {
            if let Some(r) = self.head.pop_front() {
                *bytes -= request_bytes(&r);
                return Some(r);
            }
            match self.spilled.pop_front() {
                Some(extent) => self.head = read_back(store.as_deref_mut(), extent, host, lost, bytes).into(),
                None if self.tail.is_empty() => return None,
                None => std::mem::swap(&mut self.head, &mut self.tail),
            }
        }
    }

    fn spill(&mut self, store: &mut SpillStore, keep: usize, bytes: &mut usize) -> io::Result<()> {
        if self.spilled.is_empty() {
            // The tail's front is next after the head: the first of it to keep join the head.
            let wanted = keep.saturating_sub(self.head.len()).min(self.tail.len());
            self.head.extend(self.tail.drain(..wanted));
        }
        if !self.tail.is_empty() {
            let tail: Vec<CrawlRequest> = std::mem::take(&mut self.tail).into();
            match write_extents(store, tail, bytes) {
                Ok(extents) => self.spilled.extend(extents),
                Err((error, tail)) => {
                    self.tail = tail.into();
                    return Err(error);
                }
            }
        }
        if self.head.len() > keep {
            let rest: Vec<CrawlRequest> = self.head.split_off(keep).into();
            match write_extents(store, rest, bytes) {
                Ok(extents) => extents.into_iter().rev().for_each(|e| self.spilled.push_front(e)),
                Err((error, rest)) => {
                    self.head.extend(rest);
                    return Err(error);
                }
            }
            self.head.shrink_to_fit();
        }
        Ok(())
    }

    fn remove_where(
        &mut self,
        out: &mut Removed<'_>,
        store: Option<&mut SpillStore>,
        host: &Arc<str>,
        bytes: &mut usize,
    ) {
        self.head = out.filter(self.head.drain(..), Some(bytes)).into();
        let extents: Vec<Extent> = self.spilled.drain(..).collect();
        self.spilled = out.filter_spilled(extents, store, host).into();
        self.tail = out.filter(self.tail.drain(..), Some(bytes)).into();
    }
}

/// A lifo stack: `spilled ++ top`.
#[derive(Debug, Default)]
struct Stack {
    spilled: Vec<Extent>,
    top: Vec<CrawlRequest>,
}

impl Stack {
    fn pop(
        &mut self,
        mut store: Option<&mut SpillStore>,
        host: &Arc<str>,
        lost: &mut Option<Lost>,
        bytes: &mut usize,
    ) -> Option<CrawlRequest> {
        loop {
            if let Some(r) = self.top.pop() {
                *bytes -= request_bytes(&r);
                return Some(r);
            }
            let extent = self.spilled.pop()?;
            self.top = read_back(store.as_deref_mut(), extent, host, lost, bytes);
        }
    }

    fn spill(&mut self, store: &mut SpillStore, keep: usize, bytes: &mut usize) -> io::Result<()> {
        if self.top.len() <= keep {
            return Ok(());
        }
        let newest = self.top.split_off(self.top.len() - keep);
        let older = std::mem::replace(&mut self.top, newest);
        match write_extents(store, older, bytes) {
            Ok(extents) => {
                self.spilled.extend(extents);
                self.top.shrink_to_fit();
                Ok(())
            }
            Err((error, mut older)) => {
                older.append(&mut self.top);
                self.top = older;
                Err(error)
            }
        }
    }

    fn remove_where(
        &mut self,
        out: &mut Removed<'_>,
        store: Option<&mut SpillStore>,
        host: &Arc<str>,
        bytes: &mut usize,
    ) {
        let extents = std::mem::take(&mut self.spilled);
        self.spilled = out.filter_spilled(extents, store, host);
        self.top = out.filter(self.top.drain(..), Some(bytes));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crawl::urls;

    fn req(n: u32) -> CrawlRequest {
        let url = Url::parse(&format!("http://a.test/{n}")).expect("url");
        CrawlRequest {
            fingerprint: urls::fingerprint(&url),
            url,
            host: "a.test".into(),
            depth: n % 7,
            redirect_chain: vec![],
            queue: Default::default(),
        }
    }

    fn number(r: &CrawlRequest) -> u32 {
        r.url.path()[1..].parse().expect("a number")
    }

    /// The order without any spill: which of the waiting (number, priority) comes next.
    fn next_of(order: QueueOrder, model: &[(u32, i32)]) -> Option<usize> {
        let indexed = model.iter().enumerate();
        match order {
            QueueOrder::Fifo => (!model.is_empty()).then_some(0),
            QueueOrder::Lifo => model.len().checked_sub(1),
            QueueOrder::Priority => {
                indexed.max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(&a.0))).map(|(i, _)| i)
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(i32),
        Pop,
        Spill(usize),
        RemoveMultiplesOf(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0i32..3).prop_map(Op::Push),
            3 => Just(Op::Pop),
            1 => (0usize..20).prop_map(Op::Spill),
            1 => (2u32..9).prop_map(Op::RemoveMultiplesOf),
        ]
    }

    fn order() -> impl Strategy<Value = QueueOrder> {
        prop_oneof![Just(QueueOrder::Fifo), Just(QueueOrder::Lifo), Just(QueueOrder::Priority)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Spills at any moment change nothing: every request comes out once, in the order
        /// an unspilled backlog gives, and the memory count is exact.
        #[test]
        fn spills_keep_the_order_and_lose_nothing(order in order(), ops in proptest::collection::vec(op(), 0..1500)) {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut store = SpillStore::new(dir.path().join("spill"));
            let host: Arc<str> = "a.test".into();
            let mut backlog = Backlog::new(order);
            let mut model: Vec<(u32, i32)> = Vec::new();
            let mut n = 0;
            for op in ops {
                match op {
                    Op::Push(priority) => {
                        n += 1;
                        backlog.push(req(n), priority);
                        model.push((n, priority));
                    }
                    Op::Pop => {
                        let (got, lost) = backlog.pop(Some(&mut store), &host);
                        prop_assert!(lost.is_none());
                        let want = next_of(order, &model).map(|i| model.remove(i).0);
                        prop_assert_eq!(got.as_ref().map(number), want);
                    }
                    Op::Spill(keep) => backlog.spill(&mut store, keep).expect("spill"),
                    Op::RemoveMultiplesOf(k) => {
                        let (removed, lost) = backlog.remove_where(|r| number(r) % k == 0, Some(&mut store), &host);
                        prop_assert!(lost.is_none());
                        let mut removed: Vec<u32> = removed.iter().map(number).collect();
                        removed.sort_unstable();
                        let want: Vec<u32> = model.iter().map(|m| m.0).filter(|m| m % k == 0).collect();
                        model.retain(|m| m.0 % k != 0);
                        let mut want = want;
                        want.sort_unstable();
                        prop_assert_eq!(removed, want);
                    }
                }
                prop_assert_eq!(backlog.len, model.len());
            }
            while let (Some(r), None) = backlog.pop(Some(&mut store), &host) {
                let want = next_of(order, &model).map(|i| model.remove(i).0);
                prop_assert_eq!(Some(number(&r)), want);
            }
            prop_assert!(model.is_empty());
            prop_assert_eq!(backlog.memory_bytes(), 0);
            prop_assert_eq!(store.bytes(), 0, "every extent was read back");
        }
    }

    #[test]
    fn a_spill_keeps_only_the_next_few_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SpillStore::new(dir.path().join("spill"));
        let mut backlog = Backlog::new(QueueOrder::Fifo);
        for n in 0..10_000 {
            backlog.push(req(n), 0);
        }
        let full = backlog.memory_bytes();
        backlog.spill(&mut store, 16).expect("spill");
        assert_eq!(backlog.len, 10_000);
        assert_eq!(backlog.memory_bytes(), (0..16).map(|n| request_bytes(&req(n))).sum::<usize>());
        assert!(backlog.memory_bytes() * 100 < full);
        assert!(store.bytes() > 0);
    }

    #[test]
    fn an_unreadable_extent_is_reported_lost_and_the_rest_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SpillStore::new(dir.path().join("spill"));
        let host: Arc<str> = "a.test".into();
        let mut backlog = Backlog::new(QueueOrder::Fifo);
        for n in 0..600 {
            backlog.push(req(n), 0);
        }
        backlog.spill(&mut store, 0).expect("spill");
        drop(store); // the files go: every extent is unreadable now
        let mut other = SpillStore::new(dir.path().join("other"));
        let (got, lost) = backlog.pop(Some(&mut other), &host);
        assert!(got.is_none());
        assert_eq!(lost.map(|l| l.count), Some(600));
        assert!(backlog.is_empty());
    }
}
