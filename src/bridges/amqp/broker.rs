//! One AMQP broker as `brokers.amqp` describes it: the URL (checked for shape), the
//! connection (heartbeat, connect timeout, TLS with a private CA), the startup check that
//! turns a wrong address or a refused login into a clear error, and the sorting of lapin's
//! errors into [`BridgeError`]s.

use std::sync::Arc;
use std::time::Duration;

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::tcp::OwnedTLSConfig;
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties, ErrorKind};

use super::config::AmqpBrokerSpec;
use crate::bridges::redis::mask_url;
use crate::bridges::BridgeError;
use crate::spec::CrawlSpec;

const BROKER: &str = "AMQP";

/// One AMQP broker: its settings (parsed, not yet connected). Cheap to clone.
#[derive(Clone)]
pub struct AmqpBroker {
    spec: Arc<AmqpBrokerSpec>,
    uri: AMQPUri,
    masked: String,
}

impl std::fmt::Debug for AmqpBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBroker").field("url", &self.masked).finish()
    }
}

/// Whether `url` is an AMQP URL lapin can use (`amqp://` or `amqps://`); the error says
/// why not (without the URL).
pub fn check_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

fn parse_url(url: &str) -> Result<AMQPUri, String> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err("it is empty".into());
    }
    if !(trimmed.starts_with("amqp://") || trimmed.starts_with("amqps://")) {
        return Err("the scheme is not amqp:// or amqps://".into());
    }
    // lapin's own parser; its messages never contain the URL.
    trimmed.parse::<AMQPUri>().map_err(|e| format!("not an AMQP URL ({e})"))
}

impl AmqpBroker {
    /// The broker of `spec` (its URL checked for shape).
    pub fn new(spec: AmqpBrokerSpec) -> Result<Self, BridgeError> {
        let masked = mask_url(&spec.url);
        let mut uri = parse_url(&spec.url).map_err(|reason| BridgeError::BadUrl {
            broker: BROKER,
            url: masked.clone(),
            reason,
        })?;
        let heartbeat = spec.heartbeat.0.as_secs().clamp(1, u64::from(u16::MAX));
        uri.query.heartbeat = Some(heartbeat as u16);
        Ok(Self { spec: Arc::new(spec), uri, masked })
    }

    /// The broker of `brokers.amqp`, for `user` (named in the error when it is not set).
    pub fn from_spec(spec: &CrawlSpec, user: &str) -> Result<Self, BridgeError> {
        let broker = spec
            .brokers
            .amqp
            .clone()
            .ok_or_else(|| BridgeError::NoBroker { broker: "amqp", user: user.to_string() })?;
        Self::new(broker)
    }

    /// The URL with its password masked, for logs and errors.
    pub fn masked_url(&self) -> &str {
        &self.masked
    }

    /// The settings.
    pub fn spec(&self) -> &AmqpBrokerSpec {
        &self.spec
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.spec.connect_timeout.0.max(Duration::from_millis(100))
    }

    /// Opens a connection within the connect timeout (on the current tokio runtime, whose
    /// tasks then carry its I/O). The error says what the user has to fix.
    pub async fn connect(&self, name: &str) -> Result<Connection, BridgeError> {
        let mut tls = OwnedTLSConfig::default();
        if let Some(ca) = &self.spec.ca_file {
            if self.uri.scheme != AMQPScheme::AMQPS {
                return Err(BridgeError::BadUrl {
                    broker: BROKER,
                    url: self.masked.clone(),
                    reason: "`ca_file` is set but the URL is not amqps://".into(),
                });
            }
            let pem = std::fs::read_to_string(ca).map_err(|e| BridgeError::Tls {
                broker: BROKER,
                url: self.masked.clone(),
                reason: format!("cannot read ca_file {}: {e}", ca.display()),
            })?;
            tls.cert_chain = Some(pem);
        }
        let runtime = lapin::runtime::default_runtime().map_err(|e| self.error(&e))?;
        let properties =
            ConnectionProperties::default().with_connection_name(format!("arachne {name}").into());
        let connecting = Connection::connect_uri_with_config(self.uri.clone(), properties, tls, runtime);
        match tokio::time::timeout(self.connect_timeout(), connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(BridgeError::Unreachable {
                broker: BROKER,
                url: self.masked.clone(),
                reason: format!("no answer within {:?} (connect_timeout)", self.connect_timeout()),
            }),
        }
    }

    /// Connects, logs in and opens a channel, then closes: `Ok` when the broker is there
    /// and took the credentials.
    pub async fn check(&self) -> Result<(), BridgeError> {
        let connection = self.connect("check").await?;
        let channel = connection.create_channel().await.map_err(|e| self.error(&e));
        let _ =
            tokio::time::timeout(Duration::from_secs(1), connection.close(200, "check done".into())).await;
        channel.map(|_| ())
    }

    /// Sorts a lapin error into what the user has to fix.
    pub fn error(&self, e: &lapin::Error) -> BridgeError {
        let url = self.masked.clone();
        let reason = e.to_string();
        let lower = reason.to_ascii_lowercase();
        match e.kind() {
            ErrorKind::ProtocolError(amqp) => match amqp.kind() {
                AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED) => {
                    BridgeError::Unreachable { broker: BROKER, url, reason }
                }
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => {
                    BridgeError::AuthFailed { broker: BROKER, url, reason }
                }
                _ if lower.contains("access_refused") || lower.contains("login") => {
                    BridgeError::AuthFailed { broker: BROKER, url, reason }
                }
                _ => BridgeError::Amqp { url, reason },
            },
            ErrorKind::AuthProviderError(_) => BridgeError::AuthFailed { broker: BROKER, url, reason },
            ErrorKind::IOError(_)
            | ErrorKind::MissingHeartbeatError
            | ErrorKind::InvalidConnectionState(_) => {
                if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
                    BridgeError::Tls { broker: BROKER, url, reason }
                } else if lower.contains("reset") || lower.contains("closed") || lower.contains("eof") {
                    // RabbitMQ closes the socket on a refused PLAIN login when the client
                    // cannot take a connection.close before the handshake ends.
                    BridgeError::Unreachable {
                        broker: BROKER,
                        url,
                        reason: format!("{reason} (the broker closed the connection: a wrong login or vhost does this too)"),
                    }
                } else {
                    BridgeError::Unreachable { broker: BROKER, url, reason }
                }
            }
            _ => BridgeError::Amqp { url, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("amqp://127.0.0.1:5672/%2f").is_ok());
        assert!(check_url("amqps://u:p@h:5671/v").is_ok());
        assert!(check_url("").is_err());
        assert!(check_url("redis://h").unwrap_err().contains("scheme"));
        assert!(check_url("amqp://h:notaport/").is_err());
    }
}
