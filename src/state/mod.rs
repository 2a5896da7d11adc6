//! Durable crawl state for `--state-dir`: the seen-set, the requests admitted and not yet
//! durably done, and each sink's committed position, in one embedded redb database.
//!
//! Every change goes in through [`StateStore::commit`], one transaction at a time, so after
//! `kill -9` the store holds exactly some committed prefix of the run. A request leaves the
//! pending table only in the same transaction that records the sink positions holding its
//! items: on resume, pending requests are fetched again, and each sink cuts what it wrote
//! past its committed position, so every item is written exactly once.
//!
//! ```
//! use arachne::state::{Batch, StateStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = StateStore::open(dir.path())?;
//! assert!(!store.load()?.started, "a new directory holds no run");
//! store.commit(&Batch { sink_positions: vec![("items".into(), 42)], mark_started: true, ..Default::default() })?;
//! drop(store);
//!
//! let resume = StateStore::open(dir.path())?.load()?;
//! assert!(resume.started);
//! assert_eq!(resume.sink_positions["items"], 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

#[cfg(feature = "state")]
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::crawl::urls::Fingerprint;

#[cfg(feature = "state")]
const SEEN: TableDefinition<u128, ()> = TableDefinition::new("seen");
#[cfg(feature = "state")]
const PENDING: TableDefinition<u128, &[u8]> = TableDefinition::new("pending");
#[cfg(feature = "state")]
const SINKS: TableDefinition<&str, u64> = TableDefinition::new("sink_positions");
#[cfg(feature = "state")]
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// redb's page cache (its default, 1 GiB, would let the process grow with the store: the
/// seen-set and pending requests of a large crawl are read through it only on resume).
#[cfg(feature = "state")]
const CACHE_BYTES: usize = 8 << 20;
#[cfg(feature = "state")]
/// The META key of the in-process sandbox's port.
const SANDBOX_PORT: &str = "sandbox_port";

/// A request as it is kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The normalised URL.
    pub url: String,
    /// Its link depth.
    pub depth: u32,
    /// The redirect chain that led to it.
    pub redirect_chain: Vec<u128>,
}

/// What a previous run left (the seen-set and the pending requests are read one at a time
/// by [`StateStore::for_each_seen`] and [`StateStore::for_each_pending`]: a large crawl's
/// never sit in memory whole).
#[derive(Debug, Default)]
pub struct Resume {
    /// Whether a run with this state directory was started before.
    pub started: bool,
    /// Fingerprints already admitted.
    pub seen: u64,
    /// Requests admitted and not durably done.
    pub pending: u64,
    /// Committed byte positions of the sinks, by sink name.
    pub sink_positions: HashMap<String, u64>,
    /// The port of the run's in-process sandbox (`sandbox:` with a free port): its URLs are
    /// reachable again only there.
    pub sandbox_port: Option<u16>,
}

/// Changes to commit in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// Newly admitted requests (also added to the seen-set).
    pub admitted: Vec<(Fingerprint, PendingRequest)>,
    /// Requests durably done (their items are within the sink positions below).
    pub done: Vec<Fingerprint>,
    /// Sink positions that hold every item of `done`.
    pub sink_positions: Vec<(String, u64)>,
    /// Marks the state as belonging to a started run.
    pub mark_started: bool,
}

impl Batch {
    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.admitted.is_empty()
            && self.done.is_empty()
            && self.sink_positions.is_empty()
            && !self.mark_started
    }
}

/// The store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StateError {
    path: String,
    message: String,
}

/// The crawl's durable state.
#[cfg(feature = "state")]
pub struct StateStore {
    db: Database,
    path: String,
}

#[cfg(feature = "state")]
impl StateStore {
    /// Opens (or creates) `dir/state.redb`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join("state.redb");
        let shown = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| StateError { path: shown.clone(), message: e.to_string() };
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path).map_err(|e| err(&e))?;
        let store = Self { db, path: shown.clone() };
        // Create the tables so reads never meet a missing one.
        store.write(|_| Ok(()))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError { path: self.path.clone(), message: e.to_string() }
    }

    /// Reads what a previous run left.
    pub fn load(&self) -> Result<Resume, StateError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = tx.open_table(META).map_err(|e| self.err(e))?;
        let started = meta.get("started").map_err(|e| self.err(e))?.is_some();
        let sandbox_port = meta.get(SANDBOX_PORT).map_err(|e| self.err(e))?.map(|v| v.value() as u16);
        let mut resume = Resume { started, sandbox_port, ..Resume::default() };
        resume.seen = tx.open_table(SEEN).map_err(|e| self.err(e))?.len().map_err(|e| self.err(e))?;
        resume.pending = tx.open_table(PENDING).map_err(|e| self.err(e))?.len().map_err(|e| self.err(e))?;
        let sinks = tx.open_table(SINKS).map_err(|e| self.err(e))?;
        for entry in sinks.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            resume.sink_positions.insert(k.value().to_string(), v.value());
        }
        Ok(resume)
    }

    /// Calls `f` with every fingerprint of the seen-set.
    pub fn for_each_seen(&self, mut f: impl FnMut(Fingerprint)) -> Result<(), StateError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let seen = tx.open_table(SEEN).map_err(|e| self.err(e))?;
        for entry in seen.iter().map_err(|e| self.err(e))? {
            let (k, _) = entry.map_err(|e| self.err(e))?;
            f(Fingerprint(k.value()));
        }
        Ok(())
    }

    /// Calls `f` with every pending request (an unreadable one is skipped with a warning).
    pub fn for_each_pending(&self, mut f: impl FnMut(PendingRequest)) -> Result<(), StateError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let pending = tx.open_table(PENDING).map_err(|e| self.err(e))?;
        for entry in pending.iter().map_err(|e| self.err(e))? {
            let (_, v) = entry.map_err(|e| self.err(e))?;
            match serde_json::from_slice::<PendingRequest>(v.value()) {
                Ok(r) => f(r),
                Err(e) => tracing::warn!("state store: skipping an unreadable pending request: {e}"),
            }
        }
        Ok(())
    }

    /// Commits a batch in one durable transaction.
    pub fn commit(&self, batch: &Batch) -> Result<(), StateError> {
        self.write(|tx| {
            {
                let mut seen = tx.open_table(SEEN)?;
                let mut pending = tx.open_table(PENDING)?;
                for (fp, request) in &batch.admitted {
                    seen.insert(fp.0, ())?;
                    let bytes = serde_json::to_vec(request).unwrap_or_default();
                    pending.insert(fp.0, bytes.as_slice())?;
                }
                for fp in &batch.done {
                    pending.remove(fp.0)?;
                }
            }
            let mut sinks = tx.open_table(SINKS)?;
            for (name, position) in &batch.sink_positions {
                sinks.insert(name.as_str(), *position)?;
            }
            if batch.mark_started {
                tx.open_table(META)?.insert("started", 1)?;
            }
            Ok(())
        })
    }

    /// Records the port the run's in-process sandbox listens on, for a resume to reuse.
    pub fn set_sandbox_port(&self, port: u16) -> Result<(), StateError> {
        self.write(|tx| {
            tx.open_table(META)?.insert(SANDBOX_PORT, u64::from(port))?;
            Ok(())
        })
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<(), StateError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            tx.open_table(SEEN).map_err(|e| self.err(e))?;
            tx.open_table(PENDING).map_err(|e| self.err(e))?;
            tx.open_table(SINKS).map_err(|e| self.err(e))?;
            tx.open_table(META).map_err(|e| self.err(e))?;
        }
        f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }
}

#[cfg(feature = "state")]
impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("path", &self.path).finish()
    }
}

/// The crawl's durable state, in a build without the `state` feature: [`StateStore::open`]
/// says so (`--state-dir` is then a clear error at start), and no store can exist.
#[cfg(not(feature = "state"))]
#[derive(Debug)]
pub struct StateStore {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "state"))]
impl StateStore {
    /// Always an error: this build has no state store.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        Err(StateError {
            path: dir.display().to_string(),
            message: "this build has no state support: rebuild with --features state".into(),
        })
    }

    /// What a previous run left (never called: no store exists).
    pub fn load(&self) -> Result<Resume, StateError> {
        match self.never {}
    }

    /// Commits `batch` (never called: no store exists).
    pub fn commit(&self, _: &Batch) -> Result<(), StateError> {
        match self.never {}
    }

    /// Records the sandbox's port (never called: no store exists).
    pub fn set_sandbox_port(&self, _: u16) -> Result<(), StateError> {
        match self.never {}
    }

    /// Calls `f` with every seen fingerprint (never called: no store exists).
    pub fn for_each_seen(&self, _: impl FnMut(Fingerprint)) -> Result<(), StateError> {
        match self.never {}
    }

    /// Calls `f` with every pending request (never called: no store exists).
    pub fn for_each_pending(&self, _: impl FnMut(PendingRequest)) -> Result<(), StateError> {
        match self.never {}
    }
}

#[cfg(all(test, feature = "state"))]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = StateStore::open(dir.path()).expect("open");
            assert!(!store.load().expect("load").started);
            let req = |u: &str| PendingRequest { url: u.into(), depth: 1, redirect_chain: vec![] };
            store
                .commit(&Batch {
                    admitted: vec![(Fingerprint(1), req("http://a/1")), (Fingerprint(2), req("http://a/2"))],
                    done: vec![],
                    sink_positions: vec![],
                    mark_started: true,
                })
                .expect("commit");
            store
                .commit(&Batch {
                    admitted: vec![],
                    done: vec![Fingerprint(1)],
                    sink_positions: vec![("jsonl:items.jsonl".into(), 42)],
                    mark_started: false,
                })
                .expect("commit");
        }
        let store = StateStore::open(dir.path()).expect("reopen");
        let resume = store.load().expect("load");
        assert!(resume.started);
        assert_eq!((resume.seen, resume.pending), (2, 1));
        let mut seen = Vec::new();
        store.for_each_seen(|fp| seen.push(fp)).expect("seen");
        assert_eq!(seen, vec![Fingerprint(1), Fingerprint(2)]);
        let mut pending = Vec::new();
        store.for_each_pending(|r| pending.push(r)).expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].url, "http://a/2");
        assert_eq!(resume.sink_positions["jsonl:items.jsonl"], 42);
    }
}

#[cfg(all(test, not(feature = "state")))]
mod not_built_tests {
    #[test]
    fn opening_says_the_feature_is_missing() {
        let err = super::StateStore::open(std::path::Path::new("state")).err().expect("refused");
        assert_eq!(
            err.to_string(),
            "state store state: this build has no state support: rebuild with --features state"
        );
    }
}
