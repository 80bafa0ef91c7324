#!/usr/bin/env bash
# bench-runtime.sh - OCI runtimes side by side: container lifecycle latency and memory.
#
# Usage: scripts/bench-runtime.sh [options] [NAME=COMMAND ...]
#   NAME=COMMAND  a runtime to measure: COMMAND is its binary plus any global options
#                 (default: vzrun=target/release/vzrun runc=runc crun=crun
#                 youki=/opt/youki/bin/youki). vzrun is built (cargo build --release -p vzrun)
#                 when missing; youki is installed into /opt/youki with cargo when missing.
#   -r RUNS       timed runs per measurement (default 30)
#   -w WARMUP     warmup runs (default 3, before each round)
#   -R ROUNDS     split the RUNS into ROUNDS rounds, interleaved across runtimes (default 3),
#                 so that a load change on a shared machine hits every runtime alike
#   -o DIR        where results go (default bench-results/runtime-YYYYmmdd-HHMMSS)
#   -d N          also the density test: N detached `sleep` containers per runtime
#   -p            also profile `run` (DIR/profile-NAME.*): strace syscall summary and timeline
#                 (processes, namespaces, pivot_root, exec, exit, with ms offsets), perf stat
#                 (CPU vs wall time), perf samples by binary and by symbol (needs strace, perf)
#   --no-install  do not build vzrun nor install youki; skip what is missing
#   -h            this help
#
# Measurements, per runtime, each the median of RUNS hyperfine runs (in ROUNDS interleaved rounds):
#   (a sample that fails or times out is left out of the median and counted in the table)
#   run    COMMAND run --bundle B ID              /bin/true in a busybox container, whole lifecycle
#   csd    create; start; wait for exit; delete   separate commands, as engines call them
#   exec   COMMAND exec ID /bin/true              into a running container
#   rss    peak RSS (KiB) of `COMMAND run` and its children, GNU time %M, median of 5
# Density (-d N): wall time to create+start N `sleep` containers one after another, median per
# container, PSS per container of the container processes plus any runtime process that stays
# (a monitor/shim), memory charged to each container's memory cgroup (its pages and kernel
# objects), time to delete them all.
#
# The bundle: `runc spec` defaults (5 namespaces, read-only root, default capabilities, devices
# denied), busybox-static root, no cgroupsPath (each runtime's default). Every runtime gets its
# own --root state dir, a tmpfs like the /run that engines use. Each runtime is measured in a
# private mount namespace; for crun (hybrid host) /sys/fs/cgroup/unified is unmounted there,
# since crun refuses this hybrid layout (no per-call overhead, unlike an unshare wrapper). Every call runs under
# `timeout -s KILL 20` (the same ~1 ms for all) so a hang fails a sample instead of the run.
#
# Writes DIR/results.md (the tables, to paste into docs/PERFORMANCE.md), DIR/results.tsv and
# hyperfine's JSON, and prints the markdown. Run it by hand on a quiet machine (not in CI).
# Every container it made is deleted on exit, also on failure.
# Needs root, hyperfine, jq, runc (for `runc spec`), busybox-static, GNU time.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
YOUKI_VERSION=0.7.0

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- one runtime (child namespace)
# bench-runtime.sh __measure T NAME HIDE COMMAND RUNS WARMUP DENSITY OUT PROFILE PHASE
#   PHASE lat-K: round K of the latency measurements (RUNS samples each, appended to
#                T/times-NAME-WHAT, one per line, in seconds); PHASE extra: peak RSS, profile,
#                density (appended to T/results.tsv).
# Runs inside `unshare -m --propagation private`, so the unmount of the unified hierarchy
# (HIDE=1) stays in this process tree.
if [ "${1:-}" = __measure ]; then
  T=$2 NAME=$3 HIDE=$4 RT=$5 RUNS=$6 WARMUP=$7 DENSITY=$8 OUT=$9 PROFILE=${10} PHASE=${11}
  if [ "$HIDE" = 1 ]; then
    umount -n /sys/fs/cgroup/unified || die "cannot hide /sys/fs/cgroup/unified"
  fi
  S=$T/state-$NAME
  R="$RT --root $S"
  K="timeout -s KILL 20"
  mkdir -p "$S"
  # State on a tmpfs, as engines keep it (/run): on the disk, file creation and fsync in the
  # state dir would be measured too. Private to this namespace; gone when the phase ends.
  mount -n -t tmpfs -o mode=0700,size=64m vzbench-state "$S" || die "cannot mount a tmpfs on $S"
  cleanup_rt() {
    local d
    for d in "$S"/*/; do
      [ -d "$d" ] && $R delete --force "$(basename "$d")" >/dev/null 2>&1
    done
  }
  trap cleanup_rt EXIT
  record() { printf '%s\t%s\t%s\n' "$NAME" "$1" "$2" >>"$T/results.tsv"; }
  # A measurement that failed once is FAILED for good (later rounds skip it).
  failed() { grep -qxF "$1" "$T/failed-$NAME" 2>/dev/null; }
  # The error of a failed trial goes to the results, so the table says why: the last line that
  # says "error" (a backtrace follows it in some runtimes), else the last line.
  trial() {
    local what=$1 msg
    shift
    failed "$what" && return 1
    if ! "$@" >"$T/trial.out" 2>&1; then
      msg=$(grep -i 'error' "$T/trial.out" | tail -n 1)
      msg=${msg:-$(tail -n 1 "$T/trial.out")}
      msg=${msg:-failed with no output}
      msg=$(printf '%s' "$msg" | tr '\t' ' ' | cut -c1-300)
      say "$NAME: $what fails: $msg"
      echo "$what" >>"$T/failed-$NAME"
      printf '%s\t%s\t%s\n' "$NAME" "$what" "$msg" >>"$T/errors.tsv"
      return 1
    fi
  }
  hf() {
    local what=$1 json=$OUT/$1-$NAME-$PHASE.json
    shift
    # -i: a sample that fails or hangs (killed by the timeout) is counted, not fatal
    if hyperfine -i --style none -w "$WARMUP" -r "$RUNS" --export-json "$json" -n "$NAME" "$@" \
      >/dev/null 2>"$T/hf.err"; then
      jq -r '.results[0] | [.times, .exit_codes] | transpose[] | select(.[1] == 0) | .[0]' "$json" \
        >>"$T/times-$NAME-$what"
      jq -r '[.results[0].exit_codes[] | select(. != 0)] | length' "$json" >>"$T/nfail-$NAME-$what"
    else
      say "$NAME: $what: $(tail -n 2 "$T/hf.err" | tr '\n' ' ')"
      echo "$what" >>"$T/failed-$NAME"
      printf '%s\t%s\t%s\n' "$NAME" "$what" "hyperfine: $(tail -n 1 "$T/hf.err")" >>"$T/errors.tsv"
    fi
  }
  # `wait for exit` in csd: the init pid from --pid-file (runc writes no newline), polled with
  # bash builtins, no fork; an empty pid fails instead of reading /proc//stat.
  WAIT="{ read -r p < $T/csd.pid || [ -n \"\$p\" ]; } && [ -n \"\$p\" ] && { while read -r s 2>/dev/null < /proc/\$p/stat; do s=\${s##*) }; [ \"\${s%% *}\" = Z ] && break; done; }"

  if [ "${PHASE%%-*}" = lat ]; then
    say "$NAME: run ($PHASE)"
    $R delete --force b-run >/dev/null 2>&1
    trial run $K $R run --bundle "$T/true" b-run &&
      hf run -N "$K $R run --bundle $T/true b-run"

    say "$NAME: create+start+delete ($PHASE)"
    $R delete --force b-csd >/dev/null 2>&1
    CSD="$K $R create --bundle $T/true --pid-file $T/csd.pid b-csd && $K $R start b-csd && $WAIT && $K $R delete b-csd"
    trial csd bash -c "$CSD" &&
      hf csd --shell bash --prepare "$R delete --force b-csd >/dev/null 2>&1; rm -f $T/csd.pid" "$CSD"

    say "$NAME: exec ($PHASE)"
    if ! failed exec && trial exec-target bash -c "$K $R create --bundle $T/sleep b-exec </dev/null && $K $R start b-exec"; then
      trial exec $K $R exec b-exec /bin/true && hf exec -N "$K $R exec b-exec /bin/true"
      $R delete --force b-exec >/dev/null 2>&1
    else
      failed exec || echo exec >>"$T/failed-$NAME"
    fi
    exit 0
  fi

  say "$NAME: peak RSS of run"
  rss=$(for _ in 1 2 3 4 5; do
    $R delete --force b-rss >/dev/null 2>&1
    $K /usr/bin/time -f %M -o "$T/rss" $R run --bundle "$T/true" b-rss >/dev/null 2>&1 && cat "$T/rss"
  done | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "FAILED" }')
  record rss "$rss"

  if [ "$PROFILE" = 1 ]; then
    say "$NAME: profile of run (strace, perf)"
    pf=$OUT/profile-$NAME
    $R delete --force b-prof >/dev/null 2>&1
    # Syscall time, wall clock, all processes of one run (strace slows each call: relative only).
    strace -f -c -w -o "$pf.strace-summary.txt" $R run --bundle "$T/true" b-prof >/dev/null 2>&1
    # Timeline of one run: processes, namespaces, mounts, cgroup writes, exec, exit.
    $R delete --force b-prof >/dev/null 2>&1
    strace -f -ttt -T -o "$pf.strace.txt" \
      -e trace=process,unshare,setns,mount,umount2,pivot_root,openat,write,read,wait4,waitid,sendmsg,recvmsg,ppoll,epoll_wait \
      $R run --bundle "$T/true" b-prof >/dev/null 2>&1
    awk '
      NR == 1 { t0 = $2 }
      { t = ($2 - t0) * 1000 }
      / (clone|clone3|vfork|fork)\(/ && !/resumed/ { clones++ }
      / execve\(/ { printf "%8.2f ms  pid %s  execve %s\n", t, $1, $3 }
      / (unshare|setns)\(/ { printf "%8.2f ms  pid %s  %s\n", t, $1, $3 }
      / pivot_root\(/ { printf "%8.2f ms  pid %s  pivot_root\n", t, $1 }
      / mount\(/ { mounts++ }
      /openat\(.*\/sys\/fs\/cgroup/ { cg++ }
      / exit_group\(/ { printf "%8.2f ms  pid %s  %s\n", t, $1, $3 }
      END { printf "total %.2f ms, %d clones, %d mounts, %d cgroup file opens\n", t, clones, mounts, cg }
    ' "$pf.strace.txt" >"$pf.timeline.txt"
    # CPU time versus wall time over 10 runs, then where the CPU goes (perf samples).
    perf stat -r 10 -o "$pf.perf-stat.txt" -e task-clock,context-switches,cpu-migrations,page-faults \
      bash -c "$R delete --force b-prof >/dev/null 2>&1; $R run --bundle $T/true b-prof" >/dev/null 2>&1
    perf record -q -F 4000 -g -o "$pf.perf.data" -- bash -c \
      "for i in \$(seq 20); do $R run --bundle $T/true b-prof\$i; done" >/dev/null 2>&1
    perf report -q -i "$pf.perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
      grep -v '^$' | head -n 25 >"$pf.perf-dso.txt"
    perf report -q -i "$pf.perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
      grep -v '^$' | head -n 40 >"$pf.perf-sym.txt"
    rm -f "$pf.perf.data" "$pf.perf.data.old"
    for ((i = 1; i <= 20; i++)); do $R delete --force "b-prof$i" >/dev/null 2>&1; done
  fi

  if [ "$DENSITY" -gt 0 ]; then
    say "$NAME: density, $DENSITY containers"
    us() { echo "${EPOCHREALTIME//[.,]/}"; }
    t0=$(us) ok=1
    : >"$T/dens-start"
    for ((i = 0; i < DENSITY; i++)); do
      a=$(us)
      if ! $K $R create --bundle "$T/sleep" --pid-file "$T/dens.$i.pid" "d-$i" </dev/null >/dev/null 2>"$T/dens.err" ||
        ! $K $R start "d-$i" >/dev/null 2>>"$T/dens.err"; then
        say "$NAME: density: container $i failed: $(tail -n 2 "$T/dens.err" | tr '\n' ' ')"
        ok=0
        break
      fi
      echo $(($(us) - a)) >>"$T/dens-start"
    done
    t1=$(us)
    sleep 2
    pss=0 n=0 residue=0 residue_pss=0 memcg=0 memcg_missing=0
    for ((j = 0; j < i; j++)); do
      p=""
      read -r p <"$T/dens.$j.pid" 2>/dev/null   # runc writes no trailing newline
      [ -n "$p" ] || continue
      v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
      pss=$((pss + ${v:-0})) n=$((n + 1))
      # Everything charged to the container's memory cgroup: its pages plus kernel objects
      # (page tables, slab for its namespaces and files) on cgroup v1 with kmem accounting.
      cg=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$p/cgroup")
      if [ -n "$cg" ] && [ "$cg" != / ]; then
        v=$(cat "/sys/fs/cgroup/memory$cg/memory.usage_in_bytes" 2>/dev/null)
        memcg=$((memcg + ${v:-0} / 1024))
      else
        memcg_missing=1   # left in the root memory cgroup: nothing to attribute
      fi
    done
    # Processes of the runtime binary itself that stay while containers run (monitors, shims).
    rtbin=$(readlink -f "$(command -v "${RT%% *}")")
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/exe" 2>/dev/null)" = "$rtbin" ] || continue
      v=$(awk '$1 == "Pss:" { print $2 }' "$p/smaps_rollup" 2>/dev/null)
      residue=$((residue + 1)) residue_pss=$((residue_pss + ${v:-0}))
    done
    t2=$(us)
    for ((j = 0; j < i; j++)); do $K $R delete --force "d-$j" >/dev/null 2>&1; done
    t3=$(us)
    if [ $ok = 1 ]; then
      record dens_start_all_s "$(awk -v v=$((t1 - t0)) 'BEGIN { printf "%.2f", v / 1e6 }')"
      record dens_start_ms "$(sort -n "$T/dens-start" | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }')"
      record dens_pss_kib "$(((pss + residue_pss) / DENSITY))"
      record dens_residue "$residue"
      if [ $memcg_missing = 0 ]; then
        record dens_memcg_kib "$((memcg / DENSITY))"
      else
        record dens_memcg_kib "n/a (no memory cgroup)"
      fi
      record dens_delete_all_s "$(awk -v v=$((t3 - t2)) 'BEGIN { printf "%.2f", v / 1e6 }')"
    else
      record dens_start_ms FAILED
    fi
  fi
  exit 0
fi

# ---------------------------------------------------------------- main
usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2; }
RUNS=30 WARMUP=3 ROUNDS=3 OUT="" DENSITY=0 INSTALL=1 PROFILE=0
SPECS=()
while [ $# -gt 0 ]; do
  case $1 in
    -r) RUNS=${2:?}; shift ;;
    -w) WARMUP=${2:?}; shift ;;
    -R) ROUNDS=${2:?}; shift ;;
    -o) OUT=${2:?}; shift ;;
    -d) DENSITY=${2:?}; shift ;;
    -p) PROFILE=1 ;;
    --no-install) INSTALL=0 ;;
    -h | --help) usage ;;
    *=*) SPECS+=("$1") ;;
    *) echo "bench: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 5 ] || die "-r: at least 5 runs"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "-w: a number"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-R: a number, at least 1"
[[ $DENSITY =~ ^[0-9]+$ ]] || die "-d: a number"
[ "$(id -u)" = 0 ] || die "must run as root"
for tool in hyperfine jq runc /usr/bin/time /bin/busybox; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install hyperfine jq runc time busybox-static)"
done

if [ ${#SPECS[@]} = 0 ]; then
  SPECS=("vzrun=$REPO/target/release/vzrun" runc=runc crun=crun youki=/opt/youki/bin/youki)
  if [ $INSTALL = 1 ]; then
    say "building vzrun (cargo build --release -p vzrun)"
    (cd "$REPO" && cargo build --release -q -p vzrun) || die "cannot build vzrun"
    if [ ! -x /opt/youki/bin/youki ]; then
      say "installing youki $YOUKI_VERSION into /opt/youki (cargo install, several minutes)"
      # v1: this host's controllers are cgroup v1, which youki's default features leave out
      cargo install -q youki --locked --version "$YOUKI_VERSION" --features v1 --root /opt/youki ||
        die "cargo install youki failed (needs libseccomp-dev, pkg-config)"
    fi
  fi
fi
NAMES=() CMDS=()
for s in "${SPECS[@]}"; do
  n=${s%%=*} c=${s#*=}
  [[ $n =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad runtime name '$n'"
  if ! command -v "${c%% *}" >/dev/null; then
    say "skipping $n: ${c%% *} not found"
    continue
  fi
  NAMES+=("$n") CMDS+=("$c")
done
[ ${#NAMES[@]} -gt 0 ] || die "no runtime to measure"
OUT=${OUT:-$REPO/bench-results/runtime-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

T=$(mktemp -d /tmp/bench-runtime.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# Bundles: runc's default spec, a busybox root, /bin/true and /bin/sleep.
mkdir -p "$T/rootfs/bin" "$T/rootfs/proc" "$T/rootfs/dev" "$T/rootfs/sys" "$T/spec"
cp /bin/busybox "$T/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$T/rootfs/bin/$a"; done
(cd "$T/spec" && runc spec) || die "runc spec failed"
for b in true:'["/bin/true"]' sleep:'["/bin/sleep", "3600"]'; do
  mkdir -p "$T/${b%%:*}"
  jq --arg root "$T/rootfs" --argjson args "${b#*:}" \
    '.process.terminal = false | .process.args = $args | .root.path = $root | .hostname = "bench"' \
    "$T/spec/config.json" >"$T/${b%%:*}/config.json" || die "cannot write the bundle"
done
: >"$T/results.tsv"
: >"$T/errors.tsv"

# measure NAME_INDEX PHASE: one phase of one runtime, in a private mount namespace.
measure() {
  local n=${NAMES[$1]} c=${CMDS[$1]} hide=0
  [ "$(basename "${c%% *}")" = crun ] && hide=1
  say "== $n: $c$([ $hide = 1 ] && echo ' (unified cgroup2 hidden)'), $2"
  unshare -m --propagation private -- bash "$0" __measure "$T" "$n" "$hide" "$c" "$ROUND_RUNS" "$WARMUP" \
    "$DENSITY" "$OUT" "$PROFILE" "$2" || say "$n: $2 aborted"
}
# Latency in interleaved rounds: on a shared machine the load drifts, and each runtime should
# see the same mix of it.
ROUND_RUNS=$(((RUNS + ROUNDS - 1) / ROUNDS))
for ((round = 1; round <= ROUNDS; round++)); do
  for i in "${!NAMES[@]}"; do measure "$i" "lat-$round"; done
done
for i in "${!NAMES[@]}"; do
  measure "$i" extra
  n=${NAMES[$i]}
  for what in run csd exec; do
    if grep -qxF "$what" "$T/failed-$n" 2>/dev/null || [ ! -s "$T/times-$n-$what" ]; then
      v=FAILED
    else
      v=$(sort -g "$T/times-$n-$what" | awk '{ v[NR] = $1 }
        END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) * 1000 }')
    fi
    printf '%s\t%s\t%s\n' "$n" "$what" "$v" >>"$T/results.tsv"
    nf=$(awk '{ s += $1 } END { print s + 0 }' "$T/nfail-$n-$what" 2>/dev/null || echo 0)
    if [ "${nf:-0}" -gt 0 ]; then
      printf '%s\t%s_nfail\t%s\n' "$n" "$what" "$nf" >>"$T/results.tsv"
      printf '%s\t%s\t%s\n' "$n" "$what" "$nf of $((ROUND_RUNS * ROUNDS)) samples failed or timed out (median over the others)" >>"$T/errors.tsv"
    fi
  done
  echo "$n	version	$(${CMDS[$i]} --version 2>/dev/null | head -n 1 | tr '\t' ' ')" >>"$T/results.tsv"
done
cp "$T/results.tsv" "$OUT/results.tsv"

# ---------------------------------------------------------------- tables
printf '%s\n' "${NAMES[@]}" >"$T/names"
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, kernel $(uname -r), cgroup v1 hybrid;"
  echo "medians of $((ROUND_RUNS * ROUNDS)) runs in $ROUNDS interleaved rounds (hyperfine, $WARMUP warmups each),"
  echo "busybox bundle with runc's default spec."
  echo
  awk -F '\t' '
    NR == FNR { name[++n] = $1; next }
    { v[$1, $2] = $3 }
    function ms(x, nf) {
      return (x == "" ? "-" : x == "FAILED" ? "FAILED" : sprintf("%.1f", x) (nf ? " (" nf " failed)" : ""))
    }
    function ratio(x, base) {
      if (x == "" || x == "FAILED" || base == "" || base == "FAILED" || base + 0 == 0) return "-"
      return sprintf("%.2f", x / base)
    }
    END {
      print "| runtime | run /bin/true (ms) | create+start+delete (ms) | exec (ms) | peak RSS of run (KiB) | version |"
      print "|---|---:|---:|---:|---:|---|"
      for (i = 1; i <= n; i++) {
        r = name[i]
        printf "| %s | %s | %s | %s | %s | %s |\n", r, ms(v[r, "run"], v[r, "run_nfail"]),
          ms(v[r, "csd"], v[r, "csd_nfail"]), ms(v[r, "exec"], v[r, "exec_nfail"]),
          (v[r, "rss"] == "" ? "-" : v[r, "rss"]), v[r, "version"]
      }
      for (b = 1; b <= 2; b++) {
        base = (b == 1 ? "runc" : "crun")
        found = 0
        for (i = 1; i <= n; i++) if (name[i] == base) found = 1
        if (!found) continue
        print ""
        printf "Ratio to %s (below 1 = faster or smaller than %s):\n\n", base, base
        print "| runtime | run | create+start+delete | exec | peak RSS |"
        print "|---|---:|---:|---:|---:|"
        for (i = 1; i <= n; i++) {
          r = name[i]
          printf "| %s | %s | %s | %s | %s |\n", r, ratio(v[r, "run"], v[base, "run"]),
            ratio(v[r, "csd"], v[base, "csd"]), ratio(v[r, "exec"], v[base, "exec"]), ratio(v[r, "rss"], v[base, "rss"])
        }
      }
      dens = 0
      for (i = 1; i <= n; i++) if (v[name[i], "dens_start_ms"] != "") dens = 1
      if (dens) {
        print ""
        print "| density | start all (s) | create+start median (ms) | PSS per container (KiB) | runtime processes left | memory cgroup per container (KiB) | delete all (s) |"
        print "|---|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= n; i++) {
          r = name[i]
          printf "| %s | %s | %s | %s | %s | %s | %s |\n", r, v[r, "dens_start_all_s"], v[r, "dens_start_ms"],
            v[r, "dens_pss_kib"], v[r, "dens_residue"], v[r, "dens_memcg_kib"], v[r, "dens_delete_all_s"]
        }
      }
    }' "$T/names" "$T/results.tsv"
  if [ -s "$T/errors.tsv" ]; then
    echo
    echo "Failures:"
    echo
    awk -F '\t' '{ printf "- %s %s: `%s`\n", $1, $2, $3 }' "$T/errors.tsv"
  fi
} >"$OUT/results.md"
cat "$OUT/results.md"
say "results: $OUT (results.md, results.tsv, hyperfine JSON)"
