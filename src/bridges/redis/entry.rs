//! Queue entries of the Redis frontier: a request as the bytes kept in the queue, and back.
//!
//! - native layout: arachne's JSON (`{"url", "depth", "redirect_chain", "priority"}`);
//! - scrapy-redis layout: the dict of Scrapy's `Request.to_dict()` (url, callback, errback,
//!   headers, method, body, cookies, meta, encoding, priority, dont_filter, flags,
//!   cb_kwargs), written as JSON or, with `frontier.serializer: pickle`, as a pickle
//!   (scrapy-redis's default `picklecompat`: `pickle.dumps(d, protocol=-1)`), through
//!   `serde-pickle`. Both are read whatever the setting: a pickle starts with the PROTO
//!   opcode (`0x80`), JSON with `{`.
//!
//! arachne's depth is Scrapy's `meta["depth"]`, and its redirect chain
//! `meta["arachne_redirect_chain"]` (32-hex fingerprints), which Scrapy carries along.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};

use super::frontier::Layout;
use crate::state::PendingRequest;

/// What the scrapy-redis layout writes to the queue (it reads both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Serializer {
    /// JSON text (readable by any client; a Python spider needs a JSON `SCHEDULER_SERIALIZER`).
    #[default]
    Json,
    /// Python pickles of `Request.to_dict()`, as scrapy-redis's default serializer writes:
    /// unmodified scrapy-redis spiders read them.
    Pickle,
}

/// Why a request could not be written as a queue entry.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// serde-pickle failed.
    #[error(transparent)]
    Pickle(#[from] serde_pickle::Error),
}

/// A request as a native queue entry (JSON): the [`PendingRequest`] fields and the priority.
#[derive(Serialize, Deserialize)]
struct NativeEntry<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    depth: u32,
    #[serde(default)]
    redirect_chain: Vec<u128>,
    #[serde(default)]
    priority: i32,
}

/// A request as a scrapy-redis JSON entry: the shape of Scrapy's `Request.to_dict()`.
#[derive(Serialize, Deserialize)]
struct ScrapyEntry {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    meta: ScrapyMeta,
    #[serde(default)]
    dont_filter: bool,
    #[serde(default)]
    callback: Option<String>,
    #[serde(default)]
    errback: Option<String>,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    cookies: serde_json::Value,
    #[serde(default = "utf8")]
    encoding: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    cb_kwargs: serde_json::Map<String, serde_json::Value>,
}

fn get() -> String {
    "GET".into()
}

fn utf8() -> String {
    "utf-8".into()
}

#[derive(Serialize, Deserialize, Default)]
struct ScrapyMeta {
    #[serde(default)]
    depth: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    arachne_redirect_chain: Vec<String>,
}

/// The entry for `req` at `priority` in `layout` (`serializer` applies to the scrapy-redis
/// layout; the native one is always JSON).
pub(crate) fn encode(
    layout: Layout,
    serializer: Serializer,
    req: &PendingRequest,
    priority: i32,
) -> Result<Vec<u8>, EncodeError> {
    let chain = || req.redirect_chain.iter().map(|f| format!("{f:032x}")).collect::<Vec<_>>();
    Ok(match (layout, serializer) {
        (Layout::Native, _) => serde_json::to_vec(&NativeEntry {
            url: Cow::Borrowed(&req.url),
            depth: req.depth,
            redirect_chain: req.redirect_chain.clone(),
            priority,
        })?,
        (Layout::ScrapyRedis, Serializer::Json) => serde_json::to_vec(&ScrapyEntry {
            url: req.url.clone(),
            method: get(),
            priority,
            meta: ScrapyMeta { depth: req.depth, arachne_redirect_chain: chain() },
            dont_filter: false,
            callback: None,
            errback: None,
            headers: serde_json::Map::new(),
            body: String::new(),
            cookies: serde_json::Value::Object(serde_json::Map::new()),
            encoding: utf8(),
            flags: Vec::new(),
            cb_kwargs: serde_json::Map::new(),
        })?,
        (Layout::ScrapyRedis, Serializer::Pickle) => pickle_request(req, priority, chain())?,
    })
}

/// `Request.to_dict()` of a plain GET as a pickle (`callback: None`: the spider's `parse`).
fn pickle_request(req: &PendingRequest, priority: i32, chain: Vec<String>) -> Result<Vec<u8>, EncodeError> {
    let key = |k: &str| HashableValue::String(k.to_string());
    let text = |s: &str| Value::String(s.to_string());
    let mut meta = BTreeMap::new();
    meta.insert(key("depth"), Value::I64(i64::from(req.depth)));
    if !chain.is_empty() {
        meta.insert(
            key("arachne_redirect_chain"),
            Value::List(chain.into_iter().map(Value::String).collect()),
        );
    }
    let dict: BTreeMap<HashableValue, Value> = [
        ("url", text(&req.url)),
        ("callback", Value::None),
        ("errback", Value::None),
        ("headers", Value::Dict(BTreeMap::new())),
        ("body", Value::Bytes(Vec::new())),
        ("cookies", Value::Dict(BTreeMap::new())),
        ("meta", Value::Dict(meta)),
        ("encoding", text("utf-8")),
        ("flags", Value::List(Vec::new())),
        ("cb_kwargs", Value::Dict(BTreeMap::new())),
        ("dont_filter", Value::Bool(false)),
        ("method", text("GET")),
        ("priority", Value::I64(i64::from(priority))),
    ]
    .into_iter()
    .map(|(k, v)| (key(k), v))
    .collect();
    Ok(serde_pickle::value_to_vec(&Value::Dict(dict), SerOptions::new())?)
}

/// The request and priority of a queue entry, or why it cannot be read (the reason the dead
/// key records).
pub(crate) fn decode(layout: Layout, entry: &[u8]) -> Result<(PendingRequest, i32), String> {
    match layout {
        Layout::Native => {
            let text = std::str::from_utf8(entry).map_err(|_| "not UTF-8 text".to_string())?;
            let e: NativeEntry<'_> =
                serde_json::from_str(text).map_err(|e| format!("not an arachne request ({e})"))?;
            let req =
                PendingRequest { url: e.url.into_owned(), depth: e.depth, redirect_chain: e.redirect_chain };
            Ok((req, e.priority))
        }
        Layout::ScrapyRedis if entry.first() == Some(&0x80) => unpickle_request(entry),
        Layout::ScrapyRedis => {
            let text =
                std::str::from_utf8(entry).map_err(|_| "neither a pickle nor UTF-8 JSON text".to_string())?;
            let e: ScrapyEntry =
                serde_json::from_str(text).map_err(|e| format!("not a JSON Scrapy request ({e})"))?;
            only_get(&e.method)?;
            let chain = parse_chain(e.meta.arachne_redirect_chain.iter().map(String::as_str));
            // The entry's own priority: the score can have changed (a reaped lease goes back
            // at the head), and Scrapy's `to_dict` writes `priority` too.
            Ok((PendingRequest { url: e.url, depth: e.meta.depth, redirect_chain: chain }, e.priority))
        }
    }
}

fn only_get(method: &str) -> Result<(), String> {
    if method.eq_ignore_ascii_case("GET") {
        Ok(())
    } else {
        Err(format!("a {method} request: arachne fetches with GET only"))
    }
}

fn parse_chain<'a>(hex: impl Iterator<Item = &'a str>) -> Vec<u128> {
    hex.filter_map(|h| u128::from_str_radix(h, 16).ok()).collect()
}

/// A pickled `Request.to_dict()` (any protocol; objects of classes arachne does not know,
/// e.g. in `meta`, read as `None`).
fn unpickle_request(entry: &[u8]) -> Result<(PendingRequest, i32), String> {
    let options = DeOptions::new().replace_unresolved_globals().replace_recursive_structures();
    let value =
        serde_pickle::value_from_slice(entry, options).map_err(|e| format!("a broken pickle ({e})"))?;
    let Value::Dict(dict) = value else {
        return Err("a pickle of something other than a dict (not Request.to_dict())".into());
    };
    let field = |k: &str| dict.get(&HashableValue::String(k.to_string()));
    let url = field("url").and_then(as_text).ok_or("a pickled dict without a string \"url\"")?;
    if let Some(method) = field("method").and_then(as_text) {
        only_get(&method)?;
    }
    let priority = field("priority").and_then(as_int).unwrap_or(0);
    let meta = match field("meta") {
        Some(Value::Dict(meta)) => Some(meta),
        _ => None,
    };
    let meta_field = |k: &str| meta.and_then(|m| m.get(&HashableValue::String(k.to_string())));
    let depth = meta_field("depth").and_then(as_int).unwrap_or(0);
    let chain = match meta_field("arachne_redirect_chain") {
        Some(Value::List(l)) => {
            let texts: Vec<String> = l.iter().filter_map(as_text).collect();
            parse_chain(texts.iter().map(String::as_str))
        }
        _ => Vec::new(),
    };
    let req = PendingRequest {
        url: url.trim().to_string(),
        depth: u32::try_from(depth).unwrap_or(0),
        redirect_chain: chain,
    };
    Ok((req, i32::try_from(priority).unwrap_or(if priority < 0 { i32::MIN } else { i32::MAX })))
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::I64(n) => Some(*n),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, depth: u32, chain: Vec<u128>) -> PendingRequest {
        PendingRequest { url: url.into(), depth, redirect_chain: chain }
    }

    /// `picklecompat.dumps(Request(url, callback=spider.parse, meta={"depth": 2},
    /// headers={"X-A": "b"}).to_dict(spider=spider))`, as Python 3.11 / Scrapy 2.19 wrote it
    /// (protocol 5: FRAME, MEMOIZE, bytes header names with lists of bytes values).
    const SCRAPY_PICKLE_HEX: &str = concat!(
        "800595df000000000000007d94288c0375726c948c19687474703a2f2f3132372e302e302e313a352f697465",
        "6d2f33948c0863616c6c6261636b948c057061727365948c076572726261636b944e8c076865616465727394",
        "7d944303582d41945d944301629461738c04626f6479944300948c07636f6f6b696573947d948c046d657461",
        "947d948c056465707468944b02738c08656e636f64696e67948c057574662d38948c05666c616773945d948c",
        "0963625f6b7761726773947d948c0b646f6e745f66696c74657294898c066d6574686f64948c03474554948c",
        "087072696f72697479944b00752e",
    );

    fn scrapy_pickle() -> Vec<u8> {
        let hex = SCRAPY_PICKLE_HEX;
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn reads_what_scrapy_redis_pickles() {
        let (r, priority) = decode(Layout::ScrapyRedis, &scrapy_pickle()).expect("decoded");
        assert_eq!(r, req("http://127.0.0.1:5/item/3", 2, vec![]));
        assert_eq!(priority, 0);
    }

    #[test]
    fn pickles_round_trip_and_json_still_reads() {
        let r = req("http://h/a?b=1", 4, vec![0xabc, u128::MAX]);
        for serializer in [Serializer::Json, Serializer::Pickle] {
            let bytes = encode(Layout::ScrapyRedis, serializer, &r, -3).expect("encoded");
            assert_eq!(bytes[0] == 0x80, serializer == Serializer::Pickle);
            assert_eq!(decode(Layout::ScrapyRedis, &bytes), Ok((r.clone(), -3)));
        }
        let native = encode(Layout::Native, Serializer::Pickle, &r, 7).expect("encoded");
        assert_eq!(native[0], b'{', "the native layout is always JSON");
        assert_eq!(decode(Layout::Native, &native), Ok((r, 7)));
    }

    #[test]
    fn unreadable_entries_say_why() {
        let broken = [0x80u8, 0x04, 0x95, 3, 0, 0, 0, 0, 0, 0, 0, b'}', 0x94];
        assert!(decode(Layout::ScrapyRedis, &broken).is_err_and(|e| e.contains("broken pickle")));
        let post = br#"{"url": "http://h/", "method": "POST"}"#;
        assert!(decode(Layout::ScrapyRedis, post).is_err_and(|e| e.contains("POST")));
        let list = serde_pickle::value_to_vec(&Value::List(vec![]), SerOptions::new()).expect("pickle");
        assert!(decode(Layout::ScrapyRedis, &list).is_err_and(|e| e.contains("not Request.to_dict")));
        assert!(decode(Layout::Native, &[0xff, 0xfe]).is_err_and(|e| e.contains("UTF-8")));
    }
}
