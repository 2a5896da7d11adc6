//! Hostile input (issue 11): specs, selectors, robots.txt, bodies, charsets, ports and
//! addresses that used to crash the process, exhaust its memory or break a promise. Each
//! test here failed before its fix.

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use arachne::spec::{load_file, load_str, CrawlSpec, SpecError, SpecErrors};

const BASE: &str = "name: x\nseeds: [\"https://example.com/\"]\n";

fn arachne() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arachne"))
}

fn errors_of(yaml: &str) -> Vec<SpecError> {
    load_str(yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES).expect_err("the spec has errors").0
}

/// The only error of `BASE` followed by `rest`.
fn only_error(rest: &str) -> SpecError {
    match errors_of(&format!("{BASE}{rest}")).as_slice() {
        [e] => e.clone(),
        more => panic!("expected one error, got: {}", SpecErrors(more.to_vec())),
    }
}

fn at(e: &SpecError) -> (Option<usize>, Option<usize>) {
    (e.line, e.column)
}

/// Runs `f` on another thread and waits at most `limit` for it: the old, quadratic code
/// took minutes where the new one takes well under a second, so the bound is generous.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("finished in time")
}

// ---- 1. YAML aliases and nesting ---------------------------------------------------------

#[test]
fn billion_laughs_is_refused_at_the_alias() {
    let mut yaml = String::from(BASE);
    yaml.push_str("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = format!("*l{}", i - 1);
        yaml.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let errors = within(Duration::from_secs(30), move || errors_of(&yaml));
    let e = errors.iter().find(|e| e.message.contains("aliases expand")).expect("alias error");
    // The first alias past the budget: on line 8 (l5), at one of its aliases.
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.column.is_some_and(|c| c > 9), "{e}");
}

#[test]
fn small_aliases_still_work() {
    let spec = load_str(
        &format!("{BASE}parse:\n  items:\n    - &r {{ name: a, match: x, fields: {{ t: h1 }} }}\n"),
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("loads");
    assert_eq!(spec.parse.items.len(), 1);
}

// ---- 3. CSS selectors --------------------------------------------------------------------

#[test]
fn deeply_nested_selector_is_refused_with_a_place() {
    let css = format!("{}a{}", ":not(".repeat(10_000), ")".repeat(10_000));
    let e = only_error(&format!("parse:\n  follow: [\"{css}\"]\n"));
    assert_eq!(at(&e), (Some(4), Some(12)));
    assert!(e.message.contains("bad CSS selector"), "{e}");
    assert!(e.message.len() < 400, "the selector is shortened in the message: {e}");
}

#[test]
fn long_selector_chains_are_refused_by_validate_and_by_the_extractor() {
    let chain = vec!["div"; 5_000].join(" > ");
    let e = only_error(&format!(
        "parse:\n  items:\n    - name: a\n      match: x\n      fields: {{ t: \"{chain}\" }}\n"
    ));
    assert_eq!(at(&e), (Some(7), Some(20)));
    assert!(e.message.contains("longer than 1024 bytes"), "{e}");
    let err = arachne::crawl::extract::parse_selector(&chain).expect_err("refused");
    assert!(matches!(err, arachne::crawl::extract::BadSelector::TooLong));
    for short in [vec!["div"; 40].join(" > "), vec!["p"; 40].join(" "), vec!["a"; 40].join("+")] {
        let err = arachne::crawl::extract::parse_selector(&short).expect_err("refused");
        assert!(matches!(err, arachne::crawl::extract::BadSelector::TooManySteps), "{short}");
        let e = only_error(&format!("parse:\n  follow: [\"{short}\"]\n"));
        assert!(e.message.contains("more than 32 combinator steps"), "{e}");
    }
}

#[test]
fn selectors_at_the_limits_run_on_a_deep_page() {
    use arachne::crawl::extract::{parse_selector, RuleParser, MAX_SELECTOR_NESTING, MAX_SELECTOR_STEPS};
    let chain = vec!["div"; MAX_SELECTOR_STEPS + 1].join(" > ");
    let nested = format!("{}p{}", ":not(".repeat(MAX_SELECTOR_NESTING), ")".repeat(MAX_SELECTOR_NESTING));
    for css in [&chain, &nested] {
        if let Err(e) = parse_selector(css) {
            // lol_html may not support the form, but it never exceeds our bounds.
            assert!(matches!(e, arachne::crawl::extract::BadSelector::Syntax(_)), "{css}: {e}");
        }
    }
    let yaml = format!(
        "{BASE}parse:\n  items:\n    - name: a\n      match: .\n      fields: {{ t: \"{chain}\" }}\n"
    );
    let spec =
        load_str(&yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES).expect("a chain at the limit is valid");
    let parser = RuleParser::new(&spec.parse).expect("compiles");
    let html = format!("{}x{}", "<div>".repeat(2_000), "</div>".repeat(2_000));
    let url = url::Url::parse("http://h/").expect("url");
    let out = parser.extract(&url, &html);
    assert_eq!(out.items.len(), 1);
    assert_eq!(out.items[0].fields["t"], "x");
}

// ---- 5. rates ------------------------------------------------------------------------------

#[test]
fn tiny_rates_are_refused_by_validate_and_never_panic_the_frontier() {
    let e = only_error("fetch: { per_host: { rate: 1e-20 } }\n");
    assert_eq!(at(&e), (Some(3), Some(28)));
    assert!(e.message.contains("less than one request a day"), "{e}");
    // The library takes any spec: the frontier must not panic on it either.
    let mut spec: CrawlSpec = load_str(BASE, "crawl.yaml", arachne::spec::NO_OVERRIDES).expect("loads");
    let seeds = [url::Url::parse("https://example.com/").expect("url")];
    for rate in [1e-20, 1e-300, f64::MIN_POSITIVE, 1.0 / 86_400.0, 1e300, f64::INFINITY, f64::NAN] {
        spec.fetch.per_host.rate = rate;
        let scope = arachne::crawl::frontier::Scope::new(&spec, &seeds).expect("scope");
        assert!(arachne::crawl::frontier::Frontier::new(&spec, scope).is_ok(), "rate {rate}");
    }
    load_str(
        &format!("{BASE}fetch: {{ per_host: {{ rate: 0.0001 }} }}\n"),
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("ok");
}

// ---- 6. large mappings ---------------------------------------------------------------------

#[test]
fn forty_thousand_fields_validate_quickly() {
    let mut yaml = format!("{BASE}parse:\n  items:\n    - name: a\n      match: x\n      fields:\n");
    for i in 0..40_000 {
        yaml.push_str(&format!("        f{i}: h1\n"));
    }
    let spec =
        within(Duration::from_secs(30), move || load_str(&yaml, "crawl.yaml", arachne::spec::NO_OVERRIDES));
    assert_eq!(spec.expect("loads").parse.items[0].fields.len(), 40_000);
}

#[test]
fn a_hundred_thousand_unknown_keys_give_a_capped_report_quickly() {
    let mut yaml = String::from(BASE);
    for i in 0..100_000 {
        yaml.push_str(&format!("k{i}: {i}\n"));
    }
    yaml.push_str("k5: dup\n");
    let errors = within(Duration::from_secs(30), move || errors_of(&yaml));
    // The duplicate key ends the reading at once.
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("duplicate key 'k5'"));

    let mut yaml = String::from(BASE);
    for i in 0..100_000 {
        yaml.push_str(&format!("k{i}: {i}\n"));
    }
    let errors = within(Duration::from_secs(30), move || errors_of(&yaml));
    assert_eq!(errors.len(), 101);
    assert!(errors[0].message.contains("unknown key 'k0'"), "{}", errors[0]);
    assert_eq!(errors[100].message, "... and 99900 more errors");
}

// ---- 7. validate makes every check run makes -----------------------------------------------

#[test]
fn regex_lists_too_large_together_are_reported_with_a_place() {
    let (a, b) = ("a".repeat(200_000), "b".repeat(200_000));
    let e = only_error(&format!("scope:\n  include:\n    - \"{a}\"\n    - \"{b}\"\n"));
    assert_eq!(at(&e), (Some(5), Some(5)));
    assert!(e.message.contains("bad regexes in scope.include: together"), "{e}");
}

#[test]
fn an_unusable_user_agent_is_a_spec_error() {
    let e = only_error("fetch: { user_agent: \"bot\\nX-Evil: 1\" }\n");
    assert_eq!(at(&e), (Some(3), Some(22)));
    assert!(e.message.contains("fetch.user_agent"), "{e}");
}

#[test]
fn output_over_the_spec_itself_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crawl.yaml");
    std::fs::write(&path, format!("{BASE}output:\n  - jsonl: {}\n", path.display())).expect("write");
    let errors = load_file(&path, arachne::spec::NO_OVERRIDES).expect_err("refused").0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("is the spec file itself"), "{}", errors[0]);
    assert_eq!(at(&errors[0]), (Some(4), Some(12)));
}

// ---- 8. sandbox pages: one rule for the spec and the command -------------------------------

#[test]
fn sandbox_pages_have_one_upper_bound() {
    let e = only_error("sandbox: { pages: 4294967295 }\n");
    assert!(e.message.contains("from 1 to 1000000 pages"), "{e}");
    let e = only_error("sandbox: { pages: 0 }\n");
    assert!(e.message.contains("from 1 to 1000000 pages"), "{e}");
    for pages in ["0", "1000001"] {
        // Accepted, the sandbox would serve until killed: wait a bounded time.
        let mut child = arachne()
            .args(["sandbox", "--port", "0", "--pages", pages])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        let status = (0..100).find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.try_wait().expect("waits")
        });
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(status.and_then(|s| s.code()), Some(2), "--pages {pages}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("reads");
        assert!(stderr.contains("from 1 to 1000000 pages"), "{stderr}");
    }
}

// ---- smaller ones: what the command prints -------------------------------------------------

#[test]
fn an_empty_spec_reports_every_missing_key() {
    let errors = errors_of("");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["missing required key 'name'", "missing required key 'seeds'"]);
}

#[test]
fn a_spec_that_is_not_utf8_is_not_blamed_on_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crawl.yaml");
    std::fs::write(&path, b"name: caf\xe9\n").expect("write");
    let errors = load_file(&path, arachne::spec::NO_OVERRIDES).expect_err("not UTF-8").0;
    assert!(errors[0].message.contains("not UTF-8"), "{}", errors[0]);
    assert!(!errors[0].hint.as_deref().unwrap_or("").contains("check the path"));
}

#[test]
fn errors_end_with_a_newline_and_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crawl.yaml");
    std::fs::write(&path, "name: x\n").expect("write");
    for cmd in ["validate", "run"] {
        let out = arachne().arg(cmd).arg(&path).output().expect("runs");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.ends_with('\n'), "{cmd}: {stderr:?}");
    }
    // A run that logs (a warning for an unreachable robots.txt) to a pipe: no ANSI escapes.
    std::fs::write(
        &path,
        "name: x\nseeds: [\"http://127.0.0.1:9/\"]\nfetch: { retries: 0, timeout: 2s }\noutput: []\n",
    )
    .expect("write");
    let out = arachne().arg("run").arg(&path).arg("--quiet").output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn summary_json_is_checked_before_the_crawl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crawl.yaml");
    std::fs::write(&path, "name: x\nsandbox: { pages: 5 }\nseeds: [\"{sandbox}/\"]\noutput: []\n")
        .expect("write");
    let bad = dir.path().join("no/such/dir/summary.json");
    let out = arachne()
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .arg("--summary-json")
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--summary-json") && !stderr.contains("done:"), "{stderr}");
    let out = arachne()
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .arg("--summary-json")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec's own path"));
    assert!(std::fs::read_to_string(&path).expect("spec kept").starts_with("name: x"));
}

// ---- a tiny hostile HTTP server --------------------------------------------------------

/// Serves raw answers on 127.0.0.1 from a thread: `answer(path)` gives the bytes written back
/// for a request of `path` (the connection is closed after each). Serves at most `max`
/// connections; returns the port.
fn serve_raw(max: usize, answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            for _ in 0..200 {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                    break;
                }
            }
            let _ = stream.write_all(&answer(&path));
            let _ = stream.flush();
        }
    });
    port
}

fn html(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Runs `arachne run` on `spec` in a fresh directory: (exit code, summary, items, stderr).
fn run_spec(spec: &str) -> (i32, serde_json::Value, Vec<serde_json::Value>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crawl.yaml");
    std::fs::write(&path, spec).expect("write spec");
    let summary = dir.path().join("summary.json");
    let out = arachne()
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .arg("--summary-json")
        .arg(&summary)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    let summary =
        std::fs::read(&summary).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let items = std::fs::read_to_string(dir.path().join("items.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect();
    (out.status.code().unwrap_or(-1), summary, items, String::from_utf8_lossy(&out.stderr).into_owned())
}

const ITEMS: &str = "parse:\n  items:\n    - name: t\n      match: .\n      fields: { title: h1 }\noutput:\n  - jsonl: items.jsonl\n";

// ---- 4. Content-Length does not decide an allocation; errors classified ---------------------

#[test]
fn a_huge_content_length_is_not_an_allocation_and_a_short_body_is_truncated() {
    let port = serve_raw(8, |path| match path {
        "/" => html("<h1>home</h1><a href=/big>big</a>"),
        _ => b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000000000\r\n\r\n<h1>hi</h1>"
            .to_vec(),
    });
    let spec = format!(
        "name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nfetch: {{ max_body: 200GiB, retries: 1, robots_txt: ignore }}\n{ITEMS}"
    );
    let (code, summary, _, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["errors"]["truncated"], 1, "{summary}");
    assert_eq!(summary["retries"], 1, "truncated bodies are retried: {summary}");
    let detail = summary["error_details"]["truncated"].as_str().expect("a detail");
    assert!(detail.contains("cut short"), "{detail}");
}

#[test]
fn garbage_and_oversized_heads_are_bad_responses() {
    let port = serve_raw(8, |path| match path {
        "/" => html("<a href=/garbage>g</a><a href=/headers>h</a>"),
        "/garbage" => b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
        _ => {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..500 {
                head.push_str(&format!("X-H{i}: v\r\n"));
            }
            head.push_str("Content-Length: 0\r\n\r\n");
            head.into_bytes()
        }
    });
    let spec = format!(
        "name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nfetch: {{ retries: 0, robots_txt: ignore }}\noutput: []\n"
    );
    let (code, summary, _, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["errors"]["bad_response"], 2, "{summary}");
    assert!(summary["errors"].get("connect").is_none(), "{summary}");
    assert!(summary["error_details"]["bad_response"].as_str().is_some_and(|d| !d.is_empty()));
}

// ---- 13. a meta-declared UTF-16 is UTF-8 ---------------------------------------------------

#[test]
fn meta_utf16_on_an_ascii_page_decodes_as_utf8() {
    use arachne::crawl::http::decode;
    let page = "<meta charset=\"utf-16\"><h1>Caf\u{e9}</h1><a href=\"/next\">n</a>";
    assert_eq!(decode(page.as_bytes().to_vec(), Some("text/html")), page);
    let page = "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-16LE\"><p>x</p>";
    assert_eq!(decode(page.as_bytes().to_vec(), None), page);
    // x-user-defined in a meta is windows-1252.
    assert_eq!(
        decode(b"<meta charset=x-user-defined><p>\x80</p>".to_vec(), None),
        "<meta charset=x-user-defined><p>\u{20ac}</p>"
    );
    // A BOM wins over the Content-Type.
    assert_eq!(
        decode(b"\xef\xbb\xbf<p>\xc3\xa9</p>".to_vec(), Some("text/html; charset=iso-8859-1")),
        "<p>\u{e9}</p>"
    );
    // "charset=" in text, not in a meta tag, declares nothing.
    assert_eq!(decode(b"<p>charset=utf-16</p>\xc3\xa9".to_vec(), None), "<p>charset=utf-16</p>\u{e9}");

    let port = serve_raw(8, |path| match path {
        "/" => html("<meta charset=\"utf-16\"><h1>first</h1><a href=\"/2\">next</a>"),
        _ => html("<h1>second</h1>"),
    });
    let spec =
        format!("name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nfetch: {{ robots_txt: ignore }}\n{ITEMS}");
    let (code, _, items, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    let mut titles: Vec<&str> = items.iter().filter_map(|i| i["title"].as_str()).collect();
    titles.sort();
    assert_eq!(titles, ["first", "second"]);
}

// ---- 2 and 12. robots.txt: streamed with a cap, redirects followed ---------------------------

fn plain(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .into_bytes()
}

const TWO_LINKS: &str = "<h1>home</h1><a href=\"/private/x\">p</a><a href=\"/ok\">o</a>";

fn fetched_titles(items: &[serde_json::Value]) -> Vec<String> {
    let mut titles: Vec<String> =
        items.iter().filter_map(|i| i["title"].as_str().map(str::to_string)).collect();
    titles.sort();
    titles
}

/// A site whose `/` links to `/private/x` and `/ok`; `other` answers the other paths
/// (robots.txt and its redirects), or a 404.
fn two_link_site(other: impl Fn(&str) -> Option<Vec<u8>> + Send + 'static) -> u16 {
    serve_raw(32, move |path| match path {
        "/" => html(TWO_LINKS),
        "/ok" => html("<h1>ok</h1>"),
        "/private/x" => html("<h1>private</h1>"),
        path => {
            other(path).unwrap_or_else(|| b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec())
        }
    })
}

/// Crawls the site on `port`, obeying robots.txt: the titles found, the summary, stderr.
fn crawl_site(port: u16) -> (Vec<String>, serde_json::Value, String) {
    let spec = format!("name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nfetch: {{ timeout: 10s }}\n{ITEMS}");
    let (code, summary, items, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    (fetched_titles(&items), summary, stderr)
}

fn redirect_to(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

#[test]
fn robots_redirects_are_followed() {
    let port = two_link_site(|path| match path {
        "/robots.txt" => Some(redirect_to("/r1")),
        "/r1" => Some(redirect_to("/real-robots.txt")),
        "/real-robots.txt" => Some(plain("User-agent: *\nDisallow: /private/\n")),
        _ => None,
    });
    let (titles, summary, _) = crawl_site(port);
    assert_eq!(titles, ["home", "ok"], "{summary}");
    assert_eq!(summary["robots_blocked"], 1, "{summary}");
}

#[test]
fn robots_redirect_chains_past_five_allow_everything() {
    let port = two_link_site(|path| {
        let hop: u32 = path.strip_prefix("/hop").map_or(Some(0), |n| n.parse().ok())?;
        Some(redirect_to(&format!("/hop{}", hop + 1)))
    });
    let (titles, summary, stderr) = crawl_site(port);
    assert_eq!(titles, ["home", "ok", "private"], "{summary}");
    assert!(stderr.contains("redirected more than 5 times"), "{stderr}");
}

#[test]
fn an_endless_robots_txt_is_read_up_to_its_cap() {
    use std::io::{Read, Write};
    // robots.txt: its rules, then comments without end (chunked, never finished).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            if request.starts_with("GET /robots.txt") {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let rules = "User-agent: *\nDisallow: /private/\n";
                let _ = stream.write_all(format!("{:x}\r\n{rules}\r\n", rules.len()).as_bytes());
                let comment = format!("# {}\n", "x".repeat(1021));
                let chunk = format!("{:x}\r\n{comment}\r\n", comment.len());
                // At most 64 MiB, until the crawler hangs up (it should after 512 KiB).
                for _ in 0..65_536 {
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        break;
                    }
                }
                continue;
            }
            let answer = if request.starts_with("GET / ") {
                html(TWO_LINKS)
            } else if request.starts_with("GET /ok") {
                html("<h1>ok</h1>")
            } else {
                html("<h1>private</h1>")
            };
            let _ = stream.write_all(&answer);
        }
    });
    let (titles, summary, stderr) = crawl_site(port);
    assert_eq!(titles, ["home", "ok"], "{summary}");
    assert!(stderr.contains("larger than 524288 bytes"), "{stderr}");
}

// ---- 14. scope includes the port -----------------------------------------------------------

/// A server that counts its requests and answers each with a small page.
fn counting_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let port = serve_raw(16, move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        html("<h1>other port</h1>")
    });
    (port, hits)
}

#[test]
fn links_to_another_port_of_the_host_are_out_of_scope() {
    let (other, hits) = counting_server();
    let port = serve_raw(16, move |path| match path {
        "/" => html(&format!("<h1>home</h1><a href=\"http://127.0.0.1:{other}/x\">x</a>")),
        _ => html("<h1>?</h1>"),
    });
    let spec =
        format!("name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nfetch: {{ robots_txt: ignore }}\n{ITEMS}");
    let (code, summary, items, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fetched_titles(&items), ["home"]);
    assert_eq!(summary["out_of_scope"], 1, "{summary}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // scope.ports lists the ports that may be fetched.
    let spec = format!(
        "name: x\nseeds: [\"http://127.0.0.1:{port}/\"]\nscope: {{ ports: [{port}, {other}] }}\nfetch: {{ robots_txt: ignore }}\n{ITEMS}"
    );
    let (code, _, items, stderr) = run_spec(&spec);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fetched_titles(&items), ["home", "other port"]);
}

#[test]
fn default_ports_stay_in_scope_and_listed_ports_replace_them() {
    use arachne::crawl::frontier::Scope;
    let url = |s: &str| url::Url::parse(s).expect("url");
    let spec = load_str(BASE, "crawl.yaml", arachne::spec::NO_OVERRIDES).expect("loads");
    let seeds = [url("https://example.com/")];
    let scope = Scope::new(&spec, &seeds).expect("scope");
    assert!(scope.allows(&url("http://example.com/a")));
    assert!(scope.allows(&url("https://www.example.com:443/a")));
    assert!(!scope.allows(&url("http://example.com:6379/")));
    let spec =
        load_str(&format!("{BASE}scope: {{ ports: [8443] }}\n"), "crawl.yaml", arachne::spec::NO_OVERRIDES)
            .expect("loads");
    let scope = Scope::new(&spec, &seeds).expect("scope");
    assert!(scope.allows(&url("https://example.com:8443/")));
    assert!(!scope.allows(&url("https://example.com/")));
}

// ---- 15. the SSRF guard --------------------------------------------------------------------

#[test]
fn a_public_crawl_never_reaches_private_addresses() {
    use arachne::crawl::frontier::{Admission, Frontier, Scope};
    use arachne::crawl::guard::AddressGuard;
    use arachne::crawl::http::{build_client, fetch, FetchOutcome};
    use arachne::observe::{ErrorKind, Stats};
    use std::net::{IpAddr, Ipv4Addr};

    let url = |s: &str| url::Url::parse(s).expect("url");
    let port = serve_raw(16, |_| html("<h1>secret</h1>"));
    let local = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
    let spec = load_str(
        &format!("name: x\nseeds: [\"http://www.public.test/\"]\nscope: {{ domains: [public.test], ports: [80, {port}] }}\n"),
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("loads");
    let seeds = [url("http://www.public.test/")];

    // A link or a redirect to a literal non-public address is out of scope.
    let guard = AddressGuard::new(&seeds, false).with_override("evil.public.test", &local);
    let mut frontier = Frontier::new(&spec, Scope::with_guard(&spec, &seeds, guard.clone()).expect("scope"))
        .expect("frontier");
    for link in [
        format!("http://127.0.0.1:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]/".to_string(),
        "http://localhost/".to_string(),
    ] {
        let mut spec2 = spec.clone();
        spec2.scope.domains.push(url(&link).host_str().expect("host").trim_matches(['[', ']']).to_string());
        let mut f = Frontier::new(&spec2, Scope::with_guard(&spec2, &seeds, guard.clone()).expect("scope"))
            .expect("frontier");
        assert_eq!(f.admit(&url(&link), 1, Vec::new()), Admission::OutOfScope, "{link}");
    }
    assert!(matches!(
        frontier.admit(&url("http://www.public.test/a"), 1, Vec::new()),
        Admission::Queued { .. }
    ));

    // A public-looking name that resolves to 127.0.0.1 is never connected to.
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let stats = Stats::default();
    let target = url(&format!("http://evil.public.test:{port}/"));
    let client = build_client(&spec.fetch, &guard).expect("client");
    let outcome = runtime.block_on(fetch(&client, &target, None, &spec.fetch, &stats));
    assert!(matches!(outcome, FetchOutcome::Failed { kind: ErrorKind::BlockedAddress, .. }), "{outcome:?}");

    // scope.allow_private: true says so explicitly.
    let open = AddressGuard::new(&seeds, true).with_override("evil.public.test", &local);
    let client = build_client(&spec.fetch, &open).expect("client");
    let outcome = runtime.block_on(fetch(&client, &target, None, &spec.fetch, &stats));
    assert!(matches!(outcome, FetchOutcome::Fetched { .. }), "{outcome:?}");

    // A crawl whose seed is on a private address (an intranet name) keeps working.
    let intranet = [url(&format!("http://wiki.corp.test:{port}/"))];
    let guard = AddressGuard::new(&intranet, false).with_override("wiki.corp.test", &local);
    assert!(!guard.private_ok());
    let client = build_client(&spec.fetch, &guard).expect("client");
    let outcome = runtime.block_on(fetch(&client, &intranet[0], None, &spec.fetch, &stats));
    assert!(matches!(outcome, FetchOutcome::Fetched { .. }), "{outcome:?}");
    assert!(guard.private_ok());
}

#[test]
fn allow_private_and_ports_are_spec_keys() {
    let spec = load_str(
        &format!("{BASE}scope: {{ allow_private: true, ports: [80, 8080] }}\n"),
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("loads");
    assert!(spec.scope.allow_private);
    assert_eq!(spec.scope.ports, [80, 8080]);
    let e = only_error("scope: { ports: [70000] }\n");
    assert!(e.message.contains("scope.ports[0]"), "{e}");
}
