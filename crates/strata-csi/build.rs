//! Generates the CSI v1 gRPC bindings from `proto/csi.proto`.
//!
//! The proto is parsed by `protox` (pure Rust), so no `protoc` binary is
//! needed. Well-known types come from protox's bundled includes and map to
//! `prost-types`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/csi.proto";
    println!("cargo:rerun-if-changed={PROTO}");

    let fds = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
