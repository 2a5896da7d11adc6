//! The Fetcher actor: takes requests from the `requests` queue, fetches them, puts HTML pages
//! on the `pages` queue, and tells the scheduler how each ended. A delivery is acked only
//! after its outcome has been handed on, so a fetcher that dies mid-request loses nothing.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;
use reqwest::Client;

use super::http::{self, FetchOutcome};
use super::messages::{CrawlRequest, Event, Page};
use super::recrawl::{Revisit, Revisits};
use super::routing::{QueueId, Routing};
use super::scheduler::{Completed, FetchFinished, Scheduler};
use crate::bus::{Delivery, Queue, Topic};
use crate::observe::Stats;
use crate::spec::FetchSpec;
use crate::supervise::blame::Blamed;
use crate::supervise::chaos::{Chaos, Target};

/// What every fetcher of a run shares.
pub struct FetchShared {
    /// The pooled HTTP client.
    pub client: Client,
    /// The spec's `fetch:`.
    pub spec: FetchSpec,
    /// `fetch:` as each queue of the routing sees it (its own `retries`), by queue number;
    /// empty: `spec` for every queue ([`FetchShared::queue_specs`] builds it).
    pub queue_specs: Vec<FetchSpec>,
    /// Where requests come from.
    pub requests: Queue<CrawlRequest>,
    /// Where HTML pages go.
    pub pages: Queue<Page>,
    /// Where failures are told.
    pub events: Topic<Event>,
    /// The frontier.
    pub scheduler: Addr<Scheduler>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Faults to inject.
    pub chaos: Arc<Chaos>,
    /// Pages to revisit on a reseed, with their validators (when the spec re-seeds).
    pub revisits: Option<Arc<Revisits>>,
}

/// One fetcher: up to `prefetch` requests in flight at once.
pub struct Fetcher {
    shared: Arc<FetchShared>,
    prefetch: usize,
}

impl Fetcher {
    /// A fetcher with `prefetch` requests in flight at most.
    pub fn new(shared: Arc<FetchShared>, prefetch: usize) -> Self {
        Self { shared, prefetch }
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(self.shared.requests.consumer(self.prefetch).into_stream());
    }
}

/// A restart drops the requests in flight; their deliveries go back to the queue.
impl Supervised for Fetcher {}

impl StreamHandler<Delivery<CrawlRequest>> for Fetcher {
    fn handle(&mut self, delivery: Delivery<CrawlRequest>, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        let id = delivery.id();
        ctx.spawn(Blamed::new(id, async move { shared.process(delivery).await }).into_actor(self));
    }

    /// The queue closed: the run is ending. Stay up (a stopped permanent child restarts).
    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// `fetch:` for each queue of `routing`, by queue number: the same, with the queue's retries.
pub fn queue_specs(spec: &FetchSpec, routing: &Routing) -> Vec<FetchSpec> {
    routing.queues().iter().map(|q| FetchSpec { retries: q.retries, ..spec.clone() }).collect()
}

impl FetchShared {
    /// `fetch:` for a request of `queue`.
    fn spec_for(&self, queue: QueueId) -> &FetchSpec {
        self.queue_specs.get(queue.index()).unwrap_or(&self.spec)
    }

    /// Counts a request's end in its queue's counters (a routed run).
    fn count_in_queue(&self, queue: QueueId, fetched: bool) {
        if let Some(q) = self.stats.queue(queue.index()) {
            Stats::incr(if fetched { &q.fetched } else { &q.failed });
        }
    }

    async fn process(&self, delivery: Delivery<CrawlRequest>) {
        let request = delivery.message().clone();
        if self.chaos.is_active() {
            self.chaos.strike(Target::Fetcher, request.url.as_str(), delivery.deliveries());
        }
        let conditional =
            self.revisits.as_ref().and_then(|r| r.get(&request.fingerprint).map(|v| v.validators.clone()));
        let started = std::time::Instant::now();
        let outcome = http::fetch(
            &self.client,
            &request.url,
            conditional.as_ref(),
            self.spec_for(request.queue),
            &self.stats,
        )
        .await;
        let failed = matches!(outcome, FetchOutcome::Failed { .. });
        self.stats.hosts.record(&request.host, started.elapsed(), failed);
        if let FetchOutcome::Fetched { status, .. } = &outcome {
            self.stats.status.add(*status);
        }
        match &outcome {
            FetchOutcome::Fetched { .. } | FetchOutcome::NotModified => {
                self.count_in_queue(request.queue, true)
            }
            FetchOutcome::Failed { .. } => self.count_in_queue(request.queue, false),
            FetchOutcome::Redirect { .. } => {}
        }
        self.scheduler.do_send(FetchFinished { request: request.clone() });
        match outcome {
            FetchOutcome::Fetched { status, html: true, body, validators } => {
                Stats::incr(&self.stats.pages_fetched);
                if let Some(revisits) = &self.revisits {
                    let revisit = Revisit { url: request.url.clone(), depth: request.depth, validators };
                    revisits.insert(request.fingerprint, revisit);
                }
                let page = Page { request: request.clone(), status, body, fetched_at: Utc::now() };
                if self.pages.publish(page).await.is_err() {
                    // The run is ending (its grace period is over): the request is not
                    // done, and with `--state-dir` stays pending for the next run.
                    tracing::debug!(url = %request.url, "pages queue closed: cancelled");
                    delivery.release();
                    return;
                }
            }
            FetchOutcome::Fetched { html: false, .. } => {
                Stats::incr(&self.stats.pages_fetched);
                self.complete(request, Vec::new());
            }
            FetchOutcome::NotModified => {
                Stats::incr(&self.stats.not_modified);
                self.complete(request, Vec::new());
            }
            FetchOutcome::Redirect { location } => {
                let location = without_foreign_credentials(&request.url, location);
                self.scheduler.do_send(Completed {
                    request,
                    links: vec![location],
                    to_sinks: false,
                    redirect: true,
                });
            }
            FetchOutcome::Failed { kind, detail } => {
                tracing::debug!(url = %request.url, %kind, "{detail}");
                self.stats.failed(kind, &detail);
                self.events.publish_now(Event::PageFailed {
                    url: request.url.to_string(),
                    kind: kind.to_string(),
                    detail,
                });
                self.complete(request, Vec::new());
            }
        }
        delivery.ack();
    }

    /// The request ends here, with no page for the parsers.
    fn complete(&self, request: Arc<CrawlRequest>, links: Vec<url::Url>) {
        self.scheduler.do_send(Completed { request, links, to_sinks: false, redirect: false });
    }
}

/// A redirect target with the user name and password taken out, unless they are the ones
/// the request already had, on the same origin: credentials a server puts in a Location
/// header are never sent on.
fn without_foreign_credentials(from: &url::Url, mut to: url::Url) -> url::Url {
    let has_credentials = !to.username().is_empty() || to.password().is_some();
    let inherited =
        from.origin() == to.origin() && from.username() == to.username() && from.password() == to.password();
    if has_credentials && !inherited {
        tracing::debug!("dropping the credentials of a redirect's Location");
        let _ = to.set_password(None);
        let _ = to.set_username("");
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_only_their_own_credentials() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        let plain = without_foreign_credentials(&url("http://h/a"), url("http://u:p@h/b"));
        assert_eq!(plain.as_str(), "http://h/b");
        let elsewhere = without_foreign_credentials(&url("http://u:p@h/a"), url("http://u:p@other/b"));
        assert_eq!(elsewhere.as_str(), "http://other/b");
        let same = without_foreign_credentials(&url("http://u:p@h/a"), url("http://u:p@h/b"));
        assert_eq!(same.as_str(), "http://u:p@h/b");
    }
}
