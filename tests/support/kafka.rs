//! The Kafka-protocol broker of the tests (tansu).
//!
//! Which broker: `ARACHNE_TEST_KAFKA` (the bootstrap address; scripts/test.sh starts tansu
//! with scripts/kafka.sh and sets it, with `ARACHNE_TEST_TANSU`, the broker's binary).
//! Without it, under `CI` a test fails; elsewhere it starts its own tansu from
//! `target/kafka/tansu` (`scripts/kafka.sh start` fetches it), or is skipped loudly.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A tansu broker this test started; killed (and reaped) on drop.
pub struct OwnBroker {
    child: Child,
    /// Its bootstrap address (`127.0.0.1:<advertised port>`).
    pub bootstrap: String,
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tansu binary: `ARACHNE_TEST_TANSU`, or `target/kafka/tansu`.
pub fn tansu_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ARACHNE_TEST_TANSU") {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kafka/tansu");
    local.exists().then_some(local)
}

/// Starts tansu listening on `port`, advertising `advertised` (a proxy's port, or `port`).
pub fn start_broker(port: u16, advertised: u16) -> OwnBroker {
    let binary = tansu_binary().expect("tansu binary (scripts/kafka.sh start fetches it)");
    let child = Command::new(binary)
        .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{advertised}")])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tansu");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    OwnBroker { child, bootstrap: format!("127.0.0.1:{advertised}") }
}

/// The bootstrap address of the suite's broker, or of one of this test's own; `None` (the
/// test is skipped, loudly) when there is none and this is not CI.
pub enum TestKafka {
    /// The suite's broker (`ARACHNE_TEST_KAFKA`).
    Shared(String),
    /// One this test started.
    Own(OwnBroker),
}

impl TestKafka {
    /// Its bootstrap address.
    pub fn bootstrap(&self) -> &str {
        match self {
            TestKafka::Shared(b) => b,
            TestKafka::Own(o) => &o.bootstrap,
        }
    }
}

pub fn test_kafka(test: &str) -> Option<TestKafka> {
    if let Ok(bootstrap) = std::env::var("ARACHNE_TEST_KAFKA") {
        return Some(TestKafka::Shared(bootstrap));
    }
    if tansu_binary().is_some() {
        let port = free_port();
        return Some(TestKafka::Own(start_broker(port, port)));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: no Kafka broker under CI (ARACHNE_TEST_KAFKA is not set; scripts/test.sh sets it)"
    );
    eprintln!("SKIPPED {test}: no Kafka broker (run scripts/test.sh, or scripts/kafka.sh start)");
    None
}
