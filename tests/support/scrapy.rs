//! The real Scrapy + scrapy-redis spider (tests/scrapy/sandbox_spider.py) as a child
//! process, for the interop tests (tests/redis_scrapy.rs, tests/redis_cluster.rs).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arachne::sandbox::{SandboxServer, Truth};
use serde_json::Value;

use super::procs::{assert_truth_items, collect, no_page_twice, Arachne};

/// arachne (`a`) and the spider shared one crawl started at `started`: arachne ends with 0
/// within 90 s and the spider within 120 s, the spider logged no error, their items
/// together are exactly the truth's (none twice), no page was fetched twice, arachne read
/// every entry (no dead letters), and each did a part.
pub fn assert_joined_crawl(
    a: &mut Arachne,
    scrapy: &mut Scrapy,
    site: &SandboxServer,
    want: &Truth,
    started: Instant,
) {
    assert_eq!(a.wait(started + Duration::from_secs(90)), 0, "arachne:\n{}", a.stderr());
    assert_eq!(scrapy.wait(started + Duration::from_secs(120)), 0, "scrapy:\n{}", scrapy.log());
    assert_eq!(scrapy.errors(), 0, "Scrapy logged errors:\n{}", scrapy.log());

    let (ours, theirs) = (a.items(false), scrapy.items());
    let mut items = BTreeMap::new();
    collect(&mut items, &ours, true);
    collect(&mut items, &theirs, true);
    assert_truth_items(&items, want);
    no_page_twice(site);
    let summary = a.summary();
    assert_eq!(summary["dead_letters"].as_u64(), Some(0), "arachne read every pickle: {summary}");
    assert!(
        !ours.is_empty() && !theirs.is_empty(),
        "both did a part: arachne {}, Scrapy {}",
        ours.len(),
        theirs.len()
    );
    eprintln!("arachne wrote {} items, Scrapy {} ({:?})", ours.len(), theirs.len(), started.elapsed());
}

/// The venv's python, or `None` (skipped; a failure under CI).
pub fn scrapy_python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ARACHNE_TEST_SCRAPY_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: ARACHNE_TEST_SCRAPY_PYTHON is not set under CI: run scripts/test.sh (it installs Scrapy)")
        }
        None => {
            eprintln!(
                "\n*** SKIPPED {test}: ARACHNE_TEST_SCRAPY_PYTHON unset (scripts/scrapy.sh install, then export it)\n"
            );
            None
        }
    }
}

/// The scrapy-redis spider as a child process (log to `scrapy.log`, items to
/// `scrapy-items.jsonl` in `dir`); killed on drop.
pub struct Scrapy {
    dir: PathBuf,
    child: Option<Child>,
}

impl Scrapy {
    /// `extra`: more arguments of sandbox_spider.py (e.g. `--cluster`).
    pub fn spawn(
        python: &Path,
        dir: &Path,
        name: &str,
        redis_url: &str,
        start: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let spider = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scrapy/sandbox_spider.py");
        let log = fs::File::create(dir.join("scrapy.log")).expect("scrapy.log");
        let mut cmd = Command::new(python);
        cmd.arg(spider).args(["--name", name, "--redis", redis_url, "--out", "scrapy-items.jsonl"]);
        if let Some(start) = start {
            cmd.args(["--start", start]);
        }
        cmd.args(extra);
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the Scrapy spider");
        Scrapy { dir: dir.to_path_buf(), child: Some(child) }
    }

    pub fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.join("scrapy.log")).unwrap_or_default();
        let cut = text.len().saturating_sub(6000);
        let cut = (cut..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text[cut..].to_string()
    }

    /// Its exit code; panics (and the guard kills it) if it still runs at `deadline`.
    pub fn wait(&mut self, deadline: Instant) -> i32 {
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the Scrapy spider still runs at the deadline:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn items(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("scrapy-items.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("Scrapy wrote a bad line ({e}): {l}")))
            .collect()
    }

    /// Scrapy's own count of errors in its log (`log_count/ERROR`), 0 when none.
    pub fn errors(&self) -> u64 {
        let log = self.log();
        let Some(at) = log.find("'log_count/ERROR': ") else { return 0 };
        log[at + 19..].split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Scrapy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
