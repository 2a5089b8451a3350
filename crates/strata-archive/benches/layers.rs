//! Micro-benchmarks of the layer hot paths, in memory and on the real disk:
//! applying a layer tar of many small files (with and without writing the
//! layer index), and rebuilding the tar from the index. The whole-command
//! comparison with podman, docker and `tar` is `bench/load.sh`.

use std::fs::File;
use std::io::{Cursor, Seek};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rustix::fd::AsFd;
use strata_archive::{Format, IndexWriter, apply, rebuild};

const FILES: usize = 2_000;

/// A layer like a package install: directories of small files.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..FILES {
        let data = vec![(i % 251) as u8; 512 + (i * 37) % 8192];
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, format!("usr/lib/pkg{}/file{i}", i / 100), &data[..])
            .unwrap();
    }
    b.into_inner().unwrap()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/var/tmp").unwrap()
}

fn benches(c: &mut Criterion) {
    let tar = layer();
    let mut group = c.benchmark_group("layer");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(tar.len() as u64));

    group.bench_function("apply 2000 files", |b| {
        b.iter_with_setup(scratch, |dir| {
            apply(
                Cursor::new(&tar),
                dir.path(),
                Format::Plain,
                None::<&mut IndexWriter<File>>,
            )
            .unwrap();
            dir
        })
    });

    group.bench_function("apply 2000 files + index", |b| {
        b.iter_with_setup(scratch, |dir| {
            let target = dir.path().join("fs");
            std::fs::create_dir(&target).unwrap();
            let out = File::create(dir.path().join("index")).unwrap();
            let mut index = IndexWriter::new(out, dir.path()).unwrap();
            apply(Cursor::new(&tar), &target, Format::Plain, Some(&mut index)).unwrap();
            index.finish().unwrap();
            dir
        })
    });

    // Rebuild reads back what one apply wrote.
    let dir = scratch();
    let target = dir.path().join("fs");
    std::fs::create_dir(&target).unwrap();
    let out = File::create(dir.path().join("index")).unwrap();
    let mut index = IndexWriter::new(out, dir.path()).unwrap();
    apply(Cursor::new(&tar), &target, Format::Plain, Some(&mut index)).unwrap();
    index.finish().unwrap().sync_all().unwrap();
    let mut index_file = File::open(dir.path().join("index")).unwrap();
    let files = File::open(&target).unwrap();
    group.bench_function("rebuild 2000 files", |b| {
        b.iter(|| {
            index_file.rewind().unwrap();
            let mut out = Vec::with_capacity(tar.len());
            rebuild(&index_file, files.as_fd(), &mut out).unwrap();
            assert_eq!(out.len(), tar.len());
        })
    });
    group.finish();
}

criterion_group!(layers, benches);
criterion_main!(layers);
