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

/// permits: KEYS (rate key, slots key) per ask, then a slots key per release; ARGV asks,
/// slot ttl ms, then (interval µs, concurrency, slot id) per ask, then a slot id per release.
/// Returns per ask: 0 granted, -1 full (concurrency), or n > 0 µs to wait (rate).
///
/// GCRA with a burst of one: a request is allowed when now >= TAT; then TAT = max(TAT, now)
/// + interval. Requests to one host are therefore at least `interval` apart by the server's
/// clock, whichever process sends them.
const PERMITS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local asks = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for k = 2 * asks + 1, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[2 + 3 * asks + (k - 2 * asks)])
end
local out = {}
for i = 1, asks do
  local rate_key, slots_key = KEYS[2 * i - 1], KEYS[2 * i]
  local interval = tonumber(ARGV[3 * i])
  local conc = tonumber(ARGV[3 * i + 1])
  local id = ARGV[3 * i + 2]
  local answer = 0
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now_ms)
    if redis.call('ZCARD', slots_key) >= conc then answer = -1 end
  end
  local tat = now
  if answer == 0 and interval > 0 then
    tat = tonumber(redis.call('GET', rate_key) or '0')
    if tat > now then answer = tat - now else tat = now end
  end
  if answer == 0 then
    if interval > 0 then
      redis.call('SET', rate_key, string.format('%.0f', tat + interval), 'PX', math.floor(interval / 1000) + 1000)
    end
    if conc > 0 then redis.call('ZADD', slots_key, now_ms + ttl, id) end
  end
  out[i] = answer
end
return out
"#;

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
        let mut keys = Vec::with_capacity(asks.len() * 2 + done.len());
        let mut args = Vec::with_capacity(2 + asks.len() * 3 + done.len());
        args.push(asks.len().to_string());
        args.push(self.frontier.lease_ms().to_string());
        let mut ids = Vec::with_capacity(asks.len());
        for ask in asks {
            keys.push(self.rate_key(&ask.host));
            keys.push(self.slots_key(&ask.host));
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
                0 => Permit::Granted(
                    (ask.concurrency > 0).then(|| Slot { host: ask.host.clone(), id: id.into() }),
                ),
                n if n < 0 => Permit::Full,
                n => Permit::Wait(Duration::from_micros(n.unsigned_abs())),
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
