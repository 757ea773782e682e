//! cxmetrics: a gRPC service that records customer-experience data (survey answers, support
//! interactions, customers) in PostgreSQL and answers metric questions about it.
//!
//! Data flows one way: `grpc` (proto <-> domain) -> `domain` (validated types, no I/O) ->
//! `storage` (SQL) and back. `startup` wires the pieces into a server; `config` and
//! `telemetry` are read once at start.

pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod startup;
pub mod storage;
pub mod telemetry;

/// Code generated from `proto/cxmetrics/v1` by `build.rs`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("cxmetrics.v1");

    /// The encoded file descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("cxmetrics_descriptor");
}

pub use error::Error;
