//! Expected-value builders and the comparison every `check` helper uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_mountspec::{MountSpec, Propagation, Relabel, Source, SpecError};

/// A table row's expectation: the whole spec, or the exact error text.
pub type Want = Result<MountSpec, String>;

/// The exact error message `text`.
pub fn err(text: impl Into<String>) -> Want {
    Err(text.into())
}

/// Fails with the input in the message unless `got` is exactly `want`.
pub fn compare(input: &str, got: Result<MountSpec, SpecError>, want: Want) {
    match (got, want) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "input {input:?}"),
        (Err(got), Err(want)) => assert_eq!(got.to_string(), want, "input {input:?}"),
        (got, want) => panic!("input {input:?}\n got: {got:?}\nwant: {want:?}"),
    }
}

fn spec(source: Source, target: &str) -> MountSpec {
    MountSpec {
        source,
        target: target.to_owned(),
        readonly: false,
        relabel: None,
    }
}

fn volume(name: Option<&str>, target: &str) -> MountSpec {
    let source = Source::Volume {
        name: name.map(str::to_owned),
        driver: None,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        nocopy: false,
        subpath: None,
    };
    spec(source, target)
}

pub fn named(name: &str, target: &str) -> MountSpec {
    volume(Some(name), target)
}

pub fn anonymous(target: &str) -> MountSpec {
    volume(None, target)
}

/// A bind as `-v` makes it: `rprivate`, creating a missing source.
pub fn bind(path: impl Into<PathBuf>, target: &str) -> MountSpec {
    let source = Source::Bind {
        path: path.into(),
        propagation: Propagation::Rprivate,
        create_source: true,
    };
    spec(source, target)
}

pub fn tmpfs(target: &str) -> MountSpec {
    let source = Source::Tmpfs {
        size: None,
        mode: None,
        options: Vec::new(),
    };
    spec(source, target)
}

/// Changes to a built spec; each panics on a source of the wrong kind.
pub trait Tweak: Sized {
    fn ro(self) -> Self;
    fn relabel(self, relabel: Relabel) -> Self;
    fn nocopy(self) -> Self;
    fn driver(self, driver: &str) -> Self;
    fn label(self, key: &str, value: &str) -> Self;
    fn opt(self, key: &str, value: &str) -> Self;
    fn subpath(self, subpath: &str) -> Self;
    fn propagation(self, propagation: Propagation) -> Self;
    fn create_source(self, create: bool) -> Self;
    fn size(self, size: u64) -> Self;
    fn mode(self, mode: u32) -> Self;
    fn options(self, options: &[&str]) -> Self;
}

impl Tweak for MountSpec {
    fn ro(mut self) -> Self {
        self.readonly = true;
        self
    }

    fn relabel(mut self, relabel: Relabel) -> Self {
        self.relabel = Some(relabel);
        self
    }

    fn nocopy(mut self) -> Self {
        let Source::Volume { nocopy, .. } = &mut self.source else {
            panic!("not a volume")
        };
        *nocopy = true;
        self
    }

    fn driver(mut self, name: &str) -> Self {
        let Source::Volume { driver, .. } = &mut self.source else {
            panic!("not a volume")
        };
        *driver = Some(name.to_owned());
        self
    }

    fn label(mut self, key: &str, value: &str) -> Self {
        let Source::Volume { labels, .. } = &mut self.source else {
            panic!("not a volume")
        };
        labels.insert(key.to_owned(), value.to_owned());
        self
    }

    fn opt(mut self, key: &str, value: &str) -> Self {
        let Source::Volume { options, .. } = &mut self.source else {
            panic!("not a volume")
        };
        options.insert(key.to_owned(), value.to_owned());
        self
    }

    fn subpath(mut self, path: &str) -> Self {
        let Source::Volume { subpath, .. } = &mut self.source else {
            panic!("not a volume")
        };
        *subpath = Some(path.to_owned());
        self
    }

    fn propagation(mut self, mode: Propagation) -> Self {
        let Source::Bind { propagation, .. } = &mut self.source else {
            panic!("not a bind")
        };
        *propagation = mode;
        self
    }

    fn create_source(mut self, create: bool) -> Self {
        let Source::Bind { create_source, .. } = &mut self.source else {
            panic!("not a bind")
        };
        *create_source = create;
        self
    }

    fn size(mut self, bytes: u64) -> Self {
        let Source::Tmpfs { size, .. } = &mut self.source else {
            panic!("not a tmpfs")
        };
        *size = Some(bytes);
        self
    }

    fn mode(mut self, bits: u32) -> Self {
        let Source::Tmpfs { mode, .. } = &mut self.source else {
            panic!("not a tmpfs")
        };
        *mode = Some(bits);
        self
    }

    fn options(mut self, given: &[&str]) -> Self {
        let Source::Tmpfs { options, .. } = &mut self.source else {
            panic!("not a tmpfs")
        };
        *options = given.iter().map(|o| o.to_string()).collect();
        self
    }
}

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
