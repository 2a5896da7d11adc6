//! RabbitMQ (AMQP 0-9-1, through lapin on tokio): the connection settings and their
//! startup check ([`AmqpBroker`]), the topology declared from the spec ([`topology`]), the
//! shared frontier ([`AmqpFrontier`]), the output ([`AmqpSink`]) and the
//! bridges ([`AmqpBridge`]). docs/amqp.md says what each guarantees.

#[cfg(feature = "amqp")]
mod bridge;
#[cfg(feature = "amqp")]
mod broker;
mod config;
#[cfg(feature = "amqp")]
pub mod frontier;
#[cfg(feature = "amqp")]
mod routed;
#[cfg(feature = "amqp")]
mod sink;
#[cfg(feature = "amqp")]
pub mod topology;

#[cfg(feature = "amqp")]
pub use bridge::{AmqpBridge, AmqpMessage};
#[cfg(feature = "amqp")]
pub use broker::{check_url, AmqpBroker};
pub use config::{
    render_template, AmqpBrokerSpec, AmqpFrontierSpec, AmqpOutputSpec, BindingSpec, ExchangeSpec,
    ExchangeType, HeadersMatch, QueueSpec, QueueType, TopologySpec,
};
#[cfg(feature = "amqp")]
pub use frontier::AmqpFrontier;
#[cfg(feature = "amqp")]
pub use routed::{open_routed, RoutedAmqpFrontier};
#[cfg(feature = "amqp")]
pub use sink::AmqpSink;

/// Whether `url` is an `amqp://` or `amqps://` URL. Without the client (no `amqp` feature)
/// only the scheme is checked; the run then says this build has no AMQP support.
#[cfg(not(feature = "amqp"))]
pub fn check_url(url: &str) -> Result<(), String> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err("it is empty".into());
    }
    if !(trimmed.starts_with("amqp://") || trimmed.starts_with("amqps://")) {
        return Err("the scheme is not amqp:// or amqps://".into());
    }
    Ok(())
}
