//! Reading a sink's results after the run: [`SharedSink`].

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::crawl::{Item, ItemSink};

/// A sink the program keeps a handle to: give the run a clone
/// ([`RuntimeBuilder::sink`](super::RuntimeBuilder::sink)), read the sink through the
/// handle during or after the run.
///
/// ```no_run
/// use arachne::crawl::Item;
/// use arachne::runtime::{Runtime, SharedSink};
///
/// # fn demo(spec: arachne::spec::CrawlSpec) -> Result<(), Box<dyn std::error::Error>> {
/// let memory = SharedSink::new(Vec::<Item>::new()); // a Vec<Item> is a sink
/// Runtime::builder(spec).sink("memory", memory.clone()).run()?;
/// println!("{} items", memory.lock().len());
/// # Ok(()) }
/// ```
pub struct SharedSink<S>(Arc<Mutex<S>>);

impl<S> Clone for SharedSink<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for SharedSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_tuple("SharedSink").field(&*sink).finish()
    }
}

impl<S: ItemSink> SharedSink<S> {
    /// Shares `sink`.
    pub fn new(sink: S) -> Self {
        Self(Arc::new(Mutex::new(sink)))
    }

    /// The sink (waits while the run writes to it).
    pub fn lock(&self) -> MutexGuard<'_, S> {
        // A panic while writing leaves a sink as a failed write would: still readable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sink itself, once the run (which holds a clone) is over; `Err(self)` while
    /// another handle exists.
    pub fn into_inner(self) -> Result<S, Self> {
        Arc::try_unwrap(self.0).map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())).map_err(Self)
    }
}

impl<S: ItemSink> ItemSink for SharedSink<S> {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.lock().write(item)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }

    fn position(&self) -> Option<u64> {
        self.lock().position()
    }
}

/// Items kept in memory, in the order they were written.
impl ItemSink for Vec<Item> {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.push(item.clone());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
