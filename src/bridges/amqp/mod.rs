//! RabbitMQ (AMQP 0-9-1, through lapin on tokio): the connection settings and their
//! startup check ([`AmqpBroker`]), the topology declared from the spec ([`topology`]), the
//! shared frontier ([`AmqpFrontier`]), the output ([`AmqpSink`]) and the
//! bridges ([`AmqpBridge`]). docs/amqp.md says what each guarantees.

mod bridge;
mod broker;
mod config;
pub mod frontier;
mod sink;
pub mod topology;

pub use bridge::{AmqpBridge, AmqpMessage};
pub use broker::{check_url, AmqpBroker};
pub use config::{
    render_template, AmqpBrokerSpec, AmqpFrontierSpec, AmqpOutputSpec, BindingSpec, ExchangeSpec,
    ExchangeType, HeadersMatch, QueueSpec, QueueType, TopologySpec,
};
pub use frontier::AmqpFrontier;
pub use sink::AmqpSink;
