//! Runs each example of examples/ and checks that it exits with status 0: every example
//! asserts its own outcome and returns an error when it does not hold.
//!
//! `cargo test --all-targets` builds the examples beside the `arachne` binary
//! (`target/<profile>/examples/<name>`); when one is missing (`cargo test --test examples`
//! builds no example), it is built here with `cargo build --example <name>`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// An example that runs longer than this is killed and fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What `cargo test` sets for a test process besides `CARGO_PKG_*` (`CARGO` is kept: it
/// is the cargo to run).
const CARGO_TEST_VARS: [&str; 6] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_BIN_NAME",
];

/// The example's binary, built if it is missing.
fn example_binary(name: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_arachne"));
    let profile_dir = bin.parent().expect("the arachne binary is in a directory");
    let path = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name]).current_dir(env!("CARGO_MANIFEST_DIR"));
        // Without the variables `cargo test` sets for this test: build scripts that watch
        // them (ring's watches CARGO_MANIFEST_DIR) would rebuild, here and in the next
        // plain build of the shared target directory.
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy().into_owned();
            if var.starts_with("CARGO_PKG_") || CARGO_TEST_VARS.contains(&var.as_str()) {
                build.env_remove(var);
            }
        }
        if profile_dir.file_name().is_some_and(|d| d == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build --example {name}: {status}");
        assert!(path.exists(), "cargo build --example {name} made no {}", path.display());
    }
    path
}

/// Reads a child's pipe to its end on a thread (so a chatty child never blocks on it).
fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Runs the example to its end (killed after [`TIMEOUT`]) and asserts it succeeded.
fn run_example(name: &str) {
    let path = example_binary(name);
    let started = Instant::now();
    let mut child = Command::new(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let elapsed = started.elapsed();
    match status {
        None => panic!("{name} did not finish within {TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        Some(status) => {
            assert!(status.success(), "{name} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}")
        }
    }
    eprintln!("{name}: {:.2}s\n{stdout}", elapsed.as_secs_f64());
}

#[test]
fn embed_custom_parser() {
    run_example("embed_custom_parser");
}

#[test]
fn pubsub_patterns() {
    run_example("pubsub_patterns");
}

#[test]
fn periodic_recrawl() {
    run_example("periodic_recrawl");
}

#[test]
fn custom_actor() {
    run_example("custom_actor");
}

#[test]
fn embed_tokio() {
    run_example("embed_tokio");
}
