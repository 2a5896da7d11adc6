//! The scheduler's side of remote control ([`crate::observe::Controller`]): pausing the
//! crawl or a host, rates, seeds and dead letters ([`Steer`]), and what the dashboard shows
//! of the frontier ([`Inspect`]).

use std::sync::Arc;

use actix::prelude::*;
use serde::Serialize;
use url::Url;

use super::Scheduler;
use crate::crawl::frontier::{Admission, HostView};
use crate::crawl::messages::CrawlRequest;
use crate::crawl::urls;
use crate::observe::ControlAction;

/// Dead-lettered requests kept for [`ControlAction::RequeueDeadLetters`], at most.
pub(super) const KEEP_DEAD: usize = 10_000;

/// Carry out a crawl-level control action; answers what was done, or why not.
#[derive(Message, Debug)]
#[rtype(result = "Result<String, String>")]
pub struct Steer(pub ControlAction);

/// Asks for a [`FrontierView`].
#[derive(Message, Debug)]
#[rtype(result = "FrontierView")]
pub struct Inspect {
    /// With the busiest hosts, at most this many (0: none).
    pub hosts: usize,
}

/// The frontier as the scheduler sees it.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierView {
    /// Paused by remote control.
    pub paused: bool,
    /// Draining towards the end of the run.
    pub draining: bool,
    /// Admitted and not completed yet.
    pub outstanding: u64,
    /// Dead-lettered requests that can be requeued.
    pub dead_letters: usize,
    /// The request rate every host gets unless it has its own (0: no limit).
    pub default_rate: f64,
    /// The rate of the `requests` queue: every request, whatever its host (0: no limit).
    pub queue_rate: f64,
    /// The busiest hosts (in flight, then queued), as many as asked for.
    pub hosts: Vec<HostView>,
    /// Hosts the frontier knows.
    pub host_count: usize,
}

impl Handler<Inspect> for Scheduler {
    type Result = MessageResult<Inspect>;
    fn handle(&mut self, msg: Inspect, _: &mut Context<Self>) -> Self::Result {
        MessageResult(FrontierView {
            paused: self.paused,
            draining: self.draining,
            outstanding: self.outstanding,
            dead_letters: self.dead.len(),
            default_rate: self.frontier.default_rate(),
            queue_rate: self.frontier.crawl_rate(),
            hosts: if msg.hosts > 0 { self.frontier.hosts_view(msg.hosts) } else { Vec::new() },
            host_count: self.frontier.host_count(),
        })
    }
}

impl Handler<Steer> for Scheduler {
    type Result = Result<String, String>;
    fn handle(&mut self, msg: Steer, ctx: &mut Context<Self>) -> Self::Result {
        let done = match msg.0 {
            ControlAction::Pause => {
                self.paused = true;
                tracing::info!("crawl paused by remote control");
                "paused".to_string()
            }
            ControlAction::Resume => {
                self.paused = false;
                tracing::info!("crawl resumed by remote control");
                "resumed".to_string()
            }
            ControlAction::PauseHost { host } => {
                self.frontier.pause_host(&host);
                format!("paused {host}")
            }
            ControlAction::ResumeHost { host } => {
                self.frontier.resume_host(&host);
                format!("resumed {host}")
            }
            ControlAction::SetRate { host, queue, rate } => match (host, queue) {
                (Some(_), Some(_)) => return Err("give a host or a queue, not both".into()),
                (None, Some(queue)) if queue == self.requests.name() => {
                    self.frontier.set_crawl_rate(rate);
                    format!("queue {queue}: {rate} requests/s")
                }
                (None, Some(queue)) => {
                    return Err(format!("queue '{queue}' has no rate: only '{}' does", self.requests.name()))
                }
                (Some(h), None) => {
                    self.frontier.set_rate(Some(&h), rate);
                    format!("{h}: {rate} requests/s")
                }
                (None, None) => {
                    self.frontier.set_rate(None, rate);
                    format!("every host: {rate} requests/s")
                }
            },
            ControlAction::AddSeeds { urls } => self.add_seeds(&urls, ctx)?,
            ControlAction::RequeueDeadLetters => self.requeue_dead(ctx)?,
            ControlAction::Stop | ControlAction::RestartActor { .. } => {
                return Err("not a scheduler action".into());
            }
        };
        self.pump(ctx);
        Ok(done)
    }
}

impl Scheduler {
    /// Offers URLs at depth 0, as start URLs.
    fn add_seeds(&mut self, texts: &[String], ctx: &mut Context<Self>) -> Result<String, String> {
        let mut parsed = Vec::with_capacity(texts.len());
        for text in texts {
            let mut url = Url::parse(text.trim()).map_err(|e| format!("'{text}' is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("'{text}': only http and https are crawled"));
            }
            urls::normalize(&mut url);
            parsed.push(url);
        }
        let mut queued = 0;
        for url in parsed {
            self.frontier.add_start(&url);
            if self.offer(url, 0, Vec::new(), ctx) {
                queued += 1;
            }
        }
        if self.remote.is_some() {
            self.remote_flush(None, ctx);
        }
        Ok(format!("{queued} of {} seeds queued (the others were seen already or out of scope)", texts.len()))
    }

    /// Queues the dead-lettered requests again (a local frontier only: a shared one keeps
    /// its seen-set in the broker).
    fn requeue_dead(&mut self, ctx: &mut Context<Self>) -> Result<String, String> {
        if self.remote.is_some() {
            return Err("requeueing dead letters is not supported with a shared frontier".into());
        }
        let dead: Vec<Arc<CrawlRequest>> = std::mem::take(&mut self.dead);
        let mut queued = 0;
        for request in dead {
            let r = Arc::unwrap_or_clone(request);
            let url = r.url.clone();
            if let Admission::Queued { fetch_robots } =
                self.frontier.restore(r.url, r.depth, r.redirect_chain)
            {
                queued += 1;
                self.outstanding += 1;
                self.idle_reported = false;
                if let Some(host) = fetch_robots {
                    self.fetch_robots(host, url, ctx);
                }
            }
        }
        Ok(format!("{queued} dead letters queued again"))
    }

    /// Keeps a dead-lettered request for a later requeue (bounded).
    pub(super) fn keep_dead(&mut self, request: Arc<CrawlRequest>) {
        if self.dead.len() < KEEP_DEAD {
            self.dead.push(request);
        }
    }
}
