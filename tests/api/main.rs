//! Integration tests: real PostgreSQL (started by scripts/test), real gRPC over sockets.

mod auth;
mod helpers;
mod import;
mod records;
mod server;
mod validation;
