//! spider-rs doing its best job on one site: concurrency 64, robots.txt ignored, no delay,
//! the visited set in memory (run it with `SPIDER_RESPECT_CONCURRENCY_UNDER_LOAD=1` and
//! `LINKS_VISITED_MEMORY_LIMIT=100000000`, as `run.sh` does). Writes `{"url", "title"}` per
//! page as JSONL to the file named by the second argument.
//!
//! Usage: `spider-crawl <start url> <out.jsonl>`

use std::io::Write;

use spider::website::Website;
use tokio::sync::broadcast::error::RecvError;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(start), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: spider-crawl <start url> <out.jsonl>");
        std::process::exit(2);
    };
    let mut website = Website::new(&start)
        .with_respect_robots_txt(false)
        .with_concurrency_limit(Some(64))
        .with_delay(0)
        .build()
        .unwrap_or_else(|_| {
            eprintln!("spider-crawl: {start}: not a URL spider can crawl");
            std::process::exit(2);
        });
    // A small buffer: tokio's broadcast ring keeps the last `capacity` pages alive, so a
    // big one would count pages held for nothing in spider's peak RSS. The guard makes the
    // crawl wait for the writer (spider's own way to receive every page); a page lost
    // anyway fails this program (256 lost 225 of the Rust docs' pages on a quiet machine).
    let mut rx = website.subscribe(1024);
    let mut guard = website.subscribe_guard();
    let writer = tokio::spawn(async move {
        let file = std::fs::File::create(&out).unwrap_or_else(|e| {
            eprintln!("spider-crawl: {out}: {e}");
            std::process::exit(1);
        });
        let mut file = std::io::BufWriter::new(file);
        let (mut pages, mut lost) = (0u64, 0u64);
        loop {
            match rx.recv().await {
                Ok(page) => {
                    let html = page.get_html();
                    let title = title_of(&html);
                    let _ = writeln!(file, "{{\"url\":{:?},\"title\":{:?}}}", page.get_url(), title);
                    pages += 1;
                    if let Some(g) = guard.as_mut() {
                        g.inc();
                    }
                }
                Err(RecvError::Lagged(n)) => lost += n,
                Err(RecvError::Closed) => break,
            }
        }
        let _ = file.flush();
        (pages, lost)
    });
    website.crawl().await;
    website.unsubscribe();
    let (pages, lost) = writer.await.unwrap_or((0, 0));
    eprintln!("spider-crawl: {pages} pages");
    if lost > 0 {
        eprintln!("spider-crawl: {lost} pages lost by the subscription (too slow a writer)");
        std::process::exit(1);
    }
}

/// The text of the first `<title>`, as a crawler that wants titles would take it.
fn title_of(html: &str) -> &str {
    let Some(open) = html.find("<title") else { return "" };
    let Some(gt) = html[open..].find('>') else { return "" };
    let start = open + gt + 1;
    let end = html[start..].find("</title>").map_or(html.len(), |e| start + e);
    html[start..end].trim()
}
