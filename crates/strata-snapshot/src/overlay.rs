//! `overlay`: each snapshot holds only its own changes (`fs/`, the upper
//! directory) and is stacked on its ancestors' with overlayfs. Committed
//! layers are shared by every snapshot built on them, on disk and in the
//! page cache.

use std::io;
use std::path::{Path, PathBuf};

use crate::snapshots::Driver;
use crate::{Kind, Mount};

pub struct Overlay;

impl Driver for Overlay {
    const NAME: &'static str = "overlay";

    fn populate(&self, dir: &Path, _parent: Option<&Path>, kind: Kind) -> io::Result<()> {
        std::fs::create_dir(dir.join("fs"))?;
        if kind == Kind::Active {
            std::fs::create_dir(dir.join("work"))?;
        }
        Ok(())
    }

    fn mounts(&self, dir: &Path, kind: Kind, ancestors: &[PathBuf]) -> Vec<Mount> {
        let fs = dir.join("fs");
        let mount = match (kind, ancestors) {
            // Nothing below: the snapshot's own folder is the whole tree.
            (Kind::Active, []) => Mount::Bind {
                source: fs,
                readonly: false,
            },
            (Kind::Active, lowers) => Mount::Overlay {
                lowers: lowers.to_vec(),
                upper: Some(fs),
                work: Some(dir.join("work")),
            },
            (_, []) => Mount::Bind {
                source: fs,
                readonly: true,
            },
            (_, [only]) => Mount::Bind {
                source: only.clone(),
                readonly: true,
            },
            (_, lowers) => Mount::Overlay {
                lowers: lowers.to_vec(),
                upper: None,
                work: None,
            },
        };
        vec![mount]
    }
}
