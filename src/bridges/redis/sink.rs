//! `output: - redis: { key }`: each item RPUSHed as JSON to a Redis list.

use std::io;
use std::time::Duration;

use super::{BlockingConnection, BridgeError, RedisBroker};
use crate::crawl::{Item, ItemSink};

/// Items buffered before `write` sends them without waiting for the next flush.
const BATCH: usize = 1000;
/// Items per RPUSH command (a pipeline of such commands makes one flush).
const PER_COMMAND: usize = 250;
/// Attempts per send: the first, then reconnections after 100 ms and 400 ms.
const ATTEMPTS: u32 = 3;

/// Pushes each item, as one JSON object (the same text as a jsonl line, without the
/// newline), to the tail of a Redis list: scrapy-redis's `<name>:items` layout, read with
/// `LRANGE key 0 -1` or popped with `LPOP`/`BLPOP`.
///
/// `write` buffers; `flush` (every second, and at the end) sends what is buffered as one
/// pipeline of RPUSH commands and returns once Redis has answered, so the sink's
/// acknowledgement to the scheduler means "in Redis". It uses a blocking connection: the
/// [`ItemSink`] trait is synchronous and the sink runs on its own actor; the cost is one
/// round trip per flush (or per 1000 items), on the sink's arbiter thread. A failed send
/// reconnects and tries again (3 attempts); the items stay buffered until Redis took them,
/// so a reply lost in a broken connection can push them twice: **at least once**. There
/// is no position to cut back to on resume (`position()` is `None`).
pub struct RedisSink {
    broker: RedisBroker,
    key: String,
    conn: Option<BlockingConnection>,
    pending: Vec<Vec<u8>>,
    pushed: u64,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("url", &self.broker.masked_url())
            .field("key", &self.key)
            .field("pending", &self.pending.len())
            .field("pushed", &self.pushed)
            .finish()
    }
}

impl RedisSink {
    /// Connects (and PINGs) now, so that a wrong URL or password is an error before the
    /// crawl starts.
    pub fn connect(broker: &RedisBroker, key: impl Into<String>) -> Result<Self, BridgeError> {
        let conn = broker.blocking_store_connection()?;
        Ok(Self { broker: broker.clone(), key: key.into(), conn: Some(conn), pending: Vec::new(), pushed: 0 })
    }

    /// The list's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Items Redis has acknowledged so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The RPUSH commands of what is buffered, `PER_COMMAND` items each.
    fn commands(&self) -> Vec<redis::Cmd> {
        self.pending
            .chunks(PER_COMMAND)
            .map(|chunk| {
                let mut cmd = redis::cmd("RPUSH");
                cmd.arg(&self.key).arg(chunk);
                cmd
            })
            .collect()
    }

    fn send(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pipe = self.commands();
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1)));
            }
            let conn = match self.conn.as_mut() {
                Some(conn) => conn,
                None => match self.broker.blocking_store_connection() {
                    Ok(conn) => self.conn.insert(conn),
                    Err(e) => {
                        tracing::warn!(key = %self.key, attempt, "redis sink: {e}");
                        last = Some(e);
                        continue;
                    }
                },
            };
            match conn.send_all(&pipe) {
                Ok(()) => {
                    self.pushed += self.pending.len() as u64;
                    self.pending.clear();
                    return Ok(());
                }
                Err(e) => {
                    let e = self.broker.error(&e);
                    tracing::warn!(key = %self.key, attempt, "redis sink: RPUSH failed: {e}");
                    self.conn = None;
                    last = Some(e);
                }
            }
        }
        let e = last.map_or_else(|| "unknown error".to_string(), |e| e.to_string());
        Err(io::Error::other(format!(
            "could not push {} items to Redis list '{}': {e}",
            self.pending.len(),
            self.key
        )))
    }
}

impl ItemSink for RedisSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.pending.push(serde_json::to_vec(item).map_err(io::Error::other)?);
        if self.pending.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for RedisSink {
    /// Best effort, on the connection it has: the sink actor flushes at the end, so only
    /// an aborted run (escalation) gets here with items left.
    fn drop(&mut self) {
        if self.pending.is_empty() || self.conn.is_none() {
            return;
        }
        let pipe = self.commands();
        if let Some(conn) = self.conn.as_mut() {
            if let Err(e) = conn.send_all(&pipe) {
                tracing::error!(key = %self.key, "redis sink: {} items not pushed: {}", self.pending.len(), self.broker.error(&e));
            }
        }
    }
}
