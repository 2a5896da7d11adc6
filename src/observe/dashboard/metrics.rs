//! `/metrics` in the Prometheus text exposition format (0.0.4), rendered from the run's own
//! atomic counters at scrape time: the crawl's hot path never touches a metrics registry.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::api::QueueView;
use super::server::AppState;
use crate::crawl::scheduler::FrontierView;
use crate::observe::{ProcessFigures, LATENCY_BUCKETS};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A text being rendered: one family (`# HELP`, `# TYPE`, samples) at a time.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, counter: &AtomicU64) {
        self.single(name, "counter", help, counter.load(Ordering::Relaxed));
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

/// The whole `/metrics` text.
pub fn render(state: &AppState, view: Option<&FrontierView>) -> String {
    let s = &state.stats;
    let mut t = Text(String::with_capacity(16 * 1024));

    t.family("arachne_pages_fetched_total", "counter", "Responses that ended in a 2xx, by HTTP status.");
    for (status, n) in s.status.snapshot() {
        t.sample("arachne_pages_fetched_total", &[("status", &status.to_string())], n);
    }
    t.family("arachne_pages_failed_total", "counter", "Requests that failed for good, by error kind.");
    for (kind, n) in s.errors() {
        t.sample("arachne_pages_failed_total", &[("kind", &kind)], n);
    }
    t.counter("arachne_items_total", "Items produced by the parsers.", &s.items);
    t.family("arachne_sink_items_total", "counter", "Items written, by sink.");
    for (sink, n) in s.sinks.snapshot() {
        t.sample("arachne_sink_items_total", &[("sink", &sink)], n);
    }
    t.counter("arachne_response_bytes_total", "Body bytes received.", &s.bytes);
    t.counter("arachne_not_modified_total", "Conditional requests answered 304.", &s.not_modified);
    t.counter("arachne_retries_total", "Requests tried again after a retryable failure.", &s.retries);
    t.counter("arachne_redirects_total", "Redirect hops followed.", &s.redirects);
    t.counter("arachne_duplicates_skipped_total", "Discovered links already seen.", &s.duplicates_skipped);
    t.counter("arachne_robots_blocked_total", "URLs disallowed by robots.txt.", &s.robots_blocked);
    t.counter("arachne_out_of_scope_total", "URLs outside the scope.", &s.out_of_scope);
    t.counter("arachne_too_deep_total", "Links deeper than max_depth.", &s.too_deep);
    t.counter("arachne_schedule_firings_total", "Schedule firings.", &s.firings);
    t.counter("arachne_broker_reconnects_total", "Reconnections to a broker.", &s.reconnects);
    t.counter(
        "arachne_released_total",
        "Requests a stopping process gave back to a shared frontier unstarted.",
        &s.released,
    );

    t.family(
        "arachne_request_duration_seconds",
        "histogram",
        "Time from sending a request to having its body, retries included, by host (the first 50 hosts; later ones as `other`).",
    );
    s.hosts.for_each(|host, f| {
        let (cumulative, count, sum) = f.latency.snapshot();
        for (bound, n) in LATENCY_BUCKETS.iter().zip(&cumulative) {
            t.sample(
                "arachne_request_duration_seconds_bucket",
                &[("host", host), ("le", &bound.to_string())],
                n,
            );
        }
        t.sample("arachne_request_duration_seconds_bucket", &[("host", host), ("le", "+Inf")], count);
        t.sample("arachne_request_duration_seconds_sum", &[("host", host)], sum);
        t.sample("arachne_request_duration_seconds_count", &[("host", host)], count);
    });
    t.family(
        "arachne_host_errors_total",
        "counter",
        "Requests that failed for good, by host (bounded as above).",
    );
    s.hosts.for_each(|host, f| {
        t.sample("arachne_host_errors_total", &[("host", host)], f.errors.load(Ordering::Relaxed));
    });

    t.single(
        "arachne_in_flight_requests",
        "gauge",
        "Requests handed out and not finished.",
        s.in_flight.load(Ordering::Relaxed),
    );
    t.single(
        "arachne_frontier_requests",
        "gauge",
        "Requests waiting in the frontier.",
        s.queued.load(Ordering::Relaxed),
    );
    let queues = [QueueView::of(&state.requests), QueueView::of(&state.pages)];
    type PerQueue = (&'static str, &'static str, &'static str, fn(&QueueView) -> u64);
    let per_queue: [PerQueue; 4] = [
        ("arachne_queue_depth", "gauge", "Messages waiting in a bus queue.", |q| q.ready as u64),
        (
            "arachne_queue_unacked",
            "gauge",
            "Deliveries of a bus queue not settled yet (consumer lag).",
            |q| q.unacked as u64,
        ),
        ("arachne_redeliveries_total", "counter", "Deliveries given back to their queue unacked.", |q| {
            q.redeliveries
        }),
        ("arachne_dead_letters_total", "counter", "Messages dead-lettered.", |q| q.dead_letters),
    ];
    for (name, kind, help, value) in per_queue {
        t.family(name, kind, help);
        for q in &queues {
            t.sample(name, &[("queue", &q.name)], value(q));
        }
    }
    t.family("arachne_actor_restarts_total", "counter", "Restarts, by actor.");
    let restarts = state.collector.restarts();
    for child in state.controller.children() {
        t.sample(
            "arachne_actor_restarts_total",
            &[("actor", &child.name)],
            restarts.get(&child.name).map_or(0, |r| r.count),
        );
    }
    t.single(
        "arachne_events_total",
        "counter",
        "Events the dashboard saw on the `events` topic.",
        state.collector.events_seen(),
    );
    let paused = view.is_some_and(|v| v.paused);
    t.single("arachne_paused", "gauge", "1 while the crawl is paused by remote control.", u8::from(paused));

    let process = ProcessFigures::now();
    t.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", process.rss_bytes);
    t.single(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        process.cpu_seconds,
    );
    t.single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        state.started_ms as f64 / 1000.0,
    );
    t.0
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
