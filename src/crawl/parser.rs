//! Parsing: the [`PageParser`] trait (the spec's rules, or a user's own code) and the Parser
//! actor that runs one on each page of the `pages` queue, off the fetchers' threads.

use std::sync::Arc;

use actix::prelude::*;

use super::extract::{ExtractError, RuleParser};
use super::messages::{Item, Page, PageItems, Parsed};
use super::scheduler::{Completed, Scheduler};
use crate::bus::{Delivery, Queue, Topic};
use crate::observe::Stats;
use crate::spec::ParseSpec;
use crate::supervise::blame;
use crate::supervise::chaos::{Chaos, Target};

/// Turns a fetched page into links and items. Implement it to replace the spec's `parse:`
/// rules with code of your own; it runs on the parser threads, one page at a time per parser.
pub trait PageParser: Send + Sync + 'static {
    /// Links to follow (absolute; normalise them with [`crate::crawl::urls::normalize`]) and
    /// items found on `page`. A panic here is caught: the parser restarts and the page is
    /// delivered again (and dead-lettered after `max_deliveries`).
    fn parse(&self, page: &Page) -> Parsed;
}

/// The spec's `parse:` rules: links from the `follow` selectors, items from the `items`
/// rules, in one streaming pass over the HTML.
pub struct SpecParser {
    rules: RuleParser,
}

impl SpecParser {
    /// Compiles the rules.
    pub fn new(spec: &ParseSpec) -> Result<Self, ExtractError> {
        Ok(Self { rules: RuleParser::new(spec)? })
    }
}

impl PageParser for SpecParser {
    fn parse(&self, page: &Page) -> Parsed {
        let extracted = self.rules.extract(page.url(), &page.body);
        if extracted.truncated {
            tracing::warn!(url = %page.url(), "page was too hostile to read whole; kept what was read");
        }
        if extracted.links_dropped > 0 {
            tracing::warn!(
                url = %page.url(),
                kept = extracted.links.len(),
                dropped = extracted.links_dropped,
                "page has more distinct links than the per-page cap; the rest are not followed"
            );
        }
        // The page's address without its user name and password, if it had any.
        let mut url = page.url().clone();
        let _ = url.set_password(None);
        let _ = url.set_username("");
        let url = url.to_string();
        let items = extracted
            .items
            .into_iter()
            .map(|item| Item {
                rule: item.rule,
                fields: item.fields,
                url: url.clone(),
                fetched_at: page.fetched_at,
            })
            .collect();
        Parsed { links: extracted.links, items, links_dropped: extracted.links_dropped as u64 }
    }
}

/// What every parser of a run shares.
pub struct ParseShared {
    /// The parser.
    pub parser: Arc<dyn PageParser>,
    /// Where pages come from.
    pub pages: Queue<Page>,
    /// Where items go, one [`PageItems`] per page.
    pub items: Topic<PageItems>,
    /// The frontier.
    pub scheduler: Addr<Scheduler>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Faults to inject.
    pub chaos: Arc<Chaos>,
}

/// One parser actor; run one per core, each on its own arbiter.
pub struct ParserActor {
    shared: Arc<ParseShared>,
}

impl ParserActor {
    /// A parser actor.
    pub fn new(shared: Arc<ParseShared>) -> Self {
        Self { shared }
    }
}

impl Actor for ParserActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(self.shared.pages.consumer(2).into_stream());
    }
}

/// A restart drops the page being parsed; its delivery goes back to the queue.
impl Supervised for ParserActor {}

impl StreamHandler<Delivery<Page>> for ParserActor {
    fn handle(&mut self, delivery: Delivery<Page>, ctx: &mut Context<Self>) {
        let _working = blame::working_on(delivery.id());
        if self.shared.chaos.is_active() {
            self.shared.chaos.strike(Target::Parser, delivery.url().as_str(), delivery.deliveries());
        }
        let parsed = self.shared.parser.parse(&delivery);
        if parsed.links_dropped > 0 {
            self.shared.stats.links_capped(delivery.url().as_str(), parsed.links_dropped);
        }
        let shared = self.shared.clone();
        let request = delivery.request.clone();
        // Links first: the scheduler must hold a page's children before a sink can
        // acknowledge the page as durably done.
        shared.scheduler.do_send(Completed {
            request: request.clone(),
            links: parsed.links,
            redirect: false,
            to_sinks: true,
        });
        let count = parsed.items.len() as u64;
        // `wait`: the next page waits until these items are taken, so a slow sink slows
        // parsing instead of filling memory.
        ctx.wait(
            async move {
                shared.items.publish(PageItems { request, items: parsed.items }).await;
                shared.stats.items.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                delivery.ack();
            }
            .into_actor(self),
        );
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}
