# shellcheck shell=bash
# engines.sh - private podman and containerd instances for tests. Source it from bash:
#
#   . scripts/lib/engines.sh
#   D=$(mktemp -d /tmp/mytest.XXXXXX)
#   trap 'podman_teardown "$D/podman"; containerd_stop "$D/ctrd"; rm -rf "$D"' EXIT
#   trap 'exit 130' INT TERM          # so that EXIT (the teardown) also runs on Ctrl-C / kill
#   podman_setup "$D/podman" /path/to/vzrun
#   podman_cmd run --rm localhost/busybox:engines true
#   containerd_start "$D/ctrd"
#   ctr_cmd run --rm --runc-binary /path/to/vzrun docker.io/library/x:y id1 true
#
# Both teardown functions are safe to call when setup failed half-way or never ran, and more
# than once, so one EXIT trap set BEFORE the setup covers every path; they work under set -e.
#
# Isolation. Every instance lives in DIR and in a private mount namespace of its own (propagation
# "slave": mounts made on the host later are still seen inside; nothing made inside leaks out).
# In that namespace /run and /var/lib are overlays whose upper dirs are in DIR, because some
# paths are hard-coded in the engines: containerd 1.6 puts shim sockets in /run/containerd/s and
# the runc state in /run/containerd/runc, podman's image copy writes the blob-info cache to
# /var/lib/containers/cache. So the machine's /run, /var/lib/containers and /run/containerd are
# never written. The storage mounts (overlay layers, shm) exist only in that namespace and vanish
# with it. Every engine process (podman, conmon, containerd, shims) runs in the namespace: use
# podman_cmd / ctr_cmd, or the wrapper executables "$DIR/bin/podman" and "$DIR/bin/ctr" (handy
# under `script -c` for a terminal, or from another language).
#
# podman: private containers.conf/storage.conf/registries.conf, overlay storage, cgroupfs
# manager, file events and file locks, netns "none", nofile/nproc ulimits this machine allows,
# pull_policy "never"
# (no registry is reachable: images come from `podman import`/`load`). The runtime is registered
# under NAME (default: basename of RUNTIME_PATH) through a wrapper "$DIR/bin/runtime" that adds
# `--root $DIR/runtime-state`, since podman's cleanup process (`podman container cleanup`, run by
# conmon) drops --runtime-flag and would otherwise look for the state in the runtime's default
# root (/run/runc, /run/vzrun...). NAME is listed in runtime_supports_json, so podman shows the
# runtime's own error messages.
#
# containerd: private config, root, state, sockets; CRI and the "opt" plugin (/opt/containerd)
# are disabled; containers go to a namespace of their own (ctr -n), so their cgroups are
# /sys/fs/cgroup/<controller>/<namespace>/<id>. Pass the runtime per container with
# `ctr_cmd run --runc-binary PATH ...`.
#
# Teardown kills every process of the instance (those in its mount namespace, and those in
# the cgroups of its containers, which catches container processes a broken runtime left
# behind), removes the containers' cgroups (warning on stderr about any the runtime left
# behind), unmounts anything under DIR, and removes DIR.
#
# Options (environment, read at setup):
#   ENGINES_HIDE_UNIFIED=1   unmount /sys/fs/cgroup/unified inside the namespace, so the hybrid
#                            host looks pure v1 to the runtime (crun refuses hybrid hosts).
#   ENGINES_QUIET=1          no progress lines on stderr.
#
# Functions:
#   podman_setup DIR RUNTIME_PATH [NAME]   sets PODMAN_DIR=DIR (the instance podman_cmd uses)
#   podman_cmd ARGS...                     podman of instance $PODMAN_DIR
#   podman_container_cgroup ID_OR_NAME CONTROLLER
#                                          host path of the container's cgroup dir in CONTROLLER
#   podman_teardown [DIR]                  default DIR: $PODMAN_DIR
#   containerd_start DIR                   sets CONTAINERD_DIR=DIR, CTR_NAMESPACE
#   ctr_cmd ARGS...                        ctr -n $CTR_NAMESPACE of instance $CONTAINERD_DIR
#   containerd_stop [DIR]                  default DIR: $CONTAINERD_DIR
#   engines_cgroup_mounts                  the host's cgroup mounts, one per line (compare
#                                          before/after a test)
# Needs: root, util-linux (unshare, nsenter, setsid), podman/conmon and/or containerd/ctr.

_eng_log() { [ "${ENGINES_QUIET:-0}" = 1 ] || echo "engines: $*" >&2; }
_eng_err() { echo "engines: error: $*" >&2; }
_eng_warn() { echo "engines: warning: $*" >&2; }

# Refuse paths where a recursive delete or the /run and /var/lib overlays would do harm.
_eng_check_dir() {
  local dir=$1 abs
  [ -n "$dir" ] || { _eng_err "no directory given"; return 2; }
  abs=$(readlink -m -- "$dir")
  case "$abs" in
    / | /bin* | /boot* | /dev* | /etc* | /home | /lib* | /opt | /proc* | /root | /sbin* | /sys* | \
      /tmp | /usr | /usr/* | /var | /var/tmp | /var/cache | /vz | /vz/*)
      _eng_err "refusing to use '$dir' as an engine directory"; return 2 ;;
    /run* | /var/lib*)
      _eng_err "'$dir' is under /run or /var/lib, which the engine namespace overlays: pick another place (e.g. mktemp -d)"
      return 2 ;;
  esac
  printf '%s\n' "$abs"
}

# Quote one word for a generated sh script.
_eng_q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# _eng_ns_create DIR: start the holder process of a private mount namespace (see the header).
_eng_ns_create() {
  local dir=$1 i hide=""
  mkdir -p "$dir/ns/run.upper" "$dir/ns/run.work" "$dir/ns/varlib.upper" "$dir/ns/varlib.work"
  [ "${ENGINES_HIDE_UNIFIED:-0}" = 1 ] && hide='umount -n /sys/fs/cgroup/unified || exit 1;'
  # The holder runs in its own session, detached from the caller's stdio: a pipe left open
  # by a background process would hang `$(...)` and CI log readers.
  setsid unshare --mount --propagation slave -- /bin/sh -c "
    set -e
    d=$(_eng_q "$dir")
    mount -n -t overlay overlay -o \"lowerdir=/run,upperdir=\$d/ns/run.upper,workdir=\$d/ns/run.work\" /run
    mount -n -t overlay overlay -o \"lowerdir=/var/lib,upperdir=\$d/ns/varlib.upper,workdir=\$d/ns/varlib.work\" /var/lib
    $hide
    echo \$\$ > \"\$d/ns/pid\"
    exec sleep infinity" </dev/null >/dev/null 2>"$dir/ns/holder.log" &
  disown $!   # no "Killed" job report from bash at teardown
  for ((i = 0; i < 100; i++)); do
    [ -s "$dir/ns/pid" ] && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.05
  done
  _eng_err "could not create the private mount namespace: $(cat "$dir/ns/holder.log" 2>/dev/null)"
  return 1
}

# _eng_ns_pid DIR: pid of the live holder, or failure.
_eng_ns_pid() {
  local pid
  read -r pid 2>/dev/null <"$1/ns/pid" || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$(cat "$1/ns/mnt-id" 2>/dev/null)" ] || return 1
  echo "$pid"
}

# _eng_write_wrapper DIR NAME ENV_AND_COMMAND...: an executable DIR/bin/NAME that runs the
# command inside the instance's namespace, in the caller's working directory.
# shellcheck disable=SC2016 # the $ in the generated script expand when it runs
_eng_write_wrapper() {
  local dir=$1 name=$2 w
  shift 2
  mkdir -p "$dir/bin"
  {
    echo '#!/bin/sh'
    echo "# generated by scripts/lib/engines.sh: runs $name inside the private engine namespace"
    echo "d=$(_eng_q "$dir")"
    echo 'read -r pid < "$d/ns/pid" 2>/dev/null || { echo "engine instance $d is not running" >&2; exit 125; }'
    echo '[ "$(readlink /proc/$pid/ns/mnt 2>/dev/null)" = "$(cat "$d/ns/mnt-id")" ] ||'
    echo '  { echo "engine instance $d: namespace holder $pid is gone" >&2; exit 125; }'
    printf 'exec nsenter --mount="/proc/$pid/ns/mnt" --wd="$PWD" --'
    for w in "$@"; do printf ' %s' "$(_eng_q "$w")"; done
    echo ' "$@"'
  } >"$dir/bin/$name"
  chmod 755 "$dir/bin/$name"
}

# _eng_alive PID: the process exists and is not a zombie (a zombie still accepts kill(2)).
_eng_alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# _eng_kill_ns DIR: SIGKILL every process in the namespace (the holder too); wait until gone.
_eng_kill_ns() {
  local dir=$1 mnt p i left
  mnt=$(cat "$dir/ns/mnt-id" 2>/dev/null) || return 0
  [ -n "$mnt" ] || return 0
  # Never the host's own namespace (e.g. a stale file after a failed setup).
  if [ "$mnt" = "$(readlink /proc/1/ns/mnt)" ] || [ "$mnt" = "$(readlink /proc/self/ns/mnt)" ]; then
    _eng_err "$dir/ns/mnt-id names the host mount namespace: not killing anything"
    return 1
  fi
  for ((i = 0; i < 50; i++)); do
    left=0
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] || continue
      [ "${p#/proc/}" = "$BASHPID" ] && continue
      _eng_alive "${p#/proc/}" || continue
      kill -KILL "${p#/proc/}" 2>/dev/null && left=1
    done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  _eng_err "processes of $dir survived SIGKILL"
  return 1
}

# _eng_reap_cgroups REL...: kill the processes in the host cgroups /REL (any controller, any
# depth below), then remove those cgroup directories. Prints a warning for each that existed.
_eng_reap_cgroups() {
  local rel p line i left root d
  [ $# -gt 0 ] || return 0
  for ((i = 0; i < 50; i++)); do
    left=0
    for p in /proc/[0-9]*; do
      while IFS= read -r line; do
        for rel in "$@"; do
          case "${line#*:*:}" in
            "/$rel" | "/$rel"/*) _eng_alive "${p#/proc/}" && kill -KILL "${p#/proc/}" 2>/dev/null && left=1 ;;
          esac
        done
      done 2>/dev/null <"$p/cgroup"
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for root in /sys/fs/cgroup/*/; do
    for rel in "$@"; do
      d=$root$rel
      [ -d "$d" ] || continue
      # Children first (systemd in a container makes its own sub-cgroups).
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$d" ] && _eng_err "could not remove cgroup $d"
    done
  done
  return 0
}

# _eng_umount_under DIR: unmount whatever the host namespace has mounted at or below DIR.
_eng_umount_under() {
  local dir=$1 m
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while IFS= read -r m; do
      m=$(printf '%b' "$m")   # mountinfo escapes spaces as \040
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || _eng_err "could not unmount $m"
    done
}

engines_cgroup_mounts() {
  awk '$0 ~ / - cgroup2? / { sep = 0; for (i = 1; i <= NF; i++) if ($i == "-") sep = i
        print $5, $(sep + 1), $6, $(sep + 3) }' /proc/self/mountinfo | sort
}

# ---------------------------------------------------------------- podman

podman_setup() {
  local dir runtime=${2:-} name=${3:-} abs_rt conmon
  dir=$(_eng_check_dir "${1:-}") || return 2
  [ -n "$runtime" ] || { _eng_err "usage: podman_setup DIR RUNTIME_PATH [NAME]"; return 2; }
  abs_rt=$(command -v -- "$runtime") || { _eng_err "runtime '$runtime' not found"; return 2; }
  abs_rt=$(readlink -f -- "$abs_rt")
  [ -x "$abs_rt" ] || { _eng_err "runtime '$runtime' is not executable"; return 2; }
  command -v podman >/dev/null || { _eng_err "podman is not installed"; return 2; }
  name=${name:-$(basename -- "$abs_rt")}
  case "$name" in *[!A-Za-z0-9_.-]*) _eng_err "bad runtime name '$name'"; return 2 ;; esac
  if [ -e "$dir" ] && [ -n "$(ls -A -- "$dir")" ]; then
    _eng_err "podman_setup: '$dir' exists and is not empty"; return 2
  fi
  mkdir -p "$dir"/{storage,runroot,tmp,volumes,net,runtime-state,bin}
  echo "podman $abs_rt" >"$dir/.engines-instance"
  # Which shared parent cgroups existed before: teardown removes only those we made.
  # (none on a fresh host: ls fails then, which must not end a caller under set -e)
  ls -d /sys/fs/cgroup/*/libpod_parent >"$dir/.libpod_parent-preexisting" 2>/dev/null || true

  # Runtime wrapper: keeps the runtime's state in DIR (see the header).
  cat >"$dir/bin/runtime" <<EOF
#!/bin/sh
exec $(_eng_q "$abs_rt") --root $(_eng_q "$dir/runtime-state") "\$@"
EOF
  chmod 755 "$dir/bin/runtime"
  # conmon wrapper: conmon 2.1.6 writes its "oom" marker into its working directory, which
  # would otherwise be the caller's (podman runs in the caller's cwd for relative paths).
  conmon=$(command -v conmon) || { _eng_err "conmon is not installed"; return 2; }
  mkdir -p "$dir/conmon-cwd"
  cat >"$dir/bin/conmon" <<EOF
#!/bin/sh
cd $(_eng_q "$dir/conmon-cwd") || exit 1
exec $(_eng_q "$conmon") "\$@"
EOF
  chmod 755 "$dir/bin/conmon"

  cat >"$dir/containers.conf" <<EOF
[containers]
netns = "none"
cgroups = "enabled"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
conmon_path = ["$dir/bin/conmon"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
lock_type = "file"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
image_copy_tmp_dir = "$dir/tmp"
pull_policy = "never"
runtime = "$name"
runtime_supports_json = ["$name"]

[engine.runtimes]
$name = ["$dir/bin/runtime"]

[network]
network_config_dir = "$dir/net"
EOF
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
EOF
  cat >"$dir/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
  _eng_ns_create "$dir" || return 1
  readlink "/proc/$(cat "$dir/ns/pid")/ns/mnt" >"$dir/ns/mnt-id"
  _eng_write_wrapper "$dir" podman env \
    CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" TMPDIR="$dir/tmp" \
    podman --root "$dir/storage" --runroot "$dir/runroot" --tmpdir "$dir/tmp"
  PODMAN_DIR=$dir
  _eng_log "podman instance in $dir, runtime $name = $abs_rt"
}

podman_cmd() {
  [ -n "${PODMAN_DIR:-}" ] && [ -x "$PODMAN_DIR/bin/podman" ] ||
    { _eng_err "podman_cmd: no podman instance (call podman_setup first)"; return 125; }
  "$PODMAN_DIR/bin/podman" "$@"
}

# podman_container_cgroup ID_OR_NAME CONTROLLER: the container's cgroup directory on the host,
# read from /proc/PID/cgroup of its init process (v1 CONTROLLER, e.g. memory, pids; "unified"
# for the cgroup2 tree).
podman_container_cgroup() {
  local pid ctl=$2 line path
  pid=$(podman_cmd inspect --format '{{.State.Pid}}' "$1") || return 1
  [ -n "$pid" ] && [ "$pid" != 0 ] || { _eng_err "container $1 is not running"; return 1; }
  while IFS= read -r line; do
    case "$line" in
      0::*) [ "$ctl" = unified ] && path=${line#0::} ;;
      *:*"$ctl"*:*) case ",${line#*:}" in ,"$ctl":* | ,"$ctl",* | *,"$ctl":* | *,"$ctl",*) path=${line#*:*:} ;; esac ;;
    esac
  done <"/proc/$pid/cgroup"
  [ -n "${path:-}" ] || { _eng_err "no $ctl cgroup for pid $pid"; return 1; }
  echo "/sys/fs/cgroup/$ctl$path"
}

podman_teardown() {
  local dir=${1:-${PODMAN_DIR:-}} ids id rels=() left
  [ -n "$dir" ] || return 0
  dir=$(readlink -m -- "$dir")
  [ -f "$dir/.engines-instance" ] || { [ -d "$dir" ] && rmdir -- "$dir" 2>/dev/null; return 0; }
  # Containers by id: from the storage directory, which needs no working podman.
  ids=
  for id in "$dir"/storage/overlay-containers/*/; do
    id=${id%/} id=${id##*/}
    [[ $id =~ ^[0-9a-f]{64}$ ]] && ids+=" $id"
  done
  if _eng_ns_pid "$dir" >/dev/null; then
    timeout 60 "$dir/bin/podman" rm --all --force --time 0 >/dev/null 2>&1 ||
      _eng_err "podman rm --all failed in $dir"
    timeout 60 "$dir/bin/podman" pod rm --all --force >/dev/null 2>&1
  fi
  _eng_kill_ns "$dir"
  for id in $ids; do rels+=("libpod_parent/libpod-$id" "libpod_parent/libpod-conmon-$id"); done
  for id in "${rels[@]}"; do
    [ -d "/sys/fs/cgroup/memory/$id" ] && _eng_warn "cgroup $id was left behind (the runtime's delete should remove it)"
  done
  _eng_reap_cgroups "${rels[@]}"
  # Shared by every podman on the host: remove only those we made, and only when empty.
  # conmon exits double-forked: until the host's init reaps it, its zombie keeps
  # libpod_parent/conmon busy. Retry for a few seconds.
  local try
  for ((try = 0; try < 50; try++)); do
    left=0
    for id in /sys/fs/cgroup/*/libpod_parent; do
      [ -d "$id" ] || continue
      grep -qxF "$id" "$dir/.libpod_parent-preexisting" 2>/dev/null && continue
      rmdir "$id/conmon" 2>/dev/null || true   # (callers may run under set -e)
      rmdir "$id" 2>/dev/null || left=1
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  _eng_umount_under "$dir"
  rm -rf --one-file-system -- "$dir"
  [ "${PODMAN_DIR:-}" = "$dir" ] && PODMAN_DIR=''
  return 0
}

# ---------------------------------------------------------------- containerd

containerd_start() {
  local dir i
  dir=$(_eng_check_dir "${1:-}") || return 2
  command -v containerd >/dev/null && command -v ctr >/dev/null ||
    { _eng_err "containerd/ctr are not installed"; return 2; }
  if [ -e "$dir" ] && [ -n "$(ls -A -- "$dir")" ]; then
    _eng_err "containerd_start: '$dir' exists and is not empty"; return 2
  fi
  mkdir -p "$dir"/{root,state,bin}
  # A namespace of our own: the containers' cgroups are /<namespace>/<id>.
  CTR_NAMESPACE=vzt-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  echo "containerd $CTR_NAMESPACE" >"$dir/.engines-instance"
  echo "$CTR_NAMESPACE" >"$dir/namespace"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = "$dir/debug.sock"

[metrics]
  address = ""
EOF
  _eng_ns_create "$dir" || return 1
  readlink "/proc/$(cat "$dir/ns/pid")/ns/mnt" >"$dir/ns/mnt-id"
  _eng_write_wrapper "$dir" containerd containerd --config "$dir/config.toml"
  _eng_write_wrapper "$dir" ctr ctr --address "$dir/containerd.sock" --namespace "$CTR_NAMESPACE"
  setsid "$dir/bin/containerd" </dev/null >"$dir/containerd.log" 2>&1 &
  disown $!
  for ((i = 0; i < 200; i++)); do
    [ -S "$dir/containerd.sock" ] && "$dir/bin/ctr" version >/dev/null 2>&1 && break
    sleep 0.05
  done
  if ! "$dir/bin/ctr" version >/dev/null 2>&1; then
    _eng_err "containerd did not come up; its log:"
    tail -n 20 "$dir/containerd.log" >&2
    return 1
  fi
  CONTAINERD_DIR=$dir
  _eng_log "containerd instance in $dir, namespace $CTR_NAMESPACE"
}

ctr_cmd() {
  [ -n "${CONTAINERD_DIR:-}" ] && [ -x "$CONTAINERD_DIR/bin/ctr" ] ||
    { _eng_err "ctr_cmd: no containerd instance (call containerd_start first)"; return 125; }
  "$CONTAINERD_DIR/bin/ctr" "$@"
}

containerd_stop() {
  local dir=${1:-${CONTAINERD_DIR:-}} ns id
  [ -n "$dir" ] || return 0
  dir=$(readlink -m -- "$dir")
  [ -f "$dir/.engines-instance" ] || { [ -d "$dir" ] && rmdir -- "$dir" 2>/dev/null; return 0; }
  ns=$(cat "$dir/namespace" 2>/dev/null)
  if [ -n "$ns" ] && _eng_ns_pid "$dir" >/dev/null && [ -S "$dir/containerd.sock" ]; then
    # Orderly first: tasks, then containers, so the runtime's delete runs and cleans up.
    for id in $(timeout 20 "$dir/bin/ctr" task ls -q 2>/dev/null); do
      timeout 20 "$dir/bin/ctr" task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      timeout 20 "$dir/bin/ctr" task delete --force "$id" >/dev/null 2>&1 || true
    done
    for id in $(timeout 20 "$dir/bin/ctr" container ls -q 2>/dev/null); do
      timeout 20 "$dir/bin/ctr" container delete "$id" >/dev/null 2>&1 || true
    done
  fi
  _eng_kill_ns "$dir"
  if [ -n "$ns" ]; then
    for id in /sys/fs/cgroup/*/"$ns"/*/; do
      [ -d "$id" ] && _eng_warn "cgroup ${id%/} was left behind (the runtime's delete should remove it)"
    done
    _eng_reap_cgroups "$ns"
  fi
  _eng_umount_under "$dir"
  rm -rf --one-file-system -- "$dir"
  [ "${CONTAINERD_DIR:-}" = "$dir" ] && CONTAINERD_DIR='' CTR_NAMESPACE=''

  return 0
}
