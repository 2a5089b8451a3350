//! Reading image archives: `docker save` archives (classic and Docker 25+,
//! which is also an OCI layout) and OCI image layouts, as a tar or a
//! directory. Nothing is trusted: every blob is checked against the digest
//! and size that names it, every path must stay inside the archive, and
//! every name must be a valid reference.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;
use strata_archive::tarstream::{EntryKind, TarReader};
use strata_store::Digest;

use crate::config::{ConfigView, host_architecture};
use crate::error::{ImageError, Result, archive};
use crate::reference::Reference;

/// JSON documents larger than this are refused: they are never that big.
const MAX_JSON: u64 = 16 << 20;
pub const ANNOTATION_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF: &str = "org.opencontainers.image.ref.name";

/// One image found in an archive.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub names: Vec<Reference>,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub view: ConfigView,
    pub layers: Vec<SourceLayer>,
}

#[derive(Debug, Clone)]
pub struct SourceLayer {
    /// Where the blob lives in the archive.
    pub member: String,
    /// The blob's own digest and size, when the archive states them.
    pub blob: Option<(Digest, u64)>,
    /// The digest of the uncompressed tar, from the config.
    pub diff_id: Digest,
}

/// Where blobs are read from.
pub enum Blobs {
    Tar {
        file: File,
        /// member name -> (offset of content, size)
        members: HashMap<String, (u64, u64)>,
    },
    Dir(PathBuf),
}

/// An opened archive.
pub struct Source {
    /// How errors name the archive.
    pub label: String,
    pub blobs: Blobs,
}

/// A range of a file, read with `pread` (so several can be open at once).
pub struct Section {
    file: File,
    pos: u64,
    end: u64,
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends early",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A path inside an archive, as manifests name them: relative, no `..`.
fn archive_path(label: &str, what: &str, path: &str) -> Result<String> {
    let clean: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if path.starts_with('/') || clean.is_empty() || clean.contains(&"..") {
        return Err(archive(
            label,
            format!("{what} '{path}' is not a path inside the archive"),
        ));
    }
    Ok(clean.join("/"))
}

impl Source {
    /// Opens an archive file or an OCI layout directory.
    pub fn open(path: &Path, label: &str) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(crate::error::io_at(path))?;
        let blobs = if meta.is_dir() {
            Blobs::Dir(path.to_owned())
        } else {
            let file = File::open(path).map_err(crate::error::io_at(path))?;
            let members = index_members(&file, label, meta.len())?;
            Blobs::Tar { file, members }
        };
        Ok(Source {
            label: label.to_owned(),
            blobs,
        })
    }

    fn has(&self, name: &str) -> bool {
        match &self.blobs {
            Blobs::Tar { members, .. } => members.contains_key(name),
            Blobs::Dir(dir) => dir.join(name).is_file(),
        }
    }

    /// Opens a member for reading, with its size.
    pub fn open_member(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let missing = || archive(&self.label, format!("'{name}' is missing from the archive"));
        match &self.blobs {
            Blobs::Tar { file, members } => {
                let &(offset, size) = members.get(name).ok_or_else(missing)?;
                let file = file.try_clone().map_err(crate::error::io_at(&self.label))?;
                Ok((
                    Box::new(Section {
                        file,
                        pos: offset,
                        end: offset + size,
                    }),
                    size,
                ))
            }
            Blobs::Dir(dir) => {
                // Names were checked by `archive_path`; never follow a symlink out.
                let path = dir.join(name);
                let meta = std::fs::symlink_metadata(&path).map_err(|_| missing())?;
                if !meta.is_file() {
                    return Err(missing());
                }
                let file = File::open(&path).map_err(crate::error::io_at(&path))?;
                Ok((Box::new(BufReader::new(file)), meta.len()))
            }
        }
    }

    fn read_json(&self, name: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open_member(name)?;
        if size > MAX_JSON {
            return Err(archive(
                &self.label,
                format!("'{name}' is {size} bytes, too large to be metadata"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        reader
            .take(MAX_JSON)
            .read_to_end(&mut buf)
            .map_err(|e| archive(&self.label, format!("reading '{name}': {e}")))?;
        Ok(buf)
    }

    /// Reads a blob named by a descriptor, checking its digest and size.
    fn read_blob(&self, digest: &Digest, size: u64, what: &str) -> Result<Vec<u8>> {
        let name = format!("blobs/sha256/{}", digest.hex());
        let bytes = self.read_json(&name)?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ImageError::Digest {
                what: format!("{}: {what} {name}", self.label),
                expected: digest.clone(),
                actual,
            });
        }
        if bytes.len() as u64 != size {
            return Err(archive(
                &self.label,
                format!(
                    "{what} {name} is {} bytes, its descriptor says {size}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// The images in the archive.
    pub fn images(&self) -> Result<Vec<SourceImage>> {
        if self.has("manifest.json") {
            self.docker_images()
        } else if self.has("index.json") {
            self.oci_images()
        } else {
            Err(archive(
                &self.label,
                "neither manifest.json (docker-archive) nor index.json (OCI layout) found; is this an image archive?",
            ))
        }
    }

    fn config(&self, bytes: Vec<u8>, what: &str) -> Result<(Vec<u8>, Digest, ConfigView)> {
        let view =
            ConfigView::parse(&bytes).map_err(|e| archive(&self.label, format!("{what}: {e}")))?;
        let digest = Digest::of(&bytes);
        Ok((bytes, digest, view))
    }

    fn docker_images(&self) -> Result<Vec<SourceImage>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let bytes = self.read_json("manifest.json")?;
        let entries: Vec<Entry> = serde_json::from_slice(&bytes)
            .map_err(|e| archive(&self.label, format!("manifest.json is not valid: {e}")))?;
        if entries.is_empty() {
            return Err(archive(&self.label, "manifest.json lists no images"));
        }
        let mut images = Vec::new();
        for e in entries {
            let config_path = archive_path(&self.label, "manifest.json config", &e.config)?;
            let (config, config_digest, view) =
                self.config(self.read_json(&config_path)?, &config_path)?;
            // A config named by its digest must match it.
            let named = config_path
                .strip_prefix("blobs/sha256/")
                .or_else(|| config_path.strip_suffix(".json"))
                .and_then(|h| Digest::from_hex(h).ok());
            if let Some(named) = named
                && named != config_digest
            {
                return Err(ImageError::Digest {
                    what: format!("{}: config {config_path}", self.label),
                    expected: named,
                    actual: config_digest,
                });
            }
            if e.layers.len() != view.rootfs.diff_ids.len() {
                return Err(archive(
                    &self.label,
                    format!(
                        "manifest.json lists {} layers but the config has {} diff IDs",
                        e.layers.len(),
                        view.rootfs.diff_ids.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in e.layers.iter().zip(&view.rootfs.diff_ids) {
                let member = archive_path(&self.label, "manifest.json layer", path)?;
                if !self.has(&member) {
                    return Err(archive(
                        &self.label,
                        format!("layer '{member}' is missing from the archive"),
                    ));
                }
                // Docker 25+ names blobs by digest: then the blob must match it.
                let blob = member
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_hex(h).ok())
                    .map(|d| (d, self.member_size(&member)));
                layers.push(SourceLayer {
                    member,
                    blob,
                    diff_id: diff_id.clone(),
                });
            }
            let names = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| self.name(t))
                .collect::<Result<Vec<_>>>()?;
            images.push(SourceImage {
                names,
                config,
                config_digest,
                view,
                layers,
            });
        }
        Ok(images)
    }

    fn member_size(&self, name: &str) -> u64 {
        match &self.blobs {
            Blobs::Tar { members, .. } => members.get(name).map_or(0, |m| m.1),
            Blobs::Dir(dir) => std::fs::metadata(dir.join(name)).map_or(0, |m| m.len()),
        }
    }

    fn name(&self, s: &str) -> Result<Reference> {
        s.parse::<Reference>()
            .map_err(|e| archive(&self.label, format!("image name '{s}': {e}")))
    }

    fn oci_images(&self) -> Result<Vec<SourceImage>> {
        if self.has("oci-layout") {
            let layout = self.read_json("oci-layout")?;
            let v: serde_json::Value = serde_json::from_slice(&layout)
                .map_err(|e| archive(&self.label, format!("oci-layout is not valid: {e}")))?;
            if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                return Err(archive(
                    &self.label,
                    "oci-layout has an unsupported imageLayoutVersion (want 1.0.0)",
                ));
            }
        }
        let index: ImageIndex = serde_json::from_slice(&self.read_json("index.json")?)
            .map_err(|e| archive(&self.label, format!("index.json is not valid: {e}")))?;
        let mut images: Vec<SourceImage> = Vec::new();
        for desc in index.manifests() {
            let names = self.descriptor_names(desc)?;
            let manifest_desc = self.resolve_manifest(desc, 0)?;
            let image = self.oci_image(&manifest_desc)?;
            match images
                .iter_mut()
                .find(|i| i.config_digest == image.config_digest)
            {
                Some(existing) => existing.names.extend(names),
                None => images.push(SourceImage { names, ..image }),
            }
        }
        if images.is_empty() {
            return Err(archive(&self.label, "index.json lists no images"));
        }
        Ok(images)
    }

    fn descriptor_names(&self, desc: &Descriptor) -> Result<Vec<Reference>> {
        let Some(ann) = desc.annotations() else {
            return Ok(Vec::new());
        };
        // containerd's full name wins over ref.name, as podman decides.
        match ann.get(ANNOTATION_NAME).or_else(|| ann.get(ANNOTATION_REF)) {
            Some(name) => Ok(vec![self.name(name)?]),
            None => Ok(Vec::new()),
        }
    }

    fn digest_of(&self, desc: &Descriptor) -> Result<Digest> {
        desc.digest()
            .to_string()
            .parse()
            .map_err(|e| archive(&self.label, format!("descriptor: {e}")))
    }

    /// Follows nested indexes to the manifest for this platform.
    fn resolve_manifest(&self, desc: &Descriptor, depth: u32) -> Result<Descriptor> {
        match desc.media_type() {
            MediaType::ImageIndex => {}
            MediaType::Other(t)
                if t == "application/vnd.docker.distribution.manifest.list.v2+json" => {}
            _ => return Ok(desc.clone()),
        }
        if depth > 4 {
            return Err(archive(&self.label, "image indexes nest too deeply"));
        }
        let bytes = self.read_blob(&self.digest_of(desc)?, desc.size(), "index")?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| archive(&self.label, format!("nested index is not valid: {e}")))?;
        let ours = index.manifests().iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == host_architecture()
            })
        });
        let chosen = match (ours, index.manifests().as_slice()) {
            (Some(m), _) => m,
            (None, [only]) => only,
            _ => {
                return Err(archive(
                    &self.label,
                    format!("no image for linux/{} in the index", host_architecture()),
                ));
            }
        };
        self.resolve_manifest(chosen, depth + 1)
    }

    fn oci_image(&self, desc: &Descriptor) -> Result<SourceImage> {
        let digest = self.digest_of(desc)?;
        let bytes = self.read_blob(&digest, desc.size(), "manifest")?;
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| archive(&self.label, format!("manifest {digest} is not valid: {e}")))?;
        let config_desc = manifest.config();
        let config_digest = self.digest_of(config_desc)?;
        let config_bytes = self.read_blob(&config_digest, config_desc.size(), "config")?;
        let (config, config_digest, view) = self.config(config_bytes, "config")?;
        if manifest.layers().len() != view.rootfs.diff_ids.len() {
            return Err(archive(
                &self.label,
                format!(
                    "manifest {digest} lists {} layers but its config has {} diff IDs",
                    manifest.layers().len(),
                    view.rootfs.diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in manifest.layers().iter().zip(&view.rootfs.diff_ids) {
            check_layer_type(&self.label, l.media_type())?;
            let d = self.digest_of(l)?;
            layers.push(SourceLayer {
                member: format!("blobs/sha256/{}", d.hex()),
                blob: Some((d, l.size())),
                diff_id: diff_id.clone(),
            });
        }
        Ok(SourceImage {
            names: Vec::new(),
            config,
            config_digest,
            view,
            layers,
        })
    }
}

fn check_layer_type(label: &str, t: &MediaType) -> Result<()> {
    let ok = match t {
        MediaType::ImageLayer
        | MediaType::ImageLayerGzip
        | MediaType::ImageLayerZstd
        | MediaType::ImageLayerNonDistributable
        | MediaType::ImageLayerNonDistributableGzip
        | MediaType::ImageLayerNonDistributableZstd => true,
        MediaType::Other(s) => s.starts_with("application/vnd.docker.image.rootfs."),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(archive(
            label,
            format!("unsupported layer media type '{t}'"),
        ))
    }
}

/// Lists an archive's regular-file members (content offset and size),
/// seeking past their content.
fn index_members(file: &File, label: &str, len: u64) -> Result<HashMap<String, (u64, u64)>> {
    let mut tar = TarReader::new(BufReader::new(
        file.try_clone().map_err(crate::error::io_at(label))?,
    ));
    let mut members = HashMap::new();
    loop {
        let entry = tar
            .next_entry()
            .map_err(|e| archive(label, format!("not a readable tar archive: {e}")))?;
        let Some(entry) = entry else { break };
        tar.clear_raw();
        if entry.kind == EntryKind::Regular {
            let offset = tar.offset();
            if offset + entry.size > len {
                let name = String::from_utf8_lossy(&entry.path);
                return Err(archive(
                    label,
                    format!("the archive is truncated: '{name}' ends past the end of the file"),
                ));
            }
            let name = String::from_utf8_lossy(&entry.path);
            let clean: Vec<&str> = name
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            members.insert(clean.join("/"), (offset, entry.size));
        }
        tar.skip_content()
            .map_err(|e| archive(label, format!("not a readable tar archive: {e}")))?;
    }
    Ok(members)
}
