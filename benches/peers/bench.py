#!/usr/bin/env python3
"""The A/B driver of the peer bench (run it through run.sh, which builds and serves).

Runs arachne (A) and spider-rs (B) in turn, A B A B, on one site; takes each child's wall
time, CPU time (user + sys) and peak RSS from wait4's rusage; checks that both fetched the
pages they must; prints the medians and the A/B ratios, and appends them as JSON to --json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ARACHNE_SPEC = """name: peers
seeds: ["{seed}"]
scope: {{ max_depth: 1000 }}
fetch: {{ concurrency: 64, per_host: {{ concurrency: 64 }}, robots_txt: ignore, timeout: 60s }}
parse:
  items:
    - name: page
      match: "."
      fields: {{ title: title }}
output:
  - jsonl: items.jsonl
"""


def measure(cmd, cwd, env=None):
    """Runs cmd; returns (wall s, cpu s, peak RSS MiB, exit code) of the child alone."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def run_arachne(binary, seed, work):
    spec = os.path.join(work, "crawl.yaml")
    with open(spec, "w") as f:
        f.write(ARACHNE_SPEC.format(seed=seed))
    for name in ("items.jsonl", "summary.json"):
        if os.path.exists(os.path.join(work, name)):
            os.remove(os.path.join(work, name))
    wall, cpu, rss = measure([binary, "run", spec, "--summary-json", "summary.json", "--quiet"], work)
    with open(os.path.join(work, "summary.json")) as f:
        summary = json.load(f)
    if summary["pages_failed"]:
        sys.exit(f"arachne: {summary['pages_failed']} pages failed: {summary['errors']}")
    return wall, cpu, rss, summary["pages_fetched"]


def run_spider(binary, seed, work):
    out = os.path.join(work, "spider.jsonl")
    env = dict(os.environ, SPIDER_RESPECT_CONCURRENCY_UNDER_LOAD="1", LINKS_VISITED_MEMORY_LIMIT="100000000")
    wall, cpu, rss = measure([binary, seed, out], work, env)
    with open(out) as f:
        urls = {json.loads(line)["url"] for line in f if line.strip()}
    return wall, cpu, rss, len(urls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--arachne", required=True)
    ap.add_argument("--spider", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--expect", type=int, default=0, help="pages each crawler must fetch (0: the same number)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = {"arachne": [], "spider": []}
    with tempfile.TemporaryDirectory() as work:
        for i in range(a.pairs):
            for name, fn, binary in (("arachne", run_arachne, a.arachne), ("spider", run_spider, a.spider)):
                wall, cpu, rss, pages = fn(binary, a.seed, work)
                runs[name].append({"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "pages": pages})
                print(f"  {a.name} pair {i + 1} {name:8} {pages:6} pages  {wall:6.2f} s  {cpu:6.2f} CPU-s  "
                      f"{rss:6.1f} MiB  load {os.getloadavg()[0]:.1f}", flush=True)
    pages = {n: {r["pages"] for r in rs} for n, rs in runs.items()}
    problems = []
    for n, p in pages.items():
        if len(p) != 1:
            problems.append(f"{n} fetched a different number of pages from run to run: {sorted(p)}")
        if a.expect and p != {a.expect}:
            problems.append(f"{n} fetched {sorted(p)} pages, not {a.expect}")
    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "rss_mib", "pages")}
           for n, rs in runs.items()}
    # Per pair, then the median of the ratios: neighbours in time share the machine's load.
    pairs = list(zip(runs["arachne"], runs["spider"]))
    ratio = {
        "pages_per_s": statistics.median((x["pages"] / x["wall_s"]) / (y["pages"] / y["wall_s"]) for x, y in pairs),
        "pages_per_cpu_s": statistics.median((x["pages"] / x["cpu_s"]) / (y["pages"] / y["cpu_s"]) for x, y in pairs),
        "peak_rss": statistics.median(x["rss_mib"] / y["rss_mib"] for x, y in pairs),
    }
    print(f"{a.name}: medians of {a.pairs} A/B pairs")
    for n in ("arachne", "spider"):
        m = med[n]
        print(f"  {n:8} {m['pages']:7.0f} pages  {m['wall_s']:6.2f} s  {m['cpu_s']:6.2f} CPU-s  {m['rss_mib']:6.1f} MiB  "
              f"{m['pages'] / m['wall_s']:7.0f} pages/s  {m['pages'] / m['cpu_s']:7.0f} pages/CPU-s")
    print(f"  arachne / spider-rs: {ratio['pages_per_s']:.2f}x pages per second, "
          f"{ratio['pages_per_cpu_s']:.2f}x pages per CPU-second, {ratio['peak_rss']:.2f}x peak RSS")
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps({"name": a.name, "runs": runs, "medians": med, "ratios": ratio,
                                "problems": problems}) + "\n")
    for p in problems:
        print(f"  CHECK FAILED: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
