//! Kafka (rdkafka): the shared frontier ([`KafkaFrontier`], `frontier.backend: kafka`), the
//! items sink ([`KafkaSink`], `output: - kafka`), the bridges ([`KafkaBridge`],
//! `bridges: - kind: kafka`), and the connection settings with their startup check
//! ([`KafkaBroker`], `brokers.kafka`). docs/kafka.md maps each to its Kafka concept and says
//! what each guarantees under which fault.

mod bridge;
mod broker;
mod config;
mod frontier;
mod offsets;
mod sink;

pub use bridge::{KafkaBridge, KafkaMessage};
pub use broker::{KafkaBroker, LinkContext, TopicSpec};
pub use config::{
    is_secret_property, Compression, FrontierKey, KafkaBrokerSpec, KafkaFrontierSpec, KafkaOutputSpec,
    KafkaProtocol, KafkaSecuritySpec,
};
pub use frontier::KafkaFrontier;
pub use offsets::OffsetTracker;
pub use sink::KafkaSink;
