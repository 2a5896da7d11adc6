#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, doc tests, and the
# examples. Later suites that need a broker (Redis, RabbitMQ, Kafka) install and start it
# here, on 127.0.0.1 only, and stop it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "redis-server on 127.0.0.1 (scripts/redis.sh)"
# A child of this script, stopped on exit; tests/redis.rs reads the URL.
. scripts/redis.sh
redis_start target/redis-test.env
trap 'redis_stop target/redis-test.env' EXIT
export ARACHNE_TEST_REDIS_URL="$REDIS_URL"
echo "$ARACHNE_TEST_REDIS_URL (pid $REDIS_PID)"

step "cargo test (unit, integration, doc tests)"
log=target/test-output.log
mkdir -p target
cargo test --all-targets --quiet 2>&1 | tee "$log"
cargo test --doc --quiet 2>&1 | tee -a "$log"

# One closing line for the whole suite.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$log"
