//! Image references: parsing arbitrary text never panics, and a parsed
//! reference prints as text that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_image::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = text.parse::<Reference>() {
        let again: Reference = r.to_string().parse().expect("printed reference parses");
        assert_eq!(again.to_string(), r.to_string());
        let _ = r.familiar();
    }
});
