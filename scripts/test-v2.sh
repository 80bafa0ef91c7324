#!/usr/bin/env bash
# test-v2.sh - vzrun on a real pure cgroup v2 host (docs/CGROUPS-V2.md), as root, from the
# repository:
#
#   bash scripts/test-v2.sh
#
# The CI machines are cgroup v1 hybrid hosts, most users' hosts are pure cgroup v2. This
# builds everything on the host, then boots ONE QEMU guest (scripts/lib/test-vm.sh: Debian
# 12's stock kernel booted with cgroup_no_v1=all, cgroup2 alone at /sys/fs/cgroup, the
# repository shared at the same path) and runs there, from the host's build:
#   1. the guest is checked to be pure v2 (no v1 hierarchy mounted nor mountable);
#   2. the runtime's cgroup-related unit tests;
#   3. vzrun's own v2 checks: limits in memory.max/pids.max/cpu.max..., the same files as
#      runc writes for the same spec, `vzrun update` live, pause/resume through
#      cgroup.freeze, stats, delete (also of a paused container) removing the cgroup, bad
#      input (net_cls limits) refused with nothing left;
#   4. a vzctl system container: its own cgroup namespace and writable cgroup2 subtree,
#      the namespace root a delegation boundary, limits at start and live, cgroup removed
#      at stop; then the busybox vzctl tests (runtime/tests/vzctl.rs) and the resource
#      tests whose results do not depend on timing (runtime/tests/resources.rs);
#   5. the oci-tests cgroup tests against Debian's runc (the reference) and vzrun: a test
#      passing on runc must pass on vzrun;
#   6. nothing left behind in the guest (cgroups, mounts).
# Results stay in target/v2-tests/ (results, oci-tests JSON lines and comparison).
# Env: V2_TESTS_VM_TIMEOUT (seconds for the whole guest run, default 900; each call in it
# has its own bound, see guarded()).
# Exit status: non-zero when any check fails or the guest gives no status.
set -uo pipefail
export LC_ALL=C.UTF-8
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
export PATH=$HOME/.cargo/bin:$PATH
TARGET=x86_64-unknown-linux-gnu
OUT=$repo/target/v2-tests
OCI_TESTS=$repo/target/$TARGET/debug/oci-tests
VZRUN=$repo/target/release/vzrun
# The oci-tests run against runc and vzrun: the cgroup tests, and the device cgroup (an
# eBPF program on v2: a runtime that does not attach one lets a container open any device).
OCI_FILTERS=(cgroups. linux.device_cgroup_ linux.default_devices)
# Unit tests of the modules that read, translate or write cgroups.
UNIT_FILTERS=(cgroups:: prepare:: container::update container::events container::ps
  openvz::resources openvz::beancounters openvz::translate)
# In TCG emulation every fork+exec costs ~50 ms and each Rust test's VZ installation ~20 s
# (its busybox template), so the guest runs the tests that prove most about cgroup v2 and
# whose results do not depend on timing:
# the vzctl life cycle (boot, exec, reboot, stop, start, poweroff, destroy: the cgroup goes)
VZCTL_TESTS=(lifecycle_exec_persistence_reboot_and_halt)
# limits as cgroup v2 files at start and live, and a memory hog killed and counted.
RESOURCE_TESTS=(limits_apply_at_start_change_live_and_persist
  a_memory_hog_is_contained_and_counted)

step() { printf '\n== %s (%ss)\n' "$*" $(( $(date +%s) - start )); }

########################################################################################
# In the guest
########################################################################################

# Every check appends "ok NAME" or "FAIL NAME: why" to the results file the host reads.
record() { echo "$*" >>"$OUT/results"; echo "$*"; }
check() { # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then record "ok    $1"; else record "FAIL  $1: expected '$2', got '$3'"; fi
}
check_that() { # NAME CMD...: passes when CMD succeeds
  local name=$1; shift
  if "$@"; then record "ok    $name"; else record "FAIL  $name"; fi
}
# (python3 costs ~0.5 s a start in the guest: only where a shell cannot read the JSON.)
json_field() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k] if isinstance(v, dict) else v[int(k)]
print(v)' "$1" 2>/dev/null; }
# Every call of a runtime or test program is bounded: a hang becomes a failed check naming
# the call, with the guest's processes (state, wait channel, kernel stack) printed and kept
# in $OUT/hangs.txt, instead of a guest that gives no status at the VM timeout.
guarded() { # SECONDS CMD...
  local limit=$1 pid dog rc; shift
  "$@" &
  pid=$!
  ( timeout "$limit" tail -s 0.1 --pid="$pid" -f /dev/null ||   # (-s 0.1: by default tail looks once a second, a second lost per call)
      { dump_processes "$limit s: $*" | tee -a "$OUT/hangs.txt" >&2; kill -KILL "$pid"; } ) &
  dog=$!
  wait "$pid"; rc=$?
  wait "$dog"
  if [ $rc = 137 ] && grep -qF "$limit s: $*" "$OUT/hangs.txt" 2>/dev/null; then
    record "FAIL  hung for $limit s: $*"
  fi
  return $rc
}
dump_processes() { # WHAT
  local p
  echo "=== hung for $1"
  ps -eo pid,ppid,stat,wchan:30,etimes,args
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    case "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" in
      *vzrun*|*vzctl*|*runc*|*oci-tests*|*/deps/*)
        echo "--- ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline")"
        grep -E '^(State|SigBlk|SigPnd|ShdPnd):' "$p/status"; cat "$p/stack" 2>/dev/null ;;
    esac
  done
  dmesg | tail -n 20
}
# Waits up to 10 s for CMD to succeed.
eventually() { local _; for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
no_dir() { [ ! -e "$1" ]; }
file_has() { grep -qx "$2" "$1" 2>/dev/null; }   # FILE LINE

# A copy of the busybox bundle the host made (unpacked once in $BASE_BUNDLE: 400 symlinks
# over 9p cost seconds), running ARGS, its config edited by the python code in $EDIT
# (c = config).
bundle() { # DIR ARGS...
  local dir=$1; shift
  cp -a "$BASE_BUNDLE" "$dir" || return 1
  python3 - "$dir/config.json" "$@" <<EOF
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = sys.argv[2:]
c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
${EDIT:-pass}
json.dump(c, open(path, "w"))
EOF
}

guest_is_pure_v2() {
  check "/sys/fs/cgroup is cgroup2" cgroup2fs "$(stat -f -c %T /sys/fs/cgroup)"
  check "no cgroup v1 hierarchy mounted" 0 "$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); break } }' /proc/self/mountinfo | grep -cx cgroup)"
  local m; m=$(mktemp -d /tmp/v1.XXXXXX)
  if mount -t cgroup -o memory cgroup "$m" 2>/dev/null; then
    umount "$m"; record "FAIL  cgroup v1 cannot be mounted (cgroup_no_v1=all): it could"
  else
    record "ok    cgroup v1 cannot be mounted (cgroup_no_v1=all)"
  fi
  rmdir "$m"
  check "cgroup2 mounted with nsdelegate" yes "$(grep -q ' /sys/fs/cgroup .*nsdelegate' /proc/self/mountinfo && echo yes)"
  echo "kernel $(uname -r); controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
}

# vzrun alone: the files it writes, live updates, freezing, stats, deletion, bad input.
vzrun_checks() {
  local t=$1 st=$1/state id=v2-ct pid cg=/sys/fs/cgroup/vzrun/v2-ct out rc
  rt() { guarded 120 "$VZRUN" --root "$st" "$@" </dev/null; }
  devices_enforced() { # PREFIX
    check "${1}device cgroup: an allowed device opens" yes "$(rt exec "$id" sh -c ': <>/dev/fuse && echo yes')"
    check "${1}device cgroup: an allowed device node can be made" yes \
      "$(rt exec "$id" sh -c 'mknod /dev/fuse-$$ c 10 229 && rm /dev/fuse-$$ && echo yes')"
    check "${1}device cgroup: a disk cannot be opened (EPERM)" 1 \
      "$(rt exec "$id" sh -c ': </dev/oci-disk' 2>&1 | grep -c 'not permitted')"
    check "${1}device cgroup: a disk node made inside cannot be opened (EPERM)" 1 \
      "$(rt exec "$id" sh -c 'mknod /dev/disk-$$ b 8 16 && : </dev/disk-$$' 2>&1 | grep -c 'not permitted')"
  }
  state_pid() { rt state "$1" | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'; }
  state_status() { rt state "$1" | grep -o '"status": *"[a-z]*"' | cut -d'"' -f4; }
  status_is() { [ "$(state_status "$1")" = "$2" ]; }
  # No cgroupsPath: vzrun's default /vzrun/<id>. The device cgroup (an eBPF program on
  # v2) allows /dev/fuse (10:229, in no default list) and nothing else outside the
  # defaults; the process holds CAP_MKNOD (making nodes is allowed, as runc's defaults
  # do), so only the cgroup stops it opening a disk (8:0; EPERM from the cgroup, ENXIO
  # would mean it was let through).
  EDIT='c["linux"]["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 32}})
c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
    {"path": "/dev/oci-disk", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660}]
c["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
for caps in c["process"]["capabilities"].values():
    caps.append("CAP_MKNOD")' \
    bundle "$t/b" sleep 1000000 || { record "FAIL  make a bundle"; return; }
  if ! rt create --bundle "$t/b" "$id" >"$t/create.log" 2>&1 || ! rt start "$id" >>"$t/create.log" 2>&1; then
    record "FAIL  vzrun create/start: $(tail -n 3 "$t/create.log")"; return
  fi
  pid=$(state_pid "$id")
  check "default cgroup /vzrun/<id> holds init (host view)" "0::/vzrun/$id" "$(cat "/proc/$pid/cgroup")"
  check "memory.max = memory.limit" 67108864 "$(cat $cg/memory.max)"
  check "pids.max = pids.limit" 32 "$(cat $cg/pids.max)"
  check "inside: its own cgroup namespace" "0::/" "$(rt exec "$id" cat /proc/self/cgroup)"
  check "inside: /sys/fs/cgroup is its own cgroup" 67108864 "$(rt exec "$id" cat /sys/fs/cgroup/memory.max)"
  check "inside: /sys/fs/cgroup is read-only" no "$(rt exec "$id" sh -c 'mkdir /sys/fs/cgroup/x 2>/dev/null && echo yes || echo no')"
  devices_enforced ""

  rt update --memory 134217728 --pids-limit 50 --cpu-quota 50000 --cpu-period 100000 \
    --cpuset-cpus 0 "$id" 2>"$t/update.log" || record "FAIL  vzrun update (flags): $(cat "$t/update.log")"
  check "update: memory.max live" 134217728 "$(cat $cg/memory.max)"
  check "update: pids.max live" 50 "$(cat $cg/pids.max)"
  check "update: cpu.max live" "50000 100000" "$(cat $cg/cpu.max)"
  check "update: cpuset.cpus live" 0 "$(cat $cg/cpuset.cpus)"
  check "update: seen inside" 134217728 "$(rt exec "$id" cat /sys/fs/cgroup/memory.max)"
  devices_enforced "after update: "
  echo '{"memory": {"limit": 100663296}, "pids": {"limit": 77}}' >"$t/res.json"
  rt update -r "$t/res.json" "$id" 2>"$t/update.log" || record "FAIL  vzrun update -r: $(cat "$t/update.log")"
  check "update -r: memory.max" 100663296 "$(cat $cg/memory.max)"
  check "update -r: pids.max" 77 "$(cat $cg/pids.max)"
  check "update -r: cpu.max kept" "50000 100000" "$(cat $cg/cpu.max)"
  out=$(rt update --memory nonsense "$id" 2>&1); rc=$?
  check "update with a bad value fails" yes "$([ $rc != 0 ] && echo yes)"
  check "a bad update names the value" yes "$(echo "$out" | grep -q nonsense && echo yes)"
  check "a bad update changes nothing" 100663296 "$(cat $cg/memory.max)"
  # OCI's memory.swap is RAM + swap: equal to the limit means no swap (runc writes 0).
  rt update --memory 67108864 --memory-swap 67108864 "$id" 2>"$t/update.log" ||
    record "FAIL  vzrun update --memory-swap: $(cat "$t/update.log")"
  check "update: swap = memory turns swap off (memory.swap.max 0)" 0 "$(cat $cg/memory.swap.max)"
  rt update --memory-swap -1 "$id"
  check "update: memory-swap -1 makes swap unlimited again" max "$(cat $cg/memory.swap.max)"

  rt pause "$id"
  check "pause: cgroup.freeze" 1 "$(cat $cg/cgroup.freeze)"
  check_that "pause: cgroup.events says frozen" eventually file_has $cg/cgroup.events "frozen 1"
  check "pause: state paused" paused "$(state_status "$id")"
  rt resume "$id"
  check "resume: cgroup.freeze" 0 "$(cat $cg/cgroup.freeze)"
  check_that "resume: cgroup.events says thawed" eventually file_has $cg/cgroup.events "frozen 0"
  check "resume: state running" running "$(state_status "$id")"

  out=$(rt events --stats "$id")
  check_that "stats: memory usage from memory.current" \
    test "$(echo "$out" | json_field data.memory.usage.usage)" -gt 0
  check "stats: pids.current" 1 "$(echo "$out" | json_field data.pids.current)"
  check "ps lists init" "[$pid]" "$(rt ps --format json "$id" | tr -d ' \n')"

  rt kill "$id" KILL
  check_that "killed: stopped" eventually status_is "$id" stopped
  rt delete "$id"
  check_that "delete removes the cgroup" no_dir $cg
  check_that "delete removes the empty /vzrun parent" no_dir /sys/fs/cgroup/vzrun

  # A paused container deleted with --force: thawed, killed, its cgroup removed.
  if rt create --bundle "$t/b" v2-paused >/dev/null 2>&1 && rt start v2-paused && rt pause v2-paused; then
    pid=$(state_pid v2-paused)
    rt delete --force v2-paused
    check_that "delete --force of a paused container removes its cgroup" no_dir /sys/fs/cgroup/vzrun/v2-paused
    check_that "delete --force of a paused container kills it" eventually no_dir "/proc/$pid/cgroup"
  else
    record "FAIL  create, start and pause a second container"
  fi

  # net_cls/net_prio have no v2 equivalent: refused, naming the problem, nothing left.
  EDIT='c["linux"]["resources"]["network"] = {"classID": 1048577}' bundle "$t/net" sleep 10 ||
    { record "FAIL  make a bundle"; return; }
  out=$(rt create --bundle "$t/net" v2-net 2>&1 </dev/null); rc=$?
  check "network resources refused on v2" yes "$([ $rc != 0 ] && echo yes)"
  check "the refusal names net_cls" yes "$(echo "$out" | grep -q net_cls && echo yes)"
  check_that "a refused create leaves no cgroup" no_dir /sys/fs/cgroup/vzrun/v2-net
  check_that "a refused create leaves no state" no_dir "$st/v2-net"

  # The systemd driver is refused on v2: its manager would apply no device rules.
  out=$(rt --systemd-cgroup create --bundle "$t/b" v2-systemd 2>&1); rc=$?
  check "--systemd-cgroup refused on v2" yes "$([ $rc != 0 ] && echo yes)"
  check "the refusal names the device cgroup and the fix" yes \
    "$(echo "$out" | grep -q 'device cgroup.*cgroupfs driver' && echo yes)"
  check_that "a refused --systemd-cgroup create leaves no state" no_dir "$st/v2-systemd"

  # Containers made and deleted at once under the shared default parent /vzrun: creates
  # race to make the parent (libcgroups checks, then mkdirs: EEXIST), and a delete removes
  # it when it empties, under a create about to make its own cgroup there (ENOENT).
  EDIT= bundle "$t/race" true || { record "FAIL  make a bundle"; return; }
  local loop
  : >"$t/race.log"
  for loop in 1 2 3 4; do
    ( for i in 1 2 3 4 5 6; do
        rt run --bundle "$t/race" "race-$loop-$i" >>"$t/race.log" 2>&1 ||
          echo "race-$loop-$i failed" >>"$t/race.log"
      done ) &
  done
  wait
  check "concurrent runs under one parent all succeed" "" "$(grep -v '^$' "$t/race.log" | head -n 3)"
  check_that "the shared parent is gone after the last" no_dir /sys/fs/cgroup/vzrun
}

# The same spec on runc and vzrun must give the same cgroup v2 files (runc is the
# reference for the v1 -> v2 conversions: reservation -> memory.low, swap -> swap.max...).
# Except cpu.weight: libcgroups maps cpu.shares as runc 1.3.2 and crun 1.23 do (1024, the
# v1 default, gives 100, the v2 default), Debian's runc 1.1.5 linearly (1024 gives 39).
same_files_as_runc() {
  local t=$1 rtname f differ=0
  local files=(memory.max memory.low memory.high memory.swap.max cpu.max cpuset.cpus
    cpuset.mems pids.max hugetlb.2MB.max)
  for rtname in runc vzrun; do
    local bin=$VZRUN; [ $rtname = runc ] && bin=$(command -v runc)
    EDIT="c['linux']['cgroupsPath'] = '/v2-same/$rtname'
c['linux']['resources'].update({
    'memory': {'limit': 128 << 20, 'reservation': 32 << 20, 'swap': 192 << 20},
    'cpu': {'shares': 2048, 'quota': 30000, 'period': 100000, 'cpus': '0', 'mems': '0'},
    'pids': {'limit': 99},
    'hugepageLimits': [{'pageSize': '2MB', 'limit': 4 << 20}],
    'unified': {'memory.high': str(96 << 20)}})" bundle "$t/$rtname" sleep 1000000 ||
      { record "FAIL  make a bundle"; return; }
    if ! guarded 120 "$bin" --root "$t/state-$rtname" run -d --bundle "$t/$rtname" "same-$rtname" \
        </dev/null >"$t/$rtname.log" 2>&1; then
      record "FAIL  $rtname runs the resource spec: $(tail -n 3 "$t/$rtname.log")"; differ=1
    fi
  done
  for f in "${files[@]}"; do
    local a b
    a=$(cat "/sys/fs/cgroup/v2-same/runc/$f" 2>&1); b=$(cat "/sys/fs/cgroup/v2-same/vzrun/$f" 2>&1)
    [ "$a" = "$b" ] || { differ=1; echo "  $f: runc '$a', vzrun '$b'"; }
  done
  check "the same spec gives the same cgroup files as runc (${files[*]})" 0 "$differ"
  check "unified: memory.high" $((96 << 20)) "$(cat /sys/fs/cgroup/v2-same/vzrun/memory.high)"
  check "cpu.shares 2048 -> cpu.weight as runc 1.3.2 and later" 174 "$(cat /sys/fs/cgroup/v2-same/vzrun/cpu.weight)"
  for rtname in runc vzrun; do
    local bin=$VZRUN; [ $rtname = runc ] && bin=$(command -v runc)
    guarded 120 "$bin" --root "$t/state-$rtname" delete --force "same-$rtname" >/dev/null 2>&1
  done
  rmdir /sys/fs/cgroup/v2-same 2>/dev/null
  check_that "both containers deleted with their cgroups" no_dir /sys/fs/cgroup/v2-same
}

# A vzctl system container (busybox init as PID 1) on cgroup v2.
system_container_checks() {
  local t=$1 etc=$1/etc pid cg=/sys/fs/cgroup/vz/101 out
  vz() { VZCTL_ETC=$etc guarded 120 "$repo/target/release/vzctl" "$@" </dev/null; }
  mkdir -p "$etc/conf" "$t/template/cache/busybox-v2-x86_64"
  printf '%s\n' "VE_ROOT=$t/root/\$VEID" "VE_PRIVATE=$t/private/\$VEID" "TEMPLATE=$t/template" \
    "LOCKDIR=$t/lock" "VZRUN_ROOT=$t/run" STOP_TIMEOUT=20 >"$etc/vz.conf"
  cp "$OUT/busybox-v2.oci.tar" "$t/template/cache/busybox-v2-x86_64/1.0.oci.tar"
  if ! vz create 101 --ostemplate busybox-v2-x86_64 >"$t/vz.log" 2>&1 ||
     ! vz set 101 --numproc 100 --ram 128M --save >>"$t/vz.log" 2>&1 ||
     ! vz start 101 >>"$t/vz.log" 2>&1; then
    record "FAIL  vzctl create/set/start: $(tail -n 3 "$t/vz.log")"; vz destroy 101 >/dev/null 2>&1; return
  fi
  pid=$("$VZRUN" --root "$t/run" state 101 | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
  check "system container: init in /vz/101 (host view)" "0::/vz/101" "$(cat "/proc/$pid/cgroup")"
  check "system container: its own cgroup namespace" yes \
    "$([ "$(readlink "/proc/$pid/ns/cgroup")" != "$(readlink /proc/self/ns/cgroup)" ] && echo yes)"
  check "system container: inside, init is at its namespace root" "0::/" "$(vz exec2 101 cat /proc/1/cgroup)"
  check "system container: pids.max from NUMPROC" 100 "$(cat $cg/pids.max)"
  check "system container: memory.max from --ram" 134217728 "$(cat $cg/memory.max)"
  check "system container: inside, /sys/fs/cgroup is its subtree" 100 "$(vz exec2 101 cat /sys/fs/cgroup/pids.max)"
  out=$(vz exec2 101 'mkdir /sys/fs/cgroup/svc && echo $$ > /sys/fs/cgroup/svc/cgroup.procs && cat /proc/self/cgroup' 2>&1)
  check "system container: inside, a sub-cgroup can be made and joined" "0::/svc" "$out"
  check_that "system container: the sub-cgroup is under /vz/101 on the host" test -d $cg/svc
  vz exec2 101 'rmdir /sys/fs/cgroup/svc' >/dev/null 2>&1
  out=$(vz exec2 101 'echo max > /sys/fs/cgroup/pids.max' 2>&1)
  check "system container: its own limits cannot be raised from inside (nsdelegate)" 100 "$(cat $cg/pids.max)"
  vz set 101 --numproc 200 >>"$t/vz.log" 2>&1 || record "FAIL  vzctl set live: $(tail -n 3 "$t/vz.log")"
  check "system container: vzctl set changes pids.max live" 200 "$(cat $cg/pids.max)"
  check "system container: the new limit is seen inside" 200 "$(vz exec2 101 cat /sys/fs/cgroup/pids.max)"
  vz stop 101 >>"$t/vz.log" 2>&1 || record "FAIL  vzctl stop: $(tail -n 3 "$t/vz.log")"
  check_that "system container: stop removes its cgroup" no_dir $cg
  check_that "system container: stop removes the empty /vz parent" no_dir /sys/fs/cgroup/vz
  vz destroy 101 >>"$t/vz.log" 2>&1 || record "FAIL  vzctl destroy: $(tail -n 3 "$t/vz.log")"
}

oci_tests_runc_vs_vzrun() {
  local rc
  guarded 600 "$OCI_TESTS" run --runtime "$(command -v runc)" -j 2 --results "$OUT/oci-runc.jsonl" "${OCI_FILTERS[@]}"
  rc=$?
  check "oci-tests ${OCI_FILTERS[*]} pass on runc (the reference)" 0 "$rc"
  guarded 600 "$OCI_TESTS" run --runtime "$VZRUN" -j 2 --results "$OUT/oci-vzrun.jsonl" "${OCI_FILTERS[@]}"
  "$OCI_TESTS" compare "$OUT/oci-runc.jsonl" "$OUT/oci-vzrun.jsonl" | tee "$OUT/oci-compare.txt"
  rc=${PIPESTATUS[0]}
  check "oci-tests ${OCI_FILTERS[*]}: every test passing on runc passes on vzrun" 0 "$rc"
  check_that "oci-tests ran tests on vzrun" test "$(grep -c '"status"' "$OUT/oci-vzrun.jsonl")" -gt 0
}

nothing_left() {
  local before=$1 left
  left=$(find /sys/fs/cgroup -mindepth 1 -type d)
  check "no cgroup left in the guest" "" "$left"
  check "no mount left in the guest" "$before" "$(awk '{print $5}' /proc/self/mountinfo | sort)"
}

guest_main() {
  start=$(date +%s)
  : >"$OUT/results"
  local mounts_before t
  mounts_before=$(awk '{print $5}' /proc/self/mountinfo | sort)
  t=$(mktemp -d /tmp/test-v2.XXXXXX)
  BASE_BUNDLE=$t/bundle
  tar -C "$t" -xf "$OUT/bundle.tar" || { record "FAIL  unpack the bundle"; return 1; }

  step "the guest is a pure cgroup v2 host"
  guest_is_pure_v2

  step "unit tests (${UNIT_FILTERS[*]})"
  guarded 300 "$V2_UNIT" --test-threads=2 -q "${UNIT_FILTERS[@]}"
  check "cgroup-related unit tests" 0 $?

  step "vzrun on cgroup v2"
  mkdir "$t/vzrun"; vzrun_checks "$t/vzrun"
  mkdir "$t/same"; same_files_as_runc "$t/same"

  step "a vzctl system container on cgroup v2"
  mkdir "$t/vz"; system_container_checks "$t/vz"

  step "vzctl tests (runtime/tests/vzctl.rs: ${VZCTL_TESTS[*]})"
  guarded 600 "$V2_VZCTL" --exact --test-threads=2 -q "${VZCTL_TESTS[@]}"
  check "vzctl busybox tests" 0 $?

  step "resource tests (runtime/tests/resources.rs: ${RESOURCE_TESTS[*]})"
  guarded 600 "$V2_RESOURCES" --ignored --exact --test-threads=2 -q "${RESOURCE_TESTS[@]}"
  check "vzctl resource tests" 0 $?

  step "oci-tests ${OCI_FILTERS[*]} against runc and vzrun"
  oci_tests_runc_vs_vzrun

  step "nothing left behind"
  rm -rf "$t"
  nothing_left "$mounts_before"
  step "guest done"
}

########################################################################################
# On the host
########################################################################################

# The test executable cargo built for TARGET_NAME of KIND (lib, test).
test_executable() { # JSON_MESSAGES KIND TARGET_NAME
  python3 -c 'import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] \
            and sys.argv[2] in t.get("kind", []) and t.get("name") == sys.argv[3]:
        print(m["executable"])' "$@"
}

host_main() {
  [ "$(id -u)" = 0 ] || { echo "test-v2.sh must run as root" >&2; exit 2; }
  for tool in cargo python3 qemu-system-x86_64 mmdebstrap cpio; do
    command -v "$tool" >/dev/null || { echo "missing $tool: install the packages in scripts/deps/v2.list" >&2; exit 2; }
  done
  start=$(date +%s)
  rm -rf "$OUT"; mkdir -p "$OUT"

  step "build (host)"
  # The build scripts/test.sh made (binaries included: the packages have integration
  # tests); `cargo build` would resolve other features and compile everything again.
  cargo test --release -q --workspace --no-run --message-format=json >"$OUT/cargo.json" 2>"$OUT/cargo.err" ||
    { cat "$OUT/cargo.err" >&2; echo "could not build the tests" >&2; exit 1; }
  # Static, as scripts/test-oci.sh builds it (the helper runs in roots without a libc).
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build -q -p oci-tests --target "$TARGET" --bins || { echo "could not build oci-tests" >&2; exit 1; }
  local unit vzctl resources
  unit=$(test_executable "$OUT/cargo.json" lib vzrun)
  vzctl=$(test_executable "$OUT/cargo.json" test vzctl)
  resources=$(test_executable "$OUT/cargo.json" test resources)
  for exe in "$unit" "$vzctl" "$resources" "$OCI_TESTS" "$VZRUN" "$repo/target/release/vzctl" \
    "$repo/target/release/vzbuild"; do
    [ -x "$exe" ] || { echo "missing test executable '$exe'" >&2; exit 1; }
  done

  # Roots made here, where a fork costs nothing next to the guest's emulation: a busybox
  # bundle, and an OS template (busybox init as PID 1) for the system container.
  bash scripts/make-busybox-bundle.sh "$OUT/bundle" sleep 1000000 >/dev/null || exit 1
  tar -C "$OUT" -cf "$OUT/bundle.tar" bundle || exit 1
  local tpl=$OUT/template-root a
  cp -a "$OUT/bundle/rootfs" "$tpl"
  mkdir -p "$tpl/sbin" "$tpl/var/log" "$tpl/run"
  for a in init reboot poweroff halt; do ln -s ../bin/busybox "$tpl/sbin/$a"; done
  printf '::sysinit:/bin/sh -c "echo booted >> /var/log/boots"\n::respawn:/bin/sleep 1000000\n' >"$tpl/etc/inittab"
  printf 'ID=busybox\nVERSION_ID=1\n' >"$tpl/etc/os-release"
  "$repo/target/release/vzbuild" pack -q --name busybox-v2-x86_64 --version 1.0 \
    -o "$OUT/busybox-v2.oci.tar" "$tpl" >/dev/null || { echo "vzbuild pack failed" >&2; exit 1; }
  rm -rf "$tpl" "$OUT/bundle"

  step "boot the pure cgroup v2 guest and run the tests there"
  TEST_VM_TIMEOUT=${V2_TESTS_VM_TIMEOUT:-900} bash scripts/lib/test-vm.sh run -C "$repo" -- \
    env V2_UNIT="$unit" V2_VZCTL="$vzctl" V2_RESOURCES="$resources" \
    bash scripts/test-v2.sh --guest
  local rc=$? pass fail
  pass=$(grep -c '^ok ' "$OUT/results" 2>/dev/null); fail=$(grep -c '^FAIL ' "$OUT/results" 2>/dev/null)
  step "summary"
  echo "time: $(( $(date +%s) - start )) s; results in $OUT/"
  if [ "$rc" != 0 ] && [ "${fail:-0}" = 0 ]; then
    echo "the guest run failed (status $rc) without a failed check" >&2
    fail=1
  fi
  [ "${fail:-0}" = 0 ] || grep '^FAIL ' "$OUT/results"
  echo "v2: ${pass:-0} passed, ${fail:-0} failed"
  [ "${fail:-0}" = 0 ] && [ "$rc" = 0 ]
}

if [ "${1:-}" = --guest ]; then
  [ -n "${V2_UNIT:-}" ] || { echo "test-v2.sh --guest runs inside scripts/lib/test-vm.sh; run bash scripts/test-v2.sh" >&2; exit 2; }
  guest_main
  ! grep -q '^FAIL ' "$OUT/results"
else
  host_main
fi
