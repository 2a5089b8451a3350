//! Applying arbitrary bytes as a layer: whatever happens inside the target,
//! nothing may appear beside it (no write escapes the layer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_archive::{Format, IndexWriter, apply};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("layer");
    std::fs::create_dir(&target).unwrap();
    let _ = apply(data, &target, Format::Plain, None::<&mut IndexWriter<std::fs::File>>);
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "something was written outside the layer");
});
