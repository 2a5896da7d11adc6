#!/usr/bin/env bash
# What the scripts that start a test service share (sourced by scripts/redis.sh and
# scripts/kafka.sh): a free port on 127.0.0.1, and stopping a service by the PID its state
# file records (never by name).

service_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# service_stop STATE_FILE PID_KEY: kills the PID recorded as PID_KEY=... in STATE_FILE,
# waits (bounded) until it is gone, and removes the state file.
service_stop() {
    local state="$1" key="$2" pid _
    [ -f "$state" ] || return 0
    pid="$(sed -n "s/^$key=//p" "$state")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true # reaps it when it is our child
        for _ in $(seq 1 50); do
            # A zombie (state Z) is dead already: PID 1 reaps orphans late.
            if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$state"
}
