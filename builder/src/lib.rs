//! vzbuild: OS templates as OCI image layouts (work in progress).
