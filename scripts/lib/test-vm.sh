#!/usr/bin/env bash
# test-vm.sh - runs a command as root in a throwaway QEMU guest that boots Debian 12's stock
# kernel as a pure cgroup v2 host, for what the CI machines' kernel cannot prove:
#   * disk quotas (scripts/test-disk.sh): the CI kernel is built without quota formats
#     (CONFIG_QFMT_V2) and without CONFIG_XFS_QUOTA, so ext4 and XFS quotas (EDQUOT,
#     project quotas, per-user quotas) need another kernel;
#   * cgroup v2 (scripts/test-v2.sh): the CI machines are cgroup v1 hybrid hosts; the guest
#     boots with cgroup_no_v1=all,named (no v1 hierarchy can be mounted) and mounts cgroup2
#     alone at /sys/fs/cgroup with systemd's options (nsdelegate, memory_recursiveprot),
#     as most hosts running containers today.
#
#   test-vm.sh run [-C DIR] -- CMD [ARG...]   boot, run CMD in DIR (default $PWD), print its
#                                             output, exit with its status (125: no status)
#   test-vm.sh build                          build the cached guest (done by run if needed)
#
# DIR is shared read-write (9p) at the same absolute path in the guest, so binaries built on
# the host run there unchanged (same Debian release, same libc). The guest root (mmdebstrap
# minbase + quota tools, e2fsprogs, xfsprogs, busybox, libseccomp, python3, Debian's runc as
# the reference runtime, the kernel's modules) is cached in $VZRUN_TEST_CACHE/test-vm
# (default /var/cache/vzrun-tests), keyed by a hash of its inputs (the build steps, the
# release, the packages), and shared read-only under a tmpfs overlay: every run starts clean.
# PID 1 is a small script (no systemd): it mounts /proc, /sys, /dev, cgroup2 with its
# controllers enabled for children, loads loop/ext4/xfs/quota modules, runs CMD, powers off.
# The guest has no network.
# Env: TEST_VM_MEM (default 3G), TEST_VM_CPUS (2), TEST_VM_TIMEOUT (seconds, 1800),
# TEST_VM_ACCEL=tcg|kvm (default: KVM when it can run a stock kernel, else TCG emulation,
# which is slower), VZRUN_TEST_MIRROR (Debian mirror for the build).
set -euo pipefail
CACHE=${VZRUN_TEST_CACHE:-/var/cache/vzrun-tests}/test-vm
SUITE=bookworm
PKGS=kmod,quota,e2fsprogs,xfsprogs,util-linux,libseccomp2,busybox-static,procps,strace,python3,runc,bsdutils
# Modules the initramfs loads to mount the root (overlay of 9p and tmpfs) and the console.
INITRD_MODS="virtio_pci 9pnet_virtio 9p overlay virtio_console"
die() { echo "test-vm: $*" >&2; exit 125; }

build() {
  for tool in mmdebstrap qemu-system-x86_64 cpio busybox apt-get dpkg depmod; do
    command -v "$tool" >/dev/null || die "missing $tool: install the packages in scripts/deps/v2.list (or disk.list)"
  done
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9
  [ -e "$GUEST/ok" ] && return 0
  local t=$CACHE/build.$$ kpkg kver m line dep
  trap 'rm -rf "$t"' EXIT; rm -rf "$t"; mkdir -p "$t/ird"/{bin,dev,proc,sys,lower,rw,newroot,mods}
  echo "test-vm: building the guest root (mmdebstrap, 1-2 min) into $GUEST" >&2
  local quiet=(); [ -t 2 ] || quiet=(--quiet)
  mmdebstrap "${quiet[@]}" --variant=minbase --mode=root --include="$PKGS" "$SUITE" "$t/root" \
    ${VZRUN_TEST_MIRROR:+"$VZRUN_TEST_MIRROR"} </dev/null >&2
  # The stock kernel: the package linux-image-amd64 points to, unpacked aside (dpkg -x into
  # the usrmerged root would replace its /lib symlink).
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$kpkg" ]; then apt-get update -qq >&2; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
  [ -n "$kpkg" ] || die "cannot find Debian's kernel package (apt-cache depends linux-image-amd64)"
  # (_apt downloads: it must be able to write there)
  chmod 0777 "$t"
  (cd "$t" && apt-get download -q "$kpkg" >&2) || die "apt-get download $kpkg failed"
  dpkg -x "$t"/"$kpkg"_*.deb "$t/k"
  kver=${kpkg#linux-image-}
  mkdir -p "$t/root/usr/lib/modules"; cp -a "$t/k/lib/modules/$kver" "$t/root/usr/lib/modules/"
  depmod -b "$t/root" "$kver"
  cp "$t/k/boot/vmlinuz-$kver" "$t/vmlinuz"
  # Initramfs: static busybox, the root's modules in dependency order, an init that mounts
  # overlay(9p read-only, tmpfs) and switches to the guest's own init below.
  cp "$(command -v busybox)" "$t/ird/bin/busybox"
  : >"$t/ird/order"
  for m in $INITRD_MODS; do
    line=$(grep -m1 "/$m\.ko[^:]*:" "$t/root/usr/lib/modules/$kver/modules.dep" || true)
    [ -n "$line" ] || continue   # built into the kernel
    for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
      [ -n "$dep" ] || continue
      grep -qxF "$dep" "$t/ird/order" || { echo "$dep" >>"$t/ird/order"; cp "$t/root/usr/lib/modules/$kver/$dep" "$t/ird/mods/"; }
    done
  done
  cat >"$t/ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /order); do
  f=/mods/${m##*/}
  case $f in *.xz) xz -dc "$f" >/tmp.ko && insmod /tmp.ko; rm -f /tmp.ko;; *) insmod "$f";; esac
done
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $o,ro,cache=loose root /lower && mount -t tmpfs -o size=75% rw /rw &&
  mkdir /rw/u /rw/w && mount -t overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w ov /newroot ||
  { echo "test-vm initramfs: cannot mount the root" >/dev/console; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /usr/local/sbin/test-vm-init
EOF
  chmod +x "$t/ird/init"
  (cd "$t/ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$t/initrd"
  cat >"$t/root/usr/local/sbin/test-vm-init" <<'EOF'
#!/bin/bash
# PID 1 of the test guest: set up the kernel file systems, run the command, power off.
mount -t proc proc /proc; mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm; mount -t devpts -o ptmxmode=0666,newinstance devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx 2>/dev/null; mount -t tmpfs tmpfs /dev/shm
# What udev or systemd would add: bash's process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run; mount -t tmpfs -o mode=1777,size=80% tmpfs /tmp
# cgroup2 alone, with systemd's options (nsdelegate: a cgroup namespace is a delegation
# boundary), every controller enabled for children as on a systemd host.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; done
exec </dev/null >/dev/hvc0 2>&1
for m in loop ext4 xfs quota_v2 quota_tree; do modprobe -q "$m" 2>/dev/null; done
hostname test-vm
o=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /mnt/ctl && mount -t 9p -o $o ctl /mnt/ctl && . /mnt/ctl/env
mkdir -p "$DIR" && mount -t 9p -o $o,cache=mmap host "$DIR"
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LC_ALL=C.UTF-8
cd "$DIR" && bash /mnt/ctl/cmd; echo $? >/mnt/ctl/rc
sync; umount "$DIR" /mnt/ctl 2>/dev/null; sync
echo o >/proc/sysrq-trigger; sleep 10; poweroff -f
EOF
  chmod +x "$t/root/usr/local/sbin/test-vm-init"
  echo test-vm >"$t/root/etc/hostname"
  rm -rf "$GUEST"; mkdir -p "$GUEST"
  mv "$t/root" "$t/vmlinuz" "$t/initrd" "$GUEST/"; echo "$kpkg" >"$GUEST/kernel"; touch "$GUEST/ok"
  # Guests of older versions of this script.
  find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$KEY" -exec rm -rf {} +
  rm -rf "$t"; trap - EXIT
  echo "test-vm: guest ready ($kpkg)" >&2
}

run() {
  local dir=$PWD
  [ "${1:-}" = -C ] && { dir=$(cd "$2" && pwd); shift 2; }
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "run: no command"
  [ -e "$GUEST/ok" ] || build
  local accel=(-accel tcg,thread=multi -cpu max)
  # A PVM-only /dev/kvm (nested hosts) cannot run a stock kernel.
  if [ "${TEST_VM_ACCEL:-}" != tcg ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
    accel=(-enable-kvm -cpu host)
  fi
  [ "${TEST_VM_ACCEL:-}" = kvm ] && accel=(-enable-kvm -cpu host)
  ctl=$(mktemp -d /tmp/test-vm.XXXXXX); qpid=
  trap '[ -n "$qpid" ] && kill "$qpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$ctl"' EXIT
  trap 'exit 130' INT TERM
  printf 'DIR=%q\n' "$dir" >"$ctl/env"
  printf '%q ' "$@" >"$ctl/cmd"
  local fs=() entry name path opts
  for entry in "root|$GUEST/root|,readonly=on" "host|$dir|" "ctl|$ctl|"; do
    IFS='|' read -r name path opts <<<"$entry"
    fs+=(-fsdev "local,id=$name,path=$path,security_model=passthrough$opts"
         -device "virtio-9p-pci,fsdev=$name,mount_tag=$name")
  done
  timeout "${TEST_VM_TIMEOUT:-1800}" qemu-system-x86_64 "${accel[@]}" -m "${TEST_VM_MEM:-3G}" \
    -smp "${TEST_VM_CPUS:-2}" -nographic -no-reboot -monitor none -serial "file:$ctl/console.log" \
    -nic none -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd" "${fs[@]}" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 cgroup_no_v1=all,named" \
    -chardev stdio,id=out,signal=off -device virtio-serial-pci -device virtconsole,chardev=out \
    </dev/null &
  qpid=$!; wait "$qpid" || true; qpid=
  if [ ! -s "$ctl/rc" ]; then
    echo "test-vm: the guest gave no exit status; console log:" >&2
    tail -n 40 "$ctl/console.log" >&2
    exit 125
  fi
  exit "$(cat "$ctl/rc")"
}

# The guest's inputs: what build() does and with which packages (not run(): booting
# differently needs no new guest).
KEY=$( (declare -f build; echo "$SUITE $PKGS $INITRD_MODS") | sha256sum | cut -c1-16)
GUEST=$CACHE/$KEY

[ "$(id -u)" = 0 ] || die "must run as root"
case "${1:-}" in
  build) build ;;
  run) shift; run "$@" ;;
  *) sed -n '2,27p' "$0" >&2; exit 2 ;;
esac
