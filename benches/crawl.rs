//! End-to-end crawl throughput: `arachne run` on the sandbox shop, beside the sandbox
//! server's own ceiling measured with wrk, in one run.
//!
//! `cargo bench --bench crawl` (a plain binary: prints its figures, no harness). It
//! 1. starts `arachne sandbox --pages N` as a separate process (the crawler's CPU never
//!    includes the server's),
//! 2. measures the server's ceiling with `wrk -t1 -c64` over many item and category URLs,
//! 3. crawls a fresh server with `arachne run` (the release binary) as a child process, once
//!    per concurrency, and takes its wall time, CPU time (user + sys) and peak RSS from
//!    `wait4`'s rusage,
//! 4. checks the crawl's summary against [`arachne::sandbox::truth`] (pages and items must
//!    match exactly) and that the server answered no page twice.
//!
//! Environment:
//! - `ARACHNE_BENCH_PAGES=N`: item pages of the site (default 20000).
//! - `ARACHNE_BENCH_CONCURRENCY=64,16`: one crawl per value, in order (`fetch.concurrency`
//!   and `fetch.per_host.concurrency`); repeat a value to crawl it twice.
//! - `ARACHNE_BENCH_WRK_SECS=S`: how long wrk runs (default 5; 0 skips it).
//! - `ARACHNE_BENCH_DASHBOARD=1`: the dashboard's cost. Each concurrency is crawled four
//!   times, A B A B: A without the dashboard, B with `--dashboard` and a client polling
//!   `/api/status` and `/metrics` every second; then the means of A and B are compared.
//!
//! `cargo test --all-targets` runs this binary too, without `--bench`: then it is a smoke
//! test (500 pages, concurrency 64, no wrk, the debug binary) that only checks the counts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use arachne::sandbox::{truth, SandboxOptions};

/// The `arachne` binary cargo built beside this bench (release under `cargo bench`).
const ARACHNE: &str = env!("CARGO_BIN_EXE_arachne");

/// What the design aims at (docs/performance.md, DESIGN.md "Speed").
const GOAL_PAGES_PER_CPU_S: f64 = 12_000.0;
const GOAL_PEAK_RSS_MB: f64 = 35.0;

/// A crawl still running after this long has stalled.
const CRAWL_TIMEOUT: Duration = Duration::from_secs(600);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crawl bench FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Config {
    full: bool,
    pages: u32,
    concurrency: Vec<u32>,
    wrk_secs: u32,
    dashboard: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
        let full = std::env::args().skip(1).any(|a| a == "--bench");
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let parse = |name: &str, v: &str| -> Result<u32> {
            v.trim().parse().map_err(|_| format!("{name}: `{v}` is not a whole number"))
        };
        if !full {
            return Ok(Config { full, pages: 500, concurrency: vec![64], wrk_secs: 0, dashboard: false });
        }
        let pages = match env("ARACHNE_BENCH_PAGES") {
            Some(v) => parse("ARACHNE_BENCH_PAGES", &v)?,
            None => 20_000,
        };
        let concurrency = match env("ARACHNE_BENCH_CONCURRENCY") {
            Some(v) => {
                v.split(',').map(|c| parse("ARACHNE_BENCH_CONCURRENCY", c)).collect::<Result<Vec<u32>>>()?
            }
            None => vec![64, 16],
        };
        if pages == 0 || concurrency.is_empty() || concurrency.contains(&0) {
            return Err("pages and every concurrency must be at least 1".into());
        }
        let wrk_secs = match env("ARACHNE_BENCH_WRK_SECS") {
            Some(v) => parse("ARACHNE_BENCH_WRK_SECS", &v)?,
            None => 5,
        };
        let dashboard = env("ARACHNE_BENCH_DASHBOARD").is_some_and(|v| v != "0");
        Ok(Config { full, pages, concurrency, wrk_secs, dashboard })
    }
}

fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    if !cfg.full {
        eprintln!(
            "crawl bench: smoke run ({} pages, no wrk; `cargo bench --bench crawl` measures)",
            cfg.pages
        );
    } else {
        println!("arachne binary: {ARACHNE}");
        if !Path::new(ARACHNE).components().any(|c| c.as_os_str() == "release") {
            return Err(format!("{ARACHNE} is not a release build: run `cargo bench --bench crawl`"));
        }
        println!(
            "machine: {} logical CPUs, {}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu_model()
        );
    }
    let truth = truth(&SandboxOptions { pages: cfg.pages, traps: false }, 20);

    let ceiling = if cfg.wrk_secs > 0 {
        let server = Sandbox::start(cfg.pages, dir.path())?;
        let ceiling = wrk_ceiling(&server, cfg.pages, cfg.wrk_secs, dir.path())?;
        println!(
            "server ceiling (wrk -t1 -c64 -d{}s, item + category pages): {:.0} req/s",
            cfg.wrk_secs, ceiling
        );
        Some(ceiling)
    } else {
        None
    };

    let mut runs = Vec::new();
    // A B A B with the dashboard's cost measured; otherwise each concurrency once.
    let modes: &[bool] = if cfg.dashboard { &[false, true, false, true] } else { &[false] };
    for (i, &concurrency) in cfg.concurrency.iter().enumerate() {
        let mut pair: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
        for (j, &dashboard) in modes.iter().enumerate() {
            // A fresh server for each crawl: its repeat counter must see this crawl only.
            let server = Sandbox::start(cfg.pages, dir.path())?;
            let run_dir = dir.path().join(format!("run-{i}-{j}"));
            std::fs::create_dir_all(&run_dir).map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
            let m = crawl(&server, concurrency, &run_dir, dashboard)?;
            check(&m, &truth, &server)?;
            print_run(&cfg, &m, ceiling);
            if dashboard {
                pair[1].push(m);
            } else {
                pair[0].push(m);
            }
        }
        if cfg.dashboard {
            print_dashboard_cost(concurrency, &pair);
        }
        runs.extend(pair.into_iter().flatten());
    }
    if cfg.full {
        println!();
        println!(
            "goal (DESIGN.md): {GOAL_PAGES_PER_CPU_S:.0} pages per CPU-second, under {GOAL_PEAK_RSS_MB:.0} MB"
        );
        for m in &runs {
            println!(
                "  concurrency {:>3}: {:.0} pages per CPU-second = {:.2} of the goal; peak RSS {:.1} MB",
                m.concurrency,
                m.pages_per_cpu_s(),
                m.pages_per_cpu_s() / GOAL_PAGES_PER_CPU_S,
                m.peak_rss_mb
            );
        }
    } else {
        eprintln!("crawl bench: smoke run ok");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The sandbox server, as a child process.

/// `arachne sandbox` running as a child; killed (and reaped) on drop, failure or not.
struct Sandbox {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sandbox {
    fn start(pages: u32, dir: &Path) -> Result<Sandbox> {
        let port = free_port()?;
        let log = dir.join(format!("sandbox-{port}.log"));
        let stderr = std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = Command::new(ARACHNE)
            .args(["sandbox", "--pages", &pages.to_string(), "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting `{ARACHNE} sandbox`: {e}"))?;
        let mut server = Sandbox { child, port, log };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the sandbox exited ({status}) before answering: {}", self.log_text()));
            }
            // Not `/`: the server would count the crawl's own fetch of it as a repeat.
            if let Ok((200, _)) = http_get(self.port, "/_sandbox/stats.json") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the sandbox did not answer within 30 s: {}", self.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default().trim().to_string()
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's CPU time so far (user + sys), from /proc (Linux).
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (hz > 0).then(|| ticks as f64 / hz as f64)
    }

    fn stats(&self) -> Result<serde_json::Value> {
        let (status, body) = http_get(self.port, "/_sandbox/stats.json")?;
        if status != 200 {
            return Err(format!("/_sandbox/stats.json answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("/_sandbox/stats.json: {e}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then let go).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding 127.0.0.1:0: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("reading the bound port: {e}"))
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status and the body.
fn http_get(port: u16, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("sending: {e}"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| format!("reading: {e}"))?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "no end of the response head".to_string())?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in `{}`", head.lines().next().unwrap_or("")))?;
    Ok((status, response[head_end + 4..].to_vec()))
}

// ---------------------------------------------------------------------------------------
// The server's ceiling, with wrk.

/// The sandbox's category slugs, in its order (src/sandbox/mod.rs).
const CATEGORIES: [&str; 10] =
    ["books", "music", "garden", "kitchen", "toys", "outdoor", "office", "lighting", "textiles", "tools"];

/// A wrk script that walks the site's pages as a crawl sees them: item pages in a scattered
/// order, and one category page in 20 (the site has ~1 listing page per 20 items).
fn wrk_script(pages: u32) -> String {
    let cats = (pages.div_ceil(20)).clamp(1, 10) as usize;
    let per_cat_pages = (pages as usize / cats / 20).max(1);
    let slugs: Vec<String> = CATEGORIES[..cats].iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"-- Rotates over item and category pages so the server is not answering one page.
local pages = {pages}
local cats = {{ {slugs} }}
local per_cat = {per_cat_pages}
local i = 0
request = function()
  i = i + 1
  local path
  if i % 20 == 0 then
    local j = math.floor(i / 20)
    path = "/category/" .. cats[(j % #cats) + 1] .. "?page=" .. ((math.floor(j / #cats) % per_cat) + 1)
  else
    path = "/item/" .. (((i * 7919) % pages) + 1)
  end
  return wrk.format("GET", path)
end
"#,
        slugs = slugs.join(", ")
    )
}

fn wrk_ceiling(server: &Sandbox, pages: u32, secs: u32, dir: &Path) -> Result<f64> {
    let script = dir.join("rotate.lua");
    std::fs::write(&script, wrk_script(pages)).map_err(|e| format!("writing {}: {e}", script.display()))?;
    let output = Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{secs}s"), "-s"])
        .arg(&script)
        .arg(format!("{}/", server.base_url()))
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("`wrk` is not installed: `apt-get install wrk` (or set ARACHNE_BENCH_WRK_SECS=0 \
                        to skip the server's ceiling)"
                .into())
        }
        Err(e) => return Err(format!("running wrk: {e}")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for bad in ["Non-2xx or 3xx responses", "Socket errors"] {
        if let Some(line) = text.lines().find(|l| l.contains(bad)) {
            return Err(format!("wrk saw errors: {}\n{text}", line.trim()));
        }
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no `Requests/sec:` in wrk's output:\n{text}"))
}

// ---------------------------------------------------------------------------------------
// The crawl.

struct Measured {
    concurrency: u32,
    pages_fetched: u64,
    pages_failed: u64,
    items: u64,
    item_lines: u64,
    /// Body bytes received.
    bytes: u64,
    /// The crawler's own `elapsed_s`.
    elapsed_s: f64,
    /// Spawn to exit of the `arachne run` process.
    wall_s: f64,
    user_s: f64,
    sys_s: f64,
    peak_rss_mb: f64,
    /// Voluntary + involuntary context switches of the crawler.
    context_switches: u64,
    /// The server's CPU during the crawl.
    server_cpu_s: Option<f64>,
    /// The whole machine's busy CPU during the crawl (every process).
    machine_busy_s: Option<f64>,
    /// Crawled with the dashboard on (and polled).
    dashboard: bool,
    /// Polls of the dashboard answered during the crawl.
    polls: u64,
}

impl Measured {
    fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
    fn pages_per_s(&self) -> f64 {
        self.pages_fetched as f64 / self.wall_s
    }
    fn pages_per_cpu_s(&self) -> f64 {
        self.pages_fetched as f64 / self.cpu_s()
    }
}

fn spec_yaml(base: &str, concurrency: u32, items: &Path) -> String {
    format!(
        r#"name: bench
seeds: ["{base}/"]
scope:
  max_depth: 20
fetch:
  concurrency: {concurrency}
  per_host: {{ concurrency: {concurrency} }}
  robots_txt: obey
parse:
  follow: ["a[href]"]
  items:
    - name: product
      match: "/item/\\d+$"
      fields:
        title: "h1"
        price: ".price"
        rating: ".rating"
output:
  - jsonl: "{items}"
"#,
        items = items.display()
    )
}

/// A client of the dashboard on `port`: GETs `/api/status` and `/metrics` every second
/// until `stop`; returns how many polls were answered.
fn poll_dashboard(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut answered = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let started = Instant::now();
            let ok =
                ["/api/status", "/metrics"].iter().all(|p| http_get(port, p).is_ok_and(|(s, _)| s == 200));
            answered += u64::from(ok);
            while started.elapsed() < Duration::from_secs(1)
                && !stop.load(std::sync::atomic::Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        answered
    })
}

/// The means of the runs without (A) and with (B) the dashboard, and B's cost.
fn print_dashboard_cost(concurrency: u32, pair: &[Vec<Measured>; 2]) {
    let mean =
        |runs: &[Measured], f: fn(&Measured) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    let (a, b) = (&pair[0], &pair[1]);
    let rate = (mean(a, Measured::pages_per_s), mean(b, Measured::pages_per_s));
    let cpu = (
        mean(a, |m| 1000.0 * m.cpu_s() / m.pages_fetched as f64),
        mean(b, |m| 1000.0 * m.cpu_s() / m.pages_fetched as f64),
    );
    let polls: u64 = b.iter().map(|m| m.polls).sum();
    println!();
    println!("dashboard cost, concurrency {concurrency} (A B A B; B polled {polls} times, once a second):");
    for (label, runs) in [("A without", a), ("B with   ", b)] {
        let each: Vec<String> = runs.iter().map(|m| format!("{:.0}", m.pages_per_s())).collect();
        println!("  {label}: pages/s {}", each.join(", "));
    }
    println!(
        "  pages/s: A {:.0}, B {:.0} ({:+.1}%); CPU-s per 1,000 pages: A {:.3}, B {:.3} ({:+.1}%)",
        rate.0,
        rate.1,
        100.0 * (rate.1 / rate.0 - 1.0),
        cpu.0,
        cpu.1,
        100.0 * (cpu.1 / cpu.0 - 1.0)
    );
}

fn crawl(server: &Sandbox, concurrency: u32, dir: &Path, dashboard: bool) -> Result<Measured> {
    let spec = dir.join("crawl.yaml");
    let summary_path = dir.join("summary.json");
    let items_path = dir.join("items.jsonl");
    let log = dir.join("crawl.log");
    std::fs::write(&spec, spec_yaml(&server.base_url(), concurrency, &items_path))
        .map_err(|e| format!("writing {}: {e}", spec.display()))?;
    let stderr = std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let server_cpu_before = server.cpu_seconds();
    let machine_before = machine_busy_seconds();

    let started = Instant::now();
    let mut command = Command::new(ARACHNE);
    command.arg("run").arg(&spec).arg("--summary-json").arg(&summary_path).arg("--quiet");
    let port = free_port()?;
    if dashboard {
        command.args(["--dashboard", &format!("127.0.0.1:{port}")]);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting `{ARACHNE} run`: {e}"))?;
    let poller = dashboard.then(|| poll_dashboard(port, stop.clone()));
    let waited = wait4(&child);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let polls = poller.and_then(|p| p.join().ok()).unwrap_or(0);
    let (status, usage) = waited?;
    let wall_s = started.elapsed().as_secs_f64();
    let server_cpu_s = server_cpu_before.zip(server.cpu_seconds()).map(|(a, b)| b - a);
    let machine_busy_s = machine_before.zip(machine_busy_seconds()).map(|(a, b)| b - a);

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("`arachne run` ended with wait status {status:#x}:\n{log_text}"));
    }
    let summary: serde_json::Value = std::fs::read(&summary_path)
        .map_err(|e| format!("reading {}: {e}", summary_path.display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", summary_path.display())))?;
    let field = |name: &str| -> Result<u64> {
        summary[name].as_u64().ok_or_else(|| format!("the summary has no `{name}`: {summary}"))
    };
    let item_lines = std::fs::read(&items_path)
        .map_err(|e| format!("reading {}: {e}", items_path.display()))?
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(Measured {
        concurrency,
        pages_fetched: field("pages_fetched")?,
        pages_failed: field("pages_failed")?,
        items: field("items")?,
        item_lines,
        bytes: field("bytes")?,
        elapsed_s: summary["elapsed_s"].as_f64().unwrap_or(f64::NAN),
        wall_s,
        user_s: secs(usage.ru_utime),
        sys_s: secs(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        context_switches: (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
        server_cpu_s,
        machine_busy_s,
        dashboard,
        polls,
    })
}

/// Waits for `child` with `wait4`: its wait status and its own resource usage. A crawl that
/// has not ended after [`CRAWL_TIMEOUT`] is killed (a stall fails the bench, not hangs it).
fn wait4(child: &Child) -> Result<(libc::c_int, libc::rusage)> {
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + CRAWL_TIMEOUT;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: `pid` is our own unreaped child; both pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            if killed {
                return Err(format!("`arachne run` stalled: killed after {CRAWL_TIMEOUT:?}"));
            }
            return Ok((status, usage));
        }
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("wait4({pid}): {err}"));
            }
        }
        if !killed && Instant::now() > deadline {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn check(m: &Measured, truth: &arachne::sandbox::Truth, server: &Sandbox) -> Result<()> {
    let mut wrong = Vec::new();
    if m.pages_fetched != truth.pages_fetched {
        wrong.push(format!("pages_fetched {} (truth {})", m.pages_fetched, truth.pages_fetched));
    }
    if m.items != truth.items {
        wrong.push(format!("items {} (truth {})", m.items, truth.items));
    }
    if m.pages_failed != truth.pages_failed {
        wrong.push(format!("pages_failed {} (truth {})", m.pages_failed, truth.pages_failed));
    }
    if m.item_lines != truth.items {
        wrong.push(format!("{} lines in items.jsonl (truth {} items)", m.item_lines, truth.items));
    }
    let stats = server.stats()?;
    let repeated = stats["repeated_ok"].as_u64().unwrap_or(u64::MAX);
    if repeated != 0 {
        wrong.push(format!("the server answered {repeated} pages twice: {}", stats["repeated_ok_paths"]));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the crawl at concurrency {} does not match the truth: {}",
            m.concurrency,
            wrong.join("; ")
        ))
    }
}

fn print_run(cfg: &Config, m: &Measured, ceiling: Option<f64>) {
    println!();
    println!(
        "crawl, concurrency {} (per host {}), {} item pages{}:",
        m.concurrency,
        m.concurrency,
        cfg.pages,
        if m.dashboard { ", dashboard on and polled every second" } else { "" }
    );
    println!(
        "  pages fetched {}, items {} (= truth), failed {}; {:.1} MiB of bodies ({:.1} KiB a page)",
        m.pages_fetched,
        m.items,
        m.pages_failed,
        m.bytes as f64 / 1048576.0,
        m.bytes as f64 / 1024.0 / m.pages_fetched as f64
    );
    println!("  wall {:.2} s (the crawler's own elapsed_s {:.2} s)", m.wall_s, m.elapsed_s);
    match ceiling {
        Some(c) => println!(
            "  crawl {:.0} pages/s; server ceiling {:.0} req/s; crawl/ceiling {:.2}",
            m.pages_per_s(),
            c,
            m.pages_per_s() / c
        ),
        None => println!("  crawl {:.0} pages/s", m.pages_per_s()),
    }
    println!(
        "  crawler CPU {:.2} s (user {:.2} + sys {:.2}) = {:.1}% of one core; {:.3} CPU-s per 1,000 pages; \
         {:.0} pages per CPU-second",
        m.cpu_s(),
        m.user_s,
        m.sys_s,
        100.0 * m.cpu_s() / m.wall_s,
        1000.0 * m.cpu_s() / m.pages_fetched as f64,
        m.pages_per_cpu_s()
    );
    if let Some(s) = m.server_cpu_s {
        println!(
            "  server CPU during the crawl {s:.2} s ({:.3} CPU-s per 1,000 pages)",
            1000.0 * s / m.pages_fetched as f64
        );
    }
    if let Some(busy) = m.machine_busy_s {
        let others = busy - m.cpu_s() - m.server_cpu_s.unwrap_or(0.0);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        println!(
            "  machine busy {:.2} of {:.2} CPU-s during the crawl; other processes {:.2} CPU-s{}",
            busy,
            cores * m.wall_s,
            others.max(0.0),
            if others > 0.1 * m.wall_s { " (not a quiet machine: wall-clock figures suffer)" } else { "" }
        );
    }
    println!(
        "  crawler peak RSS {:.1} MB (MiB, ru_maxrss); {:.2} context switches a page",
        m.peak_rss_mb,
        m.context_switches as f64 / m.pages_fetched as f64
    );
}

/// CPU-seconds every process of the machine has been busy (not idle or iowait), from
/// /proc/stat (Linux).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu.split_ascii_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 =
        ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| busy as f64 / hz as f64)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
