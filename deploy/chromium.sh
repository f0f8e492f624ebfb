#!/usr/bin/env bash
# Debian's Chromium and its driver, for the console's browser tests (tests/browser/):
# installed with apt-get only when missing (through sudo when not root). Playwright drives
# this browser (/usr/bin/chromium); it never downloads one of its own.
#
#   deploy/chromium.sh [install]   install when missing; prints CHROMIUM=/usr/bin/chromium
#   deploy/chromium.sh status      exit 0 when /usr/bin/chromium runs, 3 otherwise
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

say() { echo "chromium.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

works() { [[ -x "$CHROMIUM" ]] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; }

install() {
    works && return 0
    local run=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install chromium and chromium-driver by hand"
        run=(sudo -n)
    fi
    say "installing chromium and chromium-driver with apt-get"
    "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >&2 || die "apt-get install chromium chromium-driver failed"
    works || die "$CHROMIUM does not run after the install"
}

case "${1:-install}" in
    install|start) install; echo "CHROMIUM=$CHROMIUM" ;;
    status) works && exit 0 || exit 3 ;;
    *) die "usage: $0 [install|status]" ;;
esac
