#!/usr/bin/env bash
# test-disk.sh: every two-level disk quota test (docs/DISK-QUOTA.md), as root, from the
# repository:
#
#   bash scripts/test-disk.sh
#
# 1. builds vzrun (release) and the disk integration tests (runtime/tests/disk.rs);
# 2. runs the disk unit tests (limits parsing, quota/loop/image helpers, the seccomp guard);
# 3. runs the integration tests on this host's kernel: simfs on loop-mounted ext4 and XFS
#    file systems the tests make, ploop images, the second level, bad input, a create
#    killed half-way. What is proven depends on the kernel: without quota formats
#    (CONFIG_QFMT_V2; this project's CI kernel) simfs limits must be refused clearly and
#    an image's size and inode count are the limits (ENOSPC);
# 4. runs the kernel-dependent tests again in a QEMU guest booting Debian 12's stock
#    kernel (scripts/lib/test-vm.sh; its root is cached in /var/cache/vzrun-tests),
#    where the quota paths must run (VZRUN_DISK_REQUIRE_QUOTA=1): EDQUOT for blocks and
#    inodes on ext4 and XFS project quotas, soft limits with grace, live changes, live
#    growth of an image, per-user quota managed from inside with the quota tools.
#
# Env: DISK_TESTS_VM=0 skips step 4 (e.g. while iterating on host-only code);
# VZ_TESTS_CARGO_DONE=1 (set by scripts/test.sh, whose cargo test ran them) skips 2 and 3.
# Exit status: non-zero when any step fails.
set -uo pipefail
export LC_ALL=C.UTF-8
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH=$HOME/.cargo/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "test-disk.sh must run as root" >&2; exit 2; }
for tool in cargo mkfs.ext4 mkfs.xfs resize2fs e2fsck mount losetup ldd python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install the packages in scripts/deps/disk.list" >&2; exit 2; }
done

start=$(date +%s)
pass=0; fail=0; failed=()
step() { printf '\n== %s (%ss)\n' "$*" $(( $(date +%s) - start )); }
result() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "ok    $2"; else fail=$((fail + 1)); failed+=("$2"); echo "FAIL  $2"; fi; }

step "build"
# (the build scripts/test.sh made: `cargo build` would resolve other features, without
# the dev-dependencies, and compile everything again)
cargo test --release -q --workspace --no-run || { echo "build failed" >&2; exit 1; }
bin=$(cargo test --release -q --workspace --test disk --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "disk":
        print(m["executable"])')
[ -x "$bin" ] || { echo "could not build the disk tests" >&2; exit 1; }

if [ "${VZ_TESTS_CARGO_DONE:-0}" != 1 ]; then   # (scripts/test.sh ran these)
  step "unit tests (openvz::disk)"
  cargo test --release -q --workspace --lib -- openvz::disk --test-threads=2
  result $? "disk unit tests"

  step "integration tests on this host ($(uname -r))"
  "$bin" --test-threads=2
  result $? "disk integration tests, host kernel"
fi

if [ "${DISK_TESTS_VM:-1}" != 0 ]; then
  step "kernel-dependent tests in a VM with Debian's stock kernel"
  bash scripts/lib/test-vm.sh run -C "$repo" -- \
    env VZRUN_DISK_REQUIRE_QUOTA=1 "$bin" --test-threads=2 simfs_ ploop_ second_level_
  result $? "disk integration tests, stock kernel with quotas (VM)"
fi

step "summary"
echo "time: $(( $(date +%s) - start )) s"
[ "$fail" = 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "disk: $pass passed, $fail failed"
[ "$fail" = 0 ]
