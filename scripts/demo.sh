#!/usr/bin/env bash
# demo.sh - the main job on a fresh Debian 12 machine, as root: installs what is missing,
# builds vzrun, makes a busybox bundle and runs a container with it (create, start, exec,
# state, kill, delete, then a foreground run). Everything it makes lives in a temporary
# directory and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
bash scripts/install-deps.sh
echo "== building vzrun"
cargo build --release -p vzrun --quiet
VZRUN=$PWD/target/release/vzrun

work=$(mktemp -d /tmp/vzrun-demo.XXXXXX)
root=$work/state
cleanup() {
  "$VZRUN" --root "$root" delete --force demo >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash scripts/make-busybox-bundle.sh "$work/bundle" sleep 600 >/dev/null
v() { echo "+ vzrun $*" >&2; "$VZRUN" --root "$root" "$@"; }

echo "== a container's life"
v create --bundle "$work/bundle" demo
v state demo
v start demo
v exec demo sh -c 'echo "hello from $(hostname), pid $$ in the container"; cat /proc/1/cmdline | tr "\0" " "; echo'
v list
v kill demo TERM
sleep 0.2
v delete --force demo
echo "== foreground run (exit status passes through)"
bash scripts/make-busybox-bundle.sh "$work/once" sh -c 'echo "ran $0 as uid $(id -u)"; exit 3' >/dev/null
set +e
v run --bundle "$work/once" once
echo "exit status: $?"
