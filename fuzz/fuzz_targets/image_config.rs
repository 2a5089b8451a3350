//! Image configs and `--change` lines from untrusted input never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_image::changes::apply_changes;
use strata_image::config::ConfigView;

fuzz_target!(|data: &[u8]| {
    let _ = ConfigView::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let mut config = serde_json::Map::new();
        let changes: Vec<String> = text.lines().map(str::to_owned).collect();
        let _ = apply_changes(&mut config, &changes);
    }
});
