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
# mounted comounted, the usual layout (vzrun mounts comounted hierarchies in containers
# itself: docs/LIBCONTAINER.md, gap 18).
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && grep -qw net_cls /proc/cgroups \
   && ! grep -qE " - cgroup .*[ ,]net_cls(,|$)" /proc/self/mountinfo; then
  dir=/sys/fs/cgroup/net_cls,net_prio
  mkdir -p "$dir" && mount -t cgroup -o net_cls,net_prio cgroup "$dir" \
    && for name in net_cls net_prio; do   # (the usual links; never into an existing directory)
         [ -e "/sys/fs/cgroup/$name" ] || ln -s net_cls,net_prio "/sys/fs/cgroup/$name"; done \
    && echo "install-deps.sh: mounted the net_cls,net_prio cgroup hierarchy"
fi
