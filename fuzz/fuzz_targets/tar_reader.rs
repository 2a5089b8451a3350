//! The tar reader on arbitrary bytes: errors, never panics or loops, and
//! content accounting never exceeds the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_archive::tarstream::TarReader;

fuzz_target!(|data: &[u8]| {
    let mut tar = TarReader::new(data);
    let mut buf = [0u8; 4096];
    while let Ok(Some(_entry)) = tar.next_entry() {
        loop {
            match tar.read_content(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(tar.offset() <= data.len() as u64);
    }
});
