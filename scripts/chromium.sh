#!/usr/bin/env bash
# Debian's chromium (and its WebDriver-free DevTools endpoint) for the dashboard's browser
# test (tests/dashboard_browser.rs). Sourced by scripts/test.sh:
#   . scripts/chromium.sh
#   chromium_install     install chromium if missing (as root, through apt-get); sets and
#                        exports ARACHNE_TEST_CHROMIUM to its path
#
# Like scripts/redis.sh, a policy-rc.d that exits 101 is put in place first (if there is
# none), so that no package starts a service.

chromium_die() { echo "chromium.sh: $*" >&2; return 1; }

chromium_find() {
    local c
    for c in chromium chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

chromium_install() {
    local path
    if ! path="$(chromium_find)"; then
        [ "$(id -u)" = 0 ] || { chromium_die "chromium is missing and this is not root: install the chromium package"; return 1; }
        if [ ! -x /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
        fi
        echo "chromium.sh: installing chromium" >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
            apt-get update -q >/dev/null || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null \
                || { chromium_die "apt-get install chromium failed"; return 1; }
        fi
        path="$(chromium_find)" || { chromium_die "chromium still missing after install"; return 1; }
    fi
    ARACHNE_TEST_CHROMIUM="$path"
    export ARACHNE_TEST_CHROMIUM
}

# Run as a command rather than sourced: install, print the path.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    chromium_install && echo "$ARACHNE_TEST_CHROMIUM"
fi
