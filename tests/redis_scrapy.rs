//! arachne and the real Scrapy + scrapy-redis on one crawl, through one redis-server, in
//! the scrapy-redis layout with scrapy-redis's defaults (a `PriorityQueue` sorted set of
//! pickled `Request.to_dict()`s, the `RFPDupeFilter` set):
//!
//! - arachne (`serializer: pickle`) starts a crawl and an unmodified scrapy-redis spider
//!   (tests/scrapy/sandbox_spider.py) joins it, each reading the other's pickles: together
//!   they write exactly the sandbox's items, none twice, and no page is fetched twice;
//! - arachne crawls alone and is stopped with Ctrl-C halfway: the requests it held are back
//!   in `<name>:requests` as pickles, and the Scrapy spider finishes the crawl with nothing
//!   missing.
//!
//! Python: `ARACHNE_TEST_SCRAPY_PYTHON` (scripts/test.sh installs pinned Scrapy and
//! scrapy-redis into target/scrapy-venv with scripts/scrapy.sh). Without it the tests fail
//! under `CI` and are skipped loudly elsewhere. Redis as in tests/redis_shared_frontier.rs.
//! Every wait has a deadline; every child is killed by a guard when a test fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arachne::sandbox::SandboxServer;
use support::procs::{assert_truth_items, collect, sandbox, Arachne};
use support::scrapy::{assert_joined_crawl, scrapy_python, Scrapy};
use support::{conn, test_redis, unique};

mod support;

/// arachne's spec for the shared crawl: the scrapy-redis layout, pickles, a priority queue
/// (scrapy-redis's default), the same items as the spider.
fn spec(name: &str, redis_url: &str, site: &SandboxServer, fetch: &str) -> String {
    format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier: {{ backend: redis, layout: scrapy-redis, serializer: pickle, order: priority }}
brokers:
  redis: {{ url: "{redis_url}" }}
{fetch}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
"#,
        base = site.base_url()
    )
}

fn drop_scrapy_keys(url: &str, name: &str) {
    let mut c = conn(url);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(format!("{name}:*")).query(&mut c).expect("KEYS");
    keys.push("unused".into());
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
}

fn queued(url: &str, name: &str) -> Vec<Vec<u8>> {
    redis::cmd("ZRANGE").arg(format!("{name}:requests")).arg(0).arg(-1).query(&mut conn(url)).expect("ZRANGE")
}

#[test]
fn scrapy_redis_spider_and_arachne_crawl_together() {
    let test = "scrapy_redis_spider_and_arachne_crawl_together";
    let (Some(redis), Some(python)) = (test_redis(test), scrapy_python(test)) else { return };
    let started = Instant::now();
    let (site, want) = sandbox(2000);
    let name = unique("scrapyjoin");
    let (dir_s, dir_a) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    // arachne seeds the crawl (Scrapy's own start requests are `dont_filter`: they bypass
    // the dupefilter, so a seed given to both would be fetched by both); slow enough that
    // the spider joins mid-crawl.
    let fetch = "fetch: { per_host: { rate: 300 } }";
    let mut a = Arachne::spawn("a", dir_a.path(), &spec(&name, &redis.url, &site, fetch), &[]);
    let joined_by = started + Duration::from_secs(30);
    loop {
        let q = queued(&redis.url, &name);
        if q.len() >= 50 {
            assert!(q.iter().all(|e| e.first() == Some(&0x80)), "arachne queues pickles");
            break;
        }
        assert!(a.running() && Instant::now() < joined_by, "arachne queued nothing:\n{}", a.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The spider joins: it pops arachne's pickles, and queues its own, which arachne reads.
    let mut scrapy = Scrapy::spawn(&python, dir_s.path(), &name, &redis.url, None, &[]);
    assert_joined_crawl(&mut a, &mut scrapy, &site, &want, started);
    drop_scrapy_keys(&redis.url, &name);
}

#[test]
fn scrapy_finishes_a_crawl_arachne_stopped_with_ctrl_c() {
    let test = "scrapy_finishes_a_crawl_arachne_stopped_with_ctrl_c";
    let (Some(redis), Some(python)) = (test_redis(test), scrapy_python(test)) else { return };
    let started = Instant::now();
    let (site, want) = sandbox(2000);
    let name = unique("scrapyresume");
    let (dir_a, dir_s) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    // Slow enough that Ctrl-C lands mid-crawl with requests in flight.
    let fetch = "fetch: { per_host: { rate: 300 } }";
    let mut a = Arachne::spawn("a", dir_a.path(), &spec(&name, &redis.url, &site, fetch), &[]);
    let threshold = (want.items * 3 / 10) as usize;
    while a.item_lines() < threshold && started.elapsed() < Duration::from_secs(30) && a.running() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.running(), "arachne ended before it was stopped:\n{}", a.stderr());
    a.signal("INT");
    let stopped = Instant::now();
    assert_eq!(a.wait(stopped + Duration::from_secs(20)), 0, "arachne after Ctrl-C:\n{}", a.stderr());
    let released = a.summary()["released"].as_u64().unwrap_or(0);
    assert!(released > 0, "arachne gave nothing back: {}", a.summary());
    let leases: i64 = redis::cmd("ZCARD")
        .arg(format!("{name}:arachne:leases"))
        .query(&mut conn(&redis.url))
        .expect("ZCARD");
    assert_eq!(leases, 0, "nothing left in arachne's leases, where Scrapy cannot see it");
    let q = queued(&redis.url, &name);
    assert!(q.len() as u64 >= released, "{} queued, {released} released", q.len());
    assert!(q.iter().all(|e| e.first() == Some(&0x80)), "every queued request is a pickle");

    let mut scrapy = Scrapy::spawn(&python, dir_s.path(), &name, &redis.url, None, &[]);
    assert_eq!(scrapy.wait(stopped + Duration::from_secs(120)), 0, "scrapy:\n{}", scrapy.log());
    assert_eq!(scrapy.errors(), 0, "Scrapy logged errors:\n{}", scrapy.log());
    let (ours, theirs) = (a.items(false), scrapy.items());
    assert!(!theirs.is_empty(), "Scrapy wrote nothing:\n{}", scrapy.log());
    let mut items = BTreeMap::new();
    collect(&mut items, &ours, false);
    collect(&mut items, &theirs, false);
    assert_truth_items(&items, &want);
    eprintln!("arachne wrote {} items, released {released}; Scrapy {}", ours.len(), theirs.len());
    drop_scrapy_keys(&redis.url, &name);
}
