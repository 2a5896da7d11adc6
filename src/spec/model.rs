//! The crawl spec's types: what `crawl.yaml` may say, with every default.
//!
//! This is a contract (DESIGN.md, "The crawl spec"): names may grow, never change.
//! Every struct denies unknown keys so that a typo is an error, not a silent default.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::{ByteSize, HumanDuration};

/// A whole crawl spec, as read from YAML.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrawlSpec {
    /// The crawl's name: used in logs, and as a key prefix by broker-backed parts.
    pub name: String,
    /// Serve the built-in sandbox site on 127.0.0.1 for this run.
    #[serde(default)]
    pub sandbox: Option<SandboxSpec>,
    /// Start URLs; `{sandbox}` is replaced by the sandbox's base URL.
    pub seeds: Vec<String>,
    /// What may be fetched.
    #[serde(default)]
    pub scope: ScopeSpec,
    /// How pages are fetched.
    #[serde(default)]
    pub fetch: FetchSpec,
    /// What is taken from a page: links to follow and items.
    #[serde(default)]
    pub parse: ParseSpec,
    /// Where items go.
    #[serde(default = "default_output")]
    pub output: Vec<OutputSpec>,
    /// Where the frontier lives and in which order it hands out requests.
    #[serde(default)]
    pub frontier: FrontierSpec,
    /// Celery-style routes: the first whose `match` (URL regex) or `host` (glob) fits a
    /// request sends it to its `queue`; `default` otherwise (docs/routing.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<super::routing::RouteSpec>,
    /// Named queues and what each gets: `concurrency`, `rate` (`10/m`), `retries`,
    /// `priority` (docs/routing.md). `default` may be listed too.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub queues: IndexMap<String, super::routing::QueueSpec>,
    /// Broker connection settings: `redis`, `kafka`, `amqp`.
    #[serde(default)]
    pub brokers: BrokersSpec,
    /// Bridges between local topics and brokers (`redis-pubsub`, `kafka`, `amqp`).
    #[serde(default)]
    pub bridges: Vec<BridgeSpec>,
    /// Periodic schedules (`every`, `cron` or `solar`), run by the Clock actor.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Restart policy of the actor tree.
    #[serde(default)]
    pub supervision: SupervisionSpec,
    /// The live dashboard, `/metrics` and remote control (docs/observe.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe: Option<ObserveSpec>,
}

/// `observe:` — serve the dashboard, the JSON API and `/metrics` during the run.
#[derive(Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    /// `host:port` to listen on; `127.0.0.1:9000` when absent. Anything but a loopback
    /// address needs a `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The bearer token every control action must carry. Put it in `${ENV}`. Never printed
    /// nor serialised. Without one, the run makes up a random token and prints it.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
}

impl fmt::Debug for ObserveSpec {
    /// Hides the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserveSpec")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// One entry of `schedules:`: when it fires (exactly one of `every`, `cron`, `solar`) and
/// what a firing does (exactly one of `action`, `publish`). The exactly-one rules, the cron
/// pattern, the time zone and the coordinates are checked by validation, with positions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The schedule's name, unique among the schedules; carried by every firing.
    pub name: String,
    /// A fixed period (`30s`, `6h`), counted from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<HumanDuration>,
    /// A cron pattern: 6 fields with seconds first (`0 30 7 * * Mon`), or the classic 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A daily solar event at a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solar: Option<SolarSpec>,
    /// The IANA time zone a `cron` pattern is read in (`Europe/Paris`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A random delay from 0 up to this, added to each firing (spreads load).
    #[serde(default = "default_jitter")]
    pub jitter: HumanDuration,
    /// What to do with firing instants that passed while the process was busy or asleep.
    #[serde(default)]
    pub misfire: Misfire,
    /// A built-in action to run on each firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ScheduleAction>,
    /// Publish each firing to a bus topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishSpec>,
}

/// `solar:` — a sun event at a place, every day it happens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SolarSpec {
    /// Which event.
    pub event: SolarEventKind,
    /// Latitude in degrees, -90 to 90 (north is positive).
    pub lat: f64,
    /// Longitude in degrees, -180 to 180 (east is positive).
    pub lon: f64,
}

/// A daily solar event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SolarEventKind {
    /// The sun's upper rim appears on the horizon.
    Sunrise,
    /// The sun's upper rim disappears below the horizon.
    Sunset,
    /// Civil dawn: the sun 6 degrees below the horizon, in the morning.
    Dawn,
    /// Civil dusk: the sun 6 degrees below the horizon, in the evening.
    Dusk,
    /// Solar noon: the sun crosses the meridian (every day has one).
    Noon,
}

/// What a schedule does with firing instants it missed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Drop them and wait for the next instant.
    #[default]
    Skip,
    /// Fire once, right away, for all of them.
    FireOnce,
}

/// A built-in action of a schedule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleAction {
    /// Put the seeds back into the frontier (a recrawl).
    Reseed,
}

/// `publish:` — where a schedule's firings go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// The bus topic each firing is published to (as a `Firing`).
    pub topic: String,
}

/// `sandbox:` — start the built-in demo site inside the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// Number of item pages on the site.
    #[serde(default = "default_sandbox_pages")]
    pub pages: u32,
    /// Add the hard cases (redirects, errors, slow and huge pages, charsets, ...).
    #[serde(default)]
    pub traps: bool,
    /// Port to listen on; 0 picks a free one.
    #[serde(default)]
    pub port: u16,
}

/// `scope:` — which URLs are in the crawl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// Hosts that may be fetched; empty means the seeds' hosts.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Links deeper than this (seeds are depth 0) are not followed.
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
    /// Stop admitting new requests after this many; 0 means no limit.
    #[serde(default)]
    pub max_pages: u64,
    /// Stop after writing this many items: no item past the limit is published (every sink
    /// writes exactly this many when the site has that many), and the crawl stops admitting
    /// work once it is reached; 0 means no limit.
    #[serde(default)]
    pub max_items: u64,
    /// URL regexes: when non-empty, only matching URLs are followed.
    #[serde(default)]
    pub include: Vec<String>,
    /// URL regexes never followed.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Ports that may be fetched; empty means the scheme's default port and the seeds' ports.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Allow loopback, private and link-local addresses in a crawl of public seeds (a crawl
    /// whose seeds are on such addresses allows them anyway).
    #[serde(default)]
    pub allow_private: bool,
}

/// `fetch:` — the HTTP side.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    /// Requests in flight in this process.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Politeness per host.
    #[serde(default)]
    pub per_host: PerHostSpec,
    /// Whole-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries on connection errors, timeouts, 5xx and 429, with exponential backoff and jitter.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// `obey` or `ignore` robots.txt.
    #[serde(default)]
    pub robots_txt: RobotsPolicy,
    /// The User-Agent header, also the agent robots.txt rules are matched against.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Bodies larger than this are cut off and the page fails.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
}

/// `fetch.per_host:` — politeness towards one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerHostSpec {
    /// Requests in flight to one host.
    #[serde(default = "default_per_host_concurrency")]
    pub concurrency: u32,
    /// Requests per second to one host; 0 means no limit.
    #[serde(default)]
    pub rate: f64,
}

/// Whether robots.txt is obeyed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RobotsPolicy {
    /// Fetch robots.txt once per host and never request a disallowed URL.
    #[default]
    Obey,
    /// Do not fetch robots.txt.
    Ignore,
}

/// `parse:` — links and items.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseSpec {
    /// CSS selectors whose URLs are followed (`href`, or `src` where there is no `href`).
    #[serde(default = "default_follow")]
    pub follow: Vec<String>,
    /// Item rules.
    #[serde(default)]
    pub items: Vec<ItemRule>,
}

/// One item rule: on pages whose URL matches `match`, take `fields`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRule {
    /// The item kind's name.
    pub name: String,
    /// URL regex where the rule applies.
    #[serde(rename = "match")]
    pub matches: String,
    /// Field name -> `css selector` (text content) or `css selector @attr`.
    pub fields: IndexMap<String, String>,
}

/// One field's selector, split from the spec's `"css @attr"` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    /// The CSS selector.
    pub css: String,
    /// The attribute to take; `None` takes the element's text content.
    pub attr: Option<String>,
}

impl FromStr for FieldSelector {
    type Err = String;

    /// `"h1"` takes text; `"a.more @href"` takes the attribute `href` of `a.more`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.rfind(" @").map(|i| (s[..i].trim(), s[i + 2..].trim())) {
            Some((css, attr)) => {
                if css.is_empty() {
                    return Err("missing CSS selector before '@'".into());
                }
                if attr.is_empty() || attr.contains(char::is_whitespace) {
                    return Err(format!("bad attribute name '{attr}' after '@'"));
                }
                Ok(Self { css: css.to_string(), attr: Some(attr.to_ascii_lowercase()) })
            }
            None if s.is_empty() => Err("empty selector".into()),
            None => Ok(Self { css: s.to_string(), attr: None }),
        }
    }
}

/// One output (sink) of items.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputSpec {
    /// `- jsonl: items.jsonl`: one JSON object a line; a fresh run starts the file anew, a
    /// run resumed with `--state-dir` cuts it back to its committed position and appends.
    Jsonl(PathBuf),
    /// `- stdout`: one JSON object a line on standard output.
    Stdout,
    /// `- redis: { key: NAME }`: RPUSH each item as JSON to a Redis list (docs/redis.md).
    Redis(RedisOutputSpec),
    /// `- kafka: { topic, key, compression }`: each item produced to a Kafka topic
    /// (docs/kafka.md).
    Kafka(crate::bridges::kafka::KafkaOutputSpec),
    /// `- amqp: { exchange, routing_key, headers }`: each item published persistent to a
    /// RabbitMQ exchange, with confirms (docs/amqp.md).
    Amqp(crate::bridges::amqp::AmqpOutputSpec),
}

/// `output: - redis: {...}` — items pushed to a Redis list of `brokers.redis`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisOutputSpec {
    /// The list's key; `<crawl name>:items` (scrapy-redis's) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `brokers:` — how to reach each broker. Values may use `${ENV}` (never printed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokersSpec {
    /// `redis: { url: ... }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisBrokerSpec>,
    /// `kafka: { bootstrap: ..., client: {...}, security: {...} }` (docs/kafka.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<crate::bridges::kafka::KafkaBrokerSpec>,
    /// `amqp: { url, heartbeat, prefetch, connect_timeout, ca_file, topology }`
    /// (docs/amqp.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp: Option<crate::bridges::amqp::AmqpBrokerSpec>,
}

impl BrokersSpec {
    /// True when no broker is configured.
    pub fn is_empty(&self) -> bool {
        self.redis.is_none() && self.kafka.is_none() && self.amqp.is_none()
    }
}

/// `brokers.redis:` — one Redis server, or (with `cluster: true`) one Redis Cluster.
#[derive(Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisBrokerSpec {
    /// `redis://[user][:password@]host[:port][/db]`, `rediss://` for TLS, or
    /// `redis+unix:///path`. Put the password in `${ENV}`. Never printed (nor serialised)
    /// unmasked.
    #[serde(serialize_with = "serialize_masked_url")]
    pub url: String,
    /// Connecting (and the startup PING) gives up after this long.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// With `rediss://`: a PEM file of the CA that signed the server's certificate, for a
    /// server whose certificate the system does not trust (a private CA). Without it the
    /// system's trust store is used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `url` (and `nodes`) are seed nodes of a Redis Cluster: commands go to the node of
    /// their key's slot, and every key of a crawl carries its `name` as a hash tag
    /// (`arachne:{<name>}:queue`, `{<name>}:requests`, ...) so that each Lua script's keys
    /// share one slot (docs/redis.md, "Redis Cluster").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster: bool,
    /// With `cluster: true`: more seed nodes besides `url` (`redis://host:port`), tried in
    /// turn when `url` does not answer. A node URL without user and password takes those
    /// of `url`. Never printed unmasked.
    #[serde(default, skip_serializing_if = "Vec::is_empty", serialize_with = "serialize_masked_urls")]
    pub nodes: Vec<String>,
}

impl fmt::Debug for RedisBrokerSpec {
    /// Masks the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBrokerSpec")
            .field("url", &crate::bridges::redis::mask_url(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_file", &self.ca_file)
            .field("cluster", &self.cluster)
            .field(
                "nodes",
                &self.nodes.iter().map(|u| crate::bridges::redis::mask_url(u)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn serialize_masked_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::bridges::redis::mask_url(url))
}

fn serialize_masked_urls<S: serde::Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| crate::bridges::redis::mask_url(u)))
}

/// One entry of `bridges:` — a local topic bound to an external channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// `redis-pubsub`, `kafka` or `amqp` (`redis-queue` is not supported yet).
    pub kind: BridgeKind,
    /// The local bus topic.
    pub topic: String,
    /// `out`: local topic -> broker; `in`: broker -> local topic.
    pub direction: BridgeDirection,
    /// The broker's side: `redis-pubsub`, the Redis channel (or, with `pattern: true`, the
    /// PSUBSCRIBE glob); `kafka`, the Kafka topic; `amqp`, the exchange (`out`) or the
    /// queue (`in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `kafka` `in`: the consumer group (`<crawl name>.bridge.<kafka topic>` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `kafka` `out`: the JSON field of each message whose value is the Kafka message key
    /// (no key when absent); `amqp` `out`: the field whose value is the routing key (the
    /// local topic's name when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `redis-queue`: the Redis key's kind, `fifo` (a list, LPUSH + RPOP), `lifo` (a list,
    /// LPUSH + LPOP) or `priority` (a sorted set scored by `-priority`); `fifo` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<QueueOrder>,
    /// `redis-queue` `in`: how long an entry is held unacked before any bridge may take it
    /// back (renewed while held); 60 s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<HumanDuration>,
    /// `redis-pubsub` `in`: PSUBSCRIBE to `channel` as a glob instead of SUBSCRIBE.
    #[serde(default)]
    pub pattern: bool,
    /// How often the connection is checked (a PING that must answer within this long).
    #[serde(default = "default_health_check_interval")]
    pub health_check_interval: HumanDuration,
}

/// The kind of a bridge.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeKind {
    /// A local topic <-> a Redis pub/sub channel or pattern.
    RedisPubsub,
    /// A local queue <-> a Redis list or sorted set, with a reliable pop.
    RedisQueue,
    /// A local topic <-> a Kafka topic.
    Kafka,
    /// A local topic <-> a RabbitMQ exchange (out) or queue (in).
    Amqp,
}

/// Which way a bridge carries messages.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BridgeDirection {
    /// From the broker to the local topic.
    In,
    /// From the local topic to the broker.
    Out,
}

/// `frontier:` — where the queue of requests lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrontierSpec {
    /// `local` (in this process), `redis` or `kafka` (shared by every process of the
    /// crawl through the broker).
    #[serde(default)]
    pub backend: FrontierBackend,
    /// `fifo` (breadth-first), `lifo` (depth-first) or `priority`.
    #[serde(default)]
    pub order: QueueOrder,
    /// With `order: priority`: the first rule whose regex matches a URL gives its priority
    /// (higher is fetched first; no match is 0; equal priorities are fifo).
    #[serde(default)]
    pub priorities: Vec<PriorityRule>,
    /// With `backend: redis`: the key layout, `native` (`arachne:<name>:*`) or
    /// `scrapy-redis` (`<name>:requests`, `<name>:dupefilter`, ...).
    #[serde(default)]
    pub layout: RedisLayout,
    /// With `layout: scrapy-redis`: how requests are written to the queue, `json` or
    /// `pickle` (scrapy-redis's default serializer, for unmodified Scrapy spiders); both are
    /// read.
    #[serde(default)]
    pub serializer: RedisSerializer,
    /// With `backend: redis`: how long a process holds a request it took before another
    /// process may take it (renewed while the process works on it).
    #[serde(default = "default_lease")]
    pub lease: HumanDuration,
    /// With `backend: redis`: how the shared seen-set is kept, `set` (every fingerprint,
    /// exact) or `bloom` (a Bloom filter in Redis: bounded memory, a few new URLs taken for
    /// seen).
    #[serde(default)]
    pub dedup: Dedup,
    /// With `dedup: bloom`: the filter's size.
    #[serde(default)]
    pub bloom: BloomSpec,
    /// With `backend: kafka`: topics, partitions, key and group (docs/kafka.md).
    #[serde(default)]
    pub kafka: crate::bridges::kafka::KafkaFrontierSpec,
    /// With `backend: amqp`: the queues (docs/amqp.md).
    #[serde(default)]
    pub amqp: crate::bridges::amqp::AmqpFrontierSpec,
    /// With `backend: local`: the memory the frontier may take (its seen-set and the
    /// requests waiting in memory); past it, waiting requests spill to disk.
    #[serde(default = "default_frontier_memory")]
    pub memory: ByteSize,
}

/// The least `frontier.memory` there may be.
pub const MIN_FRONTIER_MEMORY: u64 = 64 * 1024;

/// The default `frontier.memory`.
pub const DEFAULT_FRONTIER_MEMORY: u64 = 16 * 1024 * 1024;

fn default_frontier_memory() -> ByteSize {
    ByteSize(DEFAULT_FRONTIER_MEMORY)
}

/// How a shared frontier remembers what it has seen.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dedup {
    /// A Redis set of fingerprints: exact, grows with the crawl.
    #[default]
    Set,
    /// A Redis Bloom filter: bounded memory, `error_rate` of new URLs missed.
    Bloom,
}

/// `frontier.bloom:` — a Bloom filter's size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BloomSpec {
    /// URLs it is sized for.
    #[serde(default = "default_bloom_capacity")]
    pub capacity: u64,
    /// False-positive rate at that capacity (a new URL taken for seen).
    #[serde(default = "default_bloom_error_rate")]
    pub error_rate: f64,
}

impl Default for BloomSpec {
    fn default() -> Self {
        Self { capacity: default_bloom_capacity(), error_rate: default_bloom_error_rate() }
    }
}

fn default_bloom_capacity() -> u64 {
    10_000_000
}

fn default_bloom_error_rate() -> f64 {
    0.001
}

/// The Redis key layout of a shared frontier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RedisLayout {
    /// arachne's own keys.
    #[default]
    Native,
    /// scrapy-redis's keys and types (requests as JSON).
    ScrapyRedis,
}

/// How a scrapy-redis layout frontier writes requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisSerializer {
    /// JSON text in the shape of Scrapy's `Request.to_dict()`.
    #[default]
    Json,
    /// A Python pickle of `Request.to_dict()`, as scrapy-redis's default `picklecompat`.
    Pickle,
}

fn default_lease() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl Default for FrontierSpec {
    fn default() -> Self {
        Self {
            backend: FrontierBackend::Local,
            order: QueueOrder::Fifo,
            priorities: Vec::new(),
            layout: RedisLayout::Native,
            serializer: RedisSerializer::Json,
            lease: default_lease(),
            dedup: Dedup::Set,
            bloom: BloomSpec::default(),
            kafka: Default::default(),
            amqp: Default::default(),
            memory: default_frontier_memory(),
        }
    }
}

/// One `frontier.priorities` rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    /// URL regex.
    #[serde(rename = "match")]
    pub matches: String,
    /// The priority of matching URLs.
    pub priority: i32,
}

/// Which store backs the frontier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FrontierBackend {
    /// In this process.
    #[default]
    Local,
    /// A Redis list or sorted set, shared by every process of the crawl.
    Redis,
    /// A Kafka topic, consumed by every process of the crawl as one consumer group.
    Kafka,
    /// A durable RabbitMQ queue, consumed by every process of the crawl (docs/amqp.md).
    Amqp,
}

impl FrontierBackend {
    /// The spec's word for it (`local`, `redis`, `kafka`, `amqp`).
    pub fn name(self) -> &'static str {
        match self {
            FrontierBackend::Local => "local",
            FrontierBackend::Redis => "redis",
            FrontierBackend::Kafka => "kafka",
            FrontierBackend::Amqp => "amqp",
        }
    }
}

/// The order a queue hands out messages in (scrapy-redis's three queue kinds).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueOrder {
    /// First in, first out: breadth-first crawling.
    #[default]
    Fifo,
    /// Last in, first out: depth-first crawling.
    Lifo,
    /// Highest priority first, fifo among equals.
    Priority,
}

/// `supervision:` — restart policy of the actor tree (Erlang/OTP names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSpec {
    /// `one_for_one`, `one_for_all` or `rest_for_one`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Restarts allowed within `within` before escalating.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// The restart-intensity window.
    #[serde(default = "default_within")]
    pub within: HumanDuration,
    /// Deliveries of one message without an ack before it is dead-lettered.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
}

/// A supervisor's restart strategy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Restart only the child that failed.
    #[default]
    OneForOne,
    /// Restart every child.
    OneForAll,
    /// Restart the failed child and those started after it.
    RestForOne,
}

impl fmt::Display for QueueOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueOrder::Fifo => "fifo",
            QueueOrder::Lifo => "lifo",
            QueueOrder::Priority => "priority",
        })
    }
}

impl Default for ScopeSpec {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            max_depth: default_max_depth(),
            max_pages: 0,
            max_items: 0,
            include: Vec::new(),
            exclude: Vec::new(),
            ports: Vec::new(),
            allow_private: false,
        }
    }
}

impl Default for FetchSpec {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            per_host: PerHostSpec::default(),
            timeout: default_timeout(),
            retries: default_retries(),
            robots_txt: RobotsPolicy::Obey,
            user_agent: default_user_agent(),
            max_body: default_max_body(),
        }
    }
}

impl Default for PerHostSpec {
    fn default() -> Self {
        Self { concurrency: default_per_host_concurrency(), rate: 0.0 }
    }
}

impl Default for ParseSpec {
    fn default() -> Self {
        Self { follow: default_follow(), items: Vec::new() }
    }
}

impl Default for SupervisionSpec {
    fn default() -> Self {
        Self {
            strategy: Strategy::OneForOne,
            max_restarts: default_max_restarts(),
            within: default_within(),
            max_deliveries: default_max_deliveries(),
        }
    }
}

fn default_sandbox_pages() -> u32 {
    500
}
fn default_max_depth() -> u32 {
    20
}
fn default_concurrency() -> u32 {
    64
}
fn default_per_host_concurrency() -> u32 {
    8
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_retries() -> u32 {
    3
}
fn default_user_agent() -> String {
    "arachne/0.1".to_string()
}
fn default_max_body() -> ByteSize {
    ByteSize(10 * 1024 * 1024)
}
fn default_follow() -> Vec<String> {
    ["a[href]", "iframe[src]", "frame[src]"].map(String::from).to_vec()
}
fn default_output() -> Vec<OutputSpec> {
    vec![OutputSpec::Stdout]
}
fn default_max_restarts() -> u32 {
    10
}
fn default_within() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_jitter() -> HumanDuration {
    HumanDuration::from_secs(0)
}
fn default_max_deliveries() -> u32 {
    5
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_health_check_interval() -> HumanDuration {
    HumanDuration::from_secs(5)
}
