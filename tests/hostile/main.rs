//! Hostile and extreme requests against the real binary. A test binary of its own, so that
//! its 16 MiB messages and seeded rows do not share the machine with the API tests (cargo
//! runs test binaries one after another), and its memory and latency figures are its own.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod requests;
