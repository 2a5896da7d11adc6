//! The live progress line: on a terminal a line rewritten in place, otherwise a plain log
//! line every few seconds.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Stats;

/// Prints progress from [`Stats`] until dropped.
pub struct Progress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<std::thread::JoinHandle<()>>,
    /// On a terminal: set (under the stderr lock) when the line is cleared for good, so
    /// what is printed next (the `done:` line) starts on a clean line.
    cleared: Option<Arc<AtomicBool>>,
}

impl Progress {
    /// Starts reporting on standard error. `quiet` reports nothing.
    pub fn start(stats: Arc<Stats>, quiet: bool) -> Self {
        if quiet {
            return Self { stop: None, task: None, cleared: None };
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let tty = std::io::stderr().is_terminal();
        let cleared = tty.then(|| Arc::new(AtomicBool::new(false)));
        let done = cleared.clone();
        let period = if tty { Duration::from_millis(500) } else { Duration::from_secs(10) };
        let task = std::thread::Builder::new()
            .name("arachne-progress".into())
            .spawn(move || {
                let start = Instant::now();
                let mut last = (start, 0u64);
                loop {
                    std::thread::sleep(period);
                    if !matches!(rx.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)) {
                        break;
                    }
                    let now = Instant::now();
                    let fetched = stats.pages_fetched.load(Ordering::Relaxed);
                    let rate = (fetched - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                    last = (now, fetched);
                    let mut line = format!(
                        "{:>6.1}s  {} pages  {:.0} pages/s  {} items  {} queued  {} in flight  {} errors",
                        start.elapsed().as_secs_f64(),
                        fetched,
                        rate,
                        stats.items.load(Ordering::Relaxed),
                        stats.queued.load(Ordering::Relaxed),
                        stats.in_flight.load(Ordering::Relaxed),
                        stats.pages_failed.load(Ordering::Relaxed),
                    );
                    let restarts = stats.restarts.load(Ordering::Relaxed);
                    let redeliveries = stats.redeliveries.load(Ordering::Relaxed);
                    let dead = stats.dead_letters.load(Ordering::Relaxed);
                    if restarts + redeliveries + dead > 0 {
                        line.push_str(&format!(
                            "  {restarts} restarts  {redeliveries} redeliveries  {dead} dead letters"
                        ));
                    }
                    match &done {
                        Some(done) => {
                            let mut err = std::io::stderr().lock();
                            if done.load(Ordering::Acquire) {
                                break;
                            }
                            let _ = write!(err, "\r\x1b[2K{line}");
                            let _ = err.flush();
                        }
                        None => tracing::info!(target: "arachne::progress", "{line}"),
                    }
                }
            })
            .ok();
        Self { stop: Some(tx), task, cleared }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(cleared) = self.cleared.take() {
            // Now, not when the thread next wakes: the caller prints its last line next.
            let mut err = std::io::stderr().lock();
            cleared.store(true, Ordering::Release);
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        // The thread notices within one period; don't make shutdown wait for it.
        drop(self.task.take());
    }
}
