#!/usr/bin/env bash
# host-state.sh - prints the host state tests must leave as they found it: mounts, cgroups
# under every hierarchy (names only), network namespaces, loop devices, and vzrun/vzctl
# processes. test.sh diffs it before and after the suite.
set -u
echo "# mounts"
findmnt -rn -o TARGET,FSTYPE | grep -v -E '^/proc/|^/sys/kernel|^/run/user' | sort
echo "# cgroups"
find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d 2>/dev/null \
  | grep -v -E '/process_api/|/sys/fs/cgroup/[^/]+/user\.slice' | sort
echo "# netns"
ip netns list 2>/dev/null | sort
echo "# loop devices"
losetup -n -O NAME,BACK-FILE 2>/dev/null | sort
echo "# processes"
# (zombies are left out: they hold nothing, and the host's init reaps them when it will;
# here it reaps the double-forked conmons a moment after podman is gone)
ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' | grep -E '^(vzrun|vzctl|youki|conmon|containerd)' | sort || true
