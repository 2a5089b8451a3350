//! Checksum of a build context: cold (every file read and hashed) and warm
//! (a StatCache answers for every file, as in a fully cached rebuild); and,
//! for scale, copying the same 2,000 files into a root filesystem.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;
use strata_context::{CopyOptions, Ignore, StatCache, Tree, copy};

/// `dirs` directories of `per_dir` files of `size` bytes each.
fn make_context(root: &Path, dirs: usize, per_dir: usize, size: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("dir{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..per_dir {
            let content: Vec<u8> = (0..size).map(|i| (i * 31 + f * 7 + d) as u8).collect();
            std::fs::write(dir.join(format!("file{f:04}.txt")), content).unwrap();
        }
    }
    std::fs::write(root.join(".dockerignore"), "*.log\n**/node_modules\n").unwrap();
    // The cache trusts only files not changed in the last moments.
    std::thread::sleep(Duration::from_millis(200));
}

fn context(root: &Path) -> Tree {
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    Tree::context(root, Ignore::parse(&ignore).unwrap()).unwrap()
}

fn checksum_of_dot(tree: &Tree, cache: &mut StatCache) -> String {
    let sources = tree.resolve(&[".".to_string()]).unwrap();
    tree.checksum(&sources, cache).unwrap()
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    make_context(&small, 20, 100, 4096);
    let tree = context(&small);

    c.bench_function("cold checksum, 2000 x 4 KiB", |b| {
        b.iter(|| checksum_of_dot(&tree, &mut StatCache::disabled()))
    });
    let cache_file = tmp.path().join("cache-small");
    let mut cache = StatCache::load(&cache_file);
    checksum_of_dot(&tree, &mut cache);
    cache.save().unwrap();
    c.bench_function("warm checksum, 2000 files (cache loaded from disk)", |b| {
        b.iter(|| checksum_of_dot(&tree, &mut StatCache::load(&cache_file)))
    });

    c.bench_function("copy, 2000 x 4 KiB", |b| {
        let sources = tree.resolve(&[".".to_string()]).unwrap();
        b.iter_batched(
            || tempfile::tempdir_in(tmp.path()).unwrap(),
            |rootfs| {
                let fd = std::fs::File::open(rootfs.path()).unwrap();
                copy(
                    &tree,
                    &sources,
                    fd.as_fd(),
                    "/app/",
                    &CopyOptions::default(),
                )
                .unwrap();
                rootfs
            },
            BatchSize::PerIteration,
        )
    });

    let big = tmp.path().join("big");
    make_context(&big, 200, 100, 64);
    let tree = context(&big);
    let cache_file = tmp.path().join("cache-big");
    let mut cache = StatCache::load(&cache_file);
    checksum_of_dot(&tree, &mut cache);
    cache.save().unwrap();
    c.bench_function("warm checksum, 20000 files (cache loaded from disk)", |b| {
        b.iter(|| checksum_of_dot(&tree, &mut StatCache::load(&cache_file)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
