//! A client of a running dashboard: what `arachne inspect` and `arachne control` use.

use std::time::Duration;

use serde_json::Value;

use crate::observe::ControlRequest;

/// Why a dashboard request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one.
    #[error("'{0}' is not a dashboard URL (e.g. http://127.0.0.1:9000)")]
    BadUrl(String),
    /// No token, or a wrong one.
    #[error("401 unauthorized: give the dashboard's token with --token or ARACHNE_TOKEN")]
    Unauthorized,
    /// The dashboard answered with an error.
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its `error` text.
        message: String,
    },
    /// It could not be reached, or answered something that is not JSON.
    #[error("cannot reach the dashboard: {0}")]
    Http(#[from] reqwest::Error),
}

/// A dashboard at a base URL, with an optional token.
#[derive(Debug, Clone)]
pub struct Client {
    base: url::Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the dashboard at `base` (`http://127.0.0.1:9000`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let base = url::Url::parse(base.trim()).map_err(|_| ClientError::BadUrl(base.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(base.to_string()));
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { base, token: token.filter(|t| !t.is_empty()), http })
    }

    fn with_token(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn url(&self, path: &str) -> Result<url::Url, ClientError> {
        self.base.join(path).map_err(|_| ClientError::BadUrl(self.base.to_string()))
    }

    async fn answer(response: reqwest::Response) -> Result<Value, ClientError> {
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized);
        }
        let body: Value = response.json().await?;
        if !status.is_success() {
            let message = body["error"].as_str().unwrap_or("error").to_string();
            return Err(ClientError::Refused { status: status.as_u16(), message });
        }
        Ok(body)
    }

    /// `GET /api/<what>` (`status`, `actors`, `hosts`, `queues`, `errors`, `workers`).
    pub async fn get(&self, what: &str) -> Result<Value, ClientError> {
        let response = self.with_token(self.http.get(self.url(&format!("api/{what}"))?)).send().await?;
        Self::answer(response).await
    }

    /// `POST /api/control`.
    pub async fn control(&self, request: &ControlRequest) -> Result<Value, ClientError> {
        let response = self.with_token(self.http.post(self.url("api/control")?)).json(request).send().await?;
        Self::answer(response).await
    }

    /// Status, actors, hosts, queues, errors and workers in one object (`arachne inspect`).
    pub async fn inspect(&self) -> Result<Value, ClientError> {
        let mut all = serde_json::Map::new();
        for what in ["status", "actors", "hosts", "queues", "errors", "workers"] {
            all.insert(what.to_string(), self.get(what).await?);
        }
        Ok(Value::Object(all))
    }
}

/// `arachne inspect`'s text: the status, workers, queues, hosts and recent errors.
pub fn render_text(all: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let s = &all["status"];
    let sum = &s["summary"];
    let _ = writeln!(
        out,
        "crawl {}  worker {}  {}\n  {} pages fetched  {} failed  {} items  {} in flight  {} queued  {:.0} pages/s now  {:.1}s",
        s["crawl"].as_str().unwrap_or("?"),
        s["worker"].as_str().unwrap_or("?"),
        s["state"].as_str().unwrap_or("?"),
        sum["pages_fetched"],
        sum["pages_failed"],
        sum["items"],
        s["in_flight"],
        s["queued"],
        s["pages_per_s_now"].as_f64().unwrap_or(0.0),
        sum["elapsed_s"].as_f64().unwrap_or(0.0),
    );
    let _ = writeln!(out, "workers:");
    for w in all["workers"]["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}{}  {} pages  {} items{}",
            w["worker"].as_str().unwrap_or("?"),
            if w["this"].as_bool() == Some(true) { " (this)" } else { "" },
            w["figures"]["pages_fetched"],
            w["figures"]["items"],
            if w["lost"].as_bool() == Some(true) { "  LOST" } else { "" },
        );
    }
    let _ = writeln!(out, "actors:");
    for a in all["actors"]["children"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<24} {:<10} {} restarts",
            a["name"].as_str().unwrap_or("?"),
            a["state"].as_str().unwrap_or("?"),
            a["restarts"]
        );
    }
    let _ = writeln!(out, "queues:");
    for q in all["queues"]["queues"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<10} {} ready  {} unacked  {} redelivered  {} dead",
            q["name"].as_str().unwrap_or("?"),
            q["ready"],
            q["unacked"],
            q["redeliveries"],
            q["dead_letters"]
        );
    }
    let _ = writeln!(out, "hosts:");
    for h in all["hosts"]["hosts"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<32} {} queued  {} in flight  {} requests  {} errors  rate {}{}",
            h["host"].as_str().unwrap_or("?"),
            h["queued"],
            h["in_flight"],
            h["requests"],
            h["errors"],
            h["rate"],
            if h["paused"].as_bool() == Some(true) { "  PAUSED" } else { "" },
        );
    }
    let errors = all["errors"]["errors"].as_array().map(Vec::as_slice).unwrap_or_default();
    let dead = all["errors"]["dead_letters"].as_array().map(Vec::as_slice).unwrap_or_default();
    let _ = writeln!(out, "recent errors: {}  dead letters: {}", errors.len(), dead.len());
    for e in errors.iter().rev().take(5).chain(dead.iter().rev().take(5)) {
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            e["event"].as_str().unwrap_or("?"),
            e["url"].as_str().unwrap_or("?"),
            e["kind"].as_str().or(e["reason"].as_str()).unwrap_or("")
        );
    }
    out
}
