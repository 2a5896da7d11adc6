//! robots.txt: fetched once per host, parsed with texting_robots.

use reqwest::Client;
use texting_robots::Robot;
use url::Url;

/// The largest robots.txt we read (Google reads 500 KiB).
const MAX_ROBOTS_BYTES: usize = 512 * 1024;

/// The product token robots.txt groups are matched against: `arachne/0.1` → `arachne`.
pub fn agent_token(user_agent: &str) -> &str {
    user_agent.split(['/', ' ']).next().filter(|t| !t.is_empty()).unwrap_or(user_agent)
}

/// Fetches and parses `scheme://host[:port]/robots.txt` for the host of `url`.
///
/// A 2xx answer is parsed; 4xx means no rules (allow everything); a 5xx or a network error
/// also allows everything, with a warning (a dead robots.txt should not silently end a
/// crawl; Google instead assumes "disallow all" for a while — we chose to keep going).
pub async fn load(client: &Client, url: &Url, user_agent: &str) -> Option<Robot> {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let response = match client.get(robots_url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = %robots_url, "robots.txt unreachable, allowing everything: {e}");
            return None;
        }
    };
    let status = response.status();
    if !status.is_success() {
        if status.is_server_error() {
            tracing::warn!(url = %robots_url, %status, "robots.txt failed, allowing everything");
        }
        return None;
    }
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(url = %robots_url, "robots.txt body failed, allowing everything: {e}");
            return None;
        }
    };
    let body = &body[..body.len().min(MAX_ROBOTS_BYTES)];
    match Robot::new(agent_token(user_agent), body) {
        Ok(robot) => Some(robot),
        Err(e) => {
            tracing::warn!(url = %robots_url, "robots.txt unparsable, allowing everything: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn agent_tokens() {
        assert_eq!(super::agent_token("arachne/0.1"), "arachne");
        assert_eq!(super::agent_token("MyBot"), "MyBot");
    }
}
