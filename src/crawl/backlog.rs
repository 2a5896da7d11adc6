//! One host's waiting requests, in the frontier's order: `fifo` (breadth-first), `lifo`
//! (depth-first) or `priority` (highest first, fifo among equals).

use std::collections::{BinaryHeap, VecDeque};

use url::Url;

use super::messages::CrawlRequest;
use crate::spec::QueueOrder;

/// A host's backlog.
#[derive(Debug)]
pub enum Backlog {
    /// First in, first out.
    Fifo(VecDeque<CrawlRequest>),
    /// Last in, first out.
    Lifo(Vec<CrawlRequest>),
    /// By priority, then arrival.
    Priority(BinaryHeap<Ranked>, u64),
}

/// A request with its rank in a priority backlog.
#[derive(Debug)]
pub struct Ranked {
    priority: i32,
    seq: u64,
    request: CrawlRequest,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    /// The heap's top is the highest priority, and among equals the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl Backlog {
    /// An empty backlog in `order`.
    pub fn new(order: QueueOrder) -> Self {
        match order {
            QueueOrder::Fifo => Backlog::Fifo(VecDeque::new()),
            QueueOrder::Lifo => Backlog::Lifo(Vec::new()),
            QueueOrder::Priority => Backlog::Priority(BinaryHeap::new(), 0),
        }
    }

    /// Adds a request (`priority` matters only in a priority backlog).
    pub fn push(&mut self, request: CrawlRequest, priority: i32) {
        match self {
            Backlog::Fifo(q) => q.push_back(request),
            Backlog::Lifo(s) => s.push(request),
            Backlog::Priority(h, seq) => {
                *seq += 1;
                h.push(Ranked { priority, seq: *seq, request });
            }
        }
    }

    /// The next request.
    pub fn pop(&mut self) -> Option<CrawlRequest> {
        match self {
            Backlog::Fifo(q) => q.pop_front(),
            Backlog::Lifo(s) => s.pop(),
            Backlog::Priority(h, _) => h.pop().map(|r| r.request),
        }
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        match self {
            Backlog::Fifo(q) => q.len(),
            Backlog::Lifo(s) => s.len(),
            Backlog::Priority(h, _) => h.len(),
        }
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The URL of some waiting request.
    pub fn any_url(&self) -> Option<&Url> {
        match self {
            Backlog::Fifo(q) => q.front().map(|r| &r.url),
            Backlog::Lifo(s) => s.last().map(|r| &r.url),
            Backlog::Priority(h, _) => h.peek().map(|r| &r.request.url),
        }
    }

    /// Removes and returns the requests for which `drop` is true, keeping the order of the rest.
    pub fn remove_where(&mut self, drop: impl Fn(&CrawlRequest) -> bool) -> Vec<CrawlRequest> {
        let mut removed = Vec::new();
        match self {
            Backlog::Fifo(q) => {
                let (out, keep): (VecDeque<_>, VecDeque<_>) = q.drain(..).partition(|r| drop(r));
                *q = keep;
                removed.extend(out);
            }
            Backlog::Lifo(s) => {
                let (out, keep): (Vec<_>, Vec<_>) = s.drain(..).partition(|r| drop(r));
                *s = keep;
                removed.extend(out);
            }
            Backlog::Priority(h, _) => {
                let (out, keep): (Vec<_>, Vec<_>) =
                    std::mem::take(h).into_vec().into_iter().partition(|r| drop(&r.request));
                *h = keep.into();
                removed.extend(out.into_iter().map(|r| r.request));
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crawl::urls;

    fn req(path: &str) -> CrawlRequest {
        let url = Url::parse(&format!("http://a.test/{path}")).expect("url");
        CrawlRequest {
            fingerprint: urls::fingerprint(&url),
            url,
            host: "a.test".into(),
            depth: 0,
            redirect_chain: vec![],
            queue: Default::default(),
        }
    }

    fn order_of(order: QueueOrder, items: &[(&str, i32)]) -> Vec<String> {
        let mut b = Backlog::new(order);
        for (p, prio) in items {
            b.push(req(p), *prio);
        }
        let removed = b.remove_where(|r| r.url.path() == "/x");
        assert_eq!(removed.len(), 1);
        std::iter::from_fn(|| b.pop()).map(|r| r.url.path().to_string()).collect()
    }

    #[test]
    fn orders() {
        let items = [("a", 0), ("x", 9), ("b", 5), ("c", 5)];
        assert_eq!(order_of(QueueOrder::Fifo, &items), ["/a", "/b", "/c"]);
        assert_eq!(order_of(QueueOrder::Lifo, &items), ["/c", "/b", "/a"]);
        assert_eq!(order_of(QueueOrder::Priority, &items), ["/b", "/c", "/a"]);
    }
}
