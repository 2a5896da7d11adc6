//! How an outbound bridge turns a local message into what it sends, whatever the broker.

use serde::Serialize;

use crate::observe::secrets;

/// A message as `(key, JSON)`, every `${ENV}` secret in it masked (it leaves the process);
/// the key is the text of the message's `key_field`, when given and present.
pub(crate) fn encode<T: Serialize>(
    message: &T,
    key_field: Option<&str>,
) -> Option<(Option<String>, Vec<u8>)> {
    let value = serde_json::to_value(message).ok()?;
    let key = key_field.and_then(|f| value.get(f)).map(|v| match v {
        serde_json::Value::String(s) => secrets::mask(s).into_owned(),
        other => other.to_string(),
    });
    let json = serde_json::to_string(&value).ok()?;
    Some((key, secrets::mask(&json).into_owned().into_bytes()))
}
