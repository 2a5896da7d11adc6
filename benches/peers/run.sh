#!/usr/bin/env bash
# The peer bench: arachne beside spider-rs, A B A B, on a synthetic site and on the Rust
# documentation rustup installed, both served by nginx on 127.0.0.1 (docs/performance.md).
#
#   benches/peers/run.sh            # both sites, 5 pairs each
#   PAIRS=3 SITES=synthetic benches/peers/run.sh
#   ARACHNE_BIN=path/to/arachne benches/peers/run.sh   # an arachne built elsewhere
#
# It installs nginx (Debian) if missing, builds arachne and the spider program in release,
# generates the site, starts its own nginx (own config and prefix under target/peers/),
# runs benches/peers/bench.py on each site, and stops nginx by its PID.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/target/peers"
pairs="${PAIRS:-5}"
sites="${SITES:-synthetic rustdoc}"
mkdir -p "$work"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

echo "building arachne and the spider program (release)"
if [ -z "${ARACHNE_BIN:-}" ]; then
  (cd "$root" && cargo build --release --bin arachne)
fi
(cd "$here" && CARGO_TARGET_DIR="$root/target" cargo build --release --bins)
arachne="${ARACHNE_BIN:-$root/target/release/arachne}"
spider="$root/target/release/spider-crawl"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
docs_port="$(free_port)"
base="http://127.0.0.1:$port"
site="$work/site"
rm -rf "$site"
"$root/target/release/gen-site" "$site" "$base"

docs="$(rustc --print sysroot)/share/doc/rust/html"
prefix="$work/nginx"
mkdir -p "$prefix/logs"
cat >"$prefix/nginx.conf" <<CONF
worker_processes 2;
user root;
error_log $prefix/logs/error.log warn;
pid $prefix/nginx.pid;
events { worker_connections 1024; }
http {
  types { text/html html; text/css css; application/javascript js; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$port; root $site; }
  server { listen 127.0.0.1:$docs_port; root $docs; }
}
CONF
"$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
trap 'kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf "$base/index.html" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/index.html" >/dev/null || { echo "nginx did not start"; cat "$prefix/logs/error.log"; exit 1; }

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(uptime | sed 's/.*load/load/')"
json="$work/results.jsonl"
: >"$json"
status=0
for s in $sites; do
  case "$s" in
    synthetic)
      python3 "$here/bench.py" --name synthetic --arachne "$arachne" --spider "$spider" \
        --seed "$base/index.html" --expect 20001 --pairs "$pairs" --json "$json" || status=1
      ;;
    rustdoc)
      if [ -f "$docs/index.html" ]; then
        echo "rustdoc: $docs ($(find "$docs" -name '*.html' | wc -l) HTML files)"
        python3 "$here/bench.py" --name rustdoc --arachne "$arachne" --spider "$spider" \
          --seed "http://127.0.0.1:$docs_port/index.html" --pairs "$pairs" --json "$json" || status=1
      else
        echo "rustdoc: not installed at $docs (rustup component add rust-docs); skipped"
      fi
      ;;
    *) echo "unknown site $s"; status=1 ;;
  esac
done
echo "load after: $(uptime | sed 's/.*load/load/')"
echo "results: $json"
exit $status
