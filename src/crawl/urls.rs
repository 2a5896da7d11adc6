//! URL normalisation, fingerprints and small URL predicates used by the frontier.
//!
//! Every URL the parser hands to the scheduler goes through [`normalize`], and the
//! scheduler's seen-set is keyed by [`fingerprint`]: two spellings of one URL that
//! normalise to the same string are one page.
//!
//! What [`normalize`] does NOT do, on purpose:
//! - it does not sort query parameters: `?b=1&a=2` and `?a=2&b=1` are different URLs
//!   (some sites give parameter order a meaning, and sorting would merge distinct pages);
//! - it does not strip `www.`, trailing slashes, session ids or tracking parameters:
//!   those are site policies, not URL equivalences.

use std::fmt;

use url::Url;
use xxhash_rust::xxh3::xxh3_128;

/// Normalises `url` in place, so that equivalent spellings of one resource become one string.
///
/// - the fragment is dropped (`#top` never reaches the server);
/// - scheme and host are lowercased, default ports removed, dot segments resolved and an
///   empty path becomes `/` (the `url` crate does these when it parses a special-scheme URL;
///   the tests check it);
/// - percent-encoding is normalised in the path and the query: escapes of unreserved
///   characters (`A-Za-z0-9-._~`) are decoded, the hex digits of every other escape are
///   uppercased (`%2f` becomes `%2F`);
/// - an empty query (`http://h/p?`) is removed.
///
/// Query parameters are **not** sorted: their order changes the meaning of the URL on some
/// sites, so `?b=1&a=2` and `?a=2&b=1` stay two URLs.
///
/// Idempotent: normalising a normalised URL changes nothing.
pub fn normalize(url: &mut Url) {
    if url.fragment().is_some() {
        url.set_fragment(None);
    }
    if let Some(path) = normalize_percent(url.path()) {
        url.set_path(&path);
    }
    match url.query() {
        Some("") => url.set_query(None),
        Some(q) => {
            if let Some(q) = normalize_percent(q) {
                url.set_query(Some(&q));
            }
        }
        None => {}
    }
}

/// Whether [`normalize`] would leave `url` as it is (cheap: no allocation).
fn is_normalized(url: &Url) -> bool {
    url.fragment().is_none()
        && url.query() != Some("")
        && !needs_percent_normalization(url.path())
        && !url.query().is_some_and(needs_percent_normalization)
}

/// A URL's stable 128-bit fingerprint: xxh3-128 of its normalised string.
///
/// Stable across runs, processes, machines and builds (no random seed), so it can be
/// persisted in the state dir and shared through brokers.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug, Ord, PartialOrd)]
pub struct Fingerprint(pub u128);

/// A hasher for fingerprints in hash maps and sets: a fingerprint is already a uniform
/// 128-bit hash, so hashing it again (SipHash, by default) is wasted work on the hot path.
#[derive(Debug, Default, Clone, Copy)]
pub struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than a fingerprint: fold the bytes in (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, i: u128) {
        self.0 ^= (i as u64) ^ ((i >> 64) as u64);
    }
}

/// Builds [`FingerprintHasher`]s: `HashMap<Fingerprint, V, FingerprintBuildHasher>`.
pub type FingerprintBuildHasher = std::hash::BuildHasherDefault<FingerprintHasher>;

impl Fingerprint {
    /// The fingerprint as 16 big-endian bytes (for stores and brokers).
    pub fn to_be_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The fingerprint from 16 big-endian bytes, as written by [`Fingerprint::to_be_bytes`].
    pub fn from_be_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for Fingerprint {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The fingerprint of `url`: xxh3-128 of its normalised string (see [`normalize`]).
///
/// A URL that is already normalised (every URL from the extractor is) is hashed as it is,
/// with no allocation; any other URL is normalised on a copy first, so equivalent
/// spellings always get one fingerprint.
pub fn fingerprint(url: &Url) -> Fingerprint {
    if is_normalized(url) {
        Fingerprint(xxh3_128(url.as_str().as_bytes()))
    } else {
        let mut copy = url.clone();
        normalize(&mut copy);
        Fingerprint(xxh3_128(copy.as_str().as_bytes()))
    }
}

/// Whether the URL's path ends in an extension of a file that is not an HTML page
/// (documents, images, audio, video, archives, fonts, executables, style sheets and
/// scripts), compared ASCII-case-insensitively: the idea of Scrapy's `IGNORED_EXTENSIONS`.
///
/// Only the last path segment counts; the query is ignored (`/img.php?f=a.png` is not
/// binary, `/a.PNG?x=1` is).
pub fn has_binary_extension(url: &Url) -> bool {
    let path = url.path();
    let last = match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    let Some(dot) = last.rfind('.') else {
        return false;
    };
    let ext = &last.as_bytes()[dot + 1..];
    if ext.is_empty() || ext.len() > 8 {
        return false;
    }
    let mut buf = [0u8; 8];
    for (b, e) in buf.iter_mut().zip(ext) {
        *b = e.to_ascii_lowercase();
    }
    is_binary_extension(&buf[..ext.len()])
}

/// `ext` is lowercase ASCII without the dot.
fn is_binary_extension(ext: &[u8]) -> bool {
    matches!(
        ext,
        // archives
        b"7z" | b"7zip" | b"bz2" | b"gz" | b"tgz" | b"rar" | b"tar" | b"xz" | b"zip" | b"zst"
            | b"lz" | b"lzma" | b"cab"
            // images
            | b"mng" | b"pct" | b"bmp" | b"gif" | b"jpg" | b"jpeg" | b"jpe" | b"png" | b"pst"
            | b"psp" | b"psd" | b"tif" | b"tiff" | b"ai" | b"drw" | b"dxf" | b"eps" | b"ps"
            | b"svg" | b"svgz" | b"cdr" | b"ico" | b"webp" | b"avif" | b"heic" | b"heif"
            | b"jxl" | b"raw" | b"cr2" | b"nef"
            // audio
            | b"mp3" | b"wma" | b"ogg" | b"oga" | b"wav" | b"ra" | b"aac" | b"mid" | b"midi"
            | b"au" | b"aiff" | b"aif" | b"flac" | b"m4a" | b"opus" | b"weba"
            // video
            | b"3gp" | b"asf" | b"asx" | b"avi" | b"mov" | b"mp4" | b"mpg" | b"mpeg" | b"qt"
            | b"rm" | b"swf" | b"wmv" | b"m4v" | b"flv" | b"webm" | b"mkv" | b"ogv" | b"ts"
            | b"m2ts" | b"vob"
            // office documents
            | b"xls" | b"xlsx" | b"xlsm" | b"ppt" | b"pptx" | b"pps" | b"ppsx" | b"doc"
            | b"docx" | b"odt" | b"ods" | b"odg" | b"odp" | b"rtf" | b"pdf" | b"epub"
            | b"mobi" | b"pages" | b"numbers" | b"key"
            // fonts
            | b"woff" | b"woff2" | b"ttf" | b"otf" | b"eot"
            // executables, packages, disk images
            | b"exe" | b"bin" | b"dmg" | b"iso" | b"img" | b"apk" | b"msi" | b"deb" | b"rpm"
            | b"jar" | b"dll" | b"so" | b"class" | b"wasm"
            // web assets that are not pages
            | b"css" | b"js" | b"mjs" | b"map" | b"rss"
    )
}

/// The per-host politeness key: `host[:port]`, lowercased, with the port only when it is not
/// the scheme's default (`http://Example.COM:80/` and `http://example.com/` share one key;
/// `http://example.com:8080/` has its own). IPv6 hosts keep their brackets (`[::1]:8080`).
/// A URL without a host (`data:`, `mailto:`) gives the empty string.
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let mut key = String::with_capacity(host.len() + 6);
    key.push_str(host);
    key.make_ascii_lowercase();
    if let Some(port) = url.port() {
        use fmt::Write;
        // Writing to a String cannot fail.
        let _ = write!(key, ":{port}");
    }
    key
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether some `%XX` escape in `s` encodes an unreserved byte or has lowercase hex.
fn needs_percent_normalization(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'%') {
        let p = i + off;
        if let (Some(&h), Some(&l)) = (b.get(p + 1), b.get(p + 2)) {
            if let (Some(hv), Some(lv)) = (hex_value(h), hex_value(l)) {
                if is_unreserved(hv * 16 + lv) || h.is_ascii_lowercase() || l.is_ascii_lowercase() {
                    return true;
                }
            }
        }
        i = p + 1;
    }
    false
}

/// `s` with escapes of unreserved bytes decoded and other escapes' hex uppercased, or
/// `None` when nothing changes.
///
/// An escape right after a `%` that starts no escape (`%%33`, `%3%30`) is kept as it is:
/// decoding it would complete a new escape, and a second pass would decode that one
/// (normalising would not be idempotent).
fn normalize_percent(s: &str) -> Option<String> {
    if !needs_percent_normalization(s) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(&h), Some(&l)) = (b.get(i + 1), b.get(i + 2)) {
                if let (Some(hv), Some(lv)) = (hex_value(h), hex_value(l)) {
                    out.push_str(&s[last..i]);
                    let v = hv * 16 + lv;
                    if is_unreserved(v) && !ends_in_partial_escape(&out) {
                        out.push(char::from(v));
                    } else {
                        out.push('%');
                        out.push(char::from(h.to_ascii_uppercase()));
                        out.push(char::from(l.to_ascii_uppercase()));
                    }
                    last = i + 3;
                    i += 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    (out != s).then_some(out)
}

/// Whether `out` ends with a `%`, or a `%` and one hex digit: a character added after it
/// could complete an escape that was not there.
fn ends_in_partial_escape(out: &str) -> bool {
    match out.as_bytes() {
        [.., b'%'] => true,
        [.., b'%', d] => hex_value(*d).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut u = Url::parse(s).expect("test URL parses");
        normalize(&mut u);
        u.to_string()
    }

    #[test]
    fn url_crate_lowercases_scheme_host_drops_default_port_resolves_dots() {
        assert_eq!(norm("HTTP://EXAMPLE.com:80/a/./b/../c"), "http://example.com/a/c");
        assert_eq!(norm("https://Example.COM:443"), "https://example.com/");
        assert_eq!(norm("http://example.com:8080/x"), "http://example.com:8080/x");
        assert_eq!(norm("http://h/a/%2e%2E/b"), "http://h/b");
        assert_eq!(norm("http://h/../../x"), "http://h/x");
    }

    #[test]
    fn fragment_and_empty_query_dropped() {
        assert_eq!(norm("http://h/p#frag"), "http://h/p");
        assert_eq!(norm("http://h/p?#"), "http://h/p");
        assert_eq!(norm("http://h/p?"), "http://h/p");
        assert_eq!(norm("http://h/p?a=1#x"), "http://h/p?a=1");
    }

    #[test]
    fn percent_encoding_normalised() {
        assert_eq!(norm("http://h/%7Euser/%41b%2d"), "http://h/~user/Ab-");
        assert_eq!(norm("http://h/a%2fb%3a"), "http://h/a%2Fb%3A");
        assert_eq!(norm("http://h/p?q=%61%26%2f"), "http://h/p?q=a%26%2F");
        // Not escapes: left alone.
        assert_eq!(norm("http://h/100%/x%zz%4"), "http://h/100%/x%zz%4");
        // Non-ASCII is encoded by the parser with uppercase hex.
        assert_eq!(norm("http://h/é"), "http://h/%C3%A9");
    }

    #[test]
    fn query_order_is_kept() {
        assert_eq!(norm("http://h/?b=1&a=2"), "http://h/?b=1&a=2");
    }

    #[test]
    fn normalize_is_idempotent() {
        for s in [
            "HTTP://EXAMPLE.com:80/a/./b/../c?x=%7e#f",
            "http://h/%25%32%35",
            "http://h/a%2fb?",
            "https://[::1]:443/%7E/?a=%2a",
        ] {
            let once = norm(s);
            assert_eq!(norm(&once), once, "{s}");
        }
        // %25 is '%', reserved: stays encoded, so %2532 never becomes an escape.
        assert_eq!(norm("http://h/%25%32%35"), "http://h/%2525");
    }

    #[test]
    fn fingerprint_equal_for_equivalent_spellings() {
        let a = Url::parse("HTTP://Example.com:80/%7Ea/./b?#x").expect("parses");
        let b = Url::parse("http://example.com/~a/b").expect("parses");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&b), fingerprint(&Url::parse("http://example.com/~a/c").expect("parses")));
        // Stable across runs: xxh3-128 of the normalised string, no seed.
        assert_eq!(fingerprint(&b), Fingerprint(xxh3_128(b"http://example.com/~a/b")));
        let fp = fingerprint(&b);
        assert_eq!(Fingerprint::from_be_bytes(fp.to_be_bytes()), fp);
        assert_eq!(fp.to_string().len(), 32);
    }

    #[test]
    fn binary_extensions() {
        let bin = |s: &str| has_binary_extension(&Url::parse(s).expect("parses"));
        assert!(bin("http://h/a.pdf"));
        assert!(bin("http://h/a/B.JPG?x=1"));
        assert!(bin("http://h/a.tar.gz"));
        assert!(bin("http://h/style.css"));
        assert!(!bin("http://h/a.html"));
        assert!(!bin("http://h/"));
        assert!(!bin("http://h/pdf"));
        assert!(!bin("http://h/a.pdf/"));
        assert!(!bin("http://h/img.php?f=a.png"));
        assert!(!bin("http://h/a."));
        assert!(!bin("http://h/a.verylongextension"));
        assert!(!bin("http://h/a.p%C3%A9"));
        assert!(!bin("mailto:x@y.pdf.com"));
    }

    #[test]
    fn host_keys() {
        let key = |s: &str| host_key(&Url::parse(s).expect("parses"));
        assert_eq!(key("http://Example.COM/a"), "example.com");
        assert_eq!(key("http://example.com:80/a"), "example.com");
        assert_eq!(key("https://example.com:80/a"), "example.com:80");
        assert_eq!(key("http://example.com:8080/"), "example.com:8080");
        assert_eq!(key("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(key("http://127.0.0.1/"), "127.0.0.1");
        assert_eq!(key("mailto:a@b.c"), "");
        assert_eq!(key("http://xn--bcher-kva.example/"), "xn--bcher-kva.example");
        assert_eq!(key("http://Bücher.example/"), "xn--bcher-kva.example");
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let long = format!("http://h/{}", "%".repeat(100_000));
        let mut cases = vec![
            long,
            "http://h/%".to_string(),
            "http://h/%%%41".to_string(),
            "http://h/%4".to_string(),
            "http://h/?%".to_string(),
            "http://h/?%e2%82".to_string(),
            format!("http://h/{}", "a/../".repeat(10_000)),
            format!("http://h/?{}", "%7e".repeat(10_000)),
            "data:text/html,%41".to_string(),
            "javascript:alert(1)".to_string(),
            "file:///etc/passwd".to_string(),
        ];
        cases.push("http://h/\u{0}%00".to_string());
        for s in cases {
            if let Ok(mut u) = Url::parse(&s) {
                normalize(&mut u);
                let once = u.to_string();
                normalize(&mut u);
                assert_eq!(u.as_str(), once);
                let _ = fingerprint(&u);
                let _ = has_binary_extension(&u);
                let _ = host_key(&u);
            }
        }
        // An escape after a lone '%' is kept: decoding it could make a new escape.
        assert_eq!(norm("http://h/%%%41"), "http://h/%%%41");
        assert_eq!(norm("http://a/?%%330"), "http://a/?%%330");
        assert_eq!(norm("http://a/%3%330%7e"), "http://a/%3%330~");
        assert_eq!(norm("http://h/?%e2%82"), "http://h/?%E2%82");
    }
}
