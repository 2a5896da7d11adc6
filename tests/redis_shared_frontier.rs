//! One crawl shared by several `arachne run` processes through a Redis frontier
//! (`frontier: { backend: redis }`), end to end through the binary, against an external
//! `SandboxServer` whose truth and request counters are the oracle:
//!
//! - two processes on one spec crawl the 5,000-page sandbox together: the union of their
//!   items is exactly the sandbox's item set, no item twice, no page fetched twice with
//!   success, and each did a fair share;
//! - one of two processes is SIGKILLed mid-crawl: the survivor finishes alone and nothing
//!   is missing (the dead one's leases come back after `frontier.lease`);
//! - a process whose sink fails (`/dev/full`) stops with the sink's error and gives its
//!   pages back at once: the other finishes with every item;
//! - `max_items` counts the items of the whole crawl, in Redis;
//! - redis-server is SIGKILLed and restarted (append-only file on) mid-crawl: the crawl
//!   completes, nothing is missing, and the summary counts the `reconnects`;
//! - a process with `seeds: []` waits; a plain `LPUSH arachne:<name>:start_urls URL` starts
//!   its crawl, and the items can be read back with `LRANGE <name>:items`.
//!
//! Which server: `ARACHNE_TEST_REDIS_URL` (scripts/test.sh starts one with
//! scripts/redis.sh and sets it). Without it, under `CI` the tests fail; elsewhere each
//! test starts its own `redis-server` on a free port when the binary is installed, and is
//! skipped with a loud message when it is not. Every test uses its own crawl `name` (so its
//! own `arachne:<name>:*` keys); the restart test always starts its own server.
//!
//! Every wait has a deadline; every child (arachne, redis-server) is killed and reaped by a
//! guard when a test fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arachne::sandbox::SandboxServer;
use serde_json::Value;
use support::procs::{assert_truth_items, collect, sandbox, two_to_the_end, Arachne};
use support::{can_start_own, conn, test_redis, unique, OwnServer};

mod support;

// ---------------------------------------------------------------------------------------
// redis-server

/// Deletes the crawl's keys (`arachne:<name>:*`, `<name>:items`) from a shared server.
fn drop_keys(url: &str, name: &str) {
    let mut c = conn(url);
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("arachne:{name}:*")).query(&mut c).expect("KEYS");
    keys.push(format!("{name}:items"));
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
}

// ---------------------------------------------------------------------------------------
// The spec

/// A spec on a Redis frontier (native layout) with the product rule and a jsonl output.
struct Shop {
    name: String,
    seeds: Vec<String>,
    redis_url: String,
    lease: &'static str,
    /// A whole `fetch:` line, or empty.
    fetch: &'static str,
    /// A `redis` output to this key besides the jsonl file.
    items_key: Option<String>,
    /// `native` or `scrapy-redis`.
    layout: &'static str,
    /// Extra `frontier:` lines (indented two spaces), or empty.
    frontier_extra: &'static str,
}

impl Shop {
    fn new(name: &str, redis_url: &str, site: &SandboxServer) -> Self {
        Shop {
            name: name.to_string(),
            seeds: vec![format!("{}/", site.base_url())],
            redis_url: redis_url.to_string(),
            lease: "30s",
            fetch: "",
            items_key: None,
            layout: "native",
            frontier_extra: "",
        }
    }

    fn yaml(&self) -> String {
        let seeds = serde_json::to_string(&self.seeds).expect("seeds");
        let redis_output = match &self.items_key {
            Some(key) => format!("  - redis: {{ key: \"{key}\" }}\n"),
            None => String::new(),
        };
        format!(
            r#"name: {name}
seeds: {seeds}
frontier:
  backend: redis
  layout: {layout}
  lease: {lease}
{frontier_extra}
brokers:
  redis: {{ url: "{url}" }}
{fetch}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
{redis_output}"#,
            name = self.name,
            lease = self.lease,
            url = self.redis_url,
            fetch = self.fetch,
            layout = self.layout,
            frontier_extra = self.frontier_extra,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn two_processes_share_one_frontier() {
    let Some(redis) = test_redis("two_processes_share_one_frontier") else { return };
    let (site, want) = sandbox(5000);
    let name = unique("shop");
    // A lease far longer than the crawl: no page may come back to the queue here.
    let spec = Shop::new(&name, &redis.url, &site).yaml();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let deadline = Instant::now() + Duration::from_secs(50);
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), &spec, &[]);
    let code_a = a.wait(deadline);
    let code_b = b.wait(deadline);
    assert_eq!(code_a, 0, "a:\n{}", a.stderr());
    assert_eq!(code_b, 0, "b:\n{}", b.stderr());

    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), true);
    collect(&mut items, &b.items(false), true);
    assert_truth_items(&items, &want);

    let stats = site.stats();
    assert_eq!(
        stats.repeated_ok,
        0,
        "pages fetched twice with success (first 10): {:?}",
        stats.repeated_ok_paths.iter().take(10).collect::<Vec<_>>()
    );
    let (fetched_a, fetched_b) = (a.pages_fetched(), b.pages_fetched());
    assert_eq!(fetched_a + fetched_b, want.pages_fetched, "a: {}\nb: {}", a.summary(), b.summary());
    for (label, fetched) in [("a", fetched_a), ("b", fetched_b)] {
        assert!(
            fetched * 5 >= want.pages_fetched,
            "{label} fetched {fetched} of {} pages: less than a fair share (20%)",
            want.pages_fetched
        );
    }
    drop_keys(&redis.url, &name);
}

#[test]
fn a_killed_process_leaves_nothing_missing() {
    let Some(redis) = test_redis("a_killed_process_leaves_nothing_missing") else { return };
    let started = Instant::now();
    let (site, want) = sandbox(5000);
    let name = unique("killed");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.lease = "2s";
    // About 4 s for the two together, so the kill lands mid-crawl.
    shop.fetch = "fetch: { per_host: { rate: 600 } }";
    let spec = shop.yaml();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), &spec, &[]);

    // SIGKILL b once a has written ~30% of the items (or after 15 s at most).
    let threshold = (want.items * 3 / 10) as usize;
    let kill_by = started + Duration::from_secs(15);
    while a.item_lines() < threshold && Instant::now() < kill_by && a.running() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (a_lines, b_lines) = (a.item_lines(), b.item_lines());
    let was_running = b.sigkill();
    eprintln!("killed b after {:?}: a had {a_lines} items, b {b_lines}", started.elapsed());
    assert!(was_running, "b ended before it was killed (a had {a_lines} items):\n{}", b.stderr());
    assert!(a.running(), "a ended before b was killed:\n{}", a.stderr());

    let code = a.wait(started + Duration::from_secs(60));
    assert_eq!(code, 0, "the survivor:\n{}", a.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), false);
    collect(&mut items, &b.items(true), false);
    assert_truth_items(&items, &want);
    drop(site);
    drop_keys(&redis.url, &name);
}

#[test]
fn a_process_stopped_with_ctrl_c_gives_its_leases_back_at_once() {
    let Some(redis) = test_redis("a_process_stopped_with_ctrl_c_gives_its_leases_back_at_once") else {
        return;
    };
    let started = Instant::now();
    let (site, want) = sandbox(3000);
    let name = unique("released");
    let mut shop = Shop::new(&name, &redis.url, &site);
    // The default lease (60 s): a stranded lease would hold the survivor back that long.
    shop.lease = "60s";
    shop.fetch = "fetch: { per_host: { rate: 500 } }";
    let spec = shop.yaml();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), &spec, &[]);
    let threshold = (want.items * 3 / 10) as usize;
    while a.item_lines() < threshold && started.elapsed() < Duration::from_secs(20) && a.running() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(b.running(), "b ended before it was stopped:\n{}", b.stderr());
    b.signal("INT");
    let stopped = Instant::now();
    assert_eq!(b.wait(stopped + Duration::from_secs(20)), 0, "b after Ctrl-C:\n{}", b.stderr());
    let released = b.summary()["released"].as_u64().unwrap_or(0);
    assert!(released > 0, "b gave nothing back: {}", b.summary());

    // Well before a 60 s lease could expire.
    assert_eq!(a.wait(stopped + Duration::from_secs(30)), 0, "the survivor:\n{}", a.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), true);
    collect(&mut items, &b.items(false), true);
    assert_truth_items(&items, &want);
    drop_keys(&redis.url, &name);
}

/// A process whose sink fails for good (its items go to `/dev/full`) stops with the sink's
/// error and gives its pages back at once: the other process finishes the crawl with every
/// item, long before the 10-minute leases could expire.
#[test]
fn a_process_whose_sink_fails_stops_and_gives_its_pages_back() {
    let Some(redis) = test_redis("a_process_whose_sink_fails_stops_and_gives_its_pages_back") else {
        return;
    };
    let started = Instant::now();
    let (site, want) = sandbox(2000);
    let name = unique("sinkfail");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.lease = "10m";
    shop.fetch = "fetch: { per_host: { rate: 500 } }";
    let good = shop.yaml();
    let bad = good.replace("  - jsonl: items.jsonl", "  - jsonl: /dev/full");
    assert_ne!(good, bad);
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = Arachne::spawn("a", dir_a.path(), &good, &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), &bad, &[]);

    let code = b.wait(started + Duration::from_secs(60));
    let log = b.log();
    assert_ne!(code, 0, "b went on with a failed sink:\n{log}");
    assert!(log.contains("sink failed") && log.contains("gave requests back"), "b:\n{log}");
    assert!(a.running(), "a ended before b failed:\n{}", a.stderr());
    // Well before a 10-minute lease could expire.
    assert_eq!(a.wait(started + Duration::from_secs(90)), 0, "the survivor:\n{}", a.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), true);
    assert_truth_items(&items, &want);
    drop_keys(&redis.url, &name);
}

#[test]
fn redis_restart_mid_crawl_completes() {
    if std::env::var_os("CI").is_none() && !can_start_own("redis_restart_mid_crawl_completes") {
        return;
    }
    let started = Instant::now();
    let aof = tempfile::tempdir().expect("tempdir");
    let aof_dir = aof.path().to_string_lossy().to_string();
    let mut server = OwnServer::start(&["--appendonly", "yes", "--appendfsync", "always", "--dir", &aof_dir]);
    // 2,000 pages: each request waits for its shared-politeness permit (one round trip to
    // Redis), which a loaded machine stretches.
    let (site, want) = sandbox(2000);
    let mut shop = Shop::new(&unique("restart"), &server.url(), &site);
    shop.lease = "2s";
    // About 5 s, so the restart lands mid-crawl.
    shop.fetch = "fetch: { concurrency: 4, per_host: { concurrency: 4, rate: 1000 } }";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &[]);

    let first_items_by = started + Duration::from_secs(20);
    while p.item_lines() == 0 {
        assert!(p.running(), "it ended before writing any item:\n{}", p.stderr());
        assert!(Instant::now() < first_items_by, "no item within 20 s:\n{}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(p.running(), "the crawl ended before Redis could be restarted:\n{}", p.stderr());
    let lines = p.item_lines();
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.start_again();
    eprintln!("restarted Redis after {:?}, at {lines} items", started.elapsed());

    let code = p.wait(started + Duration::from_secs(60));
    assert_eq!(code, 0, "{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), false);
    assert_truth_items(&items, &want);
    let summary = p.summary();
    assert!(summary["reconnects"].as_u64().is_some_and(|n| n >= 1), "reconnects not counted: {summary}");
}

#[test]
fn start_urls_start_a_waiting_process() {
    let Some(redis) = test_redis("start_urls_start_a_waiting_process") else { return };
    let (site, want) = sandbox(200);
    let name = unique("waiting");
    let items_key = format!("{name}:items");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.seeds = vec![];
    shop.items_key = Some(items_key.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &["--stop-after", "8s"]);

    std::thread::sleep(Duration::from_secs(1));
    assert!(p.running(), "a process with seeds: [] ended instead of waiting:\n{}", p.stderr());
    assert_eq!(p.item_lines(), 0);
    let _: i64 = redis::cmd("LPUSH")
        .arg(format!("arachne:{name}:start_urls"))
        .arg(format!("{}/", site.base_url()))
        .query(&mut conn(&redis.url))
        .expect("LPUSH");

    let code = p.wait(started + Duration::from_secs(25));
    assert_eq!(code, 0, "{}", p.stderr());
    assert!(
        started.elapsed() >= Duration::from_millis(7500),
        "it ended before --stop-after: {:?}",
        started.elapsed()
    );

    let listed: Vec<String> =
        redis::cmd("LRANGE").arg(&items_key).arg(0).arg(-1).query(&mut conn(&redis.url)).expect("LRANGE");
    let listed: Vec<Value> =
        listed.iter().map(|l| serde_json::from_str(l).expect("each list entry is a JSON item")).collect();
    let mut items = BTreeMap::new();
    collect(&mut items, &listed, true);
    assert_truth_items(&items, &want);
    let mut from_file = BTreeMap::new();
    collect(&mut from_file, &p.items(false), true);
    assert_eq!(from_file, items, "the jsonl file and the Redis list hold the same items");
    drop_keys(&redis.url, &name);
}

#[test]
fn scrapy_redis_layout_json_start_url_and_shared_dupefilter() {
    let Some(redis) = test_redis("scrapy_redis_layout_json_start_url_and_shared_dupefilter") else { return };
    let (site, want) = sandbox(200);
    let name = unique("scrapy");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.seeds = vec![];
    shop.layout = "scrapy-redis";
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &["--stop-after", "6s"]);
    std::thread::sleep(Duration::from_millis(800));
    // As a scrapy-redis spider's feeder would: a JSON start URL on `<name>:start_urls`.
    let start = serde_json::json!({ "url": format!("{}/", site.base_url()) }).to_string();
    let _: i64 = redis::cmd("LPUSH")
        .arg(format!("{name}:start_urls"))
        .arg(start)
        .query(&mut conn(&redis.url))
        .expect("LPUSH");
    assert_eq!(p.wait(started + Duration::from_secs(25)), 0, "{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_truth_items(&items, &want);

    // The dupefilter is scrapy-redis's: a set of 40-hex SHA1 request fingerprints, one per
    // page fetched.
    let mut c = conn(&redis.url);
    let kind: String = redis::cmd("TYPE").arg(format!("{name}:dupefilter")).query(&mut c).expect("TYPE");
    assert_eq!(kind, "set");
    let members: Vec<String> =
        redis::cmd("SMEMBERS").arg(format!("{name}:dupefilter")).query(&mut c).expect("SMEMBERS");
    assert_eq!(members.len() as u64, want.pages_fetched);
    assert!(members.iter().all(|m| m.len() == 40 && m.bytes().all(|b| b.is_ascii_hexdigit())));
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(format!("{name}:*")).query(&mut c).expect("KEYS");
    keys.push("unused".into());
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
}

#[test]
fn bloom_dedup_keeps_memory_bounded_and_the_crawl_whole() {
    let Some(redis) = test_redis("bloom_dedup_keeps_memory_bounded_and_the_crawl_whole") else { return };
    let (site, want) = sandbox(1000);
    let name = unique("bloom");
    let mut shop = Shop::new(&name, &redis.url, &site);
    // Sized for 100,000 URLs at 1e-6: no false positive is expected among ~1,050 URLs.
    shop.frontier_extra = "  dedup: bloom\n  bloom: { capacity: 100000, error_rate: 0.000001 }\n";
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut a = Arachne::spawn("a", dir_a.path(), &shop.yaml(), &[]);
    let mut b = Arachne::spawn("b", dir_b.path(), &shop.yaml(), &[]);
    assert_eq!(a.wait(deadline), 0, "{}", a.stderr());
    assert_eq!(b.wait(deadline), 0, "{}", b.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), true);
    collect(&mut items, &b.items(false), true);
    assert_truth_items(&items, &want);
    assert_eq!(site.stats().repeated_ok, 0, "a page was fetched twice with success");
    let mut c = conn(&redis.url);
    let seen_type: String =
        redis::cmd("TYPE").arg(format!("arachne:{name}:seen")).query(&mut c).expect("TYPE");
    assert_eq!(seen_type, "none", "no fingerprint set with a Bloom filter");
    let bloom_key = format!("arachne:{name}:seen:bloom");
    let bytes: u64 = redis::cmd("STRLEN").arg(&bloom_key).query(&mut c).expect("STRLEN");
    let shape = arachne::bridges::redis::frontier::Bloom::new(100_000, 0.000001);
    assert!(bytes <= shape.bits.div_ceil(8), "the filter is at most its size: {bytes} bytes");
    let _: i64 = redis::cmd("DEL").arg(&bloom_key).query(&mut c).expect("DEL");
    drop_keys(&redis.url, &name);
}

/// Deletes every `<name>:*` key (the scrapy-redis layout's).
fn drop_scrapy_keys(url: &str, name: &str) {
    let mut c = conn(url);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(format!("{name}:*")).query(&mut c).expect("KEYS");
    keys.push("unused".into());
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
}

#[test]
fn a_queue_of_another_type_is_adopted_or_refused() {
    let Some(redis) = test_redis("a_queue_of_another_type_is_adopted_or_refused") else { return };
    let (site, want) = sandbox(200);
    // scrapy-redis's default PriorityQueue is a sorted set; arachne's default order is fifo.
    let name = unique("zqueue");
    let entry = serde_json::json!({ "url": format!("{}/item/7", site.base_url()), "priority": 0, "meta": { "depth": 1 } });
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{name}:requests"))
        .arg(0)
        .arg(entry.to_string())
        .query(&mut conn(&redis.url))
        .expect("ZADD");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.layout = "scrapy-redis";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(30)), 0, "{}", p.stderr());
    assert!(p.stderr().contains("using `frontier.order: priority`"), "{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_truth_items(&items, &want);
    drop_scrapy_keys(&redis.url, &name);

    // A key of a type no queue has: exit 1 naming the key and its type, at once.
    let name = unique("hqueue");
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{name}:requests"))
        .arg("f")
        .arg("v")
        .query(&mut conn(&redis.url))
        .expect("HSET");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.layout = "scrapy-redis";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(20)), 1, "{}", p.stderr());
    let err = p.stderr();
    assert!(
        err.contains(&format!("'{name}:requests' holds a hash")) && err.contains("delete the key"),
        "{err}"
    );
    drop_scrapy_keys(&redis.url, &name);
}

#[test]
fn unreadable_entries_are_moved_aside_and_counted() {
    let Some(redis) = test_redis("unreadable_entries_are_moved_aside_and_counted") else { return };
    let (site, want) = sandbox(200);
    let name = unique("pickled");
    // Broken pickles (a FRAME cut short) and a JSON request arachne cannot make (a POST).
    let mut c = conn(&redis.url);
    for i in 0..3u8 {
        let pickled: Vec<u8> = vec![0x80, 0x04, 0x95, i, 0x00, b'}', 0x94];
        let _: i64 =
            redis::cmd("RPUSH").arg(format!("{name}:requests")).arg(pickled).query(&mut c).expect("RPUSH");
    }
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.layout = "scrapy-redis";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(30)), 0, "{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_truth_items(&items, &want);
    assert_eq!(p.summary()["dead_letters"].as_u64(), Some(3), "{}", p.summary());
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{name}:arachne:dead"))
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("LRANGE");
    assert_eq!(dead.len(), 3, "{dead:?}");
    for d in &dead {
        let v: serde_json::Value = serde_json::from_str(d).expect("JSON");
        assert!(v["reason"].as_str().is_some_and(|r| r.contains("broken pickle")), "{v}");
        assert!(v["entry_hex"].as_str().is_some_and(|h| h.starts_with("8004")), "the entry is kept: {v}");
    }
    let leases: i64 = redis::cmd("ZCARD").arg(format!("{name}:arachne:leases")).query(&mut c).expect("ZCARD");
    assert_eq!(leases, 0, "nothing hidden in the leases");
    drop_scrapy_keys(&redis.url, &name);
}

#[test]
fn max_pages_counts_the_whole_crawl_across_processes() {
    let Some(redis) = test_redis("max_pages_counts_the_whole_crawl_across_processes") else { return };
    let (site, _) = sandbox(5000);
    let name = unique("maxpages");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.fetch = "scope: { max_pages: 1000 }";
    let (a, b, _dirs) = two_to_the_end(&shop.yaml(), Duration::from_secs(60));
    let fetched = a.pages_fetched() + b.pages_fetched();
    assert_eq!(fetched, 1000, "a: {}\nb: {}", a.summary(), b.summary());
    let stats = site.stats();
    assert_eq!(stats.repeated_ok, 0);
    drop_keys(&redis.url, &name);
}

/// `max_items: 300` across two processes: 300 items in all (counted in Redis), each once.
#[test]
fn max_items_counts_the_whole_crawl_across_processes() {
    let Some(redis) = test_redis("max_items_counts_the_whole_crawl_across_processes") else { return };
    let (site, _) = sandbox(5000);
    let name = unique("maxitems");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.fetch = "scope: { max_items: 300 }";
    let (a, b, _dirs) = two_to_the_end(&shop.yaml(), Duration::from_secs(60));
    let (items_a, items_b) = (a.items(false), b.items(false));
    let mut items = BTreeMap::new();
    collect(&mut items, &items_a, true);
    collect(&mut items, &items_b, true);
    assert_eq!(items.len(), 300, "a wrote {}, b {}", items_a.len(), items_b.len());
    drop_keys(&redis.url, &name);
}

#[test]
fn a_schedule_fires_once_per_tick_across_processes() {
    let Some(redis) = test_redis("a_schedule_fires_once_per_tick_across_processes") else { return };
    let (site, _) = sandbox(50);
    let name = unique("ticks");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.fetch = "schedules:\n  - { name: tick, every: 2s, publish: { topic: ticks } }";
    let spec = shop.yaml();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let started = Instant::now();
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &["--stop-after", "7s"]);
    let mut b = Arachne::spawn("b", dir_b.path(), &spec, &["--stop-after", "7s"]);
    assert_eq!(a.wait(started + Duration::from_secs(30)), 0, "a:\n{}", a.stderr());
    assert_eq!(b.wait(started + Duration::from_secs(30)), 0, "b:\n{}", b.stderr());
    let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").expect("regex");
    let instants = |p: &Arachne| -> Vec<String> {
        let text = ansi.replace_all(&p.stderr(), "").into_owned();
        text.lines()
            .filter(|l| l.contains("schedule fired"))
            .filter_map(|l| l.split("scheduled_for=").nth(1).and_then(|rest| rest.split(" missed").next()))
            .map(str::to_string)
            .collect()
    };
    let (fa, fb) = (instants(&a), instants(&b));
    let firings = a.summary()["firings"].as_u64().unwrap_or(0) + b.summary()["firings"].as_u64().unwrap_or(0);
    assert_eq!(firings as usize, fa.len() + fb.len(), "a: {fa:?}, b: {fb:?}");
    for t in &fa {
        assert!(!fb.contains(t), "tick {t} fired in both processes: a {fa:?}, b {fb:?}");
    }
    // Two processes over ~7 s of 2 s ticks: one firing per tick is 3 or 4 (a little more
    // if their windows are offset); each process on its own would make 6 or more.
    assert!((2..=5).contains(&firings), "{firings} firings: a {fa:?}, b {fb:?}");
    drop_keys(&redis.url, &name);
}

#[test]
fn a_request_queued_twice_is_fetched_once_and_every_copy_is_acked() {
    let Some(redis) = test_redis("a_request_queued_twice_is_fetched_once_and_every_copy_is_acked") else {
        return;
    };
    let (site, _) = sandbox(50);
    let name = unique("twice");
    let url = format!("{}/item/7", site.base_url());
    // Copies of one request in the queue, as a broker holds after a publish it persisted but
    // never confirmed was sent again, or as a feeder pushing twice leaves them.
    let mut c = conn(&redis.url);
    for _ in 0..3 {
        let entry = serde_json::json!({ "url": url, "depth": 0 }).to_string();
        let _: i64 =
            redis::cmd("RPUSH").arg(format!("arachne:{name}:queue")).arg(entry).query(&mut c).expect("RPUSH");
    }
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.seeds = vec![url.clone()];
    shop.frontier_extra = "scope: { max_depth: 0 }";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &shop.yaml(), &[]);
    // Well inside the 30 s lease: a copy whose lease were lost would only come back then.
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(20)), 0, "{}", p.stderr());
    let fetched = site.requests().requests.iter().filter(|r| r.path == "/item/7").count();
    assert_eq!(fetched, 1, "fetched once: {}", p.summary());
    assert_eq!(p.item_lines(), 1);
    for key in ["leases", "queue"] {
        let left: i64 =
            redis::cmd("EXISTS").arg(format!("arachne:{name}:{key}")).query(&mut c).expect("EXISTS");
        assert_eq!(left, 0, "arachne:{name}:{key} still holds copies");
    }
    drop_keys(&redis.url, &name);
}

#[test]
fn a_reseed_recrawls_the_shared_frontier_once_per_tick() {
    let Some(redis) = test_redis("a_reseed_recrawls_the_shared_frontier_once_per_tick") else { return };
    let (site, want) = sandbox(50);
    let name = unique("reseed");
    let mut shop = Shop::new(&name, &redis.url, &site);
    shop.fetch = "schedules:\n  - { name: refresh, every: 3s, action: reseed }";
    let spec = shop.yaml();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let started = Instant::now();
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &["--stop-after", "8s"]);
    let mut b = Arachne::spawn("b", dir_b.path(), &spec, &["--stop-after", "8s"]);
    assert_eq!(a.wait(started + Duration::from_secs(30)), 0, "a:\n{}", a.stderr());
    assert_eq!(b.wait(started + Duration::from_secs(30)), 0, "b:\n{}", b.stderr());
    let firings = a.summary()["firings"].as_u64().unwrap_or(0) + b.summary()["firings"].as_u64().unwrap_or(0);
    let stats = site.stats();
    let home = stats.by_kind.get("home").copied().unwrap_or(0);
    let item_requests = stats.by_kind.get("item").copied().unwrap_or(0);
    // A firing while the previous crawl still runs (a tick right after the start) is skipped.
    let skipped =
        [&a, &b].iter().map(|p| p.full_stderr().matches("reseed skipped").count() as u64).sum::<u64>();
    eprintln!(
        "{firings} reseeds ({skipped} skipped); home fetched {home} times, {item_requests} item requests"
    );
    // 3 s ticks (counted from the epoch) within ~8 s: 2 or 3 firings across both processes.
    assert!((2..=3).contains(&firings), "{firings} firings: once per tick across the processes");
    assert!(firings - skipped >= 1, "no re-crawl ran");
    // The first crawl, then one re-crawl per firing: the seed is fetched once each time,
    // whichever process fetches it.
    assert_eq!(home, 1 + firings - skipped, "the seed once per crawl across the processes");
    // A re-crawl is complete within a second (50 pages): at least the first one is whole.
    assert!(item_requests >= want.items * 2, "{item_requests} item requests, {} items", want.items);
    let mut items = BTreeMap::new();
    collect(&mut items, &a.items(false), false);
    collect(&mut items, &b.items(false), false);
    assert_truth_items(&items, &want);
    drop_keys(&redis.url, &name);
}
