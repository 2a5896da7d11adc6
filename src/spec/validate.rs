//! Semantic checks of a deserialized spec: what types alone cannot say (a regex that does
//! not compile, a seed that is not a URL, zero concurrency, ...). Every check runs, so all
//! problems are reported at once; each is located through the YAML tree by key path.

use std::collections::HashMap;
use std::path::Path;

use super::error::SpecError;
use super::model::{
    BridgeDirection, BridgeKind, CrawlSpec, FieldSelector, FrontierBackend, OutputSpec, ScheduleSpec,
};
use super::tree::{Node, Seg};

/// What `{sandbox}` stands for while seeds are checked (the real port is known at run time).
const SANDBOX_PLACEHOLDER: &str = "http://127.0.0.1:1";

struct Check<'a> {
    root: &'a Node,
    origin: &'a str,
    errors: Vec<SpecError>,
}

impl Check<'_> {
    /// An error at the value of `path` (or its nearest ancestor present in the tree).
    fn value(&mut self, path: &[Seg<'_>], message: String, hint: Option<String>) {
        let src = self.root.value_src(path);
        let (message, hint) = match self.root.get(path) {
            Some(node) => (node.redact(message), hint.map(|h| node.redact(h))),
            None => (message, hint),
        };
        self.errors.push(src.error(self.origin, message, hint));
    }

    /// An error at the key of `path`.
    fn key(&mut self, path: &[Seg<'_>], message: String, hint: Option<String>) {
        let src = self.root.key_src(path);
        self.errors.push(src.error(self.origin, message, hint));
    }

    fn present(&self, path: &[Seg<'_>]) -> bool {
        self.root.get(path).is_some_and(|n| !n.is_null())
    }

    fn regex(&mut self, path: &[Seg<'_>], what: &str, pattern: &str) {
        if let Err(e) = regex::Regex::new(pattern) {
            self.value(path, format!("bad regex in {what}: {}", regex_reason(&e)), None);
        }
    }

    /// A list of regexes that the run compiles into one [`regex::RegexSet`] (when each one
    /// compiles alone: otherwise that one is reported).
    fn regex_set(&mut self, path: &[Seg<'_>], what: &str, patterns: &[String]) {
        if patterns.len() < 2 || patterns.iter().any(|p| regex::Regex::new(p).is_err()) {
            return;
        }
        if let Err(e) = regex::RegexSet::new(patterns) {
            self.value(
                path,
                format!("bad regexes in {what}: together, {}", regex_reason(&e)),
                Some("split or shorten the patterns".into()),
            );
        }
    }

    fn selector(&mut self, path: &[Seg<'_>], what: &str, css: &str) {
        if let Err(e) = crate::crawl::extract::parse_selector(css) {
            let reason = e.to_string();
            let reason = reason.trim_end_matches('.');
            let mut chars = reason.chars();
            let reason = match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
                None => String::new(),
            };
            self.value(
                path,
                format!("bad CSS selector '{}' in {what}: {reason}", shorten(css)),
                Some("use a CSS selector the streaming extractor (lol_html) accepts, e.g. `a[href]`, `h1`, `div.price > span`".into()),
            );
        }
    }
}

/// Whether two paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `text`, cut to its first 80 characters (with `...`) for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The one line of a regex error that says what is wrong (the crate's message is a small
/// drawing over several lines).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.lines().last().unwrap_or("").trim().to_string(), str::to_string)
}

/// Runs every check on `spec`, which was deserialized from `root`.
/// `spec_path` is the spec file, which no output may overwrite.
pub(crate) fn check(spec: &CrawlSpec, root: &Node, origin: &str, spec_path: Option<&Path>) -> Vec<SpecError> {
    use Seg::{I, K};
    let mut c = Check { root, origin, errors: Vec::new() };

    if spec.name.trim().is_empty() {
        c.value(
            &[K("name")],
            "name is empty".into(),
            Some("give the crawl a name, e.g. `name: my-crawl`".into()),
        );
    }

    if let Some(sandbox) = &spec.sandbox {
        if let Err(reason) = crate::sandbox::check_pages(sandbox.pages) {
            c.value(&[K("sandbox"), K("pages")], format!("sandbox.pages: {reason}"), None);
        }
    }

    // Seeds.
    if spec.seeds.is_empty()
        && !matches!(
            spec.frontier.backend,
            FrontierBackend::Redis | FrontierBackend::Kafka | FrontierBackend::Amqp
        )
    {
        c.value(
            &[K("seeds")],
            "seeds is empty: a crawl needs at least one start URL".into(),
            Some("add a URL, e.g. `seeds: [\"https://example.com/\"]`".into()),
        );
    }
    for (i, seed) in spec.seeds.iter().enumerate() {
        let path = [K("seeds"), I(i)];
        if seed.contains("{sandbox}") && spec.sandbox.is_none() {
            c.value(
                &path,
                format!("seed '{seed}' uses {{sandbox}} but there is no sandbox"),
                Some("add `sandbox: {}` (or `sandbox: { pages: 500 }`) to serve the built-in site".into()),
            );
            continue;
        }
        let url = seed.replace("{sandbox}", SANDBOX_PLACEHOLDER);
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => c.value(
                &path,
                format!("seed '{seed}' is not an http(s) URL (scheme '{}')", u.scheme()),
                Some("seeds are absolute http:// or https:// URLs".into()),
            ),
            Err(e) => c.value(
                &path,
                format!("seed '{seed}' is not an http(s) URL: {e}"),
                Some("seeds are absolute URLs, e.g. https://example.com/".into()),
            ),
        }
    }

    // Scope.
    for (i, domain) in spec.scope.domains.iter().enumerate() {
        let d = domain.trim();
        if d.is_empty() || d.contains('/') || d.contains(char::is_whitespace) {
            c.value(
                &[K("scope"), K("domains"), I(i)],
                format!("scope.domains[{i}] '{domain}' is not a host name"),
                Some("write bare host names, e.g. example.com (no scheme, no path)".into()),
            );
        }
    }
    for (list, patterns) in [("include", &spec.scope.include), ("exclude", &spec.scope.exclude)] {
        for (i, p) in patterns.iter().enumerate() {
            c.regex(&[K("scope"), K(list), I(i)], &format!("scope.{list}[{i}]"), p);
        }
    }
    for (i, rule) in spec.frontier.priorities.iter().enumerate() {
        let path = [K("frontier"), K("priorities"), I(i), K("match")];
        c.regex(&path, &format!("frontier.priorities[{i}].match"), &rule.matches);
    }
    // The run compiles each list into one set: patterns fine alone may be too large together.
    let priorities: Vec<String> = spec.frontier.priorities.iter().map(|r| r.matches.clone()).collect();
    for (path, what, patterns) in [
        ([K("scope"), K("include")], "scope.include", &spec.scope.include),
        ([K("scope"), K("exclude")], "scope.exclude", &spec.scope.exclude),
        ([K("frontier"), K("priorities")], "frontier.priorities", &priorities),
    ] {
        c.regex_set(&path, what, patterns);
    }

    // Fetch.
    let fetch = &spec.fetch;
    if fetch.concurrency == 0 {
        c.value(&[K("fetch"), K("concurrency")], "fetch.concurrency must be at least 1".into(), None);
    }
    let per_host = &fetch.per_host;
    if per_host.concurrency == 0 {
        c.value(
            &[K("fetch"), K("per_host"), K("concurrency")],
            "fetch.per_host.concurrency must be at least 1".into(),
            None,
        );
    } else if fetch.concurrency > 0
        && per_host.concurrency > fetch.concurrency
        && c.present(&[K("fetch"), K("per_host"), K("concurrency")])
    {
        c.value(
            &[K("fetch"), K("per_host"), K("concurrency")],
            format!(
                "fetch.per_host.concurrency ({}) is larger than fetch.concurrency ({})",
                per_host.concurrency, fetch.concurrency
            ),
            Some(format!("lower it to at most {}, or raise fetch.concurrency", fetch.concurrency)),
        );
    }
    if !per_host.rate.is_finite() || per_host.rate < 0.0 {
        c.value(
            &[K("fetch"), K("per_host"), K("rate")],
            format!(
                "fetch.per_host.rate must be a number of requests per second, 0 or more (found {})",
                per_host.rate
            ),
            Some("0 means no limit".into()),
        );
    } else if per_host.rate > 0.0 && per_host.rate < crate::crawl::frontier::MIN_RATE {
        c.value(
            &[K("fetch"), K("per_host"), K("rate")],
            format!("fetch.per_host.rate {} is less than one request a day", per_host.rate),
            Some(format!(
                "0 means no limit; the slowest rate is {:.8} (one a day)",
                crate::crawl::frontier::MIN_RATE
            )),
        );
    }
    if let Err(e) = reqwest::header::HeaderValue::from_str(&fetch.user_agent) {
        c.value(
            &[K("fetch"), K("user_agent")],
            format!("fetch.user_agent is not a usable HTTP header value: {e}"),
            Some("printable ASCII, no line breaks".into()),
        );
    }
    if fetch.timeout.0.is_zero() {
        c.value(&[K("fetch"), K("timeout")], "fetch.timeout must be longer than 0".into(), None);
    }
    if fetch.max_body.0 == 0 {
        c.value(&[K("fetch"), K("max_body")], "fetch.max_body must be larger than 0".into(), None);
    }

    // Parse.
    for (i, css) in spec.parse.follow.iter().enumerate() {
        c.selector(&[K("parse"), K("follow"), I(i)], &format!("parse.follow[{i}]"), css);
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, rule) in spec.parse.items.iter().enumerate() {
        let at = |k| [K("parse"), K("items"), I(i), K(k)];
        if rule.name.trim().is_empty() {
            c.value(&at("name"), format!("parse.items[{i}].name is empty"), None);
        } else if let Some(first) = names.insert(rule.name.as_str(), i) {
            let line = root.value_src(&[K("parse"), K("items"), I(first), K("name")]).line();
            c.value(
                &at("name"),
                format!("duplicate item rule name '{}'", rule.name),
                Some(match line {
                    Some(l) => format!("first used by parse.items[{first}] at line {l}; rename one of them"),
                    None => format!("first used by parse.items[{first}]; rename one of them"),
                }),
            );
        }
        c.regex(&at("match"), &format!("parse.items[{i}].match"), &rule.matches);
        if rule.fields.is_empty() {
            c.key(
                &at("fields"),
                format!("item rule '{}' has no fields", rule.name),
                Some("add at least one, e.g. `fields: { title: \"h1\" }`".into()),
            );
        }
        for (field, selector) in &rule.fields {
            let path = [K("parse"), K("items"), I(i), K("fields"), K(field)];
            let what = format!("parse.items[{i}].fields.{field}");
            match selector.parse::<FieldSelector>() {
                Ok(fs) => c.selector(&path, &what, &fs.css),
                Err(reason) => c.value(
                    &path,
                    format!("bad field selector '{selector}' in {what}: {reason}"),
                    Some(
                        "write `css selector` for the text, or `css selector @attr` for an attribute".into(),
                    ),
                ),
            }
        }
    }

    // Output.
    for (i, out) in spec.output.iter().enumerate() {
        if let OutputSpec::Jsonl(path) = out {
            if path.as_os_str().is_empty() {
                c.value(
                    &[K("output"), I(i), K("jsonl")],
                    format!("output[{i}].jsonl: the file path is empty"),
                    Some("e.g. `- jsonl: items.jsonl`".into()),
                );
            } else if spec_path.is_some_and(|spec| same_file(path, spec)) {
                c.value(
                    &[K("output"), I(i), K("jsonl")],
                    format!("output[{i}].jsonl is the spec file itself: the run would overwrite it"),
                    Some("write the items to another file, e.g. `- jsonl: items.jsonl`".into()),
                );
            }
        }
        if let OutputSpec::Redis(redis) = out {
            if redis.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
                c.value(
                    &[K("output"), I(i), K("redis"), K("key")],
                    format!("output[{i}].redis.key is empty"),
                    Some(format!("leave it out for the default `{}:items`", spec.name)),
                );
            }
            if spec.brokers.redis.is_none() {
                c.key(
                    &[K("output"), I(i), K("redis")],
                    format!("output[{i}] writes to Redis but `brokers.redis` is not set"),
                    Some("add `brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }`".into()),
                );
            }
        }
        if let OutputSpec::Amqp(amqp) = out {
            if spec.brokers.amqp.is_none() {
                c.key(
                    &[K("output"), I(i), K("amqp")],
                    format!("output[{i}] writes to AMQP but `brokers.amqp` is not set"),
                    Some(AMQP_HINT.into()),
                );
            }
            if amqp.exchange.is_empty() && amqp.routing_key.trim().is_empty() {
                c.value(
                    &[K("output"), I(i), K("amqp"), K("routing_key")],
                    format!("output[{i}].amqp: the default exchange (`exchange: \"\"`) needs a routing key, the queue's name"),
                    Some("e.g. `routing_key: items`, or name an exchange".into()),
                );
            }
        }
        if let OutputSpec::Kafka(kafka) = out {
            if kafka.topic.trim().is_empty() {
                c.value(
                    &[K("output"), I(i), K("kafka"), K("topic")],
                    format!("output[{i}].kafka.topic is empty"),
                    None,
                );
            }
            if spec.brokers.kafka.is_none() {
                c.key(
                    &[K("output"), I(i), K("kafka")],
                    format!("output[{i}] writes to Kafka but `brokers.kafka` is not set"),
                    Some(KAFKA_HINT.into()),
                );
            }
        }
    }

    check_brokers(&mut c, spec);

    if spec.frontier.backend == FrontierBackend::Amqp {
        if spec.brokers.amqp.is_none() {
            c.value(
                &[K("frontier"), K("backend")],
                "frontier.backend 'amqp' needs an AMQP broker".into(),
                Some(AMQP_HINT.into()),
            );
        }
        if spec.brokers.redis.is_none() {
            c.value(
                &[K("frontier"), K("backend")],
                "frontier.backend 'amqp' keeps its shared seen-set in Redis (RabbitMQ has no set), but `brokers.redis` is not set".into(),
                Some("add `brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }` (docs/amqp.md, \"Dedup\")".into()),
            );
        }
        if spec.frontier.order == crate::spec::QueueOrder::Lifo {
            c.value(
                &[K("frontier"), K("order")],
                "frontier.order 'lifo' is not possible with `backend: amqp`: a RabbitMQ queue is first in, first out".into(),
                Some("use `fifo`, or `priority` (the queue gets `x-max-priority`)".into()),
            );
        }
        if spec.frontier.order == crate::spec::QueueOrder::Priority
            && spec.frontier.amqp.kind == crate::bridges::amqp::QueueType::Quorum
        {
            c.value(
                &[K("frontier"), K("amqp"), K("type")],
                "frontier.amqp.type 'quorum' cannot keep `order: priority` (RabbitMQ 3.x quorum queues have no x-max-priority)".into(),
                Some("use `type: classic` (the default) with priorities".into()),
            );
        }
    }
    if spec.frontier.backend == FrontierBackend::Kafka && spec.brokers.kafka.is_none() {
        c.value(
            &[K("frontier"), K("backend")],
            "frontier.backend 'kafka' needs a Kafka broker".into(),
            Some(KAFKA_HINT.into()),
        );
    }
    if spec.frontier.kafka.partitions < 1 {
        c.value(
            &[K("frontier"), K("kafka"), K("partitions")],
            "frontier.kafka.partitions must be at least 1".into(),
            Some("the most processes that can share the crawl; e.g. 12".into()),
        );
    }
    if spec.frontier.kafka.replication < 1 {
        c.value(
            &[K("frontier"), K("kafka"), K("replication")],
            "frontier.kafka.replication must be at least 1".into(),
            None,
        );
    }
    if spec.frontier.backend == FrontierBackend::Redis && spec.brokers.redis.is_none() {
        c.value(
            &[K("frontier"), K("backend")],
            "frontier.backend 'redis' needs a Redis broker".into(),
            Some("add `brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }`".into()),
        );
    }
    if spec.frontier.memory.0 < crate::spec::MIN_FRONTIER_MEMORY {
        c.value(
            &[K("frontier"), K("memory")],
            format!("frontier.memory must be at least 64KiB (found {} bytes)", spec.frontier.memory.0),
            Some("the frontier's seen-set and waiting requests in memory; e.g. 16MiB (the default)".into()),
        );
    }
    if spec.frontier.lease.0.is_zero() {
        c.value(&[K("frontier"), K("lease")], "frontier.lease must be longer than 0".into(), None);
    }
    if spec.frontier.serializer == crate::spec::RedisSerializer::Pickle
        && (spec.frontier.backend != FrontierBackend::Redis
            || spec.frontier.layout != crate::spec::RedisLayout::ScrapyRedis)
    {
        c.value(
            &[K("frontier"), K("serializer")],
            "frontier.serializer 'pickle' needs `backend: redis` and `layout: scrapy-redis`".into(),
            Some("pickles are for scrapy-redis spiders; the native layout is always JSON".into()),
        );
    }
    if spec.frontier.dedup == crate::spec::Dedup::Bloom {
        if spec.frontier.backend != FrontierBackend::Redis
            || spec.frontier.layout != crate::spec::RedisLayout::Native
        {
            c.value(
                &[K("frontier"), K("dedup")],
                "frontier.dedup 'bloom' needs `backend: redis` and `layout: native`".into(),
                Some("scrapy-redis's dupefilter is a set; a local frontier dedups in memory".into()),
            );
        }
        let bloom = &spec.frontier.bloom;
        if bloom.capacity == 0 {
            c.value(
                &[K("frontier"), K("bloom"), K("capacity")],
                "frontier.bloom.capacity must be at least 1".into(),
                None,
            );
        }
        if !(bloom.error_rate > 0.0 && bloom.error_rate < 1.0) {
            c.value(
                &[K("frontier"), K("bloom"), K("error_rate")],
                format!("frontier.bloom.error_rate {} is not between 0 and 1", bloom.error_rate),
                Some("e.g. 0.001 (one new URL in a thousand taken for seen)".into()),
            );
        }
    }
    check_schedules(&mut c, spec);
    check_observe(&mut c, spec);
    check_routing(&mut c, spec);

    // Supervision.
    let sup = &spec.supervision;
    if sup.within.0.is_zero() {
        c.value(&[K("supervision"), K("within")], "supervision.within must be longer than 0".into(), None);
    }
    if sup.max_deliveries == 0 {
        c.value(
            &[K("supervision"), K("max_deliveries")],
            "supervision.max_deliveries must be at least 1".into(),
            Some("a message is dead-lettered after this many deliveries without an ack".into()),
        );
    }

    c.errors
}

/// Whether `name` may name a queue: it becomes part of a Redis key and a broker queue's
/// name, so letters, digits, `_`, `-` and `.` only.
pub(crate) fn is_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
}

/// `routes:` and `queues:` — queue names, each route's queue known, its regex and glob,
/// each queue's concurrency and rate, and with Kafka queue names that make topics.
fn check_routing(c: &mut Check<'_>, spec: &CrawlSpec) {
    use super::routing::DEFAULT_QUEUE;
    use Seg::{I, K};
    for (name, queue) in &spec.queues {
        if !is_queue_name(name) {
            c.key(
                &[K("queues"), K(name)],
                format!("queue name '{}' is not usable", shorten(name)),
                Some(
                    "letters, digits, `_`, `-` and `.` only (it names a Redis key and a broker queue)".into(),
                ),
            );
        }
        let at = |k| [K("queues"), K(name), K(k)];
        match queue.concurrency {
            Some(0) => {
                c.value(&at("concurrency"), format!("queues.{name}.concurrency must be at least 1"), None)
            }
            Some(n) if spec.fetch.concurrency > 0 && n > spec.fetch.concurrency => c.value(
                &at("concurrency"),
                format!(
                    "queues.{name}.concurrency ({n}) is larger than fetch.concurrency ({})",
                    spec.fetch.concurrency
                ),
                Some(format!("lower it to at most {}, or raise fetch.concurrency", spec.fetch.concurrency)),
            ),
            _ => {}
        }
        if let Some(rate) = queue.rate.filter(|r| r.is_limited()) {
            if rate.per_second() < crate::crawl::frontier::MIN_RATE {
                c.value(
                    &at("rate"),
                    format!("queues.{name}.rate {rate} is less than one request a day"),
                    Some("write e.g. `10/m` or `100/h`; leave it out for no limit".into()),
                );
            }
        }
    }
    let known = |q: &str| q == DEFAULT_QUEUE || spec.queues.contains_key(q);
    for (i, route) in spec.routes.iter().enumerate() {
        let at = |k| [K("routes"), I(i), K(k)];
        if !known(&route.queue) {
            let mut names: Vec<&str> = spec.queues.keys().map(String::as_str).collect();
            if !names.contains(&DEFAULT_QUEUE) {
                names.insert(0, DEFAULT_QUEUE);
            }
            let hint = match names.iter().min_by_key(|n| strsim::levenshtein(n, &route.queue)) {
                Some(near) if strsim::levenshtein(near, &route.queue) <= 2 => {
                    format!("did you mean '{near}'? (queues: {})", names.join(", "))
                }
                _ => format!(
                    "add it under `queues:` (e.g. `queues: {{ {}: {{}} }}`), or use one of: {}",
                    route.queue,
                    names.join(", ")
                ),
            };
            c.value(
                &at("queue"),
                format!("routes[{i}] sends to the unknown queue '{}'", route.queue),
                Some(hint),
            );
        }
        if route.matches.is_none() && route.host.is_none() {
            c.value(
                &[K("routes"), I(i)],
                format!("routes[{i}] has neither `match` nor `host`: it would match nothing"),
                Some("e.g. `{ match: \"\\\\.pdf$\", queue: documents }` or `{ host: \"*.example.org\", queue: slow }`".into()),
            );
        }
        if let Some(pattern) = &route.matches {
            c.regex(&at("match"), &format!("routes[{i}].match"), pattern);
        }
        if let Some(glob) = &route.host {
            let bad =
                glob.trim().is_empty() || glob.contains(['/', ':']) || glob.contains(char::is_whitespace);
            match crate::bus::Pattern::new(glob) {
                Err(e) => c.value(&at("host"), format!("routes[{i}].host: {e}"), None),
                Ok(_) if bad => c.value(
                    &at("host"),
                    format!("routes[{i}].host '{}' is not a host name glob", shorten(glob)),
                    Some(
                        "a host name with `*` and `?`, e.g. `*.example.org` (no scheme, port or path)".into(),
                    ),
                ),
                Ok(_) => {}
            }
        }
    }
    let routed = !spec.routes.is_empty() || spec.queues.keys().any(|q| q != DEFAULT_QUEUE);
    if routed && spec.frontier.backend == FrontierBackend::Kafka {
        check_kafka_queue_topics(c, spec);
    }
}

/// With Kafka each queue `q` is the topic `<requests topic>.q`: Kafka refuses a topic name
/// longer than 249 characters, and two names that differ only in `.` against `_` (they
/// collide in its metrics).
fn check_kafka_queue_topics(c: &mut Check<'_>, spec: &CrawlSpec) {
    use super::routing::DEFAULT_QUEUE;
    use Seg::K;
    const MAX_TOPIC: usize = 249;
    let requests = spec.frontier.kafka.topic.clone().unwrap_or_else(|| format!("{}.requests", spec.name));
    let mut seen: HashMap<String, &str> = HashMap::new();
    for name in spec.queues.keys().filter(|q| *q != DEFAULT_QUEUE) {
        let topic = format!("{requests}.{name}");
        if topic.len() > MAX_TOPIC {
            c.key(
                &[K("queues"), K(name)],
                format!(
                    "queue '{}' would be the Kafka topic '{}', longer than Kafka's {MAX_TOPIC} characters",
                    shorten(name),
                    shorten(&topic)
                ),
                Some("use a shorter queue name (or `frontier.kafka.topic`)".into()),
            );
        }
        if let Some(other) = seen.insert(topic.replace('.', "_"), name) {
            c.key(
                &[K("queues"), K(name)],
                format!(
                    "queues '{other}' and '{name}' would be Kafka topics that differ only in `.` and `_`, which Kafka refuses"
                ),
                Some("rename one of them".into()),
            );
        }
    }
}

/// `observe:` — a listen address that parses, and a token wherever it is not loopback.
fn check_observe(c: &mut Check<'_>, spec: &CrawlSpec) {
    use Seg::K;
    let Some(observe) = &spec.observe else { return };
    if observe.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        c.value(
            &[K("observe"), K("token")],
            "observe.token is empty".into(),
            Some("use a long random value from the environment: `token: \"${ARACHNE_TOKEN}\"`".into()),
        );
    }
    let Some(listen) = &observe.listen else { return };
    match crate::observe::dashboard::parse_listen(listen) {
        Err(reason) => c.value(
            &[K("observe"), K("listen")],
            format!("observe.listen '{listen}' is not an address to listen on: {reason}"),
            Some("write `host:port`, e.g. `127.0.0.1:9000`".into()),
        ),
        Ok(addr) if !addr.ip().is_loopback() && observe.token.is_none() => c.value(
            &[K("observe"), K("listen")],
            format!("observe.listen '{listen}' is not a loopback address, and there is no observe.token"),
            Some("anyone who reaches it could steer the crawl: add `token: \"${ARACHNE_TOKEN}\"`, or listen on 127.0.0.1".into()),
        ),
        Ok(_) => {}
    }
}

/// `brokers:` and `bridges:` — a usable Redis URL; each bridge of a supported kind, with
/// what its kind needs.
fn check_brokers(c: &mut Check<'_>, spec: &CrawlSpec) {
    use Seg::{I, K};
    if let Some(redis) = &spec.brokers.redis {
        if let Err(reason) = crate::bridges::redis::check_url(&redis.url) {
            c.value(
                &[K("brokers"), K("redis"), K("url")],
                format!("brokers.redis.url is not a usable Redis URL: {reason}"),
                Some("e.g. `redis://127.0.0.1:6379/0`, `rediss://:${REDIS_PASSWORD}@host:6380/`".into()),
            );
        }
        if redis.connect_timeout.0.is_zero() {
            c.value(
                &[K("brokers"), K("redis"), K("connect_timeout")],
                "brokers.redis.connect_timeout must be longer than 0".into(),
                None,
            );
        }
        check_redis_cluster(c, spec, redis);
    }
    if let Some(kafka) = &spec.brokers.kafka {
        if let Err(reason) = kafka.check_bootstrap() {
            c.value(
                &[K("brokers"), K("kafka"), K("bootstrap")],
                format!("brokers.kafka.bootstrap is not a usable server list: {reason}"),
                Some("e.g. `bootstrap: \"127.0.0.1:9092\"` or `\"k1:9092,k2:9092\"`".into()),
            );
        }
        if kafka.connect_timeout.0.is_zero() {
            c.value(
                &[K("brokers"), K("kafka"), K("connect_timeout")],
                "brokers.kafka.connect_timeout must be longer than 0".into(),
                None,
            );
        }
    }
    if let Some(amqp) = &spec.brokers.amqp {
        check_amqp_broker(c, amqp);
    }
    let mut inbound: HashMap<&str, usize> = HashMap::new();
    for (i, b) in spec.bridges.iter().enumerate() {
        let at = |k| [K("bridges"), I(i), K(k)];
        if matches!(b.kind, BridgeKind::Kafka | BridgeKind::Amqp) {
            check_broker_bridge(c, spec, i, b);
            continue;
        }
        if b.kind == BridgeKind::RedisQueue {
            check_redis_queue_bridge(c, spec, i, b);
            continue;
        }
        if b.kind != BridgeKind::RedisPubsub {
            c.value(
                &at("kind"),
                format!(
                    "bridges[{i}]: kind '{}' is not supported yet in this version of arachne",
                    bridge_kind_name(b.kind)
                ),
                Some("only `redis-pubsub`, `kafka` and `amqp` are supported for now".into()),
            );
            continue;
        }
        if spec.brokers.redis.is_none() {
            c.key(
                &at("kind"),
                format!("bridges[{i}] is a Redis bridge but `brokers.redis` is not set"),
                Some("add `brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }`".into()),
            );
        }
        let topic = b.topic.trim();
        if topic.is_empty() {
            c.value(&at("topic"), format!("bridges[{i}].topic is empty"), None);
        } else if b.direction == BridgeDirection::In {
            if RESERVED_TOPICS.contains(&topic) {
                c.value(
                    &at("topic"),
                    format!(
                        "bridges[{i}]: an inbound bridge cannot publish on the crawl's own topic '{topic}'"
                    ),
                    Some(format!(
                        "inbound messages go to a topic of their own, e.g. `remote.{topic}` (reserved: {})",
                        RESERVED_TOPICS.join(", ")
                    )),
                );
            } else if let Some(first) = inbound.insert(topic, i) {
                c.value(
                    &at("topic"),
                    format!("bridges[{i}]: topic '{topic}' is already fed by bridges[{first}]"),
                    Some("give each inbound bridge its own topic, or use one `pattern: true` bridge".into()),
                );
            }
        } else if matches!(topic, "requests" | "pages") {
            c.value(
                &at("topic"),
                format!("bridges[{i}]: '{topic}' is a queue, which a redis-pubsub bridge cannot carry"),
                Some("bridge a topic: `events`, `items`, `schedules`, or one of your own".into()),
            );
        }
        match b.channel.as_deref().map(str::trim) {
            None | Some("") => c.key(
                &[K("bridges"), I(i)],
                format!("bridges[{i}] (redis-pubsub) has no `channel`"),
                Some("add the Redis channel, e.g. `channel: \"arachne:events\"`".into()),
            ),
            Some(channel) => {
                if b.pattern && b.direction == BridgeDirection::Out {
                    c.value(
                        &at("pattern"),
                        format!("bridges[{i}]: `pattern: true` applies to inbound bridges only"),
                        Some("an outbound bridge PUBLISHes to one channel: remove `pattern`".into()),
                    );
                }
                if b.pattern {
                    if let Err(e) = crate::bus::Pattern::new(channel) {
                        c.value(&at("channel"), format!("bridges[{i}]: bad channel pattern: {e}"), None);
                    }
                }
            }
        }
        if b.health_check_interval.0.is_zero() {
            c.value(
                &at("health_check_interval"),
                format!("bridges[{i}].health_check_interval must be longer than 0"),
                Some("e.g. `health_check_interval: 5s`".into()),
            );
        }
    }
}

const KAFKA_HINT: &str = "add `brokers: { kafka: { bootstrap: \"127.0.0.1:9092\" } }`";

/// A `kind: kafka` bridge: a broker, a Kafka topic (`channel`), a local topic that is not
/// one of the crawl's queues, and no Redis-only keys.
/// A `kafka` or `amqp` bridge: its broker is set, it names the broker's side, and it
/// bridges a topic the crawl lets it.
fn check_broker_bridge(c: &mut Check<'_>, spec: &CrawlSpec, i: usize, b: &crate::spec::BridgeSpec) {
    use Seg::{I, K};
    let at = |k| [K("bridges"), I(i), K(k)];
    let kafka = b.kind == BridgeKind::Kafka;
    let (kind, title) = if kafka { ("kafka", "Kafka") } else { ("amqp", "AMQP") };
    let missing = if kafka { spec.brokers.kafka.is_none() } else { spec.brokers.amqp.is_none() };
    if missing {
        c.key(
            &at("kind"),
            format!(
                "bridges[{i}] is a{} {title} bridge but `brokers.{kind}` is not set",
                if kafka { "" } else { "n" }
            ),
            Some(if kafka { KAFKA_HINT } else { AMQP_HINT }.into()),
        );
    }
    let example = match (kafka, b.direction) {
        (true, _) => "the Kafka topic, e.g. `channel: \"crawl.events\"`",
        (false, BridgeDirection::Out) => "the exchange, e.g. `channel: \"crawl.events\"`",
        (false, BridgeDirection::In) => "the queue, e.g. `channel: \"crawl.commands\"`",
    };
    if b.channel.as_deref().map(str::trim).unwrap_or("").is_empty() {
        c.key(
            &[K("bridges"), I(i)],
            format!("bridges[{i}] ({kind}) has no `channel`"),
            Some(format!("add {example}")),
        );
    }
    let topic = b.topic.trim();
    if topic.is_empty() {
        c.value(&at("topic"), format!("bridges[{i}].topic is empty"), None);
    } else if matches!(topic, "requests" | "pages") {
        c.value(
            &at("topic"),
            format!("bridges[{i}]: '{topic}' is a queue of the crawl; share the crawl with `frontier.backend: {kind}`"),
            Some("bridge a topic: `events`, `items`, `schedules`, or one of your own".into()),
        );
    } else if b.direction == BridgeDirection::In && RESERVED_TOPICS.contains(&topic) {
        c.value(
            &at("topic"),
            format!("bridges[{i}]: an inbound bridge cannot publish on the crawl's own topic '{topic}'"),
            Some(format!("inbound messages go to a topic of their own, e.g. `remote.{topic}`")),
        );
    }
    if b.pattern {
        c.value(&at("pattern"), format!("bridges[{i}]: `pattern` is for redis-pubsub bridges"), None);
    }
    if kafka && b.group.is_some() && b.direction == BridgeDirection::Out {
        c.value(&at("group"), format!("bridges[{i}]: `group` applies to inbound kafka bridges only"), None);
    }
    if b.group.is_some() && !kafka {
        c.value(&at("group"), format!("bridges[{i}]: `group` applies to kafka bridges only"), None);
    }
}

/// `brokers.redis.cluster` and `nodes`: seed nodes over TCP on database 0, and nothing
/// that needs one Redis server (the AMQP frontier's seen-set) or keys of one call on more
/// than one slot (a redis-queue key without a hash tag).
fn check_redis_cluster(c: &mut Check<'_>, spec: &CrawlSpec, redis: &crate::spec::RedisBrokerSpec) {
    use Seg::{I, K};
    if !redis.cluster {
        if !redis.nodes.is_empty() {
            c.value(
                &[K("brokers"), K("redis"), K("nodes")],
                "brokers.redis.nodes are seed nodes of a Redis Cluster, but `cluster` is not set".into(),
                Some("add `cluster: true` (docs/redis.md, \"Redis Cluster\"), or leave `nodes` out".into()),
            );
        }
        return;
    }
    if let Err(reason) = crate::bridges::redis::check_cluster_url(&redis.url) {
        c.value(
            &[K("brokers"), K("redis"), K("url")],
            format!("brokers.redis.url is not a usable Redis Cluster node: {reason}"),
            Some("e.g. `redis://127.0.0.1:7000/`".into()),
        );
    }
    for (i, node) in redis.nodes.iter().enumerate() {
        if let Err(reason) = crate::bridges::redis::check_cluster_url(node) {
            c.value(
                &[K("brokers"), K("redis"), K("nodes"), I(i)],
                format!("brokers.redis.nodes[{i}] is not a usable Redis Cluster node: {reason}"),
                Some("e.g. `redis://127.0.0.1:7001/`".into()),
            );
        }
    }
    if spec.frontier.backend == FrontierBackend::Amqp {
        c.value(
            &[K("brokers"), K("redis"), K("cluster")],
            "frontier.backend 'amqp' keeps its seen-set on one Redis server: a Redis Cluster is not supported there".into(),
            Some("use `backend: redis` on the cluster, or a single Redis server for the AMQP frontier".into()),
        );
    }
    for (i, b) in spec.bridges.iter().enumerate() {
        let Some(channel) = b.channel.as_deref() else { continue };
        if b.kind == BridgeKind::RedisQueue && !has_hash_tag(channel) {
            c.value(
                &[K("bridges"), I(i), K("channel")],
                format!(
                    "bridges[{i}]: on a Redis Cluster the redis-queue key '{channel}' needs a hash tag, so that \
                     its leases (`{channel}:leases`) land on its slot"
                ),
                Some(format!("e.g. `channel: \"{{{channel}}}\"` (the part in braces picks the slot)")),
            );
        }
    }
}

/// Whether a Redis key has a non-empty hash tag (`{...}`): the part Redis Cluster hashes.
fn has_hash_tag(key: &str) -> bool {
    key.find('{').is_some_and(|open| key[open + 1..].find('}').is_some_and(|close| close > 0))
}

/// A `kind: redis-queue` bridge: a Redis broker, a key (`channel`), a local queue of its
/// own (not one of the crawl's channels), a lease longer than 0, no pub/sub-only keys.
fn check_redis_queue_bridge(c: &mut Check<'_>, spec: &CrawlSpec, i: usize, b: &crate::spec::BridgeSpec) {
    use Seg::{I, K};
    let at = |k| [K("bridges"), I(i), K(k)];
    if spec.brokers.redis.is_none() {
        c.key(
            &at("kind"),
            format!("bridges[{i}] is a Redis bridge but `brokers.redis` is not set"),
            Some("add `brokers: { redis: { url: \"redis://127.0.0.1:6379/\" } }`".into()),
        );
    }
    if b.channel.as_deref().map(str::trim).unwrap_or("").is_empty() {
        c.key(
            &[K("bridges"), I(i)],
            format!("bridges[{i}] (redis-queue) has no `channel`"),
            Some("add the Redis key of the queue, e.g. `channel: \"jobs:requests\"`".into()),
        );
    }
    let topic = b.topic.trim();
    if topic.is_empty() {
        c.value(&at("topic"), format!("bridges[{i}].topic is empty"), None);
    } else if RESERVED_TOPICS.contains(&topic) || matches!(topic, "requests" | "pages") {
        c.value(
            &at("topic"),
            format!("bridges[{i}]: '{topic}' is one of the crawl's own channels; a redis-queue bridge needs a queue of its own"),
            Some("e.g. `topic: jobs`".into()),
        );
    }
    if b.pattern {
        c.value(&at("pattern"), format!("bridges[{i}]: `pattern` is for redis-pubsub bridges"), None);
    }
    if b.lease.is_some_and(|l| l.0.is_zero()) {
        c.value(&at("lease"), format!("bridges[{i}].lease must be longer than 0"), None);
    }
}

/// How to set `brokers.amqp`.
const AMQP_HINT: &str = "add `brokers: { amqp: { url: \"amqp://127.0.0.1:5672/%2f\" } }` (docs/amqp.md)";

/// `brokers.amqp`: a usable URL, timeouts, and a topology whose bindings name declared (or
/// at least named) exchanges with the keys their type reads.
fn check_amqp_broker(c: &mut Check<'_>, amqp: &crate::bridges::amqp::AmqpBrokerSpec) {
    use crate::bridges::amqp::ExchangeType;
    use Seg::{I, K};
    if let Err(reason) = crate::bridges::amqp::check_url(&amqp.url) {
        c.value(
            &[K("brokers"), K("amqp"), K("url")],
            format!("brokers.amqp.url is not a usable AMQP URL: {reason}"),
            Some("e.g. `amqp://127.0.0.1:5672/%2f`, `amqps://app:${AMQP_PASSWORD}@host:5671/crawl`".into()),
        );
    }
    for key in ["connect_timeout", "heartbeat"] {
        let zero =
            if key == "heartbeat" { amqp.heartbeat.0.is_zero() } else { amqp.connect_timeout.0.is_zero() };
        if zero {
            c.value(
                &[K("brokers"), K("amqp"), K(key)],
                format!("brokers.amqp.{key} must be longer than 0"),
                None,
            );
        }
    }
    if amqp.prefetch == Some(0) {
        c.value(
            &[K("brokers"), K("amqp"), K("prefetch")],
            "brokers.amqp.prefetch must be at least 1 (0 would mean unlimited)".into(),
            Some("leave it out to use the fetch concurrency".into()),
        );
    }
    let topology = &amqp.topology;
    for (i, q) in topology.queues.iter().enumerate() {
        if q.kind == crate::bridges::amqp::QueueType::Quorum && (q.exclusive || !q.durable) {
            c.value(
                &[K("brokers"), K("amqp"), K("topology"), K("queues"), I(i)],
                format!("queue '{}': a quorum queue is always durable and never exclusive", q.name),
                Some("use `type: classic` for an exclusive or transient queue".into()),
            );
        }
    }
    for (i, b) in topology.bindings.iter().enumerate() {
        let at = [K("brokers"), K("amqp"), K("topology"), K("bindings"), I(i)];
        let kind = topology.exchanges.iter().find(|x| x.name == b.exchange).map(|x| x.kind);
        if kind == Some(ExchangeType::Headers) && b.headers.is_empty() {
            c.value(
                &at,
                format!("binding to headers exchange '{}' has no `headers`", b.exchange),
                Some("e.g. `headers: { kind: pdf }, match: all`".into()),
            );
        }
        if kind.is_some_and(|k| k != ExchangeType::Headers) && !b.headers.is_empty() {
            c.value(
                &at,
                format!("binding to exchange '{}': `headers` apply to headers exchanges only", b.exchange),
                Some("a direct or topic exchange routes on `routing_key`".into()),
            );
        }
    }
}

fn bridge_kind_name(k: BridgeKind) -> &'static str {
    match k {
        BridgeKind::RedisPubsub => "redis-pubsub",
        BridgeKind::RedisQueue => "redis-queue",
        BridgeKind::Kafka => "kafka",
        BridgeKind::Amqp => "amqp",
    }
}

/// A schedule's `cron`, `timezone` and `solar` parse as the Clock will parse them.
#[cfg(feature = "schedules")]
fn check_calendar(c: &mut Check<'_>, s: &ScheduleSpec, i: usize, label: &str) {
    use crate::bus::{parse_coordinates, parse_cron, parse_timezone, ScheduleError};
    use Seg::{I, K};
    let at = |k| [K("schedules"), I(i), K(k)];
    if let Some(pattern) = &s.cron {
        match parse_cron(pattern) {
            Err(ScheduleError::BadCron { reason, .. }) => c.value(
                &at("cron"),
                format!("{label}: bad cron pattern '{pattern}': {reason}"),
                Some("6 fields with seconds first (`0 30 7 * * Mon`: 07:30:00 on Mondays), or the classic 5 (`30 7 * * Mon`)".into()),
            ),
            Err(e) => c.value(&at("cron"), format!("{label}: {e}"), None),
            Ok(_) => {
                // Parses; does it ever match (the 30th of February does not)?
                if let Err(e @ ScheduleError::NeverFires(_)) = crate::bus::Schedule::cron(&s.name, pattern, "UTC") {
                    c.value(&at("cron"), format!("{label}: {e}"), None);
                }
            }
        }
    }
    if let Some(tz) = &s.timezone {
        if s.cron.is_none() {
            c.key(
                &at("timezone"),
                format!("{label}: 'timezone' applies to 'cron' only"),
                Some(
                    "'every' counts real time and 'solar' events are the same instant everywhere: remove it"
                        .into(),
                ),
            );
        } else if parse_timezone(tz).is_err() {
            c.value(&at("timezone"), format!("{label}: unknown time zone '{tz}'"), Some(timezone_hint(tz)));
        }
    }
    if let Some(solar) = &s.solar {
        if parse_coordinates(solar.lat, 0.0).is_err() {
            c.value(
                &[K("schedules"), I(i), K("solar"), K("lat")],
                format!("{label}: latitude {} is out of range", solar.lat),
                Some("degrees from -90 (south pole) to 90 (north pole)".into()),
            );
        }
        if parse_coordinates(0.0, solar.lon).is_err() {
            c.value(
                &[K("schedules"), I(i), K("solar"), K("lon")],
                format!("{label}: longitude {} is out of range", solar.lon),
                Some("degrees from -180 (west) to 180 (east)".into()),
            );
        }
    }
}

/// Without the `schedules` feature, `cron` and `solar` (and so `timezone`) are errors.
#[cfg(not(feature = "schedules"))]
fn check_calendar(c: &mut Check<'_>, s: &ScheduleSpec, i: usize, label: &str) {
    use Seg::{I, K};
    for (key, present) in [("cron", s.cron.is_some()), ("solar", s.solar.is_some())] {
        if present {
            let e = crate::bus::ScheduleError::NotBuilt(key);
            c.value(&[K("schedules"), I(i), K(key)], format!("{label}: {e}"), None);
        }
    }
}

/// Bus channels of the crawl itself, which a schedule may not publish to.
const RESERVED_TOPICS: [&str; 5] = ["requests", "pages", "items", "events", "schedules"];

/// `schedules:` — each entry has exactly one trigger and one action, and every part of it
/// parses as the Clock will parse it.
fn check_schedules(c: &mut Check<'_>, spec: &CrawlSpec) {
    use Seg::{I, K};

    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, s) in spec.schedules.iter().enumerate() {
        let before = c.errors.len();
        let at = |k| [K("schedules"), I(i), K(k)];
        let entry = [K("schedules"), I(i)];
        let label = if s.name.trim().is_empty() {
            format!("schedules[{i}]")
        } else {
            format!("schedule '{}'", s.name)
        };

        if s.name.trim().is_empty() {
            c.value(&at("name"), format!("schedules[{i}].name is empty"), None);
        } else if let Some(first) = names.insert(s.name.as_str(), i) {
            let line = c.root.value_src(&[K("schedules"), I(first), K("name")]).line();
            c.value(
                &at("name"),
                format!("duplicate schedule name '{}'", s.name),
                Some(match line {
                    Some(l) => format!("first used by schedules[{first}] at line {l}; rename one of them"),
                    None => format!("first used by schedules[{first}]; rename one of them"),
                }),
            );
        }

        // When: exactly one of every / cron / solar. Read from the tree, so that a key whose
        // value was reported as bad still counts where it is left in; with a misspelt key,
        // its own "did you mean" error says it all.
        let triggers: Vec<&str> =
            ["every", "cron", "solar"].into_iter().filter(|k| c.present(&at(k))).collect();
        let misspelt = has_unknown_key(c.root.get(&entry), SCHEDULE_KEYS);
        match triggers.as_slice() {
            [] if misspelt => {}
            [] => c.key(
                &entry,
                format!("{label} has no valid 'every', 'cron' or 'solar': it would never fire"),
                Some("add one, e.g. `every: 6h`, `cron: \"0 30 7 * * Mon\"` or `solar: { event: sunset, lat: 48.85, lon: 2.35 }`".into()),
            ),
            [_] => {}
            [first, rest @ ..] => {
                for other in rest {
                    c.key(
                        &at(other),
                        format!("{label} has both '{first}' and '{other}'"),
                        Some("a schedule has exactly one of 'every', 'cron' or 'solar': split it in two".into()),
                    );
                }
            }
        }
        if let Some(every) = s.every {
            if every.0.is_zero() {
                c.value(
                    &at("every"),
                    format!("{label}: 'every' must be longer than 0"),
                    Some("e.g. `every: 6h`".into()),
                );
            } else if !s.jitter.0.is_zero() && s.jitter.0 >= every.0 {
                c.value(
                    &at("jitter"),
                    format!("{label}: jitter ({}) is not shorter than its period ({every})", s.jitter),
                    Some(
                        "keep the jitter well under the period, or firings would run into each other".into(),
                    ),
                );
            }
        }
        check_calendar(c, s, i, &label);

        // What: exactly one of action / publish.
        match (c.present(&at("action")), c.present(&at("publish"))) {
            (false, false) if misspelt => {}
            (false, false) => c.key(
                &entry,
                format!("{label} has neither 'action' nor 'publish': its firings would do nothing"),
                Some("add `action: reseed`, or `publish: { topic: NAME }`".into()),
            ),
            (true, true) => c.key(
                &at("publish"),
                format!("{label} has both 'action' and 'publish'"),
                Some("a schedule does one thing: split it in two (every firing is also on the `schedules` topic)".into()),
            ),
            _ => {}
        }
        if let Some(publish) = &s.publish {
            let topic = publish.topic.trim();
            let path = [K("schedules"), I(i), K("publish"), K("topic")];
            if topic.is_empty() {
                c.value(&path, format!("{label}: publish.topic is empty"), None);
            } else if RESERVED_TOPICS.contains(&topic) {
                c.value(
                    &path,
                    format!("{label}: '{topic}' is one of the crawl's own channels"),
                    Some(format!(
                        "pick another name (every firing is published on `schedules` anyway; reserved: {})",
                        RESERVED_TOPICS.join(", ")
                    )),
                );
            }
        }
        // What the Clock builds at run time: anything the checks above missed is found here.
        if c.errors.len() == before && !misspelt {
            if let Err(e) = crate::bus::Schedule::from_spec(s, chrono::Utc::now()) {
                c.key(&entry, format!("{label}: {e}"), None);
            }
        }
    }
}

/// The keys of a `schedules:` entry.
const SCHEDULE_KEYS: &[&str] =
    &["name", "every", "cron", "solar", "timezone", "jitter", "misfire", "action", "publish"];

/// True when `node` is a mapping with a key outside `known` (reported as unknown already).
fn has_unknown_key(node: Option<&Node>, known: &[&str]) -> bool {
    match node.map(|n| &n.kind) {
        Some(super::tree::Kind::Map(entries)) => entries.iter().any(|e| !known.contains(&e.key.as_str())),
        _ => false,
    }
}

#[cfg(feature = "schedules")]
/// A hint for an unknown time zone: the zone it may have meant.
fn timezone_hint(name: &str) -> String {
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    if let Some(z) = zones.iter().find(|z| z.eq_ignore_ascii_case(name.trim())) {
        return format!("did you mean '{z}'? (names are case-sensitive)");
    }
    let lower: Vec<String> = zones.iter().map(|z| z.to_ascii_lowercase()).collect();
    let lower_refs: Vec<&str> = lower.iter().map(String::as_str).collect();
    match super::de::nearest(name.trim(), &lower_refs).and_then(|l| lower_refs.iter().position(|z| *z == l)) {
        Some(i) => {
            format!("did you mean '{}'? (an IANA name such as Europe/Paris, America/New_York, UTC)", zones[i])
        }
        None => "use an IANA name such as Europe/Paris, America/New_York, UTC".to_string(),
    }
}

#[cfg(all(test, not(feature = "schedules")))]
mod not_built_tests {
    #[test]
    fn cron_and_solar_say_the_feature_is_missing_and_every_works() {
        let base = "name: t\nseeds: [\"https://example.com/\"]\n";
        let cron = format!("{base}schedules: [{{ name: c, cron: \"0 0 * * *\", action: reseed }}]\n");
        let err = crate::spec::load_str(&cron, "t.yaml", crate::spec::NO_OVERRIDES).unwrap_err().to_string();
        assert!(err.contains("t.yaml:3:30: schedule 'c': this build has no cron schedules"), "{err}");
        assert!(err.contains("rebuild with --features schedules"), "{err}");
        let every = format!("{base}schedules: [{{ name: e, every: 6h, action: reseed }}]\n");
        crate::spec::load_str(&every, "t.yaml", crate::spec::NO_OVERRIDES).expect("every works in any build");
    }
}
