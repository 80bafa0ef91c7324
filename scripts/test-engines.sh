#!/usr/bin/env bash
# test-engines.sh - real engines (podman, containerd) driving an OCI runtime, end to end.
#
# Usage: scripts/test-engines.sh [options] [RUNTIME_PATH]
#   RUNTIME_PATH   runtime binary to test (default: $VZRUN, else target/release/vzrun, built
#                  first with `cargo test --release --workspace --no-run`, a no-op when it is up to date)
#   --only podman|containerd|systemd   run one group (systemd = the podman --systemd=always boot)
#   --no-systemd   skip the systemd boot (no Debian image needed then)
#   --hide-unified hide /sys/fs/cgroup/unified from the engines (crun needs it on this host;
#                  same as ENGINES_HIDE_UNIFIED=1)
#
# Private podman and containerd instances (scripts/lib/engines.sh) in a temp dir; images built
# locally (scripts/lib/images.sh): busybox-static, and a Debian 12 minbase + systemd-sysv root
# cached in /var/cache/vzrun-tests (mmdebstrap, ~20-75 s on the first run). Each step prints
# PASS/FAIL with its time and, on failure, why (the engine's and runtime's stderr). Every step
# runs even after a failure; ends with "engines: N passed, N failed" and exits 1 if any failed.
# Everything made is removed on exit, also on failure or Ctrl-C.
# Needs root, podman, conmon, containerd, ctr, umoci, mmdebstrap, busybox-static, script.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib/engines.sh"
. "$HERE/lib/images.sh"

usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2; }
ONLY="" SYSTEMD=1 RUNTIME=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=${2:-}; shift ;;
    --no-systemd) SYSTEMD=0 ;;
    --hide-unified) export ENGINES_HIDE_UNIFIED=1 ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [ -z "$RUNTIME" ] || usage; RUNTIME=$1 ;;
  esac
  shift
done
case $ONLY in "" | podman | containerd | systemd) ;; *) echo "--only: podman, containerd or systemd" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "test-engines: must run as root" >&2; exit 2; }
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

RUNTIME=${RUNTIME:-${VZRUN:-}}   # scripts/test.sh exports VZRUN after building the workspace
if [ -z "$RUNTIME" ]; then
  RUNTIME=$REPO/target/release/vzrun
  echo "test-engines: building vzrun (cargo test --release --workspace --no-run)" >&2
  (cd "$REPO" && cargo test --release -q --workspace --no-run) || { echo "test-engines: cannot build vzrun" >&2; exit 1; }
fi
RUNTIME=$(readlink -f -- "$(command -v -- "$RUNTIME" || echo "$RUNTIME")")
[ -x "$RUNTIME" ] || { echo "test-engines: runtime '$RUNTIME' is not an executable" >&2; exit 2; }
for tool in podman conmon containerd ctr umoci script timeout; do
  command -v "$tool" >/dev/null || { echo "test-engines: $tool is missing (scripts/deps/engines.list)" >&2; exit 2; }
done

T=$(mktemp -d /tmp/test-engines.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  podman_teardown "$T/podman"
  containerd_stop "$T/ctrd"
  # systemd cgroups a broken runtime let a container create at the host's roots (see sd_check)
  local d
  for d in $(host_cgroup_roots); do
    grep -qxF "$d" <<<"$CG_ROOTS_BEFORE" || find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf -- "$T"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- step runner
PASSED=0 FAILED=0 FAILED_NAMES=()
ERR=$T/step.err     # a check writes why it failed here (plus any engine stderr)
ms() { echo $(($(date +%s%N) / 1000000)); }
# step NAME FUNCTION [ARGS...]: run one check, print PASS/FAIL and its duration.
step() {
  local name=$1 t0 t1 rc
  shift
  : >"$ERR"
  t0=$(ms)
  "$@" >"$T/step.out" 2>>"$ERR"
  rc=$?
  t1=$(ms)
  if [ $rc = 0 ]; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %-58s %6d ms%s\n' "$name" $((t1 - t0)) "${NOTE:+  ($NOTE)}"
  else
    FAILED=$((FAILED + 1)) FAILED_NAMES+=("$name")
    printf 'FAIL  %-58s %6d ms\n' "$name" $((t1 - t0))
    sed -e 's/^/      | /' "$ERR" | tail -n 25
  fi
  NOTE=""
}
NOTE=""
fail() { echo "$*" >>"$ERR"; return 1; }
# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
TMO="timeout -k 5"
P() { $TMO 120 "$T/podman/bin/podman" "$@"; }
C() { $TMO 60 "$T/ctrd/bin/ctr" "$@"; }

# ---------------------------------------------------------------- images
echo "test-engines: runtime $RUNTIME" >&2
CG_BEFORE=$(engines_cgroup_mounts)
CG_ROOTS_BEFORE=""   # set below, once host_cgroup_roots is defined
images_busybox_tar "$T/busybox.tar" >/dev/null || { echo "cannot build the busybox image" >&2; exit 1; }
BB=localhost/busybox:engines
SD=localhost/debian-systemd:engines

# ================================================================ podman
podman_setup_all() {
  podman_setup "$T/podman" "$RUNTIME" || return 1
  P import -q --change 'CMD=["/bin/sh"]' "$T/busybox.tar" "$BB" >/dev/null || fail "podman import of busybox failed"
}

# run --rm prints and leaves nothing behind; its cgroup is removed by the runtime's delete
p_run_rm() {
  local out n
  out=$(P run --rm --name rm1 "$BB" sh -c 'echo hello; cat /proc/self/cgroup | grep -m1 memory') ||
    fail "podman run --rm failed (exit $?)" || return 1
  [ "$(head -n1 <<<"$out")" = hello ] || fail "output '$out', want 'hello' first"
  n=$(P ps -a -q | wc -l)
  expect_eq "containers left after run --rm" "$n" 0
}

p_exit_code() {
  local want=$1 rc
  shift
  P run --rm "$BB" "$@" >/dev/null 2>>"$ERR"
  rc=$?
  expect_eq "exit status of podman run ... $*" "$rc" "$want"
}

# an unknown command: podman maps the runtime's error message to 127, which needs the
# runtime's JSON log line (runtime_supports_json) to name the missing file
p_exit_127() {
  local rc
  P run --rm "$BB" /no/such/command >/dev/null 2>>"$ERR"
  rc=$?
  expect_eq "exit status of a missing command" "$rc" 127
  grep -qi 'no such file\|not found' "$ERR" || fail "podman did not relay the runtime's error message"
}

p_detach() {
  local st
  P run -d --name d1 "$BB" sh -c 'trap "exit 0" TERM; sleep 1000 & wait' >/dev/null || fail "run -d failed" || return 1
  st=$(P inspect --format '{{.State.Status}}' d1)
  expect_eq "state after run -d" "$st" running
}

p_exec() {
  local out rc
  out=$(P exec d1 sh -c 'echo exec-ok $(cat /proc/1/cmdline | tr "\0" " ")') || fail "exec failed (exit $?)" || return 1
  case $out in "exec-ok sh -c trap"*) ;; *) fail "exec output '$out', want 'exec-ok sh -c trap...' (same pid namespace as the container)" ;; esac
  P exec d1 sh -c 'exit 5'
  rc=$?
  expect_eq "exec exit status" "$rc" 5 || return 1
  out=$(P exec -e FOO=bar -w /tmp -u 65534 d1 sh -c 'echo $FOO $(pwd) $(id -u)') || fail "exec with env/cwd/user failed" || return 1
  expect_eq "exec -e FOO=bar -w /tmp -u 65534" "$out" "bar /tmp 65534"
}

# stop sends SIGTERM: the container's trap exits 0 at once
p_stop_term() {
  local t0 t1 st
  t0=$(ms)
  P stop -t 10 d1 >/dev/null || fail "podman stop failed" || return 1
  t1=$(ms)
  st=$(P inspect --format '{{.State.Status}} {{.State.ExitCode}}' d1)
  expect_eq "state after stop" "$st" "exited 0" || return 1
  NOTE="stopped in $((t1 - t0)) ms"
  [ $((t1 - t0)) -lt 5000 ] || fail "stop took $((t1 - t0)) ms: SIGTERM did not reach the container"
}

# a PID 1 without a SIGTERM handler ignores SIGTERM: stop must escalate to SIGKILL after -t
p_stop_kill() {
  local t0 t1 st
  P run -d --name d2 "$BB" sleep 1000 >/dev/null || fail "run -d failed" || return 1
  t0=$(ms)
  P stop -t 1 d2 >/dev/null || fail "podman stop failed" || return 1
  t1=$(ms)
  st=$(P inspect --format '{{.State.Status}} {{.State.ExitCode}}' d2)
  expect_eq "state after stop" "$st" "exited 137" || return 1
  NOTE="stopped in $((t1 - t0)) ms"
  [ $((t1 - t0)) -lt 6000 ] || fail "stop -t 1 took $((t1 - t0)) ms"
}

# the runtime's delete removes the container's cgroups
p_rm_cgroups() {
  local cg
  P run -d --name d3 "$BB" sleep 1000 >/dev/null || fail "run -d failed" || return 1
  cg=$(podman_container_cgroup d3 pids) || return 1
  [ -d "$cg" ] || fail "cgroup $cg does not exist while the container runs" || return 1
  P rm -f -t 0 d1 d2 d3 >/dev/null || fail "podman rm failed" || return 1
  [ ! -d "$cg" ] || fail "cgroup $cg still exists after podman rm"
}

p_memory() {
  local cg v
  P run -d --name m1 --memory 64m "$BB" sleep 1000 >/dev/null || fail "run --memory failed" || return 1
  cg=$(podman_container_cgroup m1 memory) || return 1
  v=$(cat "$cg/memory.limit_in_bytes")
  expect_eq "$cg/memory.limit_in_bytes" "$v" 67108864
  P rm -f -t 0 m1 >/dev/null
}

# a process that touches more than the limit is OOM-killed (this host has no swap): the shell
# (PID 1) survives and reports 137 for its child, the kernel counts the kill in the cgroup
p_memory_enforced() {
  local cg i out oom
  P run -d --name m2 --memory 32m --memory-swap 32m "$BB" \
    sh -c 'tail -c 200000000 /dev/zero; echo "tail exited $?"; sleep 1000' >/dev/null || fail "run --memory failed" || return 1
  cg=$(podman_container_cgroup m2 memory) || return 1
  for ((i = 0; i < 400; i++)); do
    out=$(P logs m2 2>&1 | grep '^tail exited')
    [ -n "$out" ] && break
    sleep 0.1
  done
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control")
  NOTE="'$out', oom_kill $oom, max usage $(($(cat "$cg/memory.max_usage_in_bytes") >> 20)) MiB"
  P rm -f -t 0 m2 >/dev/null
  expect_eq "the 200 MB allocation under --memory 32m" "$out" "tail exited 137" || return 1
  [ "${oom:-0}" -ge 1 ] || fail "memory.oom_control shows no oom_kill"
}

# a subshell of the container's shell forks 30 sleeps: forks past the limit fail (and end the
# subshell: busybox sh exits when fork fails; PID 1 stays)
p_pids() {
  local cg v cur ev i
  P run -d --name p1 --pids-limit 10 "$BB" \
    sh -c '(i=0; while [ $i -lt 30 ]; do sleep 300 & i=$((i + 1)); done) 2>/dev/null; echo forked; sleep 1000' \
    >/dev/null || fail "run --pids-limit failed" || return 1
  cg=$(podman_container_cgroup p1 pids) || return 1
  v=$(cat "$cg/pids.max")
  expect_eq "$cg/pids.max" "$v" 10 || return 1
  for ((i = 0; i < 400; i++)); do
    P logs p1 2>/dev/null | grep -q forked && break
    sleep 0.1
  done
  cur=$(cat "$cg/pids.current") ev=$(cat "$cg/pids.events" 2>/dev/null)
  NOTE="pids.current $cur, pids.events '${ev:-none}'"
  P rm -f -t 0 p1 >/dev/null
  [ "$cur" -le 10 ] || fail "pids.current $cur exceeds pids.max 10" || return 1
  [ "$cur" -ge 5 ] || fail "only $cur processes: the forks did not happen at all" || return 1
  case $ev in "max "[1-9]*) ;; *) fail "pids.events '$ev': no fork was refused" ;; esac
}

# -t: a pty inside (script(1) gives podman the terminal it needs)
p_tty() {
  local out rc
  out=$($TMO 60 script -qefc "$T/podman/bin/podman run --rm -t $BB sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo TTY-OK; exit 3'" /dev/null </dev/null | tr -d '\r\000')
  rc=${PIPESTATUS[0]}
  grep -q '/dev/pts/[0-9]' <<<"$out" || fail "tty inside printed '$out', want /dev/pts/N" || return 1
  grep -q '^TTY-OK$' <<<"$out" || fail "stdin/stdout are not terminals inside: '$out'" || return 1
  expect_eq "exit status through the terminal" "$rc" 3 || return 1
  out=$(P run --rm "$BB" sh -c 'tty || true')
  expect_eq "without -t" "$out" "not a tty"
}

# ================================================================ podman --systemd=always
SD_BOOT_S=60
# SD_TAR: built (or found in the cache) before the steps run, so mmdebstrap's progress shows
sd_image() {
  [ -n "$SD_TAR" ] || fail "no Debian image: mmdebstrap failed (see above)" || return 1
  P import -q --change 'CMD=["/sbin/init"]' "$SD_TAR" "$SD" >/dev/null || fail "podman import of $SD_TAR failed"
}

# podman's defaults for systemd mode on cgroup v1: the host's cgroup namespace, no CAP_SYS_ADMIN,
# the host's name=systemd hierarchy bind-mounted rw, so systemd works in the subtree that
# /proc/self/cgroup names (--cgroupns=private would make that "/", the host's root: see
# docs/ENGINES.md); sd_check verifies the combination is safe
sd_boot() {
  local st t0 t1 deadline pid exec_broken=0
  t0=$(ms)
  deadline=$((t0 + SD_BOOT_S * 1000))
  P run -d --name sd1 --systemd=always "$SD" /sbin/init >/dev/null ||
    fail "run --systemd=always failed" || return 1
  pid=$(P inspect --format '{{.State.Pid}}' sd1)
  while :; do
    if [ $exec_broken = 0 ]; then
      st=$(P exec sd1 systemctl is-system-running 2>"$T/sd.err")
      if grep -q 'OCI runtime' "$T/sd.err"; then
        # exec itself fails: say so, and tell from the host whether systemd boots anyway
        cat "$T/sd.err" >>"$ERR"
        exec_broken=1
      fi
    fi
    [ $exec_broken = 1 ] && st=$(nsenter -t "$pid" -m -p -- systemctl is-system-running 2>/dev/null)
    case $st in running | degraded) break ;; esac
    [ "$(P inspect --format '{{.State.Status}}' sd1)" = running ] || break
    [ "$(ms)" -lt $deadline ] || break
    sleep 0.2
  done
  t1=$(ms)
  NOTE="is-system-running '$st' after $((t1 - t0)) ms"
  if [ "$st" = degraded ]; then
    NOTE+="; failed units: $(nsenter -t "$pid" -m -p -- systemctl --failed --no-legend --plain 2>&1 | awk '{print $1}' | xargs)"
  fi
  if [ $exec_broken = 1 ]; then
    fail "podman exec fails (above); from the host (nsenter): is-system-running '$st' after $((t1 - t0)) ms"
    return 1
  fi
  case $st in
    running | degraded) ;;
    *) if [ "$(P inspect --format '{{.State.Status}}' sd1)" != running ]; then
         fail "the container exited with status $(P inspect --format '{{.State.ExitCode}}' sd1) after $((t1 - t0)) ms"
       else
         fail "systemd state: '$st' after $((t1 - t0)) ms"
       fi
       P logs sd1 2>&1 | tail -n 10 >>"$ERR"
       return 1 ;;
  esac
}

# From the host: systemd is PID 1, has container=, has its own cgroup namespace or else no
# CAP_SYS_ADMIN (with it, systemd remounts the host's cgroup2 with nsdelegate), and sits in the
# container's cgroup in every v1 hierarchy (a systemd at the host's cgroup root would create
# init.scope and system.slice in the host's tree)
sd_check() {
  local pid id line bad="" capeff
  pid=$(P inspect --format '{{.State.Pid}}' sd1) && [ -n "$pid" ] && [ "$pid" != 0 ] ||
    fail "container sd1 is not running" || return 1
  id=$(P inspect --format '{{.Id}}' sd1)
  expect_eq "PID 1 of the container" "$(cat "/proc/$pid/comm")" systemd || return 1
  tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^container=' ||
    fail "systemd has no container= in its environment" || return 1
  if [ "$(readlink "/proc/$pid/ns/cgroup")" = "$(readlink /proc/self/ns/cgroup)" ]; then
    capeff=$(awk '$1 == "CapEff:" { print $2 }' "/proc/$pid/status")
    (((16#$capeff >> 21) & 1)) && fail "systemd has CAP_SYS_ADMIN in the host's cgroup namespace" && return 1
    NOTE="host cgroupns, no CAP_SYS_ADMIN"
  else
    NOTE="own cgroupns"
  fi
  while IFS= read -r line; do
    case $line in 0::*) continue ;; *":/libpod_parent/libpod-$id"*) ;; *) bad+=" '$line'" ;; esac
  done <"/proc/$pid/cgroup"
  [ -z "$bad" ] || fail "systemd is outside the container's cgroup in:$bad"
}

# podman stops a systemd container with SIGRTMIN+3 (its StopSignal): a clean halt, well before
# the SIGKILL that would follow the timeout; then rm removes every cgroup, systemd's nested ones too
sd_stop() {
  local t0 t1 st sig id left
  sig=$(P inspect --format '{{.Config.StopSignal}}' sd1)
  id=$(P inspect --format '{{.Id}}' sd1)
  st=$(P inspect --format '{{.State.Status}} {{.State.ExitCode}}' sd1)
  case $st in
    running*) ;;
    *) fail "nothing to stop: the container is '$st'"; P rm -f -t 0 sd1 >/dev/null; return 1 ;;
  esac
  t0=$(ms)
  P stop -t 20 sd1 >/dev/null || fail "podman stop failed" || return 1
  t1=$(ms)
  st=$(P inspect --format '{{.State.Status}} {{.State.ExitCode}}' sd1)
  NOTE="stop signal $sig; stopped in $((t1 - t0)) ms; exit '$st'"
  case $st in "exited "*) ;; *) fail "state after stop: '$st'" || return 1 ;; esac
  [ $((t1 - t0)) -lt 15000 ] || fail "systemd took $((t1 - t0)) ms to stop: the stop signal did not halt it" || return 1
  P rm -f -t 0 sd1 >/dev/null || fail "podman rm failed" || return 1
  left=$(find /sys/fs/cgroup/*/libpod_parent -maxdepth 1 -type d -name "libpod-$id" 2>/dev/null)
  [ -z "$left" ] || fail "cgroups left after rm: $left"
}

# systemd names it would create at the root of a hierarchy it wrongly sees as its own
SYSTEMD_ROOT_NAMES="init.scope system.slice user.slice machine.slice"
host_cgroup_roots() {
  local d n
  for d in /sys/fs/cgroup/*/; do
    for n in $SYSTEMD_ROOT_NAMES; do [ -d "$d$n" ] && echo "$d$n"; done
  done
}

host_cgroup_roots_unchanged() {
  local now
  now=$(host_cgroup_roots)
  [ "$now" = "$CG_ROOTS_BEFORE" ] || {
    fail "new cgroups at the root of the host's hierarchies (systemd escaped the container's cgroup):"
    comm -13 <(echo "$CG_ROOTS_BEFORE") <(echo "$now") >>"$ERR"
    return 1
  }
}

cgroup_mounts_unchanged() {
  local now
  now=$(engines_cgroup_mounts)
  [ "$now" = "$CG_BEFORE" ] || { fail "the host's cgroup mounts changed:"; diff <(echo "$CG_BEFORE") <(echo "$now") >>"$ERR"; return 1; }
}

# ================================================================ containerd
c_setup_all() {
  containerd_start "$T/ctrd" || return 1
  images_oci_archive "$T/busybox.tar" "$T/busybox-oci.tar" engines /bin/sh >/dev/null || return 1
  C image import --base-name localhost/busybox "$T/busybox-oci.tar" >/dev/null || fail "ctr image import failed" || return 1
  C image ls -q | grep -qx "$BB" || fail "image $BB not listed after import: $(C image ls -q)"
}

c_run() {
  local out rc
  out=$(C run --rm --runc-binary "$RUNTIME" "$BB" c1 sh -c 'echo hello; exit 7')
  rc=$?
  expect_eq "ctr run exit status" "$rc" 7 || return 1
  expect_eq "ctr run output" "$out" hello || return 1
  C container ls -q | grep -qx c1 && fail "container c1 left after ctr run --rm"
  return 0
}

c_run_detached() {
  C run -d --runc-binary "$RUNTIME" "$BB" c2 sh -c 'trap "exit 9" TERM; sleep 1000 & wait' >/dev/null ||
    fail "ctr run -d failed" || return 1
  C task ls | awk '$1 == "c2" { print $3 }' | grep -qx RUNNING || fail "task c2 is not RUNNING: $(C task ls)"
}

c_exec() {
  local out rc
  out=$(C task exec --exec-id e1 c2 sh -c 'echo exec-ok $(cat /proc/1/cmdline | tr "\0" " "); exit 3')
  rc=$?
  expect_eq "ctr task exec exit status" "$rc" 3 || return 1
  case $out in "exec-ok sh -c trap"*) ;; *) fail "exec output '$out', want 'exec-ok sh -c trap...'" ;; esac
}

# kill SIGTERM: the task's trap exits 9
c_kill_term() {
  local st i
  C task kill -s SIGTERM c2 || fail "ctr task kill failed" || return 1
  for ((i = 0; i < 400; i++)); do
    st=$(C task ls | awk '$1 == "c2" { print $3 }')
    [ "$st" = STOPPED ] && break
    sleep 0.05
  done
  expect_eq "task state after SIGTERM" "$st" STOPPED || return 1
  # ctr reports a detached task's status when deleting it: "exit with non-zero exit code 9"
  C task delete c2 >"$T/c2.del" 2>&1 || { cat "$T/c2.del" >>"$ERR"; fail "ctr task delete failed"; return 1; }
  grep -q 'exit code 9"' "$T/c2.del" || fail "exit status after SIGTERM: '$(cat "$T/c2.del")', want 9" || return 1
  C container delete c2 || fail "ctr container delete failed"
}

# kill SIGKILL of an attached `ctr run`: it returns 137, and the cgroup is gone after delete
c_kill_kill() {
  local pid rc i cg
  C run --runc-binary "$RUNTIME" "$BB" c3 sleep 1000 >/dev/null 2>>"$ERR" &
  pid=$!
  for ((i = 0; i < 400; i++)); do
    C task ls | awk '$1 == "c3" { print $3 }' | grep -qx RUNNING && break
    sleep 0.05
  done
  cg=/sys/fs/cgroup/pids/$CTR_NAMESPACE/c3
  [ -d "$cg" ] || fail "no cgroup $cg while c3 runs" || { kill $pid; return 1; }
  C task kill -s SIGKILL c3 || fail "ctr task kill -s SIGKILL failed" || return 1
  wait $pid
  rc=$?
  expect_eq "ctr run exit status after SIGKILL" "$rc" 137 || return 1
  C container delete c3 || fail "ctr container delete failed" || return 1
  [ ! -d "$cg" ] || fail "cgroup $cg still exists after delete"
}

c_tty() {
  local out rc
  out=$($TMO 60 script -qefc "$T/ctrd/bin/ctr run --rm -t --runc-binary $RUNTIME $BB c4 sh -c 'tty; [ -t 0 ] && echo TTY-OK; exit 4'" /dev/null </dev/null | tr -d '\r\000')
  rc=${PIPESTATUS[0]}
  grep -q '/dev/pts/[0-9]' <<<"$out" || fail "tty inside printed '$out', want /dev/pts/N" || return 1
  grep -q '^TTY-OK$' <<<"$out" || fail "stdin is not a terminal inside: '$out'" || return 1
  expect_eq "exit status through the terminal" "$rc" 4
}

# ================================================================ run
T_START=$(ms)
CG_ROOTS_BEFORE=$(host_cgroup_roots)
if want podman || want systemd; then
  echo "== podman $(podman --version | awk '{print $3}') with $RUNTIME" >&2
  step "podman: setup, import busybox image" podman_setup_all
  if want podman; then
    step "podman: run --rm (output, nothing left)" p_run_rm
    step "podman: exit code 42 (sh -c 'exit 42')" p_exit_code 42 sh -c 'exit 42'
    step "podman: exit code 1 (false)" p_exit_code 1 false
    step "podman: exit code 127 (missing command, runtime error relayed)" p_exit_127
    step "podman: run -d" p_detach
    step "podman: exec (output, exit code, env/cwd/user)" p_exec
    step "podman: stop (SIGTERM handled)" p_stop_term
    step "podman: stop -t 1 (SIGTERM ignored -> SIGKILL)" p_stop_kill
    step "podman: rm removes the container's cgroup" p_rm_cgroups
    step "podman: --memory 64m in memory.limit_in_bytes" p_memory
    step "podman: --memory 32m enforced (OOM kill, 137)" p_memory_enforced
    step "podman: --pids-limit 10 in pids.max and enforced" p_pids
    step "podman: -t gives a terminal" p_tty
  fi
  if [ $SYSTEMD = 1 ] && want systemd; then
    SD_TAR=$(images_debian_tar systemd-sysv) || SD_TAR=""
    step "podman: Debian 12 systemd image (mmdebstrap, cached)" sd_image
    step "podman: --systemd=always boots to running/degraded" sd_boot
    step "podman: systemd is PID 1, container=, own cgroupns and cgroups" sd_check
    step "podman: stop halts systemd cleanly, rm removes its cgroups" sd_stop
  fi
  podman_teardown "$T/podman"
fi
if want containerd; then
  echo "== containerd $(containerd --version | awk '{print $3}') with ctr run --runc-binary $RUNTIME" >&2
  step "containerd: start, ctr image import (OCI archive)" c_setup_all
  step "containerd: run --rm (output, exit code 7)" c_run
  step "containerd: run -d" c_run_detached
  step "containerd: task exec (output, exit code 3)" c_exec
  step "containerd: task kill SIGTERM (trap exit 9)" c_kill_term
  step "containerd: task kill SIGKILL (137, cgroup removed)" c_kill_kill
  step "containerd: run -t gives a terminal" c_tty
  containerd_stop "$T/ctrd"
fi
step "host cgroup mounts unchanged" cgroup_mounts_unchanged
step "no systemd cgroups created at the host's cgroup roots" host_cgroup_roots_unchanged

echo "test-engines: $RUNTIME, $(($(ms) - T_START)) ms" >&2
[ $FAILED = 0 ] || printf 'failed: %s\n' "${FAILED_NAMES[@]}" >&2
echo "engines: $PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
