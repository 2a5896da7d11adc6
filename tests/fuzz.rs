//! Property tests of the input paths: the spec loader, the URL normaliser, the HTML
//! extractor, robots.txt parsing and charset sniffing never panic on any input, and the
//! normaliser is idempotent.
//!
//! A short run is part of `cargo test` (proptest's default of 256 cases each, a few
//! seconds); `PROPTEST_CASES=100000 cargo test --release --test fuzz` runs longer
//! (docs/reliability.md).

use proptest::prelude::*;
use url::Url;

use arachne::crawl::extract::RuleParser;
use arachne::crawl::http::decode;
use arachne::crawl::urls::{fingerprint, normalize};
use arachne::spec::{load_str, ParseSpec};

/// YAML-like text: keys of the spec, flow and block collections, anchors, aliases, tags,
/// `${ENV}`, odd scalars, and anything else.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name: x\n".to_string()),
        Just("seeds: [\"https://e.com/\"]\n".to_string()),
        Just("fetch:\n  ".to_string()),
        Just("parse: { follow: [".to_string()),
        Just("items:\n  - ".to_string()),
        Just("sandbox: {pages: ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!str ".to_string()),
        Just("<<: ".to_string()),
        Just("${HOME}".to_string()),
        Just("---\n".to_string()),
        Just("? ".to_string()),
        prop::sample::select(vec!["[", "]", "{", "}", ",", ":", "-", "\n", "  ", "#", "\"", "'", "|", ">"])
            .prop_map(str::to_string),
        "[a-z_.]{1,12}",
        "[0-9eE.+-]{1,8}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// URL-ish text: schemes, hosts (names, IPv4, IPv6), ports, paths with escapes and dot
/// segments, queries and fragments.
fn urlish() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["http", "https", "HTTP", "hTtPs", "ftp", "data", "javascript"]);
    let host = prop_oneof![
        "[a-zA-Z0-9-]{1,10}(\\.[a-zA-Z0-9-]{1,10}){0,3}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        Just("[::1]".to_string()),
        Just("xn--bcher-kva.example".to_string()),
        Just("Bücher.example".to_string()),
    ];
    let port = prop::option::of(0u32..70_000).prop_map(|p| p.map(|p| format!(":{p}")).unwrap_or_default());
    let segment = "([a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9a-fA-F]{2}|%|\\.\\.|\\.|é){0,6}";
    let path = prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop::option::of("([a-zA-Z0-9=&%._~-]|%[0-9a-fA-F]{2}){0,12}")
        .prop_map(|q| q.map(|q| format!("?{q}")).unwrap_or_default());
    let fragment =
        prop::option::of("[a-z#%]{0,5}").prop_map(|f| f.map(|f| format!("#{f}")).unwrap_or_default());
    (scheme, host, port, path, query, fragment)
        .prop_map(|(s, h, p, path, q, f)| format!("{s}://{h}{p}{path}{q}{f}"))
}

/// HTML-like text: tags the rules and the extractor care about, broken markup, entities.
fn htmlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("<a href=\"".to_string()),
        Just("\">".to_string()),
        Just("</a>".to_string()),
        Just("<base href=/b/>".to_string()),
        Just("<h1>".to_string()),
        Just("</h1>".to_string()),
        Just("<div class=price>".to_string()),
        Just("</div>".to_string()),
        Just("<img src=x.png>".to_string()),
        Just("<script>".to_string()),
        Just("<!--".to_string()),
        Just("<meta charset=utf-16>".to_string()),
        Just("&amp;".to_string()),
        Just("&#x".to_string()),
        Just("<![CDATA[".to_string()),
        Just("<svg><a xlink:href=".to_string()),
        "[a-z/:.?#=&%<> \"']{0,16}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

fn rule_parser() -> RuleParser {
    let spec = load_str(
        "name: x\nseeds: [\"https://e.com/\"]\nparse:\n  follow: [\"a[href]\", \"img\"]\n  items:\n    - name: a\n      match: .\n      fields: { t: h1, p: \"div.price\", l: \"a @href\" }\n",
        "fuzz.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .expect("the fuzz spec loads");
    let parse: ParseSpec = spec.parse;
    RuleParser::new(&parse).expect("compiles")
}

proptest! {
    #[test]
    fn the_spec_loader_never_panics(text in yamlish()) {
        let _ = load_str(&text, "fuzz.yaml", arachne::spec::NO_OVERRIDES);
    }

    #[test]
    fn the_spec_loader_never_panics_on_any_text(text in any::<String>()) {
        let _ = load_str(&text, "fuzz.yaml", arachne::spec::NO_OVERRIDES);
    }

    #[test]
    fn overrides_never_panic(key in "[a-z_.\\[\\]0-9]{0,24}", value in "[ -~]{0,16}") {
        let _ = load_str("name: x\nseeds: [\"https://e.com/\"]\n", "fuzz.yaml", &[format!("{key}={value}")]);
    }

    #[test]
    fn normalize_is_idempotent(text in urlish()) {
        if let Ok(mut url) = Url::parse(&text) {
            normalize(&mut url);
            let once = url.to_string();
            normalize(&mut url);
            prop_assert_eq!(url.as_str(), once.as_str());
            let reparsed = Url::parse(&once).expect("a normalised URL parses");
            prop_assert_eq!(fingerprint(&reparsed), fingerprint(&url));
        }
    }

    #[test]
    fn the_extractor_never_panics(html in htmlish(), page in urlish()) {
        let parser = rule_parser();
        let page = Url::parse(&page).unwrap_or_else(|_| Url::parse("http://h/").expect("url"));
        let out = parser.extract(&page, &html);
        prop_assert!(out.links.len() <= arachne::crawl::extract::MAX_LINKS);
        for link in &out.links {
            prop_assert!(matches!(link.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn robots_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048), path in "/[ -~]{0,30}") {
        let text = String::from_utf8_lossy(&body).into_owned();
        for input in [body.as_slice(), text.as_bytes()] {
            if let Ok(robot) = texting_robots::Robot::new(arachne::crawl::robots::agent_token("arachne/0.1"), input) {
                let _ = robot.allowed(&path);
            }
        }
    }

    #[test]
    fn robots_like_text_never_panics(lines in prop::collection::vec(
        prop_oneof![
            Just("User-agent: *".to_string()),
            Just("User-agent: arachne".to_string()),
            "(Allow|Disallow): [ -~]{0,20}",
            "Crawl-delay: [ -~]{0,8}",
            "Sitemap: [ -~]{0,20}",
            "[ -~]{0,30}",
        ],
        0..30,
    ), path in "/[a-z*$?=/]{0,20}") {
        let body = lines.join("\n");
        if let Ok(robot) = texting_robots::Robot::new("arachne", body.as_bytes()) {
            let _ = robot.allowed(&path);
        }
    }

    #[test]
    fn charset_sniffing_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        content_type in prop::option::of("text/html(; ?charset=[a-zA-Z0-9_-]{0,12})?"),
        meta in prop::option::of("[a-zA-Z0-9_-]{0,12}"),
    ) {
        let mut page = Vec::new();
        if let Some(label) = &meta {
            page.extend_from_slice(format!("<meta charset=\"{label}\">").as_bytes());
        }
        page.extend_from_slice(&body);
        let _ = decode(page, content_type.as_deref());
    }

    #[test]
    fn an_ascii_page_decodes_to_itself_whatever_its_meta_says(
        text in "[ -~]{0,200}",
        label in prop::sample::select(vec!["utf-16", "utf-16le", "UTF-16BE", "utf-8", "windows-1252", "iso-8859-1", "ascii", "bogus"]),
    ) {
        let page = format!("<meta charset=\"{label}\">{text}");
        prop_assert_eq!(decode(page.clone().into_bytes(), Some("text/html")), page);
    }
}
