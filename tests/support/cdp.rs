//! A headless Chromium driven over the DevTools protocol (a websocket of JSON commands):
//! just what the dashboard's browser test needs — navigate, evaluate, screenshot.
//!
//! Why not a crate: `headless_chrome`'s build script downloads the protocol definition
//! (this machine has no internet), and `chromiumoxide` generates bindings for the whole
//! protocol (a long build on a 2-core machine) for three commands.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The chromium binary: `ARACHNE_TEST_CHROMIUM` (scripts/chromium.sh sets it), or
/// `chromium` / `chromium-browser` on the PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARACHNE_TEST_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser"].into_iter().find_map(|name| {
        let found = Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
        found.then(|| PathBuf::from(name))
    })
}

/// A headless Chromium with its own profile; killed on drop.
pub struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts it (`--headless --no-sandbox`, DevTools on a free loopback port).
    pub fn launch(chromium: &Path) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            .args(["--no-first-run", "--no-default-browser-check", "--hide-scrollbars"])
            .args(["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"])
            .arg("--window-size=1440,1100")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromium");
        // Chromium writes the port it picked to DevToolsActivePort in the profile.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) =
                std::fs::read_to_string(&file).ok().and_then(|t| t.lines().next()?.parse().ok())
            {
                break port;
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port");
            std::thread::sleep(Duration::from_millis(100));
        };
        Self { child, port, _profile: profile }
    }

    /// The first page (tab), connected.
    pub fn page(&self) -> Page {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ws_url = loop {
            let targets: Value = reqwest::blocking::get(format!("http://127.0.0.1:{}/json/list", self.port))
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            let page = targets.as_array().into_iter().flatten().find(|t| t["type"] == "page");
            if let Some(url) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                break url.to_string();
            }
            assert!(Instant::now() < deadline, "chromium shows no page");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (ws, _) = tungstenite::connect(ws_url.as_str()).expect("connect to the page's DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        }
        let mut page = Page { ws, next_id: 0 };
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Sends a command and returns its `result` (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(command.to_string())).expect("send a DevTools command");
        loop {
            let message = self.ws.read().expect("read from DevTools");
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {}", answer["error"]);
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url`.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// Evaluates a JavaScript expression and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result =
            self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(result["exceptionDetails"].is_null(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// The text of the element with this id (empty when there is none).
    pub fn text(&mut self, id: &str) -> String {
        self.eval(&format!("(document.getElementById('{id}') || {{}}).textContent || ''"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the element with this id.
    pub fn click(&mut self, id: &str) {
        self.eval(&format!("document.getElementById('{id}').click()"));
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot =
            self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        let data = shot["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD.decode(data).expect("base64 PNG")
    }
}
