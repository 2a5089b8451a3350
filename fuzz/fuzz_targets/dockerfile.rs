//! Parsing arbitrary text as a Dockerfile, and as one ONBUILD trigger, then
//! expanding every instruction with no variables set: errors are fine,
//! panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dockerfile::{parse, parse_instruction};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let empty = |_: &str| None;
    if let Ok(file) = parse(text) {
        for ins in file.stages.iter().flat_map(|s| &s.instructions) {
            let _ = ins.text();
            let _ = ins.stage_refs();
            let _ = ins.expand(&empty);
        }
        for stage in &file.stages {
            let _ = file.stage_index(stage.name.as_deref().unwrap_or("0"));
        }
    }
    for escape in ['\\', '`'] {
        if let Ok(ins) = parse_instruction(text, escape) {
            let _ = ins.expand(&empty);
        }
    }
});
