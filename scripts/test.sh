#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it (.ci/run calls exactly this), as root on
# Debian 12: installs what is missing, checks formatting and lints, builds, runs the unit
# tests, vzrun's own integration tests, the OCI conformance suite against vzrun with runc
# as the reference, the podman and containerd flows, and vzbuild's tests; then checks that
# nothing was left behind on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" $(( $(date +%s) - start )); }

step "dependencies"
bash scripts/install-deps.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

export VZRUN=$PWD/target/release/vzrun
before=$(bash scripts/host-state.sh)

# One release build serves everything: the tests, and the binaries the scripts below use.
step "build, unit and integration tests"
cargo test --workspace --release --quiet -- --test-threads=2
# The suites below skip the cargo tests this has run, and build with `cargo test
# --workspace --release --no-run` as this did (`cargo build` resolves other features,
# without the dev-dependencies, and would compile everything again).
export VZ_TESTS_CARGO_DONE=1

for suite in scripts/test-*.sh; do
  step "$suite"
  bash "$suite"
done

step "host left as found"
after=$(bash scripts/host-state.sh)
if [ "$before" != "$after" ]; then
  echo "the tests left state behind:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
step "all tests passed"
