//! Celery-style routing, compiled from the spec's `routes:` and `queues:`: which queue a
//! request goes to, what each queue gets (fetch concurrency, rate, retries, priority), and
//! which queues this process consumes (`--queues`, Celery's `worker -Q`). docs/routing.md.
//!
//! Queues are numbered in this process ([`QueueId`], `default` is always 0); between
//! processes (in a broker) they go by name.

use std::sync::Arc;

use regex::Regex;
use url::Url;

use crate::bus::Pattern;
use crate::spec::{CrawlSpec, Rate, DEFAULT_QUEUE};

/// A queue of this process's [`Routing`], by number (`default` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct QueueId(pub u16);

impl QueueId {
    /// The `default` queue.
    pub const DEFAULT: QueueId = QueueId(0);

    /// Its index in [`Routing::queues`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Why routing cannot be compiled, or a worker's queues are wrong.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// A route's `match` does not compile (validation says so first, with its position).
    #[error("routes[{index}].match: {source}")]
    Regex {
        /// The route's index.
        index: usize,
        /// The regex error.
        source: regex::Error,
    },
    /// A route's `host` glob does not compile.
    #[error("routes[{index}].host: {source}")]
    Glob {
        /// The route's index.
        index: usize,
        /// The glob error.
        source: crate::bus::PatternError,
    },
    /// A route, or `--queues`, names a queue the spec does not have.
    #[error("unknown queue '{name}' in {what} (the crawl's queues: {known})")]
    UnknownQueue {
        /// The name.
        name: String,
        /// Where it was named: `routes[2]`, `--queues`.
        what: String,
        /// The queues there are, comma-separated.
        known: String,
    },
    /// `--queues` with nothing in it.
    #[error("--queues names no queue: give at least one (the crawl's queues: {known})")]
    NoQueues {
        /// The queues there are, comma-separated.
        known: String,
    },
}

/// What one queue gets, resolved against `fetch:`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Its name.
    pub name: Arc<str>,
    /// Requests of this queue in flight in this process, at most.
    pub concurrency: u32,
    /// Its rate limit in this process (`None`: no limit).
    pub rate: Option<Rate>,
    /// Retries of a failed fetch.
    pub retries: u32,
    /// Higher is served first.
    pub priority: i32,
    /// This process takes requests from it.
    pub consumed: bool,
}

/// One compiled route.
#[derive(Debug, Clone)]
struct Route {
    url: Option<Regex>,
    host: Option<Pattern>,
    queue: QueueId,
}

/// The routes and queues of one crawl.
#[derive(Debug, Clone)]
pub struct Routing {
    queues: Vec<QueueConfig>,
    routes: Vec<Route>,
}

impl Routing {
    /// Compiles `routes:` and `queues:` (every queue consumed).
    pub fn new(spec: &CrawlSpec) -> Result<Self, RoutingError> {
        let fetch = &spec.fetch;
        let mut queues = vec![QueueConfig {
            name: DEFAULT_QUEUE.into(),
            concurrency: fetch.concurrency.max(1),
            rate: None,
            retries: fetch.retries,
            priority: 0,
            consumed: true,
        }];
        for (name, q) in &spec.queues {
            let config = QueueConfig {
                name: name.as_str().into(),
                concurrency: q.concurrency.unwrap_or(fetch.concurrency).clamp(1, fetch.concurrency.max(1)),
                rate: q.rate.filter(Rate::is_limited),
                retries: q.retries.unwrap_or(fetch.retries),
                priority: q.priority,
                consumed: true,
            };
            match queues.iter_mut().find(|c| *c.name == **name) {
                Some(default) => *default = config,
                None => queues.push(config),
            }
        }
        let mut this = Self { queues, routes: Vec::new() };
        for (index, r) in spec.routes.iter().enumerate() {
            let url = r.matches.as_deref().map(Regex::new).transpose();
            let host = r.host.as_deref().map(|h| Pattern::new(&h.to_ascii_lowercase())).transpose();
            let queue =
                this.id(&r.queue).ok_or_else(|| this.unknown(&r.queue, format!("routes[{index}]")))?;
            this.routes.push(Route {
                url: url.map_err(|source| RoutingError::Regex { index, source })?,
                host: host.map_err(|source| RoutingError::Glob { index, source })?,
                queue,
            });
        }
        Ok(this)
    }

    /// This process consumes only `names` (Celery's `worker -Q`); the others' requests are
    /// still admitted (into their queues, for the workers that consume them).
    pub fn consume_only<S: AsRef<str>>(&mut self, names: &[S]) -> Result<(), RoutingError> {
        let mut wanted = vec![false; self.queues.len()];
        for name in names.iter().map(|n| n.as_ref().trim()).filter(|n| !n.is_empty()) {
            let id = self.id(name).ok_or_else(|| self.unknown(name, "--queues".into()))?;
            wanted[id.index()] = true;
        }
        if !wanted.contains(&true) {
            return Err(RoutingError::NoQueues { known: self.known() });
        }
        for (queue, consumed) in self.queues.iter_mut().zip(wanted) {
            queue.consumed = consumed;
        }
        Ok(())
    }

    /// The queue a request for `url` goes to: the first route that matches, else `default`.
    pub fn route(&self, url: &Url) -> QueueId {
        if self.routes.is_empty() {
            return QueueId::DEFAULT;
        }
        let host = url.host_str().unwrap_or("");
        self.routes
            .iter()
            .find(|r| {
                r.host.as_ref().is_none_or(|p| p.matches(host))
                    && r.url.as_ref().is_none_or(|re| re.is_match(url.as_str()))
            })
            .map_or(QueueId::DEFAULT, |r| r.queue)
    }

    /// The queue named `name`.
    pub fn id(&self, name: &str) -> Option<QueueId> {
        self.queues.iter().position(|q| &*q.name == name).and_then(|i| u16::try_from(i).ok()).map(QueueId)
    }

    /// A queue's settings.
    pub fn queue(&self, id: QueueId) -> &QueueConfig {
        self.queues.get(id.index()).unwrap_or(&self.queues[0])
    }

    /// Every queue of the crawl, by [`QueueId`] order (`default` first).
    pub fn queues(&self) -> &[QueueConfig] {
        &self.queues
    }

    /// Whether the spec routes anything anywhere but `default`, or names queues.
    pub fn is_routed(&self) -> bool {
        self.queues.len() > 1 || !self.routes.is_empty()
    }

    /// Whether this process consumes every queue of the crawl.
    pub fn consumes_all(&self) -> bool {
        self.queues.iter().all(|q| q.consumed)
    }

    fn known(&self) -> String {
        self.queues.iter().map(|q| &*q.name).collect::<Vec<_>>().join(", ")
    }

    fn unknown(&self, name: &str, what: String) -> RoutingError {
        RoutingError::UnknownQueue { name: name.to_string(), what, known: self.known() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(yaml: serde_json::Value) -> Routing {
        let mut spec = serde_json::json!({ "name": "t", "seeds": ["http://a.test/"] });
        for (k, v) in yaml.as_object().expect("object") {
            spec[k] = v.clone();
        }
        Routing::new(&serde_json::from_value(spec).expect("spec")).expect("routing")
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn first_matching_route_wins_default_otherwise() {
        let r = routing(serde_json::json!({
            "routes": [
                { "match": "\\.pdf$", "queue": "documents" },
                { "host": "*.example.org", "queue": "slow" },
                { "host": "docs.example.org", "match": "/x/", "queue": "documents" },
            ],
            "queues": { "documents": { "concurrency": 4, "rate": "10/m", "retries": 1, "priority": 3 }, "slow": {} },
            "fetch": { "concurrency": 16, "retries": 2 },
        }));
        let name = |u: &str| r.queue(r.route(&url(u))).name.to_string();
        assert_eq!(name("http://a.test/report.pdf"), "documents");
        assert_eq!(name("http://WWW.Example.org/report.pdf"), "documents", "the first route wins");
        assert_eq!(name("http://www.example.org/x/"), "slow");
        assert_eq!(name("http://example.org/"), "default", "`*.` needs a subdomain");
        assert_eq!(name("http://a.test/"), "default");
        let docs = r.queue(r.id("documents").expect("documents"));
        assert_eq!((docs.concurrency, docs.retries, docs.priority), (4, 1, 3));
        assert_eq!(docs.rate.map(|r| r.to_string()).as_deref(), Some("10/m"));
        let slow = r.queue(r.id("slow").expect("slow"));
        assert_eq!((slow.concurrency, slow.retries, slow.priority, slow.rate), (16, 2, 0, None));
        assert!(r.is_routed() && r.consumes_all());
    }

    #[test]
    fn the_default_queue_can_be_tuned_and_workers_pick_queues() {
        let mut r = routing(serde_json::json!({
            "queues": { "default": { "concurrency": 2 }, "documents": {} },
        }));
        assert_eq!(r.queues().len(), 2);
        assert_eq!(r.queue(QueueId::DEFAULT).concurrency, 2);
        r.consume_only(&["documents"]).expect("known");
        assert!(!r.queue(QueueId::DEFAULT).consumed);
        assert!(r.queue(QueueId(1)).consumed);
        let err = r.consume_only(&["nope"]).expect_err("unknown").to_string();
        assert!(
            err.contains("unknown queue 'nope' in --queues (the crawl's queues: default, documents)"),
            "{err}"
        );
        assert!(r.consume_only(&[" "]).is_err());
    }

    mod frontier {
        use std::time::{Duration, Instant};

        use super::*;
        use crate::crawl::frontier::{Frontier, Next, Scope};
        use crate::crawl::urls;

        fn frontier(extra: serde_json::Value) -> Frontier {
            let mut spec = serde_json::json!({
                "name": "t", "seeds": ["http://a.test/"],
                "scope": { "domains": ["a.test", "b.test"] },
                "fetch": { "robots_txt": "ignore", "concurrency": 16, "per_host": { "concurrency": 8 } },
            });
            for (k, v) in extra.as_object().expect("object") {
                spec[k] = v.clone();
            }
            let spec: CrawlSpec = serde_json::from_value(spec).expect("spec");
            let seeds = vec![url("http://a.test/")];
            Frontier::new(&spec, Scope::new(&spec, &seeds).expect("scope")).expect("frontier")
        }

        fn admit(f: &mut Frontier, urls: &[&str]) {
            for u in urls {
                let mut u = url(u);
                urls::normalize(&mut u);
                f.admit(&u, 0, vec![]);
            }
        }

        fn drain(f: &mut Frontier) -> Vec<CrawlRequestSummary> {
            let mut out = Vec::new();
            while let Next::Request(r) = f.next(Instant::now()) {
                out.push((r.url.path().to_string(), f.routing().queue(r.queue).name.to_string()));
            }
            out
        }

        type CrawlRequestSummary = (String, String);

        #[test]
        fn each_queue_has_its_own_cap_and_politeness_holds_across_queues() {
            let mut f = frontier(serde_json::json!({
                "routes": [{ "match": "/doc/", "queue": "documents" }],
                "queues": { "documents": { "concurrency": 2 } },
            }));
            admit(&mut f, &["http://a.test/doc/1", "http://a.test/doc/2", "http://a.test/doc/3"]);
            admit(&mut f, &["http://b.test/1", "http://b.test/2", "http://b.test/3"]);
            let out = drain(&mut f);
            let docs = out.iter().filter(|(_, q)| q == "documents").count();
            assert_eq!(docs, 2, "documents is capped at 2 in flight: {out:?}");
            assert_eq!(out.len(), 5, "default is not held back by documents: {out:?}");
            let views = f.queue_views();
            assert_eq!(
                (views[1].name.as_str(), views[1].queued, views[1].max_in_flight),
                ("documents", 1, 2)
            );

            // Per-host politeness across queues: a host at its cap gives nothing, whatever the queue.
            let mut f = frontier(serde_json::json!({
                "routes": [{ "match": "/doc/", "queue": "documents" }],
                "queues": { "documents": {} },
                "fetch": { "robots_txt": "ignore", "concurrency": 16, "per_host": { "concurrency": 1 } },
            }));
            admit(&mut f, &["http://a.test/doc/1", "http://a.test/1", "http://a.test/2"]);
            let out = drain(&mut f);
            assert_eq!(out.len(), 1, "one request in flight to a.test in all: {out:?}");
        }

        #[test]
        fn the_higher_priority_queue_goes_first() {
            let mut f = frontier(serde_json::json!({
                "routes": [{ "match": "/urgent/", "queue": "urgent" }],
                "queues": { "urgent": { "priority": 5 } },
            }));
            admit(
                &mut f,
                &["http://a.test/1", "http://a.test/urgent/1", "http://a.test/2", "http://a.test/urgent/2"],
            );
            let order: Vec<String> = drain(&mut f).into_iter().map(|(p, _)| p).collect();
            assert_eq!(order, ["/urgent/1", "/urgent/2", "/1", "/2"]);
        }

        #[test]
        fn a_queue_waits_for_its_rate_and_the_others_do_not() {
            let mut f = frontier(serde_json::json!({
                "routes": [{ "host": "b.test", "queue": "slow" }],
                "queues": { "slow": { "rate": "2/s" } },
            }));
            admit(&mut f, &["http://b.test/1", "http://b.test/2", "http://a.test/1", "http://a.test/2"]);
            let now = Instant::now();
            let mut got = Vec::new();
            let mut wait = None;
            loop {
                match f.next(now) {
                    Next::Request(r) => got.push(r.url.to_string()),
                    Next::WaitUntil(at) => {
                        wait = Some(at);
                        break;
                    }
                    Next::Idle => break,
                }
            }
            assert_eq!(got.len(), 3, "one of slow, both of default: {got:?}");
            assert_eq!(got.iter().filter(|u| u.contains("b.test")).count(), 1, "{got:?}");
            let wait = wait.expect("slow waits for its rate");
            assert!(wait > now && wait <= now + Duration::from_millis(600), "{:?}", wait - now);
        }

        #[test]
        fn the_host_rate_holds_on_top_of_a_faster_queue_rate() {
            let mut f = frontier(serde_json::json!({
                "routes": [{ "match": "/doc/", "queue": "documents" }],
                "queues": { "documents": { "rate": "100/s" } },
                "fetch": { "robots_txt": "ignore", "per_host": { "rate": 1.0 } },
            }));
            admit(&mut f, &["http://a.test/doc/1", "http://a.test/doc/2"]);
            let now = Instant::now();
            let Next::Request(r) = f.next(now) else { panic!("the first request") };
            f.finished(&r.host, r.queue);
            match f.next(now) {
                Next::WaitUntil(at) => assert!(at >= now + Duration::from_millis(900), "{:?}", at - now),
                other => panic!("a.test waits for its own rate (1/s), got {other:?}"),
            }
        }
    }
}
