//! Per-host politeness across every process of a crawl, kept in Redis beside the shared
//! frontier: a GCRA rate limiter per host (`<…>:polite:<host>`, the theoretical arrival
//! time in µs of the server's clock) and concurrency slots per host (`<…>:slots:<host>`, a
//! sorted set of slot ids scored by expiry, so a killed process's slots come back after
//! `frontier.lease`). One Lua script call answers a batch of asks and gives back the slots
//! of finished fetches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::Script;

use super::frontier::RedisFrontier;
use crate::crawl::shared::{Permit, PermitAsk, SharedPoliteness, Slot, StoreError, StoreResult};

/// permits: KEYS (rate key, slots key, askers key) per ask, then a slots key per release;
/// ARGV asks, slot ttl ms, horizon µs, process id, then (interval µs, concurrency, slot id)
/// per ask, then a slot id per release. Returns per ask: n >= 0 granted, to start n µs from now; -1 full
/// (concurrency); n <= -2 wait -n - 2 µs (rate), then ask again.
///
/// GCRA with a burst of one: a request is allowed at the theoretical arrival time TAT,
/// which then moves on by `interval`; a request whose TAT is within `horizon` is granted
/// with that start (reserved: a batch of asks for one host is answered in one round trip),
/// a later one waits. Requests to one host therefore start at least `interval` apart by
/// the server's clock, whichever process sends them.
///
/// Slots are shared fairly: a process holds at most `ceil(concurrency / n)` of a host's
/// slots, `n` being the processes that asked for that host within the last second (the
/// askers sorted set), so a process that frees a slot does not take it straight back while
/// another one waits.
const PERMITS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local asks = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local me = ARGV[4]
for k = 3 * asks + 1, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[4 + 3 * asks + (k - 3 * asks)])
end
local out = {}
for i = 1, asks do
  local rate_key, slots_key, askers_key = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local interval = tonumber(ARGV[3 * i + 2])
  local conc = tonumber(ARGV[3 * i + 3])
  local id = ARGV[3 * i + 4]
  local answer = 0
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now_ms)
    redis.call('ZADD', askers_key, now_ms, me)
    redis.call('ZREMRANGEBYSCORE', askers_key, '-inf', now_ms - 1000)
    redis.call('PEXPIRE', askers_key, 2000)
    local held = redis.call('ZRANGE', slots_key, 0, -1)
    local mine = 0
    for _, s in ipairs(held) do
      if string.sub(s, 1, #me + 1) == me .. ':' then mine = mine + 1 end
    end
    local share = math.ceil(conc / math.max(redis.call('ZCARD', askers_key), 1))
    if #held >= conc or mine >= share then answer = -1 end
  end
  local tat = now
  if answer == 0 and interval > 0 then
    tat = math.max(tonumber(redis.call('GET', rate_key) or '0'), now)
    if tat - now > horizon then answer = -2 - (tat - now - horizon) else answer = tat - now end
  end
  if answer >= 0 then
    if interval > 0 then
      redis.call('SET', rate_key, string.format('%.0f', tat + interval), 'PX', math.floor((tat + interval - now) / 1000) + 1000)
    end
    if conc > 0 then redis.call('ZADD', slots_key, now_ms + math.floor(answer / 1000) + ttl, id) end
  end
  out[i] = answer
end
return out
"#;

/// How far ahead a host's rate may be reserved: asks whose turn comes within this are
/// granted with their start time, later ones wait and ask again. Zero: a request is
/// granted only when its turn has come by the server's clock. Reserving ahead (tried: 250
/// ms and 5 ms) lets a batch for one host through in one round trip, but the processes'
/// late timers then squeeze reserved starts together (52 requests in one second at
/// `rate: 50`, measured both times), while a grant at the turn itself pushes later turns
/// back when it is late. The price: a host at its rate gets one grant per permit call
/// (four calls in flight per process), so very high per-host rates are bounded by the
/// round trip to Redis.
pub const RESERVE_AHEAD: Duration = Duration::ZERO;

/// The Redis side of [`SharedPoliteness`] for one frontier (cheap to clone).
#[derive(Clone)]
pub struct RedisPoliteness {
    frontier: RedisFrontier,
    script: Arc<Script>,
    /// This process's prefix of slot ids (random), and a counter for the rest.
    process: Arc<str>,
    next_slot: Arc<AtomicU64>,
}

impl RedisPoliteness {
    /// Politeness beside `frontier`'s keys, on its connection.
    pub fn new(frontier: &RedisFrontier) -> Self {
        Self {
            frontier: frontier.clone(),
            script: Arc::new(Script::new(PERMITS)),
            process: format!("{:016x}", rand::random::<u64>()).into(),
            next_slot: Arc::default(),
        }
    }

    fn rate_key(&self, host: &str) -> String {
        self.frontier.keys().beside_leases(&format!("polite:{host}"))
    }

    fn slots_key(&self, host: &str) -> String {
        self.frontier.keys().beside_leases(&format!("slots:{host}"))
    }

    /// Gives back `done`, then answers `asks` (see [`SharedPoliteness::permits`]); ONE
    /// script call.
    pub async fn permits(&self, done: &[Slot], asks: &[PermitAsk]) -> super::frontier::Result<Vec<Permit>> {
        if done.is_empty() && asks.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(asks.len() * 3 + done.len());
        let mut args = Vec::with_capacity(4 + asks.len() * 3 + done.len());
        args.push(asks.len().to_string());
        args.push(self.frontier.lease_ms().to_string());
        args.push(u64::try_from(RESERVE_AHEAD.as_micros()).unwrap_or(u64::MAX).to_string());
        args.push(self.process.to_string());
        let mut ids = Vec::with_capacity(asks.len());
        for ask in asks {
            keys.push(self.rate_key(&ask.host));
            keys.push(self.slots_key(&ask.host));
            keys.push(self.frontier.keys().beside_leases(&format!("askers:{}", ask.host)));
            let id = format!("{}:{}", self.process, self.next_slot.fetch_add(1, Ordering::Relaxed));
            args.push(u64::try_from(ask.interval.as_micros()).unwrap_or(u64::MAX).to_string());
            args.push(ask.concurrency.to_string());
            args.push(id.clone());
            ids.push(id);
        }
        for slot in done {
            keys.push(self.slots_key(&slot.host));
            args.push(slot.id.to_string());
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let answers: Vec<i64> = self.frontier.invoke_script(&self.script, &key_refs, &args).await?;
        Ok(asks
            .iter()
            .zip(ids)
            .zip(answers)
            .map(|((ask, id), answer)| match answer {
                n if n >= 0 => Permit::Granted {
                    after: Duration::from_micros(n.unsigned_abs()),
                    slot: (ask.concurrency > 0).then(|| Slot { host: ask.host.clone(), id: id.into() }),
                },
                -1 => Permit::Full,
                n => Permit::Wait(Duration::from_micros(n.unsigned_abs() - 2)),
            })
            .collect())
    }
}

impl SharedPoliteness for RedisPoliteness {
    fn permits(&self, done: Vec<Slot>, asks: Vec<PermitAsk>) -> BoxFuture<'static, StoreResult<Vec<Permit>>> {
        let this = self.clone();
        Box::pin(async move { this.permits(&done, &asks).await.map_err(StoreError::new) })
    }
}
