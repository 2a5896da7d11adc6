//! A periodic re-crawl: a schedule re-seeds the crawl every second.
//!
//! `schedules: [{ name: refresh, every: 1s, action: reseed }]` puts the seeds back in the
//! frontier on each firing; every page the last crawl fetched is asked for again with its
//! validators (`If-None-Match`, `If-Modified-Since`), so an unchanged page costs a `304 Not
//! Modified` and no parse, and yields no duplicate item. A run with schedules does not end
//! when the crawl is done (it waits for the next firing): `stop_after` ends it.
//!
//! Each firing is also published on the bus topic `schedules`; a small actor of our own
//! prints them (it reads the topic with `ctx.subscribe`, through its `Handler`).
//! Checked: at least 3 firings, some 304s, and every item exactly once.
//!
//!     cargo run --example periodic_recrawl

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use arachne::bus::{Firing, Overflow, Topic};
use arachne::crawl::{Item, ItemSink};
use arachne::runtime::Runtime;
use arachne::sandbox::{truth, SandboxOptions};
use arachne::supervise::{ContextExt, Published};

const PAGES: u32 = 200;

const SPEC: &str = r#"
name: periodic-recrawl
sandbox: { pages: 200 }
seeds: ["{sandbox}/"]
schedules: [{ name: refresh, every: 1s, action: reseed }]
parse:
  items:
    - { name: product, match: "/item/", fields: { title: "h1", price: ".price" } }
"#;

/// Counts items by URL.
struct CountByUrl(Arc<Mutex<HashMap<String, u32>>>);

impl ItemSink for CountByUrl {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        let mut counts = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        *counts.entry(item.url.clone()).or_default() += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Prints every firing of the run's schedules (topic `schedules`).
struct FiringLog {
    firings: Topic<Firing>,
    heard: Arc<Mutex<u64>>,
}

impl Actor for FiringLog {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A log may lose the oldest firings rather than hold the clock up.
        ctx.subscribe_with(&self.firings, Overflow::DropOldest);
    }
}

impl Supervised for FiringLog {}

impl Handler<Published<Firing>> for FiringLog {
    type Result = ();

    fn handle(&mut self, firing: Published<Firing>, _: &mut Context<Self>) {
        println!(
            "  firing #{} of '{}' at {}",
            firing.sequence,
            firing.schedule,
            firing.fired_at.format("%T%.3f")
        );
        if let Ok(mut heard) = self.heard.lock() {
            *heard += 1;
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(SPEC, "periodic_recrawl.yaml", arachne::spec::NO_OVERRIDES)?;
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let heard = Arc::new(Mutex::new(0));
    let h = heard.clone();
    let summary = Runtime::builder(spec)
        .without_spec_outputs()
        .sink("count-by-url", CountByUrl(counts.clone()))
        // `schedules` is the run's own topic of `Firing`s: its typed handle.
        .actor("firing-log", move |bus| Ok(FiringLog { firings: bus.schedules()?, heard: h }))
        // Three firings (at 1 s, 2 s and 3 s), then a graceful stop.
        .stop_after(Duration::from_millis(3500))
        .run()?;

    let counts = counts.lock().map_err(|_| "sink mutex poisoned")?;
    let expected = truth(&SandboxOptions { pages: PAGES, traps: false }, 20).items;
    if summary.firings < 3 || heard.lock().map_or(0, |h| *h) != summary.firings {
        return Err(format!(
            "expected at least 3 firings, all heard on `schedules`: got {}, heard {}",
            summary.firings,
            heard.lock().map_or(0, |h| *h)
        )
        .into());
    }
    if summary.not_modified == 0 {
        return Err("the re-crawls got no 304 Not Modified".into());
    }
    if let Some((url, n)) = counts.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{url} was written {n} times").into());
    }
    if counts.len() as u64 != expected {
        return Err(format!("expected {expected} distinct items, got {}", counts.len()).into());
    }
    println!(
        "periodic_recrawl: ok: {} firings ({} heard on `schedules`), {} pages not modified, {} items, none twice, in {:.2}s",
        summary.firings,
        heard.lock().map_or(0, |h| *h),
        summary.not_modified,
        counts.len(),
        summary.elapsed_s
    );
    Ok(())
}
