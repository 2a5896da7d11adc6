//! Embedding arachne in an async program: a `#[tokio::main]` that awaits the crawl.
//!
//! `RuntimeBuilder::run_async` runs the actor tree on an actix system of its own thread
//! and resolves to the summary, so the program's own tasks keep running meanwhile (here a
//! ticker that counts while the crawl goes on). The blocking `run` refuses to run inside
//! the runtime with a clear error instead of panicking. The outcome is checked against
//! the sandbox's truth.
//!
//!     cargo run --example embed_tokio

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arachne::runtime::{RunError, Runtime};
use arachne::sandbox::{truth, SandboxOptions};

const PAGES: u32 = 150;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(
        &format!(
            "name: embed-tokio\nsandbox: {{ pages: {PAGES} }}\nseeds: [\"{{sandbox}}/\"]\n\
             parse:\n  items:\n    - {{ name: product, match: \"/item/\\\\d+$\", fields: {{ title: h1 }} }}\n\
             output: []\n"
        ),
        "embed_tokio.yaml",
        &[],
    )?;

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
    let summary = Runtime::builder(spec).progress(false).run_async().await?;
    ticker.abort();

    let want = truth(&SandboxOptions { pages: PAGES, traps: false }, 20);
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
    println!(
        "embed_tokio: ok: {} pages, {} items, while the program's task ticked {} times",
        summary.pages_fetched,
        summary.items,
        ticks.load(Ordering::Relaxed)
    );
    Ok(())
}
