//! Byte sizes as `tmpfs-size` takes them: go-units' `RAMInBytes`, which
//! Docker uses for every memory-like flag, so `64m` means the same to Strata
//! as to `docker run --memory`.

use crate::SpecError;

/// 2^63, the first size an int64 cannot hold (exact as an f64).
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// A non-negative number (fractions allowed, truncated) with an optional
/// binary unit: `b`, or `k`/`m`/`g`/`t`/`p` optionally followed by `b` or
/// `ib`, any case, optionally after one space: `64m`, `1.5GiB`, `512 kb`.
pub fn parse_size(text: &str) -> Result<u64, SpecError> {
    let invalid = || SpecError::InvalidSize {
        value: text.to_owned(),
    };
    // The number ends at the last digit, dot or space; a space there is a
    // separator and belongs to neither part.
    let end = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (number, unit) = if text.as_bytes()[end] == b' ' {
        (&text[..end], &text[end + 1..])
    } else {
        (&text[..=end], &text[end + 1..])
    };
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier = unit_multiplier(unit).ok_or_else(invalid)?;
    let bytes = number * multiplier as f64;
    // Go refuses negative sizes and keeps an int64; past it Docker wraps.
    if !(0.0..I64_LIMIT).contains(&bytes) {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// `""` and `b` are bytes; otherwise a power-of-1024 letter, then nothing,
/// `b` or `ib`.
fn unit_multiplier(unit: &str) -> Option<u64> {
    if unit.len() > 3 {
        return None;
    }
    let unit = unit.to_lowercase();
    let mut chars = unit.chars();
    let power = match chars.next() {
        None => return Some(1),
        Some('b') => return chars.next().is_none().then_some(1),
        Some(letter) => "kmgtp".find(letter)? as u32 + 1,
    };
    matches!(chars.as_str(), "" | "b" | "ib").then(|| 1024u64.pow(power))
}
