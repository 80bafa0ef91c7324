//! vzrun library (work in progress).
