//! `save`: images out as archives.
//!
//! Each layer is rebuilt byte for byte from its snapshot's files and its
//! layer index, and checked against its diff ID as it streams out, so what
//! leaves is exactly what came in. Formats:
//! - `docker-archive`: Docker 25+'s layout: an OCI image layout (blobs,
//!   `index.json`, `oci-layout`) plus `manifest.json` and `repositories`,
//!   so `docker load`, `podman load`, `skopeo` and `umoci` all read it;
//! - `oci`: an OCI image layout, as a tar or a directory.
//!
//! Nothing half-written is left visible: output goes to a temporary name
//! beside the target and is renamed into place when complete.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

use rustix::fd::AsFd;
use serde_json::json;
use strata_archive::Compression;
use strata_archive::tarstream::Time;
use strata_archive::tarwrite::{Header, TarWriter};
use strata_store::Digest;
use strata_store::digest::HashingWriter;
use strata_store::meta::images::{self as meta, LayerRow};

use crate::error::{ImageError, Result, io_at};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::source::{ANNOTATION_NAME, ANNOTATION_REF};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    DockerArchive,
    Oci,
}

/// Where an archive goes.
pub enum Target {
    File(PathBuf),
    Dir(PathBuf),
    Stdout,
}

pub struct SaveOptions {
    pub format: SaveFormat,
    pub compression: Compression,
}

/// An image to write, with the names it goes out under.
struct Outgoing {
    id: Digest,
    names: Vec<Reference>,
    layers: Vec<LayerRow>,
}

/// Where blobs and metadata files are written.
trait Sink {
    fn has(&self, name: &str) -> bool;
    /// Adds a member of `size` bytes read from `content`.
    fn add(&mut self, name: &str, size: u64, content: &mut dyn Read) -> io::Result<()>;
}

struct TarSink<W: Write> {
    tar: TarWriter<W>,
    written: HashSet<String>,
}

impl<W: Write> Sink for TarSink<W> {
    fn has(&self, name: &str) -> bool {
        self.written.contains(name)
    }
    fn add(&mut self, name: &str, size: u64, content: &mut dyn Read) -> io::Result<()> {
        let header = Header {
            mode: 0o644,
            size,
            ..Header::marker(name.as_bytes().to_vec(), Time::default())
        };
        self.tar.append(&header, content)?;
        self.written.insert(name.to_owned());
        Ok(())
    }
}

struct DirSink {
    dir: PathBuf,
}

impl Sink for DirSink {
    fn has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }
    fn add(&mut self, name: &str, size: u64, content: &mut dyn Read) -> io::Result<()> {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().expect("members live in folders"))?;
        let mut f = BufWriter::new(File::create_new(&path)?);
        let n = io::copy(&mut content.take(size), &mut f)?;
        if n != size {
            return Err(io::Error::other(format!(
                "{name}: {n} bytes, expected {size}"
            )));
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

impl Store {
    /// Writes the images `refs` name to `target`.
    pub fn save(
        &self,
        refs: &[String],
        target: &Target,
        opts: &SaveOptions,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut images: Vec<Outgoing> = Vec::new();
        for r in refs {
            let (id, tag) = self.resolve(r)?;
            let layers = self.db.read(|tx| meta::image_layers(tx, &id))?;
            match images.iter_mut().find(|i| i.id == id) {
                Some(existing) => existing.names.extend(tag),
                None => images.push(Outgoing {
                    id,
                    names: tag.into_iter().collect(),
                    layers,
                }),
            }
        }
        match target {
            Target::Stdout => {
                let out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
                self.write_tar(&images, out, opts, progress)?;
            }
            Target::File(path) => {
                strata_store::fsutil::write_streamed(
                    path,
                    |out| self.write_tar(&images, out, opts, progress).map(drop),
                    |p, e| io_at(p)(e),
                )?;
            }
            Target::Dir(path) => {
                if path.exists()
                    && std::fs::read_dir(path)
                        .map_err(io_at(path))?
                        .next()
                        .is_some()
                {
                    return Err(ImageError::Io {
                        path: path.clone(),
                        source: io::Error::other(
                            "the output directory is not empty; name a new or empty one",
                        ),
                    });
                }
                let temp = strata_store::fsutil::temp_beside(path);
                let result = std::fs::create_dir(&temp)
                    .map_err(io_at(&temp))
                    .and_then(|()| {
                        self.write_all(&images, &mut DirSink { dir: temp.clone() }, opts, progress)
                    })
                    .and_then(|()| std::fs::rename(&temp, path).map_err(io_at(path)));
                if result.is_err() {
                    let _ = strata_store::fsutil::remove_any(&temp);
                }
                result?;
            }
        }
        Ok(())
    }

    fn write_tar<W: Write>(
        &self,
        images: &[Outgoing],
        out: W,
        opts: &SaveOptions,
        progress: &dyn Progress,
    ) -> Result<W> {
        let mut sink = TarSink {
            tar: TarWriter::new(out),
            written: HashSet::new(),
        };
        self.write_all(images, &mut sink, opts, progress)?;
        let (out, _) = sink.tar.finish().map_err(io_at("archive"))?;
        Ok(out)
    }

    fn write_all(
        &self,
        images: &[Outgoing],
        sink: &mut dyn Sink,
        opts: &SaveOptions,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut index = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in images {
            let mut layer_descs = Vec::new();
            for (i, layer) in image.layers.iter().enumerate() {
                let what = format!(
                    "layer {} of {} of {}",
                    i + 1,
                    image.layers.len(),
                    image.id.short()
                );
                layer_descs.push(self.write_layer(
                    layer,
                    sink,
                    opts.compression,
                    &what,
                    progress,
                )?);
            }
            let config = self.content.read(&image.id)?;
            add_bytes(sink, &blob_name(&image.id), &config)?;
            let manifest = crate::manifest::oci_manifest(
                &image.id,
                config.len() as u64,
                &layer_descs,
                opts.compression,
            )?;
            let manifest_digest = Digest::of(&manifest);
            add_bytes(sink, &blob_name(&manifest_digest), &manifest)?;
            let descriptor = |annotations: Option<BTreeMap<&str, String>>| {
                let mut d = json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest.to_string(),
                    "size": manifest.len(),
                });
                if let Some(a) = annotations {
                    d["annotations"] = json!(a);
                }
                d
            };
            if image.names.is_empty() {
                index.push(descriptor(None));
            }
            for name in &image.names {
                index.push(descriptor(Some(BTreeMap::from([
                    (ANNOTATION_NAME, name.to_string()),
                    (ANNOTATION_REF, name.tag().unwrap_or("latest").to_owned()),
                ]))));
                repositories
                    .entry(name.familiar_repository())
                    .or_default()
                    .insert(
                        name.tag().unwrap_or("latest").to_owned(),
                        image.id.hex().to_owned(),
                    );
            }
            docker_manifest.push(json!({
                "Config": blob_name(&image.id),
                "RepoTags": image.names.iter().map(Reference::familiar).collect::<Vec<_>>(),
                "Layers": layer_descs.iter().map(|(d, _)| blob_name(d)).collect::<Vec<_>>(),
            }));
        }
        // Check the shape against the OCI types before writing it.
        let index_json = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index,
        });
        let _: oci_spec::image::ImageIndex = serde_json::from_value(index_json.clone())
            .map_err(|e| crate::error::archive("index.json", e.to_string()))?;
        if opts.format == SaveFormat::DockerArchive {
            add_bytes(
                sink,
                "manifest.json",
                &serde_json::to_vec(&docker_manifest).expect("json"),
            )?;
            add_bytes(
                sink,
                "repositories",
                &serde_json::to_vec(&repositories).expect("json"),
            )?;
        }
        add_bytes(
            sink,
            "index.json",
            &serde_json::to_vec(&index_json).expect("json"),
        )?;
        add_bytes(sink, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(())
    }

    /// Writes one layer blob (once per archive); returns its digest and size.
    fn write_layer(
        &self,
        layer: &LayerRow,
        sink: &mut dyn Sink,
        compression: Compression,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(Digest, u64)> {
        let snapshots = self.snapshots()?;
        let files = snapshots.files(&layer.chain_id.to_string())?;
        let files = strata_archive::fsops::open_dir(&files).map_err(io_at(&files))?;
        let index = self.content.open_blob(&layer.tar_index)?;
        progress.start(what, Some(layer.tar_size));
        let check = |digest: Digest| {
            if digest == layer.diff_id {
                Ok(())
            } else {
                Err(ImageError::Digest {
                    what: format!("{what}: rebuilt layer"),
                    expected: layer.diff_id.clone(),
                    actual: digest,
                })
            }
        };
        if compression == Compression::None {
            let name = blob_name(&layer.diff_id);
            if !sink.has(&name) {
                // Stream straight through, hashing: the digest must come out right.
                let (mut reader, handle) = rebuild_pipe(index, files, layer.tar_size)?;
                sink.add(&name, layer.tar_size, &mut reader)
                    .map_err(io_at(&name))?;
                check(handle.join().expect("rebuild thread panicked")?)?;
            }
            progress.finish(what);
            return Ok((layer.diff_id.clone(), layer.tar_size));
        }
        // Compressed: the digest and size are only known afterwards, so
        // compress into a scratch file first.
        let tmp = self
            .layout
            .tmp()
            .join(format!("layer-{}", strata_store::fsutil::random_hex(8)));
        let result = (|| {
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_at(&tmp))?;
            let blob = HashingWriter::new(BufWriter::new(file));
            let mut diff = HashingWriter::new(compressor(compression, blob).map_err(io_at(&tmp))?);
            strata_archive::rebuild(&index, files.as_fd(), &mut diff)?;
            let (encoder, diff_digest, _) = diff.finish();
            check(diff_digest)?;
            let blob = encoder.finish().map_err(io_at(&tmp))?;
            let (file, digest, size) = blob.finish();
            let mut file = file.into_inner().map_err(|e| io_at(&tmp)(e.into_error()))?;
            let name = blob_name(&digest);
            if !sink.has(&name) {
                file.rewind().map_err(io_at(&tmp))?;
                sink.add(&name, size, &mut file).map_err(io_at(&name))?;
            }
            Ok((digest, size))
        })();
        let _ = std::fs::remove_file(&tmp);
        progress.finish(what);
        result
    }
}

/// A layer being rebuilt on a thread, read through a pipe, its diff digest
/// returned by the thread.
type RebuildHandle = std::thread::JoinHandle<Result<Digest>>;

fn rebuild_pipe(
    index: File,
    files: rustix::fd::OwnedFd,
    size: u64,
) -> Result<(impl Read, RebuildHandle)> {
    let (reader, writer) = rustix::pipe::pipe().map_err(|e| io_at("pipe")(e.into()))?;
    let handle = std::thread::spawn(move || -> Result<Digest> {
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, File::from(writer)));
        strata_archive::rebuild(&index, files.as_fd(), &mut out)?;
        let (w, digest, n) = out.finish();
        w.into_inner().map_err(|e| io_at("pipe")(e.into_error()))?;
        if n != size {
            return Err(crate::error::archive(
                "layer",
                format!("rebuilt {n} bytes, expected {size}"),
            ));
        }
        Ok(digest)
    });
    Ok((File::from(reader), handle))
}

/// Writes `out` through the chosen compression.
fn compressor<W: Write + 'static>(c: Compression, out: W) -> io::Result<Encoder<W>> {
    Ok(match c {
        Compression::None => Encoder::None(out),
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::default(),
        )),
        Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(out, 3)?),
    })
}

enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

fn add_bytes(sink: &mut dyn Sink, name: &str, bytes: &[u8]) -> Result<()> {
    if sink.has(name) {
        return Ok(());
    }
    sink.add(name, bytes.len() as u64, &mut &bytes[..])
        .map_err(io_at(name))
}
