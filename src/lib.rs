//! cxmetrics: a gRPC and HTTP service that records customer-experience data (survey answers, support
//! interactions, customers) in PostgreSQL and answers metric questions about it.
//!
//! Calls go one way: `grpc` and `http` (thin adapters: proto or query strings <-> domain)
//! -> `app` (the use cases, transport-neutral) -> `storage` (SQL); every layer uses
//! `domain` (validated types and the metric arithmetic, no I/O). `startup` wires the pieces into a server; `config` and
//! `telemetry` are read once at start.

pub mod app;
pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
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
