//! Runtime-agnostic OCI conformance suite (work in progress).
