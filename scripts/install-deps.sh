#!/usr/bin/env bash
# install-deps.sh - installs what vzrun/vzbuild and their tests need on Debian 12, as root.
# Every scripts/deps/*.list (one Debian package per line, '#' comments) is installed with
# apt-get; packages already present are skipped, so a warm machine pays almost nothing.
# The Rust toolchain must already be there (rustup); cargo fetches crates itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root" >&2; exit 2; }
command -v cargo >/dev/null || { echo "install-deps.sh: cargo not found (install Rust with rustup)" >&2; exit 2; }

mapfile -t wanted < <(cat scripts/deps/*.list | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps.sh: ${#wanted[@]} packages present"

# Host cgroup setup, as the cgroupfs-mount package would do: on v1/hybrid hosts every v1
# controller should be mounted; this host kind leaves net_cls and net_prio unmounted, so
# OCI specs asking for them (linux.resources.network) could not be honoured. They are
# mounted as two hierarchies: libcontainer cannot mount a comounted hierarchy inside a
# container (docs/LIBCONTAINER.md, gap 18).
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
  for controller in net_cls net_prio; do
    if grep -qw "$controller" /proc/cgroups && ! grep -qE " - cgroup .*[ ,]$controller(,|$)" /proc/self/mountinfo; then
      mkdir -p "/sys/fs/cgroup/$controller" \
        && mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" \
        && echo "install-deps.sh: mounted the $controller cgroup hierarchy"
    fi
  done
fi
