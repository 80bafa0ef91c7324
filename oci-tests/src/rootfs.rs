//! The test root filesystem: static busybox, the static helper, a few
//! users. Built once per run, then copied (binaries hard-linked) per bundle.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Users and groups the tests refer to by number.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
tester:x:1000:1000:tester:/home/tester:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str =
    "root:x:0:\ndaemon:x:1:\ntty:x:5:\ntester:x:1000:\nextra:x:2000:\nnogroup:x:65534:\n";

pub fn build(dir: &Path, busybox: &Path, helper: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    // Mount points exist up front: inside a user namespace the runtime
    // cannot create them in a root-owned tree.
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "out",
        "home/tester",
        "root",
        "mnt",
        "var/tmp",
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    for d in ["tmp", "var/tmp"] {
        std::fs::set_permissions(dir.join(d), std::fs::Permissions::from_mode(0o1777))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::copy(busybox, dir.join("bin/busybox")).context("copying busybox")?;
    std::fs::copy(helper, dir.join("oci-helper")).context("copying the helper")?;
    std::fs::set_permissions(
        dir.join("oci-helper"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .context("running busybox --list-full")?;
    if !list.status.success() {
        bail!("busybox --list-full failed");
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" || applet == "linuxrc" {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let link = dir.join(applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if !link.exists() {
            std::os::unix::fs::symlink(target, &link)?;
        }
    }
    std::fs::write(dir.join("etc/passwd"), PASSWD)?;
    std::fs::write(dir.join("etc/group"), GROUP)?;
    std::fs::write(dir.join("etc/hostname"), "oci-tests\n")?;
    Ok(())
}

/// Copies a tree; regular files over 64 KiB (the binaries) are hard links,
/// since no test writes to them and copying 20 MB per bundle is waste.
pub fn copy(src: &Path, dst: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(src)?;
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if e.metadata()?.len() > 64 * 1024 {
            std::fs::hard_link(&from, &to)?;
        } else {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}
