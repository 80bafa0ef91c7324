//! The private area and the root mount point. With the default `simfs` layout VE_PRIVATE
//! is a directory, bind-mounted on VE_ROOT while the container is mounted or running; with
//! `ploop` it holds an ext4 image (disk::image), mounted on VE_ROOT through a loop device
//! that detaches by itself once unmounted.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::ct::Ct;
use super::disk::{image, Layout};
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};

/// Mounts a container's private area on its root (creating the root if needed), the
/// way its layout says.
pub fn mount_ct(env: &VzEnv, ct: &Ct) -> VzResult<()> {
    mount_root(&ct.private(env), &ct.root(env), Layout::of_conf(&ct.conf)?)
}

/// Mounts `private` on `root` (creating `root` if needed).
pub fn mount_root(private: &Path, root: &Path, layout: Layout) -> VzResult<()> {
    if !private.is_dir() {
        return Err(VzError::new(
            ExitCode::PrivateNotFound,
            format!(
                "Container private area {} does not exist",
                private.display()
            ),
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| {
        VzError::new(
            ExitCode::MountFailed,
            format!("create {}: {e}", root.display()),
        )
    })?;
    if layout == Layout::Ploop {
        // (mount_image makes the mount private itself: it also remounts to grow offline)
        image::mount_image(&image::image_path(private), root)
            .map_err(|e| VzError::new(ExitCode::MountFailed, e.to_string()))?;
        return Ok(());
    }
    mount(
        Some(private),
        root,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        VzError::new(
            ExitCode::MountFailed,
            format!("mount {} on {}: {e}", private.display(), root.display()),
        )
    })?;
    // Mounts made below the root on the host stay out of other namespaces' way, and
    // the container's own mounts (made in its namespace) never show up here.
    mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| {
        VzError::new(
            ExitCode::MountFailed,
            format!("make {} private: {e}", root.display()),
        )
    })?;
    Ok(())
}

/// Unmounts VE_ROOT (lazily if something still holds it: the container's files stay in
/// VE_PRIVATE either way).
pub fn umount_root(root: &Path) -> VzResult<()> {
    match umount2(root, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(root, MntFlags::MNT_DETACH).map_err(|e| {
            VzError::new(
                ExitCode::UmountFailed,
                format!("unmount {}: {e}", root.display()),
            )
        }),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(VzError::new(
            ExitCode::UmountFailed,
            format!("unmount {}: {e}", root.display()),
        )),
    }
}
