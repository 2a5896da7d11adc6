//! Secrets through the `arachne` binary: every `${ENV}` value is masked in logs, errors and
//! items; URL user names and passwords never reach an item's `url`; credentials a server
//! puts in a redirect's Location are not sent on.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use arachne::sandbox::{SandboxOptions, SandboxServer};

const ITEMS: &str = r#"
parse:
  items:
    - name: product
      match: "/item/|/landing"
      fields: { title: "h1" }
output:
  - jsonl: items.jsonl
"#;

fn run(dir: &Path, spec: &str, env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("crawl.yaml"), spec).expect("spec");
    Command::new(env!("CARGO_BIN_EXE_arachne"))
        .args(["run", "crawl.yaml", "--quiet"])
        .env("RUST_LOG", "arachne=debug")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run arachne")
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn an_env_value_in_a_seed_is_masked_in_logs_and_items() {
    let token = "tok-4711-s3cr3t";
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "name: s\nsandbox: {{ pages: 20 }}\nseeds: [\"{{sandbox}}/item/1?token=${{ARACHNE_TEST_TOKEN}}\", \"{{sandbox}}/no-such-page?token=${{ARACHNE_TEST_TOKEN}}\"]\nscope: {{ max_depth: 0 }}\n{ITEMS}"
    );
    let out = run(dir.path(), &spec, &[("ARACHNE_TEST_TOKEN", token)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no-such-page?token=***"), "the failed URL is logged, masked: {stderr}");
    assert!(!stderr.contains(token), "{stderr}");
    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items");
    assert!(items.contains("token=***"), "{items}");
    assert!(!items.contains(token), "{items}");
}

#[test]
fn an_env_redis_user_name_is_masked_in_the_error() {
    let user = "user-from-env-0815";
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "name: s\nseeds: [\"http://127.0.0.1:{}/\"]\nbrokers: {{ redis: {{ url: \"redis://${{ARACHNE_TEST_REDIS_USER}}:pw-from-env@127.0.0.1:{}/0\" }} }}\noutput:\n  - redis: {{ key: k }}\n",
        closed_port(),
        closed_port()
    );
    let out = run(dir.path(), &spec, &[("ARACHNE_TEST_REDIS_USER", user)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Redis"), "{stderr}");
    assert!(!stderr.contains(user) && !stderr.contains("pw-from-env"), "{stderr}");
}

#[test]
fn url_credentials_never_reach_an_items_url() {
    let server = SandboxServer::start(SandboxOptions { pages: 20, traps: false }, 0).expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = server.base_url().replace("http://", "http://someone:hunter22@") + "/item/1";
    let spec = format!("name: s\nseeds: [\"{seed}\"]\nscope: {{ max_depth: 0 }}\n{ITEMS}");
    let out = run(dir.path(), &spec, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items");
    assert_eq!(items.lines().count(), 1, "{items}");
    assert!(!items.contains("someone") && !items.contains("hunter22"), "{items}");
}

/// A server that redirects `/start` to itself with credentials in the Location, and
/// reports the Authorization header (or none) of every other request.
fn redirecting_server() -> (u16, std::sync::mpsc::Receiver<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line);
            }
            let path = head.first().and_then(|l| l.split(' ').nth(1)).unwrap_or("").to_string();
            let auth = head
                .iter()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(|l| l.trim().to_string());
            let response = if path == "/start" {
                format!("HTTP/1.1 302 Found\r\nLocation: http://admin:secret99@127.0.0.1:{port}/landing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else {
                if path != "/robots.txt" {
                    let _ = tx.send(auth);
                }
                let body = "<html><h1>landed</h1></html>";
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (port, rx)
}

#[test]
fn credentials_in_a_redirect_location_are_not_sent_on() {
    let (port, auth) = redirecting_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec =
        format!("name: s\nseeds: [\"http://127.0.0.1:{port}/start\"]\nfetch: {{ retries: 0 }}\n{ITEMS}");
    let out = run(dir.path(), &spec, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let landing =
        auth.recv_timeout(std::time::Duration::from_secs(10)).expect("the landing page was fetched");
    assert_eq!(landing, None, "no Authorization header sent");
    let items = std::fs::read_to_string(dir.path().join("items.jsonl")).expect("items");
    assert!(!items.contains("secret99") && !items.contains("admin"), "{items}");
}
