//! The synthetic site of the peer bench, written to a folder: `index.html` and 20,000 pages
//! of about 11.7 KiB (`s/DD/pN.html`, 100 pages a folder), each with 8 to 12 links mixing
//! absolute (`http://host/s/..`), root-relative, relative, `../` and fragment forms. Every
//! page is reachable from `index.html` within 8 hops (page `i` links to `4i+1..4i+4`), the
//! other links are pseudo-random (a fixed xorshift seed), so the site is the same on every
//! run and machine.
//!
//! Usage: `gen-site <folder> <base url, e.g. http://127.0.0.1:8080> [pages]`

use std::fmt::Write as _;
use std::path::Path;

const PAGES: usize = 20_000;
const PER_FOLDER: usize = 100;
/// The page size aimed at, in bytes (11.7 KiB).
const PAGE_BYTES: usize = 11_980;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn folder(i: usize) -> usize {
    i / PER_FOLDER
}

/// A link from page `from` to page `to`, in the form `form` picks.
fn href(base: &str, from: usize, to: usize, form: usize, rng: &mut Rng) -> String {
    let (fd, td) = (folder(from), folder(to));
    match form % 5 {
        0 => format!("{base}/s/{td:03}/p{to}.html"),
        1 => format!("/s/{td:03}/p{to}.html"),
        2 if fd == td => format!("p{to}.html"),
        2 | 3 => format!("../{td:03}/p{to}.html"),
        _ => format!("/s/{td:03}/p{to}.html#sec{}", rng.below(9)),
    }
}

fn page(base: &str, i: usize, pages: usize, rng: &mut Rng) -> String {
    let mut targets: Vec<usize> = (4 * i + 1..=4 * i + 4).filter(|&c| c < pages).collect();
    let want = 8 + rng.below(5);
    while targets.len() < want {
        targets.push(rng.below(pages));
    }
    let mut html = String::with_capacity(PAGE_BYTES + 512);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page {i}</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><header><a href=\"#main\">Skip</a> \
         <a href=\"/index.html\">Home</a></header>\n<main id=\"main\"><h1>Page {i}</h1>\n<nav><ul>\n"
    );
    // "#main" and "/index.html" above are two of the page's links.
    for (k, &t) in targets.iter().enumerate().take(want - 2) {
        let form = rng.below(5) + k;
        let _ = writeln!(html, "<li><a href=\"{}\">Page {t}</a></li>", href(base, i, t, form, rng));
    }
    html.push_str("</ul></nav>\n");
    let words = ["lorem", "ipsum", "dolor", "sit", "amet", "crawl", "spider", "page", "link", "text"];
    let mut para = 0;
    while html.len() < PAGE_BYTES - 40 {
        let _ = write!(html, "<p id=\"sec{para}\">");
        for _ in 0..60 {
            html.push_str(words[rng.below(words.len())]);
            html.push(' ');
        }
        html.push_str("</p>\n");
        para += 1;
    }
    html.truncate(html.len().min(PAGE_BYTES - 40));
    if let Some(cut) = html.rfind("</p>") {
        html.truncate(cut + 4);
    }
    html.push_str("\n</main></body></html>\n");
    html
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(base)) = (args.next(), args.next()) else {
        eprintln!("usage: gen-site <folder> <base url> [pages]");
        std::process::exit(2);
    };
    let pages = args.next().and_then(|p| p.parse().ok()).unwrap_or(PAGES);
    let base = base.trim_end_matches('/');
    let dir = Path::new(&dir);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let write = |path: &Path, body: &str| {
        if let Err(e) =
            std::fs::create_dir_all(path.parent().unwrap_or(dir)).and_then(|()| std::fs::write(path, body))
        {
            eprintln!("gen-site: {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let index: String =
        (0..4.min(pages)).map(|t| format!("<li><a href=\"/s/000/p{t}.html\">Page {t}</a></li>\n")).collect();
    write(
        &dir.join("index.html"),
        &format!("<!DOCTYPE html>\n<html><head><title>Index</title></head><body><h1>Index</h1><ul>\n{index}</ul></body></html>\n"),
    );
    let mut bytes = 0;
    for i in 0..pages {
        let html = page(base, i, pages, &mut rng);
        bytes += html.len();
        write(&dir.join(format!("s/{:03}/p{i}.html", folder(i))), &html);
    }
    eprintln!(
        "gen-site: {} pages + index.html, {:.1} KiB a page on average",
        pages,
        bytes as f64 / pages as f64 / 1024.0
    );
}
