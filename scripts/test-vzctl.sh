#!/usr/bin/env bash
# test-vzctl.sh - vzctl with real distributions: builds (or takes from the cache) the
# Debian 12 systemd and sysvinit templates with vzbuild, then boots, reboots and stops
# containers made from them (runtime/tests/vzctl_os.rs). The busybox-based vzctl tests
# run with the unit tests (cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-vzctl: must run as root" >&2; exit 2; }
cargo test --release -q --workspace --no-run   # (the build scripts/test.sh made)
. scripts/lib/templates.sh
VZCTL_TEST_SYSTEMD_TEMPLATE=$(template_from_recipe templates/debian-12-systemd.recipe target/release/vzbuild)
VZCTL_TEST_SYSVINIT_TEMPLATE=$(template_from_recipe templates/debian-12-sysvinit.recipe target/release/vzbuild)
export VZCTL_TEST_SYSTEMD_TEMPLATE VZCTL_TEST_SYSVINIT_TEMPLATE
cargo test --release -q --workspace --test vzctl_os -- --ignored --test-threads=1 --nocapture

# The same semantics from an engine: podman with vzrun and org.openvz.* annotations gets a
# system container (init as PID 1, its own cgroup namespace) whose root is a persistent
# private area: files survive `podman rm` and show up in the next container.
echo "== podman with org.openvz.* annotations"
. scripts/lib/engines.sh
. scripts/lib/images.sh
T=$(mktemp -d /tmp/test-vzctl-podman.XXXXXX)
trap 'podman_teardown "$T/podman" 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
ENGINES_QUIET=1 podman_setup "$T/podman" "$PWD/target/release/vzrun" vzrun
images_busybox_tar "$T/busybox.tar" >/dev/null
podman_cmd import -q --change 'CMD=["/bin/sh"]' "$T/busybox.tar" localhost/busybox:vzctl >/dev/null
bash scripts/make-busybox-bundle.sh "$T/ct" >/dev/null
private=$T/ct/rootfs
mkdir -p "$private/sbin" "$private/run" "$private/var/log"
ln -sf ../bin/busybox "$private/sbin/init"
printf '::sysinit:/bin/sh -c "echo booted >> /var/log/boots"\n::respawn:/bin/sleep 1000000\n' > "$private/etc/inittab"
failures=0
check() { # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "PASS  $1"; else echo "FAIL  $1: expected '$2', got '$3'"; failures=$((failures + 1)); fi
}
# podman runs /sbin/init in its systemd mode, whose stop signal (SIGRTMIN+3) busybox init
# ignores: stop it with busybox's poweroff signal instead.
annotations=(--annotation "org.openvz.private=$private" --annotation org.openvz.system-container=true
  --stop-signal USR2)
podman_cmd run -d --name ct1 "${annotations[@]}" localhost/busybox:vzctl /sbin/init >/dev/null
check "init is PID 1" init "$(podman_cmd exec ct1 cat /proc/1/comm)"
check "own cgroup namespace" "0::/" "$(podman_cmd exec ct1 sh -c 'grep "^0::" /proc/1/cgroup')"
# Read from the host: init holds CAP_SYS_BOOT, which podman's exec lacks, so the kernel
# refuses /proc/1/environ to the exec'd process (ptrace access needs a superset of caps).
init_pid=$(podman_cmd inspect -f '{{.State.Pid}}' ct1)
# podman names itself (container=podman); vzrun adds container=vzrun only when unset.
check "container= set" "container=podman" "$(tr '\0' '\n' < "/proc/$init_pid/environ" | grep ^container=)"
podman_cmd exec ct1 sh -c 'echo kept > /root/persist'
podman_cmd rm -f -t 5 ct1 >/dev/null
check "the file is in the private area on the host" kept "$(cat "$private/root/persist")"
podman_cmd run -d --name ct2 "${annotations[@]}" localhost/busybox:vzctl /sbin/init >/dev/null
check "files persist into the next container" kept "$(podman_cmd exec ct2 cat /root/persist)"
check "it booted twice" 2 "$(podman_cmd exec ct2 sh -c 'wc -l < /var/log/boots')"
podman_cmd rm -f -t 5 ct2 >/dev/null
bad=$(podman_cmd run --rm --annotation org.openvz.private=/nonexistent localhost/busybox:vzctl true 2>&1 || true)
case $bad in *org.openvz.private=/nonexistent*) echo "PASS  a bad private area is refused with its name";;
  *) echo "FAIL  bad private area: $bad"; failures=$((failures + 1));; esac
echo "podman annotations: $failures failed"
[ "$failures" = 0 ]
