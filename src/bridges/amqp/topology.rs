//! Declaring `brokers.amqp.topology` (exchanges, then queues, then bindings) and the
//! frontier's own queues. Declarations are idempotent: the same declaration again is a
//! no-op; one that differs from what the broker has (another `x-max-priority`, durable
//! instead of transient, ...) is refused by the broker with `PRECONDITION_FAILED`, which
//! becomes an error naming the queue or exchange and the argument.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::{Channel, ExchangeKind, Queue};

use super::broker::AmqpBroker;
use super::config::{
    BindingSpec, ExchangeSpec, ExchangeType, HeadersMatch, QueueSpec, QueueType, TopologySpec,
};
use crate::bridges::BridgeError;

/// A JSON value from the spec as an AMQP field value (integers as signed 64-bit, as
/// RabbitMQ's own tools send them).
pub fn amqp_value(v: &serde_json::Value) -> AMQPValue {
    match v {
        serde_json::Value::Null => AMQPValue::Void,
        serde_json::Value::Bool(b) => AMQPValue::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        serde_json::Value::Array(a) => {
            AMQPValue::FieldArray(FieldArray::from(a.iter().map(amqp_value).collect::<Vec<_>>()))
        }
        serde_json::Value::Object(o) => {
            let mut t = FieldTable::default();
            for (k, v) in o {
                t.insert(k.as_str().into(), amqp_value(v));
            }
            AMQPValue::FieldTable(t)
        }
    }
}

/// A queue's `x-` arguments from its spec.
pub fn queue_arguments(q: &QueueSpec) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in &q.arguments {
        t.insert(k.as_str().into(), amqp_value(v));
    }
    if q.kind == QueueType::Quorum {
        t.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    }
    if let Some(p) = q.max_priority {
        t.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(p));
    }
    if let Some(dlx) = &q.dead_letter_exchange {
        t.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.as_str().into()));
    }
    if let Some(key) = &q.dead_letter_routing_key {
        t.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(key.as_str().into()));
    }
    if let Some(ttl) = q.message_ttl {
        t.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(ttl.0.as_millis().min(i64::MAX as u128) as i64),
        );
    }
    t
}

fn conflict(broker: &AmqpBroker, what: &str, e: &lapin::Error) -> BridgeError {
    match broker.error(e) {
        BridgeError::Amqp { url, reason } => {
            let hint = if reason.contains("PRECONDITION_FAILED") {
                " (the broker has it with other settings: change the spec to match, or delete it in the management UI)"
            } else {
                ""
            };
            BridgeError::Amqp { url, reason: format!("declaring {what}: {reason}{hint}") }
        }
        other => other,
    }
}

/// Declares one queue; the error names it.
pub async fn declare_queue(
    channel: &Channel,
    broker: &AmqpBroker,
    q: &QueueSpec,
) -> Result<Queue, BridgeError> {
    let options = QueueDeclareOptions {
        durable: q.durable || q.kind == QueueType::Quorum,
        exclusive: q.exclusive,
        auto_delete: q.auto_delete,
        ..Default::default()
    };
    channel
        .queue_declare(q.name.as_str().into(), options, queue_arguments(q))
        .await
        .map_err(|e| conflict(broker, &format!("queue '{}'", q.name), &e))
}

/// Looks at a queue without changing it (`passive`): its ready messages and consumers.
pub async fn inspect_queue(channel: &Channel, broker: &AmqpBroker, name: &str) -> Result<Queue, BridgeError> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::default().passive(), FieldTable::default())
        .await
        .map_err(|e| conflict(broker, &format!("queue '{name}' (passive)"), &e))
}

async fn declare_exchange(
    channel: &Channel,
    broker: &AmqpBroker,
    x: &ExchangeSpec,
) -> Result<(), BridgeError> {
    let kind = match x.kind {
        ExchangeType::Direct => ExchangeKind::Direct,
        ExchangeType::Fanout => ExchangeKind::Fanout,
        ExchangeType::Topic => ExchangeKind::Topic,
        ExchangeType::Headers => ExchangeKind::Headers,
    };
    let mut arguments = FieldTable::default();
    for (k, v) in &x.arguments {
        arguments.insert(k.as_str().into(), amqp_value(v));
    }
    let options =
        ExchangeDeclareOptions { durable: x.durable, auto_delete: x.auto_delete, ..Default::default() };
    channel
        .exchange_declare(x.name.as_str().into(), kind, options, arguments)
        .await
        .map_err(|e| conflict(broker, &format!("exchange '{}'", x.name), &e))
}

async fn bind(channel: &Channel, broker: &AmqpBroker, b: &BindingSpec) -> Result<(), BridgeError> {
    let mut arguments = FieldTable::default();
    if !b.headers.is_empty() {
        let x_match = match b.matches {
            HeadersMatch::All => "all",
            HeadersMatch::Any => "any",
        };
        arguments.insert("x-match".into(), AMQPValue::LongString(x_match.into()));
        for (k, v) in &b.headers {
            arguments.insert(k.as_str().into(), amqp_value(v));
        }
    }
    channel
        .queue_bind(
            b.queue.as_str().into(),
            b.exchange.as_str().into(),
            b.routing_key.as_str().into(),
            QueueBindOptions::default(),
            arguments,
        )
        .await
        .map_err(|e| {
            conflict(broker, &format!("binding of queue '{}' to exchange '{}'", b.queue, b.exchange), &e)
        })
}

/// A routed crawl's requests exchange (direct, durable) and the binding of `queue` to it
/// with `key` (docs/routing.md).
pub async fn declare_routed(
    channel: &Channel,
    broker: &AmqpBroker,
    exchange: &str,
    queue: &str,
    key: &str,
) -> Result<(), BridgeError> {
    let x = ExchangeSpec {
        name: exchange.to_string(),
        kind: ExchangeType::Direct,
        durable: true,
        auto_delete: false,
        arguments: Default::default(),
    };
    declare_exchange(channel, broker, &x).await?;
    let b = BindingSpec {
        exchange: exchange.to_string(),
        queue: queue.to_string(),
        routing_key: key.to_string(),
        headers: Default::default(),
        matches: Default::default(),
    };
    bind(channel, broker, &b).await
}

/// Declares the whole topology: exchanges, queues, bindings.
pub async fn declare(
    channel: &Channel,
    broker: &AmqpBroker,
    topology: &TopologySpec,
) -> Result<(), BridgeError> {
    for x in &topology.exchanges {
        declare_exchange(channel, broker, x).await?;
    }
    for q in &topology.queues {
        declare_queue(channel, broker, q).await?;
    }
    for b in &topology.bindings {
        bind(channel, broker, b).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_from_the_spec() {
        let q = QueueSpec {
            name: "q".into(),
            durable: true,
            exclusive: false,
            auto_delete: false,
            kind: QueueType::Quorum,
            max_priority: Some(5),
            dead_letter_exchange: Some("dlx".into()),
            dead_letter_routing_key: None,
            message_ttl: Some(crate::spec::HumanDuration::from_secs(2)),
            arguments: Default::default(),
        };
        let t = queue_arguments(&q);
        let inner = t.inner();
        assert_eq!(inner.get("x-max-priority"), Some(&AMQPValue::ShortShortUInt(5)));
        assert_eq!(inner.get("x-message-ttl"), Some(&AMQPValue::LongLongInt(2000)));
        assert_eq!(inner.get("x-queue-type"), Some(&AMQPValue::LongString("quorum".into())));
        assert!(inner.contains_key("x-dead-letter-exchange"));
    }
}
