//! RabbitMQ: one crawl shared by several `arachne run` processes through an AMQP frontier
//! (`frontier: { backend: amqp }`, the seen-set in Redis), the `amqp` output, and the
//! topology from the spec, end to end against a real rabbitmq-server and an external
//! `SandboxServer` whose truth and request counters are the oracle:
//!
//! - two processes crawl the 5,000-page sandbox together: the union of their items is
//!   exactly the sandbox's item set, no page fetched twice with success, a fair share each;
//! - one of two is SIGKILLed mid-crawl: the broker delivers its unacked requests to the
//!   survivor, which finishes; nothing is missing;
//! - rabbitmq-server is stopped and started again mid-crawl (durable queue, persistent
//!   messages): the crawl completes, nothing is missing, `reconnects` is counted;
//! - each exchange type routes as RabbitMQ specifies (fanout, topic with `*` and `#`,
//!   headers with `all` and `any`), and a conflicting declaration is a clear error;
//! - `output: - amqp` items reach a bound queue; a wrong login or address is exit 1 before
//!   anything is crawled.
//!
//! Which broker: `ARACHNE_TEST_AMQP` (an `amqp://` URL; scripts/test.sh starts
//! rabbitmq-server with scripts/amqp.sh and sets it). Without it, under `CI` the tests
//! fail; elsewhere they start their own node with scripts/amqp.sh when rabbitmq-server is
//! installed, or are skipped loudly. The restart test always starts its own node. Every
//! test uses its own crawl name, so its own queues and Redis keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arachne::bridges::amqp::{topology, AmqpBroker, AmqpBrokerSpec};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde_json::Value;
use support::procs::{
    assert_shared_crawl, assert_truth_items, collect, kill_one_halfway, sandbox, two_to_the_end,
    wait_for_items, Arachne,
};
use support::{free_port, test_redis, unique};

mod support;

// ---------------------------------------------------------------------------------------
// The broker

/// A rabbitmq-server node this test started with scripts/amqp.sh; stopped on drop.
struct OwnNode {
    /// Its own folder (the state file, and the node's data unless it reuses another's).
    dir: PathBuf,
    state: PathBuf,
    port: u16,
    base: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/amqp.sh")
}

fn rabbitmq_installed() -> bool {
    Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
}

impl OwnNode {
    /// Starts a node on `port` with its data in `base` (both new when `None`).
    fn start(again: Option<(u16, &Path)>) -> Self {
        Self::start_with(again, &[])
    }

    /// [`OwnNode::start`] with more of scripts/amqp.sh's settings (`AMQP_TLS_PORT`, ...).
    fn start_with(again: Option<(u16, &Path)>, env: &[(&str, String)]) -> Self {
        let dir = tempfile::Builder::new().prefix("amqp-node").tempdir().expect("tempdir").keep();
        let state = dir.join("node.env");
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("start").arg(&state).envs(env.iter().map(|(k, v)| (k, v)));
        if let Some((port, base)) = again {
            cmd.env("AMQP_PORT", port.to_string()).env("AMQP_BASE", base);
        } else {
            cmd.env("AMQP_BASE", dir.join("data"));
        }
        let out = cmd.output().expect("run scripts/amqp.sh");
        assert!(out.status.success(), "scripts/amqp.sh start: {}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(&state).expect("state file");
        let get = |k: &str| {
            env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::to_string).expect("state key")
        };
        OwnNode {
            dir,
            state,
            port: get("AMQP_PORT").parse().expect("port"),
            base: PathBuf::from(get("AMQP_BASE")),
        }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn stop(&self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.state).status();
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum TestAmqp {
    Shared(String),
    Own(OwnNode),
}

impl TestAmqp {
    fn url(&self) -> String {
        match self {
            TestAmqp::Shared(u) => u.clone(),
            TestAmqp::Own(o) => o.url(),
        }
    }
}

fn test_amqp(test: &str) -> Option<TestAmqp> {
    if let Ok(url) = std::env::var("ARACHNE_TEST_AMQP") {
        if !url.is_empty() {
            return Some(TestAmqp::Shared(url));
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: no RabbitMQ under CI (ARACHNE_TEST_AMQP is not set; scripts/test.sh sets it)"
    );
    if rabbitmq_installed() {
        return Some(TestAmqp::Own(OwnNode::start(None)));
    }
    eprintln!("SKIPPED {test}: no RabbitMQ (run scripts/test.sh, or scripts/amqp.sh start)");
    None
}

// ---------------------------------------------------------------------------------------
// The spec

fn shop(name: &str, amqp: &str, redis: &str, seeds: &[String], extra: &str) -> String {
    let seeds = serde_json::to_string(seeds).expect("seeds");
    format!(
        r#"name: {name}
seeds: {seeds}
frontier: {{ backend: amqp }}
brokers:
  amqp: {{ url: "{amqp}", connect_timeout: 5s, heartbeat: 5s }}
  redis: {{ url: "{redis}" }}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
output:
  - jsonl: items.jsonl
{extra}"#
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn broker(url: &str, topology: &str) -> AmqpBroker {
    let yaml = format!("url: \"{url}\"\n{topology}");
    let spec: AmqpBrokerSpec = serde_saphyr::from_str(&yaml).expect("broker spec");
    AmqpBroker::new(spec).expect("broker")
}

// ---------------------------------------------------------------------------------------
// Tests: the shared frontier

#[test]
fn two_processes_share_one_crawl() {
    let Some(amqp) = test_amqp("two_processes_share_one_crawl") else { return };
    let Some(redis) = test_redis("two_processes_share_one_crawl") else { return };
    let (site, want) = sandbox(5000);
    let spec = shop(&unique("ashop"), &amqp.url(), &redis.url, &[format!("{}/", site.base_url())], "");
    let (a, b, _dirs) = two_to_the_end(&spec, Duration::from_secs(120));

    assert_shared_crawl(&a, &b, &site, &want);
}

/// `max_items: 300` across two processes: 300 items in all, counted in the seen-set's Redis.
#[test]
fn max_items_counts_the_whole_crawl_across_processes() {
    let Some(amqp) = test_amqp("max_items_counts_the_whole_crawl_across_processes") else { return };
    let Some(redis) = test_redis("max_items_counts_the_whole_crawl_across_processes") else { return };
    let (site, _) = sandbox(5000);
    let seeds = [format!("{}/", site.base_url())];
    let spec = shop(&unique("aitems"), &amqp.url(), &redis.url, &seeds, "scope: { max_items: 300 }\n");
    let (a, b, _dirs) = two_to_the_end(&spec, Duration::from_secs(120));
    let (items_a, items_b) = (a.items(false), b.items(false));
    let mut items = std::collections::BTreeMap::new();
    collect(&mut items, &items_a, true);
    collect(&mut items, &items_b, true);
    assert_eq!(items.len(), 300, "a wrote {}, b {}", items_a.len(), items_b.len());
}

#[test]
fn a_killed_process_leaves_nothing_missing() {
    let Some(amqp) = test_amqp("a_killed_process_leaves_nothing_missing") else { return };
    let Some(redis) = test_redis("a_killed_process_leaves_nothing_missing") else { return };
    let started = Instant::now();
    let (site, want) = sandbox(5000);
    let spec = shop(
        &unique("akilled"),
        &amqp.url(),
        &redis.url,
        &[format!("{}/", site.base_url())],
        // Slow enough that the kill lands mid-crawl.
        "fetch: { per_host: { rate: 500 } }\n",
    );
    kill_one_halfway(&spec, &want, started, Duration::from_secs(60), Duration::from_secs(150));
}

#[test]
fn a_broker_restart_mid_crawl_completes_the_crawl() {
    let test = "a_broker_restart_mid_crawl_completes_the_crawl";
    if !rabbitmq_installed() {
        assert!(std::env::var_os("CI").is_none(), "{test}: rabbitmq-server is not installed under CI");
        eprintln!("SKIPPED {test}: rabbitmq-server is not installed (scripts/amqp.sh installs it)");
        return;
    }
    let Some(redis) = test_redis(test) else { return };
    let node = OwnNode::start(None);
    let started = Instant::now();
    let (site, want) = sandbox(5000);
    let spec = shop(
        &unique("arestart"),
        &node.url(),
        &redis.url,
        &[format!("{}/", site.base_url())],
        "fetch: { per_host: { rate: 300 } }\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    wait_for_items(&mut p, (want.items / 5) as usize, started + Duration::from_secs(60));
    assert!(p.running(), "the crawl ended before the restart:\n{}", p.stderr());
    let before = p.item_lines();
    node.stop();
    eprintln!("stopped rabbitmq after {:?} at {before} items", started.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let again = OwnNode::start(Some((node.port, &node.base)));
    eprintln!("rabbitmq up again after {:?}", started.elapsed());
    assert_eq!(p.wait(started + Duration::from_secs(240)), 0, "p:\n{}", p.stderr());
    drop(again);

    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), false);
    assert_truth_items(&items, &want);
    let reconnects = p.summary()["reconnects"].as_u64().unwrap_or(0);
    assert!(reconnects >= 1, "no reconnect counted: {}", p.summary());
}

#[test]
fn dead_lettered_requests_go_to_the_queues_dead_letter_exchange() {
    let Some(amqp) = test_amqp("dead_lettered_requests_go_to_the_queues_dead_letter_exchange") else {
        return;
    };
    let Some(redis) = test_redis("dead_lettered_requests_go_to_the_queues_dead_letter_exchange") else {
        return;
    };
    let (site, want) = sandbox(50);
    let name = unique("adlx");
    let spec = shop(&name, &amqp.url(), &redis.url, &[format!("{}/", site.base_url())], "")
        .replace(
            "frontier: { backend: amqp }",
            &format!("frontier: {{ backend: amqp, amqp: {{ dead_letter_exchange: \"{name}.dlx\" }} }}"),
        )
        .replace(
            "heartbeat: 5s }",
            &format!(
                "heartbeat: 5s, topology: {{ exchanges: [{{ name: \"{name}.dlx\", type: fanout }}], \
                 queues: [{{ name: \"{name}.dead\" }}], bindings: [{{ exchange: \"{name}.dlx\", queue: \"{name}.dead\" }}] }} }}"
            ),
        );
    let dir = tempfile::tempdir().expect("tempdir");
    // Items 10 to 19 crash the parser at every delivery: each is dead-lettered.
    let mut p = Arachne::spawn("p", dir.path(), &spec, &["--chaos", "poison=/item/1[0-9]$"]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(90)), 0, "{}", p.stderr());
    let poisoned: std::collections::BTreeSet<String> =
        (10..20).map(|n| format!("{}/item/{n}", site.base_url())).collect();
    assert_eq!(p.summary()["dead_letters"].as_u64(), Some(10), "{}", p.summary());
    let logged = std::fs::read_to_string(dir.path().join("dead_letters.jsonl")).expect("dead_letters.jsonl");
    assert_eq!(logged.lines().count(), 10, "{logged}");
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_eq!(items.len() as u64, want.items - 10, "every other item is written");

    // The broker routed each dead-lettered request to the exchange, with its x-death header.
    let broker = broker(&amqp.url(), "");
    let dead: std::collections::BTreeSet<String> = runtime().block_on(async {
        let conn = broker.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let mut urls = std::collections::BTreeSet::new();
        while let Some(m) = ch
            .basic_get(format!("{name}.dead").as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            let body: Value = serde_json::from_slice(&m.delivery.data).expect("a request");
            let headers = m.delivery.properties.headers().clone().unwrap_or_default();
            assert!(headers.inner().contains_key("x-death"), "no x-death header: {headers:?}");
            urls.insert(body["url"].as_str().expect("url").to_string());
        }
        let _ = conn.close(200, "bye".into()).await;
        urls
    });
    assert_eq!(dead, poisoned);
}

#[test]
fn amqps_with_a_private_ca() {
    let test = "amqps_with_a_private_ca";
    if !rabbitmq_installed() {
        assert!(std::env::var_os("CI").is_none(), "{test}: rabbitmq-server is not installed under CI");
        eprintln!("SKIPPED {test}: rabbitmq-server is not installed (scripts/amqp.sh installs it)");
        return;
    }
    let Some(redis) = test_redis(test) else { return };
    let files = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = support::tls::tls_files(files.path());
    let tls_port = free_port();
    let path = |p: &Path| p.display().to_string();
    let _node = OwnNode::start_with(
        None,
        &[
            ("AMQP_TLS_PORT", tls_port.to_string()),
            ("AMQP_TLS_CA", path(&ca)),
            ("AMQP_TLS_CERT", path(&cert)),
            ("AMQP_TLS_KEY", path(&key)),
        ],
    );
    let (site, want) = sandbox(30);
    let url = format!("amqps://guest:guest@127.0.0.1:{tls_port}/%2f");
    let seeds = [format!("{}/", site.base_url())];
    let with_ca = shop(&unique("atls"), &url, &redis.url, &seeds, "")
        .replace("heartbeat: 5s }", &format!("heartbeat: 5s, ca_file: \"{}\" }}", ca.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &with_ca, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(60)), 0, "{}", p.stderr());
    let mut items = BTreeMap::new();
    collect(&mut items, &p.items(false), true);
    assert_truth_items(&items, &want);
    assert!(p.stderr().contains(&format!("amqps://guest:***@127.0.0.1:{tls_port}")), "{}", p.stderr());

    // Without the CA, the server's certificate is not trusted: exit 1 before the crawl.
    let requests = site.stats().total_requests;
    let without = shop(&unique("atls"), &url, &redis.url, &seeds, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &without, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(60)), 1, "{}", p.stderr());
    assert!(p.stderr().contains("TLS with AMQP at amqps://guest:***@"), "{}", p.stderr());
    assert_eq!(site.stats().total_requests, requests, "nothing may be crawled");
}

#[test]
fn a_wrong_login_is_exit_1_before_the_crawl() {
    let Some(amqp) = test_amqp("a_wrong_login_is_exit_1_before_the_crawl") else { return };
    let Some(redis) = test_redis("a_wrong_login_is_exit_1_before_the_crawl") else { return };
    let (site, _) = sandbox(20);
    let url = amqp.url();
    let port = url.rsplit_once(':').and_then(|(_, p)| p.split('/').next()).expect("port").to_string();
    let wrong = format!("amqp://guest:not-the-password@127.0.0.1:{port}/%2f");
    let spec = shop(&unique("alogin"), &wrong, &redis.url, &[format!("{}/", site.base_url())], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(30)), 1, "{}", p.stderr());
    let err = p.stderr();
    assert!(err.contains("AMQP") && err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("not-the-password"), "the password is printed: {err}");
    assert_eq!(site.stats().total_requests, 0, "nothing may be crawled");

    let dead = format!("amqp://127.0.0.1:{}/%2f", free_port());
    let spec = shop(&unique("adead"), &dead, &redis.url, &[format!("{}/", site.base_url())], "");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(30)), 1, "{}", p.stderr());
    assert!(p.stderr().contains("cannot reach AMQP at"), "{}", p.stderr());
    assert_eq!(site.stats().total_requests, 0, "nothing may be crawled");
}

// ---------------------------------------------------------------------------------------
// Tests: topology and output

/// Publishes `(routing key, headers)` messages to `exchange` and returns how many each
/// queue got.
fn route(
    url: &str,
    topology_yaml: &str,
    exchange: &str,
    messages: &[(&str, &[(&str, &str)])],
    queues: &[&str],
) -> Vec<u32> {
    let broker = broker(url, topology_yaml);
    runtime().block_on(async {
        let conn = broker.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        topology::declare(&ch, &broker, &broker.spec().topology).await.expect("declare");
        // Idempotent: declaring the same again is fine.
        topology::declare(&ch, &broker, &broker.spec().topology).await.expect("declare again");
        for (key, headers) in messages {
            let mut table = FieldTable::default();
            for (k, v) in *headers {
                table.insert((*k).into(), AMQPValue::LongString((*v).into()));
            }
            ch.basic_publish(
                exchange.into(),
                (*key).into(),
                BasicPublishOptions::default(),
                b"m",
                BasicProperties::default().with_headers(table),
            )
            .await
            .expect("publish");
        }
        let mut counts = Vec::new();
        for q in queues {
            let mut n = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match ch.basic_get((*q).into(), BasicGetOptions { no_ack: true }).await.expect("get") {
                    Some(_) => n += 1,
                    None if Instant::now() > deadline => break,
                    None => {
                        let q = ch
                            .queue_declare(
                                (*q).into(),
                                QueueDeclareOptions::default().passive(),
                                FieldTable::default(),
                            )
                            .await
                            .expect("passive");
                        if q.message_count() == 0 {
                            break;
                        }
                    }
                }
            }
            counts.push(n);
        }
        let _ = conn.close(200, "bye".into()).await;
        counts
    })
}

#[test]
fn each_exchange_type_routes_as_specified() {
    let Some(amqp) = test_amqp("each_exchange_type_routes_as_specified") else { return };
    let u = unique("x");
    let q = |s: &str| format!("{u}.{s}");
    let yaml = format!(
        r#"topology:
  exchanges:
    - {{ name: "{u}.fan", type: fanout, durable: false, auto_delete: true }}
    - {{ name: "{u}.topic", type: topic, durable: false, auto_delete: true }}
    - {{ name: "{u}.hdr", type: headers, durable: false, auto_delete: true }}
  queues:
    - {{ name: "{f1}", durable: false, auto_delete: true }}
    - {{ name: "{f2}", durable: false, auto_delete: true }}
    - {{ name: "{star}", durable: false, auto_delete: true }}
    - {{ name: "{hash}", durable: false, auto_delete: true }}
    - {{ name: "{all}", durable: false, auto_delete: true }}
    - {{ name: "{any}", durable: false, auto_delete: true }}
  bindings:
    - {{ exchange: "{u}.fan", queue: "{f1}" }}
    - {{ exchange: "{u}.fan", queue: "{f2}", routing_key: ignored }}
    - {{ exchange: "{u}.topic", queue: "{star}", routing_key: "crawl.*" }}
    - {{ exchange: "{u}.topic", queue: "{hash}", routing_key: "crawl.#" }}
    - {{ exchange: "{u}.hdr", queue: "{all}", headers: {{ kind: pdf, lang: en }}, match: all }}
    - {{ exchange: "{u}.hdr", queue: "{any}", headers: {{ kind: pdf, lang: en }}, match: any }}
"#,
        f1 = q("f1"),
        f2 = q("f2"),
        star = q("star"),
        hash = q("hash"),
        all = q("all"),
        any = q("any"),
    );
    let url = amqp.url();
    // Fanout: every bound queue, whatever the key.
    let fan = route(&url, &yaml, &format!("{u}.fan"), &[("a", &[]), ("b", &[])], &[&q("f1"), &q("f2")]);
    assert_eq!(fan, vec![2, 2], "fanout");
    // Topic: `*` is exactly one word, `#` zero or more.
    let keys: [(&str, &[(&str, &str)]); 4] =
        [("crawl", &[]), ("crawl.page", &[]), ("crawl.page.done", &[]), ("other.page", &[])];
    let topic = route(&url, &yaml, &format!("{u}.topic"), &keys, &[&q("star"), &q("hash")]);
    assert_eq!(
        topic,
        vec![1, 3],
        "topic: crawl.* gets crawl.page; crawl.# gets crawl, crawl.page, crawl.page.done"
    );
    // Headers: all needs both, any needs one.
    let msgs: [(&str, &[(&str, &str)]); 4] = [
        ("", &[("kind", "pdf"), ("lang", "en")]),
        ("", &[("kind", "pdf"), ("lang", "fr")]),
        ("", &[("lang", "en")]),
        ("", &[("kind", "html")]),
    ];
    let headers = route(&url, &yaml, &format!("{u}.hdr"), &msgs, &[&q("all"), &q("any")]);
    assert_eq!(headers, vec![1, 3], "headers: all matches 1 message, any matches 3");
}

#[test]
fn a_conflicting_declaration_names_the_queue_and_the_argument() {
    let Some(amqp) = test_amqp("a_conflicting_declaration") else { return };
    let name = unique("conflict");
    let first = broker(
        &amqp.url(),
        &format!("topology: {{ queues: [ {{ name: \"{name}\", max_priority: 5, auto_delete: true }} ] }}"),
    );
    let second = broker(
        &amqp.url(),
        &format!("topology: {{ queues: [ {{ name: \"{name}\", max_priority: 9, auto_delete: true }} ] }}"),
    );
    let err = runtime().block_on(async {
        let conn = first.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        topology::declare(&ch, &first, &first.spec().topology).await.expect("first");
        let ch2 = conn.create_channel().await.expect("channel");
        let err = topology::declare(&ch2, &second, &second.spec().topology).await.expect_err("a conflict");
        let _ = conn.close(200, "bye".into()).await;
        err.to_string()
    });
    assert!(
        err.contains(&name) && err.contains("x-max-priority") && err.contains("PRECONDITION_FAILED"),
        "{err}"
    );
}

#[test]
fn amqp_output_items_reach_a_bound_queue() {
    let Some(amqp) = test_amqp("amqp_output_items_reach_a_bound_queue") else { return };
    let (site, want) = sandbox(200);
    let name = unique("aout");
    let queue = format!("{name}.items");
    let spec = format!(
        r#"name: {name}
seeds: ["{base}/"]
brokers:
  amqp:
    url: "{url}"
    topology:
      exchanges: [ {{ name: "{name}.x", type: topic }} ]
      queues: [ {{ name: "{queue}" }} ]
      bindings: [ {{ exchange: "{name}.x", queue: "{queue}", routing_key: "item.#" }} ]
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1" }}
output:
  - jsonl: items.jsonl
  - amqp: {{ exchange: "{name}.x", routing_key: "item.{{host}}", headers: {{ rule: product }} }}
"#,
        base = site.base_url(),
        url = amqp.url(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(60)), 0, "{}", p.stderr());
    let mut from_file = BTreeMap::new();
    collect(&mut from_file, &p.items(false), true);
    assert_eq!(from_file.len() as u64, want.items);
    let broker = broker(&amqp.url(), "");
    let got: Vec<Value> = runtime().block_on(async {
        let conn = broker.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let mut got = Vec::new();
        while let Some(m) =
            ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get")
        {
            assert_eq!(m.delivery.properties.delivery_mode(), &Some(2), "persistent");
            got.push(serde_json::from_slice(&m.delivery.data).expect("JSON item"));
        }
        let _ = conn.close(200, "bye".into()).await;
        got
    });
    let mut from_queue = BTreeMap::new();
    collect(&mut from_queue, &got, true);
    assert_eq!(from_queue, from_file, "the queue and the jsonl file hold the same items");
}

/// Every message of `queue` (auto-acked), as JSON.
fn drain(url: &str, queue: &str) -> Vec<Value> {
    let broker = broker(url, "");
    runtime().block_on(async {
        let conn = broker.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let mut got = Vec::new();
        while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
            got.push(serde_json::from_slice(&m.delivery.data).expect("JSON"));
        }
        let _ = conn.close(200, "bye".into()).await;
        got
    })
}

#[test]
fn items_bridged_out_reach_a_bound_queue() {
    let Some(amqp) = test_amqp("items_bridged_out_reach_a_bound_queue") else { return };
    let (site, want) = sandbox(100);
    let name = unique("abridge");
    let queue = format!("{name}.bridged");
    let spec = format!(
        "name: {name}\nseeds: [\"{}/\"]\nbrokers:\n  amqp:\n    url: \"{}\"\n    topology:\n      \
         exchanges: [ {{ name: \"{name}.x\", type: fanout }} ]\n      queues: [ {{ name: \"{queue}\" }} ]\n      \
         bindings: [ {{ exchange: \"{name}.x\", queue: \"{queue}\" }} ]\n\
         bridges:\n  - {{ kind: amqp, topic: items, direction: out, channel: \"{name}.x\", key: url }}\n\
         parse:\n  items:\n    - {{ name: product, match: \"/item/\\\\d+$\", fields: {{ title: \"h1\" }} }}\n\
         output:\n  - jsonl: items.jsonl\n",
        site.base_url(),
        amqp.url()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Arachne::spawn("p", dir.path(), &spec, &[]);
    assert_eq!(p.wait(Instant::now() + Duration::from_secs(60)), 0, "{}", p.stderr());
    let mut from_queue = BTreeMap::new();
    collect(&mut from_queue, &drain(&amqp.url(), &queue), true);
    assert_truth_items(&from_queue, &want);
}

#[test]
fn a_queue_bridged_in_is_published_locally_then_acked() {
    use arachne::bridges::amqp::{AmqpBridge, AmqpMessage};
    use arachne::bus::{Overflow, Topic};

    let Some(amqp) = test_amqp("a_queue_bridged_in") else { return };
    let queue = unique("ain");
    let broker = broker(&amqp.url(), &format!("topology: {{ queues: [ {{ name: \"{queue}\" }} ] }}"));
    runtime().block_on(async {
        let conn = broker.connect("test").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        topology::declare(&ch, &broker, &broker.spec().topology).await.expect("declare");
        for i in 0..20 {
            let payload = if i % 2 == 0 { format!("{{\"job\":{i}}}") } else { format!("plain {i}") };
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        }
        let _ = conn.close(200, "bye".into()).await;
    });
    let local: Topic<AmqpMessage> = Topic::new("remote.jobs");
    let subscription = local.subscribe(64, Overflow::Block);
    let bridge = AmqpBridge::inbound(&broker, &queue, local.clone());
    let counters = bridge.counters();
    let system = actix::System::new();
    let got = system.block_on(async move {
        use actix::Actor;
        let _addr = bridge.start();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 20 && Instant::now() < deadline {
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), subscription.recv()).await {
                got.push((*m).clone());
            }
        }
        // Acked after the local publish: the queue empties.
        tokio::time::sleep(Duration::from_millis(500)).await;
        local.close();
        tokio::time::sleep(Duration::from_millis(500)).await;
        got
    });
    assert_eq!(got.len(), 20, "{got:?}");
    assert_eq!(got[0].payload, serde_json::json!({ "job": 0 }));
    assert_eq!(got[1].payload, serde_json::json!("plain 1"));
    assert_eq!(got[0].routing_key, queue);
    assert_eq!(counters.forwarded.load(std::sync::atomic::Ordering::Relaxed), 20);
    let left = drain(&amqp.url(), &queue);
    assert!(left.is_empty(), "messages left unacked in the queue: {left:?}");
}
