//! `dead_letters.jsonl`: every message dead-lettered in a run, one JSON object a line, next
//! to the first jsonl output (or in the working directory). Created on the first one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;
use url::Url;

use crate::spec::{CrawlSpec, OutputSpec};

/// The dead-letter file of a run.
#[derive(Debug)]
pub(crate) struct DeadLetterLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// The first dead letter of the run (`URL: reason`), for the error of a run that
    /// crawled nothing.
    first: Mutex<Option<String>>,
}

impl DeadLetterLog {
    /// The log that goes beside the spec's first jsonl output.
    pub(crate) fn beside(spec: &CrawlSpec) -> Self {
        let dir = spec
            .output
            .iter()
            .find_map(|o| match o {
                OutputSpec::Jsonl(p) => p.parent().map(|d| d.to_path_buf()),
                _ => None,
            })
            .unwrap_or_default();
        Self { path: dir.join("dead_letters.jsonl"), file: Mutex::new(None), first: Mutex::new(None) }
    }

    /// The first dead letter recorded (`URL: reason`).
    pub(crate) fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Appends one dead letter (errors are logged: the crawl goes on).
    pub(crate) fn record(&self, queue: &str, url: &Url, deliveries: u32, reason: &str) {
        self.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| format!("{url}: {reason}"));
        let line = serde_json::json!({
            "queue": queue,
            "url": url.as_str(),
            "deliveries": deliveries,
            "reason": reason,
            "at": Utc::now(),
        });
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            match OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => *file = Some(f),
                Err(e) => {
                    tracing::error!(path = %self.path.display(), "cannot write dead letters: {e}");
                    return;
                }
            }
        }
        if let Some(f) = file.as_mut() {
            let mut bytes = crate::observe::secrets::mask(&line.to_string()).into_owned().into_bytes();
            bytes.push(b'\n');
            if let Err(e) = f.write_all(&bytes) {
                tracing::error!(path = %self.path.display(), "cannot write dead letters: {e}");
            }
        }
    }
}
