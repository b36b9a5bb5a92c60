//! Generates the gRPC code and the reflection descriptor set from `proto/`
//! with `protox` (a pure-Rust protobuf compiler), so the build needs nothing
//! beyond crates.io: no system `protoc`. One descriptor set holds every file
//! of package `accountlink.v1` (and the well-known types they import).
//!
//! It also reruns when `migrations/` changes: `sqlx::migrate!` embeds the
//! migration files at compile time, and on stable Rust nothing else tells
//! cargo to rebuild when one is added or edited (sqlx's `migrate!` docs).

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/accountlink/v1/account_link.proto",
        "proto/accountlink/v1/audit.proto",
        "proto/accountlink/v1/resource_share.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("accountlink_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
