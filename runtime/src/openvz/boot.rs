//! One boot of a system container: mount its root, prepare the files its init expects,
//! write its OCI bundle from the config, create and start it through the runtime core.

use std::os::fd::OwnedFd;

use super::ct::Ct;
use super::ctid::Ctid;
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};
use super::translate::{self, SystemContainer};
use super::{init, private};
use crate::container::{create, delete, start};
use crate::terminal::ConsoleListener;

/// Boots the container; returns its init pid and its console's master side.
pub fn boot(env: &VzEnv, ctid: Ctid) -> VzResult<(i32, OwnedFd)> {
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    let root = ct.root(env);
    let private_dir = ct.private(env);
    if !ct.is_mounted(env) {
        private::mount_ct(env, &ct)?;
    }
    let kind = init::detect(&root).ok_or_else(|| {
        VzError::new(
            ExitCode::BrokenContainer,
            format!(
                "Container {ctid} has no /sbin/init: broken private area {}",
                private_dir.display()
            ),
        )
    })?;
    ensure_machine_id(&root)?;
    let mut spec = SystemContainer {
        ctid,
        conf: &ct.conf,
        root: &root,
        init: kind,
        cgroup_path: translate::cgroup_path(ctid),
    }
    .spec();
    // Resource limits from the config (docs/RESOURCES.md).
    let (resources, unenforceable) = super::resources::boot_resources(&ct.conf, &root)?;
    super::resources::merge_into_spec(&mut spec, &resources)?;
    if !unenforceable.is_empty() {
        eprintln!(
            "container {ctid}: ignoring {}: upstream kernels cannot enforce them",
            unenforceable.join(", ")
        );
    }
    let dropped = translate::restrict_capabilities(&mut spec, &translate::host_bounding_set());
    if !dropped.is_empty() {
        eprintln!(
            "container {ctid}: the host cannot grant {}",
            dropped.join(", ")
        );
    }
    super::disk::prepare_boot(env, &ct, &mut spec)?;
    let bundle = env.bundle_dir(ctid);
    std::fs::create_dir_all(&bundle).map_err(|e| {
        VzError::new(
            ExitCode::SystemError,
            format!("create {}: {e}", bundle.display()),
        )
    })?;
    let config = serde_json::to_vec_pretty(&spec).expect("spec serializes");
    crate::store::write_atomic(&bundle.join("config.json"), &config)?;

    let rt = env.runtime();
    let id = ctid.to_string();
    let console =
        ConsoleListener::bind(super::supervisor::dir(env).join(format!("{ctid}.tty.sock")))?;
    let created = create::create(
        &rt,
        &id,
        &create::CreateOptions {
            bundle: bundle.clone(),
            console_socket: Some(console.path.clone()),
            ..Default::default()
        },
    )
    .map_err(|e| {
        VzError::runtime(
            ExitCode::StartFailed,
            &format!("create container {ctid}"),
            e,
        )
    })?;
    let started = console
        .receive_master()
        .and_then(|master| start::start(&rt, &id).map(|_| master));
    match started {
        Ok(master) => Ok((created.pid, master)),
        Err(e) => {
            let _ = delete::delete(&rt, &id, true);
            Err(VzError::runtime(
                ExitCode::StartFailed,
                &format!("start container {ctid}"),
                e,
            ))
        }
    }
}

/// systemd wants /etc/machine-id; an empty one makes it generate a transient id at
/// every boot, so give the container a stable one of its own on its first boot.
fn ensure_machine_id(root: &std::path::Path) -> VzResult<()> {
    if !root.join("etc").is_dir() {
        return Ok(());
    }
    let current = super::rootfs::read(root, "/etc/machine-id").unwrap_or_default();
    if current.trim().len() == 32 {
        return Ok(());
    }
    let mut bytes = [0u8; 16];
    getrandom(&mut bytes);
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    super::rootfs::write(root, "/etc/machine-id", &format!("{id}\n"), 0o444).map_err(|e| {
        VzError::new(
            ExitCode::SystemError,
            format!("write /etc/machine-id in the container: {e}"),
        )
    })
}

fn getrandom(buf: &mut [u8]) {
    // SAFETY: getrandom(2) into a buffer of the given length.
    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
}
