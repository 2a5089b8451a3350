//! Go's `time.ParseDuration`, which HEALTHCHECK's flags use: `30s`, `1m30s`,
//! `1.5h`, `250ms`, `0`.

use std::time::Duration;

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go caps durations at the largest signed 64-bit nanosecond count.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a duration; negative ones are returned as `Err(true)` so the caller
/// can say "cannot be less than", other failures as `Err(false)`.
pub(crate) fn parse(text: &str) -> Result<Duration, bool> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(false);
    }
    let mut nanos: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let (value, after) = component(rest).ok_or(false)?;
        nanos = nanos
            .checked_add(value)
            .filter(|n| *n <= MAX_NANOS)
            .ok_or(false)?;
        rest = after;
    }
    if negative && nanos > 0 {
        return Err(true);
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| false)
}

/// One `12.5ms` component: its nanoseconds and the text after it.
fn component(text: &str) -> Option<(u128, &str)> {
    let int_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (int, rest) = text.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            after.split_at(len)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let scale = UNITS.iter().find(|(name, _)| *name == unit)?.1;
    let whole = digits(int)?.checked_mul(scale)?;
    // Only as many fraction digits as can still change the result matter.
    let frac = &frac[..frac.len().min(20)];
    let part = digits(frac)?.checked_mul(scale)? / 10u128.pow(frac.len() as u32);
    whole.checked_add(part).map(|n| (n, rest))
}

fn digits(text: &str) -> Option<u128> {
    text.chars().try_fold(0u128, |acc, c| {
        acc.checked_mul(10)?
            .checked_add(u128::from(c.to_digit(10)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("0", Ok(Duration::ZERO)),
            ("30s", Ok(ms(30_000))),
            ("1m30s", Ok(ms(90_000))),
            ("1.5h", Ok(ms(5_400_000))),
            ("250ms", Ok(ms(250))),
            (".5s", Ok(ms(500))),
            ("10µs", Ok(Duration::from_micros(10))),
            ("-1s", Err(true)),
            ("", Err(false)),
            ("10", Err(false)),
            ("s", Err(false)),
            ("1x", Err(false)),
            ("99999999999999999999h", Err(false)),
        ] {
            assert_eq!(parse(text), want, "{text}");
        }
    }
}
