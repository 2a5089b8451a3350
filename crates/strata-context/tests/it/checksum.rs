use std::time::{Duration, SystemTime};

use strata_context::{StatCache, Tree};

use crate::common::{Fixture, build};

const FILES: &[&str] = &[
    "a f 644 alpha",
    "d d 755",
    "d/b f 600 beta",
    "d/l l b",
    "skip f 644 excluded",
];

fn digest(tree: &Tree, src: &str, cache: &mut StatCache) -> String {
    let srcs = tree.resolve(&[src.to_string()]).unwrap();
    tree.checksum(&srcs, cache).unwrap()
}

fn set_mtime(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Changes made to a fresh copy of FILES, and whether the digest of `.`
/// should change.
#[test]
fn what_changes_the_digest() {
    type Change = fn(&std::path::Path);
    let table: &[(&str, Change, bool)] = &[
        ("nothing", |_| {}, false),
        ("touch", |c| set_mtime(&c.join("a"), 12345), false),
        (
            "rewrite same content",
            |c| std::fs::write(c.join("a"), "alpha").unwrap(),
            false,
        ),
        (
            "content",
            |c| std::fs::write(c.join("a"), "alphA").unwrap(),
            true,
        ),
        (
            "mode",
            |c| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(c.join("a"), std::fs::Permissions::from_mode(0o755))
                    .unwrap()
            },
            true,
        ),
        (
            "rename",
            |c| std::fs::rename(c.join("d/b"), c.join("d/c")).unwrap(),
            true,
        ),
        (
            "symlink target",
            |c| {
                std::fs::remove_file(c.join("d/l")).unwrap();
                std::os::unix::fs::symlink("a", c.join("d/l")).unwrap()
            },
            true,
        ),
        (
            "new empty dir",
            |c| std::fs::create_dir(c.join("e")).unwrap(),
            true,
        ),
        (
            "excluded file changes",
            |c| std::fs::write(c.join("skip"), "other").unwrap(),
            false,
        ),
        (
            "excluded file added",
            |c| std::fs::write(c.join("d/skip"), "x").unwrap(),
            false,
        ),
        // The context does not keep owners, so they do not count.
        (
            "owner",
            |c| std::os::unix::fs::chown(c.join("a"), Some(9), Some(9)).unwrap(),
            false,
        ),
    ];
    for &(name, change, changes) in table {
        for cache in [true, false] {
            let fx = Fixture::new();
            build(&fx.ctx, FILES, 0);
            let tree = fx.context("skip\n**/skip");
            let mut stats = if cache {
                StatCache::in_memory()
            } else {
                StatCache::disabled()
            };
            let before = digest(&tree, ".", &mut stats);
            assert_eq!(before, digest(&tree, ".", &mut stats), "{name}: stable");
            change(&fx.ctx);
            let after = digest(&tree, ".", &mut stats);
            assert_eq!(before != after, changes, "{name} (cache {cache})");
        }
    }
}

#[test]
fn same_tree_elsewhere_same_digest() {
    let (fx1, fx2) = (Fixture::new(), Fixture::new());
    build(&fx1.ctx, FILES, 0);
    build(&fx2.ctx, FILES, 0);
    let d1 = digest(&fx1.context(""), ".", &mut StatCache::disabled());
    let d2 = digest(&fx2.context(""), ".", &mut StatCache::disabled());
    assert_eq!(d1, d2);
    assert_eq!(d1.len(), 64);
    // A file's digest depends on the name it lands under.
    let f1 = digest(&fx1.context(""), "a", &mut StatCache::disabled());
    let f2 = digest(&fx1.context(""), "d/b", &mut StatCache::disabled());
    assert_ne!(f1, f2);
}

#[test]
fn rootfs_owners_count() {
    let fx = Fixture::new();
    build(&fx.ctx, FILES, 0);
    let tree = Tree::rootfs(&fx.ctx).unwrap();
    let before = digest(&tree, "/", &mut StatCache::disabled());
    std::os::unix::fs::chown(fx.ctx.join("a"), Some(9), Some(9)).unwrap();
    assert_ne!(before, digest(&tree, "/", &mut StatCache::disabled()));
}

#[test]
fn warm_cache_detects_same_size_rewrite() {
    let fx = Fixture::new();
    build(&fx.ctx, FILES, 0);
    let cache_file = fx.base.join("statcache");
    // Old timestamps: the cache trusts entries not changed just now.
    set_mtime(&fx.ctx.join("a"), 1_000_000);
    std::thread::sleep(Duration::from_millis(120));
    let tree = fx.context("");
    let mut cache = StatCache::load(&cache_file);
    let first = digest(&tree, ".", &mut cache);
    assert!(!cache.is_empty());
    cache.save().unwrap();

    let mut cache = StatCache::load(&cache_file);
    assert_eq!(digest(&tree, ".", &mut cache), first);
    // Same size, new mtime (and ctime): must be read again.
    std::fs::write(fx.ctx.join("a"), "ALPHA").unwrap();
    set_mtime(&fx.ctx.join("a"), 1_000_001);
    let second = digest(&tree, ".", &mut cache);
    assert_ne!(second, first);
    let fresh = digest(&tree, ".", &mut StatCache::disabled());
    assert_eq!(second, fresh);
}

#[test]
fn corrupt_cache_file_is_empty() {
    let fx = Fixture::new();
    build(&fx.ctx, FILES, 0);
    let cache_file = fx.base.join("statcache");
    std::fs::write(&cache_file, b"garbage garbage garbage garbage garbage").unwrap();
    let mut cache = StatCache::load(&cache_file);
    assert!(cache.is_empty());
    let tree = fx.context("");
    let d = digest(&tree, ".", &mut cache);
    assert_eq!(d, digest(&tree, ".", &mut StatCache::disabled()));
}
