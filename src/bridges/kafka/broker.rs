//! One Kafka cluster as `brokers.kafka` describes it: the startup check that turns a wrong
//! address or a refused login into a clear error, topic creation, and the clients that
//! the frontier, the sink and the bridges build on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

use super::config::KafkaBrokerSpec;
use crate::bridges::BridgeError;
use crate::spec::CrawlSpec;

/// A topic to create when missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: i32,
    /// Its replication factor.
    pub replication: i32,
    /// Topic configs (`cleanup.policy=compact`, ...).
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// `name` with `partitions` and `replication`, default configs.
    pub fn new(name: impl Into<String>, partitions: i32, replication: i32) -> Self {
        Self { name: name.into(), partitions, replication, configs: Vec::new() }
    }

    /// With a topic config.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.to_string(), value.to_string()));
        self
    }
}

/// One Kafka cluster: its settings (parsed, not yet connected). Cheap to clone.
#[derive(Clone)]
pub struct KafkaBroker {
    spec: Arc<KafkaBrokerSpec>,
}

impl std::fmt::Debug for KafkaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBroker").field("bootstrap", &self.spec.bootstrap).finish()
    }
}

impl KafkaBroker {
    /// The broker of `spec` (its bootstrap list checked for shape).
    pub fn new(spec: KafkaBrokerSpec) -> Result<Self, BridgeError> {
        spec.check_bootstrap().map_err(|reason| BridgeError::BadUrl {
            broker: "Kafka",
            url: spec.bootstrap.clone(),
            reason,
        })?;
        Ok(Self { spec: Arc::new(spec) })
    }

    /// The broker of `brokers.kafka`, for `user` (named in the error when it is not set).
    pub fn from_spec(spec: &CrawlSpec, user: &str) -> Result<Self, BridgeError> {
        let broker = spec
            .brokers
            .kafka
            .clone()
            .ok_or_else(|| BridgeError::NoBroker { broker: "kafka", user: user.to_string() })?;
        Self::new(broker)
    }

    /// The bootstrap servers, for logs and errors.
    pub fn bootstrap(&self) -> &str {
        &self.spec.bootstrap
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.spec.connect_timeout.0.max(Duration::from_millis(100))
    }

    /// The librdkafka settings of a client of this broker: `defaults` (a client's own
    /// settings), then the spec's bootstrap servers, security and `client:` properties,
    /// which win.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        self.spec.apply(&mut config);
        config
    }

    /// Asks the cluster for its metadata within the connect timeout: `Ok` when a broker
    /// answered and accepted the credentials. The error says which of those failed.
    pub async fn check(&self) -> Result<(), BridgeError> {
        let this = self.clone();
        let checked = tokio::task::spawn_blocking(move || this.check_blocking()).await;
        checked.unwrap_or_else(|e| Err(self.other(format!("the check did not finish: {e}"))))
    }

    /// [`KafkaBroker::check`] for code outside an async runtime.
    pub fn check_blocking(&self) -> Result<(), BridgeError> {
        let context = LinkContext::default();
        let client: BaseConsumer<LinkContext> =
            self.client_config(&[]).create_with_context(context).map_err(|e| self.error(&e, ""))?;
        match client.fetch_metadata(None, self.connect_timeout()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let last = client.context().last_error();
                Err(self.error(&e, &last))
            }
        }
    }

    /// Creates the topics that are missing; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: Vec<TopicSpec>) -> Result<(), BridgeError> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config(&[]).create().map_err(|e| self.error(&e, ""))?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                let (name, partitions, replication, configs) =
                    (&t.name, t.partitions, t.replication, &t.configs);
                let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
                for (k, v) in configs {
                    t = t.set(k, v);
                }
                t
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.connect_timeout()));
        let results = admin.create_topics(&new, &options).await.map_err(|e| self.error(&e, ""))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(self.other(format!("cannot create topic '{topic}': {code}")))
                }
            }
        }
        Ok(())
    }

    /// Sorts a librdkafka error into what the user has to fix. `detail` is the client's
    /// last logged error (librdkafka says more there than in the result).
    pub(crate) fn error(&self, e: &KafkaError, detail: &str) -> BridgeError {
        let url = self.spec.bootstrap.clone();
        let code = e.rdkafka_error_code();
        let mut reason = e.to_string();
        if !detail.is_empty() && !reason.contains(detail) {
            reason = format!("{reason} ({detail})");
        }
        let lower = reason.to_ascii_lowercase();
        if matches!(code, Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed))
            || lower.contains("authentication")
            || lower.contains("sasl")
        {
            return BridgeError::AuthFailed { broker: "Kafka", url, reason };
        }
        if lower.contains("ssl") || lower.contains("certificate") || lower.contains("handshake") {
            return BridgeError::Tls { broker: "Kafka", url, reason };
        }
        if matches!(e, KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..)) {
            return BridgeError::BadUrl { broker: "Kafka", url, reason };
        }
        if matches!(
            code,
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::Resolve
            )
        ) || lower.contains("timed out")
            || lower.contains("transport")
            || lower.contains("connect")
        {
            let reason =
                format!("no broker answered within {:?} (connect_timeout): {reason}", self.connect_timeout());
            return BridgeError::Unreachable { broker: "Kafka", url, reason };
        }
        BridgeError::Kafka { bootstrap: url, reason }
    }

    pub(crate) fn other(&self, reason: String) -> BridgeError {
        BridgeError::Kafka { bootstrap: self.spec.bootstrap.clone(), reason }
    }
}

/// A client context that remembers the last error librdkafka reported and counts the
/// broker connections lost and regained (for the summary's `reconnects`). Clones share
/// their figures.
#[derive(Default, Clone)]
pub struct LinkContext {
    link: Arc<Link>,
}

#[derive(Default)]
struct Link {
    last: std::sync::Mutex<String>,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
    down: AtomicBool,
}

impl LinkContext {
    /// The last error librdkafka reported, if any.
    pub fn last_error(&self) -> String {
        self.link.last.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Something worked: if the connection was down, count a reconnect.
    pub fn alive(&self) {
        if self.link.down.swap(false, Ordering::AcqRel) {
            self.link.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("kafka: the connection to the broker is back");
        }
    }

    /// Connections found down so far.
    pub fn disconnects(&self) -> u64 {
        self.link.disconnects.load(Ordering::Relaxed)
    }

    /// Connections regained so far.
    pub fn reconnects(&self) -> u64 {
        self.link.reconnects.load(Ordering::Relaxed)
    }

    /// Records an error librdkafka reported.
    pub fn record(&self, error: &KafkaError, reason: &str) {
        if let Ok(mut last) = self.link.last.lock() {
            *last = reason.to_string();
        }
        let code = error.rdkafka_error_code();
        if matches!(code, Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown))
            && !self.link.down.swap(true, Ordering::AcqRel)
        {
            self.link.disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("kafka: lost the connection to the broker ({reason}); librdkafka reconnects");
        }
        tracing::debug!("kafka: {error}: {reason}");
    }
}

impl ClientContext for LinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.record(&error, reason);
    }
}

/// A consumer with this context lets librdkafka handle rebalances on its own.
impl rdkafka::consumer::ConsumerContext for LinkContext {}
