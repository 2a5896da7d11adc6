//! One HTTP fetch with retries, a body cap, redirects handed back to the frontier, and
//! charset decoding. The `Fetcher` actor runs these.

use std::sync::Arc;
use std::time::Duration;

use encoding_rs::Encoding;
use reqwest::header::{
    HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
    RETRY_AFTER,
};
use reqwest::{Client, StatusCode};
use url::Url;

use super::guard::{AddressGuard, BlockedAddress};
use super::urls;
use crate::observe::{ErrorKind, Stats};
use crate::spec::FetchSpec;

/// The longest Retry-After we wait for; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The first backoff; each retry doubles it, with ±50 % jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// The body buffer's first capacity; it grows as bytes arrive, up to `max_body`.
const INITIAL_BODY_CAPACITY: usize = 16 * 1024;

/// What one fetch (after its retries) came to.
#[derive(Debug)]
pub enum FetchOutcome {
    /// A 2xx answer.
    Fetched {
        /// Its status.
        status: u16,
        /// Whether it is HTML (only HTML goes to parsers).
        html: bool,
        /// The body decoded to UTF-8 (empty when not HTML).
        body: String,
        /// Its ETag and Last-Modified, for a later conditional request.
        validators: Validators,
    },
    /// A 304 answer to a conditional request: the page has not changed.
    NotModified,
    /// A 3xx answer with a usable Location (absolute, normalised).
    Redirect {
        /// Where it points.
        location: Url,
    },
    /// A failure for good.
    Failed {
        /// Its kind, for the summary.
        kind: ErrorKind,
        /// A human-readable detail.
        detail: String,
    },
}

/// What a server said identifies a page's version (ETag, Last-Modified), sent back as
/// If-None-Match / If-Modified-Since on a re-crawl.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The ETag header.
    pub etag: Option<String>,
    /// The Last-Modified header.
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to send back.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Builds the pooled HTTP client for a crawl: rustls, keep-alive, decompression, no
/// automatic redirects (the frontier sees each hop, so scope, robots and dedup apply), and
/// `guard` as its DNS resolver (no connection to a non-public address in a public crawl).
pub fn build_client(spec: &FetchSpec, guard: &AddressGuard) -> Result<Client, reqwest::Error> {
    Client::builder()
        .dns_resolver(Arc::new(guard.clone()))
        .user_agent(spec.user_agent.clone())
        .timeout(spec.timeout.0)
        .connect_timeout(spec.timeout.0.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(spec.per_host.concurrency.max(1) as usize * 2)
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .gzip(true)
        .brotli(true)
        .deflate(true)
        .build()
}

/// Fetches `url`, retrying connection errors, timeouts, 5xx and 429 up to `spec.retries`
/// times with exponential backoff and jitter (Retry-After honoured, up to a minute).
pub async fn fetch(
    client: &Client,
    url: &Url,
    conditional: Option<&Validators>,
    spec: &FetchSpec,
    stats: &Stats,
) -> FetchOutcome {
    let mut attempt = 0u32;
    loop {
        let (outcome, retry_after) = fetch_once(client, url, conditional, spec, stats).await;
        let retryable = match &outcome {
            FetchOutcome::Failed { kind, .. } => match kind {
                ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Truncated => true,
                ErrorKind::HttpStatus(code) => *code >= 500 || *code == 429,
                _ => false,
            },
            _ => false,
        };
        if !retryable || attempt >= spec.retries {
            return outcome;
        }
        let backoff = BASE_BACKOFF.saturating_mul(1 << attempt.min(10)).mul_f64(0.5 + rand::random::<f64>());
        let wait = retry_after.map(|ra| ra.min(MAX_RETRY_AFTER)).unwrap_or(backoff);
        tracing::debug!(%url, attempt, ?wait, "retrying after {outcome:?}");
        Stats::incr(&stats.retries);
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

async fn fetch_once(
    client: &Client,
    url: &Url,
    conditional: Option<&Validators>,
    spec: &FetchSpec,
    stats: &Stats,
) -> (FetchOutcome, Option<Duration>) {
    let mut request = client.get(url.clone());
    if let Some(v) = conditional {
        if let Some(etag) = &v.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(date) = &v.last_modified {
            request = request.header(IF_MODIFIED_SINCE, date);
        }
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return (failed_from(&e), None),
    };
    let status = response.status();
    let headers = response.headers();
    if status == StatusCode::NOT_MODIFIED && conditional.is_some() {
        return (FetchOutcome::NotModified, None);
    }
    if status.is_redirection() {
        return (redirect(url, headers), None);
    }
    if !status.is_success() {
        let retry_after = retry_after(headers);
        let detail = format!("HTTP {status}");
        return (FetchOutcome::Failed { kind: ErrorKind::HttpStatus(status.as_u16()), detail }, retry_after);
    }
    let max = spec.max_body.0;
    if let Some(len) = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
        if len > max {
            return (too_large(len, max), None);
        }
    }
    let text = |name| headers.get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok());
    let content_type = text(CONTENT_TYPE).map(str::to_ascii_lowercase);
    let validators = Validators {
        etag: text(ETAG).map(str::to_string),
        last_modified: text(LAST_MODIFIED).map(str::to_string),
    };
    // The buffer grows as bytes arrive: a Content-Length is a claim, not a size to reserve.
    let mut body = Vec::with_capacity(INITIAL_BODY_CAPACITY.min(max as usize));
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > max {
                    return (too_large(body.len() as u64 + chunk.len() as u64, max), None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return (body_failed(&e, body.len()), None),
        }
    }
    stats.bytes.fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let html = is_html(content_type.as_deref(), &body);
    let body = if html { decode(body, content_type.as_deref()) } else { String::new() };
    (FetchOutcome::Fetched { status: status.as_u16(), html, body, validators }, None)
}

fn too_large(len: u64, max: u64) -> FetchOutcome {
    FetchOutcome::Failed {
        kind: ErrorKind::BodyTooLarge,
        detail: format!("body of at least {len} bytes is over max_body ({max} bytes)"),
    }
}

/// A request that failed before its body: classified by what happened.
fn failed_from(e: &reqwest::Error) -> FetchOutcome {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if caused_by::<BlockedAddress>(e) {
        ErrorKind::BlockedAddress
    } else if let Some(h) = hyper_cause(e).filter(|h| h.is_parse() || h.is_parse_too_large()) {
        tracing::trace!("bad response: {h}");
        ErrorKind::BadResponse
    } else if hyper_cause(e).is_some_and(hyper::Error::is_incomplete_message) {
        ErrorKind::Truncated
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    };
    FetchOutcome::Failed { kind, detail: error_chain(e) }
}

/// A body that broke off after `read` bytes: `truncated` (retried), unless it timed out.
fn body_failed(e: &reqwest::Error, read: usize) -> FetchOutcome {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Truncated };
    FetchOutcome::Failed { kind, detail: format!("body cut short after {read} bytes: {}", error_chain(e)) }
}

/// The first error of type `E` in the causes of `e`, if any.
fn cause<E: std::error::Error + 'static>(e: &reqwest::Error) -> Option<&E> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<E>() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

fn caused_by<E: std::error::Error + 'static>(e: &reqwest::Error) -> bool {
    cause::<E>(e).is_some()
}

/// The hyper error under a reqwest error, if any.
fn hyper_cause(e: &reqwest::Error) -> Option<&hyper::Error> {
    cause::<hyper::Error>(e)
}

/// reqwest's Display hides the cause; the chain says what happened.
fn error_chain(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn redirect(url: &Url, headers: &HeaderMap) -> FetchOutcome {
    let location =
        headers.get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|loc| url.join(loc.trim()).ok());
    match location {
        Some(mut location) if matches!(location.scheme(), "http" | "https") => {
            urls::normalize(&mut location);
            FetchOutcome::Redirect { location }
        }
        _ => FetchOutcome::Failed {
            kind: ErrorKind::BadRedirect,
            detail: "redirect without a usable http(s) Location".into(),
        },
    }
}

/// Retry-After as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type {
        Some(ct) => ct.starts_with("text/html") || ct.starts_with("application/xhtml+xml"),
        None => {
            let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
            body[start..].first() == Some(&b'<')
        }
    }
}

/// Decodes a body to UTF-8 by the HTML standard's encoding sniffing, in its order: a BOM,
/// else the Content-Type charset, else a `<meta>` charset in the first 1024 bytes (where
/// UTF-16 means UTF-8: an ASCII-compatible prescan cannot have read UTF-16, and
/// `x-user-defined` means windows-1252), else UTF-8 (invalid bytes become U+FFFD).
pub fn decode(body: Vec<u8>, content_type: Option<&str>) -> String {
    let declared = Encoding::for_bom(&body)
        .map(|(enc, _)| enc)
        .or_else(|| {
            content_type
                .and_then(|ct| charset_param(ct))
                .and_then(|label| Encoding::for_label(label.as_bytes()))
        })
        .or_else(|| meta_charset(&body[..body.len().min(1024)]).map(meta_declared));
    match declared {
        Some(enc) if enc != encoding_rs::UTF_8 => enc.decode(&body).0.into_owned(),
        _ => match String::from_utf8(body) {
            Ok(s) => s.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(s),
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
    }
}

fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches(['"', '\'']))
    })
}

/// What a `<meta>` declaration of `enc` stands for (HTML standard, "prescan a byte stream").
fn meta_declared(enc: &'static Encoding) -> &'static Encoding {
    if enc == encoding_rs::UTF_16BE || enc == encoding_rs::UTF_16LE {
        encoding_rs::UTF_8
    } else if enc == encoding_rs::X_USER_DEFINED {
        encoding_rs::WINDOWS_1252
    } else {
        enc
    }
}

/// The first `charset=` inside a `<meta ...>` tag of `head`.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].windows(5).position(|w| w == b"<meta").map(|i| from + i + 5) {
        let end = lower[start..].iter().position(|&b| b == b'>').map_or(lower.len(), |i| start + i);
        if let Some(enc) = charset_in(&head[start..end], &lower[start..end]) {
            return Some(enc);
        }
        from = end;
    }
    None
}

/// The encoding named after `charset=` in one tag (`tag` and its lowercase copy `lower`).
fn charset_in(tag: &[u8], lower: &[u8]) -> Option<&'static Encoding> {
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let rest = &tag[at..];
    let rest = rest.strip_prefix(b"\"").or_else(|| rest.strip_prefix(b"'")).unwrap_or(rest);
    let end =
        rest.iter().position(|b| matches!(b, b'"' | b'\'' | b';' | b'>' | b' ' | b'/')).unwrap_or(rest.len());
    Encoding::for_label(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_declared_charsets() {
        let latin1 = b"<h1>Caf\xe9 cr\xe8me</h1>".to_vec();
        assert_eq!(decode(latin1, Some("text/html; charset=ISO-8859-1")), "<h1>Café crème</h1>");
        let sjis = encoding_rs::SHIFT_JIS.encode("<meta charset=\"shift_jis\"><h1>東京</h1>").0.into_owned();
        assert_eq!(decode(sjis, Some("text/html")), "<meta charset=\"shift_jis\"><h1>東京</h1>");
        assert_eq!(decode(b"\xef\xbb\xbfok".to_vec(), None), "ok");
        assert_eq!(decode(b"bad \xff".to_vec(), None), "bad \u{fffd}");
    }

    #[test]
    fn html_detection() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(!is_html(Some("application/pdf"), b"<"));
        assert!(is_html(None, b"  <!doctype html>"));
    }
}
