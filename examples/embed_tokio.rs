//! Embedding arachne in an async program: a `#[tokio::main]` that awaits the crawl.
//!
//! `RuntimeBuilder::run_async` runs the actor tree on an actix system of its own thread
//! and resolves to the summary, so the program's own tasks keep running meanwhile (here a
//! ticker that counts while the crawl goes on). The blocking `run` refuses to run inside
//! the runtime with a clear error instead of panicking.
//!
//! The program starts the sandbox site itself (`SandboxServer::start`) and hands its
//! address to the runs (`RuntimeBuilder::sandbox_url`): the site outlives them, so its
//! truth and request counters can be read afterwards. A first run crawls it whole and is
//! checked against the truth; a second one stops after exactly 40 items
//! (`StopHandle::stop_after_items`, the same as `scope.max_items` in a spec), written to
//! both a JSONL file and a sink read through a `SharedSink` handle.
//!
//!     cargo run --example embed_tokio

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arachne::crawl::Item;
use arachne::runtime::{RunError, Runtime, SharedSink};
use arachne::sandbox::{SandboxOptions, SandboxServer};

const PAGES: u32 = 150;

/// Where the second run stops.
const MAX_ITEMS: u64 = 40;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(
        // The spec's own sandbox is replaced by the program's (`sandbox_url` below).
        "name: embed-tokio\nsandbox: { pages: 150 }\nseeds: [\"{sandbox}/\"]\n\
         parse:\n  items:\n    - { name: product, match: \"/item/\\\\d+$\", fields: { title: h1 } }\n\
         output: []\n",
        "embed_tokio.yaml",
        arachne::spec::NO_OVERRIDES,
    )?;

    // The program's own sandbox: it lives as long as `site`, across both runs.
    let site = SandboxServer::start(SandboxOptions { pages: PAGES, traps: false }, 0)?;

    // The blocking call would stall this runtime: it says so instead.
    match Runtime::builder(spec.clone()).progress(false).run() {
        Err(RunError::InsideRuntime) => {}
        other => return Err(format!("run() inside tokio should refuse, got {other:?}").into()),
    }

    // The program's own work goes on while the crawl runs.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let summary = Runtime::builder(spec.clone()).sandbox_url(site.base_url()).run_async().await?;
    ticker.abort();

    let want = site.truth(20);
    if summary.items != want.items || summary.pages_fetched != want.pages_fetched {
        return Err(format!(
            "expected {} pages and {} items, got {} and {}",
            want.pages_fetched, want.items, summary.pages_fetched, summary.items
        )
        .into());
    }
    if ticks.load(Ordering::Relaxed) == 0 {
        return Err("the program's own task did not run during the crawl".into());
    }
    let first_run_requests = site.stats().total_requests;

    // Exactly MAX_ITEMS items, in every sink: no item past the limit is published.
    let jsonl = std::env::temp_dir().join(format!("arachne-embed-tokio-{}.jsonl", std::process::id()));
    let mut limited = spec;
    limited.output = vec![arachne::spec::OutputSpec::Jsonl(jsonl.clone())];
    let memory = SharedSink::new(Vec::<Item>::new());
    let builder = Runtime::builder(limited).sandbox_url(site.base_url()).sink("memory", memory.clone());
    builder.stop_handle().stop_after_items(MAX_ITEMS);
    let stopped = builder.run_async().await?;
    let lines = std::fs::read_to_string(&jsonl)?.lines().count() as u64;
    let _ = std::fs::remove_file(&jsonl);
    let in_memory = memory.lock().len() as u64;
    if stopped.items != MAX_ITEMS || lines != MAX_ITEMS || in_memory != MAX_ITEMS {
        return Err(format!(
            "stop after {MAX_ITEMS} items: summary {}, JSONL {lines} lines, memory {in_memory}",
            stopped.items
        )
        .into());
    }
    if stopped.pages_fetched >= want.pages_fetched {
        return Err("the limited run did not stop early".into());
    }
    println!(
        "embed_tokio: ok: {} pages, {} items, while the program's task ticked {} times; \
         then exactly {MAX_ITEMS} items in both sinks after {} pages; the sandbox served {} + {} requests",
        summary.pages_fetched,
        summary.items,
        ticks.load(Ordering::Relaxed),
        stopped.pages_fetched,
        first_run_requests,
        site.stats().total_requests - first_run_requests
    );
    Ok(())
}
