#!/usr/bin/env bash
# test-vzctl.sh - vzctl with real distributions: builds (or takes from the cache) the
# Debian 12 systemd and sysvinit templates with vzbuild, then boots, reboots and stops
# containers made from them (runtime/tests/vzctl_os.rs). The busybox-based vzctl tests
# run with the unit tests (cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-vzctl: must run as root" >&2; exit 2; }
cargo build --release -q -p vzbuild
. scripts/lib/templates.sh
VZCTL_TEST_SYSTEMD_TEMPLATE=$(template_from_recipe templates/debian-12-systemd.recipe target/release/vzbuild)
VZCTL_TEST_SYSVINIT_TEMPLATE=$(template_from_recipe templates/debian-12-sysvinit.recipe target/release/vzbuild)
export VZCTL_TEST_SYSTEMD_TEMPLATE VZCTL_TEST_SYSVINIT_TEMPLATE
cargo test --release -q -p vzrun --test vzctl_os -- --ignored --test-threads=1 --nocapture
