//! Politeness across processes: three `arachne run` processes share one crawl through a
//! Redis frontier, and the host's `fetch.per_host.rate` and `per_host.concurrency` hold for
//! the three together, as the sandbox server saw them (its request log and its in-flight
//! high-water mark), not per process. robots.txt requests (each process fetches its own)
//! are outside both limits, as in one process.
//!
//! Redis as in tests/redis_shared_frontier.rs (`ARACHNE_TEST_REDIS_URL`, else an own
//! server; a failure under `CI` without one). Every wait has a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::procs::{assert_truth_items, collect, sandbox, Arachne};
use support::{conn, test_redis, unique};

mod support;

fn spec(name: &str, redis_url: &str, base: &str, per_host: &str) -> String {
    format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier: {{ backend: redis }}
brokers:
  redis: {{ url: "{redis_url}" }}
fetch: {{ per_host: {per_host} }}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
"#
    )
}

/// Three processes on `spec` crawl to the end (by `deadline`); their items are the truth's.
/// Returns them with their directories.
fn three_processes(
    spec: &str,
    want: &arachne::sandbox::Truth,
    deadline: Instant,
) -> (Vec<tempfile::TempDir>, Vec<Arachne>) {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let labels = ["a", "b", "c"];
    let mut procs: Vec<Arachne> =
        dirs.iter().zip(labels).map(|(d, l)| Arachne::spawn(l, d.path(), spec, &[])).collect();
    for p in &mut procs {
        assert_eq!(p.wait(deadline), 0, "{}", p.stderr());
    }
    let mut items = BTreeMap::new();
    for p in &procs {
        collect(&mut items, &p.items(false), true);
    }
    assert_truth_items(&items, want);
    (dirs, procs)
}

fn drop_keys(url: &str, name: &str) {
    let mut c = conn(url);
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("arachne:{name}:*")).query(&mut c).expect("KEYS");
    keys.push("unused".into());
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).expect("DEL");
}

#[test]
fn three_processes_share_one_per_host_rate() {
    let Some(redis) = test_redis("three_processes_share_one_per_host_rate") else { return };
    let (site, want) = sandbox(300);
    let name = unique("rate");
    let started = Instant::now();
    let spec = spec(&name, &redis.url, &site.base_url(), "{ rate: 50 }");
    let (_dirs, procs) = three_processes(&spec, &want, started + Duration::from_secs(60));
    let log = site.requests();
    assert_eq!(log.dropped, 0);
    let busiest = log.max_in_window(1000, |p| p != "/robots.txt");
    let fetched: u64 = procs.iter().map(Arachne::pages_fetched).sum();
    eprintln!("{fetched} pages in {:?}; the busiest second had {busiest} requests", started.elapsed());
    assert!(busiest <= 50, "{busiest} requests within one second: more than the rate of 50/s");
    // Each process alone may send 50/s: the three would reach ~150 without the shared limiter.
    assert!(
        busiest >= 40,
        "only {busiest} requests in the busiest second: the crawl did not run at its rate"
    );
    assert!(procs.iter().all(|p| p.pages_fetched() > 0), "each process fetched some pages");
    drop_keys(&redis.url, &name);
}

#[test]
fn three_processes_share_one_per_host_concurrency() {
    let Some(redis) = test_redis("three_processes_share_one_per_host_concurrency") else { return };
    let (site, want) = sandbox(200);
    // Every page answer takes 30 ms, so concurrent requests overlap at the server.
    site.set_latency(Duration::from_millis(30));
    let name = unique("conc");
    let started = Instant::now();
    let spec = spec(&name, &redis.url, &site.base_url(), "{ concurrency: 2 }");
    let (_dirs, procs) = three_processes(&spec, &want, started + Duration::from_secs(60));
    let stats = site.stats();
    eprintln!("{:?}: at most {} requests in flight", started.elapsed(), stats.max_in_flight);
    // Each process alone may have 2 in flight: 6 without the shared slots.
    assert_eq!(stats.max_in_flight, 2, "requests in flight at once across the three processes");
    assert!(procs.iter().all(|p| p.pages_fetched() > 0), "each process fetched some pages");
    drop_keys(&redis.url, &name);
}
