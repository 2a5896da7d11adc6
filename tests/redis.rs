//! Redis against a real redis-server: the list sink, the startup check of the URL and
//! password, the redis-pubsub bridge both ways (also through the runtime, with a handler
//! bound from the embedding API), and its recovery from a killed or hung connection.
//!
//! Which server: `ARACHNE_TEST_REDIS_URL` (scripts/test.sh starts one with
//! scripts/redis.sh and sets it). Without it, under `CI` the tests fail; elsewhere each
//! test starts its own `redis-server` on a free port when the binary is installed, and is
//! skipped with a loud message when it is not. Fault tests (CLIENT KILL, SIGSTOP, a wrong
//! password) always start their own server, so they never disturb the shared one.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use actix::prelude::*;
use arachne::bridges::redis::{ChannelMessage, PubSubBridge, PubSubOptions, RedisBroker};
use arachne::bridges::BridgeError;
use arachne::bus::{Bus, Overflow, Subscription, Topic};
use arachne::runtime::Runtime;
use serde_json::{json, Value};
use support::{conn, free_port, own_server, test_redis, unique};

mod support;

const WAIT: Duration = Duration::from_secs(15);

fn arachne() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arachne"))
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_until_async(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn numsub(url: &str, channel: &str) -> i64 {
    let (_, n): (String, i64) =
        redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query(&mut conn(url)).expect("PUBSUB NUMSUB");
    n
}

fn publish(url: &str, channel: &str, payload: &str) -> i64 {
    redis::cmd("PUBLISH").arg(channel).arg(payload).query(&mut conn(url)).expect("PUBLISH")
}

/// Writes `spec` and runs `arachne run` on it: (exit code, stderr).
fn run_arachne(dir: &std::path::Path, spec: &str, envs: &[(&str, &str)]) -> (i32, String) {
    let path = dir.join("crawl.yaml");
    std::fs::write(&path, spec).expect("write spec");
    let out = arachne()
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .current_dir(dir)
        .envs(envs.iter().copied())
        .output()
        .expect("run arachne");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn crawl_spec(name: &str, extra: &str) -> String {
    format!(
        r#"
name: {name}
sandbox: {{ pages: 40, traps: true }}
seeds: ["{{sandbox}}/"]
fetch: {{ timeout: 5s, retries: 0 }}
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: {{ title: "h1", price: ".price" }}
{extra}
"#
    )
}

#[test]
fn sink_pushes_every_item_to_a_list() {
    let Some(redis) = test_redis("sink_pushes_every_item_to_a_list") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("sink");
    let spec = crawl_spec(
        &name,
        "output:\n  - redis: {}\n  - redis: { key: \"${ITEMS_KEY}\" }\n  - jsonl: items.jsonl\nbrokers:\n  redis: { url: \"${REDIS_URL}\" }\n",
    );
    let other_key = format!("{name}:other");
    let (code, stderr) =
        run_arachne(dir.path(), &spec, &[("REDIS_URL", &redis.url), ("ITEMS_KEY", &other_key)]);
    assert_eq!(code, 0, "{stderr}");

    let mut c = conn(&redis.url);
    let default_key = format!("{name}:items");
    let listed: Vec<String> =
        redis::cmd("LRANGE").arg(&default_key).arg(0).arg(-1).query(&mut c).expect("LRANGE");
    let other: Vec<String> =
        redis::cmd("LRANGE").arg(&other_key).arg(0).arg(-1).query(&mut c).expect("LRANGE");
    let file = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items.jsonl");
    let mut from_file: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let mut from_redis: Vec<Value> = listed.iter().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(from_redis.len(), 40, "one list entry per product page");
    assert_eq!(other.len(), 40);
    let by_url = |a: &Value, b: &Value| a["url"].as_str().cmp(&b["url"].as_str());
    from_file.sort_by(by_url);
    from_redis.sort_by(by_url);
    assert_eq!(from_redis, from_file, "the list holds exactly the jsonl file's items");
    assert!(from_redis.iter().all(|i| i["title"].is_string() && i["fetched_at"].is_string()));
    let _: () = redis::cmd("DEL").arg(&default_key).arg(&other_key).query(&mut c).expect("DEL");
}

#[test]
fn wrong_password_or_unreachable_fails_before_crawling() {
    let Some(server) =
        own_server("wrong_password_or_unreachable_fails_before_crawling", &["--requirepass", "s3cret-pw"])
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = server.port;
    let out = "output:\n  - redis: {}\nbrokers:\n  redis: { url: \"${REDIS_URL}\", connect_timeout: 2s }\n";
    let bridge = "output: []\nbrokers:\n  redis: { url: \"${REDIS_URL}\" }\nbridges:\n  - { kind: redis-pubsub, topic: events, channel: ev, direction: out }\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("redis://:wrong-pw@127.0.0.1:{port}/"),
            out,
            "refused the credentials: wrong user name or password",
        ),
        (format!("redis://127.0.0.1:{port}/"), out, "requires a password and the URL gives none"),
        (format!("redis://:wrong-pw@127.0.0.1:{port}/"), bridge, "refused the credentials"),
        (format!("redis://127.0.0.1:{}/", free_port()), out, "cannot reach Redis at redis://127.0.0.1:"),
        (format!("redis://127.0.0.1:{}/", free_port()), bridge, "cannot reach Redis"),
    ];
    for (url, tail, expected) in cases {
        let started = Instant::now();
        let (code, stderr) = run_arachne(dir.path(), &crawl_spec("authcheck", tail), &[("REDIS_URL", &url)]);
        assert_eq!(code, 1, "{url}: {stderr}");
        assert!(stderr.contains(expected), "{url}: expected '{expected}' in:\n{stderr}");
        assert!(!stderr.contains("wrong-pw"), "the password is printed:\n{stderr}");
        assert!(!stderr.contains("done:"), "it crawled:\n{stderr}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    // The right password, from the environment, works and is never printed.
    let url = format!("redis://:s3cret-pw@127.0.0.1:{port}/");
    let (code, stderr) = run_arachne(dir.path(), &crawl_spec("authok", out), &[("REDIS_URL", &url)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("s3cret-pw"));
    let mut c = conn(&url);
    let n: i64 = redis::cmd("LLEN").arg("authok:items").query(&mut c).expect("LLEN");
    assert_eq!(n, 40);

    // A URL that is not one is a spec error (exit 2), password masked.
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        crawl_spec(
            "bad",
            "output: [ { redis: {} } ]\nbrokers: { redis: { url: \"http://:wrong-pw@h/\" } }\n",
        ),
    )
    .expect("write");
    let out = arachne().arg("validate").arg(&path).output().expect("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("brokers.redis.url is not a usable Redis URL"), "{stderr}");
}

#[test]
fn broker_errors_say_what_is_wrong() {
    let Some(server) = own_server("broker_errors_say_what_is_wrong", &["--requirepass", "pw"]) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let check = |url: String| {
        let broker = RedisBroker::new(&url)?.with_connect_timeout(Duration::from_secs(2));
        rt.block_on(broker.check())
    };
    assert!(check(format!("redis://:pw@127.0.0.1:{}/", server.port)).is_ok());
    let e = check(format!("redis://:nope@127.0.0.1:{}/", server.port)).unwrap_err();
    assert!(matches!(e, BridgeError::AuthFailed { .. }), "{e}");
    assert!(!e.to_string().contains("nope"), "{e}");
    let e = check(format!("redis://127.0.0.1:{}/", free_port())).unwrap_err();
    assert!(matches!(e, BridgeError::Unreachable { .. }), "{e}");
    let e = check("redis://127.0.0.1/notanumber".into()).unwrap_err();
    assert!(matches!(e, BridgeError::BadUrl { .. }), "{e}");
    // TLS against a plain server: the handshake fails, and says so.
    let e = check(format!("rediss://:pw@127.0.0.1:{}/", server.port)).unwrap_err();
    assert!(matches!(e, BridgeError::Tls { .. } | BridgeError::Unreachable { .. }), "{e}");
    assert!(!e.to_string().contains(":pw@"), "{e}");
}

#[test]
fn outbound_bridge_publishes_crawl_events() {
    let Some(redis) = test_redis("outbound_bridge_publishes_crawl_events") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let channel = unique("arachne:events");
    let items_channel = unique("arachne:items");
    let mut listener = conn(&redis.url);
    let mut pubsub = listener.as_pubsub();
    pubsub.subscribe(&channel).expect("SUBSCRIBE");
    pubsub.subscribe(&items_channel).expect("SUBSCRIBE");
    pubsub.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let spec = crawl_spec(
        &unique("out"),
        &format!(
            "output: []\nbrokers:\n  redis: {{ url: \"${{REDIS_URL}}\" }}\nbridges:\n  \
             - {{ kind: redis-pubsub, topic: events, channel: \"{channel}\", direction: out }}\n  \
             - {{ kind: redis-pubsub, topic: items, channel: \"{items_channel}\", direction: out }}\n"
        ),
    );
    let (code, stderr) = run_arachne(dir.path(), &spec, &[("REDIS_URL", &redis.url)]);
    assert_eq!(code, 0, "{stderr}");
    let mut events = Vec::new();
    let mut items = 0;
    while let Ok(msg) = pubsub.get_message() {
        let payload: Value = serde_json::from_slice(msg.get_payload_bytes()).expect("JSON payload");
        if msg.get_channel_name() == channel {
            events.push(payload);
        } else {
            assert!(payload["title"].is_string(), "{payload}");
            items += 1;
        }
    }
    assert_eq!(items, 40, "every item published");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"robots_blocked"), "{events:?}");
    assert!(kinds.contains(&"page_failed"), "{events:?}");
}

#[actix::test]
async fn inbound_bridge_publishes_on_a_local_topic() {
    let Some(redis) = test_redis("inbound_bridge_publishes_on_a_local_topic") else { return };
    let broker = RedisBroker::new(&redis.url).expect("broker");
    let bus = Bus::new();
    let topic: Topic<ChannelMessage> = bus.topic("remote.events").expect("topic");
    let sub = topic.subscribe(64, Overflow::Block);
    let channel = unique("in");
    let bridge = PubSubBridge::inbound(&broker, PubSubOptions::channel(&channel), topic.clone());
    let counters = bridge.counters();
    let _addr = bridge.start();
    let glob = format!("{}.*", unique("pat"));
    let pattern_topic: Topic<ChannelMessage> = bus.topic("remote.pattern").expect("topic");
    let pattern_sub = pattern_topic.subscribe(64, Overflow::Block);
    let pattern_bridge = PubSubBridge::inbound(&broker, PubSubOptions::pattern(&glob), pattern_topic);
    let pattern_counters = pattern_bridge.counters();
    let _pattern_addr = pattern_bridge.start();
    wait_until_async("subscribed", || counters.is_connected() && pattern_counters.is_connected()).await;

    assert_eq!(publish(&redis.url, &channel, r#"{"event":"hello","n":1}"#), 1);
    assert_eq!(publish(&redis.url, &channel, "plain text"), 1);
    let first = recv(&sub).await;
    assert_eq!(first.channel, channel);
    assert_eq!(first.payload, json!({"event": "hello", "n": 1}));
    assert_eq!(first.pattern, None);
    assert_eq!(recv(&sub).await.payload, json!("plain text"));

    let concrete = glob.replace('*', "a.b");
    publish(&redis.url, &concrete, "[1,2]");
    let m = recv(&pattern_sub).await;
    assert_eq!(
        (m.channel.as_str(), m.pattern.as_deref(), &m.payload),
        (concrete.as_str(), Some(glob.as_str()), &json!([1, 2]))
    );
    assert_eq!(counters.forwarded.load(Ordering::Relaxed), 2);
}

async fn recv(sub: &Subscription<ChannelMessage>) -> ChannelMessage {
    let m = tokio::time::timeout(WAIT, sub.recv()).await.expect("a message in time").expect("topic open");
    (*m).clone()
}

#[actix::test]
async fn inbound_bridge_survives_client_kill_and_a_hung_server() {
    let Some(server) = own_server("inbound_bridge_survives_client_kill_and_a_hung_server", &[]) else {
        return;
    };
    let url = server.url();
    let broker = RedisBroker::new(&url).expect("broker").with_connect_timeout(Duration::from_millis(500));
    let topic: Topic<ChannelMessage> = Topic::new("remote");
    let sub = topic.subscribe(64, Overflow::Block);
    let every = Duration::from_millis(300);
    let bridge =
        PubSubBridge::inbound(&broker, PubSubOptions::channel("alerts").health_check_interval(every), topic);
    let c = bridge.counters();
    let _addr = bridge.start();
    wait_until_async("subscribed", || c.is_connected()).await;
    publish(&url, "alerts", "1");
    assert_eq!(recv(&sub).await.payload, json!(1));

    // The server closes the subscriber's connection: noticed, resubscribed.
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut conn(&url)).expect("KILL");
    assert_eq!(killed, 1);
    wait_until_async("resubscribed after CLIENT KILL", || {
        c.reconnects.load(Ordering::Relaxed) == 1 && c.is_connected()
    })
    .await;
    assert_eq!(c.disconnects.load(Ordering::Relaxed), 1);
    wait_until_async("NUMSUB back to 1", || numsub(&url, "alerts") == 1).await;
    publish(&url, "alerts", "2");
    assert_eq!(recv(&sub).await.payload, json!(2));

    // A hung server closes nothing: only the heartbeat (PING unanswered) can tell.
    server.signal("STOP");
    let hung = Instant::now();
    wait_until_async("heartbeat notices the hang", || c.health_checks_failed.load(Ordering::Relaxed) >= 1)
        .await;
    let noticed = hung.elapsed();
    assert!(noticed <= every * 2 + Duration::from_millis(400), "noticed after {noticed:?}");
    assert!(!c.is_connected());
    server.signal("CONT");
    wait_until_async("resubscribed after the hang", || {
        c.reconnects.load(Ordering::Relaxed) >= 2 && c.is_connected()
    })
    .await;
    wait_until_async("one subscriber", || numsub(&url, "alerts") >= 1).await;
    publish(&url, "alerts", "3");
    // The old connection may still deliver "3" too once the server runs again; take the
    // first that arrives.
    assert_eq!(recv(&sub).await.payload, json!(3));
}

#[actix::test]
async fn outbound_bridge_counts_what_it_drops_while_redis_is_down() {
    let Some(mut server) = own_server("outbound_bridge_counts_what_it_drops_while_redis_is_down", &[]) else {
        return;
    };
    let url = server.url();
    let broker = RedisBroker::new(&url).expect("broker").with_connect_timeout(Duration::from_millis(500));
    let topic: Topic<Value> = Topic::new("local.out");
    let bridge = PubSubBridge::outbound_json(
        &broker,
        PubSubOptions::channel("out").health_check_interval(Duration::from_millis(200)),
        &topic,
    );
    let c = bridge.counters();
    let _addr = bridge.start();
    wait_until_async("connected", || c.is_connected()).await;

    let (tx, rx) = mpsc::channel::<String>();
    let listen_url = url.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listening = done.clone();
    let listener = std::thread::spawn(move || {
        // Re-subscribes across the restart; ends when the test sets `done`.
        while !listening.load(Ordering::Relaxed) {
            let Ok(client) = redis::Client::open(listen_url.as_str()) else { return };
            let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let mut ps = con.as_pubsub();
            if ps.subscribe("out").is_err() || ps.set_read_timeout(Some(Duration::from_millis(200))).is_err()
            {
                continue;
            }
            if tx.send("subscribed".into()).is_err() {
                return;
            }
            while !listening.load(Ordering::Relaxed) {
                match ps.get_message() {
                    Ok(m) => {
                        if tx.send(String::from_utf8_lossy(m.get_payload_bytes()).into_owned()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => continue,
                    Err(_) => break,
                }
            }
        }
    });
    assert_eq!(next_line(&rx).await, "subscribed");
    topic.publish(json!({"n": 1})).await;
    assert_eq!(next_line(&rx).await, r#"{"n":1}"#);

    let mut restart = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    });
    // While it is down (or coming back) the messages are dropped and counted.
    let mut sent = 1;
    let server = loop {
        sent += 1;
        topic.publish(json!({"n": sent})).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(done) = tokio::time::timeout(Duration::from_millis(1), &mut restart).await {
            break done.expect("restart");
        }
    };
    wait_until_async("reconnected", || c.reconnects.load(Ordering::Relaxed) >= 1 && c.is_connected()).await;
    wait_until_async("a dead connection was noticed", || c.disconnects.load(Ordering::Relaxed) >= 1).await;
    loop {
        // Skip what arrived before the restart and the listener's re-subscription.
        if next_line(&rx).await == "subscribed" {
            break;
        }
    }
    topic.publish(json!({"n": "after"})).await;
    let got = loop {
        let m = next_line(&rx).await;
        if m.contains("after") {
            break m;
        }
    };
    assert_eq!(got, r#"{"n":"after"}"#);
    // The subscriber may see the last message before the bridge has read PUBLISH's reply
    // and counted it: wait (bounded) for the count to settle, then check it exactly.
    let counted = || c.forwarded.load(Ordering::Relaxed) + c.undelivered.load(Ordering::Relaxed);
    wait_until_async("the last message counted", || counted() > sent).await;
    let forwarded = c.forwarded.load(Ordering::Relaxed);
    let undelivered = c.undelivered.load(Ordering::Relaxed);
    assert!(undelivered >= 1, "some messages were published while Redis was down");
    assert_eq!(forwarded + undelivered, sent + 1, "every message is either carried or counted");
    done.store(true, Ordering::Relaxed);
    drop(server);
    let _ = listener.join();
}

/// The listener thread's next line, without blocking the actor system's thread.
async fn next_line(rx: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        match rx.try_recv() {
            Ok(line) => return line,
            Err(mpsc::TryRecvError::Disconnected) => panic!("the listener thread ended"),
            Err(mpsc::TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "timed out waiting for the listener");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A user actor that forwards a bus topic to a channel of the test.
struct Forward {
    sub: Option<Subscription<ChannelMessage>>,
    tx: mpsc::Sender<ChannelMessage>,
}

impl Actor for Forward {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(sub) = self.sub.take() {
            ctx.add_stream(sub.into_stream());
        }
    }
}

impl Supervised for Forward {}

impl StreamHandler<Arc<ChannelMessage>> for Forward {
    fn handle(&mut self, m: Arc<ChannelMessage>, _: &mut Context<Self>) {
        let _ = self.tx.send((*m).clone());
    }
}

#[test]
fn runtime_runs_spec_bridges_and_embedded_handlers() {
    let Some(redis) = test_redis("runtime_runs_spec_bridges_and_embedded_handlers") else { return };
    let spec_channel = unique("spec-in");
    let handler_channel = unique("handler");
    let text = format!(
        r#"
name: {name}
seeds: ["http://127.0.0.1:1/"]
output: []
brokers: {{ redis: {{ url: "{url}" }} }}
bridges:
  - {{ kind: redis-pubsub, topic: remote.in, channel: "{spec_channel}", direction: in, health_check_interval: 1s }}
schedules:
  - {{ name: keepalive, every: 1h, publish: {{ topic: ticks }} }}
"#,
        name = unique("rt"),
        url = redis.url,
    );
    let spec = arachne::spec::load_str(&text, "test.yaml", arachne::spec::NO_OVERRIDES).expect("spec");
    let broker = RedisBroker::new(&redis.url).expect("broker");
    let (handled_tx, handled) = mpsc::channel();
    let (forward_tx, forwarded) = mpsc::channel();
    let bound = handler_channel.clone();
    let builder = Runtime::builder(spec)
        .actor("alerts", move |_bus| {
            Ok(broker.on_message(bound.as_str(), move |m: ChannelMessage| {
                let _ = handled_tx.send(m);
            }))
        })
        .actor("forward", move |bus: &Bus| {
            Ok(Forward {
                sub: Some(bus.topic::<ChannelMessage>("remote.in")?.subscribe(16, Overflow::Block)),
                tx: forward_tx,
            })
        });
    let stop = builder.stop_handle();
    let run = std::thread::spawn(move || builder.run());
    wait_until("the spec's bridge and the handler subscribed", || {
        numsub(&redis.url, &spec_channel) == 1 && numsub(&redis.url, &handler_channel) == 1
    });
    publish(&redis.url, &spec_channel, r#"{"cmd":"pause"}"#);
    publish(&redis.url, &handler_channel, "ping me");
    let m = forwarded.recv_timeout(WAIT).expect("the spec bridge's message");
    assert_eq!((m.channel.as_str(), &m.payload), (spec_channel.as_str(), &json!({"cmd": "pause"})));
    let m = handled.recv_timeout(WAIT).expect("the handler's message");
    assert_eq!((m.channel.as_str(), &m.payload), (handler_channel.as_str(), &json!("ping me")));
    stop.stop();
    run.join().expect("run thread").expect("run ok");
}

#[test]
fn tls_with_a_private_ca_and_a_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = support::tls::tls_files(dir.path());
    let tls_port = free_port();
    let (cert_s, key_s, ca_s, port_s) = (
        cert.display().to_string(),
        key.display().to_string(),
        ca.display().to_string(),
        tls_port.to_string(),
    );
    let Some(_server) = own_server(
        "tls_with_a_private_ca_and_a_password",
        &[
            "--tls-port",
            &port_s,
            "--tls-cert-file",
            &cert_s,
            "--tls-key-file",
            &key_s,
            "--tls-ca-cert-file",
            &ca_s,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
        ],
    ) else {
        return;
    };
    let name = unique("tls");
    let url = format!("rediss://:${{REDIS_PW}}@127.0.0.1:{tls_port}/");
    let broker = format!("brokers:\n  redis: {{ url: \"{url}\", ca_file: \"{ca_s}\" }}\n");
    let spec = format!(
        "name: {name}\nsandbox: {{ pages: 30 }}\nseeds: [\"{{sandbox}}/\"]\n{broker}\
         parse:\n  items:\n    - {{ name: p, match: \"/item/\", fields: {{ title: h1 }} }}\n\
         output:\n  - redis: {{ key: \"{name}:items\" }}\n"
    );
    let (code, stderr) = run_arachne(dir.path(), &spec, &[("REDIS_PW", "s3cret")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("s3cret"), "the password is never printed: {stderr}");
    let tls = RedisBroker::with_ca(&format!("rediss://:s3cret@127.0.0.1:{tls_port}/"), &ca).expect("broker");
    let mut c = tls.blocking_connection().expect("TLS connection with the CA");
    let n: u64 = redis::cmd("LLEN").arg(format!("{name}:items")).query(&mut c).expect("LLEN");
    assert_eq!(n, 30, "every item arrived over TLS");

    // Without the CA the server's certificate is not trusted: a clear error before crawling.
    let untrusted = spec.replace(&format!(", ca_file: \"{ca_s}\""), "");
    let (code, stderr) = run_arachne(dir.path(), &untrusted, &[("REDIS_PW", "s3cret")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("TLS") || stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
