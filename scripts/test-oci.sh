#!/usr/bin/env bash
# test-oci.sh [RUNTIME...] - the OCI conformance suite (oci-tests/) against
# each runtime given, the first being the reference.
#
# RUNTIME is a path or one of: runc, crun (wrapped so it accepts this host's
# hybrid cgroup layout), vzrun (target/release/vzrun). Default: runc, plus
# target/release/vzrun when it has been built.
# Fails when the reference has an unexpected failure, or when a test that
# passes on the reference does not pass on another runtime (a side-by-side
# table shows them). Results (JSON lines) stay in target/oci-tests/.
# Env: OCI_TESTS_ARGS (extra `oci-tests run` options, e.g. "-j 2 kill."),
#      OCI_TESTS_NO_GATE=1 (print the comparison, do not fail on regressions),
#      RUNTIME_ARGS (global runtime options), RUSTFLAGS (added to).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-oci: must run as root" >&2; exit 2; }

TARGET=x86_64-unknown-linux-gnu
OUT=target/oci-tests
start=$(date +%s)
# Static binaries: the helper runs in a root with no libc. --target keeps
# the flag away from build scripts and proc macros.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build -p oci-tests --target "$TARGET" --bins
BIN=target/$TARGET/debug/oci-tests
mkdir -p "$OUT"

work=$(mktemp -d /tmp/test-oci.XXXXXX)
trap 'rm -rf "$work"' EXIT

resolve() {  # NAME-or-PATH -> executable path
  case "$1" in
    crun)
      local crun; crun=$(command -v crun) || { echo "test-oci: crun is not installed" >&2; return 1; }
      if awk '$5=="/sys/fs/cgroup/unified" && / - cgroup2 /{f=1} END{exit !f}' /proc/self/mountinfo; then
        # crun refuses hybrid cgroups: hide the unified mount in a slave
        # mount namespace of its own (the host's mounts are untouched).
        cat >"$work/crun" <<W
#!/bin/sh
exec unshare -m --propagation slave sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "\$0" "\$@"' $crun "\$@"
W
        chmod +x "$work/crun"; echo "$work/crun"
      else
        echo "$crun"
      fi;;
    vzrun) echo "$PWD/target/release/vzrun";;
    */*) readlink -f "$1";;
    *) command -v "$1" || { echo "test-oci: $1 not found" >&2; return 1; };;
  esac
}

runtimes=("$@")
if [ ${#runtimes[@]} = 0 ]; then
  runtimes=(runc)
  [ -x target/release/vzrun ] && runtimes+=(vzrun)
fi

status=0
declare -a files names
for rt in "${runtimes[@]}"; do
  path=$(resolve "$rt") || { status=1; continue; }
  [ -x "$path" ] || { echo "test-oci: $rt ($path) is not an executable" >&2; status=1; continue; }
  name=$(basename "$rt")
  file="$OUT/results-$name.jsonl"
  echo "== oci-tests against $rt ($path)"
  set +e
  # shellcheck disable=SC2086
  "$BIN" run --runtime "$path" --results "$file" ${OCI_TESTS_ARGS:-}
  rc=$?
  set -e
  files+=("$file"); names+=("$name")
  # The reference gates on its own unexpected failures; candidates on
  # regressions against it (below). A lone runtime gates on its own.
  if [ $rc -ge 2 ] || { [ ${#files[@]} = 1 ] && [ $rc != 0 ]; }; then status=1; fi
done

regressions=0
for ((i = 1; i < ${#files[@]}; i++)); do
  table="$OUT/compare-${names[0]}-${names[i]}.txt"
  echo "== ${names[0]} (reference) vs ${names[i]}"
  if ! "$BIN" compare "${files[0]}" "${files[i]}" >"$table"; then
    [ "${OCI_TESTS_NO_GATE:-0}" = 1 ] || status=1
    regressions=$((regressions + $(grep -c 'REGRESSION' "$table" || true)))
  fi
  cat "$table"
done

count() { cat "$@" 2>/dev/null | grep -c "\"status\":\"$status_word\"" || true; }
total=$(cat "${files[@]}" 2>/dev/null | grep -c '"status"' || true)
status_word=pass; passed=$(count "${files[@]}")
# Failed: the reference's unexpected failures plus every regression; what
# else fails on a candidate also fails on the reference (shown above).
ref_failed=0
if [ ${#files[@]} -gt 0 ]; then
  status_word=fail; ref_failed=$(count "${files[0]}")
  status_word=xpass; ref_failed=$((ref_failed + $(count "${files[0]}")))
fi
failed=$((ref_failed + regressions)); skipped=$((total - passed - failed)); [ $skipped -ge 0 ] || skipped=0
echo "test-oci: ${#files[@]} runtime(s) in $(( $(date +%s) - start )) s; results in $OUT/;" \
  "$regressions regression(s) against ${names[0]:-none};" \
  "skipped includes expected failures and failures the reference shares"
[ ${#files[@]} -gt 0 ] || status=1
echo "test-oci: $passed passed, $failed failed, $skipped skipped"
exit $status
