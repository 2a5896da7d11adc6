//! The shared Redis frontier on a real three-node Redis Cluster (`brokers.redis.cluster:
//! true`; docs/redis.md, "Redis Cluster"):
//!
//! - every store call (admit, lease, renew, ack, release, reap, pending, start URLs, the
//!   politeness script, schedule claims, forget_seen, named queues, the Bloom filter) runs
//!   on the cluster in both layouts, all of one crawl's keys carry its hash tag and sit in
//!   one slot on one node, and crawls with other names sit on the other nodes;
//! - two `arachne run` processes share one crawl of a 2,000-page sandbox through the
//!   cluster: exactly the sandbox's items, none twice, no page fetched twice, and the redis
//!   sink's `{<name>}:items` holds them all;
//! - an unmodified-but-configured scrapy-redis spider (redis-py's `RedisCluster`, the keys
//!   hash-tagged by its settings, a `FifoQueue`) joins a crawl arachne started on the
//!   cluster in the scrapy-redis layout: exactly the sandbox's items, no page fetched twice;
//! - worker heartbeats go to `{<name>}:workers` on the crawl's node, and a remote command
//!   published through the cluster reaches a worker subscribed on a seed node, the first
//!   seed being down;
//! - a node SIGKILLed and restarted (append-only file on) under a frontier call: the call
//!   waits, reconnects (counted) and succeeds, and the seen-set survived;
//! - a redis-queue key with a hash tag: push, lease, ack and reap on the cluster;
//! - `cluster: true` on a server that is not a cluster node, and a cluster node without
//!   it, are refused at start with a message that says which.
//!
//! Which cluster: `ARACHNE_TEST_REDIS_CLUSTER` (comma-separated seed URLs; scripts/test.sh
//! starts one with scripts/redis-cluster.sh). Without it, under `CI` the tests fail;
//! elsewhere each test starts a cluster of its own when redis-server is installed, and is
//! skipped with a loud message when it is not. The restart test always starts a persistent
//! cluster of its own; the Scrapy test also needs `ARACHNE_TEST_SCRAPY_PYTHON` (as
//! tests/redis_scrapy.rs). Every crawl uses its own name, so its own keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arachne::bridges::redis::frontier::{FrontierKeys, Layout, RedisFrontier};
use arachne::bridges::redis::politeness::RedisPoliteness;
use arachne::bridges::redis::RedisBroker;
use arachne::crawl::shared::{Permit, PermitAsk, SharedStore};
use arachne::crawl::urls::{fingerprint, Fingerprint};
use arachne::sandbox::SandboxServer;
use arachne::spec::QueueOrder;
use arachne::state::PendingRequest;
use support::procs::{assert_shared_crawl, sandbox, two_to_the_end, Arachne};
use support::scrapy::{assert_joined_crawl, scrapy_python, Scrapy};
use support::{can_start_own, conn, test_redis, test_redis_cluster, unique, OwnCluster};
use url::Url;

mod support;

fn batch(urls: &[String]) -> Vec<(Fingerprint, PendingRequest, i32)> {
    urls.iter()
        .map(|u| {
            let parsed = Url::parse(u).expect("url");
            (
                fingerprint(&parsed),
                PendingRequest { url: parsed.to_string(), depth: 1, redirect_chain: Vec::new() },
                0,
            )
        })
        .collect()
}

fn cluster_broker(urls: &[String]) -> RedisBroker {
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisBroker::cluster(&seeds).expect("cluster broker")
}

/// The slot ranges each node serves (from its own `CLUSTER NODES` line), by node URL.
fn slot_ranges(urls: &[String]) -> Vec<(String, Vec<(u16, u16)>)> {
    urls.iter()
        .map(|url| {
            let nodes: String =
                redis::cmd("CLUSTER").arg("NODES").query(&mut conn(url)).expect("CLUSTER NODES");
            let me = nodes.lines().find(|l| l.contains("myself")).expect("a myself line");
            let ranges = me
                .split_whitespace()
                .skip(8)
                .filter(|r| !r.starts_with('['))
                .map(|r| {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    (a.parse().expect("slot"), b.parse().expect("slot"))
                })
                .collect();
            (url.clone(), ranges)
        })
        .collect()
}

fn key_slot(url: &str, key: &str) -> u16 {
    redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut conn(url)).expect("CLUSTER KEYSLOT")
}

/// The keys of crawl `name` (those with its hash tag `{name}`), per node URL.
fn keys_by_node(urls: &[String], name: &str) -> BTreeMap<String, Vec<String>> {
    urls.iter()
        .map(|url| {
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(format!("*{{{name}}}*")).query(&mut conn(url)).expect("KEYS");
            (url.clone(), keys)
        })
        .filter(|(_, keys)| !keys.is_empty())
        .collect()
}

/// One name per node: names whose hash tag falls in each node's slots.
fn a_name_per_node(urls: &[String], prefix: &str) -> Vec<(String, String)> {
    let ranges = slot_ranges(urls);
    let mut chosen: Vec<(String, String)> = Vec::new();
    for i in 0..500 {
        let name = unique(&format!("{prefix}{i}"));
        let slot = key_slot(&urls[0], &format!("{{{name}}}"));
        let owner = ranges
            .iter()
            .find(|(_, rs)| rs.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|(u, _)| u.clone())
            .expect("a node serves every slot");
        if !chosen.iter().any(|(_, u)| *u == owner) {
            chosen.push((name, owner));
        }
        if chosen.len() == urls.len() {
            break;
        }
    }
    assert_eq!(chosen.len(), urls.len(), "no name found for some node in 500 tries: {ranges:?}");
    chosen
}

/// Every call of the store and of its politeness, once, on frontier `name`.
async fn exercise(broker: &RedisBroker, name: &str, layout: Layout, bloom: bool) {
    let order = if layout == Layout::ScrapyRedis { QueueOrder::Priority } else { QueueOrder::Fifo };
    let mut f =
        RedisFrontier::new(broker, name, order, layout, Duration::from_millis(300)).with_queues(["side"]);
    if bloom {
        f = f.with_bloom(10_000, 0.01);
    }
    let f = f.with_max_requests(100);
    let urls: Vec<String> = (0..10).map(|i| format!("http://cluster.test/{name}/{i}")).collect();
    assert_eq!(f.admit(&batch(&urls)).await.expect("admit"), vec![true; 10], "{name}: all new");
    assert_eq!(f.admit(&batch(&urls[..3])).await.expect("admit again"), vec![false; 3], "{name}: seen");
    let side: Vec<String> = (0..2).map(|i| format!("http://cluster.test/{name}/side/{i}")).collect();
    assert_eq!(f.admit_to("side", &batch(&side)).await.expect("admit_to"), vec![true; 2]);
    let leased = f.lease(4).await.expect("lease");
    assert_eq!(leased.len(), 4, "{name}");
    let side_leased = f.lease_from("side", 5).await.expect("lease_from");
    assert_eq!(side_leased.len(), 2, "{name}: the named queue");
    let tokens: Vec<_> = leased.iter().map(|l| l.token.clone()).collect();
    assert_eq!(f.renew(&tokens).await.expect("renew"), vec![true; 4]);
    assert_eq!(f.ack(&tokens[..2]).await.expect("ack"), 2);
    assert_eq!(f.release(&tokens[2..]).await.expect("release"), 2, "{name}: released");
    assert_eq!(f.pending().await.expect("pending"), (8, 2), "{name}: 6 + 2 back queued, the side's leased");
    // The side queue's leases expire and are reaped back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(f.reap().await.expect("reap"), 2, "{name}: expired side leases reaped");
    let mut c = broker.connection().await.expect("connection");
    let start_urls = f.keys().start_urls.clone();
    let _: i64 = redis::cmd("RPUSH")
        .arg(&start_urls)
        .arg(format!("http://cluster.test/{name}/start"))
        .query_async(&mut c)
        .await
        .expect("RPUSH start URL");
    assert_eq!(f.take_start_urls(5).await.expect("start urls").len(), 1);
    let store: &dyn SharedStore = &f;
    assert!(store.claim("every-1s:1000".into(), Duration::from_secs(5)).await.expect("claim"));
    assert!(
        !store.claim("every-1s:1000".into(), Duration::from_secs(5)).await.expect("claim"),
        "once per tick"
    );
    let polite = RedisPoliteness::new(&f);
    let asks =
        [PermitAsk { host: Arc::from("cluster.test"), interval: Duration::from_millis(10), concurrency: 2 }];
    let permits = polite.permits(&[], &asks).await.expect("permits");
    let Permit::Granted { slot: Some(slot), .. } = &permits[0] else { panic!("{name}: {permits:?}") };
    polite.permits(std::slice::from_ref(slot), &[]).await.expect("give the slot back");
    let rest = f.lease(100).await.expect("lease the rest");
    let rest_side = f.lease_from("side", 100).await.expect("lease the side");
    assert_eq!(rest.len() + rest_side.len(), 10, "{name}");
    let all: Vec<_> = rest.iter().chain(&rest_side).map(|l| l.token.clone()).collect();
    assert_eq!(f.ack(&all).await.expect("ack all"), 10);
    assert_eq!(f.pending().await.expect("pending"), (0, 0), "{name}: done");
    store.forget_seen().await.expect("forget_seen");
    assert_eq!(f.admit(&batch(&urls[..1])).await.expect("admit after forget"), vec![true], "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_runs_on_a_cluster_and_a_crawls_keys_share_one_slot() {
    let Some(cluster) = test_redis_cluster("every_call_runs_on_a_cluster_and_a_crawls_keys_share_one_slot")
    else {
        return;
    };
    let broker = cluster_broker(&cluster.urls);
    broker.check().await.expect("the cluster answers");
    let chosen = a_name_per_node(&cluster.urls, "spread");
    let layouts = [(Layout::Native, false), (Layout::ScrapyRedis, false), (Layout::Native, true)];
    for ((name, _), (layout, bloom)) in chosen.iter().zip(layouts) {
        exercise(&broker, name, layout, bloom).await;
    }
    let mut nodes_used = BTreeSet::new();
    for ((name, owner), (layout, bloom)) in chosen.iter().zip(layouts) {
        let by_node = keys_by_node(&cluster.urls, name);
        assert_eq!(by_node.len(), 1, "{name}: keys on more than one node: {by_node:?}");
        let (node, keys) = by_node.iter().next().expect("one node");
        assert_eq!(node, owner, "{name}: its keys are on the node that serves its tag's slot");
        let slot = key_slot(&cluster.urls[0], &format!("{{{name}}}"));
        for key in keys {
            assert_eq!(key_slot(&cluster.urls[0], key), slot, "{name}: {key} is in another slot");
        }
        let want = FrontierKeys::new(&format!("{{{name}}}"), layout);
        let seen = if bloom { format!("{}:bloom", want.seen) } else { want.seen.clone() };
        // (The leases sorted sets are empty, so gone: everything was acked.)
        for key in [&seen, &want.queue, &want.lease_seq, &want.admitted()] {
            assert!(keys.contains(key), "{name}: {key} missing from {keys:?}");
        }
        let polite = keys.iter().any(|k| k.starts_with(&want.beside_leases("polite:")));
        let tick = keys.iter().any(|k| k.starts_with(&want.beside_leases("tick:")));
        assert!(polite && tick, "{name}: no politeness or tick key in {keys:?}");
        match layout {
            Layout::Native => {
                assert!(keys.iter().all(|k| k.starts_with(&format!("arachne:{{{name}}}:"))), "{keys:?}")
            }
            Layout::ScrapyRedis => {
                assert!(keys.iter().all(|k| k.starts_with(&format!("{{{name}}}:"))), "{keys:?}")
            }
        }
        nodes_used.insert(node.clone());
        let mut c = broker.connection().await.expect("connection");
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut c).await.expect("DEL");
    }
    assert_eq!(nodes_used.len(), cluster.urls.len(), "three crawls on the three nodes");
}

/// A crawl of `site` on a cluster: `frontier:` and `brokers.redis:` as given (flow
/// mappings), the product rule, items to items.jsonl and the `outputs` lines after it.
fn spec(name: &str, site: &SandboxServer, frontier: &str, redis: &str, outputs: &str) -> String {
    format!(
        r#"name: {name}
seeds: ["{base}/"]
frontier: {frontier}
brokers:
  redis: {redis}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
{outputs}"#,
        base = site.base_url()
    )
}

#[test]
fn two_processes_share_one_crawl_through_a_redis_cluster() {
    let Some(cluster) = test_redis_cluster("two_processes_share_one_crawl_through_a_redis_cluster") else {
        return;
    };
    let (site, want) = sandbox(2000);
    let name = unique("cshop");
    let nodes = serde_json::to_string(&cluster.urls[1..]).expect("nodes");
    let brokers = format!("{{ url: \"{}\", cluster: true, nodes: {nodes} }}", cluster.urls[0]);
    let spec = spec(&name, &site, "{ backend: redis, lease: 30s }", &brokers, "  - redis: {}\n");
    let (a, b, _dirs) = two_to_the_end(&spec, Duration::from_secs(90));
    assert_shared_crawl(&a, &b, &site, &want);

    // The sink's default key on a cluster is `{<name>}:items`, beside the crawl's keys.
    let by_node = keys_by_node(&cluster.urls, &name);
    assert_eq!(by_node.len(), 1, "the crawl's keys on more than one node: {by_node:?}");
    let (node, keys) = by_node.iter().next().expect("one node");
    let items_key = format!("{{{name}}}:items");
    assert!(keys.contains(&items_key), "{items_key} missing from {keys:?}");
    assert!(keys.contains(&format!("arachne:{{{name}}}:seen")), "{keys:?}");
    let items: u64 = redis::cmd("LLEN").arg(&items_key).query(&mut conn(node)).expect("LLEN");
    assert_eq!(items, want.items, "every item pushed to {items_key} once");
    let _: i64 = redis::cmd("DEL").arg(keys).query(&mut conn(node)).expect("DEL");
}

/// A blocking cluster connection (each command to its key's node).
fn cluster_conn(urls: &[String]) -> redis::cluster::ClusterConnection {
    redis::cluster::ClusterClient::new(urls.to_vec())
        .expect("cluster client")
        .get_connection()
        .expect("connect")
}

#[test]
fn a_scrapy_redis_spider_joins_a_crawl_on_the_cluster() {
    let test = "a_scrapy_redis_spider_joins_a_crawl_on_the_cluster";
    let (Some(cluster), Some(python)) = (test_redis_cluster(test), scrapy_python(test)) else { return };
    let started = Instant::now();
    let (site, want) = sandbox(2000);
    let name = unique("cscrapy");
    let frontier = "{ backend: redis, layout: scrapy-redis, serializer: pickle, order: fifo }\nfetch: { per_host: { rate: 300 } }";
    let spec =
        spec(&name, &site, frontier, &format!("{{ url: \"{}\", cluster: true }}", cluster.urls[0]), "");
    let (dir_s, dir_a) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = Arachne::spawn("a", dir_a.path(), &spec, &[]);
    let queue = format!("{{{name}}}:requests");
    let mut c = cluster_conn(&cluster.urls);
    let joined_by = started + Duration::from_secs(30);
    loop {
        let queued: u64 = redis::cmd("LLEN").arg(&queue).query(&mut c).expect("LLEN");
        if queued >= 50 {
            break;
        }
        assert!(
            a.running() && Instant::now() < joined_by,
            "arachne queued nothing in {queue}:\n{}",
            a.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut scrapy = Scrapy::spawn(&python, dir_s.path(), &name, &cluster.urls[0], None, &["--cluster"]);
    assert_joined_crawl(&mut a, &mut scrapy, &site, &want, started);
    // Scrapy's dupefilter is the one arachne wrote: `{<name>}:dupefilter`, beside the queue.
    let by_node = keys_by_node(&cluster.urls, &name);
    assert_eq!(by_node.len(), 1, "the crawl's keys on more than one node: {by_node:?}");
    let (node, keys) = by_node.iter().next().expect("one node");
    assert!(keys.contains(&format!("{{{name}}}:dupefilter")), "{keys:?}");
    let _: i64 = redis::cmd("DEL").arg(keys).query(&mut conn(node)).expect("DEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_remote_commands_work_on_a_cluster() {
    use arachne::bridges::redis::heartbeat::RedisWorkers;
    use arachne::observe::{unix_millis, ControlAction, Heartbeat, RemoteCommand, WorkerRegistry};
    use futures::StreamExt;
    let Some(cluster) = test_redis_cluster("heartbeats_and_remote_commands_work_on_a_cluster") else {
        return;
    };
    // The first seed does not answer: the store and the subscription use the others.
    let dead = format!("redis://127.0.0.1:{}/", support::free_port());
    let broker = cluster_broker(&[vec![dead], cluster.urls.clone()].concat());
    let (name, owner) = a_name_per_node(&cluster.urls, "workers").pop().expect("a name");
    let registry = RedisWorkers::new(broker, &name);
    let now = unix_millis();
    let beat = Heartbeat {
        worker: "w1".into(),
        at_ms: now,
        started_ms: now,
        every_ms: 1000,
        dashboard: None,
        figures: Default::default(),
    };
    registry.beat(&beat).await.expect("beat");
    let workers = registry.workers().await.expect("workers");
    assert_eq!(workers.iter().map(|w| w.worker.as_str()).collect::<Vec<_>>(), ["w1"]);
    let by_node = keys_by_node(&cluster.urls, &name);
    assert_eq!(by_node.get(&owner), Some(&vec![format!("{{{name}}}:workers")]), "{by_node:?}");

    let mut commands = registry.commands().await.expect("subscribe");
    let command = RemoteCommand { target: "*".into(), from: "w2".into(), action: ControlAction::Pause };
    // The subscription is live once a command sent after it arrives (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        registry.send(&command).await.expect("send");
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(200), commands.next()).await {
            break got;
        }
        assert!(Instant::now() < deadline, "no command arrived within 10 s");
    };
    assert_eq!(got, command);
    // A PUBLISH on another node than the subscriber's (the first seed) reaches it too.
    let other = RemoteCommand { target: "w1".into(), from: "w3".into(), action: ControlAction::Resume };
    let json = serde_json::to_string(&other).expect("json");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{name}:control"))
        .arg(json)
        .query(&mut conn(cluster.urls.last().expect("a node")))
        .expect("PUBLISH");
    // (Skipping late copies of the first command, sent again while the subscription started.)
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(left, commands.next()).await.expect("the command within 5 s");
        match got {
            Some(c) if c == command => continue,
            got => break assert_eq!(got, Some(other)),
        }
    }
    registry.leave("w1").await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_a_restarted_node() {
    if !can_start_own("a_call_survives_a_restarted_node") {
        return;
    }
    // A cluster of its own, persistent, so that a node can be killed and restarted.
    let mut cluster =
        OwnCluster::try_start_with(&["--appendonly", "yes", "--appendfsync", "always"]).expect("a cluster");
    let urls = cluster.urls();
    let broker = cluster_broker(&urls);
    let (name, owner) = a_name_per_node(&urls, "restart").swap_remove(0);
    let f = RedisFrontier::new(&broker, &name, QueueOrder::Fifo, Layout::Native, Duration::from_secs(30));
    let first: Vec<String> = (0..5).map(|i| format!("http://cluster.test/first/{i}")).collect();
    assert_eq!(f.admit(&batch(&first)).await.expect("admit"), vec![true; 5]);

    cluster.node(&owner).kill();
    let call = {
        let f = f.clone();
        let second: Vec<String> = (0..5).map(|i| format!("http://cluster.test/second/{i}")).collect();
        tokio::spawn(async move { f.admit(&batch(&second)).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if call.is_finished() {
        panic!("the call did not wait for the crawl's node: {:?}", call.await.expect("join"));
    }
    cluster.node(&owner).start_again();
    let flags = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call ends within its reconnect budget")
        .expect("join")
        .expect("the call succeeds once the node is back");
    assert_eq!(flags, vec![true; 5]);
    assert!(f.counters().reconnects() >= 1, "reconnects counted: {:?}", f.counters());
    assert_eq!(f.admit(&batch(&first)).await.expect("admit again"), vec![false; 5], "the seen-set survived");
    assert_eq!(f.pending().await.expect("pending"), (10, 0));
}

#[tokio::test]
async fn cluster_mode_must_match_the_server() {
    let Some(cluster) = test_redis_cluster("cluster_mode_must_match_the_server") else { return };
    let Some(single) = test_redis("cluster_mode_must_match_the_server") else { return };
    let e = RedisBroker::cluster(&[single.url.as_str()])
        .expect("broker")
        .check()
        .await
        .expect_err("not a cluster");
    let text = e.to_string();
    assert!(
        text.contains("not a node of a Redis Cluster") && text.contains("brokers.redis.cluster"),
        "{text}"
    );
    let e = RedisBroker::new(&cluster.urls[0]).expect("broker").check().await.expect_err("a cluster node");
    let text = e.to_string();
    assert!(text.contains("node of a Redis Cluster") && text.contains("cluster: true"), "{text}");
    // A first seed that does not answer: the other seeds (`nodes`) do.
    let dead = format!("redis://127.0.0.1:{}/", support::free_port());
    let seeds: Vec<&str> =
        std::iter::once(dead.as_str()).chain(cluster.urls.iter().map(String::as_str)).collect();
    RedisBroker::cluster(&seeds).expect("broker").check().await.expect("the other seeds answer");
    let e =
        RedisBroker::cluster(&[dead.as_str()]).expect("broker").check().await.expect_err("no seed answers");
    assert!(e.to_string().starts_with("cannot reach Redis Cluster at "), "{e}");
    let e = RedisBroker::cluster(&["redis://127.0.0.1:6379/3"]).expect_err("database 3");
    assert!(e.to_string().contains("only database 0"), "{e}");
}

#[tokio::test]
async fn a_redis_queue_with_a_hash_tag_runs_on_a_cluster() {
    let Some(cluster) = test_redis_cluster("a_redis_queue_with_a_hash_tag_runs_on_a_cluster") else { return };
    let broker = cluster_broker(&cluster.urls);
    // What `kind: redis-queue` with `channel: "{jobs}:q"` runs on (validate asks for the tag).
    let key = format!("{{{}}}:q", unique("jobs"));
    let q = RedisFrontier::for_queue(&broker, &key, QueueOrder::Fifo, Duration::from_millis(300));
    q.push_raw(&[(b"one".to_vec(), 0), (b"two".to_vec(), 0)]).await.expect("push");
    let leased = q.lease_raw(5).await.expect("lease");
    let payloads: Vec<&[u8]> = leased.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(payloads, [b"one".as_slice(), b"two".as_slice()], "fifo");
    assert_eq!(q.ack_raw(&[leased[0].0.clone()]).await.expect("ack"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(q.reap().await.expect("reap"), 1, "the unacked one comes back");
    let again = q.lease_raw(5).await.expect("lease again");
    assert_eq!(again.iter().map(|(_, p)| p.as_slice()).collect::<Vec<_>>(), [b"two".as_slice()]);
    assert_eq!(q.ack_raw(&[again[0].0.clone()]).await.expect("ack"), 1);
    assert_eq!(q.pending().await.expect("pending"), (0, 0));
}
