//! Who may do what: read-only pages are open on loopback, everything else needs the bearer
//! token, compared in constant time.

use std::net::{SocketAddr, ToSocketAddrs};

#[cfg(feature = "dashboard")]
use axum::http::HeaderMap;
#[cfg(feature = "dashboard")]
use subtle::ConstantTimeEq;

/// `host:port` to listen on (`localhost` is 127.0.0.1); the error says why not.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("no port (write host:port)".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("'{port}' is not a port number"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("'{host}' has no address"))
}

/// The dashboard's access rule.
#[cfg(feature = "dashboard")]
#[derive(Clone)]
pub struct Access {
    token: String,
    /// Read-only endpoints are open (bound to loopback).
    open_reads: bool,
}

#[cfg(feature = "dashboard")]
impl Access {
    /// Control always needs `token`; reads need it too unless `loopback`.
    pub fn new(token: String, loopback: bool) -> Self {
        Self { token, open_reads: loopback }
    }

    /// Whether the request carries the token (`Authorization: Bearer <token>`).
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        given.trim().as_bytes().ct_eq(self.token.as_bytes()).into()
    }

    /// Whether a read-only request may be answered.
    pub fn may_read(&self, headers: &HeaderMap) -> bool {
        self.open_reads || self.authorized(headers)
    }
}

#[cfg(feature = "dashboard")]
impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("token", &"***").field("open_reads", &self.open_reads).finish()
    }
}

#[cfg(all(test, feature = "dashboard"))]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, auth.parse().expect("header"));
        h
    }

    #[test]
    fn token_rules() {
        let local = Access::new("s3cret".into(), true);
        assert!(local.authorized(&headers("Bearer s3cret")));
        assert!(!local.authorized(&headers("Bearer s3cre")));
        assert!(!local.authorized(&headers("Bearer s3cret2")));
        assert!(!local.authorized(&headers("Basic s3cret")));
        assert!(!local.authorized(&HeaderMap::new()));
        assert!(local.may_read(&HeaderMap::new()));
        let public = Access::new("s3cret".into(), false);
        assert!(!public.may_read(&HeaderMap::new()));
        assert!(public.may_read(&headers("Bearer s3cret")));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("127.0.0.1:9000"), Ok(SocketAddr::from(([127, 0, 0, 1], 9000))));
        assert_eq!(parse_listen("localhost:0"), Ok(SocketAddr::from(([127, 0, 0, 1], 0))));
        assert!(parse_listen("[::1]:9000").is_ok_and(|a| a.ip().is_loopback()));
        assert!(parse_listen("0.0.0.0:9000").is_ok_and(|a| !a.ip().is_loopback()));
        assert!(parse_listen("127.0.0.1").is_err());
        assert!(parse_listen("127.0.0.1:http").is_err());
    }
}
