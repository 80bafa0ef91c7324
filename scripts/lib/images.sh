# shellcheck shell=bash
# images.sh - container images built locally (no registry is reachable). Source it from bash.
#
#   images_busybox_rootfs OUT            busybox-static root in directory OUT (all applets as
#                                        relative symlinks, /etc/passwd, group, os-release)
#   images_busybox_tar OUT.tar           the same root as an uncompressed tarball
#   images_debian_tar [INCLUDE]          prints the path of a cached Debian 12 minbase rootfs
#                                        tarball with the packages INCLUDE (comma separated,
#                                        default systemd-sysv); builds it with mmdebstrap first
#                                        when the cache has none
#   images_oci_archive ROOTFS.tar OUT.tar TAG [CMD [ARG...]]
#                                        OCI image-layout archive (umoci) of one layer, ref name
#                                        TAG: `podman load -i`, `ctr image import --base-name`
#
#   With engines.sh:
#   podman_cmd import --change 'CMD=["/bin/sh"]' "$(images_busybox_tar "$T/bb.tar")" localhost/bb:x
#   ctr_cmd image import --base-name localhost/bb "$T/bb-oci.tar"     # -> localhost/bb:TAG
#
# The Debian cache lives in $VZRUN_TEST_CACHE (default /var/cache/vzrun-tests), one file per set
# of inputs (suite, variant, packages, architecture, mirror), named by a hash of them; a build
# goes to a temporary name and is renamed when complete, under a lock, so concurrent test runs
# build it once. VZRUN_TEST_MIRROR overrides the Debian mirror (default: mmdebstrap's). A
# cached file older than VZRUN_TEST_CACHE_DAYS (default 30) is rebuilt, to pick up updates.
# Needs: busybox-static, tar, umoci; mmdebstrap and the Debian mirror for images_debian_tar.

_img_err() { echo "images: error: $*" >&2; }

images_busybox_rootfs() {
  local out=${1:?usage: images_busybox_rootfs OUT} bb=/bin/busybox p t
  [ -x "$bb" ] || { _img_err "$bb is missing (apt-get install busybox-static)"; return 2; }
  # Debian's busybox-static is static: it runs in a root that has no libc.
  if LC_ALL=C ldd "$bb" 2>&1 | grep -q '=>'; then
    _img_err "$bb is dynamically linked (apt-get install busybox-static)"; return 2
  fi
  rm -rf -- "$out" && mkdir -p -- "$out" || return 1
  (
    cd "$out" || exit 1
    mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys run var/log home mnt
    install -d -m 0700 root && install -d -m 1777 tmp var/tmp
    install -m 0755 "$bb" bin/busybox
    "$bb" --list-full | while read -r p; do
      case "$p" in
        bin/busybox | linuxrc) continue ;;
        bin/*) t=busybox ;;
        sbin/*) t=../bin/busybox ;;
        usr/*/*) t=../../bin/busybox ;;
        *) continue ;;
      esac
      ln -sfn "$t" "$p"
    done
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >etc/passwd
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >etc/group
    printf '%s\n' 'NAME="BusyBox"' 'ID=busybox' 'PRETTY_NAME="BusyBox (vzrun tests)"' >etc/os-release
  )
}

images_busybox_tar() {
  local out=${1:?usage: images_busybox_tar OUT.tar} tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/bbroot.XXXXXX") || return 1
  if images_busybox_rootfs "$tmp/root" && tar -C "$tmp/root" --numeric-owner -cf "$out" .; then
    rm -rf -- "$tmp"; echo "$out"
  else
    rm -rf -- "$tmp"; return 1
  fi
}

images_oci_archive() {
  local rootfs_tar=${1:-} out=${2:-} tag=${3:-} tmp a cmd=()
  [ -f "$rootfs_tar" ] && [ -n "$out" ] && [ -n "$tag" ] ||
    { _img_err "usage: images_oci_archive ROOTFS.tar OUT.tar TAG [CMD [ARG...]]"; return 2; }
  shift 3
  for a in "$@"; do cmd+=(--config.cmd "$a"); done
  command -v umoci >/dev/null || { _img_err "umoci is not installed"; return 2; }
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ociimg.XXXXXX") || return 1
  if umoci init --layout "$tmp/oci" &&
    umoci new --image "$tmp/oci:$tag" &&
    umoci raw add-layer --image "$tmp/oci:$tag" "$rootfs_tar" &&
    umoci config --image "$tmp/oci:$tag" --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      --architecture amd64 --os linux "${cmd[@]}" &&
    umoci gc --layout "$tmp/oci" &&
    tar -C "$tmp/oci" -cf "$out" .; then
    rm -rf -- "$tmp"; echo "$out"
  else
    rm -rf -- "$tmp"; _img_err "could not build the OCI archive $out"; return 1
  fi
}

images_debian_tar() {
  local include=${1:-systemd-sysv} suite=bookworm variant=minbase arch mirror=${VZRUN_TEST_MIRROR:-}
  local cache=${VZRUN_TEST_CACHE:-/var/cache/vzrun-tests} key out tmp rc quiet=()
  arch=$(dpkg --print-architecture) || return 1
  key=$(printf 'v1 %s %s %s %s %s' "$suite" "$variant" "$include" "$arch" "$mirror" | sha256sum | cut -c1-16)
  out=$cache/debian-$suite-$variant-$key.tar
  mkdir -p -- "$cache" || return 1
  (
    flock 9 || exit 1
    if [ -s "$out" ] && [ -z "$(find "$out" -mtime +"${VZRUN_TEST_CACHE_DAYS:-30}")" ]; then
      exit 0
    fi
    command -v mmdebstrap >/dev/null || { _img_err "mmdebstrap is not installed"; exit 2; }
    tmp=$out.tmp.$$
    trap 'rm -f -- "$tmp"' EXIT
    [ -t 2 ] || quiet=(--quiet)
    echo "images: building Debian $suite $variant with $include into $out (20-75 s)..." >&2
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600} \
      mmdebstrap "${quiet[@]}" --variant="$variant" --mode=root --format=tar \
      --include="$include" "$suite" "$tmp" ${mirror:+"$mirror"} </dev/null
    rc=$?
    [ $rc = 0 ] || { _img_err "mmdebstrap failed (exit $rc)"; exit 1; }
    mv -f -- "$tmp" "$out"
  ) 9>"$cache/.lock-$key" || return 1
  echo "$out"
}
