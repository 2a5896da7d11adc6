#!/usr/bin/env bash
# A private RabbitMQ (Debian's rabbitmq-server) for the tests, on 127.0.0.1 only, with its
# own epmd and every path in a private folder (no system service, nothing under /var).
#
# Sourced (what scripts/test.sh does), so the node is a child of the caller's shell:
#   . scripts/amqp.sh
#   amqp_start [STATE_FILE]    install rabbitmq-server if missing, start epmd and a node on
#                              free ports, wait (bounded) until the AMQP port accepts
#                              connections, write AMQP_PORT / AMQP_PID / AMQP_EPMD_PID to
#                              STATE_FILE (default target/amqp-test.env), and set AMQP_URL,
#                              AMQP_PORT, AMQP_PID in the caller
#   amqp_stop  [STATE_FILE]    stop the node, then its epmd, by their PIDs (never by name)
#
# AMQP_PORT and AMQP_BASE (the private folder) may be set beforehand to start a node again
# on the same port with the same data (a broker restart in a test); by default both are new.
# AMQP_TLS_PORT with AMQP_TLS_CERT, AMQP_TLS_KEY and AMQP_TLS_CA (PEM files) add an amqps
# listener on 127.0.0.1 (clients are not asked for a certificate).
#
# Run as a command: scripts/amqp.sh start|stop [STATE_FILE] (start prints the URL).
#
# apt never starts a system RabbitMQ: a policy-rc.d that exits 101 is put in place before
# installing, if there is none. Facts measured on these machines: ../shared/notes/brokers.md.

# shellcheck source=scripts/service.sh
. "$(dirname "${BASH_SOURCE[0]}")/service.sh"

AMQP_BIN=/usr/lib/rabbitmq/bin

amqp_die() { echo "amqp.sh: $*" >&2; return 1; }

amqp_install() {
    [ -x "$AMQP_BIN/rabbitmq-server" ] && command -v epmd >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || { amqp_die "rabbitmq-server is missing and this is not root: install the rabbitmq-server package"; return 1; }
    if [ ! -x /usr/sbin/policy-rc.d ] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
        # Without it the package would start a system RabbitMQ on 0.0.0.0:5672.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    echo "amqp.sh: installing rabbitmq-server" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null \
            || { amqp_die "apt-get install rabbitmq-server failed"; return 1; }
    fi
    [ -x "$AMQP_BIN/rabbitmq-server" ] || { amqp_die "rabbitmq-server still missing after install"; return 1; }
}

amqp_port_open() {
    python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"
}

amqp_start() {
    local state="${1:-target/amqp-test.env}" port dist epmd_port base log epmd_pid pid _
    amqp_install || return 1
    mkdir -p "$(dirname "$state")"
    log="${state%.env}.log"
    port="${AMQP_PORT:-$(service_free_port)}" || { amqp_die "no free port"; return 1; }
    dist="$(service_free_port)" && epmd_port="$(service_free_port)" || { amqp_die "no free port"; return 1; }
    base="${AMQP_BASE:-$(pwd)/target/amqp-$port}"
    mkdir -p "$base/home" "$base/mnesia" "$base/log"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' "$port" >"$base/rabbitmq.conf"
    if [ -n "${AMQP_TLS_PORT:-}" ]; then
        printf 'listeners.ssl.default = 127.0.0.1:%s\nssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n' \
            "$AMQP_TLS_PORT" "$AMQP_TLS_CA" "$AMQP_TLS_CERT" "$AMQP_TLS_KEY" >>"$base/rabbitmq.conf"
    fi
    printf '[].\n' >"$base/enabled_plugins"
    epmd -port "$epmd_port" -address 127.0.0.1 >>"$log" 2>&1 &
    epmd_pid=$!
    env RUNNING_UNDER_SYSTEMD=true HOME="$base/home" RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist" ERL_EPMD_ADDRESS=127.0.0.1 \
        ERL_EPMD_PORT="$epmd_port" RABBITMQ_CONFIG_FILE="$base/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" RABBITMQ_MNESIA_BASE="$base/mnesia" \
        RABBITMQ_LOG_BASE="$base/log" RABBITMQ_PID_FILE="$base/rabbit.pid" \
        "$AMQP_BIN/rabbitmq-server" >>"$log" 2>&1 &
    pid=$!
    printf 'AMQP_PORT=%s\nAMQP_PID=%s\nAMQP_EPMD_PID=%s\nAMQP_BASE=%s\n' "$port" "$pid" "$epmd_pid" "$base" >"$state"
    # 5-7 s idle, ~20 s on a busy machine: allow 90 s.
    for _ in $(seq 1 900); do
        if amqp_port_open "$port"; then
            AMQP_PORT="$port"
            AMQP_PID="$pid"
            AMQP_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            amqp_stop "$state"
            amqp_die "rabbitmq-server exited at start: $(tail -n 5 "$log")"
            return 1
        fi
        sleep 0.1
    done
    amqp_stop "$state"
    amqp_die "rabbitmq-server on port $port did not accept connections within 90 s"
}

amqp_stop() {
    local state="${1:-target/amqp-test.env}"
    [ -f "$state" ] || return 0
    # The node first (a graceful stop takes ~6 s), then its epmd.
    cp "$state" "$state.epmd"
    service_stop "$state" AMQP_PID
    service_stop "$state.epmd" AMQP_EPMD_PID
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    case "${1:-}" in
        start) amqp_start "${2:-target/amqp-test.env}" && echo "$AMQP_URL" ;;
        stop) amqp_stop "${2:-target/amqp-test.env}" ;;
        *) echo "usage: scripts/amqp.sh start|stop [STATE_FILE]" >&2; exit 2 ;;
    esac
fi
