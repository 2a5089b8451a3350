//! COPY and ADD: files from the context (or another stage or image) into
//! a new layer, keyed by a checksum of their content and metadata, never
//! their mtimes. ADD also unpacks local tar archives; it cannot fetch
//! URLs, since builds here have no network to fetch them with.

use std::os::fd::AsFd;

use strata_context::{CopyOptions, StatCache, Tree};
use strata_dockerfile::CopySpec;
use strata_image::build_cache::BuildState;
use strata_snapshot::mount::Mounted;
use strata_snapshot::{Options, mount};
use strata_store::Digest;

use crate::error::{Result, invalid, io_at};
use crate::exec::{StageRun, join_path};
use crate::{Builder, state};

/// The files of another stage or image for `--from`.
struct View<'s> {
    /// None for a state without layers (an empty folder).
    _pin: Option<Pin<'s>>,
    tree: Tree,
}

/// A read-only view snapshot and its mount; unmounted and removed when
/// dropped.
struct Pin<'s> {
    snapshots: &'s dyn strata_snapshot::Snapshotter,
    key: String,
    mounted: Option<Mounted>,
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        drop(self.mounted.take());
        if let Err(e) = self.snapshots.remove(&self.key) {
            tracing::warn!("removing the build view {}: {e}", self.key);
        }
    }
}

impl Builder<'_, '_> {
    pub(crate) fn copy(&self, run: &mut StageRun, spec: &CopySpec, add: bool) -> Result<bool> {
        let kw = if add { "ADD" } else { "COPY" };
        if add && let Some(url) = spec.sources.iter().find(|s| is_remote(s)) {
            return Err(invalid(format!(
                "ADD {url}: fetching a URL needs network access, which strata builds do not have; download it into the build context and COPY it"
            )));
        }
        if spec.checksum.is_some() {
            return Err(invalid(
                "ADD --checksum applies only to URLs, which strata builds cannot fetch",
            ));
        }
        let view = match &spec.from {
            Some(from) => Some(self.view(&self.source_state(from)?)?),
            None => None,
        };
        let tree = view.as_ref().map_or(&self.context.tree, |v| &v.tree);
        let sources = if spec.sources.is_empty() {
            Vec::new()
        } else {
            tree.resolve(&spec.sources)?
        };
        let sum = if view.is_some() {
            tree.checksum(&sources, &mut StatCache::disabled())?
        } else {
            tree.checksum(&sources, &mut self.context.stat_cache.borrow_mut())?
        };
        let inline = Digest::of(
            spec.heredocs
                .iter()
                .map(|h| format!("{}\0{}\0", h.name, h.content))
                .collect::<String>()
                .as_bytes(),
        );
        let dest = dest_path(&run.workdir(), &spec.dest);
        let key_text = format!(
            "{kw}\nfrom={:?}\nchown={:?}\nchmod={:?}\nsum={sum}\ninline={inline}\ndest={dest}",
            spec.from, spec.chown, spec.chmod
        );
        let created_by = format!(
            "/bin/sh -c #(nop) {kw} files:{} in {dest} ",
            sum.trim_start_matches("sha256:")
        );
        let chmod = spec
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8).map_err(|_| {
                    invalid(format!(
                        "{kw} --chmod={m}: give octal permission bits like 755"
                    ))
                })
            })
            .transpose()?;
        self.layer(run, &key_text, &created_by, |rootfs| {
            let chown = match &spec.chown {
                Some(c) => {
                    let ids = strata_container::user::resolve(rootfs, c)?;
                    Some((ids.uid, ids.gid))
                }
                None => None,
            };
            let opts = CopyOptions {
                chown,
                chmod,
                extract_archives: add,
            };
            let root = strata_archive::fsops::open_dir(rootfs).map_err(io_at(rootfs))?;
            if !sources.is_empty() {
                strata_context::copy(tree, &sources, root.as_fd(), &dest, &opts)?;
            }
            for h in &spec.heredocs {
                strata_context::write_inline(
                    root.as_fd(),
                    &dest,
                    &h.name,
                    h.content.as_bytes(),
                    &opts,
                )?;
            }
            Ok(())
        })
    }

    /// `--from=`: an earlier stage (by name or index) or an image.
    fn source_state(&self, from: &str) -> Result<BuildState> {
        if let Some(i) = self.df.stage_index(from) {
            return self.stages[i].clone().ok_or_else(|| {
                invalid(format!(
                    "--from={from} names a stage that is not built before this one"
                ))
            });
        }
        self.image_state(from, "--from")
    }

    fn view(&self, st: &BuildState) -> Result<View<'_>> {
        let snapshots = self.store.snapshots()?;
        let dir = self.work.fresh("from")?;
        let pin = match state::top_layer(st) {
            None => None,
            Some(top) => {
                let key = format!("build-view-{}", strata_store::fsutil::random_hex(8));
                let opts = Options {
                    labels: [(
                        strata_image::unpack::LAYER_LABEL.to_owned(),
                        "build".to_owned(),
                    )]
                    .into(),
                    transient: true,
                };
                let mounts = snapshots.view(&key, Some(&top.to_string()), &opts)?;
                let mut pin = Pin {
                    snapshots,
                    key,
                    mounted: None,
                };
                pin.mounted = Some(mount::mount(&mounts, &dir)?);
                Some(pin)
            }
        };
        // Opened after the mount, so the tree sees the mounted files.
        let tree = Tree::rootfs(&dir).map_err(io_at(&dir))?;
        Ok(View { _pin: pin, tree })
    }
}

/// ADD sources Strata cannot fetch.
fn is_remote(s: &str) -> bool {
    ["http://", "https://", "git@", "git://", "ssh://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// The destination inside the image: relative to WORKDIR, keeping a
/// trailing `/` (and `.`, which means the folder itself) as a directory.
pub(crate) fn dest_path(workdir: &str, dest: &str) -> String {
    let is_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = join_path(workdir, dest);
    if is_dir && joined != "/" {
        format!("{joined}/")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_paths() {
        fn check(workdir: &str, dest: &str, want: &str) {
            assert_eq!(dest_path(workdir, dest), want, "{workdir} + {dest}");
        }
        check("/", "/app", "/app");
        check("/", "/app/", "/app/");
        check("/app", ".", "/app/");
        check("/app", "./", "/app/");
        check("/app", "src", "/app/src");
        check("/app", "src/", "/app/src/");
        check("/", ".", "/");
    }

    #[test]
    fn remote_sources() {
        assert!(is_remote("https://example.com/x.tar.gz"));
        assert!(is_remote("git@github.com:a/b.git"));
        assert!(!is_remote("http.txt"));
        assert!(!is_remote("./https://x"));
    }
}
