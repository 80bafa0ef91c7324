//! `run`: create + start; in the foreground it also waits for the container, relays its
//! terminal and signals, and deletes it afterwards (unless `--keep`).

use crate::container::create::{self, CreateOptions};
use crate::container::{delete, start};
use crate::error::Result;
use crate::foreground::{self, SignalCapture};
use crate::terminal::{self, ConsoleListener};
use crate::{spec, store, Runtime};

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    pub no_subreaper: bool,
    pub keep: bool,
}

/// Returns the exit code to exit with (0 when detached).
pub fn run(rt: &Runtime, id: &str, opts: &RunOptions) -> Result<i32> {
    if opts.detach {
        create::create(rt, id, &opts.create)?;
        if let Err(err) = start::start(rt, id) {
            let _ = delete::delete(rt, id, true);
            return Err(err);
        }
        return Ok(0);
    }

    let capture = SignalCapture::install()?;
    if !opts.no_subreaper {
        foreground::become_subreaper()?;
    }
    // A terminal without the caller's console socket: receive it ourselves and relay it.
    let wants_terminal = opts.create.console_socket.is_none()
        && spec::load_bundle(&opts.create.bundle)
            .ok()
            .and_then(|l| l.spec.process().as_ref().and_then(|p| p.terminal()))
            .unwrap_or(false);
    let console = if wants_terminal {
        store::ensure_root(&rt.root)?;
        Some(ConsoleListener::bind(terminal::private_socket_path(
            &rt.root, "tty",
        ))?)
    } else {
        None
    };
    let mut create_opts = opts.create.clone();
    if let Some(c) = &console {
        create_opts.console_socket = Some(c.path.clone());
    }

    let created = create::create(rt, id, &create_opts)?;
    let outcome = (|| {
        let master = console.as_ref().map(|c| c.receive_master()).transpose()?;
        start::start(rt, id)?;
        foreground::wait(created.pid, &capture, master)
    })();
    if !opts.keep || outcome.is_err() {
        if let Err(err) = delete::delete(rt, id, true) {
            tracing::warn!(target: "vzrun", "remove container {id} after run: {err}");
        }
    }
    outcome
}
