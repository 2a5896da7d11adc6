//! Supervision and durability end to end, through the `arachne` binary: injected panics
//! change nothing in the output, poison pages are dead-lettered, a crash loop ends the run
//! with a clear error, and a crawl killed with SIGKILL resumes with every item exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arachne::sandbox::{truth, SandboxOptions, SandboxServer};
use serde_json::Value;

fn arachne() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arachne"))
}

const RULES: &str = r#"
parse:
  items:
    - name: product
      match: "/item/\\d+$"
      fields: { title: "h1", price: ".price" }
output:
  - jsonl: items.jsonl
"#;

fn write_spec(dir: &Path, head: &str) -> std::path::PathBuf {
    let path = dir.join("crawl.yaml");
    std::fs::write(&path, format!("{head}{RULES}")).expect("write spec");
    path
}

struct Outcome {
    code: i32,
    summary: Value,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Outcome {
    let out = arachne()
        .args(["run", "crawl.yaml", "--quiet", "--summary-json", "summary.json"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run arachne");
    let summary = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(dir.join("summary.json"));
    Outcome {
        code: out.status.code().unwrap_or(-1),
        summary,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Item URLs in the output, asserting each appears once.
fn item_urls_once(dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("items.jsonl")).expect("items.jsonl");
    let mut urls = BTreeSet::new();
    for line in text.lines() {
        let item: Value = serde_json::from_str(line).expect("whole JSON lines");
        let url = item["url"].as_str().expect("url").to_string();
        assert!(urls.insert(url.clone()), "item {url} written twice");
    }
    urls
}

fn sandbox_head(pages: u32, extra: &str) -> String {
    format!("name: rel\nsandbox: {{ pages: {pages} }}\nseeds: [\"{{sandbox}}/\"]\n{extra}")
}

#[test]
fn chaos_panics_leave_the_items_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = sandbox_head(2000, "fetch: { concurrency: 16, per_host: { concurrency: 16 } }\n");
    write_spec(dir.path(), &head);
    // The default supervision settings: sporadic faults are the messages' business.
    let out = run(dir.path(), &["--chaos", "parser-panic=0.05,fetcher-panic=0.02,seed=7"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want = truth(&SandboxOptions { pages: 2000, traps: false }, 20);
    assert!(out.summary["restarts"].as_u64().unwrap_or(0) > 0, "{}", out.summary);
    assert_eq!(out.summary["items"], want.items, "{}", out.summary);
    assert_eq!(out.summary["dead_letters"], 0, "{}", out.summary);
    assert_eq!(item_urls_once(dir.path()).len() as u64, want.items);
}

#[test]
fn poison_pages_are_dead_lettered_and_the_crawl_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), &sandbox_head(200, ""));
    let out = run(dir.path(), &["--chaos", "poison=/item/1[0-9]$"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary["dead_letters"], 10, "{}", out.summary);
    let dead = std::fs::read_to_string(dir.path().join("dead_letters.jsonl")).expect("dead_letters.jsonl");
    let dead: Vec<Value> = dead.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(dead.len(), 10);
    assert!(dead
        .iter()
        .all(|d| d["url"].as_str().is_some_and(|u| u.contains("/item/1")) && d["reason"].is_string()));
    let items = item_urls_once(dir.path());
    assert_eq!(items.len(), 190);
    assert!(items.iter().all(|u| !regex_like_poison(u)));
}

fn regex_like_poison(url: &str) -> bool {
    url.rsplit('/').next().is_some_and(|n| n.len() == 2 && n.starts_with('1'))
}

/// With the default supervision: the one seed is dead-lettered after `max_deliveries`, and
/// the run, having crawled nothing, fails naming the actor and its panic.
#[test]
fn a_crash_loop_ends_the_run_naming_the_actor() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), &sandbox_head(50, ""));
    let out = run(dir.path(), &["--chaos", "parser-panic=1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was crawled"), "{}", out.stderr);
    assert!(out.stderr.contains("actor 'parser-"), "{}", out.stderr);
    assert!(out.stderr.contains("injected parser panic"), "{}", out.stderr);
}

/// With the default supervision and many pages to fail on, the crash loop escalates
/// within seconds, and the error counts the restarts of each actor.
#[test]
fn a_crash_loop_escalates_with_the_restarts_of_each_actor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seeds: Vec<String> = (0..30).map(|i| format!("\"{{sandbox}}/item/{i}\"")).collect();
    let head = format!("name: loop\nsandbox: {{ pages: 50 }}\nseeds: [{}]\n", seeds.join(", "));
    write_spec(dir.path(), &head);
    let started = Instant::now();
    let out = run(dir.path(), &["--chaos", "parser-panic=1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let line = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default().to_string();
    assert!(line.contains("more than 10 restarts within 60s in supervisor 'root' (parser-"), "{line}");
    assert!(line.contains("the last: actor 'parser-"), "{line}");
    let counted: u32 = line
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_default()
        .split(", ")
        .filter_map(|c| c.split_once(" ×").and_then(|(_, n)| n.parse::<u32>().ok()))
        .sum();
    assert_eq!(counted, 11, "{line}");
    assert!(started.elapsed() < Duration::from_secs(30), "escalated promptly");
}

#[test]
fn a_run_whose_seeds_all_fail_exits_1_and_a_partial_failure_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let head = format!("name: refused\nseeds: [\"http://127.0.0.1:{closed}/\"]\nfetch: {{ retries: 0 }}\n");
    write_spec(dir.path(), &head);
    let out = run(dir.path(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was crawled"), "{}", out.stderr);
    assert!(out.stderr.contains("1 failed (connect ×1)"), "{}", out.stderr);

    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: false }, 0).expect("sandbox");
    let head = format!(
        "name: partial\nseeds: [\"http://127.0.0.1:{closed}/\", \"{}/\"]\nfetch: {{ retries: 0 }}\n",
        server.base_url()
    );
    write_spec(dir.path(), &head);
    let out = run(dir.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary["pages_failed"], 1, "{}", out.summary);
}

/// Starts `arachne run crawl.yaml --quiet --state-dir state` in `dir` three times and kills
/// each with SIGKILL at a random moment.
fn kill_three_times(dir: &Path) {
    let mut seed = Instant::now().elapsed().subsec_nanos() as u64 | 1;
    for kill in 0..3 {
        let mut child = arachne()
            .args(STATEFUL)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(150 + seed % 900);
        std::thread::sleep(after);
        let finished_early = child.try_wait().expect("try_wait").is_some();
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        eprintln!("kill {kill} after {after:?} (finished before: {finished_early})");
    }
}

const STATEFUL: [&str; 5] = ["run", "crawl.yaml", "--quiet", "--state-dir", "state"];

/// Runs the stateful command to its end; its exit code, summary and stderr.
fn run_stateful(dir: &Path) -> Outcome {
    run(dir, &STATEFUL[3..])
}

#[test]
fn sigkill_three_times_then_resume_writes_every_item_once() {
    let opts = SandboxOptions { pages: 2000, traps: false };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let head = format!(
        "name: kill\nseeds: [\"{}/\"]\nfetch: {{ concurrency: 4, per_host: {{ concurrency: 4 }} }}\n",
        server.base_url()
    );
    write_spec(dir.path(), &head);
    kill_three_times(dir.path());
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want = truth(&opts, 20);
    let urls = item_urls_once(dir.path());
    assert_eq!(urls.len() as u64, want.items, "every item exactly once");

    // A rerun after the crawl completed fetches nothing and writes nothing.
    let before = std::fs::read(dir.path().join("items.jsonl")).expect("items");
    let again = run_stateful(dir.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary["pages_fetched"], 0, "{}", again.summary);
    assert_eq!(std::fs::read(dir.path().join("items.jsonl")).expect("items"), before);
}

/// Killed while its backlog is spilled to `state/spill` (a tiny `frontier.memory`), a
/// `--state-dir` crawl resumes with every item exactly once: the spill files are only a
/// cache of what the state store holds, and the resume removes them and spills anew.
#[test]
fn sigkill_with_a_spilled_backlog_then_resume_writes_every_item_once() {
    let opts = SandboxOptions { pages: 3000, traps: false };
    let server = SandboxServer::start(opts.clone(), 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let head = format!(
        "name: spill\nseeds: [\"{}/\"]\nfrontier: {{ memory: 64KiB }}\nfetch: {{ concurrency: 2, per_host: {{ concurrency: 2 }} }}\n",
        server.base_url()
    );
    write_spec(dir.path(), &head);
    let spill = dir.path().join("state").join("spill");
    let mut child =
        arachne().args(STATEFUL).current_dir(dir.path()).stderr(Stdio::null()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let spilled = || std::fs::read_dir(&spill).map(|d| d.count()).unwrap_or(0) > 0;
    while !spilled() || std::fs::metadata(dir.path().join("items.jsonl")).map_or(0, |m| m.len()) == 0 {
        assert!(child.try_wait().expect("try_wait").is_none(), "the crawl ended before it spilled");
        assert!(Instant::now() < deadline, "the crawl never spilled");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1100)); // a commit or so later
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert!(spill.exists(), "a killed run cannot remove its spill directory");

    let out = run_stateful(dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want = truth(&opts, 20);
    assert_eq!(item_urls_once(dir.path()).len() as u64, want.items, "every item exactly once");
    assert!(!spill.exists(), "the resumed run removed the spill directory when it ended");
}

/// The README's kind of spec: a `sandbox:` started inside the run, on a free port. The
/// resumed run serves it on the port the saved URLs point to.
#[test]
fn sigkill_a_sandbox_spec_three_times_then_resume_writes_every_item_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = sandbox_head(2000, "fetch: { concurrency: 4, per_host: { concurrency: 4 } }\n");
    write_spec(dir.path(), &head);
    kill_three_times(dir.path());
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary["pages_failed"], 0, "{}", out.summary);
    let want = truth(&SandboxOptions { pages: 2000, traps: false }, 20);
    assert_eq!(item_urls_once(dir.path()).len() as u64, want.items, "every item exactly once");
}

/// A resume whose saved requests all fail (their site is gone) is an error, not a success.
#[test]
fn a_resume_whose_saved_work_all_fails_exits_1() {
    let server = SandboxServer::start(SandboxOptions { pages: 2000, traps: false }, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let head = format!(
        "name: gone\nseeds: [\"{}/\"]\nfetch: {{ concurrency: 2, per_host: {{ concurrency: 2 }}, retries: 0 }}\n",
        server.base_url()
    );
    write_spec(dir.path(), &head);
    let mut child =
        arachne().args(STATEFUL).current_dir(dir.path()).stderr(Stdio::null()).spawn().expect("spawn");
    // Killed once the state holds saved work: a few items are out.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(dir.path().join("items.jsonl")).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the crawl wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1200));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    drop(server);
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was crawled"), "{}", out.stderr);
}

/// A small tmpfs mounted at a directory (a disk that fills up for real), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts one of `size` at `path`; `None` (a loud skip) where this user may not mount,
    /// except under `CI`, which runs as root: there it must work.
    fn mount(path: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Tmpfs(path.to_path_buf()));
        }
        assert!(std::env::var_os("CI").is_none(), "{test}: cannot mount a tmpfs under CI (needs root)");
        eprintln!("\n*** SKIPPED {test}: cannot mount a tmpfs here (needs root) ***\n");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every line of `path` is a whole JSON object and the file ends with a newline.
fn assert_whole_lines(path: &Path) -> usize {
    let bytes = std::fs::read(path).expect("read output");
    assert!(bytes.is_empty() || bytes.ends_with(b"\n"), "torn last line in {}", path.display());
    let text = String::from_utf8(bytes).expect("utf-8");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line}"));
    }
    text.lines().count()
}

#[test]
fn a_full_disk_leaves_whole_lines_and_fails_naming_the_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_disk) = Tmpfs::mount(&dir.path().join("out"), "96k", "a_full_disk_leaves_whole_lines") else {
        return;
    };
    let head = sandbox_head(2000, "");
    std::fs::write(
        dir.path().join("crawl.yaml"),
        format!("{head}{}", RULES.replace("items.jsonl", "out/items.jsonl")),
    )
    .expect("spec");
    let out = run(dir.path(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("sink 'jsonl"), "{}", out.stderr);
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    assert!(assert_whole_lines(&dir.path().join("out/items.jsonl")) > 0);
}

/// The state store's disk fills up: the run stops and exits 1; moved to a disk with room,
/// the same command resumes from the last commit and writes every item exactly once.
#[test]
fn a_failing_state_store_ends_the_run_and_the_resume_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let disk = Tmpfs::mount(&state, "192k", "a_failing_state_store_ends_the_run");
    let Some(disk) = disk else { return };
    write_spec(dir.path(), &sandbox_head(2000, "fetch: { concurrency: 4, per_host: { concurrency: 4 } }\n"));
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("state could not be saved"), "{}", out.stderr);
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);

    let saved = std::fs::read(state.join("state.redb")).expect("state.redb");
    drop(disk);
    std::fs::write(state.join("state.redb"), saved).expect("move the state to a disk with room");
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want = truth(&SandboxOptions { pages: 2000, traps: false }, 20);
    assert_eq!(item_urls_once(dir.path()).len() as u64, want.items, "every item exactly once");
}

#[test]
fn a_corrupted_state_store_says_how_to_start_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), &sandbox_head(20, ""));
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    std::fs::write(dir.path().join("state/state.redb"), vec![0x5a; 8192]).expect("garbage");
    let out = run_stateful(dir.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("move the state directory away"), "{}", out.stderr);
}

/// Sends `sig` (e.g. `TERM`) to `child`.
fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
}

/// Starts a `--state-dir` crawl of the sandbox's slow page (5 s to answer) with `extra`
/// arguments; returns once the request is in flight.
fn crawl_the_slow_page(dir: &Path, server: &SandboxServer, extra: &[&str]) -> std::process::Child {
    let head = format!(
        "name: slow\nseeds: [\"{}/trap/slow\"]\nfetch: {{ timeout: 60s, robots_txt: ignore }}\n",
        server.base_url()
    );
    write_spec(dir, &head);
    let child = arachne()
        .args(STATEFUL)
        .args(["--summary-json", "summary.json"])
        .args(extra)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.stats().total_requests == 0 {
        assert!(Instant::now() < deadline, "the slow page was never requested");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// SIGTERM drains for the grace period, then cancels what is in flight: the request stays
/// pending in the state, and the next run fetches it.
#[test]
fn sigterm_cancels_what_is_in_flight_after_the_grace_period() {
    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: true }, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let child = crawl_the_slow_page(dir.path(), &server, &["--grace", "0s"]);
    signal(&child, "TERM");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["pages_fetched"], 0, "cancelled, not waited for: {summary}");
    let again = run_stateful(dir.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    let fetched = again.summary["pages_fetched"].as_u64().unwrap_or(0);
    assert!(fetched >= 1, "the cancelled request was kept: {}", again.summary);
}

/// A second SIGTERM stops at once, like a second Ctrl-C.
#[test]
fn a_second_sigterm_stops_at_once() {
    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: true }, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = crawl_the_slow_page(dir.path(), &server, &["--grace", "60s"]);
    signal(&child, "TERM");
    // Once the first is handled (two pending signals would merge into one).
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
        seen.push(line);
        if seen.last().is_some_and(|l| l.contains("SIGTERM: draining")) {
            signal(&child, "TERM");
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{}", seen.join("\n"));
}
