#!/usr/bin/env bash
# bench-builder.sh [ROOT]: times vzbuild against the usual ways of packing a
# root filesystem, on the same tree, with hyperfine (run by hand as root; not
# part of CI, timings on a shared machine are noisy).
#
#   bash scripts/bench-builder.sh              # a Debian 12 minbase root (bootstrapped once, cached)
#   bash scripts/bench-builder.sh /srv/root    # any root directory
#   RUNS=10 bash scripts/bench-builder.sh
#
# Compared, all reading ROOT and writing a compressed archive:
#   tar | gzip -n, tar | pigz -n, tar | zstd -T0   (GNU tar, sorted, numeric owners)
#   umoci init/new/insert                          (OCI layout, gzip layer)
#   buildah from scratch + mount/cp -a + commit    (oci-archive, gzip layer)
#   vzbuild pack (gzip), vzbuild pack --zstd
# and unpacking: vzbuild unpack vs tar xzf. Also peak RSS (/usr/bin/time)
# and output sizes. Prints a markdown table for docs/PERFORMANCE.md.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for t in hyperfine pigz zstd umoci buildah python3; do
  command -v $t >/dev/null || { echo "missing $t (scripts/deps/builder.list)" >&2; exit 2; }
done
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
cd "$repo"
cargo build --release -q -p vzbuild
vz=$repo/target/release/vzbuild
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600}

root=${1:-}
if [ -z "$root" ]; then
  root=/var/cache/vzrun-tests/vzbuild/bench-debian-12-minbase
  if [ ! -e "$root.done" ]; then
    rm -rf "$root"
    "$vz" bootstrap templates/debian-12-minimal.recipe "$root"
    touch "$root.done"
  fi
fi
root=$(readlink -f "$root")
out=$(mktemp -d /var/tmp/vzbuild-bench.XXXXXX)
cleanup() {
  set +e
  buildah --root "$out/st/root" --runroot "$out/st/run" rm -a >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep "^$out" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$out"
  return 0
}
trap cleanup EXIT
mkdir -p "$out/st/tmp"
printf '[engine]\nlock_type = "file"\ntmp_dir = "%s/st/tmp"\n' "$out" > "$out/st/containers.conf"
export CONTAINERS_CONF=$out/st/containers.conf
bah="buildah --root $out/st/root --runroot $out/st/run"

tar_c="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C $root -c ."
# Warm the page cache so every method reads from memory.
$tar_c >/dev/null; cat "$root"/usr/bin/* >/dev/null 2>&1 || true

echo "tree: $root: $(du -sh --apparent-size "$root" | cut -f1), $(find "$root" | wc -l) entries; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$out/pack.json" \
  -n "tar | gzip -n" "sh -c '$tar_c | gzip -n > $out/a.tgz'" \
  -n "tar | pigz" "sh -c '$tar_c | pigz -n > $out/a.pigz.tgz'" \
  -n "tar | zstd -T0" "sh -c '$tar_c | zstd -q -T0 > $out/a.tar.zst'" \
  -n "vzbuild pack (gzip)" "$vz pack $root -o $out/v.oci.tar --force -q --source bench" \
  -n "vzbuild pack --zstd" "$vz pack $root -o $out/vz.oci.tar --force -q --zstd --source bench"
hyperfine -N --runs "$(( runs < 3 ? runs : 3 ))" --export-json "$out/oci.json" \
  --prepare "rm -rf $out/umoci" \
  -n "umoci insert" "sh -c 'umoci init --layout $out/umoci && umoci new --image $out/umoci:t && umoci insert --image $out/umoci:t $root /'" \
  --prepare "sh -c '$bah rm -a >/dev/null 2>&1; rm -f $out/buildah.tar'" \
  -n "buildah mount+cp+commit" "sh -c 'c=\$($bah from scratch) && m=\$($bah mount \$c) && cp -a $root/. \$m/ && $bah umount \$c >/dev/null && $bah commit -q --format oci --disable-compression=false \$c oci-archive:$out/buildah.tar:t >/dev/null'"
mkdir -p "$out/u"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$out/unpack.json" \
  --prepare "rm -rf $out/u/tar $out/u/vz" \
  -n "tar xzf" "sh -c 'mkdir $out/u/tar && tar -C $out/u/tar -xzf $out/a.pigz.tgz'" \
  -n "vzbuild unpack" "$vz unpack $out/v.oci.tar $out/u/vz"

rm -rf "$out/u/vz"
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rss_gz=$(rss "$vz" pack "$root" -o "$out/v.oci.tar" --force -q --source bench)
rss_zst=$(rss "$vz" pack "$root" -o "$out/vz.oci.tar" --force -q --zstd --source bench)
rss_un=$(rss "$vz" unpack "$out/v.oci.tar" "$out/u/vz")
cpu() { /usr/bin/time -f '%U+%S' "$@" 2>&1 >/dev/null | tail -1 | bc; }
cpu_vz=$(cpu "$vz" pack "$root" -o "$out/v.oci.tar" --force -q --source bench)
cpu_pigz=$(cpu sh -c "$tar_c | pigz -n > $out/a.pigz.tgz")
size() { stat -c %s "$1"; }
umoci_layer=$(find "$out/umoci/blobs" -type f -size +1M -printf '%s\n' | sort -n | tail -1)

python3 - "$out" "$rss_gz" "$rss_zst" "$rss_un" "$cpu_vz" "$cpu_pigz" \
  "$(size "$out/a.tgz")" "$(size "$out/a.pigz.tgz")" "$(size "$out/a.tar.zst")" \
  "$(size "$out/v.oci.tar")" "$(size "$out/vz.oci.tar")" "$umoci_layer" "$(size "$out/buildah.tar")" <<'PY'
import json, sys
out = sys.argv[1]
rss_gz, rss_zst, rss_un = (int(x) / 1024 for x in sys.argv[2:5])
cpu_vz, cpu_pigz = float(sys.argv[5]), float(sys.argv[6])
sizes = dict(zip(["tar | gzip -n", "tar | pigz", "tar | zstd -T0", "vzbuild pack (gzip)",
                  "vzbuild pack --zstd", "umoci insert", "buildah mount+cp+commit"],
                 (int(x) for x in sys.argv[7:14])))
res = {}
for f in ("pack", "oci", "unpack"):
    for r in json.load(open(f"{out}/{f}.json"))["results"]:
        res[r["command"]] = r
print("\n| method | wall time (median, s) | min–max | output MB |\n|---|---|---|---|")
for name, r in res.items():
    size = f"{sizes[name] / 1e6:.1f}" if name in sizes else ""
    print(f"| {name} | {r['median']:.2f} | {r['min']:.2f}–{r['max']:.2f} | {size} |")
m = lambda n: res[n]["median"]
print("\n| ratio | value | goal |\n|---|---|---|")
print(f"| vzbuild gzip / tar\\|pigz wall time | {m('vzbuild pack (gzip)') / m('tar | pigz'):.2f} | ≤ 0.5 |")
print(f"| vzbuild gzip / tar\\|pigz CPU time | {cpu_vz / cpu_pigz:.2f} | |")
print(f"| vzbuild gzip / tar\\|gzip -n wall time | {m('vzbuild pack (gzip)') / m('tar | gzip -n'):.2f} | |")
print(f"| vzbuild zstd / tar\\|zstd -T0 wall time | {m('vzbuild pack --zstd') / m('tar | zstd -T0'):.2f} | ≤ 1.0 |")
print(f"| vzbuild gzip / umoci insert wall time | {m('vzbuild pack (gzip)') / m('umoci insert'):.2f} | |")
print(f"| vzbuild gzip / buildah wall time | {m('vzbuild pack (gzip)') / m('buildah mount+cp+commit'):.2f} | |")
print(f"| vzbuild unpack / tar xzf wall time | {m('vzbuild unpack') / m('tar xzf'):.2f} | ≤ 1.0 |")
print(f"| vzbuild gzip size / pigz size | {sizes['vzbuild pack (gzip)'] / sizes['tar | pigz']:.3f} | |")
print(f"| vzbuild zstd size / zstd -T0 size | {sizes['vzbuild pack --zstd'] / sizes['tar | zstd -T0']:.3f} | |")
print(f"| peak RSS pack gzip / zstd / unpack (MiB) | {rss_gz:.0f} / {rss_zst:.0f} / {rss_un:.0f} | < 64 |")
PY
