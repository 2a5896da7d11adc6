//! Secret values, masked wherever arachne prints, logs or writes them.
//!
//! What is secret is tracked by value, not by where it sits: every `${ENV}` value a spec
//! uses ([`register_env_references`], called by the `arachne` command on the spec text and
//! its `--set` overrides), and any value an embedding program registers ([`register`]).
//! [`mask`] replaces each of them by `***`; the log writer ([`MaskedStderr`]), the errors
//! the command prints, the items the sinks write and the dead-letter log go through it.
//!
//! Values shorter than [`MIN_SECRET_LEN`] bytes are not tracked: masking every `1` or `on`
//! would make every line unreadable, and such a value protects nothing.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::RwLock;

/// The shortest value that is tracked as a secret.
pub const MIN_SECRET_LEN: usize = 4;

/// What replaces a secret.
pub const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Tracks `value` as a secret from now on (values shorter than [`MIN_SECRET_LEN`] are not).
/// A URL's scheme, host and port are not secret: of a URL, its user name, password and
/// what follows the host (path, query, fragment) are tracked, so an error can still say
/// which server it could not reach.
pub fn register(value: &str) {
    match url::Url::parse(value) {
        Ok(url) if url.has_host() => {
            track(url.username());
            track(url.password().unwrap_or_default());
            let after_host = &url[url::Position::BeforePath..];
            if after_host != "/" {
                track(after_host);
            }
        }
        _ => track(value),
    }
}

fn track(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first: a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Tracks the value of every environment variable that `text` references as `${NAME}` (not
/// the escaped `$${...}`), as the spec's `${ENV}` substitution reads them.
pub fn register_env_references(text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let escaped = i > 0 && rest.as_bytes()[i - 1] == b'$';
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        let name = &rest[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid && !escaped {
            if let Ok(value) = std::env::var(name) {
                register(&value);
            }
        }
    }
}

/// `text` with every tracked secret replaced by [`MASK`].
pub fn mask(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if secrets.is_empty() || !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// Masks the bytes from `start` to the end of `buffer` in place (a JSON line just written).
pub fn mask_tail(buffer: &mut Vec<u8>, start: usize) {
    if SECRETS.read().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return;
    }
    let Ok(tail) = std::str::from_utf8(&buffer[start..]) else { return };
    if let Cow::Owned(masked) = mask(tail) {
        buffer.truncate(start);
        buffer.extend_from_slice(masked.as_bytes());
    }
}

/// Standard error through [`mask`]: the writer of the `arachne` command's logs
/// (`tracing_subscriber::fmt().with_writer(MaskedStderr)`). Each write is one formatted
/// log event, masked whole.
#[derive(Debug, Default, Clone, Copy)]
pub struct MaskedStderr;

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedStderr;
    fn make_writer(&'a self) -> Self::Writer {
        MaskedStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_are_masked_by_value() {
        std::env::set_var("ARACHNE_SECRETS_UNIT_TOKEN", "tok-4711-secret");
        std::env::set_var("ARACHNE_SECRETS_UNIT_SHORT", "on");
        register_env_references(
            "url: \"redis://${ARACHNE_SECRETS_UNIT_TOKEN}@h/\"\nx: ${ARACHNE_SECRETS_UNIT_SHORT} $${NOT_A_REF}",
        );
        assert_eq!(mask("GET /?t=tok-4711-secret&u=tok-4711-secret"), "GET /?t=***&u=***");
        assert_eq!(mask("on and on"), "on and on", "too short to track");
        register("redis://admin-user:pass-word@127.0.0.1:6390/");
        assert_eq!(mask("redis://admin-user:pass-word@127.0.0.1:6390/"), "redis://***:***@127.0.0.1:6390/");
        register("https://hooks.example/services/T0/B0/XyZ");
        assert_eq!(mask("POST https://hooks.example/services/T0/B0/XyZ"), "POST https://hooks.example***");
        let mut line = b"{\"a\":1}\n{\"url\":\"/?t=tok-4711-secret\"}\n".to_vec();
        mask_tail(&mut line, 8);
        assert_eq!(line, b"{\"a\":1}\n{\"url\":\"/?t=***\"}\n");
    }
}
