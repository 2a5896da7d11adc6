#!/usr/bin/env bash
# The whole test suite: formatting, lints, the API docs, unit and integration tests, doc
# tests, and the examples. The brokers the suites need (redis-server, a Kafka-protocol
# broker, rabbitmq-server) are installed and started here, on 127.0.0.1 only, and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi

step "build dependencies (librdkafka is built from source: a C toolchain, zlib, OpenSSL)"
need=()
for pkg in g++ make pkg-config zlib1g-dev libssl-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing packages: ${need[*]} (install them, or run as root)" >&2; exit 1; }
    echo "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }
else
    echo "present"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo features: the library with none, and with each alone (README, \"Cargo features\")"
# Lints only the library (cheap: no test binaries); warnings are errors, as above.
cargo clippy --lib --quiet --no-default-features -- -D warnings
for feature in redis kafka amqp sandbox state schedules dashboard; do
    echo "--features $feature"
    cargo clippy --lib --quiet --no-default-features --features "$feature" -- -D warnings
done

step "cargo doc --no-deps (RUSTDOCFLAGS=-D warnings: no broken intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

step "redis-server on 127.0.0.1 (scripts/redis.sh)"
# A child of this script, stopped on exit; tests/redis.rs reads the URL.
. scripts/redis.sh
redis_start target/redis-test.env
trap 'redis_stop target/redis-test.env' EXIT
export ARACHNE_TEST_REDIS_URL="$REDIS_URL"
echo "$ARACHNE_TEST_REDIS_URL (pid $REDIS_PID)"

step "a three-node Redis Cluster on 127.0.0.1 (scripts/redis-cluster.sh)"
# Children of this script, stopped on exit; tests/redis_cluster.rs reads the seed URLs.
. scripts/redis-cluster.sh
redis_cluster_start target/redis-cluster-test.env
trap 'redis_cluster_stop target/redis-cluster-test.env; redis_stop target/redis-test.env' EXIT
export ARACHNE_TEST_REDIS_CLUSTER="$REDIS_CLUSTER_URLS"
echo "$ARACHNE_TEST_REDIS_CLUSTER"

step "Kafka-protocol broker (tansu) on 127.0.0.1 (scripts/kafka.sh)"
# tests/kafka.rs reads the bootstrap address, and starts brokers of its own from $TANSU.
. scripts/kafka.sh
kafka_start target/kafka-test.env
trap 'kafka_stop target/kafka-test.env; redis_cluster_stop target/redis-cluster-test.env; redis_stop target/redis-test.env' EXIT
export ARACHNE_TEST_KAFKA="$KAFKA_BOOTSTRAP" ARACHNE_TEST_TANSU="$TANSU"
echo "$ARACHNE_TEST_KAFKA (pid $KAFKA_PID)"

step "chromium for the dashboard's browser test (scripts/chromium.sh)"
. scripts/chromium.sh && chromium_install && echo "$ARACHNE_TEST_CHROMIUM"

step "rabbitmq-server on 127.0.0.1, own epmd and private dirs (scripts/amqp.sh)"
# tests/amqp.rs reads the URL (and starts nodes of its own for the restart test).
. scripts/amqp.sh
amqp_start target/amqp-test.env
trap 'amqp_stop target/amqp-test.env; kafka_stop target/kafka-test.env; redis_cluster_stop target/redis-cluster-test.env; redis_stop target/redis-test.env' EXIT
export ARACHNE_TEST_AMQP="$AMQP_URL"
echo "amqp://guest:***@127.0.0.1:$AMQP_PORT/%2f (pid $AMQP_PID)"

step "Scrapy and scrapy-redis in target/scrapy-venv (scripts/scrapy.sh; pinned, installed once)"
# tests/redis_scrapy.rs runs the real Scrapy spider tests/scrapy/sandbox_spider.py with it.
. scripts/scrapy.sh && scrapy_install && echo "$ARACHNE_TEST_SCRAPY_PYTHON"

step "cargo test (unit, integration, doc tests)"
log=target/test-output.log
mkdir -p target
cargo test --all-targets --no-fail-fast --quiet 2>&1 | tee "$log"
cargo test --doc --quiet 2>&1 | tee -a "$log"
# The unit tests of the smallest build: every part that a feature leaves out says so.
cargo test --lib --quiet --no-default-features 2>&1 | tee -a "$log"

# One closing line for the whole suite.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$log"
