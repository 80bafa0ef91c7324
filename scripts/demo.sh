#!/usr/bin/env bash
# demo.sh - the main job on a fresh Debian 12 machine, as root: installs what is missing,
# builds vzrun, vzctl, vzlist and vzbuild, builds a Debian 12 OS template with systemd
# (vzbuild, mmdebstrap from the Debian mirror), creates a container from it, boots it
# (systemd as PID 1), execs in it, lists it, stops and destroys it; then runs a plain OCI
# container with vzrun. Everything lives in a temporary VZ root (its own vz.conf through
# VZCTL_ETC) and is removed at the end; the host's /vz and /etc/vz are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
bash scripts/install-deps.sh
echo "== building vzrun, vzctl, vzlist, vzbuild"
cargo build --release --quiet -p vzrun -p vzbuild
bin=$PWD/target/release

work=$(mktemp -d /tmp/vz-demo.XXXXXX)
export VZCTL_ETC=$work/etc
mkdir -p "$VZCTL_ETC/conf"
cat > "$VZCTL_ETC/vz.conf" <<CONF
VE_ROOT=$work/root/\$VEID
VE_PRIVATE=$work/private/\$VEID
TEMPLATE=$work/template
LOCKDIR=$work/lock
VZRUN_ROOT=$work/run
CONF
cleanup() {
  "$bin/vzctl" stop --fast 101 >/dev/null 2>&1 || true
  "$bin/vzctl" destroy 101 >/dev/null 2>&1 || true
  "$bin/vzrun" --root "$work/oci" delete --force hello >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
run() { echo "+ $*" >&2; "$@"; }

echo "== an OS template: Debian 12 with systemd (vzbuild build; mmdebstrap takes a minute)"
. scripts/lib/templates.sh
template=$(template_from_recipe templates/debian-12-systemd.recipe "$bin/vzbuild")
mkdir -p "$work/template/cache/debian-12-x86_64-systemd"
cp "$template" "$work/template/cache/debian-12-x86_64-systemd/1.oci.tar"
run "$bin/vzbuild" list --cache-dir "$work/template/cache"

echo "== an OpenVZ container's life"
run "$bin/vzctl" create 101 --ostemplate debian-12-x86_64-systemd --hostname demo.example.com --name demo
run "$bin/vzctl" start 101 --wait
run "$bin/vzctl" exec demo 'echo "PID 1 is $(cat /proc/1/comm); systemd says $(systemctl is-system-running)"; hostname; uname -r'
run "$bin/vzctl" set 101 --nameserver 10.0.0.53 --save
run "$bin/vzctl" exec 101 'cat /etc/resolv.conf'
run "$bin/vzlist" -a
run "$bin/vzctl" status 101
run "$bin/vzctl" stop 101
run "$bin/vzctl" status 101
run "$bin/vzctl" destroy 101

echo "== a plain OCI container with vzrun (what podman and containerd call)"
bash scripts/make-busybox-bundle.sh "$work/bundle" sh -c 'echo "hello from $(hostname), uid $(id -u)"; exit 3' >/dev/null
set +e
run "$bin/vzrun" --root "$work/oci" run --bundle "$work/bundle" hello
echo "exit status: $? (the container's)"
