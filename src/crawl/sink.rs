//! Sinks: where items end up. The [`ItemSink`] trait (a user's own sink, or the built-in
//! [`JsonlSink`] and [`StdoutSink`]) and the Sink actor that feeds one from the `items` topic.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{Item, PageItems};
use super::scheduler::Durable;
use super::urls::Fingerprint;
use crate::bus::Subscription;

/// Writes items somewhere. Called from one actor, one item at a time.
pub trait ItemSink: Send + 'static {
    /// Takes one item. After an error this sink is given no more items (the crawl goes on
    /// for the other sinks), and once the crawl has drained the run returns
    /// [`RunError::Sink`](crate::runtime::RunError::Sink) naming it (the `arachne` binary
    /// then exits with status 1).
    fn write(&mut self, item: &Item) -> io::Result<()>;
    /// Makes what was written durable (called every second and at the end).
    fn flush(&mut self) -> io::Result<()>;
    /// Where the sink stands after its last flush (bytes, for files), if it can be cut back
    /// to such a position on resume. Sinks with a position give exactly-once output with
    /// `--state-dir`; others are at-least-once.
    fn position(&self) -> Option<u64> {
        None
    }
}

/// Bytes buffered before a write; writes always end on a line boundary.
const BUFFER: usize = 64 * 1024;

/// One JSON object a line, in a file: a fresh run starts it anew ([`JsonlSink::create`]), a
/// run resumed with `--state-dir` cuts it back to its committed position and appends
/// ([`JsonlSink::resume`]).
pub struct JsonlSink {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Bytes in the file once the buffer is written.
    written: u64,
}

impl JsonlSink {
    /// Creates (or empties) the file.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self { path: path.to_path_buf(), file, buffer: Vec::with_capacity(BUFFER), written: 0 })
    }

    /// Opens the file to append after a resumed run's committed `position`: whatever was
    /// written past it belongs to pages that will be fetched again, and is cut.
    pub fn resume(path: &Path, position: u64) -> io::Result<Self> {
        let mut sink = Self::append(path)?;
        if sink.written > position {
            tracing::info!(path = %path.display(), cut = sink.written - position, "cutting uncommitted items");
            sink.file.set_len(position)?;
            sink.written = position;
        } else if sink.written < position {
            tracing::warn!(path = %path.display(), "output is shorter than its committed position: was it edited?");
        }
        Ok(sink)
    }

    /// Opens the file to append, first cutting a torn last line (left by a crash) so every
    /// line stays a whole JSON object.
    pub fn append(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let keep = whole_lines_len(&mut file, len)?;
            if keep < len {
                tracing::warn!(path = %path.display(), cut = len - keep, "cut a torn last line");
                file.set_len(keep)?;
            }
        }
        let written = file.metadata()?.len();
        Ok(Self { path: path.to_path_buf(), file, buffer: Vec::with_capacity(BUFFER), written })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the buffer (whole lines) or nothing: after a short write (a full disk) the
    /// file is cut back to its last whole line, and the buffered lines are dropped.
    fn write_out(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.buffer);
        let len = self.buffer.len() as u64;
        self.buffer.clear();
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(self.written) {
                tracing::error!(path = %self.path.display(), "could not cut a torn line: {cut}");
            }
            return Err(e);
        }
        self.written += len;
        Ok(())
    }
}

impl Drop for JsonlSink {
    /// Whole lines only: what is buffered is written, never a torn line.
    fn drop(&mut self) {
        if let Err(e) = self.write_out() {
            tracing::error!(path = %self.path.display(), "could not write the last items: {e}");
        }
    }
}

/// The length of the file up to and including its last newline.
fn whole_lines_len(file: &mut File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

impl ItemSink for JsonlSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        item.write_json_line(&mut self.buffer);
        if self.buffer.len() >= BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        // Durable against a machine crash too, before the state store records the position.
        self.file.sync_data()
    }

    fn position(&self) -> Option<u64> {
        Some(self.written)
    }
}

/// One JSON object a line on standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl ItemSink for StdoutSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        io::stdout().lock().write_all(&item.to_json_line())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

/// How a sink ended: the items it wrote, or its first error.
pub type SinkResult = Result<u64, SinkError>;

/// A sink's first error: the items after it were not written.
#[derive(Debug, thiserror::Error)]
#[error("sink '{sink}': {source}")]
pub struct SinkError {
    /// The sink's name.
    pub sink: String,
    /// What its `write` or `flush` returned.
    #[source]
    pub source: io::Error,
}

/// Feeds one [`ItemSink`] from its subscription to the `items` topic. After each flush it
/// tells the scheduler which pages are durably written (end-to-end acknowledgement); when
/// the topic closes it flushes and reports.
pub struct SinkActor {
    name: String,
    sink: Box<dyn ItemSink>,
    subscription: Arc<Subscription<PageItems>>,
    written: u64,
    /// Pages written since the last acknowledgement.
    pages: Vec<Fingerprint>,
    acks: Recipient<Durable>,
    error: Option<SinkError>,
    done: Option<oneshot::Sender<SinkResult>>,
    on_failure: Option<FailureHook>,
}

/// Called once when a sink fails for good, with the sink's name.
pub type FailureHook = Arc<dyn Fn(&str) + Send + Sync>;

impl SinkActor {
    /// A sink actor reading `subscription`; `acks` hears which pages are durable after each
    /// flush; `done` hears how it ended.
    pub fn new(
        name: impl Into<String>,
        sink: Box<dyn ItemSink>,
        subscription: Subscription<PageItems>,
        acks: Recipient<Durable>,
        done: oneshot::Sender<SinkResult>,
    ) -> Self {
        Self {
            name: name.into(),
            sink,
            subscription: Arc::new(subscription),
            written: 0,
            pages: Vec::new(),
            acks,
            error: None,
            done: Some(done),
            on_failure: None,
        }
    }

    /// Calls `hook` when the sink fails for good (a write or flush error): the runtime
    /// stops the crawl then, and gives the pages waiting for this sink back to a shared
    /// frontier, rather than crawl on with items that can go nowhere.
    pub fn on_failure(mut self, hook: FailureHook) -> Self {
        self.on_failure = Some(hook);
        self
    }

    fn fail(&mut self, e: io::Error) {
        tracing::error!(sink = %self.name, "sink failed: {e}");
        if self.error.is_none() {
            if let Some(hook) = &self.on_failure {
                hook(&self.name);
            }
        }
        self.error.get_or_insert_with(|| SinkError { sink: self.name.clone(), source: e });
    }

    /// Flushes and acknowledges the pages written since the last time.
    fn flush(&mut self) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.sink.flush() {
            return self.fail(e);
        }
        if !self.pages.is_empty() {
            let pages = std::mem::take(&mut self.pages);
            self.acks.do_send(Durable { sink: self.name.clone(), position: self.sink.position(), pages });
        }
    }
}

impl Actor for SinkActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(Subscription::shared_stream(self.subscription.clone()));
        ctx.run_interval(Duration::from_secs(1), |act, _| act.flush());
    }
}

/// A restart keeps the subscription and its buffer; the page being written when the sink
/// panicked is the only one lost (its acknowledgement too, so with `--state-dir` it is
/// fetched again on the next run).
impl Supervised for SinkActor {}

impl StreamHandler<Arc<PageItems>> for SinkActor {
    fn handle(&mut self, page: Arc<PageItems>, _: &mut Context<Self>) {
        if self.error.is_some() {
            return;
        }
        for item in &page.items {
            match self.sink.write(item) {
                Ok(()) => self.written += 1,
                Err(e) => return self.fail(e),
            }
        }
        self.pages.push(page.request.fingerprint);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.flush();
        if let Some(done) = self.done.take() {
            let _ = done.send(match self.error.take() {
                None => Ok(self.written),
                Some(e) => Err(e),
            });
        }
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_cuts_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("items.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").expect("write");
        let mut sink = JsonlSink::append(&path).expect("open");
        sink.flush().expect("flush");
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"a\":1}\n{\"a\":2}\n");
        std::fs::write(&path, b"torn").expect("write");
        JsonlSink::append(&path).expect("open");
        assert_eq!(std::fs::read(&path).expect("read"), b"");
    }
}
