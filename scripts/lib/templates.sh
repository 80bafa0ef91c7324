# templates.sh - sourceable: OS templates built from templates/*.recipe for tests, cached.
#
#   template_from_recipe RECIPE VZBUILD   prints the path of an .oci.tar built from RECIPE
#
# Built with `VZBUILD build RECIPE -o FILE` (mmdebstrap from the Debian mirror for the Debian
# recipes, 30-90 s) and cached in $VZRUN_TEST_CACHE/templates (default /var/cache/vzrun-tests)
# under the recipe's name and a hash of its content; a cached file older than
# VZRUN_TEST_CACHE_DAYS (default 30) is rebuilt to pick up package updates. Concurrent callers
# wait on a lock instead of building twice.

template_from_recipe() {
  local recipe=$1 vzbuild=$2 cache key name out
  cache=${VZRUN_TEST_CACHE:-/var/cache/vzrun-tests}/templates
  name=$(basename "$recipe" .recipe)
  key=$(sha256sum "$recipe" | cut -c1-16)
  out=$cache/$name-$key.oci.tar
  mkdir -p "$cache" || return 1
  (
    flock 9
    if [ -s "$out" ] && [ -z "$(find "$out" -mtime +"${VZRUN_TEST_CACHE_DAYS:-30}")" ]; then
      exit 0
    fi
    rm -f "$cache/$name-"*.oci.tar
    echo "templates: building $name (mmdebstrap; cached afterwards)" >&2
    "$vzbuild" build "$recipe" -o "$out.tmp" --version 1 -q >&2 && mv "$out.tmp" "$out"
  ) 9>"$cache/.lock-$name" || { rm -f "$out.tmp"; return 1; }
  echo "$out"
}
