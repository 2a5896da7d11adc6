//! The SSRF guard: a crawl of public hosts never connects to a loopback, private,
//! link-local or otherwise non-public address, however it got there (a link, a redirect,
//! or a DNS answer for a public-looking name).
//!
//! Two checks, because reqwest never asks the resolver about a URL whose host is an IP
//! literal: [`AddressGuard::allows_url`] refuses non-public literal hosts (the frontier's
//! scope applies it to every URL it admits), and the guard is also the HTTP client's DNS
//! resolver ([`reqwest::dns::Resolve`]), which drops non-public addresses from every
//! answer, so a name that resolves only to such addresses fails with [`BlockedAddress`].
//!
//! A crawl whose seeds are on such addresses (the sandbox on 127.0.0.1, an intranet) is a
//! private crawl and is not guarded: a seed host that is a non-public literal or
//! `localhost` says so at the start, and a seed name that resolves to a non-public address
//! says so when it is first resolved. `scope.allow_private: true` turns the guard off.
//!
//! Behind a proxy (`HTTPS_PROXY`, ...), the proxy resolves the page's name, so only the
//! literal check applies; the proxy's own name may resolve to a private address.

use std::collections::HashMap;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// A name whose every address is non-public, in a guarded (public) crawl.
#[derive(Debug, thiserror::Error)]
#[error("blocked: '{0}' resolves only to non-public addresses (set scope.allow_private: true to crawl them)")]
pub struct BlockedAddress(pub String);

/// The guard of one crawl; cheap to clone (an `Arc`).
#[derive(Clone, Debug)]
pub struct AddressGuard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Non-public addresses may be reached (allowed by the spec, or a seed is on one).
    private_ok: AtomicBool,
    /// The seeds' host names, lowercased: a non-public answer for one makes the crawl private.
    seed_hosts: RwLock<HashSet<String>>,
    /// The hosts of the proxies in the environment (`HTTPS_PROXY`, ...): often on a private
    /// address, and reached in place of the page's host.
    proxies: HashSet<String>,
    /// Fixed answers for names (tests, or an operator pinning a name).
    overrides: HashMap<String, Vec<IpAddr>>,
}

impl AddressGuard {
    /// The guard of a crawl from `seeds`; `allow_private` (`scope.allow_private`) turns it off.
    pub fn new(seeds: &[Url], allow_private: bool) -> Self {
        let guard = Self {
            inner: Arc::new(Inner {
                private_ok: AtomicBool::new(allow_private),
                seed_hosts: RwLock::default(),
                proxies: proxy_hosts(),
                overrides: HashMap::new(),
            }),
        };
        seeds.iter().for_each(|seed| guard.add_seed(seed));
        guard
    }

    /// A start URL (a seed, or one that arrived through a broker): on a non-public literal
    /// address or `localhost`, the crawl is private; a name is trusted to resolve to one.
    pub fn add_seed(&self, url: &Url) {
        let private = match url.host() {
            Some(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => is_localhost(d),
            None => false,
        };
        if private {
            self.inner.private_ok.store(true, Ordering::Relaxed);
        } else if let (Some(host), Ok(mut hosts)) = (url.host_str(), self.inner.seed_hosts.write()) {
            hosts.insert(host.to_ascii_lowercase());
        }
    }

    /// The same guard, resolving `name` to `addrs` instead of asking DNS (for tests: a
    /// "public" name that points at 127.0.0.1). Call before the guard is shared.
    pub fn with_override(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.overrides.insert(name.to_ascii_lowercase(), addrs.to_vec());
        }
        self
    }

    /// Whether non-public addresses may be reached in this crawl.
    pub fn private_ok(&self) -> bool {
        self.inner.private_ok.load(Ordering::Relaxed)
    }

    /// Whether `url` may be requested as far as its host can tell without DNS: a literal
    /// address must be public (and `localhost` is not), unless the crawl is private.
    pub fn allows_url(&self, url: &Url) -> bool {
        if self.private_ok() {
            return true;
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => !is_localhost(d),
            None => false,
        }
    }

    /// The addresses of `name` that this crawl may connect to.
    async fn lookup(&self, name: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let lower = name.to_ascii_lowercase();
        let all: Vec<SocketAddr> = match self.inner.overrides.get(&lower) {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => tokio::net::lookup_host((name, 0)).await?.collect(),
        };
        if self.private_ok() || self.inner.proxies.contains(&lower) {
            return Ok(all);
        }
        let seed = self.inner.seed_hosts.read().is_ok_and(|hosts| hosts.contains(&lower));
        if seed && all.iter().any(|a| !is_public(a.ip())) {
            tracing::info!(
                host = name,
                "a seed is on a non-public address: private addresses allowed in this crawl"
            );
            self.inner.private_ok.store(true, Ordering::Relaxed);
            return Ok(all);
        }
        let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
        if public.is_empty() {
            return Err(Box::new(BlockedAddress(name.to_string())));
        }
        Ok(public)
    }
}

impl Resolve for AddressGuard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addrs = guard.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The hosts of the proxies reqwest takes from the environment.
fn proxy_hosts() -> HashSet<String> {
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .filter_map(|value| {
            let value = if value.contains("://") { value } else { format!("http://{value}") };
            Url::parse(&value).ok()?.host_str().map(str::to_ascii_lowercase)
        })
        .collect()
}

fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (cloud
/// metadata services live there), shared (CGNAT), unspecified, broadcast, multicast,
/// benchmarking, reserved, unique-local, nor an IPv4 address of those kinds mapped or
/// translated into IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT, some metadata)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().expect("an address"))
    }

    #[test]
    fn non_public_addresses() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "::127.0.0.1",
        ] {
            assert!(!public(s), "{s}");
        }
        for s in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(public(s), "{s}");
        }
    }

    #[test]
    fn literal_hosts() {
        let url = |s: &str| Url::parse(s).expect("a URL");
        let guard = AddressGuard::new(&[url("https://example.com/")], false);
        assert!(guard.allows_url(&url("https://example.com/a")));
        assert!(guard.allows_url(&url("http://93.184.216.34/")));
        for s in [
            "http://127.0.0.1:6379/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://localhost/",
            "http://a.localhost./",
            "http://2130706433/",
        ] {
            assert!(!guard.allows_url(&url(s)), "{s}");
        }
        let private = AddressGuard::new(&[url("http://127.0.0.1:8000/")], false);
        assert!(private.allows_url(&url("http://10.0.0.1/")));
        let allowed = AddressGuard::new(&[url("https://example.com/")], true);
        assert!(allowed.allows_url(&url("http://127.0.0.1/")));
        // Start URLs from a broker count as seeds.
        let fed = AddressGuard::new(&[], false);
        assert!(!fed.allows_url(&url("http://127.0.0.1:8000/")));
        fed.add_seed(&url("http://127.0.0.1:8000/"));
        assert!(fed.allows_url(&url("http://127.0.0.1:8000/")));
    }
}
