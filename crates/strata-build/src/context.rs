//! Where the build's files and Dockerfile come from: a context folder, or
//! (`build -`) a tar on stdin extracted into the build's scratch folder,
//! or a Dockerfile on stdin with an empty context.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use strata_archive::{Format, IndexWriter, apply, decompress};
use strata_context::{Ignore, StatCache, Tree};
use strata_store::Digest;

use crate::error::{BuildError, Result, invalid, io_at};
use crate::workspace::Workspace;

/// The context argument.
pub enum ContextSource {
    Dir(PathBuf),
    /// `-`: a tar (plain, gzip or zstd) or a Dockerfile, on the reader.
    Stdin,
}

/// `-f`.
pub enum DockerfileSource {
    /// `Dockerfile` in the context.
    Default,
    /// A path: as given for a context folder, inside the tar for `-`.
    Path(PathBuf),
    /// The text itself (`-f -`).
    Text(String),
}

pub(crate) struct Context {
    pub tree: Tree,
    pub dir: PathBuf,
    pub stat_cache: RefCell<StatCache>,
    pub dockerfile: String,
}

impl Context {
    pub(crate) fn open(
        source: &ContextSource,
        dockerfile: &DockerfileSource,
        stdin: &mut dyn Read,
        work: &Workspace,
        root: &Path,
        no_cache: bool,
    ) -> Result<Context> {
        let (dir, stdin_dockerfile, from_tar) = match source {
            ContextSource::Dir(d) => {
                let meta = std::fs::metadata(d).map_err(|e| {
                    invalid(format!(
                        "build context {}: {e}; give a folder, or - for a tar on stdin",
                        d.display()
                    ))
                })?;
                if !meta.is_dir() {
                    return Err(invalid(format!(
                        "build context {} is not a folder; give a folder, or - for a tar on stdin",
                        d.display()
                    )));
                }
                (d.clone(), None, false)
            }
            ContextSource::Stdin => {
                let dir = work.fresh("context")?;
                let text = extract_stdin(stdin, &dir)?;
                (dir, text, true)
            }
        };
        let dockerfile = match (dockerfile, stdin_dockerfile) {
            (DockerfileSource::Text(t), _) => t.clone(),
            (DockerfileSource::Default, Some(t)) => t,
            (DockerfileSource::Path(p), _) if from_tar => read_in_context(&dir, p)?,
            (DockerfileSource::Path(p), _) => read_text(p)?,
            (DockerfileSource::Default, None) => read_in_context(&dir, Path::new("Dockerfile"))?,
        };
        let ignore_text = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_at(dir.join(".dockerignore"))(e)),
        };
        let ignore =
            Ignore::parse(&ignore_text).map_err(|e| invalid(format!(".dockerignore: {e}")))?;
        let tree = Tree::context(&dir, ignore).map_err(io_at(&dir))?;
        let stat_cache = if no_cache || from_tar {
            StatCache::disabled()
        } else {
            let real = std::fs::canonicalize(&dir).map_err(io_at(&dir))?;
            let name = Digest::of(real.as_os_str().as_encoded_bytes());
            let caches = root.join("builder/statcache");
            std::fs::create_dir_all(&caches).map_err(io_at(&caches))?;
            StatCache::load(&caches.join(name.hex()))
        };
        Ok(Context {
            tree,
            dir,
            stat_cache: RefCell::new(stat_cache),
            dockerfile,
        })
    }
}

fn read_text(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).map_err(|e| {
        invalid(format!(
            "reading the Dockerfile {}: {e}; give its path with -f",
            p.display()
        ))
    })
}

/// A Dockerfile inside the context, never through a symlink out of it.
fn read_in_context(dir: &Path, p: &Path) -> Result<String> {
    use rustix::fs::OFlags;
    use std::os::fd::AsFd;
    let read = || -> std::io::Result<String> {
        let root = strata_archive::fsops::open_dir(dir)?;
        let fd = strata_archive::fsops::open_in_root(
            root.as_fd(),
            p.as_os_str().as_encoded_bytes(),
            OFlags::RDONLY,
        )?;
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s)?;
        Ok(s)
    };
    read().map_err(|e| {
        invalid(format!(
            "reading {} in the build context: {e}; name the Dockerfile with -f",
            p.display()
        ))
    })
}

/// Extracts a context tar from `stdin` into `dir`, or, when stdin is not a
/// tar, returns its text as the Dockerfile (the context stays empty).
fn extract_stdin(stdin: &mut dyn Read, dir: &Path) -> Result<Option<String>> {
    let mut r = BufReader::with_capacity(256 * 1024, stdin);
    let head = r.fill_buf().map_err(io_at("stdin"))?;
    let is_tar = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar".as_slice());
    if !is_tar {
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|e| invalid(format!("stdin is neither a tar nor a Dockerfile: {e}")))?;
        return Ok(Some(text));
    }
    let (_, plain) = decompress(r).map_err(|e| invalid(format!("context on stdin: {e}")))?;
    apply(
        plain,
        dir,
        Format::Plain,
        None::<&mut IndexWriter<std::io::Sink>>,
    )
    .map_err(|e| {
        BuildError::Invalid(format!(
            "context on stdin: {e}; send a tar of the context folder"
        ))
    })?;
    Ok(None)
}
