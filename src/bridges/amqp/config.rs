//! The AMQP parts of the crawl spec: `brokers.amqp` (the connection and the topology to
//! declare), `frontier.amqp` and `output: - amqp`. The password is never printed nor
//! serialised: the URL goes through [`mask_url`](crate::bridges::redis::mask_url).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::HumanDuration;

/// `brokers.amqp:` — one RabbitMQ node (or any AMQP 0-9-1 broker).
#[derive(Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpBrokerSpec {
    /// `amqp://user:password@host:port/vhost` (`%2f` is the default vhost `/`), or
    /// `amqps://` for TLS. Put the password in `${ENV}`. Never printed unmasked.
    #[serde(serialize_with = "serialize_masked_url")]
    pub url: String,
    /// The heartbeat interval asked of the broker (a dead peer is noticed after about two).
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
    /// Unacknowledged messages a consumer may hold (`basic.qos`); the fetch concurrency
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u16>,
    /// Connecting (TCP, TLS and the AMQP handshake) gives up after this long.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// With `amqps://`: a PEM file of the CA that signed the broker's certificate (a
    /// private CA). Without it the system's trust store is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Exchanges, queues and bindings declared (idempotently) before the crawl.
    #[serde(default, skip_serializing_if = "TopologySpec::is_empty")]
    pub topology: TopologySpec,
}

impl fmt::Debug for AmqpBrokerSpec {
    /// Masks the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBrokerSpec")
            .field("url", &crate::bridges::redis::mask_url(&self.url))
            .field("heartbeat", &self.heartbeat)
            .field("prefetch", &self.prefetch)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_file", &self.ca_file)
            .field("topology", &self.topology)
            .finish()
    }
}

fn serialize_masked_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::bridges::redis::mask_url(url))
}

fn default_heartbeat() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn yes() -> bool {
    true
}

/// `brokers.amqp.topology:` — what is declared at start, in this order: exchanges, queues,
/// bindings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// `exchange.declare` each.
    #[serde(default)]
    pub exchanges: Vec<ExchangeSpec>,
    /// `queue.declare` each.
    #[serde(default)]
    pub queues: Vec<QueueSpec>,
    /// `queue.bind` each.
    #[serde(default)]
    pub bindings: Vec<BindingSpec>,
}

impl TopologySpec {
    /// Nothing to declare.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty() && self.queues.is_empty() && self.bindings.is_empty()
    }
}

/// An AMQP exchange type.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// The routing key equals the binding key.
    #[default]
    Direct,
    /// Every bound queue.
    Fanout,
    /// Binding keys with `*` (one dot-separated word) and `#` (zero or more words).
    Topic,
    /// The message's headers against the binding's, `x-match: all | any`.
    Headers,
}

/// One exchange.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSpec {
    /// Its name.
    pub name: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    #[serde(rename = "type", default)]
    pub kind: ExchangeType,
    /// Survives a broker restart.
    #[serde(default = "yes")]
    pub durable: bool,
    /// Deleted when its last binding goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Extra `x-` arguments (`alternate-exchange`, ...).
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

/// A queue type.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// A classic queue.
    #[default]
    Classic,
    /// A replicated Raft queue (always durable, never exclusive).
    Quorum,
}

/// One queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Its name.
    pub name: String,
    /// Survives a broker restart (its persistent messages too).
    #[serde(default = "yes")]
    pub durable: bool,
    /// Used by one connection only, deleted when it closes.
    #[serde(default)]
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// `classic` or `quorum` (`x-queue-type`).
    #[serde(rename = "type", default)]
    pub kind: QueueType,
    /// `x-max-priority`: message priorities 0..=this are honoured (classic queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_priority: Option<u8>,
    /// `x-dead-letter-exchange`: where rejected and expired messages go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_routing_key: Option<String>,
    /// `x-message-ttl`: a message older than this is dropped (or dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ttl: Option<HumanDuration>,
    /// Extra `x-` arguments.
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

/// How a headers binding matches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeadersMatch {
    /// Every header of the binding must match.
    #[default]
    All,
    /// One is enough.
    Any,
}

/// One binding of a queue to an exchange.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    /// The exchange.
    pub exchange: String,
    /// The queue.
    pub queue: String,
    /// The binding key (direct, topic; ignored by fanout and headers).
    #[serde(default)]
    pub routing_key: String,
    /// Headers exchanges: the headers to match.
    #[serde(default)]
    pub headers: BTreeMap<String, serde_json::Value>,
    /// Headers exchanges: `all` or `any` (`x-match`).
    #[serde(rename = "match", default)]
    pub matches: HeadersMatch,
}

/// `frontier.amqp:` — the queues of a frontier kept in RabbitMQ.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpFrontierSpec {
    /// The durable queue of requests; `<name>.requests` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The queue a plain producer sends start URLs to; `<name>.start_urls` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_queue: Option<String>,
    /// The queue's quorum or classic type (`classic`: priorities need it).
    #[serde(rename = "type", default)]
    pub kind: QueueType,
    /// The requests queue's `x-dead-letter-exchange`: a request dead-lettered by the crawl
    /// (a page that kept crashing its parser, say) is rejected without requeue, and the
    /// broker routes it there (with its `x-death` header), besides `dead_letters.jsonl`.
    /// Without it, a dead-lettered request is acked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead letters are published with (`x-dead-letter-routing-key`); the
    /// request's own (the queue's name) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_routing_key: Option<String>,
}

/// `output: - amqp: {...}` — each item published to an exchange of `brokers.amqp`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpOutputSpec {
    /// The exchange (`""` is the default exchange: the routing key names a queue).
    pub exchange: String,
    /// The routing key: text with `{url}`, `{host}` or `{<item field>}` placeholders.
    #[serde(default)]
    pub routing_key: String,
    /// Headers set on every message (a headers exchange routes on them); values may use
    /// the same placeholders.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Fills `{url}`, `{host}` and `{field}` in `template` from an item (an unknown field is
/// empty text).
pub fn render_template(template: &str, item: &crate::crawl::Item) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match name {
            "url" => out.push_str(&item.url),
            "host" => {
                if let Some(host) =
                    url::Url::parse(&item.url).ok().and_then(|u| u.host_str().map(str::to_string))
                {
                    out.push_str(&host);
                }
            }
            field => match item.fields.get(field) {
                Some(serde_json::Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => {}
            },
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}
