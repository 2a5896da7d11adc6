//! The request log: when each request arrived and for what, so tests can check an upper
//! bound on a crawler's rate ("never more than N requests in any window") from the server's
//! side, where no client-side clock or counter can flatter it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Most records kept; older ones are dropped (and counted) first.
pub const REQUEST_LOG_CAPACITY: usize = 200_000;

/// One request the sandbox received (`/_sandbox/` ones are not logged).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived, in milliseconds since the Unix epoch.
    pub t_ms: u64,
    /// Its path, with the query if it had one (`/item/3`, `/category/books?page=2`).
    pub path: String,
}

/// The log as `/_sandbox/requests.json` serves it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestLogSnapshot {
    /// Records dropped because the log was full (the oldest go first).
    pub dropped: u64,
    /// The requests kept, in arrival order.
    pub requests: Vec<RequestRecord>,
}

impl RequestLogSnapshot {
    /// The most requests whose path satisfies `select` that arrived within any window of
    /// `window_ms` milliseconds (a sliding window over the arrival times).
    pub fn max_in_window(&self, window_ms: u64, select: impl Fn(&str) -> bool) -> usize {
        let times: Vec<u64> = self.requests.iter().filter(|r| select(&r.path)).map(|r| r.t_ms).collect();
        let mut most = 0;
        let mut start = 0;
        for (end, &t) in times.iter().enumerate() {
            while t.saturating_sub(times[start]) >= window_ms {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }
}

/// A bounded, thread-safe log of arrivals.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    dropped: u64,
    records: VecDeque<RequestRecord>,
}

impl RequestLog {
    /// Records that a request for `path` arrived now.
    pub(crate) fn record(&self, path: String) {
        let t_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.records.len() >= REQUEST_LOG_CAPACITY {
            inner.records.pop_front();
            inner.dropped += 1;
        }
        inner.records.push_back(RequestRecord { t_ms, path });
    }

    pub(crate) fn snapshot(&self) -> RequestLogSnapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        RequestLogSnapshot { dropped: inner.dropped, requests: inner.records.iter().cloned().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(times: &[u64]) -> RequestLogSnapshot {
        RequestLogSnapshot {
            dropped: 0,
            requests: times.iter().map(|&t| RequestRecord { t_ms: t, path: format!("/item/{t}") }).collect(),
        }
    }

    #[test]
    fn the_busiest_window_is_found() {
        let l = log(&[0, 100, 999, 1000, 1001, 1500, 5000]);
        // [100, 1099] holds 100, 999, 1000, 1001; [0, 999] holds 3.
        assert_eq!(l.max_in_window(1000, |_| true), 4);
        assert_eq!(l.max_in_window(1, |_| true), 1);
        assert_eq!(l.max_in_window(10_000, |_| true), 7);
        assert_eq!(l.max_in_window(1000, |p| p == "/item/5000"), 1);
        assert_eq!(log(&[]).max_in_window(1000, |_| true), 0);
    }

    #[test]
    fn a_full_log_drops_the_oldest_and_counts_them() {
        let l = RequestLog::default();
        for i in 0..REQUEST_LOG_CAPACITY + 3 {
            l.record(format!("/{i}"));
        }
        let s = l.snapshot();
        assert_eq!(s.dropped, 3);
        assert_eq!(s.requests.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(s.requests[0].path, "/3");
    }
}
