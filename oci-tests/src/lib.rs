//! Runtime-agnostic OCI runtime conformance suite.
//!
//! It drives any runc-compatible runtime binary through the runtime spec
//! and checks each behaviour from inside the container (the static
//! `oci-helper` in a busybox root reports what the process sees) and from
//! the host (state, cgroup files, namespaces, mounts, processes).
//! See docs/CONFORMANCE.md.

pub mod ctx;
pub mod expect;
pub mod harness;
pub mod host;
pub mod rootfs;
pub mod spec;
pub mod suites;
