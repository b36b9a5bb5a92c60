//! Generated protobuf and gRPC code for `accountlink.v1`, and the encoded
//! file descriptor set served by gRPC server reflection.

/// Messages, enums, client and server of package `accountlink.v1`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod pb {
    tonic::include_proto!("accountlink.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of `proto/`, for
/// `tonic_reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/accountlink_descriptor.bin"));
