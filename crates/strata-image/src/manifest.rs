//! The OCI manifests Strata writes.

use oci_spec::image::{DescriptorBuilder, ImageManifestBuilder, MediaType};
use strata_archive::Compression;
use strata_store::Digest;

use crate::error::{Result, archive};

/// An OCI image manifest for a config and layer blobs (digest, size) in
/// the given compression. Sorted keys: the same image is the same bytes.
pub fn oci_manifest(
    config: &Digest,
    config_size: u64,
    layers: &[(Digest, u64)],
    c: Compression,
) -> Result<Vec<u8>> {
    let media = match c {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    let bad = |e: oci_spec::OciSpecError| archive("manifest", e.to_string());
    let desc = |media: MediaType, d: &Digest, size: u64| {
        DescriptorBuilder::default()
            .media_type(media)
            .digest(
                oci_spec::image::Digest::try_from(d.to_string()).expect("our digests are valid"),
            )
            .size(size)
            .build()
            .map_err(bad)
    };
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(desc(MediaType::ImageConfig, config, config_size)?)
        .layers(
            layers
                .iter()
                .map(|(d, s)| desc(media.clone(), d, *s))
                .collect::<Result<Vec<_>>>()?,
        )
        .build()
        .map_err(bad)?;
    Ok(crate::json_bytes(&m))
}
