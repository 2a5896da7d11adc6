//! robots.txt: fetched once per host, parsed with texting_robots.

use reqwest::header::LOCATION;
use reqwest::{Client, Response};
use texting_robots::Robot;
use url::Url;

use super::frontier::Origins;

/// The most of a robots.txt we read, after decompression (RFC 9309 asks for at least
/// 500 KiB; Google reads 500 KiB). A longer file is cut here and its first part is used.
pub const MAX_ROBOTS_BYTES: usize = 512 * 1024;
/// The most redirects followed to reach a robots.txt (RFC 9309: at least five).
pub const MAX_ROBOTS_REDIRECTS: usize = 5;

/// The product token robots.txt groups are matched against: `arachne/0.1` → `arachne`.
pub fn agent_token(user_agent: &str) -> &str {
    user_agent.split(['/', ' ']).next().filter(|t| !t.is_empty()).unwrap_or(user_agent)
}

/// Fetches and parses `scheme://host[:port]/robots.txt` for the host of `url`.
///
/// Redirects are followed, up to [`MAX_ROBOTS_REDIRECTS`] (RFC 9309), within the crawl's
/// `origins` (its hosts, ports and addresses: a robots.txt redirect is no way around the
/// scope or the address guard); more hops, or a hop out of scope, count as unavailable. The body is streamed and at most [`MAX_ROBOTS_BYTES`]
/// of it (decompressed) is read. A 2xx answer is parsed; 4xx means no rules (allow
/// everything); a 5xx or a network error also allows everything, with a warning (a dead
/// robots.txt should not silently end a crawl; Google instead assumes "disallow all" for a
/// while — we chose to keep going).
pub async fn load(client: &Client, url: &Url, user_agent: &str, origins: &Origins) -> Option<Robot> {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let response = follow(client, robots_url.clone(), origins).await?;
    let status = response.status();
    if !status.is_success() {
        if status.is_server_error() {
            tracing::warn!(url = %robots_url, %status, "robots.txt failed, allowing everything");
        }
        return None;
    }
    let body = read_capped(response, MAX_ROBOTS_BYTES, &robots_url).await?;
    match Robot::new(agent_token(user_agent), &body) {
        Ok(robot) => Some(robot),
        Err(e) => {
            tracing::warn!(url = %robots_url, "robots.txt unparsable, allowing everything: {e}");
            None
        }
    }
}

/// The answer for `url` after its redirects; `None` (allow everything, with a warning)
/// when unreachable, or redirected too often or to a URL that is not http(s).
async fn follow(client: &Client, mut url: Url, origins: &Origins) -> Option<Response> {
    for _ in 0..=MAX_ROBOTS_REDIRECTS {
        let response = match client.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%url, "robots.txt unreachable, allowing everything: {e}");
                return None;
            }
        };
        if !response.status().is_redirection() {
            return Some(response);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|loc| url.join(loc.trim()).ok())
            .filter(|next| matches!(next.scheme(), "http" | "https"));
        match location {
            Some(next) if origins.allows(&next) => {
                tracing::debug!(from = %url, to = %next, "robots.txt redirected");
                url = next;
            }
            Some(next) => {
                tracing::warn!(%url, to = %next, "robots.txt redirects out of the crawl's scope, allowing everything");
                return None;
            }
            None => {
                tracing::warn!(%url, "robots.txt redirects without a usable Location, allowing everything");
                return None;
            }
        }
    }
    tracing::warn!(%url, "robots.txt redirected more than {MAX_ROBOTS_REDIRECTS} times, allowing everything");
    None
}

/// At most `cap` bytes of the (decoded) body; what was read before an error is kept.
async fn read_capped(mut response: Response, cap: usize, url: &Url) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while body.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => return Some(body),
            Err(e) if body.is_empty() => {
                tracing::warn!(%url, "robots.txt body failed, allowing everything: {e}");
                return None;
            }
            Err(e) => {
                tracing::warn!(%url, "robots.txt body broke off after {} bytes, using them: {e}", body.len());
                return Some(cut_at_line(body));
            }
        }
    }
    tracing::warn!(%url, "robots.txt is larger than {cap} bytes, using its first {cap}");
    Some(cut_at_line(body))
}

/// `body` up to its last line break: a rule cut in half is not read as a shorter rule.
fn cut_at_line(mut body: Vec<u8>) -> Vec<u8> {
    let end = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    body.truncate(end);
    body
}

#[cfg(test)]
mod tests {
    #[test]
    fn agent_tokens() {
        assert_eq!(super::agent_token("arachne/0.1"), "arachne");
        assert_eq!(super::agent_token("MyBot"), "MyBot");
    }
}
