//! `vzrun-setup`: the createContainer hook that finishes a container's mounts (see
//! `mountsetup.rs`). Kept apart from the vzrun binary so each create that needs it pays
//! for a small program, not for loading the whole runtime again.

#[allow(dead_code)] // the library half (argument building) is used by vzrun, not here
#[path = "../mountsetup.rs"]
mod mountsetup;

use std::io::Read;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let setup = match mountsetup::MountSetup::from_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vzrun-setup: {e}");
            std::process::exit(2);
        }
    };
    // The container state arrives on stdin, as for every hook; it is not needed.
    let mut state = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut state);
    if let Err(e) = mountsetup::run(&setup) {
        eprintln!("vzrun-setup: {e}");
        std::process::exit(1);
    }
}
