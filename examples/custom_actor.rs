//! An actor of your own in the supervised tree, surviving its own panic.
//!
//! `Counter` is a plain actix actor that reads the `items` topic (one `PageItems` message
//! per parsed page) and counts the items. It panics once, on purpose, on the 10th page.
//! The runtime's supervisor catches the panic and restarts the actor in place (same
//! address, same mailbox; `Supervised::restarting`, then `started` again). The
//! subscription lives in an `Arc` the actor keeps, so `started` attaches a new stream to
//! the same buffer and no message published meanwhile is lost: only the page being handled
//! when it panicked is.
//!
//! Checked: the run completed, the supervisor counted the restart, and the actor went on
//! counting after it (more than 10 items).
//!
//!     cargo run --example custom_actor

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use arachne::bus::{Overflow, Subscription};
use arachne::crawl::PageItems;
use arachne::runtime::Runtime;

const SPEC: &str = r#"
name: custom-actor
sandbox: { pages: 200 }
seeds: ["{sandbox}/"]
parse:
  items:
    - { name: product, match: "/item/", fields: { title: "h1" } }
"#;

/// The page on which `Counter` panics.
const PANIC_ON_PAGE: u64 = 10;

/// Set by the one panic, so it happens once and not again after the restart.
static PANICKED: AtomicBool = AtomicBool::new(false);

struct Counter {
    items: Arc<Subscription<PageItems>>,
    pages: u64,
    /// Items counted so far.
    counted: Arc<AtomicU64>,
    /// What `counted` was when the actor restarted.
    at_restart: Arc<AtomicU64>,
}

impl Actor for Counter {
    type Context = Context<Self>;

    /// Runs at the start and again after each restart.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(Subscription::shared_stream(self.items.clone()));
    }
}

impl Supervised for Counter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        let counted = self.counted.load(Ordering::Relaxed);
        self.at_restart.store(counted, Ordering::Relaxed);
        println!("  counter: restarting after its panic on page {}, at {counted} items", self.pages);
    }
}

impl StreamHandler<Arc<PageItems>> for Counter {
    fn handle(&mut self, page: Arc<PageItems>, _: &mut Context<Self>) {
        self.pages += 1;
        if self.pages == PANIC_ON_PAGE && !PANICKED.swap(true, Ordering::SeqCst) {
            panic!("counter: a bug on page {} (on purpose)", page.request.url);
        }
        self.counted.fetch_add(page.items.len() as u64, Ordering::Relaxed);
    }

    /// The topic closes at the end of the run. The default `finished` stops the actor, and
    /// the runtime restarts a user actor that stops by itself (it is `Permanent`): keep it
    /// running until the runtime stops it.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(SPEC, "custom_actor.yaml", &[])?;
    let (counted, at_restart) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c, r) = (counted.clone(), at_restart.clone());
    let summary = Runtime::builder(spec)
        .without_spec_outputs()
        .actor("counter", move |bus| Counter {
            // Subscribed here, before the first page: `started` only attaches to it.
            // `Block`: a slow counter slows the parsers down instead of losing items.
            items: Arc::new(
                bus.topic::<PageItems>("items")
                    .expect("the run's items topic")
                    .subscribe(256, Overflow::Block),
            ),
            pages: 0,
            counted: c,
            at_restart: r,
        })
        .run()?; // an Err here would mean the supervisor gave up

    let counted = counted.load(Ordering::Relaxed);
    let after = counted - at_restart.load(Ordering::Relaxed);
    if !PANICKED.load(Ordering::SeqCst) || summary.restarts < 1 {
        return Err(format!("expected a panic and a restart, got {} restarts", summary.restarts).into());
    }
    if after <= 10 {
        return Err(format!("the counter counted only {after} items after its restart").into());
    }
    println!(
        "custom_actor: ok: {} restart(s); the counter counted {counted} of {} items, {after} after its restart, in {:.2}s",
        summary.restarts, summary.items, summary.elapsed_s
    );
    Ok(())
}
