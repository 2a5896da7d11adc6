//! Memory as the crawl grows: what the seen-set costs a URL, what the local frontier takes
//! under `frontier.memory`, and the peak RSS of a crawl of a 1,000,000-page sandbox.
//!
//! `cargo bench --bench memory` (a plain binary: prints its figures, no harness). Every
//! measurement runs in a process of its own (this binary again, with `child ...`
//! arguments, or `arachne run`), so each peak RSS is its own:
//!
//! 1. **dedup**: N URLs (`ARACHNE_BENCH_DEDUP_URLS`, default 10,000,000) fingerprinted and
//!    inserted into the seen-set, then each looked up again and N more that were never
//!    inserted; for the `SeenSet` and for the `DashSet<Fingerprint>` it replaced. Prints the
//!    growth of the peak RSS over the process's RSS before the first insert, and ns per
//!    insert and lookup.
//!    (0 skips it.)
//! 2. **frontier**: a synthetic site of N pages on one host (`ARACHNE_BENCH_FRONTIER_PAGES`,
//!    default 1,000,000; each page links to 8 new pages and 2 earlier ones) crawled through
//!    the real `Frontier` (admit, next, finished; 64 in flight), once with the default
//!    `frontier.memory` and once with a budget so large nothing spills (the backlog all in
//!    memory, as before the spill). RSS is printed every 10 % of the pages (0 skips it).
//! 3. **crawl**: `arachne run` (the release binary) on `arachne sandbox --pages N`
//!    (`ARACHNE_BENCH_PAGES`, default 1,000,000; 0 skips it), concurrency 64, items to a jsonl
//!    file, once per `frontier.memory` in `ARACHNE_BENCH_CRAWL_MEMORY` (default: the default;
//!    e.g. `default,1024GiB`; `ARACHNE_BENCH_BIN` crawls with another binary). The crawler's RSS is read from /proc every 250 ms and printed
//!    every 10 % of the pages; the peak is `wait4`'s `ru_maxrss`. The summary must match
//!    `arachne::sandbox::truth` exactly.
//!
//! `cargo test --all-targets` runs this binary without `--bench`: a smoke test (100,000
//! URLs, 20,000 frontier pages under a 1 MiB budget, a 500-page crawl with the debug
//! binary) that checks the counts only.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arachne::crawl::frontier::{Frontier, Next, Scope};
use arachne::crawl::seen::SeenSet;
use arachne::crawl::urls::{self, Fingerprint, FingerprintBuildHasher};
use arachne::sandbox::{truth, SandboxOptions};
use arachne::spec::CrawlSpec;
use url::Url;

/// The `arachne` binary cargo built beside this bench, or `ARACHNE_BENCH_BIN`.
fn arachne_bin() -> String {
    std::env::var("ARACHNE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_arachne").to_string())
}
/// The goals (issue 14): peak RSS of a 1,000,000-page crawl, and of 10,000,000 URLs' dedup.
const GOAL_CRAWL_MIB: f64 = 40.0;
const GOAL_DEDUP_MB: f64 = 256.0;
const CRAWL_TIMEOUT: Duration = Duration::from_secs(3600);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        _ => run(args.iter().any(|a| a == "--bench")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memory bench FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => {
            v.trim().replace('_', "").parse().map_err(|_| format!("{name}: `{v}` is not a whole number"))
        }
        None => Ok(default),
    }
}

fn run(full: bool) -> Result<()> {
    let (dedup, pages, crawl) = if full {
        (
            env_u64("ARACHNE_BENCH_DEDUP_URLS", 10_000_000)?,
            env_u64("ARACHNE_BENCH_FRONTIER_PAGES", 1_000_000)?,
            env_u64("ARACHNE_BENCH_PAGES", 1_000_000)?,
        )
    } else {
        eprintln!("memory bench: smoke run (`cargo bench --bench memory` measures)");
        (100_000, 20_000, 500)
    };
    let bin = arachne_bin();
    if full && !Path::new(&bin).components().any(|c| c.as_os_str() == "release") {
        return Err(format!("{bin} is not a release build: run `cargo bench --bench memory`"));
    }
    println!("arachne binary: {bin}");
    println!("machine: {} logical CPUs; load average {}", cpus(), load_average());

    if dedup > 0 {
        println!("\n1. dedup of {dedup} URLs (goal: under {GOAL_DEDUP_MB:.0} MB)");
        for kind in ["seenset", "dashset"] {
            let out = child_process(&["dedup", kind, &dedup.to_string()])?;
            println!("  {out}");
        }
    }

    // The smoke run's budget is small enough for its 20,000 pages to spill.
    let budget = if full { arachne::spec::DEFAULT_FRONTIER_MEMORY } else { 1 << 20 };
    if pages > 0 {
        println!("\n2. synthetic frontier workload: {pages} pages on one host, 64 in flight");
        for memory in [budget, 1 << 40] {
            let out = child_process(&["frontier", &memory.to_string(), &pages.to_string()])?;
            println!("{out}");
        }
    }

    if crawl > 0 {
        let budgets = std::env::var("ARACHNE_BENCH_CRAWL_MEMORY").unwrap_or_else(|_| "default".into());
        println!("\n3. crawl of the sandbox, {crawl} item pages, concurrency 64 (goal: under {GOAL_CRAWL_MIB:.0} MiB)");
        for budget in budgets.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            crawl_sandbox(crawl as u32, budget, full)?;
        }
    }
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Runs this binary with `child args` and returns what it printed.
fn child_process(args: &[&str]) -> Result<String> {
    let me = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let out =
        Command::new(me).arg("child").args(args).output().map_err(|e| format!("running a child: {e}"))?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn child(args: &[String]) -> Result<()> {
    let arg = |i: usize| -> Result<u64> {
        args.get(i).and_then(|a| a.parse().ok()).ok_or_else(|| format!("child: bad arguments {args:?}"))
    };
    match args.first().map(String::as_str) {
        Some("dedup") => dedup(args.get(1).map(String::as_str).unwrap_or(""), arg(2)?),
        Some("frontier") => frontier(arg(1)?, arg(2)?),
        _ => Err(format!("child: unknown workload {args:?}")),
    }
}

/// The `i`th URL of the dedup workload: 100 hosts, paths and queries like a shop's.
fn dedup_url(i: u64, buf: &mut String) -> Fingerprint {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "https://shop{}.example.com/catalog/item/{i}?ref=list&page={}", i % 100, i % 977);
    match Url::parse(buf) {
        Ok(url) => urls::fingerprint(&url),
        Err(_) => Fingerprint(0),
    }
}

/// The two sets measured, behind one face.
trait Dedup {
    fn insert(&self, fp: Fingerprint) -> bool;
    fn contains(&self, fp: Fingerprint) -> bool;
}

impl Dedup for SeenSet {
    fn insert(&self, fp: Fingerprint) -> bool {
        SeenSet::insert(self, fp)
    }
    fn contains(&self, fp: Fingerprint) -> bool {
        SeenSet::contains(self, fp)
    }
}

impl Dedup for dashmap::DashSet<Fingerprint, FingerprintBuildHasher> {
    fn insert(&self, fp: Fingerprint) -> bool {
        dashmap::DashSet::insert(self, fp)
    }
    fn contains(&self, fp: Fingerprint) -> bool {
        dashmap::DashSet::contains(self, &fp)
    }
}

fn dedup(kind: &str, n: u64) -> Result<()> {
    let set: Box<dyn Dedup> = match kind {
        "seenset" => Box::new(SeenSet::new()),
        "dashset" => Box::new(dashmap::DashSet::<Fingerprint, FingerprintBuildHasher>::default()),
        _ => return Err(format!("unknown set {kind}")),
    };
    let mut buf = String::new();
    // The fingerprints are computed first (not measured), so the timings are the set's own.
    let fps: Vec<Fingerprint> = (0..n).map(|i| dedup_url(i, &mut buf)).collect();
    let absent: Vec<Fingerprint> = (n..2 * n).map(|i| dedup_url(i, &mut buf)).collect();
    let before = status_kib("self", "VmRSS").unwrap_or(0);
    let started = Instant::now();
    for fp in &fps {
        if !set.insert(*fp) {
            return Err(format!("{kind}: a new URL taken for a duplicate"));
        }
    }
    let insert_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let started = Instant::now();
    for (fp, new) in fps.iter().zip(&absent) {
        if !set.contains(*fp) || set.contains(*new) {
            return Err(format!("{kind}: a wrong answer"));
        }
    }
    let lookup_ns = started.elapsed().as_nanos() as f64 / (2 * n) as f64;
    let peak = status_kib("self", "VmHWM").unwrap_or(0);
    let grown = (peak.saturating_sub(before)) as f64 * 1024.0;
    println!(
        "{kind:<8}: peak RSS grew {:.1} MB ({:.1} MiB) = {:.1} bytes a URL; insert {insert_ns:.0} ns, lookup {lookup_ns:.0} ns",
        grown / 1e6,
        grown / 1048576.0,
        grown / n as f64,
    );
    drop(set);
    Ok(())
}

/// A spec for the synthetic site.
fn synthetic_spec(memory: u64) -> Result<CrawlSpec> {
    serde_json::from_value(serde_json::json!({
        "name": "memory", "seeds": ["http://127.0.0.1:8080/"],
        "fetch": {"robots_txt": "ignore", "concurrency": 64, "per_host": {"concurrency": 64}},
        "scope": {"max_depth": 1000},
        "frontier": {"memory": memory}
    }))
    .map_err(|e| format!("spec: {e}"))
}

fn page_url(i: u64) -> Result<Url> {
    Url::parse(&format!("http://127.0.0.1:8080/catalog/item/{i}")).map_err(|e| e.to_string())
}

fn frontier(memory: u64, pages: u64) -> Result<()> {
    let spec = synthetic_spec(memory)?;
    let seeds = vec![page_url(0)?];
    let scope = Scope::new(&spec, &seeds).map_err(|e| e.to_string())?;
    let mut f = Frontier::new(&spec, scope).map_err(|e| e.to_string())?;
    let before = status_kib("self", "VmRSS").unwrap_or(0);
    let started = Instant::now();
    f.admit(&seeds[0], 0, Vec::new());
    let mut in_flight: VecDeque<arachne::crawl::CrawlRequest> = VecDeque::new();
    let (mut done, mut rng) = (0u64, 0x9E37_79B9_7F4A_7C15u64);
    let label = if memory >= 1 << 40 {
        "no spill".to_string()
    } else {
        format!("frontier.memory {} MiB", memory >> 20)
    };
    println!("  {label}: RSS before {:.1} MiB", mib(before));
    loop {
        while in_flight.len() < 64 {
            match f.next(Instant::now()) {
                Next::Request(r) => in_flight.push_back(r),
                _ => break,
            }
        }
        let Some(page) = in_flight.pop_front() else { break };
        f.finished(&page.host, page.queue);
        let i: u64 = page.url.path().rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut links: Vec<u64> = (8 * i + 1..=8 * i + 8).filter(|c| *c < pages).collect();
        for _ in 0..2 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            links.push(rng % (i + 1));
        }
        for link in links {
            f.admit(&page_url(link)?, page.depth + 1, Vec::new());
        }
        done += 1;
        if done % (pages / 10).max(1) == 0 {
            println!(
                "    {done:>9} pages  RSS {:>6.1} MiB  frontier {:>6.1} MiB (seen-set {:>5.1})  queued {:>8}  spilled {:>6.1} MiB",
                mib(status_kib("self", "VmRSS").unwrap_or(0)),
                f.memory_bytes() as f64 / 1048576.0,
                f.seen().memory_bytes() as f64 / 1048576.0,
                f.queued(),
                f.spilled_bytes() as f64 / 1048576.0,
            );
        }
    }
    if done != pages {
        return Err(format!("{label}: {done} pages crawled, not {pages}"));
    }
    println!(
        "    peak RSS {:.1} MiB ({:.1} over the start), {:.1} s",
        mib(status_kib("self", "VmHWM").unwrap_or(0)),
        mib(status_kib("self", "VmHWM").unwrap_or(0).saturating_sub(before)),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `arachne sandbox` as a child, killed on drop.
struct Sandbox(Child, u16);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn sandbox_served(port: u16) -> Option<u64> {
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/_sandbox/stats.json")).ok()?;
    let stats: serde_json::Value = body.json().ok()?;
    stats["ok_responses"].as_u64()
}

fn start_sandbox(pages: u32) -> Result<Sandbox> {
    let port = free_port()?;
    let child = Command::new(arachne_bin())
        .args(["sandbox", "--pages", &pages.to_string(), "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    let server = Sandbox(child, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox_served(port).is_none() {
        if Instant::now() > deadline {
            return Err("the sandbox did not answer within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

fn crawl_sandbox(pages: u32, budget: &str, full: bool) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let server = start_sandbox(pages)?;
    let memory_line = if budget == "default" { String::new() } else { format!("  memory: {budget}\n") };
    let spec = format!(
        "name: memory\nseeds: [\"http://127.0.0.1:{}/\"]\nscope:\n  max_depth: 20\nfetch:\n  concurrency: 64\n  per_host: {{ concurrency: 64 }}\n  robots_txt: obey\nfrontier:\n  order: fifo\n{memory_line}parse:\n  follow: [\"a[href]\"]\n  items:\n    - name: product\n      match: \"/item/\\\\d+$\"\n      fields:\n        title: \"h1\"\n        price: \".price\"\n        rating: \".rating\"\noutput:\n  - jsonl: \"{}\"\n",
        server.1,
        dir.path().join("items.jsonl").display()
    );
    let spec_path = dir.path().join("crawl.yaml");
    std::fs::write(&spec_path, spec).map_err(|e| format!("writing the spec: {e}"))?;
    let summary_path = dir.path().join("summary.json");
    // The truth is computed after the crawl: Linux carries a process's peak RSS across
    // exec, so a child spawned while this process held the truth (~200 MB for 1,000,000
    // pages) would report that as its own `ru_maxrss`.
    let expected = u64::from(pages) + u64::from(pages) / 20 + 1;
    println!("  frontier.memory {budget}: ~{expected} pages to fetch; load average {}", load_average());
    let before_spawn = status_kib("self", "VmRSS").unwrap_or(0);
    let started = Instant::now();
    let child = Command::new(arachne_bin())
        .arg("run")
        .arg(&spec_path)
        .arg("--summary-json")
        .arg(&summary_path)
        .arg("--quiet")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting `arachne run`: {e}"))?;
    let pid = child.id().to_string();
    let (stop, samples) = sample_rss(pid, server.1, expected, full);
    let waited = wait4(&child);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_sampled = samples.join().unwrap_or(0);
    let (status, usage) = waited?;
    let wall = started.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("`arachne run` ended with wait status {status:#x}"));
    }
    let want = truth(&SandboxOptions { pages, traps: false }, 20);
    let summary: serde_json::Value = std::fs::read(&summary_path)
        .map_err(|e| format!("reading the summary: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("the summary: {e}")))?;
    let (fetched, items) = (summary["pages_fetched"].as_u64(), summary["items"].as_u64());
    if fetched != Some(want.pages_fetched) || items != Some(want.items) {
        return Err(format!(
            "pages {fetched:?} and items {items:?}, the truth is {} and {}",
            want.pages_fetched, want.items
        ));
    }
    let leftovers = std::fs::read_dir(dir.path())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("arachne-spill"))
                .count()
        })
        .unwrap_or(0);
    if leftovers > 0 {
        return Err("the crawl left its spill directory behind".into());
    }
    let peak_mib = usage.ru_maxrss as f64 / 1024.0;
    let cpu = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    println!(
        "    peak RSS {peak_mib:.1} MiB ({:.2} of the goal; highest sample {:.1} MiB; this bench had {:.1} MiB when it spawned the crawl); {} pages in {wall:.0} s, CPU {:.0} s; matches the truth",
        peak_mib / GOAL_CRAWL_MIB,
        mib(max_sampled),
        mib(before_spawn),
        want.pages_fetched,
        cpu(usage.ru_utime) + cpu(usage.ru_stime),
    );
    Ok(())
}

/// Reads the crawler's RSS every 250 ms, printing it at every 10 % of the pages the
/// server has answered; returns the highest sample.
fn sample_rss(
    pid: String,
    port: u16,
    pages: u64,
    print: bool,
) -> (Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = stop.clone();
    let handle = std::thread::spawn(move || {
        let (mut highest, mut next_mark, started) = (0, 1, Instant::now());
        while !done.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < CRAWL_TIMEOUT {
            let rss = status_kib(&pid, "VmRSS").unwrap_or(0);
            highest = highest.max(rss);
            if let Some(served) = sandbox_served(port) {
                if print && served * 10 >= next_mark * pages && next_mark <= 10 {
                    println!(
                        "    {served:>9} pages  {:>5.0} s  RSS {:>5.1} MiB",
                        started.elapsed().as_secs_f64(),
                        mib(rss)
                    );
                    next_mark = served * 10 / pages + 1;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        highest
    });
    (stop, handle)
}

fn wait4(child: &Child) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not yet reaped.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    Ok((status, usage))
}
