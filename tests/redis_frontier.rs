//! The Redis frontier store (`arachne::bridges::redis::frontier`) against a real
//! redis-server: dedup across two handles ("processes") on one Redis, the three orders,
//! leases that expire and come back, acks, start URLs, scrapy-redis's key names, types and
//! dupefilter fingerprints, and a redis-server restarted between two calls.
//!
//! Which server: `ARACHNE_TEST_REDIS_URL` (scripts/test.sh starts one). Without it, under
//! `CI` the tests fail; elsewhere each test starts its own `redis-server` on a free port
//! when the binary is installed, and is skipped loudly when it is not. The restart test
//! always starts its own server (append-only file on, so the data survives the restart).

use std::time::{Duration, Instant};

use arachne::bridges::redis::frontier::{
    canonicalize_url, scrapy_fingerprint, FrontierKeys, Layout, RedisFrontier,
};
use arachne::bridges::redis::RedisBroker;
use arachne::crawl::urls::{fingerprint, Fingerprint};
use arachne::spec::QueueOrder;
use arachne::state::PendingRequest;
use support::{can_start_own, conn, test_redis, unique, OwnServer};
use url::Url;

mod support;

fn key_type(url: &str, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query(&mut conn(url)).expect("TYPE")
}

fn req(url: &str, depth: u32) -> (Fingerprint, PendingRequest) {
    let parsed = Url::parse(url).expect("url");
    (fingerprint(&parsed), PendingRequest { url: parsed.to_string(), depth, redirect_chain: Vec::new() })
}

fn batch(urls: &[&str], priority: i32) -> Vec<(Fingerprint, PendingRequest, i32)> {
    urls.iter()
        .map(|u| {
            let (f, r) = req(u, 1);
            (f, r, priority)
        })
        .collect()
}

fn frontier(url: &str, name: &str, order: QueueOrder, layout: Layout, lease: Duration) -> RedisFrontier {
    let broker = RedisBroker::new(url).expect("broker");
    RedisFrontier::new(&broker, name, order, layout, lease)
}

async fn lease_urls(f: &RedisFrontier, max: usize) -> Vec<String> {
    f.lease(max).await.expect("lease").into_iter().map(|l| l.request.url).collect()
}

/// Reference fingerprints from scrapy-redis 0.9.1 (`RFPDupeFilter.request_fingerprint` of
/// `scrapy.Request(url)`) with Scrapy 2.19 and w3lib 2.5.0, generated once with
/// `pip install scrapy scrapy-redis` and this Python:
///
/// ```python
/// from scrapy import Request
/// from scrapy_redis.dupefilter import RFPDupeFilter
/// from w3lib.url import canonicalize_url
/// df = RFPDupeFilter(server=None, key="x")
/// for u in URLS: print(u, canonicalize_url(u), df.request_fingerprint(Request(u)))
/// ```
const SCRAPY_REDIS_FINGERPRINTS: &[(&str, &str, &str)] = &[
    ("http://www.example.com/", "http://www.example.com/", "95dd4ba389d4524f21d13527fe6c784064c2d6f9"),
    ("http://www.example.com", "http://www.example.com/", "95dd4ba389d4524f21d13527fe6c784064c2d6f9"),
    (
        "https://example.com/a/b?z=1&a=2&a=1",
        "https://example.com/a/b?a=1&a=2&z=1",
        "60761b120a045c03f0d02158849bf51d497ee2e7",
    ),
    (
        "http://example.com/do?c=3&b=5&b=2&a=50",
        "http://example.com/do?a=50&b=2&b=5&c=3",
        "9f34aa65ff99adc7d83cd04cd4426b9c065e259f",
    ),
    (
        "http://example.com/p%7Eq/%2fx%3b%3F%25?q=a+b%20c&e&f=",
        "http://example.com/p~q/%2Fx%3B%3F%25?e=&f=&q=a+b+c",
        "0f148856ab33d862dd98563b4645cd31d66e05f7",
    ),
    (
        "http://example.com/r%C3%A9sum%C3%A9?x=%e9",
        "http://example.com/r%C3%A9sum%C3%A9?x=%E9",
        "1f29f61c570c8b8b3834816f2907123447ef7071",
    ),
    (
        "http://example.com/a;p=%7E1?x=1#frag",
        "http://example.com/a;p=%7E1?x=1",
        "7f5c07989f23c23a366264a4a71e51759493a8e8",
    ),
    (
        "http://127.0.0.1:8080/page/42.html",
        "http://127.0.0.1:8080/page/42.html",
        "cc488a89798992c56e7dd37e420c0a3313286a47",
    ),
    ("http://example.com/?", "http://example.com/", "db723d399cb551c9ef8eca77ed8dbed4a0522b4f"),
    (
        "http://example.com/s?q=a%2Bb&q=a/b&k=%3D",
        "http://example.com/s?k=%3D&q=a%2Bb&q=a%2Fb",
        "1c77dd16590ce584c2ad507d2355a90893e3054c",
    ),
    (
        "http://user:pw@example.com:8443/x",
        "http://user:pw@example.com:8443/x",
        "75fb55567e54609b99ad1beaafc28a1716c33b5b",
    ),
    (
        "http://example.com/a%5Bb%5D/%41%7e",
        "http://example.com/a[b]/A~",
        "9474b04050d2446fdc068dae921936bf5ad089ad",
    ),
    (
        "HTTP://Example.COM/Path?B=1&a=2",
        "http://example.com/Path?B=1&a=2",
        "852c9133a282676cfcc258049593c6fe5dd852fb",
    ),
];

#[test]
fn scrapy_redis_fingerprints_match_python() {
    for (url, canonical, fp) in SCRAPY_REDIS_FINGERPRINTS {
        let parsed = Url::parse(url).expect("url");
        assert_eq!(canonicalize_url(&parsed), *canonical, "canonicalize_url({url})");
        assert_eq!(scrapy_fingerprint(&parsed), *fp, "fingerprint({url})");
    }
}

#[tokio::test]
async fn two_handles_share_one_seen_set() {
    let Some(redis) = test_redis("two_handles_share_one_seen_set") else { return };
    let name = unique("dedup");
    let a = frontier(&redis.url, &name, QueueOrder::Fifo, Layout::Native, Duration::from_secs(30));
    let b = frontier(&redis.url, &name, QueueOrder::Fifo, Layout::Native, Duration::from_secs(30));
    let first = a.admit(&batch(&["http://h/1", "http://h/2", "http://h/1"], 0)).await.expect("admit a");
    assert_eq!(first, [true, true, false], "a duplicate within one batch");
    let second = b.admit(&batch(&["http://h/2", "http://h/3"], 0)).await.expect("admit b");
    assert_eq!(second, [false, true], "the other handle sees a's fingerprints");
    assert_eq!(a.pending().await.expect("pending"), (3, 0));
    assert_eq!(lease_urls(&b, 10).await, ["http://h/1", "http://h/2", "http://h/3"]);
    assert_eq!(key_type(&redis.url, &a.keys().seen), "set");
    // Every field of the request survives the trip (a 128-bit redirect chain too).
    let (fp, mut r) = req("http://h/redirected", 7);
    r.redirect_chain = vec![u128::MAX, 1];
    assert_eq!(a.admit(&[(fp, r.clone(), 3)]).await.expect("admit"), [true]);
    let got = b.lease(1).await.expect("lease");
    assert_eq!((&got[0].request, got[0].priority), (&r, 3));
    assert_eq!(key_type(&redis.url, &a.keys().leases), "zset");
}

#[tokio::test]
async fn fifo_lifo_and_priority_orders() {
    let Some(redis) = test_redis("fifo_lifo_and_priority_orders") else { return };
    let urls = ["http://o/1", "http://o/2", "http://o/3"];
    for (order, expect) in [
        (QueueOrder::Fifo, vec!["http://o/1", "http://o/2", "http://o/3"]),
        (QueueOrder::Lifo, vec!["http://o/3", "http://o/2", "http://o/1"]),
    ] {
        for layout in [Layout::Native, Layout::ScrapyRedis] {
            let f = frontier(&redis.url, &unique("order"), order, layout, Duration::from_secs(30));
            // Two batches: the order holds across script calls.
            f.admit(&batch(&urls[..1], 0)).await.expect("admit");
            f.admit(&batch(&urls[1..], 0)).await.expect("admit");
            assert_eq!(key_type(&redis.url, &f.keys().queue), "list");
            assert_eq!(lease_urls(&f, 10).await, expect, "{order:?} {layout:?}");
        }
    }
    // Priority: highest first; native is fifo among equals (a sequence in the member).
    let f =
        frontier(&redis.url, &unique("prio"), QueueOrder::Priority, Layout::Native, Duration::from_secs(30));
    let mut b = batch(&["http://p/z-low"], -1);
    b.extend(batch(&["http://p/y-mid", "http://p/a-mid", "http://p/m-mid"], 0));
    b.extend(batch(&["http://p/high"], 5));
    f.admit(&b).await.expect("admit");
    assert_eq!(key_type(&redis.url, &f.keys().queue), "zset");
    let got = f.lease(10).await.expect("lease");
    let urls: Vec<_> = got.iter().map(|l| l.request.url.as_str()).collect();
    assert_eq!(
        urls,
        ["http://p/high", "http://p/y-mid", "http://p/a-mid", "http://p/m-mid", "http://p/z-low"]
    );
    let prios: Vec<_> = got.iter().map(|l| l.priority).collect();
    assert_eq!(prios, [5, 0, 0, 0, -1]);
    // scrapy-redis layout: scored by -priority exactly (equals: lexicographic, as scrapy-redis).
    let s = frontier(
        &redis.url,
        &unique("sprio"),
        QueueOrder::Priority,
        Layout::ScrapyRedis,
        Duration::from_secs(30),
    );
    let mut b = batch(&["http://p/low"], -3);
    b.extend(batch(&["http://p/high"], 7));
    s.admit(&b).await.expect("admit");
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&s.keys().queue)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut conn(&redis.url))
        .expect("ZRANGE");
    assert_eq!(scores.iter().map(|(_, s)| *s).collect::<Vec<_>>(), [-7.0, 3.0]);
    let entry: serde_json::Value = serde_json::from_str(&scores[0].0).expect("plain JSON member");
    assert_eq!(entry["url"], "http://p/high");
    assert_eq!(entry["priority"], 7);
    assert_eq!(entry["method"], "GET");
    let got = s.lease(10).await.expect("lease");
    assert_eq!(
        got.iter().map(|l| (l.request.url.as_str(), l.priority)).collect::<Vec<_>>(),
        [("http://p/high", 7), ("http://p/low", -3)]
    );
}

#[tokio::test]
async fn expired_leases_come_back_and_acks_remove_them() {
    let Some(redis) = test_redis("expired_leases_come_back_and_acks_remove_them") else { return };
    let name = unique("lease");
    let lease = Duration::from_millis(300);
    for order in [QueueOrder::Fifo, QueueOrder::Priority] {
        let name = format!("{name}-{order:?}");
        let a = frontier(&redis.url, &name, order, Layout::Native, lease);
        let b = frontier(&redis.url, &name, order, Layout::Native, lease);
        a.admit(&batch(&["http://l/1", "http://l/2", "http://l/3"], 0)).await.expect("admit");
        let held = a.lease(2).await.expect("lease");
        assert_eq!(held.len(), 2);
        assert_eq!(a.pending().await.expect("pending"), (1, 2));
        // Acked: gone for good. Not acked ("a" died): back after the lease.
        assert_eq!(a.ack(&[held[0].token.clone()]).await.expect("ack"), 1);
        assert_eq!(b.reap().await.expect("reap"), 0, "not expired yet");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut reaped = 0;
        while reaped == 0 {
            assert!(Instant::now() < deadline, "the lease never expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
            reaped = b.reap().await.expect("reap");
        }
        assert_eq!(reaped, 1);
        assert_eq!(b.pending().await.expect("pending"), (2, 0));
        // Back at the head: retried before l/3.
        let again = b.lease(10).await.expect("lease");
        let urls: Vec<_> = again.iter().map(|l| l.request.url.as_str()).collect();
        assert_eq!(urls, ["http://l/2", "http://l/3"], "{order:?}");
        // The dead consumer's late ack or renew does nothing to b's lease.
        assert_eq!(a.ack(&[held[1].token.clone()]).await.expect("late ack"), 0);
        assert_eq!(a.renew(&[held[1].token.clone()]).await.expect("late renew"), [false]);
        // Renewed leases outlive their first expiry.
        assert_eq!(b.renew(&[again[0].token.clone()]).await.expect("renew"), [true]);
        let tokens: Vec<_> = again.iter().map(|l| l.token.clone()).collect();
        assert_eq!(b.ack(&tokens).await.expect("ack"), 2);
        assert_eq!(b.pending().await.expect("pending"), (0, 0));
        assert!(b.lease(10).await.expect("lease").is_empty());
    }
}

#[tokio::test]
async fn renew_keeps_a_slow_lease() {
    let Some(redis) = test_redis("renew_keeps_a_slow_lease") else { return };
    let f =
        frontier(&redis.url, &unique("renew"), QueueOrder::Fifo, Layout::Native, Duration::from_millis(300));
    f.admit(&batch(&["http://r/1"], 0)).await.expect("admit");
    let held = f.lease(1).await.expect("lease");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(f.renew(&[held[0].token.clone()]).await.expect("renew"), [true]);
        assert_eq!(f.reap().await.expect("reap"), 0, "renewed: not expired");
    }
    assert_eq!(f.pending().await.expect("pending"), (0, 1));
}

#[tokio::test]
async fn start_urls_plain_and_json() {
    let Some(redis) = test_redis("start_urls_plain_and_json") else { return };
    for layout in [Layout::Native, Layout::ScrapyRedis] {
        let f = frontier(&redis.url, &unique("start"), QueueOrder::Fifo, layout, Duration::from_secs(30));
        let mut c = conn(&redis.url);
        let _: i64 = redis::cmd("RPUSH")
            .arg(&f.keys().start_urls)
            .arg("http://s/plain")
            .arg(r#"{"url": "http://s/json", "meta": {"x": 1}}"#)
            .arg(r#"{"no": "url"}"#)
            .arg("http://s/third")
            .query(&mut c)
            .expect("RPUSH");
        assert_eq!(f.take_start_urls(2).await.expect("take"), ["http://s/plain", "http://s/json"]);
        assert_eq!(f.take_start_urls(10).await.expect("take"), ["http://s/third"], "the bad entry skipped");
        assert!(f.take_start_urls(10).await.expect("take").is_empty());
    }
}

#[tokio::test]
async fn scrapy_redis_layout_keys_types_and_dupefilter() {
    let Some(redis) = test_redis("scrapy_redis_layout_keys_types_and_dupefilter") else { return };
    let name = unique("spider");
    assert_eq!(FrontierKeys::new(&name, Layout::ScrapyRedis).queue, format!("{name}:requests"));
    assert_eq!(
        FrontierKeys::new("x", Layout::Native),
        FrontierKeys {
            queue: "arachne:x:queue".into(),
            seen: "arachne:x:seen".into(),
            leases: "arachne:x:leases".into(),
            lease_seq: "arachne:x:lease_seq".into(),
            seq: "arachne:x:seq".into(),
            start_urls: "arachne:x:start_urls".into(),
            items: "arachne:x:items".into(),
        }
    );
    let f = frontier(&redis.url, &name, QueueOrder::Priority, Layout::ScrapyRedis, Duration::from_secs(30));
    let k = f.keys().clone();
    assert_eq!(
        (k.queue.as_str(), k.seen.as_str(), k.start_urls.as_str(), k.items.as_str()),
        (
            format!("{name}:requests").as_str(),
            format!("{name}:dupefilter").as_str(),
            format!("{name}:start_urls").as_str(),
            format!("{name}:items").as_str()
        )
    );
    // A fingerprint a Python scrapy-redis spider put there first: this URL is a duplicate.
    let mut c = conn(&redis.url);
    let _: i64 = redis::cmd("SADD")
        .arg(&k.seen)
        .arg("9f34aa65ff99adc7d83cd04cd4426b9c065e259f")
        .query(&mut c)
        .expect("SADD");
    let flags = f
        .admit(&batch(&["http://example.com/do?c=3&b=5&b=2&a=50", "http://www.example.com/"], 0))
        .await
        .expect("admit");
    assert_eq!(flags, [false, true]);
    let mut members: Vec<String> = redis::cmd("SMEMBERS").arg(&k.seen).query(&mut c).expect("SMEMBERS");
    members.sort();
    assert_eq!(
        members,
        ["95dd4ba389d4524f21d13527fe6c784064c2d6f9", "9f34aa65ff99adc7d83cd04cd4426b9c065e259f"]
    );
    assert_eq!(key_type(&redis.url, &k.queue), "zset");
    assert_eq!(key_type(&redis.url, &k.seen), "set");
    // A request a Python spider pushed (JSON, Request.to_dict shape) is leased like ours.
    let _: i64 = redis::cmd("ZADD")
        .arg(&k.queue)
        .arg(-10)
        .arg(r#"{"url": "http://py/x", "method": "GET", "priority": 10, "meta": {"depth": 2}, "callback": "parse"}"#)
        .query(&mut c)
        .expect("ZADD");
    let got = f.lease(10).await.expect("lease");
    assert_eq!(got[0].request.url, "http://py/x");
    assert_eq!((got[0].request.depth, got[0].priority), (2, 10));
    assert_eq!(got[1].request.url, "http://www.example.com/");
    assert_eq!(key_type(&redis.url, &k.leases), "zset");
    let _: i64 = redis::cmd("RPUSH").arg(&k.start_urls).arg("http://s/").query(&mut c).expect("RPUSH");
    assert_eq!(key_type(&redis.url, &k.start_urls), "list");
}

#[tokio::test]
async fn survives_a_restarted_redis_server() {
    if std::env::var_os("CI").is_none() && !can_start_own("survives_a_restarted_redis_server") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_string_lossy().to_string();
    let mut server = OwnServer::start(&["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir_arg]);
    let f = frontier(&server.url(), "restart", QueueOrder::Fifo, Layout::Native, Duration::from_secs(30))
        .with_reconnect_budget(Duration::from_secs(20));
    assert_eq!(f.admit(&batch(&["http://x/1", "http://x/2"], 0)).await.expect("admit"), [true, true]);
    assert_eq!(f.counters().reconnects(), 0);
    let server_thread = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    });
    let server = server_thread.await.expect("restart");
    // The old connection is dead: the call reconnects and succeeds; the data survived.
    assert_eq!(
        f.admit(&batch(&["http://x/2", "http://x/3"], 0)).await.expect("admit after restart"),
        [false, true]
    );
    assert!(f.counters().reconnects() >= 1, "reconnects counted: {}", f.counters().reconnects());
    assert_eq!(f.counters().disconnects(), f.counters().reconnects());
    assert_eq!(lease_urls(&f, 10).await, ["http://x/1", "http://x/2", "http://x/3"]);
    drop(server);
}
