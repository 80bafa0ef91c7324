#!/usr/bin/env bash
# test-builder.sh: every vzbuild test (run as root, from the repository).
#
#   bash scripts/test-builder.sh
#
# Builds vzbuild, runs its unit and integration tests (unless VZ_TESTS_CARGO_DONE=1:
# scripts/test.sh ran them), then, against the
# real kernel and real tools:
#   - fidelity: a tricky busybox root and a real dnf root round-trip through
#     pack/unpack (gzip and zstd) with every attribute compared, plus a real
#     Debian minbase root;
#   - reproducibility: same tree twice, two builds of the same fixture, two
#     separate mmdebstrap bootstraps of the same packages;
#   - the template profile, the cache (list/inspect/verify/resolve), tamper
#     detection, bad input (missing/unreadable dirs and files, no
#     os-release, a full disk) and the recipes (Debian minimal and systemd
#     with mmdebstrap, EL9 with dnf against an offline repository);
#   - consumers: skopeo copy, umoci unpack, podman load + run, ctr image
#     import + run, with private storage, state and sockets.
# Debian roots are cached in /var/cache/vzrun-tests/vzbuild keyed by their
# recipe (VZBUILD_TEST_NO_CACHE=1 rebuilds them; missing ones are bootstrapped
# in the background while the other tests run); everything else lives in a
# temporary directory that is removed, with mounts and daemons, on exit.
set -uo pipefail
export LC_ALL=C.UTF-8

repo=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$repo/builder/tests/fixtures
treelist="python3 $fixtures/treelist.py"
[ "$(id -u)" = 0 ] || { echo "test-builder.sh must run as root" >&2; exit 2; }
for tool in mmdebstrap dnf rpmbuild createrepo_c skopeo umoci podman containerd ctr runc setcap setfacl setfattr python3 busybox; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install the packages in scripts/deps/builder.list" >&2; exit 2; }
done

export SOURCE_DATE_EPOCH=1735689600
start=$(date +%s)
. "$repo/scripts/lib/engines.sh"
work=$(mktemp -d /var/tmp/vzbuild-test.XXXXXX)

cleanup() {
  set +e
  for pid in ${deb_pids[@]:-}; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf /var/cache/vzrun-tests/vzbuild/*.tmp
  podman_teardown "$work/podman" 2>/dev/null
  containerd_stop "$work/ctd" 2>/dev/null
  # Anything still mounted below the work dir (tmpfs, overlays, shm).
  findmnt -rn -o TARGET | grep "^$work" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass=0; fail=0; failed=()
ok()   { pass=$((pass + 1)); echo "ok    $*"; }
bad()  { fail=$((fail + 1)); failed+=("$*"); echo "FAIL  $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() { local d=$1; shift; if "$@" >"$work/last.log" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/      /' "$work/last.log" | tail -20; fi; }
# refuse DESCRIPTION EXPECTED-EXIT PATTERN COMMAND...: passes when the command
# fails with that exit code and its stderr matches PATTERN.
refuse() {
  local d=$1 code=$2 pat=$3; shift 3
  "$@" >"$work/last.out" 2>"$work/last.err"; local rc=$?
  if [ "$rc" = "$code" ] && grep -Eq "$pat" "$work/last.err"; then ok "$d (exit $rc: $(head -1 "$work/last.err"))"
  else bad "$d (exit $rc, wanted $code and /$pat/)"; sed 's/^/      /' "$work/last.err" | tail -5; fi
}
same_tree() { diff <($treelist "$1" "${@:3}") <($treelist "$2") >"$work/diff.log" || { head -20 "$work/diff.log"; return 1; }; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

echo "== build"
cd "$repo"
cargo test --release -q --workspace --no-run || { echo "build failed" >&2; exit 1; }
vzbuild=$repo/target/release/vzbuild
# Debian roots: cached by recipe, SOURCE_DATE_EPOCH and mmdebstrap version;
# missing ones are bootstrapped in the background (mostly network and dpkg
# time) while the other tests run. debian-12-minimal is bootstrapped twice,
# separately, for the reproducibility proof.
declare -A deb_dir deb_pids
deb_start() { # RECIPE COUNT
  local recipe=$1 count=$2 key dir x
  key=$( (cat "templates/$recipe.recipe"; echo "$SOURCE_DATE_EPOCH $count"; mmdebstrap --version) | sha256sum | cut -c1-16)
  dir=/var/cache/vzrun-tests/vzbuild/$recipe-$key
  deb_dir[$recipe]=$dir
  deb_pids[$recipe]=
  [ "${VZBUILD_TEST_NO_CACHE:-0}" != 1 ] && [ -e "$dir/done" ] && return 0
  # Entries of older recipe versions are dropped.
  rm -rf "/var/cache/vzrun-tests/vzbuild/$recipe-"*; mkdir -p "$dir.tmp"
  for x in a b; do
    [ $x = b ] && [ "$count" = 1 ] && continue
    echo "   bootstrapping $recipe ($x) in the background"
    $vzbuild bootstrap "templates/$recipe.recipe" "$dir.tmp/$x" >"$work/boot-$recipe-$x.log" 2>&1 &
    deb_pids[$recipe]+=" $!"
  done
}
deb_wait() { # RECIPE: waits for its bootstraps (run in this shell, not in $(...))
  local recipe=$1 dir=${deb_dir[$1]} pids=${deb_pids[$1]} pid failed=0
  [ -z "$pids" ] && return 0
  for pid in $pids; do wait "$pid" || failed=1; done
  deb_pids[$recipe]=
  if [ $failed = 1 ]; then
    tail -20 "$work"/boot-"$recipe"-*.log; rm -rf "$dir.tmp"; return 1
  fi
  touch "$dir.tmp/done"; mv "$dir.tmp" "$dir"
}
deb_start debian-12-minimal 2
deb_start debian-12-systemd 1

if [ "${VZ_TESTS_CARGO_DONE:-0}" != 1 ]; then   # (scripts/test.sh ran them)
  echo "== cargo test (unit, integration, doc)"
  check "cargo test -p vzbuild" cargo test --release -q -p vzbuild
fi

echo "== fixtures"
mkdir -p "$work/bb1" "$work/bb2" "$work/cache"
SOCKET=1 bash "$fixtures/make-busybox-root.sh" "$work/bb1/root" || exit 1
bash "$fixtures/make-busybox-root.sh" "$work/bb2/root" >/dev/null || exit 1
bash "$fixtures/make-rpm-repo.sh" "$work/rpmrepo" || exit 1
el_params=(--param "repo=file://$work/rpmrepo" --param "packages=el-test-filesystem el-test-release el-test-tools")

echo "== fidelity: busybox root with every special entry"
bb=$work/bb1/root
$vzbuild pack "$bb" --keep-all -o "$work/bb.oci.tar" >"$work/pack.log" 2>"$work/pack.err"
check "pack busybox root" test -s "$work/bb.oci.tar"
check "socket skipped with a warning" grep -q "skipping socket /run/test.sock" "$work/pack.err"
check "default name from os-release and ELF arch" grep -q "name *busybox-1.35-x86_64" "$work/pack.log"
check "unpack busybox (gzip)" $vzbuild unpack "$work/bb.oci.tar" "$work/bb-out"
check "busybox round trip keeps every attribute" same_tree "$bb" "$work/bb-out" --exclude run/test.sock
$vzbuild pack "$bb" --keep-all --zstd -o "$work/bbz.oci.tar" -q >/dev/null 2>&1
check "zstd layer media type" grep -q "tar+zstd" <($vzbuild inspect "$work/bbz.oci.tar")
check "unpack busybox (zstd)" $vzbuild unpack "$work/bbz.oci.tar" "$work/bbz-out"
check "zstd round trip keeps every attribute" same_tree "$bb" "$work/bbz-out" --exclude run/test.sock
check "sparse file stays sparse" grep -q "sparse.img .*sparse=0+4096,8388608+4096" <($treelist "$work/bb-out")
check "file capability restored" sh -c "getcap '$work/bb-out/usr/bin/ping-cap' | grep -q cap_net_raw"
check "POSIX ACL restored" sh -c "getfacl -n '$work/bb-out/var/lib/extras/acl-file' 2>/dev/null | grep -q '^user:65534:rwx'"

echo "== fidelity: dnf root (real rpm database)"
check "vzbuild bootstrap el9-dnf recipe" $vzbuild bootstrap templates/el9-dnf.recipe "$work/elroot" "${el_params[@]}"
check "rpm database present" test -s "$work/elroot/var/lib/rpm/rpmdb.sqlite"
# Fidelity packs keep mtimes as they are (no SOURCE_DATE_EPOCH clamp).
env -u SOURCE_DATE_EPOCH $vzbuild pack "$work/elroot" --keep-all -o "$work/el.oci.tar" >"$work/pack.log" 2>&1
check "dnf root: name from os-release + rpm db arch" grep -q "name *eltest-9.5-x86_64$" "$work/pack.log"
check "unpack dnf root" $vzbuild unpack "$work/el.oci.tar" "$work/el-out"
check "dnf root round trip keeps every attribute" same_tree "$work/elroot" "$work/el-out"
$vzbuild inspect "$work/el.oci.tar" >"$work/el.json"
check "rpm package list recorded" test "$(field "$work/el.json" 'd["annotations"]["io.vzrun.template.packages.count"]')" = 3
check "package manager recorded" test "$(field "$work/el.json" 'd["annotations"]["io.vzrun.template.package-manager"]')" = rpm

echo "== recipes: vzbuild build (dnf, offline repository)"
check "vzbuild build el9-dnf into the cache" $vzbuild build templates/el9-dnf.recipe "${el_params[@]}" --cache-dir "$work/cache" --workdir "$work" -q
check "built template named <distro>-<ver>-<arch>-<flavour>" test -f "$work/cache/eltest-9.5-x86_64-minimal/20250101.oci.tar"
check "build left no work directory" sh -c "! ls -d '$work'/vzbuild-build.* 2>/dev/null"
check "profile emptied dnf logs and cache" sh -c "$vzbuild unpack eltest-9.5-x86_64-minimal '$work/el-built' --cache-dir '$work/cache' >/dev/null && test ! -s '$work/el-built/var/log/dnf.log' && test -z \"\$(find '$work/el-built/var/cache/dnf' -type f)\""

echo "== reproducibility"
$vzbuild pack "$bb" -o "$work/r1.oci.tar" --source fixture -q >/dev/null 2>&1
$vzbuild pack "$bb" -o "$work/r2.oci.tar" --source fixture --threads 1 -q >/dev/null 2>&1
check "same tree, 1 vs all threads: bit-identical" cmp "$work/r1.oci.tar" "$work/r2.oci.tar"
rm -f "$work/bb2/root/run/test.sock" "$work/bb1/root/run/test.sock"
$vzbuild pack "$work/bb1/root" -o "$work/r3.oci.tar" --source fixture -q >/dev/null 2>&1
$vzbuild pack "$work/bb2/root" -o "$work/r4.oci.tar" --source fixture -q >/dev/null 2>&1
check "two builds of the fixture: bit-identical" cmp "$work/r3.oci.tar" "$work/r4.oci.tar"
$vzbuild pack "$bb" -o "$work/r5.oci.tar" --source fixture --zstd -q >/dev/null 2>&1
$vzbuild pack "$work/bb2/root" -o "$work/r6.oci.tar" --source fixture --zstd -q >/dev/null 2>&1
check "zstd: bit-identical too" cmp "$work/r5.oci.tar" "$work/r6.oci.tar"
SOURCE_DATE_EPOCH=1767225600 $vzbuild pack "$bb" -o "$work/r7.oci.tar" --source fixture -q >/dev/null 2>&1
check "another SOURCE_DATE_EPOCH changes the digest" sh -c "! cmp -s '$work/r1.oci.tar' '$work/r7.oci.tar'"

echo "== Debian roots (two separate mmdebstrap bootstraps, cached by recipe)"
if deb_wait debian-12-minimal; then
  deb=${deb_dir[debian-12-minimal]}
  ok "bootstrap debian-12-minimal twice"
  $vzbuild pack "$deb/a" --flavour minimal --cache-dir "$work/cache" --source recipe:debian-12-minimal >"$work/deb-a.log" 2>"$work/deb-a.err"
  check "pack Debian root A into the cache" test -f "$work/cache/debian-12-x86_64-minimal/20250101.oci.tar"
  $vzbuild pack "$deb/b" --flavour minimal -o "$work/deb-b.oci.tar" --source recipe:debian-12-minimal -q >/dev/null 2>&1
  check "two bootstraps: same layer digest" test "$(grep '^layer' "$work/deb-a.log")" = "$($vzbuild inspect "$work/deb-b.oci.tar" | field /dev/stdin '"layer     "+d["layer"]["digest"]+" ("+str(d["layer"]["size"])+" bytes)"')"
  check "two bootstraps: bit-identical templates" cmp "$work/cache/debian-12-x86_64-minimal/20250101.oci.tar" "$work/deb-b.oci.tar"
  check "profile lists what it removed" grep -q "profile: emptied host name: /etc/hostname" "$work/deb-a.err"
  check "dpkg package list recorded" sh -c "$vzbuild inspect debian-12-x86_64-minimal --cache-dir '$work/cache' | grep -q '\"io.vzrun.template.package-manager\": \"dpkg\"'"
  check "unpack Debian template" $vzbuild unpack debian-12-x86_64-minimal "$work/deb-out" --cache-dir "$work/cache"
  check "profile: machine-id empty, hostname empty, no apt lists" sh -c "test ! -s '$work/deb-out/etc/machine-id' && test ! -s '$work/deb-out/etc/hostname' && test -z \"\$(find '$work/deb-out/var/lib/apt/lists' -type f)\""
  env -u SOURCE_DATE_EPOCH $vzbuild pack "$deb/a" --keep-all -o "$work/deb-keep.oci.tar" -q >/dev/null 2>&1
  check "unpack keep-all Debian template" $vzbuild unpack "$work/deb-keep.oci.tar" "$work/deb-keep"
  check "keep-all: Debian round trip keeps every attribute" same_tree "$deb/a" "$work/deb-keep"
else
  bad "bootstrap debian-12-minimal twice"
fi
if deb_wait debian-12-systemd; then
  sysd=${deb_dir[debian-12-systemd]}
  ok "bootstrap debian-12-systemd"
  check "pack the systemd root" $vzbuild pack "$sysd/a" --flavour systemd --cache-dir "$work/cache" -q
  check "systemd template: init and stop signal in the config" sh -c "skopeo inspect --config oci-archive:'$work/cache/debian-12-x86_64-systemd/20250101.oci.tar' | grep -q SIGRTMIN+3"
else
  bad "bootstrap debian-12-systemd"
fi

echo "== cache: list, inspect, verify, resolve"
for v in 1.9 1.10 1.2; do $vzbuild pack "$bb" --name bb-test --version "$v" --cache-dir "$work/cache" -q >/dev/null 2>&1; done
$vzbuild list --cache-dir "$work/cache" >"$work/list.txt"
check "list shows name, version, created, size, digest" grep -Eq '^bb-test +1\.10 +2025-01-01T00:00:00Z +[0-9.]+[KM] +sha256:' "$work/list.txt"
check "resolve picks the latest by version order" test "$($vzbuild resolve bb-test --cache-dir "$work/cache")" = "$work/cache/bb-test/1.10.oci.tar"
check "resolve NAME:VERSION" test "$($vzbuild resolve bb-test:1.9 --cache-dir "$work/cache")" = "$work/cache/bb-test/1.9.oci.tar"
refuse "unknown template: exit 91" 91 "template not found" $vzbuild resolve centos-7-x86_64 --cache-dir "$work/cache"
refuse "pack onto an existing version" 2 "already exists" $vzbuild pack "$bb" --name bb-test --version 1.9 --cache-dir "$work/cache"
check "verify every template in the cache" $vzbuild verify --cache-dir "$work/cache"
$vzbuild inspect bb-test --cache-dir "$work/cache" >"$work/inspect.json"
check "inspect: JSON with annotations" test "$(field "$work/inspect.json" 'd["annotations"]["org.opencontainers.image.ref.name"]')" = 1.10
cp "$work/cache/bb-test/1.2.oci.tar" "$work/tampered.oci.tar"
python3 - "$work/tampered.oci.tar" <<'PY'
import sys, tarfile
p = sys.argv[1]
with tarfile.open(p) as t:
    m = max((m for m in t.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size)
    off = m.offset_data + m.size // 2
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xFF]))
PY
refuse "verify refuses a tampered layer" 3 "digest mismatch|does not decompress" $vzbuild verify "$work/tampered.oci.tar"
refuse "unpack refuses a tampered layer" 3 "digest mismatch|does not decompress" $vzbuild unpack "$work/tampered.oci.tar" "$work/tampered-out"
check "nothing left by the refused unpack" sh -c "test ! -e '$work/tampered-out' && ! ls -a '$work' | grep -q 'tampered-out.vzbuild-unpack'"

true & dead=$!; wait $dead
touch "$work/cache/bb-test/.1.9.1.oci.tar.tmp-$dead"; mkdir -p "$work/.bb-stale.vzbuild-unpack-$dead/usr"
$vzbuild pack "$bb" --name bb-test --version 1.9.1 --cache-dir "$work/cache" -q >/dev/null 2>&1
$vzbuild unpack bb-test:1.9.1 "$work/bb-stale" --cache-dir "$work/cache" >/dev/null 2>&1
check "leftovers of a killed pack/unpack are removed" sh -c "test ! -e '$work/cache/bb-test/.1.9.1.oci.tar.tmp-$dead' && test ! -e '$work/.bb-stale.vzbuild-unpack-$dead' && test -d '$work/bb-stale/usr'"

echo "== bad input"
refuse "missing root directory" 1 "No such file or directory" $vzbuild pack "$work/nope" -o "$work/x.oci.tar"
refuse "root is a file" 2 "not a directory" $vzbuild pack "$work/bb.oci.tar" -o "$work/x.oci.tar"
cp -a "$bb" "$work/noos"; rm -f "$work/noos/etc/os-release" "$work/noos/run/test.sock"
refuse "no os-release without --name" 2 "os-release.*--name" $vzbuild pack "$work/noos" --cache-dir "$work/cache"
check "no os-release with --name works" $vzbuild pack "$work/noos" --name custom-root --cache-dir "$work/cache" -q
mkdir -p "$work/unread/etc"; cp "$bb/etc/os-release" "$work/unread/etc/"; echo s > "$work/unread/secret"; chmod 000 "$work/unread/secret"
nodac=(setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search)
refuse "unreadable file (root without DAC override)" 1 "opening .*secret: Permission denied" "${nodac[@]}" $vzbuild pack "$work/unread" --arch x86_64 -o "$work/x.oci.tar"
chmod 000 "$work/unread"
refuse "unreadable directory" 1 "unread.*Permission denied" "${nodac[@]}" $vzbuild pack "$work/unread" --arch x86_64 -o "$work/x.oci.tar"
chmod 755 "$work/unread"
check "no partial output after failures" test ! -e "$work/x.oci.tar"
mkdir -p "$work/full"; mount -t tmpfs -o size=600k tmpfs "$work/full"
refuse "full disk" 1 "No space left on device" $vzbuild pack "$bb" --name full-test --cache-dir "$work/full/cache"
check "full disk: no partial template, list sees nothing" sh -c "test -z \"\$(find '$work/full/cache' -type f)\" && test \"\$($vzbuild list --cache-dir '$work/full/cache' | wc -l)\" = 1"
umount "$work/full"
refuse "bad version string" 2 "invalid template version" $vzbuild pack "$bb" --version ../1 -o "$work/x.oci.tar"
refuse "recipe parameter missing" 2 "needs parameter \"repo\"" $vzbuild build templates/el9-dnf.recipe -o "$work/x.oci.tar"
refuse "unpack into a non-empty directory" 2 "not empty" $vzbuild unpack "$work/bb.oci.tar" "$work/bb-out"

echo "== consumers"
tmpl=$work/cache/debian-12-x86_64-minimal/20250101.oci.tar
[ -f "$tmpl" ] || tmpl=$work/bb.oci.tar
check "skopeo copy oci-archive: -> oci: (checks digests)" skopeo copy -q "oci-archive:$tmpl" "oci:$work/oci:t"
check "umoci unpack" umoci unpack --image "$work/oci:t" "$work/bundle"
# umoci writes holes as zeros; everything else must match vzbuild's unpack.
no_holes() { $treelist "$@" | sed 's/ sparse=[^ ]*//'; }
if [ "$tmpl" != "$work/bb.oci.tar" ]; then
  check "umoci's tree equals vzbuild's unpack (but holes)" diff <(no_holes "$work/deb-out") <(no_holes "$work/bundle/rootfs")
fi
skopeo copy -q "oci-archive:$work/bb.oci.tar" "oci:$work/oci-bb:t" && umoci unpack --image "$work/oci-bb:t" "$work/bundle-bb" >/dev/null 2>&1
check "umoci on the tricky root: all but holes identical" diff <(no_holes "$work/bb-out") <(no_holes "$work/bundle-bb/rootfs")

# podman and containerd: private instances (scripts/lib/engines.sh), runc as the runtime.
ENGINES_QUIET=1 podman_setup "$work/podman" "$(command -v runc)" runc
img=$(podman_cmd load -q -i "$tmpl" 2>&1 | sed -n 's/^Loaded image[s]*: *//p' | head -1)
check "podman load" test -n "$img"
if [ -n "$img" ]; then
  podman_cmd run --rm "$img" /bin/sh -c 'cat /etc/os-release; id -u' >"$work/podman-run.log" 2>&1
  check "podman run the template" grep -Eq '^ID=(debian|busybox)' "$work/podman-run.log"
fi

ENGINES_QUIET=1 containerd_start "$work/ctd"
check "private containerd started" ctr_cmd version
check "ctr image import" ctr_cmd images import --base-name localhost/vzbuild-test "$tmpl"
ref=$(ctr_cmd images ls -q | grep '^localhost/vzbuild-test' | head -1)
check "ctr image named by ref.name" test "$ref" = "localhost/vzbuild-test:20250101"
if [ -n "$ref" ]; then
  check "ctr run the template" sh -c "'$work/ctd/bin/ctr' run --rm --runc-binary \"\$(command -v runc)\" '$ref' vzb-ctr /bin/sh -c 'cat /etc/os-release' | grep -Eq '^ID=(debian|busybox)'"
fi

echo "== summary"
echo "host cgroup mounts unchanged: $(findmnt -rn -t cgroup2 -o OPTIONS | head -1)"
echo "time: $(( $(date +%s) - start )) s"
[ "$fail" = 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "builder: $pass passed, $fail failed"
[ "$fail" = 0 ]
