//! Generates the gRPC code from `proto/` with the pure-Rust `protox` compiler (no protoc),
//! and writes the file descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "proto/cxmetrics/v1/records.proto",
    "proto/cxmetrics/v1/feedback_service.proto",
    "proto/cxmetrics/v1/metrics.proto",
    "proto/cxmetrics/v1/calendar_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds migrations/ at compile time; a changed file must rebuild it.
    println!("cargo:rerun-if-changed=migrations");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("cxmetrics_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
