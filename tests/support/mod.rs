//! Redis helpers shared by the integration tests (`mod support;` in each test file).
//!
//! Which server: `ARACHNE_TEST_REDIS_URL` (scripts/test.sh starts one with
//! scripts/redis.sh and sets it). Without it, under `CI` the tests fail; elsewhere each
//! test starts its own `redis-server` on a free port when the binary is installed, and is
//! skipped with a loud message when it is not.
//!
//! Each test crate compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod kafka;
pub mod procs;
pub mod scrapy;
pub mod tls;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A redis-server this test started; killed (and reaped) on drop.
pub struct OwnServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl OwnServer {
    /// Starts one on a free port with `extra` arguments, or `None` when redis-server is not
    /// installed; returns once it answers PING.
    pub fn try_start(extra: &[&str]) -> Option<Self> {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut server = Self { child: None, port: free_port(), args };
        if server.launch() {
            Some(server)
        } else {
            None
        }
    }

    /// Like [`OwnServer::try_start`], but panics when redis-server cannot be spawned.
    pub fn start(extra: &[&str]) -> Self {
        Self::try_start(extra).expect("spawn redis-server")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Sends `kill -<sig>` (e.g. `STOP`, `CONT`) to it.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// SIGKILL (and reap): nothing but what the append-only file holds survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port, with its arguments; returns once it answers PING.
    pub fn start_again(&mut self) {
        assert!(self.launch(), "redis-server vanished");
    }

    /// Kills it and starts it again on the same port, with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// (Re)spawns it on its port, retrying while the port is not free yet, and waits until
    /// it answers; `false` when redis-server cannot be spawned at all.
    fn launch(&mut self) -> bool {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let Some(mut child) = spawn_server(self.port, &self.args) else { return false };
            std::thread::sleep(Duration::from_millis(100));
            if child.try_wait().ok().flatten().is_none() {
                self.child = Some(child);
                break;
            }
            // Exited at once (the port not free yet): try again.
            assert!(Instant::now() < deadline, "could not start redis-server on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_ready();
        true
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).expect("client");
        loop {
            let up = client.get_connection_with_timeout(Duration::from_millis(200)).is_ok_and(|mut c| {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
                // A server with a password answers NOAUTH: up all the same.
                pong.is_ok() || pong.is_err_and(|e| e.to_string().contains("NOAUTH"))
            });
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped (SIGSTOP) server: let it go on, then kill it.
            let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
        }
        self.kill();
    }
}

fn spawn_server(port: u16, extra: &[String]) -> Option<Child> {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""])
        .args(["--daemonize", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

pub fn redis_server_installed() -> bool {
    Command::new("redis-server").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Whether this test may start a redis-server of its own: panics under `CI` when there is
/// none, skips loudly elsewhere.
pub fn can_start_own(test: &str) -> bool {
    if redis_server_installed() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: redis-server is not installed under CI: run scripts/test.sh");
    }
    eprintln!(
        "\n*** SKIPPED {test}: no redis-server here and ARACHNE_TEST_REDIS_URL unset \
         (scripts/test.sh installs and starts one) ***\n"
    );
    false
}

/// A private server without persistence (fault tests); `None` (skip, loudly) only outside
/// CI when there is no redis-server.
pub fn own_server(test: &str, extra: &[&str]) -> Option<OwnServer> {
    if !can_start_own(test) {
        return None;
    }
    let args: Vec<&str> = ["--appendonly", "no"].into_iter().chain(extra.iter().copied()).collect();
    OwnServer::try_start(&args)
}

/// The Redis the tests share: `ARACHNE_TEST_REDIS_URL`, or a server of this test's own.
pub struct TestRedis {
    pub url: String,
    _own: Option<OwnServer>,
}

pub fn test_redis(test: &str) -> Option<TestRedis> {
    if let Ok(url) = std::env::var("ARACHNE_TEST_REDIS_URL") {
        if !url.is_empty() {
            return Some(TestRedis { url, _own: None });
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: ARACHNE_TEST_REDIS_URL is not set under CI: run scripts/test.sh (it starts redis-server)");
    }
    own_server(test, &[]).map(|s| TestRedis { url: s.url(), _own: Some(s) })
}

/// A name of its own (its own keys and channels on a shared server).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect to Redis")
}

/// A three-node Redis Cluster this test started (3 primaries, no replicas, each node's
/// files in a private folder): what scripts/redis-cluster.sh does. Killed on drop.
pub struct OwnCluster {
    nodes: Vec<OwnServer>,
    _dirs: Vec<tempfile::TempDir>,
}

impl OwnCluster {
    /// Starts the nodes, joins them with `redis-cli --cluster create` and waits (bounded)
    /// for `cluster_state:ok` on each; `None` when redis-server cannot be spawned.
    pub fn try_start() -> Option<Self> {
        Self::try_start_with(&["--appendonly", "no"])
    }

    /// [`OwnCluster::try_start`] with `extra` arguments for every node (e.g. persistence:
    /// `--appendonly yes --appendfsync always`, kept in each node's own folder).
    pub fn try_start_with(extra: &[&str]) -> Option<Self> {
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (bus, path) = (free_port().to_string(), dir.path().display().to_string());
            let mut args = extra.to_vec();
            args.extend([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus,
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                "--dir",
                &path,
            ]);
            nodes.push(OwnServer::try_start(&args)?);
            dirs.push(dir);
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let deadline = Instant::now() + Duration::from_secs(15);
        for node in &nodes {
            loop {
                let info: String =
                    redis::cmd("CLUSTER").arg("INFO").query(&mut conn(&node.url())).expect("CLUSTER INFO");
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "no cluster_state:ok on port {} within 15 s", node.port);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(Self { nodes, _dirs: dirs })
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(OwnServer::url).collect()
    }

    /// The node whose URL is `url` (to kill and restart it).
    pub fn node(&mut self, url: &str) -> &mut OwnServer {
        self.nodes.iter_mut().find(|n| n.url() == url).expect("a node of this cluster")
    }
}

/// The Redis Cluster the tests share: `ARACHNE_TEST_REDIS_CLUSTER` (comma-separated seed
/// URLs of every primary; scripts/test.sh starts one with scripts/redis-cluster.sh), or a
/// cluster of this test's own. Under `CI` a missing variable fails the test.
pub struct TestCluster {
    /// A URL per primary node.
    pub urls: Vec<String>,
    _own: Option<OwnCluster>,
}

pub fn test_redis_cluster(test: &str) -> Option<TestCluster> {
    if let Ok(urls) = std::env::var("ARACHNE_TEST_REDIS_CLUSTER") {
        let urls: Vec<String> =
            urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect();
        if !urls.is_empty() {
            return Some(TestCluster { urls, _own: None });
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: ARACHNE_TEST_REDIS_CLUSTER is not set under CI: run scripts/test.sh (it starts a \
             three-node Redis Cluster with scripts/redis-cluster.sh)"
        );
    }
    if !can_start_own(test) {
        return None;
    }
    let own = OwnCluster::try_start().expect("start a three-node Redis Cluster");
    Some(TestCluster { urls: own.urls(), _own: Some(own) })
}
