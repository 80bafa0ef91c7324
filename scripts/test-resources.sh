#!/usr/bin/env bash
# test-resources.sh - OpenVZ resource management (docs/RESOURCES.md), as root on the real
# kernel: the unit tests of the translation, beancounters, annotations, vzsplit and
# vzmemcheck, then real containers (runtime/tests/resources.rs): bad values refused, limits
# applied at start and changed live, a fork bomb and a memory hog contained and counted,
# CPU shares in the ratio of cpuunits, a CPU cap, I/O throttling and BFQ weights on a loop
# device, engines' annotations, vzsplit and vzmemcheck; it prints the beancounter table
# and the measurements. Exits non-zero on any failure; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
start=$(date +%s)

[ "$(id -u)" = 0 ] || { echo "test-resources.sh: must run as root" >&2; exit 1; }
for tool in losetup mkfs.ext4 busybox; do
  command -v "$tool" >/dev/null || { echo "test-resources.sh: $tool missing (scripts/deps/resources.list)" >&2; exit 1; }
done
# The I/O weight test needs BFQ (built in here; a module elsewhere).
modprobe bfq 2>/dev/null || true

leftovers() { ls -d /sys/fs/cgroup/*/vz/50[0-9][0-9] 2>/dev/null || true; }
before=$(leftovers)

echo "=== resources: unit tests"
cargo test --release --workspace --quiet --lib -- openvz::resources openvz::beancounters prepare:: openvz::list
cargo test --release --workspace --quiet --bin vzsplit --bin vzmemcheck

echo "=== resources: real containers"
cargo test --release --workspace --test resources -- --ignored --test-threads=2 --nocapture

after=$(leftovers)
if [ "$before" != "$after" ]; then
  echo "test-resources.sh: cgroups left behind: $after" >&2
  exit 1
fi
echo "=== resources: all tests passed in $(( $(date +%s) - start ))s"
