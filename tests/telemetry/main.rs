//! Tracing tests: the span trees the service produces, read from the SDK's in-memory exporter
//! (`spans`), and spans exported by the real binary to an OTLP/gRPC receiver (`export`), over
//! TLS too (`tls`).

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

#[allow(dead_code)]
mod collector;
mod export;
mod spans;
mod tls;
