//! Extraction throughput: arachne's one-pass lol_html extractor vs scraper (html5ever
//! parse + select), on the same ~12 KiB page with 11 links and an item rule, in one run.
//!
//! `cargo bench --bench extract` (a plain binary: prints its figures, no harness).
//! `ARACHNE_BENCH_SECS=N` sets the time spent on each case (default 2 s);
//! `ARACHNE_BENCH_FILTER=text` runs only the cases whose label contains `text`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arachne::crawl::extract::RuleParser;
use arachne::spec::{ItemRule, ParseSpec};
use indexmap::IndexMap;
use url::Url;

/// A product page like the sandbox's: head with styles and a script, a nav of links, the
/// product, a description long enough to make ~12 KiB, a footer.
fn page(n: usize) -> String {
    let mut h = String::with_capacity(13 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str(&format!("<title>Book {n} &mdash; Demo shop</title>\n"));
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<style>body{font-family:sans-serif;margin:0 auto;max-width:60em}");
    h.push_str(".price{color:#c00;font-weight:bold}nav a{margin-right:1em}</style>\n");
    h.push_str(
        "<script>window.dataLayer=window.dataLayer||[];function g(){dataLayer.push(arguments)}</script>\n",
    );
    h.push_str("</head><body>\n<header><nav class=\"top\">");
    for (href, label) in
        [("/", "Home"), ("/c/fiction/", "Fiction"), ("/c/science/", "Science"), ("/about", "About")]
    {
        h.push_str(&format!("<a href=\"{href}\">{label}</a> "));
    }
    h.push_str("</nav></header>\n<main><article class=\"product\">\n");
    h.push_str(&format!("<h1 class=\"title\">The Book of Things, volume {n}</h1>\n"));
    h.push_str(&format!("<p class=\"price\">&pound;{}.{:02}</p>\n", 10 + n % 40, n % 100));
    h.push_str("<p class=\"stock\">In stock (7 available)</p>\n<div id=\"desc\">\n");
    let para = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
        incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
        exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure \
        dolor in <em>reprehenderit</em> in voluptate velit esse cillum dolore eu fugiat nulla \
        pariatur &amp; excepteur sint occaecat cupidatat non proident.</p>\n";
    while h.len() < 10 * 1024 {
        h.push_str(para);
    }
    h.push_str("</div>\n<table class=\"info\"><tr><th>UPC</th><td>a897fe39b1053632</td></tr>");
    h.push_str("<tr><th>Type</th><td>Books</td></tr></table>\n");
    h.push_str(&format!("<a class=\"more\" href=\"/p/{}?ref=more&amp;x=1\">More like this</a>\n", n + 1));
    h.push_str("</article>\n<aside><ul class=\"related\">");
    for k in 1..=5 {
        h.push_str(&format!("<li><a href=\"../p/{}\">Related {k}</a></li>", n + k * 7));
    }
    h.push_str("</ul></aside></main>\n<footer><a href=\"/contact#form\">Contact</a> ");
    h.push_str("<span>&copy; 2026 Demo shop</span></footer>\n</body></html>\n");
    while h.len() < 12 * 1024 {
        h.push_str("<!-- padding -->\n");
    }
    h
}

fn spec() -> ParseSpec {
    let mut fields = IndexMap::new();
    fields.insert("title".to_string(), "h1".to_string());
    fields.insert("price".to_string(), ".price".to_string());
    fields.insert("more".to_string(), "a.more @href".to_string());
    fields.insert("stock".to_string(), ".stock".to_string());
    ParseSpec {
        follow: vec!["a[href]".to_string()],
        items: vec![ItemRule { name: "book".into(), matches: "/p/".into(), fields }],
    }
}

/// scraper's equivalent: parse the whole document, then select links and fields.
struct ScraperRef {
    follow: scraper::Selector,
    fields: Vec<(String, scraper::Selector, Option<String>)>,
}

impl ScraperRef {
    fn new() -> Self {
        let sel = |s: &str| scraper::Selector::parse(s).expect("selector");
        Self {
            follow: sel("a[href]"),
            fields: vec![
                ("title".into(), sel("h1"), None),
                ("price".into(), sel(".price"), None),
                ("more".into(), sel("a.more"), Some("href".into())),
                ("stock".into(), sel(".stock"), None),
            ],
        }
    }

    fn extract(&self, page_url: &Url, html: &str) -> (Vec<Url>, serde_json::Map<String, serde_json::Value>) {
        let doc = scraper::Html::parse_document(html);
        let mut links: Vec<Url> = Vec::new();
        for el in doc.select(&self.follow) {
            if let Some(h) = el.value().attr("href") {
                if let Ok(mut u) = page_url.join(h.trim()) {
                    arachne::crawl::urls::normalize(&mut u);
                    if !links.contains(&u) {
                        links.push(u);
                    }
                }
            }
        }
        let mut fields = serde_json::Map::new();
        for (name, sel, attr) in &self.fields {
            let v = match doc.select(sel).next() {
                None => serde_json::Value::Null,
                Some(el) => match attr {
                    Some(a) => el.value().attr(a).map_or(serde_json::Value::Null, |v| {
                        serde_json::Value::String(
                            page_url.join(v).map_or_else(|_| v.to_string(), String::from),
                        )
                    }),
                    None => {
                        let t: String = el.text().collect();
                        serde_json::Value::String(t.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
                    }
                },
            };
            fields.insert(name.clone(), v);
        }
        (links, fields)
    }
}

struct Figures {
    us_per_page: f64,
    mb_per_s: f64,
}

fn run(label: &str, secs: f64, pages: &[(Url, String)], mut f: impl FnMut(&Url, &str)) -> Figures {
    // `ARACHNE_BENCH_FILTER=text` runs only the cases whose label contains `text` (for perf).
    if let Ok(filter) = std::env::var("ARACHNE_BENCH_FILTER") {
        if !label.contains(&filter) {
            return Figures { us_per_page: f64::NAN, mb_per_s: f64::NAN };
        }
    }
    // Warm up.
    for (u, h) in pages.iter().cycle().take(200) {
        f(u, h);
    }
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while start.elapsed() < budget {
        for (u, h) in pages {
            f(u, h);
            bytes += h.len() as u64;
        }
        n += pages.len() as u64;
    }
    let el = start.elapsed().as_secs_f64();
    let fig = Figures { us_per_page: el * 1e6 / n as f64, mb_per_s: bytes as f64 / el / 1e6 };
    println!(
        "{label:<44} {:>9.2} µs/page {:>9.1} MB/s {:>10.0} pages/s",
        fig.us_per_page,
        fig.mb_per_s,
        1e6 / fig.us_per_page
    );
    fig
}

fn main() {
    let secs: f64 = std::env::var("ARACHNE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let product: Vec<(Url, String)> = (0..64)
        .map(|n| (Url::parse(&format!("http://127.0.0.1:8080/p/{n}")).expect("url"), page(n)))
        .collect();
    let listing: Vec<(Url, String)> = (0..64)
        .map(|n| (Url::parse(&format!("http://127.0.0.1:8080/c/{n}")).expect("url"), page(n)))
        .collect();
    let avg = product.iter().map(|(_, h)| h.len()).sum::<usize>() / product.len();
    let parser = RuleParser::new(&spec()).expect("spec compiles");
    let sample = parser.extract(&product[0].0, &product[0].1);
    println!(
        "page: {avg} bytes, {} links, items: {}",
        sample.links.len(),
        serde_json::to_string(&sample.items.first().map(|i| &i.fields)).unwrap_or_default()
    );
    let reference = ScraperRef::new();
    let (ref_links, ref_fields) = reference.extract(&product[0].0, &product[0].1);
    assert_eq!(sample.links, ref_links, "lol_html and scraper disagree on links");
    assert_eq!(sample.items.first().map(|i| &i.fields), Some(&ref_fields), "fields disagree");

    // A/B in one run: the fast link scanner (then lol_html for the fields alone) against
    // lol_html for everything (`RuleParser::lol_html_only`).
    let lol = parser.lol_html_only();
    assert_eq!(lol.extract(&product[0].0, &product[0].1), sample, "scanner and lol_html disagree");
    let ours = run("arachne (scanner + lol_html fields) links + item rule", secs, &product, |u, h| {
        black_box(parser.extract(u, h));
    });
    let lol_items = run("arachne (lol_html alone) links + item rule", secs, &product, |u, h| {
        black_box(lol.extract(u, h));
    });
    let scan_links = run("arachne (scanner) links only (no rule match)", secs, &listing, |u, h| {
        black_box(parser.extract(u, h));
    });
    let lol_links = run("arachne (lol_html alone) links only (no rule match)", secs, &listing, |u, h| {
        black_box(lol.extract(u, h));
    });
    // The peer bench's spec: the default follow and each page's <title>.
    let title_spec = ParseSpec {
        follow: ["a[href]", "iframe[src]", "frame[src]"].map(String::from).to_vec(),
        items: vec![ItemRule {
            name: "page".into(),
            matches: ".".into(),
            fields: [("title".to_string(), "title".to_string())].into_iter().collect(),
        }],
    };
    let title_parser = RuleParser::new(&title_spec).expect("spec compiles");
    let title_lol = title_parser.lol_html_only();
    let scan_title =
        run("arachne (scanner + lol_html fields) default follow + title", secs, &listing, |u, h| {
            black_box(title_parser.extract(u, h));
        });
    let lol_title = run("arachne (lol_html alone) default follow + title", secs, &listing, |u, h| {
        black_box(title_lol.extract(u, h));
    });
    println!(
        "scanner / lol_html alone: links + item rule {:.2}x, links only {:.2}x, default follow + title {:.2}x \
         (time per page, lower is better)",
        ours.us_per_page / lol_items.us_per_page,
        scan_links.us_per_page / lol_links.us_per_page,
        scan_title.us_per_page / lol_title.us_per_page,
    );
    run("lol_html bare pass (no handlers)", secs, &product, |_, h| {
        let mut r = lol_html::HtmlRewriter::new(lol_html::Settings::new(), |_: &[u8]| {});
        let _ = black_box(r.write(h.as_bytes()));
        let _ = r.end();
    });
    run("arachne on an empty page (fixed cost)", secs, &[(product[0].0.clone(), String::new())], |u, h| {
        black_box(parser.extract(u, h));
    });
    let theirs = run("scraper (html5ever) parse + select", secs, &product, |u, h| {
        black_box(reference.extract(u, h));
    });
    println!(
        "speed-up: {:.1}x ({:.2} µs vs {:.2} µs per page)",
        theirs.us_per_page / ours.us_per_page,
        ours.us_per_page,
        theirs.us_per_page
    );
    let _ = ours.mb_per_s;
}
