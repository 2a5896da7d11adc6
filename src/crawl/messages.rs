//! The messages of the crawl pipeline: requests to fetch, fetched pages, and items.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::urls::Fingerprint;

/// One URL to fetch, as the frontier hands it out on the `requests` queue.
#[derive(Debug, Clone)]
pub struct CrawlRequest {
    /// The normalised URL.
    pub url: Url,
    /// Its fingerprint (the dedup key).
    pub fingerprint: Fingerprint,
    /// `host[:port]`: the politeness key.
    pub host: Arc<str>,
    /// Link depth: seeds are 0.
    pub depth: u32,
    /// The fingerprints of the URLs that redirected to this one, oldest first.
    pub redirect_chain: Vec<Fingerprint>,
    /// The queue it was routed to (`routes:`; docs/routing.md).
    pub queue: super::routing::QueueId,
}

/// A fetched HTML page, decoded to UTF-8, as it travels on the `pages` queue.
#[derive(Debug, Clone)]
pub struct Page {
    /// The request that fetched it.
    pub request: Arc<CrawlRequest>,
    /// The HTTP status (2xx).
    pub status: u16,
    /// The decoded body.
    pub body: String,
    /// When the response arrived.
    pub fetched_at: DateTime<Utc>,
}

impl Page {
    /// The page's URL.
    pub fn url(&self) -> &Url {
        &self.request.url
    }
}

/// One extracted item: what sinks write. It travels inside a [`PageItems`] (the items of one
/// page) on the `items` topic, which is a `Topic<PageItems>`, not a `Topic<Item>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item rule (or user parser) that produced it; not written to sinks.
    #[serde(skip)]
    pub rule: String,
    /// The fields, in the rule's order.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The page's URL.
    pub url: String,
    /// When the page was fetched (RFC 3339).
    pub fetched_at: DateTime<Utc>,
}

impl Item {
    /// An item of `page`, made by `rule` (a user parser's name for it), with its fields.
    pub fn new(
        rule: impl Into<String>,
        page: &Page,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self { rule: rule.into(), fields, url: page.url().to_string(), fetched_at: page.fetched_at }
    }

    /// The item as one JSON line, with its trailing newline.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(256);
        self.write_json_line(&mut line);
        line
    }

    /// Appends the item as one JSON line to `out` (no intermediate buffer: the sinks' path).
    /// Secrets (`${ENV}` values) are masked ([`crate::observe::secrets`]).
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Serialising a map of JSON values and strings into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
        crate::observe::secrets::mask_tail(out, start);
    }
}

/// The items of one parsed page, as they travel on the `items` topic: one message per page
/// (also when it holds no item), so that sinks can acknowledge pages end to end.
#[derive(Debug, Clone)]
pub struct PageItems {
    /// The request of the page.
    pub request: Arc<CrawlRequest>,
    /// Its items.
    pub items: Vec<Item>,
}

/// What a parser took from a page.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// Absolute, normalised links to consider for the frontier.
    pub links: Vec<Url>,
    /// Items.
    pub items: Vec<Item>,
    /// Distinct links found but not kept (past a per-page cap); counted in the summary
    /// with the page's URL.
    pub links_dropped: u64,
}

/// A notable thing that happened in the crawl, published on the `events` topic.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A page failed for good.
    PageFailed {
        /// Its URL.
        url: String,
        /// The error kind (`timeout`, `http_404`, ...).
        kind: String,
        /// Details.
        detail: String,
    },
    /// robots.txt disallowed a URL.
    RobotsBlocked {
        /// Its URL.
        url: String,
    },
    /// A message was delivered `max_deliveries` times without an ack, or rejected.
    DeadLettered {
        /// The queue it came from.
        queue: String,
        /// The URL of its request or page.
        url: String,
        /// Why.
        reason: String,
    },
    /// Deliveries went back to a queue unacked (their consumer was restarted), since the
    /// last such event.
    Redelivered {
        /// The queue.
        queue: String,
        /// How many.
        count: u64,
    },
    /// An actor panicked and was restarted.
    ActorRestarted {
        /// Its name.
        actor: String,
        /// The panic message.
        reason: String,
    },
}
