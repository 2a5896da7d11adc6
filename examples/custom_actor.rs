//! An actor of your own in the supervised tree: it sees every page of the run, survives
//! its own panic, and is stopped in order at the end.
//!
//! `Counter` is a plain actix actor that reads the `items` topic (one `PageItems` message
//! per parsed page) with `ctx.subscribe`, and takes its time: about 5 ms per page. It
//! panics once, on purpose, shortly after it starts. The runtime's supervisor catches the
//! panic and restarts the actor in place (same address, same mailbox;
//! `Supervised::restarting`, then `started` again, where `ctx.subscribe` attaches to the
//! same subscription, so no page published meanwhile is lost). User actors are
//! *transient*: restarted after a panic, not when they stop by themselves.
//!
//! At the end of the run the runtime waits for the counter to handle every page it was
//! sent, then stops it as actix actors stop (`stopping`, `stopped`).
//!
//! Checked: the supervisor counted the restart, and the counter saw every page of the run
//! (the sandbox's truth), none cut off, and was stopped with `stopped`.
//!
//!     cargo run --example custom_actor

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arachne::bus::Topic;
use arachne::crawl::PageItems;
use arachne::runtime::Runtime;
use arachne::sandbox::{truth, SandboxOptions};
use arachne::supervise::{ContextExt, Published};

const PAGES: u32 = 200;

const SPEC: &str = r#"
name: custom-actor
sandbox: { pages: 200 }
seeds: ["{sandbox}/"]
parse:
  items:
    - { name: product, match: "/item/", fields: { title: "h1" } }
"#;

/// How long the counter takes over each page.
const WORK_PER_PAGE: Duration = Duration::from_millis(5);

/// Set by the one panic, so it happens once and not again after the restart.
static PANICKED: AtomicBool = AtomicBool::new(false);

struct Counter {
    items: Topic<PageItems>,
    /// Pages counted so far (kept across the restart: it is the same actor value).
    pages: Arc<AtomicU64>,
    /// Set by `stopped`.
    stopped: Arc<AtomicBool>,
}

impl Actor for Counter {
    type Context = Context<Self>;

    /// Runs at the start and again after each restart.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.subscribe(&self.items);
        if !PANICKED.load(Ordering::SeqCst) {
            ctx.run_later(Duration::from_millis(100), |_, _| {
                PANICKED.store(true, Ordering::SeqCst);
                panic!("counter: a bug (on purpose)");
            });
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stopped.store(true, Ordering::SeqCst);
        println!("  counter: stopped after {} pages", self.pages.load(Ordering::Relaxed));
    }
}

impl Supervised for Counter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        println!("  counter: restarting after its panic, at {} pages", self.pages.load(Ordering::Relaxed));
    }
}

impl Handler<Published<PageItems>> for Counter {
    type Result = ();

    fn handle(&mut self, _page: Published<PageItems>, ctx: &mut Context<Self>) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        // The next page waits until this one's work is done.
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(WORK_PER_PAGE)));
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(SPEC, "custom_actor.yaml", arachne::spec::NO_OVERRIDES)?;
    let (pages, stopped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let (p, s) = (pages.clone(), stopped.clone());
    let summary = Runtime::builder(spec)
        .without_spec_outputs()
        // The factory runs before the first page is fetched; `?` on a bus error (or any
        // error) fails the run at its start, naming the actor.
        .actor("counter", move |bus| Ok(Counter { items: bus.items()?, pages: p, stopped: s }))
        .run()?; // an Err here would mean the supervisor gave up

    let want = truth(&SandboxOptions { pages: PAGES, traps: false }, 20);
    let pages = pages.load(Ordering::Relaxed);
    if !PANICKED.load(Ordering::SeqCst) || summary.restarts < 1 {
        return Err(format!("expected a panic and a restart, got {} restarts", summary.restarts).into());
    }
    if pages != want.pages_fetched || pages != summary.pages_fetched {
        return Err(format!(
            "the counter saw {pages} pages of {} fetched (truth: {})",
            summary.pages_fetched, want.pages_fetched
        )
        .into());
    }
    if !stopped.load(Ordering::SeqCst) {
        return Err("the counter was not stopped with `stopped`".into());
    }
    println!(
        "custom_actor: ok: {} restart(s); the counter saw all {pages} pages at ~{WORK_PER_PAGE:?} each, then stopped, in {:.2}s",
        summary.restarts, summary.elapsed_s
    );
    Ok(())
}
