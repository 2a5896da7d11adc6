//! Kafka (rdkafka): the shared frontier ([`KafkaFrontier`], `frontier.backend: kafka`; with
//! routing a topic per queue, [`RoutedKafkaFrontier`]), the
//! items sink ([`KafkaSink`], `output: - kafka`), the bridges ([`KafkaBridge`],
//! `bridges: - kind: kafka`), and the connection settings with their startup check
//! ([`KafkaBroker`], `brokers.kafka`). docs/kafka.md maps each to its Kafka concept and says
//! what each guarantees under which fault.

#[cfg(feature = "kafka")]
mod bridge;
#[cfg(feature = "kafka")]
mod broker;
mod config;
#[cfg(feature = "kafka")]
mod frontier;
#[cfg(feature = "kafka")]
mod gaps;
#[cfg(feature = "kafka")]
mod offsets;
#[cfg(feature = "kafka")]
mod routed;
#[cfg(feature = "kafka")]
mod sink;

#[cfg(feature = "kafka")]
pub use bridge::{KafkaBridge, KafkaMessage};
#[cfg(feature = "kafka")]
pub use broker::{KafkaBroker, LinkContext, TopicSpec};
pub use config::{
    is_secret_property, Compression, FrontierKey, KafkaBrokerSpec, KafkaFrontierSpec, KafkaOutputSpec,
    KafkaProtocol, KafkaSecuritySpec,
};
#[cfg(feature = "kafka")]
pub use frontier::KafkaFrontier;
#[cfg(feature = "kafka")]
pub use offsets::OffsetTracker;
#[cfg(feature = "kafka")]
pub use routed::{open_routed, RoutedKafkaFrontier};
#[cfg(feature = "kafka")]
pub use sink::KafkaSink;
