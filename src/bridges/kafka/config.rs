//! The Kafka parts of the crawl spec: `brokers.kafka`, `frontier.kafka`, `output: - kafka`,
//! and how they become librdkafka settings. Secrets (a SASL password, any `client:`
//! property whose name says password or secret) are never printed nor serialised.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

#[cfg(feature = "kafka")]
use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::HumanDuration;

/// `brokers.kafka:` — one Kafka cluster (or any Kafka-protocol broker).
#[derive(Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaBrokerSpec {
    /// The bootstrap servers, `host:port[,host:port...]` (librdkafka's `bootstrap.servers`).
    pub bootstrap: String,
    /// librdkafka properties passed through as they are (`"session.timeout.ms": 6000`,
    /// `"message.max.bytes": 2000000`, ...). They win over arachne's own settings.
    #[serde(default, serialize_with = "serialize_masked_client")]
    pub client: BTreeMap<String, serde_json::Value>,
    /// TLS and SASL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<KafkaSecuritySpec>,
    /// Connecting (and the startup metadata request) gives up after this long.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
}

/// `brokers.kafka.security:` — how the connection is secured and who logs in.
#[derive(Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecuritySpec {
    /// `plaintext` (the default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub protocol: KafkaProtocol,
    /// With SASL: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// With SASL: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// With SASL: the password. Put it in `${ENV}`; never printed.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// With TLS: a PEM file of the CA that signed the brokers' certificates (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl KafkaProtocol {
    #[cfg(feature = "kafka")]
    fn as_str(self) -> &'static str {
        match self {
            KafkaProtocol::Plaintext => "plaintext",
            KafkaProtocol::Ssl => "ssl",
            KafkaProtocol::SaslPlaintext => "sasl_plaintext",
            KafkaProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

impl fmt::Debug for KafkaBrokerSpec {
    /// Masks secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBrokerSpec")
            .field("bootstrap", &self.bootstrap)
            .field("client", &masked_client(&self.client))
            .field("security", &self.security)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl fmt::Debug for KafkaSecuritySpec {
    /// Masks the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSecuritySpec")
            .field("protocol", &self.protocol)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Whether a librdkafka property holds a secret (its value is never printed).
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret") || n.ends_with(".key.pem") || n.contains("token")
}

fn masked_client(client: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, serde_json::Value> {
    client
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_property(k) { serde_json::Value::String("***".into()) } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

fn serialize_masked_client<S: serde::Serializer>(
    client: &BTreeMap<String, serde_json::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    masked_client(client).serialize(s)
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// A `client:` value as librdkafka wants it: text.
#[cfg(feature = "kafka")]
fn property_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl KafkaBrokerSpec {
    /// Adds the bootstrap servers, the security settings, then the `client:` properties
    /// (which win) to `config`.
    #[cfg(feature = "kafka")]
    pub fn apply(&self, config: &mut ClientConfig) {
        config.set("bootstrap.servers", self.bootstrap.trim());
        config.set(
            "socket.connection.setup.timeout.ms",
            self.connect_timeout.0.as_millis().max(1000).to_string(),
        );
        if let Some(security) = &self.security {
            config.set("security.protocol", security.protocol.as_str());
            if let Some(m) = &security.mechanism {
                config.set("sasl.mechanism", m);
            }
            if let Some(u) = &security.username {
                config.set("sasl.username", u);
            }
            if let Some(p) = &security.password {
                config.set("sasl.password", p);
            }
            if let Some(ca) = &security.ca_file {
                config.set("ssl.ca.location", ca.display().to_string());
            }
        }
        for (k, v) in &self.client {
            config.set(k, property_text(v));
        }
    }

    /// Checks the bootstrap list's shape (`host:port`, comma-separated).
    pub fn check_bootstrap(&self) -> Result<(), String> {
        let list = self.bootstrap.trim();
        if list.is_empty() {
            return Err("it is empty".into());
        }
        for entry in list.split(',') {
            let entry = entry.trim();
            let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
            let Some((host, port)) = entry.rsplit_once(':') else {
                return Err(format!("'{entry}' has no port (write host:port)"));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("'{entry}' is not host:port"));
            }
        }
        Ok(())
    }
}

/// `frontier.kafka:` — where a Kafka-backed frontier keeps its requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaFrontierSpec {
    /// The requests topic; `<name>.requests` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Partitions of the requests topic (and of its seen-set changelog), when arachne
    /// creates them: the most processes that can share the crawl.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics arachne creates.
    #[serde(default = "default_replication")]
    pub replication: i32,
    /// The message key, which picks the partition: `host` (one host's requests in one
    /// partition, so per-host politeness holds inside one process) or `url` (spread evenly,
    /// for a crawl of one host by many processes).
    #[serde(default)]
    pub key: FrontierKey,
    /// The consumer group of the crawl's processes; the crawl's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The topic a plain producer writes start URLs to; `<name>.start_urls` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_topic: Option<String>,
    /// The compacted changelog of the seen-set; `<name>.seen` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_topic: Option<String>,
    /// On a rebalance, how long a process finishes the requests it holds from its revoked
    /// partitions before it gives them up to the new owner.
    #[serde(default = "default_rebalance_wait")]
    pub rebalance_wait: HumanDuration,
}

impl Default for KafkaFrontierSpec {
    fn default() -> Self {
        Self {
            topic: None,
            partitions: default_partitions(),
            replication: default_replication(),
            key: FrontierKey::Host,
            group: None,
            start_topic: None,
            seen_topic: None,
            rebalance_wait: default_rebalance_wait(),
        }
    }
}

fn default_partitions() -> i32 {
    12
}

fn default_replication() -> i32 {
    1
}

fn default_rebalance_wait() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// What a request's Kafka message key is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FrontierKey {
    /// `host[:port]`.
    #[default]
    Host,
    /// The whole URL.
    Url,
}

/// `output: - kafka: {...}` — each item produced to a Kafka topic of `brokers.kafka`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutputSpec {
    /// The topic (created when missing).
    pub topic: String,
    /// The message key: `url` (the default), `host`, or the name of one of the item's
    /// fields (its text; no key when the item lacks it).
    #[serde(default = "default_output_key")]
    pub key: String,
    /// `none` (the default), `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: Compression,
}

fn default_output_key() -> String {
    "url".into()
}

/// A producer's compression codec.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's `compression.codec` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(bootstrap: &str) -> KafkaBrokerSpec {
        KafkaBrokerSpec {
            bootstrap: bootstrap.into(),
            client: BTreeMap::new(),
            security: None,
            connect_timeout: default_connect_timeout(),
        }
    }

    #[test]
    fn bootstrap_lists() {
        assert!(broker("127.0.0.1:9092").check_bootstrap().is_ok());
        assert!(broker("a:1, b:2").check_bootstrap().is_ok());
        assert!(broker("").check_bootstrap().is_err());
        assert!(broker("localhost").check_bootstrap().unwrap_err().contains("no port"));
        assert!(broker("h:x").check_bootstrap().is_err());
    }

    #[test]
    fn secrets_are_masked() {
        let mut b = broker("h:1");
        b.client.insert("sasl.password".into(), "hunter2".into());
        b.client.insert("session.timeout.ms".into(), 6000.into());
        b.security = Some(KafkaSecuritySpec {
            protocol: KafkaProtocol::SaslSsl,
            mechanism: Some("SCRAM-SHA-512".into()),
            username: Some("app".into()),
            password: Some("s3cret".into()),
            ca_file: None,
        });
        let debug = format!("{b:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("s3cret"), "{debug}");
        let json = serde_json::to_string(&b).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("s3cret"), "{json}");
        assert!(json.contains("6000"), "{json}");
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn client_properties_win() {
        let mut b = broker("h:1");
        b.client.insert("sasl.password".into(), "hunter2".into());
        b.client.insert("session.timeout.ms".into(), 6000.into());
        b.security = Some(KafkaSecuritySpec {
            protocol: KafkaProtocol::SaslSsl,
            mechanism: Some("SCRAM-SHA-512".into()),
            username: Some("app".into()),
            password: Some("s3cret".into()),
            ca_file: None,
        });
        let mut config = ClientConfig::new();
        b.apply(&mut config);
        assert_eq!(config.get("session.timeout.ms"), Some("6000"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"), "client: wins over security:");
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
    }
}
