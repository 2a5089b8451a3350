//! Reconciling the store: what is on disk against what the database says.
//! Run in full by `system check [--repair]`, and (without re-hashing blobs)
//! by every command that writes, when no other process is working, so what
//! a killed run left behind is cleared by the next one.

use std::collections::HashSet;

use strata_store::Digest;
use strata_store::meta::images as meta;

use crate::error::Result;
use crate::init_layer::remove_layer_snapshot;
use crate::store::Store;
use crate::unpack::LAYER_LABEL;

#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Fix what can be fixed (only under the exclusive store lock).
    pub repair: bool,
    /// Re-hash every blob.
    pub verify_digests: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub repaired: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
}

impl Report {
    fn note(&mut self, what: String, repaired: bool) {
        self.problems.push(Problem { what, repaired });
    }

    /// Problems still there.
    pub fn unresolved(&self) -> usize {
        self.problems.iter().filter(|p| !p.repaired).count()
    }
}

impl Store {
    /// `system check`. With `repair`, the caller holds the exclusive lock.
    pub fn check(&self, opts: &CheckOptions) -> Result<Report> {
        let repair = opts.repair;
        let mut report = Report::default();

        for ingest in self.content.ingests()? {
            if repair {
                strata_store::fsutil::remove_any(&ingest).map_err(crate::error::io_at(&ingest))?;
            }
            report.note(format!("interrupted write {}", ingest.display()), repair);
        }
        let tmp = self.layout.tmp();
        for entry in std::fs::read_dir(&tmp).map_err(crate::error::io_at(&tmp))? {
            let path = entry.map_err(crate::error::io_at(&tmp))?.path();
            if repair {
                // An init layer being made is mounted here.
                strata_snapshot::mount::unmount(&path).map_err(crate::error::io_at(&path))?;
                strata_store::fsutil::remove_any(&path).map_err(crate::error::io_at(&path))?;
            }
            report.note(
                format!("leftover temporary file {}", path.display()),
                repair,
            );
        }
        for stray in self.content.strays()? {
            if repair {
                strata_store::fsutil::remove_any(&stray).map_err(crate::error::io_at(&stray))?;
            }
            report.note(
                format!("stray file {} among blobs", stray.display()),
                repair,
            );
        }

        if repair {
            // Not a problem: what removals left to delete later.
            let trash = self.layout.trash();
            self.trash().empty().map_err(crate::error::io_at(&trash))?;
        }
        let has_driver = self.recorded_driver()?.is_some();
        if has_driver {
            for p in self.snapshots()?.check(repair)? {
                report.note(p.what, p.repaired);
            }
        }

        // Blobs the database needs, present and (optionally) intact.
        let mut bad_blobs: HashSet<Digest> = HashSet::new();
        for blob in self.db.read(|tx| meta::referenced_blobs(tx))? {
            let problem = if !self.content.contains(&blob) {
                Some("is missing")
            } else if opts.verify_digests && self.content.verify(&blob).is_err() {
                Some("is corrupt (its content no longer matches its digest)")
            } else {
                None
            };
            if let Some(p) = problem {
                report.note(format!("blob {blob} {p}"), false);
                bad_blobs.insert(blob);
            }
        }

        // Layers whose files are gone, and the images that need them.
        let layers = self.db.read(|tx| meta::layers(tx))?;
        let mut broken: HashSet<Digest> = HashSet::new();
        if has_driver {
            let snapshots = self.snapshots()?;
            for l in &layers {
                if snapshots.stat(&l.chain_id.to_string()).is_err() {
                    report.note(format!("layer {} has no files", l.chain_id), false);
                    broken.insert(l.chain_id.clone());
                }
            }
        }
        for image in self.images()? {
            let chain = self.db.read(|tx| meta::image_layers(tx, &image.row.id))?;
            let needs_bad = chain.iter().any(|l| broken.contains(&l.chain_id))
                || bad_blobs.contains(&image.row.id)
                || bad_blobs.contains(&image.row.manifest);
            if needs_bad {
                if repair {
                    self.db.write(|tx| meta::delete_image(tx, &image.row.id))?;
                }
                let names: Vec<String> = image.names.iter().map(|n| n.familiar()).collect();
                report.note(
                    format!(
                        "image {} ({}) is damaged and must be loaded again",
                        image.row.id.short(),
                        if names.is_empty() {
                            "untagged".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                    repair,
                );
            }
        }
        if repair {
            self.db.write(|tx| {
                for chain in &broken {
                    if meta::layer(tx, chain)?.is_some()
                        && !tx.query_row(
                            "SELECT EXISTS (SELECT 1 FROM image_layers WHERE layer = ?1)",
                            [chain],
                            |r| r.get::<_, bool>(0),
                        )?
                    {
                        tx.execute("UPDATE layers SET parent = NULL WHERE parent = ?1", [chain])?;
                        meta::delete_layer(tx, chain)?;
                    }
                }
                Ok(())
            })?;
            for blob in &bad_blobs {
                self.content.delete(blob)?;
            }
        }

        if has_driver {
            for key in self.stale_mounts()? {
                if repair {
                    self.release_mount(&key)?;
                }
                report.note(format!("image mount {key} is no longer mounted"), repair);
            }
        }

        // Committed layer snapshots no layer record owns (a crash between
        // commit and record).
        if has_driver {
            let snapshots = self.snapshots()?;
            let known: HashSet<String> = self
                .db
                .read(|tx| meta::layers(tx))?
                .iter()
                .map(|l| l.chain_id.to_string())
                .collect();
            let mut orphans = Vec::new();
            snapshots.walk(&mut |info| {
                if info.kind == strata_snapshot::Kind::Committed
                    && info.labels.get(LAYER_LABEL).is_some_and(|v| v == "layer")
                    && !known.contains(&info.key)
                {
                    orphans.push(info.key.clone());
                }
            })?;
            for key in orphans.iter().rev() {
                let fixed = repair && remove_layer_snapshot(snapshots, key).unwrap_or(false);
                report.note(format!("layer snapshot {key} belongs to no layer"), fixed);
            }
        }

        // What no image uses any more.
        let unused = self.db.read(|tx| meta::unreferenced_layers(tx))?;
        let referenced: HashSet<Digest> = self
            .db
            .read(|tx| meta::referenced_blobs(tx))?
            .into_iter()
            .collect();
        let orphan_blobs: Vec<Digest> = self
            .content
            .list()?
            .into_iter()
            .filter(|b| !referenced.contains(b))
            .collect();
        if repair {
            self.collect_garbage()?;
        }
        for l in unused {
            report.note(format!("layer {} is used by no image", l.chain_id), repair);
        }
        for b in orphan_blobs {
            report.note(format!("blob {b} is used by nothing"), repair);
        }
        Ok(report)
    }
}
