#!/usr/bin/env bash
# test-resources.sh - OpenVZ resource management (docs/RESOURCES.md), as root on the real
# kernel: the unit tests of the translation, beancounters, annotations, vzsplit and
# vzmemcheck, then real containers (runtime/tests/resources.rs): bad values refused, limits
# applied at start and changed live, a fork bomb and a memory hog contained and counted,
# CPU shares in the ratio of cpuunits, a CPU cap, I/O throttling and BFQ weights on a loop
# device, engines' annotations, vzsplit and vzmemcheck; it prints the beancounter table
# and the measurements. Then podman (a private instance, scripts/lib/engines.sh) runs a
# container through vzrun with org.openvz.* annotations. Exits non-zero on any failure;
# leaves nothing behind. Builds with --workspace, as test.sh does, so nothing is rebuilt.
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

if [ "${VZ_TESTS_CARGO_DONE:-0}" != 1 ]; then   # (scripts/test.sh ran them)
  echo "=== resources: unit tests"
  cargo test --release --workspace --quiet --lib -- openvz::resources openvz::beancounters prepare:: openvz::list
  cargo test --release --workspace --quiet --bin vzsplit --bin vzmemcheck
fi

echo "=== resources: real containers"
cargo test --release --workspace --test resources -- --ignored --test-threads=2 --nocapture

echo "=== resources: podman passes org.openvz.* annotations to vzrun"
vzrun=${VZRUN:-$PWD/target/release/vzrun}
[ -x "$vzrun" ] || cargo test --release --workspace --quiet --no-run
# shellcheck source=lib/engines.sh
. scripts/lib/engines.sh
# shellcheck source=lib/images.sh
. scripts/lib/images.sh
T=$(mktemp -d /tmp/vzres-engines.XXXXXX)
trap 'podman_teardown "$T/podman"; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
export ENGINES_QUIET=1
images_busybox_tar "$T/busybox.tar" >/dev/null
podman_setup "$T/podman" "$vzrun"
podman_cmd import -q --change 'CMD=["/bin/sh"]' "$T/busybox.tar" localhost/busybox:resources >/dev/null
id=$(podman_cmd run -d --annotation org.openvz.numproc=32 --annotation org.openvz.cpuunits=3000 \
  --annotation org.openvz.ram=64M localhost/busybox:resources sleep 300)
check() { # NAME FILE WANT
  local got; got=$(cat "$2")
  [ "$got" = "$3" ] || { echo "FAIL: podman --annotation $1: $2 is $got, want $3" >&2; exit 1; }
  echo "PASS: podman --annotation $1 -> $(basename "$2") $got"
}
check org.openvz.numproc=32 "$(podman_container_cgroup "$id" pids)/pids.max" 32
if [ -d /sys/fs/cgroup/cpu ] && [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
  check org.openvz.cpuunits=3000 "$(podman_container_cgroup "$id" cpu)/cpu.shares" 3072
  check org.openvz.ram=64M "$(podman_container_cgroup "$id" memory)/memory.limit_in_bytes" 67108864
else
  check org.openvz.cpuunits=3000 "$(podman_container_cgroup "$id" unified)/cpu.weight" 300
  check org.openvz.ram=64M "$(podman_container_cgroup "$id" unified)/memory.max" 67108864
fi
if podman_cmd run --rm --annotation org.openvz.cpuunits=5 localhost/busybox:resources true 2>"$T/err"; then
  echo "FAIL: podman accepted org.openvz.cpuunits=5" >&2; exit 1
fi
grep -q "org.openvz.cpuunits" "$T/err" || { echo "FAIL: no clear error for a bad annotation: $(cat "$T/err")" >&2; exit 1; }
echo "PASS: podman shows vzrun's error for org.openvz.cpuunits=5"
podman_cmd rm -f -t 0 "$id" >/dev/null
podman_teardown "$T/podman"; rm -rf "$T"; trap - EXIT

after=$(leftovers)
if [ "$before" != "$after" ]; then
  echo "test-resources.sh: cgroups left behind: $after" >&2
  exit 1
fi
echo "=== resources: all tests passed in $(( $(date +%s) - start ))s"
