//! The Redis frontier store: a crawl's request queue and seen-set in Redis, shared by any
//! number of processes, with reliable (leased) pops. A reliable scrapy-redis.
//!
//! The scheduler reaches it through the broker seam ([`SharedStore`], implemented at the end
//! of this file). docs/redis.md ("The Redis frontier store") describes the keys, the Lua
//! scripts, the guarantees and what is and is not compatible with scrapy-redis.
//!
//! Every operation that touches more than one key is ONE Lua script call (atomic on the
//! server), so a batch costs one round trip: [`RedisFrontier::admit`] (dedup + push),
//! [`RedisFrontier::lease`] (pop + lease), [`RedisFrontier::reap`] (expired leases back to
//! the head of the queue) and [`RedisFrontier::renew`]. Lease expiry is computed from the
//! server's `TIME` inside the scripts, so the clocks of the processes do not matter.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{RedisError, Script};
use tokio::sync::Mutex;
use url::Url;

use futures::future::BoxFuture;

use super::entry::{self, EncodeError, Serializer};
use super::{Backoff, RedisBroker, RedisConnection};
use crate::bridges::BridgeError;
use crate::crawl::shared::{
    Admit, LeaseAsk, LeasedFrom, Pending, SharedPoliteness, SharedStore, StoreError, StoreResult,
};
use crate::crawl::urls::Fingerprint;
use crate::spec::{QueueOrder, DEFAULT_QUEUE};
use crate::state::PendingRequest;

/// How long a call keeps trying to reconnect to a Redis that went away before it fails.
pub const DEFAULT_RECONNECT_BUDGET: Duration = Duration::from_secs(30);

/// The most expired leases one [`RedisFrontier::reap`] call moves back (it returns how many
/// it moved; call again while it returns this many).
pub const REAP_LIMIT: usize = 1000;

/// Why a frontier operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FrontierError {
    /// Redis could not be reached (within the reconnect budget), or answered with an error.
    #[error(transparent)]
    Broker(#[from] BridgeError),
    /// A request could not be turned into a queue entry.
    #[error("cannot serialise the request for {url}: {source}")]
    Encode {
        /// The request's URL.
        url: String,
        /// The serializer's error.
        source: EncodeError,
    },
    /// A queue entry or a script's answer is not what this store writes.
    #[error("unexpected data in Redis key {key}: {detail}")]
    Corrupt {
        /// The key it came from.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// A Bloom filter's shape: `bits` bits, `hashes` bit positions per URL, computed from the
/// URL's 128-bit fingerprint by double hashing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bloom {
    /// Bits in the filter (at most 2^32, Redis's limit for one string).
    pub bits: u64,
    /// Positions per URL.
    pub hashes: u32,
}

impl Bloom {
    /// The optimal shape for `capacity` URLs at `error_rate` false positives.
    pub fn new(capacity: u64, error_rate: f64) -> Self {
        let n = capacity.max(1) as f64;
        let p = error_rate.clamp(1e-9, 0.5);
        let ln2 = std::f64::consts::LN_2;
        let bits = (-(n * p.ln()) / (ln2 * ln2)).ceil().clamp(64.0, 4_294_967_296.0) as u64;
        let hashes = ((bits as f64 / n) * ln2).round().clamp(1.0, 30.0) as u32;
        Self { bits, hashes }
    }

    /// The seen-script member for a fingerprint: `B:` and its bit offsets.
    fn member(&self, fp: Fingerprint) -> String {
        let h1 = fp.0 as u64;
        let h2 = ((fp.0 >> 64) as u64) | 1;
        let mut out = String::with_capacity(2 + self.hashes as usize * 11);
        out.push_str("B:");
        for i in 0..u64::from(self.hashes) {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&(h1.wrapping_add(i.wrapping_mul(h2)) % self.bits).to_string());
        }
        out
    }
}

/// A `Result` with a [`FrontierError`].
pub type Result<T> = std::result::Result<T, FrontierError>;

/// Which key names and value formats the store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// arachne's own: `arachne:<name>:queue`, `:seen` (32-hex xxh3 fingerprints),
    /// `:leases`, `:lease_seq`, `:seq`, `:start_urls`, `:items`.
    #[default]
    Native,
    /// scrapy-redis's names and types: `<name>:requests` (a sorted set scored by negative
    /// priority for `priority`, a list for `fifo`/`lifo`), `<name>:dupefilter` (40-hex SHA1
    /// Scrapy request fingerprints, [`scrapy_fingerprint`]), `<name>:start_urls`,
    /// `<name>:items`; requests as JSON. The leases live in `<name>:arachne:leases` (and
    /// `<name>:arachne:lease_seq`), keys scrapy-redis does not know.
    ScrapyRedis,
}

/// A lease on one request, as [`RedisFrontier::lease`] hands it out: its text is the
/// lease's member in the leases sorted set (`<lease id>|<score>|<queue entry>`), unique per
/// lease, so an ack or a renew that comes after the lease expired and was handed to someone
/// else does nothing.
pub use crate::crawl::shared::{LeaseToken, Leased};

/// What a frontier handle did to survive its connection, shared (read any time).
#[derive(Debug, Default)]
pub struct FrontierCounters {
    /// Connections found broken (an I/O error, a dropped connection, a timeout).
    pub disconnects: AtomicU64,
    /// Successful reconnections.
    pub reconnects: AtomicU64,
    /// Calls sent again after a reconnection.
    pub retried_calls: AtomicU64,
    /// Queue entries moved to the dead key because they could not be read.
    pub dead_lettered: AtomicU64,
}

impl FrontierCounters {
    /// `reconnects` now.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// `disconnects` now.
    pub fn disconnects(&self) -> u64 {
        self.disconnects.load(Ordering::Relaxed)
    }
}

/// The name a crawl's keys are built around: `name`, or on a Redis Cluster `{name}` (a
/// hash tag: every key of the crawl lands on one slot, so each script's keys share it).
pub fn crawl_tag(broker: &RedisBroker, name: &str) -> String {
    if broker.is_cluster() {
        super::hash_tag(name)
    } else {
        name.to_string()
    }
}

/// The Redis keys of one frontier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontierKeys {
    /// The request queue (a list, or a sorted set for `priority`).
    pub queue: String,
    /// The seen-set (dupefilter).
    pub seen: String,
    /// The leases: a sorted set of lease tokens scored by expiry (ms since the epoch, the
    /// server's clock).
    pub leases: String,
    /// The counter that numbers leases.
    pub lease_seq: String,
    /// The counter that orders equal priorities (native `priority` only).
    pub seq: String,
    /// The start URLs list.
    pub start_urls: String,
    /// The items list (for the sink; the store does not touch it).
    pub items: String,
}

impl FrontierKeys {
    /// Where queue entries this store could not read are moved, with the reason (a list of
    /// JSON objects `{ "entry", "reason" }`): beside the leases, `arachne:<name>:dead` or
    /// `<name>:arachne:dead`.
    pub fn dead(&self) -> String {
        self.beside_leases("dead")
    }

    /// The count of requests ever queued, for `scope.max_pages` across processes: beside
    /// the leases, `arachne:<name>:admitted` or `<name>:arachne:admitted`.
    pub fn admitted(&self) -> String {
        self.beside_leases("admitted")
    }

    /// The count of items granted, for `scope.max_items` across processes: beside the
    /// leases, `arachne:<name>:items` or `<name>:arachne:items`.
    pub fn items(&self) -> String {
        self.beside_leases("items")
    }

    /// A key of this frontier's own, beside the leases.
    pub fn beside_leases(&self, what: &str) -> String {
        format!("{}{what}", self.leases.strip_suffix("leases").unwrap_or(&self.leases))
    }

    /// The keys of frontier `name` in `layout` on `broker`: [`FrontierKeys::new`], with the
    /// name as a hash tag (`arachne:{<name>}:queue`, `{<name>}:requests`, ...) on a Redis
    /// Cluster, so that every key of the crawl hashes to one slot.
    pub fn on(broker: &RedisBroker, name: &str, layout: Layout) -> Self {
        Self::new(&crawl_tag(broker, name), layout)
    }

    /// The keys of frontier `name` in `layout`.
    pub fn new(name: &str, layout: Layout) -> Self {
        match layout {
            Layout::Native => {
                let k = |s: &str| format!("arachne:{name}:{s}");
                Self {
                    queue: k("queue"),
                    seen: k("seen"),
                    leases: k("leases"),
                    lease_seq: k("lease_seq"),
                    seq: k("seq"),
                    start_urls: k("start_urls"),
                    items: k("items"),
                }
            }
            Layout::ScrapyRedis => Self {
                queue: format!("{name}:requests"),
                seen: format!("{name}:dupefilter"),
                leases: format!("{name}:arachne:leases"),
                lease_seq: format!("{name}:arachne:lease_seq"),
                seq: format!("{name}:arachne:seq"),
                start_urls: format!("{name}:start_urls"),
                items: format!("{name}:items"),
            },
        }
    }
}

/// How the scripts push, pop and return entries: (push side, pop side) of a list, or a
/// sorted set with or without a sequence prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A list: push with `LPUSH` (`true`) or `RPUSH`; pop with `LPOP` (`true`) or `RPOP`.
    List { push_left: bool, pop_left: bool },
    /// A sorted set scored by `-priority`; `seq`: members are `<16-hex seq>|<json>` so that
    /// equal priorities pop in admission order.
    Zset { seq: bool },
}

impl Mode {
    fn of(order: QueueOrder, layout: Layout) -> Self {
        match (order, layout) {
            // Native fifo: RPUSH + LPOP. scrapy-redis's FifoQueue: LPUSH + RPOP.
            (QueueOrder::Fifo, Layout::Native) => Mode::List { push_left: false, pop_left: true },
            (QueueOrder::Fifo, Layout::ScrapyRedis) => Mode::List { push_left: true, pop_left: false },
            // Lifo: LPUSH + LPOP in both (scrapy-redis's LifoQueue).
            (QueueOrder::Lifo, _) => Mode::List { push_left: true, pop_left: true },
            (QueueOrder::Priority, Layout::Native) => Mode::Zset { seq: true },
            (QueueOrder::Priority, Layout::ScrapyRedis) => Mode::Zset { seq: false },
        }
    }

    /// The mode argument of the scripts.
    fn arg(self) -> &'static str {
        match self {
            Mode::List { push_left: true, pop_left: true } => "LL",
            Mode::List { push_left: false, pop_left: true } => "RL",
            Mode::List { push_left: true, pop_left: false } => "LR",
            Mode::List { push_left: false, pop_left: false } => "RR",
            Mode::Zset { seq: true } => "ZS",
            Mode::Zset { seq: false } => "Z",
        }
    }
}

/// admit: KEYS seen, queue, seq, admitted; ARGV mode (`MODE` or `MODE/LIMIT`), then (seen
/// member, entry, score) triples. Returns 1/0 per request: newly seen (and queued) or not.
/// With a LIMIT (`scope.max_pages` across every process), the `admitted` counter stops the
/// queue at LIMIT requests: those past it are neither queued nor marked seen.
const ADMIT: &str = r#"
local mode, limit = string.match(ARGV[1], '^([^/]+)/?(%d*)$')
limit = tonumber(limit)
local out = {}
-- A seen member 'B:o1,o2,...' is a Bloom filter entry: new if any of its bits was 0.
local function seen_add(key, member)
  if string.sub(member, 1, 2) == 'B:' then
    local new = 0
    for off in string.gmatch(string.sub(member, 3), '%d+') do
      if redis.call('SETBIT', key, tonumber(off), 1) == 0 then new = 1 end
    end
    return new
  end
  return redis.call('SADD', key, member)
end
for i = 2, #ARGV, 3 do
  local full = limit ~= nil and tonumber(redis.call('GET', KEYS[4]) or '0') >= limit
  if not full and seen_add(KEYS[1], ARGV[i]) == 1 then
    if limit ~= nil then redis.call('INCR', KEYS[4]) end
    local entry = ARGV[i + 1]
    if mode == 'ZS' then
      local n = redis.call('INCR', KEYS[3])
      redis.call('ZADD', KEYS[2], ARGV[i + 2], string.format('%016x', n) .. '|' .. entry)
    elseif mode == 'Z' then
      redis.call('ZADD', KEYS[2], ARGV[i + 2], entry)
    elseif string.sub(mode, 1, 1) == 'L' then
      redis.call('LPUSH', KEYS[2], entry)
    else
      redis.call('RPUSH', KEYS[2], entry)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#;

/// lease: KEYS queue, leases, lease_seq; ARGV mode, max, lease ms[, id prefix].
/// Pops up to max entries and leases each until server time + lease ms; returns the tokens
/// `<lease id>|<score>|<entry>` (a named queue's lease ids are `<queue>/<n>`).
const LEASE: &str = r#"
local mode = ARGV[1]
local max = tonumber(ARGV[2])
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local popped = {}
if string.sub(mode, 1, 1) == 'Z' then
  local r = redis.call('ZPOPMIN', KEYS[1], max)
  for i = 1, #r, 2 do popped[#popped + 1] = {r[i], r[i + 1]} end
else
  local r
  if string.sub(mode, 2, 2) == 'L' then
    r = redis.call('LPOP', KEYS[1], max)
  else
    r = redis.call('RPOP', KEYS[1], max)
  end
  if r then
    for i = 1, #r do popped[#popped + 1] = {r[i], '0'} end
  end
end
local out = {}
for i = 1, #popped do
  local id = (ARGV[4] or '') .. redis.call('INCR', KEYS[3])
  local token = id .. '|' .. popped[i][2] .. '|' .. popped[i][1]
  redis.call('ZADD', KEYS[2], expiry, token)
  out[#out + 1] = token
end
return out
"#;

/// reap: KEYS queue, leases; ARGV mode, limit[, tokens...]. Moves leases that expired by
/// server time (or, given tokens, those leases: a release) back to the head of the queue
/// (the next pop returns them first); returns how many.
const REAP: &str = r#"
local mode = ARGV[1]
local expired
if #ARGV > 2 then
  -- release: the given leases, those still held
  expired = {}
  for i = 3, #ARGV do
    if redis.call('ZSCORE', KEYS[2], ARGV[i]) then expired[#expired + 1] = ARGV[i] end
  end
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
end
if #expired == 0 then return 0 end
local zset = string.sub(mode, 1, 1) == 'Z'
local head_score = nil
if zset then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first > 0 then head_score = tonumber(first[2]) end
end
-- Backwards, so that with pushes to the head the earliest lease ends up first.
for i = #expired, 1, -1 do
  local token = expired[i]
  redis.call('ZREM', KEYS[2], token)
  local a = string.find(token, '|', 1, true)
  local b = string.find(token, '|', a + 1, true)
  local score = tonumber(string.sub(token, a + 1, b - 1))
  local entry = string.sub(token, b + 1)
  if zset then
    if head_score ~= nil and head_score < score then score = head_score end
    if mode == 'ZS' then
      entry = '0000000000000000' .. string.sub(entry, 17)
    end
    redis.call('ZADD', KEYS[1], score, entry)
  elseif string.sub(mode, 2, 2) == 'L' then
    redis.call('LPUSH', KEYS[1], entry)
  else
    redis.call('RPUSH', KEYS[1], entry)
  end
end
return #expired
"#;

/// renew: KEYS leases; ARGV lease ms, then tokens. Extends each lease still held to server
/// time + lease ms; returns 1/0 per token (0: the lease expired and was reaped, or acked).
const RENEW: &str = r#"
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], expiry, ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#;

/// take items: KEYS items count; ARGV wanted, limit. Grants min(wanted, limit - count)
/// and counts them; returns {granted, count after}.
const TAKE_ITEMS: &str = r#"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - count))
if granted > 0 then
  count = redis.call('INCRBY', KEYS[1], granted)
end
return {granted, count}
"#;

/// [`TAKE_ITEMS`], compiled once; the AMQP frontier (whose seen-set is in Redis) counts its
/// crawl's items with it too.
pub(crate) static TAKE_ITEMS_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TAKE_ITEMS));

/// The connection, replaced when it breaks; `generation` tells a caller whether the broken
/// one it saw was already replaced by another caller.
struct Conn {
    conn: Option<RedisConnection>,
    generation: u64,
}

/// A handle on one Redis frontier (cheap to clone; clones share the connection and the
/// counters). See the module documentation.
#[derive(Clone)]
pub struct RedisFrontier {
    broker: RedisBroker,
    keys: Arc<FrontierKeys>,
    layout: Layout,
    serializer: Serializer,
    mode: Mode,
    lease_ms: u64,
    reconnect_budget: Duration,
    conn: Arc<Mutex<Conn>>,
    counters: Arc<FrontierCounters>,
    bloom: Option<Bloom>,
    bloom_key: String,
    max_requests: Option<u64>,
    /// The crawl's named queues besides `default` (routing; docs/routing.md).
    queues: Arc<Vec<Arc<str>>>,
    admit_script: Arc<Script>,
    lease_script: Arc<Script>,
    reap_script: Arc<Script>,
    renew_script: Arc<Script>,
}

impl std::fmt::Debug for RedisFrontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFrontier")
            .field("broker", &self.broker)
            .field("keys", &self.keys)
            .field("mode", &self.mode)
            .field("lease_ms", &self.lease_ms)
            .finish()
    }
}

impl RedisFrontier {
    /// The frontier `name` on `broker`, handing out requests in `order`, with keys and values
    /// in `layout`; a lease lasts `lease` (at least 1 ms). Nothing is connected yet: the
    /// first call connects.
    pub fn new(broker: &RedisBroker, name: &str, order: QueueOrder, layout: Layout, lease: Duration) -> Self {
        Self {
            broker: broker.clone(),
            keys: Arc::new(FrontierKeys::on(broker, name, layout)),
            layout,
            serializer: Serializer::Json,
            mode: Mode::of(order, layout),
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1),
            reconnect_budget: DEFAULT_RECONNECT_BUDGET,
            conn: Arc::new(Mutex::new(Conn { conn: None, generation: 0 })),
            counters: Arc::default(),
            bloom: None,
            bloom_key: String::new(),
            max_requests: None,
            queues: Arc::default(),
            admit_script: Arc::new(Script::new(ADMIT)),
            lease_script: Arc::new(Script::new(LEASE)),
            reap_script: Arc::new(Script::new(REAP)),
            renew_script: Arc::new(Script::new(RENEW)),
        }
    }

    /// A call whose connection broke keeps reconnecting (100 ms backoff doubling to 30 s,
    /// with jitter) for at most `budget` before it fails (default 30 s).
    pub fn with_reconnect_budget(mut self, budget: Duration) -> Self {
        self.reconnect_budget = budget;
        self
    }

    /// The keys this frontier uses.
    pub fn keys(&self) -> &FrontierKeys {
        &self.keys
    }

    /// Keeps these named queues of the crawl's routing besides `default` (docs/routing.md):
    /// queue `q` is the key `<queue key>:q` (`arachne:<name>:queue:q`, or
    /// `<name>:requests:q` in the scrapy-redis layout) with its leases in
    /// `<leases key>:q`; `default` stays on the plain keys.
    pub fn with_queues<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let named = names.into_iter().map(|n| n.as_ref().into()).filter(|n: &Arc<str>| &**n != DEFAULT_QUEUE);
        self.queues = Arc::new(named.collect());
        self
    }

    /// The queue key and the leases key of queue `queue` (`default`: the plain ones).
    pub fn queue_keys(&self, queue: &str) -> (String, String) {
        if queue == DEFAULT_QUEUE {
            (self.keys.queue.clone(), self.keys.leases.clone())
        } else {
            (format!("{}:{queue}", self.keys.queue), format!("{}:{queue}", self.keys.leases))
        }
    }

    /// Every queue of the crawl, `default` first.
    fn all_queues(&self) -> impl Iterator<Item = &str> {
        std::iter::once(DEFAULT_QUEUE).chain(self.queues.iter().map(|q| &**q))
    }

    /// The queue a lease token came from: its lease id is `<queue>/<n>` for a named queue.
    fn queue_of(token: &[u8]) -> &str {
        let id = token.split(|&b| b == b'|').next().unwrap_or_default();
        let id = std::str::from_utf8(id).unwrap_or("");
        id.split_once('/').map_or(DEFAULT_QUEUE, |(queue, _)| queue)
    }

    /// Tokens grouped by the queue they came from.
    fn by_queue(tokens: &[LeaseToken]) -> Vec<(&str, Vec<&[u8]>)> {
        let mut groups: Vec<(&str, Vec<&[u8]>)> = Vec::new();
        for t in tokens {
            let queue = Self::queue_of(t.as_bytes());
            match groups.iter_mut().find(|(q, _)| *q == queue) {
                Some((_, ts)) => ts.push(t.as_bytes()),
                None => groups.push((queue, vec![t.as_bytes()])),
            }
        }
        groups
    }

    /// How long a lease lasts, in ms (also how long a politeness slot is held at most).
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    /// Runs a Lua script of this store's family (politeness) on its connection, with its
    /// reconnection rules.
    pub(crate) async fn invoke_script<T: redis::FromRedisValue, A: AsRef<[u8]>>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[A],
    ) -> Result<T> {
        self.invoke(script, keys, args).await
    }

    /// A reliable queue of any payloads at Redis key `key` (a list for `fifo`/`lifo`,
    /// LPUSH + RPOP / LPOP as scrapy-redis's FifoQueue and LifoQueue; a sorted set scored by
    /// `-priority` for `priority`), with its leases in `<key>:leases`: what the
    /// `redis-queue` bridge is built on ([`RedisFrontier::push_raw`],
    /// [`RedisFrontier::lease_raw`], [`RedisFrontier::ack_raw`], `reap`, [`RedisFrontier::renew_raw`]).
    pub fn for_queue(broker: &RedisBroker, key: &str, order: QueueOrder, lease: Duration) -> Self {
        let mut this = Self::new(broker, key, order, Layout::ScrapyRedis, lease);
        let k = |s: &str| format!("{key}:{s}");
        this.keys = Arc::new(FrontierKeys {
            queue: key.to_string(),
            seen: k("seen"),
            leases: k("leases"),
            lease_seq: k("lease_seq"),
            seq: k("seq"),
            start_urls: k("start_urls"),
            items: k("items"),
        });
        this
    }

    /// Pushes payloads (with their priorities, for a sorted set) in one pipeline, no dedup.
    pub async fn push_raw(&self, entries: &[(Vec<u8>, i32)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (entry, priority) in entries {
            match self.mode {
                Mode::List { push_left: true, .. } => {
                    pipe.cmd("LPUSH").arg(&self.keys.queue).arg(entry).ignore()
                }
                Mode::List { push_left: false, .. } => {
                    pipe.cmd("RPUSH").arg(&self.keys.queue).arg(entry).ignore()
                }
                Mode::Zset { .. } => {
                    pipe.cmd("ZADD").arg(&self.keys.queue).arg(-i64::from(*priority)).arg(entry).ignore()
                }
            };
        }
        self.query_pipe::<()>(&pipe).await
    }

    /// Leases up to `max` payloads as they are: `(lease token, payload)`; give the tokens
    /// back to [`RedisFrontier::ack_raw`] (or let them expire: `reap` puts them back).
    pub async fn lease_raw(&self, max: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .lease_tokens(max)
            .await?
            .into_iter()
            .map(|token| {
                let entry = token.splitn(3, |&b| b == b'|').nth(2).map(<[u8]>::to_vec).unwrap_or_default();
                (token, entry)
            })
            .collect())
    }

    /// Acknowledges raw leases (one `ZREM`); returns how many were still held.
    pub async fn ack_raw(&self, tokens: &[Vec<u8>]) -> Result<usize> {
        if tokens.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(&self.keys.leases);
        for t in tokens {
            cmd.arg(t);
        }
        let n: i64 = self.query(&cmd).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Extends raw leases still held (see [`RedisFrontier::renew`]).
    pub async fn renew_raw(&self, tokens: &[Vec<u8>]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let (script, leases, lease_ms) = (self.renew_script.clone(), self.keys.leases.clone(), self.lease_ms);
        let _: Vec<i64> = self
            .with_retry(|mut conn| {
                let mut inv = script.prepare_invoke();
                inv.key(&leases).arg(lease_ms);
                for t in tokens {
                    inv.arg(t.as_slice());
                }
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(())
    }

    /// Writes scrapy-redis layout entries with `serializer` (JSON by default; pickles for
    /// unmodified scrapy-redis spiders). Both are read whatever this says.
    pub fn with_serializer(mut self, serializer: Serializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// Queues at most `max` requests over the crawl's life, across every process
    /// (`scope.max_pages`); 0 is no limit.
    pub fn with_max_requests(mut self, max: u64) -> Self {
        self.max_requests = (max > 0).then_some(max);
        self
    }

    /// Dedups with a Bloom filter (a Redis string of bits, `<seen key>:bloom`) sized for
    /// `capacity` URLs at `error_rate` false positives, instead of a set of every
    /// fingerprint: memory is bounded (10 M URLs at 0.1 % take 17 MiB), at the price of
    /// that rate of new URLs taken for seen and never crawled. Native layout only
    /// (scrapy-redis's dupefilter is a set).
    pub fn with_bloom(mut self, capacity: u64, error_rate: f64) -> Self {
        self.bloom = Some(Bloom::new(capacity, error_rate));
        self.bloom_key = format!("{}:bloom", self.keys.seen);
        self
    }

    fn seen_key(&self) -> &str {
        if self.bloom.is_some() {
            &self.bloom_key
        } else {
            &self.keys.seen
        }
    }

    /// The reconnection counters (shared by every clone of this handle).
    pub fn counters(&self) -> &Arc<FrontierCounters> {
        &self.counters
    }

    /// Admits a batch in ONE script call: each request whose fingerprint is new to the
    /// seen-set is added to it and queued. Returns, per request, whether it was new.
    ///
    /// The seen member is `fingerprint` as 32 hex digits in the native layout, and the
    /// scrapy-redis dupefilter fingerprint of its URL ([`scrapy_fingerprint`]) in the scrapy-redis
    /// layout (`fingerprint` is then unused). A URL that does not parse is an error.
    ///
    /// If the connection breaks after Redis ran the script, the retry finds every request
    /// seen and answers `false` for all: nothing is queued twice, but the caller may count
    /// fewer new requests than were queued.
    pub async fn admit(&self, batch: &[(Fingerprint, PendingRequest, i32)]) -> Result<Vec<bool>> {
        self.admit_to(DEFAULT_QUEUE, batch).await
    }

    /// [`RedisFrontier::admit`] into the named queue `queue` (see
    /// [`RedisFrontier::with_queues`]); one seen-set for every queue.
    pub async fn admit_to(
        &self,
        queue: &str,
        batch: &[(Fingerprint, PendingRequest, i32)],
    ) -> Result<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<Vec<u8>> = Vec::with_capacity(1 + batch.len() * 3);
        args.push(
            match self.max_requests {
                Some(max) => format!("{}/{max}", self.mode.arg()),
                None => self.mode.arg().to_string(),
            }
            .into_bytes(),
        );
        for (fp, req, priority) in batch {
            let seen = match (self.layout, &self.bloom) {
                (Layout::Native, Some(bloom)) => bloom.member(*fp),
                (Layout::Native, None) => fp.to_string(),
                (Layout::ScrapyRedis, _) => {
                    let url = Url::parse(&req.url).map_err(|e| FrontierError::Corrupt {
                        key: self.keys.queue.clone(),
                        detail: format!("request URL '{}' does not parse: {e}", req.url),
                    })?;
                    scrapy_fingerprint(&url)
                }
            };
            args.push(seen.into_bytes());
            args.push(self.encode(req, *priority)?);
            args.push((-i64::from(*priority)).to_string().into_bytes());
        }
        let (queue_key, _) = self.queue_keys(queue);
        let flags: Vec<i64> = self
            .invoke(
                &self.admit_script,
                &[self.seen_key(), &queue_key, &self.keys.seq, &self.keys.admitted()],
                &args,
            )
            .await?;
        if flags.len() != batch.len() {
            return Err(self.corrupt(&queue_key, format!("admit answered {} flags", flags.len())));
        }
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Pops up to `max` requests and leases each, in ONE script call: a lease expires
    /// `lease` after the server's `TIME`; until [`RedisFrontier::ack`] it stays in the leases
    /// sorted set, and after expiry [`RedisFrontier::reap`] puts it back at the head of the
    /// queue. An entry this store cannot read is moved to [`FrontierKeys::dead`] with the
    /// reason, and counted (`dead_lettered`).
    pub async fn lease(&self, max: usize) -> Result<Vec<Leased>> {
        self.lease_from(DEFAULT_QUEUE, max).await
    }

    /// [`RedisFrontier::lease`] from the named queue `queue`.
    pub async fn lease_from(&self, queue: &str, max: usize) -> Result<Vec<Leased>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let tokens = self.lease_tokens_in(queue, max).await?;
        let mut leased = Vec::with_capacity(tokens.len());
        let mut unreadable = Vec::new();
        for token in tokens {
            match self.decode_token(&token) {
                Ok((request, priority)) => {
                    leased.push(Leased { token: LeaseToken::from_bytes(token), request, priority })
                }
                Err(reason) => unreadable.push((token, reason)),
            }
        }
        if !unreadable.is_empty() {
            self.dead_letter(&unreadable).await?;
        }
        Ok(leased)
    }

    /// The lease script: pops up to `max` entries and leases each; the lease tokens.
    async fn lease_tokens(&self, max: usize) -> Result<Vec<Vec<u8>>> {
        self.lease_tokens_in(DEFAULT_QUEUE, max).await
    }

    /// The lease script on queue `queue` (its lease ids say which: `<queue>/<n>`).
    async fn lease_tokens_in(&self, queue: &str, max: usize) -> Result<Vec<Vec<u8>>> {
        let (queue_key, leases_key) = self.queue_keys(queue);
        let mut args = vec![self.mode.arg().to_string(), max.to_string(), self.lease_ms.to_string()];
        if queue != DEFAULT_QUEUE {
            args.push(format!("{queue}/"));
        }
        self.invoke(&self.lease_script, &[&queue_key, &leases_key, &self.keys.lease_seq], &args).await
    }

    /// Moves leased entries this store cannot read to the dead key, with the reason: they
    /// are never hidden in the leases, nor retried forever.
    async fn dead_letter(&self, unreadable: &[(Vec<u8>, String)]) -> Result<()> {
        let mut pipe = redis::pipe();
        for (token, reason) in unreadable {
            let entry = token.splitn(3, |&b| b == b'|').nth(2).unwrap_or(token);
            tracing::warn!(key = %self.keys.dead(), "shared frontier: moved an unreadable entry aside: {reason}");
            let record = match std::str::from_utf8(entry) {
                Ok(text) => serde_json::json!({ "entry": text, "reason": reason }),
                Err(_) => {
                    let hex: String = entry.iter().map(|b| format!("{b:02x}")).collect();
                    serde_json::json!({ "entry_hex": hex, "reason": reason })
                }
            };
            pipe.cmd("RPUSH").arg(self.keys.dead()).arg(record.to_string()).ignore();
            let (_, leases_key) = self.queue_keys(Self::queue_of(token));
            pipe.cmd("ZREM").arg(leases_key).arg(token).ignore();
        }
        let () = self.query_pipe(&pipe).await?;
        self.counters.dead_lettered.fetch_add(unreadable.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Acknowledges leases: removes them from the leases sorted set (one `ZREM`). Returns how
    /// many were still held; a lease that expired and was reaped (and maybe handed to
    /// another consumer) is not touched, and not counted.
    pub async fn ack(&self, leased: &[LeaseToken]) -> Result<usize> {
        if leased.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for (queue, tokens) in Self::by_queue(leased) {
            pipe.cmd("ZREM").arg(self.queue_keys(queue).1).arg(tokens);
        }
        let removed: Vec<i64> = self.query_pipe(&pipe).await?;
        Ok(removed.into_iter().map(|n| usize::try_from(n).unwrap_or(0)).sum())
    }

    /// Moves up to [`REAP_LIMIT`] expired leases (by the server's clock) back to the head of
    /// the queue, in ONE script call, so that they are retried first; returns how many.
    /// Any process may call it, as often as it likes (every lease period, say).
    pub async fn reap(&self) -> Result<usize> {
        let args = [self.mode.arg().to_string(), REAP_LIMIT.to_string()];
        let mut reaped = 0;
        for queue in self.all_queues() {
            let (queue_key, leases_key) = self.queue_keys(queue);
            let n: i64 = self.invoke(&self.reap_script, &[&queue_key, &leases_key], &args).await?;
            reaped += usize::try_from(n).unwrap_or(0);
        }
        Ok(reaped)
    }

    /// Gives leases back at once (a process that stops gracefully): each lease still held
    /// goes back to the head of the queue, as [`RedisFrontier::reap`] does for expired ones,
    /// in ONE script call; returns how many went back.
    pub async fn release(&self, tokens: &[LeaseToken]) -> Result<usize> {
        let mut released = 0;
        for (queue, tokens) in Self::by_queue(tokens) {
            let mut args = vec![self.mode.arg().as_bytes().to_vec(), tokens.len().to_string().into_bytes()];
            args.extend(tokens.iter().map(|t| t.to_vec()));
            let (queue_key, leases_key) = self.queue_keys(queue);
            let n: i64 = self.invoke(&self.reap_script, &[&queue_key, &leases_key], &args).await?;
            released += usize::try_from(n).unwrap_or(0);
        }
        Ok(released)
    }

    /// Extends leases still held to `lease` from now (server time), for slow pages; ONE
    /// script call. Returns, per token, whether the lease was still held (`false`: it
    /// expired and was reaped, or was acked; the request may be with another consumer).
    pub async fn renew(&self, tokens: &[LeaseToken]) -> Result<Vec<bool>> {
        let mut held = std::collections::HashMap::new();
        for (queue, tokens) in Self::by_queue(tokens) {
            let mut args = Vec::with_capacity(tokens.len() + 1);
            args.push(self.lease_ms.to_string().into_bytes());
            args.extend(tokens.iter().map(|t| t.to_vec()));
            let flags: Vec<i64> =
                self.invoke(&self.renew_script, &[&self.queue_keys(queue).1], &args).await?;
            held.extend(tokens.into_iter().zip(flags.into_iter().map(|f| f == 1)));
        }
        Ok(tokens.iter().map(|t| held.get(t.as_bytes()).copied().unwrap_or(false)).collect())
    }

    /// (queued, leased): the queues' lengths and the number of leases, summed over every
    /// queue of the crawl, in one pipeline. The crawl is done across processes when both
    /// are 0 and this process is idle.
    pub async fn pending(&self) -> Result<(u64, u64)> {
        let mut pipe = redis::pipe();
        for queue in self.all_queues() {
            let (queue_key, leases_key) = self.queue_keys(queue);
            match self.mode {
                Mode::Zset { .. } => pipe.cmd("ZCARD").arg(queue_key),
                Mode::List { .. } => pipe.cmd("LLEN").arg(queue_key),
            };
            pipe.cmd("ZCARD").arg(leases_key);
        }
        let counts: Vec<u64> = self.query_pipe(&pipe).await?;
        let queued = counts.iter().step_by(2).sum();
        let leased = counts.iter().skip(1).step_by(2).sum();
        Ok((queued, leased))
    }

    /// Takes up to `max` start URLs (`LPOP <start_urls> max`, as scrapy-redis does): each a
    /// plain URL, or a JSON object with a `url` field (scrapy-redis's JSON start URLs; the
    /// other fields are ignored). Blank entries and JSON without a string `url` are skipped
    /// (logged).
    pub async fn take_start_urls(&self, max: usize) -> Result<Vec<String>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("LPOP");
        cmd.arg(&self.keys.start_urls).arg(max);
        let raw: Option<Vec<String>> = self.query(&cmd).await?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| crate::crawl::shared::parse_start_url(&s))
            .collect())
    }

    fn encode(&self, req: &PendingRequest, priority: i32) -> Result<Vec<u8>> {
        entry::encode(self.layout, self.serializer, req, priority)
            .map_err(|source| FrontierError::Encode { url: req.url.clone(), source })
    }

    /// A lease token `<id>|<score>|<entry>`: its request and priority, or why it cannot be
    /// read.
    fn decode_token(&self, token: &[u8]) -> std::result::Result<(PendingRequest, i32), String> {
        let mut parts = token.splitn(3, |&b| b == b'|');
        let (Some(_id), Some(_score), Some(entry)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("a lease token without two '|'".into());
        };
        let entry = match self.mode {
            Mode::Zset { seq: true } => entry.get(17..).unwrap_or_default(),
            _ => entry,
        };
        entry::decode(self.layout, entry)
    }

    fn corrupt(&self, key: &str, detail: String) -> FrontierError {
        FrontierError::Corrupt { key: key.to_string(), detail }
    }

    async fn invoke<T: redis::FromRedisValue, A: AsRef<[u8]>>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[A],
    ) -> Result<T> {
        self.with_retry(|mut conn| {
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(*k);
            }
            for a in args {
                inv.arg(a.as_ref());
            }
            async move { inv.invoke_async(&mut conn).await }
        })
        .await
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        self.with_retry(|mut conn| {
            let cmd = cmd.clone();
            async move { cmd.query_async(&mut conn).await }
        })
        .await
    }

    async fn query_pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        self.with_retry(|mut conn| {
            let pipe = pipe.clone();
            async move { pipe.query_async(&mut conn).await }
        })
        .await
    }

    /// Runs `call` on the connection; when the connection is broken, reconnects (with
    /// backoff, within the reconnect budget) and runs it again. Every call of this store is
    /// safe to repeat (see [`RedisFrontier::admit`] and docs/redis.md).
    async fn with_retry<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut(RedisConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + self.reconnect_budget;
        let mut backoff = Backoff::new();
        let mut retried = false;
        loop {
            let (conn, generation) = match self.connection(deadline, &mut backoff).await {
                Ok(c) => c,
                Err(e) => return Err(e.into()),
            };
            match call(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_error(&e) && Instant::now() < deadline => {
                    self.invalidate(generation).await;
                    if !retried {
                        retried = true;
                        self.counters.retried_calls.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(url = %self.broker.masked_url(), error = %e, "redis frontier: connection lost; reconnecting");
                }
                Err(e) => return Err(self.broker.error(&e).into()),
            }
        }
    }

    /// The current connection, connecting (and counting a reconnect) when there is none.
    async fn connection(
        &self,
        deadline: Instant,
        backoff: &mut Backoff,
    ) -> std::result::Result<(RedisConnection, u64), BridgeError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = &guard.conn {
            return Ok((c.clone(), guard.generation));
        }
        loop {
            match self.broker.connection().await {
                Ok(c) => {
                    if guard.generation > 0 {
                        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    guard.generation += 1;
                    guard.conn = Some(c.clone());
                    return Ok((c, guard.generation));
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Drops the connection of `generation` (unless another caller replaced it already).
    async fn invalidate(&self, generation: u64) {
        let mut guard = self.conn.lock().await;
        if guard.generation == generation && guard.conn.is_some() {
            guard.conn = None;
            self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether `e` is worth a reconnection and another try: the connection broke, timed out or
/// was refused; a server still loading its data (`LOADING`, after a restart); or on a Redis
/// Cluster a node that is gone or a slot between owners (`CLUSTERDOWN`, `TRYAGAIN`,
/// `MASTERDOWN`, `READONLY` after a failover, no connection to the slot's node, and a
/// `MOVED`/`ASK` that redis-rs's own few redirections could not follow because the node
/// it points to does not answer).
fn is_connection_error(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        )
}

/// The request fingerprint scrapy-redis's `RFPDupeFilter` (0.9) stores in
/// `<name>:dupefilter`, for a plain GET of `url` with no body, as 40 lowercase hex digits:
/// SHA1 of Python's `json.dumps({"method": "GET", "url": canonicalize_url(url), "body": ""},
/// sort_keys=True)`, i.e. of `{"body": "", "method": "GET", "url": "<canonical>"}`.
///
/// scrapy-redis computes this itself (`RFPDupeFilter.request_fingerprint`); it is not
/// Scrapy's own `scrapy.utils.request.fingerprint`, whose JSON also has `"headers": {}`
/// (and so another hash). See [`canonicalize_url`] for where it can differ from w3lib.
pub fn scrapy_fingerprint(url: &Url) -> String {
    let canonical = canonicalize_url(url);
    let mut json = String::with_capacity(canonical.len() + 60);
    json.push_str(r#"{"body": "", "method": "GET", "url": ""#);
    for c in canonical.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                // Python's ensure_ascii (never reached for a canonical URL, which is ASCII).
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(json, "\\u{unit:04x}");
                }
            }
            c => json.push(c),
        }
    }
    json.push_str("\"}");
    let digest = sha1(json.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// w3lib's `canonicalize_url(url)` (w3lib 2.x defaults: blank values kept, fragment
/// dropped) for a URL already parsed by the `url` crate: the query's `key=value` pairs
/// decoded, sorted by (key, value) bytes and re-encoded (`quote_plus`: space as `+`, only
/// RFC 3986 unreserved characters left bare); the path decoded and re-encoded with the
/// reserved characters left bare (`%2F`, `%3B`, `%3F`, `%25` kept encoded, hex upper-case),
/// `;params` of the last segment left as they are; the fragment dropped; `/` for an empty
/// path.
///
/// Differs from w3lib where the `url` crate normalised first: an explicit default port
/// (`:80`, `:443`) is dropped (w3lib keeps it), internationalised host names are IDNA per
/// UTS 46 (w3lib: the `idna` package, IDNA 2008), and user info is encoded per WHATWG.
pub fn canonicalize_url(url: &Url) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(url.scheme());
    out.push(':');
    if url.has_host() || url.as_str()[url.scheme().len() + 1..].starts_with("//") {
        out.push_str("//");
        if !url.username().is_empty() || url.password().is_some() {
            out.push_str(url.username());
            if let Some(p) = url.password() {
                out.push(':');
                out.push_str(p);
            }
            out.push('@');
        }
        if let Some(host) = url.host_str() {
            out.push_str(&host.to_ascii_lowercase());
        }
        if let Some(port) = url.port() {
            let _ = write!(out, ":{port}");
        }
    }
    let full_path = url.path();
    let (path, params) = if matches!(url.scheme(), "http" | "https" | "ftp" | "" | "file") {
        let last = full_path.rfind('/').map_or(0, |i| i + 1);
        match full_path[last..].find(';') {
            Some(i) => (&full_path[..last + i], Some(&full_path[last + i + 1..])),
            None => (full_path, None),
        }
    } else {
        (full_path, None)
    };
    if path.is_empty() {
        out.push('/');
    } else {
        let bytes = unquote_path(path);
        quote_into(&bytes, &mut out, is_path_safe, false);
    }
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        out.push(';');
        out.push_str(params);
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
            .split('&')
            .filter(|f| !f.is_empty())
            .map(|field| {
                let (k, v) = field.split_once('=').unwrap_or((field, ""));
                (unquote_plus(k), unquote_plus(v))
            })
            .collect();
        pairs.sort();
        if !pairs.is_empty() {
            out.push('?');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push('&');
                }
                quote_into(k, &mut out, is_unreserved, true);
                out.push('=');
                quote_into(v, &mut out, is_unreserved, true);
            }
        }
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// w3lib's `_PATH_SAFE_CHARS`: reserved (but `#`) + unreserved + `|` + `%`.
fn is_path_safe(b: u8) -> bool {
    is_unreserved(b) || b":/?[]@!$&'()*+,;=|%".contains(&b)
}

fn quote_into(data: &[u8], out: &mut String, safe: fn(u8) -> bool, plus: bool) {
    for &b in data {
        if safe(b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding that leaves invalid escapes as they are (Python's `unquote_to_bytes`).
fn unquote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn unquote_plus(s: &str) -> Vec<u8> {
    unquote(s.replace('+', " ").as_bytes())
}

/// w3lib's `_unquotepath`: decodes everything but `%25`, `%2F`, `%3B`, `%3F` (which keep
/// their meaning, upper-cased).
fn unquote_path(path: &str) -> Vec<u8> {
    if !path.contains('%') {
        return path.as_bytes().to_vec();
    }
    let protected = path
        .replace("%25", "%2525")
        .replace("%2f", "%252F")
        .replace("%2F", "%252F")
        .replace("%3b", "%253B")
        .replace("%3B", "%253B")
        .replace("%3f", "%253F")
        .replace("%3F", "%253F");
    unquote(protected.as_bytes())
}

/// SHA-1 (FIPS 180-4) of `data`: the hash Scrapy's fingerprints use. Small and not on a hot
/// path (one per admitted request in the scrapy-redis layout).
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 20]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}

#[cfg(test)]
mod bloom_tests {
    use super::*;

    #[test]
    fn bloom_shape_and_members() {
        let b = Bloom::new(10_000_000, 0.001);
        // m = -n ln p / ln² 2 ≈ 143.8 M bits (17 MiB), k = m/n ln 2 ≈ 10.
        assert!((143_000_000..145_000_000).contains(&b.bits), "{b:?}");
        assert_eq!(b.hashes, 10);
        let m = b.member(Fingerprint(0x1234_5678_9abc_def0_0fed_cba9_8765_4321));
        let offsets: Vec<u64> =
            m.trim_start_matches("B:").split(',').map(|o| o.parse().expect("number")).collect();
        assert_eq!(offsets.len(), 10);
        assert!(offsets.iter().all(|o| *o < b.bits));
        assert_eq!(m, b.member(Fingerprint(0x1234_5678_9abc_def0_0fed_cba9_8765_4321)), "deterministic");
    }
}

/// The order to run frontier `name` in: `order`, unless its queue already exists as the
/// other kind of key (a sorted set is a priority queue, as scrapy-redis's default
/// `PriorityQueue`; a list is fifo or lifo): then that queue's order is adopted, and said.
/// A queue, seen-set or lease key of any other type is an error naming the key, its type
/// and what to change, never a loop of WRONGTYPE answers.
pub async fn adopt_order(
    broker: &RedisBroker,
    name: &str,
    layout: Layout,
    order: QueueOrder,
    bloom: bool,
) -> std::result::Result<QueueOrder, BridgeError> {
    let keys = FrontierKeys::on(broker, name, layout);
    let mut conn = broker.connection().await?;
    let mut pipe = redis::pipe();
    pipe.cmd("TYPE").arg(&keys.queue).cmd("TYPE").arg(&keys.seen).cmd("TYPE").arg(&keys.leases);
    if bloom {
        pipe.cmd("TYPE").arg(format!("{}:bloom", keys.seen));
    }
    let types: Vec<String> = pipe.query_async(&mut conn).await.map_err(|e| broker.error(&e))?;
    let wrong = |key: &str, kind: &str, want: &str| {
        BridgeError::Unsupported(format!(
            "the Redis key '{key}' holds a {kind}, but the shared frontier needs {want} there: \
             delete the key, or give the crawl another `name` (or `frontier.layout`)"
        ))
    };
    let kind = |i: usize| types.get(i).map(String::as_str).unwrap_or("none");
    if !matches!(kind(1), "none" | "set") {
        return Err(wrong(&keys.seen, kind(1), "a set (the seen-set)"));
    }
    if !matches!(kind(2), "none" | "zset") {
        return Err(wrong(&keys.leases, kind(2), "a sorted set (the leases)"));
    }
    if bloom && !matches!(kind(3), "none" | "string") {
        return Err(wrong(&format!("{}:bloom", keys.seen), kind(3), "a string (the Bloom filter's bits)"));
    }
    match (kind(0), order) {
        ("none", o)
        | ("list", o @ (QueueOrder::Fifo | QueueOrder::Lifo))
        | ("zset", o @ QueueOrder::Priority) => Ok(o),
        ("zset", o) => {
            tracing::warn!(
                key = %keys.queue,
                "the queue is a sorted set (a priority queue, as scrapy-redis's PriorityQueue): \
                 using `frontier.order: priority`, not {o:?}"
            );
            Ok(QueueOrder::Priority)
        }
        ("list", QueueOrder::Priority) => {
            tracing::warn!(
                key = %keys.queue,
                "the queue is a list (fifo or lifo): using `frontier.order: fifo`, not priority"
            );
            Ok(QueueOrder::Fifo)
        }
        (other, _) => {
            Err(wrong(&keys.queue, other, "a list, or a sorted set with `order: priority` (the queue)"))
        }
    }
}

/// Checks the keys of the named queues of a routed crawl (`queues:`; docs/routing.md):
/// each queue key must be absent or of the kind `order` needs (a list, or a sorted set for
/// `priority`: the order the `default` queue settled on), each leases key absent or a
/// sorted set; otherwise an error names the key.
pub async fn check_queue_keys<S: AsRef<str>>(
    broker: &RedisBroker,
    name: &str,
    layout: Layout,
    order: QueueOrder,
    queues: impl IntoIterator<Item = S>,
) -> std::result::Result<(), BridgeError> {
    let keys = FrontierKeys::on(broker, name, layout);
    let named: Vec<(String, String)> = queues
        .into_iter()
        .filter(|q| q.as_ref() != DEFAULT_QUEUE)
        .map(|q| (format!("{}:{}", keys.queue, q.as_ref()), format!("{}:{}", keys.leases, q.as_ref())))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let mut conn = broker.connection().await?;
    let mut pipe = redis::pipe();
    for (queue, leases) in &named {
        pipe.cmd("TYPE").arg(queue).cmd("TYPE").arg(leases);
    }
    let types: Vec<String> = pipe.query_async(&mut conn).await.map_err(|e| broker.error(&e))?;
    let want = if order == QueueOrder::Priority { "zset" } else { "list" };
    for ((queue, leases), kinds) in named.iter().zip(types.chunks(2)) {
        for (key, kind, need) in [(queue, &kinds[0], want), (leases, &kinds[1], "zset")] {
            if kind != "none" && kind != need {
                return Err(BridgeError::Unsupported(format!(
                    "the Redis key '{key}' holds a {kind}, but this routed crawl needs a {need} there: \
                     delete the key, or give the crawl another `name`"
                )));
            }
        }
    }
    Ok(())
}

/// The Redis frontier behind the broker seam: leases expire (`frontier.lease`), so the
/// scheduler renews what it holds and any process reaps what dead ones left.
impl SharedStore for RedisFrontier {
    fn describe(&self) -> String {
        let kind = if self.broker.is_cluster() { "Redis Cluster" } else { "Redis" };
        match self.queues.len() {
            0 => format!("{kind} {} ({})", self.broker.masked_url(), self.keys.queue),
            n => format!(
                "{kind} {} ({} and {n} named queues beside it)",
                self.broker.masked_url(),
                self.keys.queue
            ),
        }
    }

    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.admit(&batch).await.map(drop).map_err(StoreError::new) })
    }

    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>> {
        let this = self.clone();
        Box::pin(async move { this.lease(max).await.map_err(StoreError::new) })
    }

    fn supports_queues(&self) -> bool {
        true
    }

    fn admit_to(&self, queue: Arc<str>, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.admit_to(&queue, &batch).await.map(drop).map_err(StoreError::new) })
    }

    /// One lease script call per queue asked for, in the order asked.
    fn lease_from(&self, asks: Vec<LeaseAsk>) -> BoxFuture<'static, StoreResult<Vec<LeasedFrom>>> {
        let this = self.clone();
        Box::pin(async move {
            let mut out = Vec::new();
            for ask in asks {
                let leased = this.lease_from(&ask.queue, ask.max).await.map_err(StoreError::new)?;
                out.extend(leased.into_iter().map(|lease| LeasedFrom { queue: ask.queue.clone(), lease }));
            }
            Ok(out)
        })
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.ack(&tokens).await.map(drop).map_err(StoreError::new) })
    }

    fn lease_duration(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.lease_ms))
    }

    fn renew(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.renew(&tokens).await.map(drop).map_err(StoreError::new) })
    }

    fn reap(&self) -> BoxFuture<'static, StoreResult<usize>> {
        let this = self.clone();
        Box::pin(async move { this.reap().await.map_err(StoreError::new) })
    }

    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let this = self.clone();
        Box::pin(async move { this.release(&tokens).await.map_err(StoreError::new) })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        let this = self.clone();
        Box::pin(async move { this.take_start_urls(max).await.map_err(StoreError::new) })
    }

    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let this = self.clone();
        Box::pin(async move {
            let (queued, leased) = this.pending().await.map_err(StoreError::new)?;
            Ok(Pending { queued, leased })
        })
    }

    /// `SET <beside the leases>tick:<key> 1 NX PX <hold>`: the first process to ask wins.
    fn claim(&self, key: String, hold: Duration) -> BoxFuture<'static, StoreResult<bool>> {
        let this = self.clone();
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(this.keys.beside_leases(&format!("tick:{key}")))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1));
            let set: Option<String> = this.query(&cmd).await.map_err(StoreError::new)?;
            Ok(set.is_some())
        })
    }

    fn reconnects(&self) -> u64 {
        self.counters.reconnects()
    }

    /// One script call: `min(wanted, limit - granted)` more, counted in `items`.
    fn take_items(&self, wanted: u64, limit: u64) -> Option<BoxFuture<'static, StoreResult<(u64, bool)>>> {
        let this = self.clone();
        Some(Box::pin(async move {
            let key = this.keys.items();
            let args = [wanted.to_string(), limit.to_string()];
            let (granted, total): (u64, u64) =
                this.invoke(&TAKE_ITEMS_SCRIPT, &[&key], &args).await.map_err(StoreError::new)?;
            Ok((granted, total >= limit))
        }))
    }

    /// `DEL` of the seen-set (or the Bloom filter) and of the `max_pages` and `max_items`
    /// counts.
    fn forget_seen(&self) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(this.seen_key()).arg(this.keys.admitted()).arg(this.keys.items());
            let _: i64 = this.query(&cmd).await.map_err(StoreError::new)?;
            Ok(())
        })
    }

    /// Per-host rate, Crawl-delay and concurrency in Redis, beside the frontier's keys.
    fn politeness(&self) -> Option<Arc<dyn SharedPoliteness>> {
        Some(Arc::new(super::politeness::RedisPoliteness::new(self)))
    }

    fn dead_letters(&self) -> u64 {
        self.counters.dead_lettered.load(Ordering::Relaxed)
    }
}
