//! Kubernetes resource quantities (`500Mi`, `1Gi`, `1e3`).
//!
//! A quantity is a signed decimal number with an optional suffix: binary
//! (`Ki` … `Ei`), decimal (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or a
//! decimal exponent (`e3`, `E-2`). Values are kept exactly, as an integer
//! count of nano-units (upstream's finest precision), so `1024Mi == 1Gi`,
//! `1G < 1Gi` and `500m < 1` compare exactly.

use std::fmt;
use std::str::FromStr;

/// Nano-units in one unit.
const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Binary suffixes, largest first, so `Display` picks the largest exact one.
const BINARY_SUFFIXES: [(&str, u32); 6] = [
    ("Ei", 60),
    ("Pi", 50),
    ("Ti", 40),
    ("Gi", 30),
    ("Mi", 20),
    ("Ki", 10),
];

/// Decimal suffixes and the power of ten each stands for.
const DECIMAL_SUFFIXES: [(&str, i32); 9] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// An exact resource quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

/// Why a string is not a quantity; each message names the string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Upstream's own wording for a string of the wrong shape.
    #[error(
        "invalid quantity \"{0}\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format(String),
    #[error(
        "invalid quantity \"{0}\": unable to parse quantity's suffix; use one of Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent such as e3"
    )]
    Suffix(String),
    #[error(
        "quantity \"{0}\" is out of range: magnitudes up to about 1.7e29 are supported; use a smaller value"
    )]
    OutOfRange(String),
}

/// Parses a quantity. Values finer than a nano-unit are rounded away from
/// zero to the next nano-unit, as upstream does.
pub fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    let parts = split(s).ok_or_else(|| QuantityError::Format(s.to_string()))?;
    let scale = suffix_scale(parts.suffix).ok_or_else(|| QuantityError::Suffix(s.to_string()))?;
    let out_of_range = || QuantityError::OutOfRange(s.to_string());
    let (mantissa, fraction_digits) =
        mantissa(parts.digits, parts.fraction).ok_or_else(out_of_range)?;
    let magnitude = mantissa
        .checked_mul(scale.binary)
        .ok_or_else(out_of_range)?;
    let power = i64::from(scale.decimal) + 9 - fraction_digits as i64;
    let nanos = scale_by_power_of_ten(magnitude, power).ok_or_else(out_of_range)?;
    let nanos = i128::try_from(nanos).map_err(|_| out_of_range())?;
    Ok(Quantity {
        nanos: if parts.negative { -nanos } else { nanos },
    })
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        parse_quantity(s)
    }
}

impl Quantity {
    /// Whole bytes (units), rounded up; negative values give 0 and values
    /// beyond `u64::MAX` saturate.
    pub fn bytes(&self) -> u64 {
        if self.nanos <= 0 {
            return 0;
        }
        let units = self
            .nanos
            .unsigned_abs()
            .div_ceil(NANOS_PER_UNIT.unsigned_abs());
        u64::try_from(units).unwrap_or(u64::MAX)
    }

    pub fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    pub fn from_bytes(bytes: u64) -> Quantity {
        Quantity {
            nanos: i128::from(bytes) * NANOS_PER_UNIT,
        }
    }
}

/// `1Gi` when the value is a whole number of KiB, MiB, …; plain units
/// otherwise (`1000`); fractions as `500m`, `1500u` or `7n`. Parsing the
/// output gives the same quantity back.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let nanos = self.nanos.unsigned_abs();
        let nanos_per_unit = NANOS_PER_UNIT.unsigned_abs();
        if !nanos.is_multiple_of(nanos_per_unit) {
            let (value, suffix) = [(1_000_000, "m"), (1_000, "u")]
                .into_iter()
                .find(|(step, _)| nanos.is_multiple_of(*step))
                .map_or((nanos, "n"), |(step, suffix)| (nanos / step, suffix));
            return write!(f, "{sign}{value}{suffix}");
        }
        let units = nanos / nanos_per_unit;
        let binary = BINARY_SUFFIXES
            .into_iter()
            .find(|(_, shift)| units != 0 && units.is_multiple_of(1u128 << shift));
        match binary {
            Some((suffix, shift)) => write!(f, "{sign}{}{suffix}", units >> shift),
            None => write!(f, "{sign}{units}"),
        }
    }
}

/// A quantity string cut into its pieces.
struct Parts<'a> {
    negative: bool,
    digits: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

/// Splits `[+-]digits[.digits]suffix`, where the suffix is letters from
/// `eEinumkKMGTP` then an optional signed integer; None if the string has
/// any other shape (upstream's "must match the regular expression" case).
fn split(s: &str) -> Option<Parts<'_>> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (digits, rest) = take_digits(rest);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_point) => take_digits(after_point),
        None => ("", rest),
    };
    if digits.is_empty() && fraction.is_empty() {
        return None;
    }
    let letters = rest.len()
        - rest
            .trim_start_matches(|c| "eEinumkKMGTP".contains(c))
            .len();
    let after_letters = &rest[letters..];
    let exponent = after_letters
        .strip_prefix(['+', '-'])
        .unwrap_or(after_letters);
    let (_, trailing) = take_digits(exponent);
    trailing.is_empty().then_some(Parts {
        negative,
        digits,
        fraction,
        suffix: rest,
    })
}

fn take_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// What a suffix multiplies by: `binary * 10^decimal`.
struct Scale {
    binary: u128,
    decimal: i32,
}

fn suffix_scale(suffix: &str) -> Option<Scale> {
    if suffix.is_empty() {
        return Some(Scale {
            binary: 1,
            decimal: 0,
        });
    }
    if let Some((_, shift)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some(Scale {
            binary: 1 << shift,
            decimal: 0,
        });
    }
    if let Some((_, power)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some(Scale {
            binary: 1,
            decimal: *power,
        });
    }
    // `E` alone is exa (handled above); `e3`, `E-2`, `e+1` are exponents.
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Scale {
        binary: 1,
        // Exponents too large for i32 are certainly out of range; clamping
        // keeps them out of range (or rounding to 1n) without overflow.
        decimal: exponent.parse::<i64>().map_or(
            if exponent.starts_with('-') {
                i32::MIN / 2
            } else {
                i32::MAX / 2
            },
            |e| e.clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32,
        ),
    })
}

/// The digits with the decimal point removed, as an integer, and how many
/// of them were after the point. Leading and trailing zeros that carry no
/// value are dropped first, so long zero runs do not overflow.
fn mantissa(digits: &str, fraction: &str) -> Option<(u128, usize)> {
    let digits = digits.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let mut value: u128 = 0;
    for b in digits.bytes().chain(fraction.bytes()) {
        value = value.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    Some((value, fraction.len()))
}

/// `value * 10^power`, rounded up when `power` is negative; None on
/// overflow.
fn scale_by_power_of_ten(value: u128, power: i64) -> Option<u128> {
    if value == 0 {
        return Some(0);
    }
    if power >= 0 {
        let factor = 10u128.checked_pow(u32::try_from(power).ok()?)?;
        return value.checked_mul(factor);
    }
    let divisor = match u32::try_from(-power)
        .ok()
        .and_then(|p| 10u128.checked_pow(p))
    {
        Some(divisor) => divisor,
        // Smaller than any nano-unit: rounds up to one.
        None => return Some(1),
    };
    Some(value.div_ceil(divisor))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    const KI: i128 = 1024;
    const NANO: i128 = NANOS_PER_UNIT;

    #[derive(Debug)]
    enum Expected {
        Nanos(i128),
        Format,
        Suffix,
        OutOfRange,
    }

    fn check(input: &str, expected: Expected) {
        let got = parse_quantity(input);
        match (expected, &got) {
            (Expected::Nanos(nanos), Ok(q)) => assert_eq!(q.nanos, nanos, "{input}"),
            (Expected::Format, Err(QuantityError::Format(s)))
            | (Expected::Suffix, Err(QuantityError::Suffix(s)))
            | (Expected::OutOfRange, Err(QuantityError::OutOfRange(s))) => {
                assert_eq!(s, input);
                assert!(
                    got.unwrap_err()
                        .to_string()
                        .contains(&format!("\"{input}\""))
                );
            }
            (expected, got) => panic!("{input}: expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn parses_upstream_forms() {
        use Expected::*;
        let cases = [
            ("0", Nanos(0)),
            ("1", Nanos(NANO)),
            ("+1", Nanos(NANO)),
            ("-1", Nanos(-NANO)),
            ("1Ki", Nanos(KI * NANO)),
            ("1Mi", Nanos(KI * KI * NANO)),
            ("1Gi", Nanos(KI.pow(3) * NANO)),
            ("1Ti", Nanos(KI.pow(4) * NANO)),
            ("1Pi", Nanos(KI.pow(5) * NANO)),
            ("1Ei", Nanos(KI.pow(6) * NANO)),
            ("1k", Nanos(1_000 * NANO)),
            ("1M", Nanos(1_000_000 * NANO)),
            ("1G", Nanos(1_000_000_000 * NANO)),
            ("1T", Nanos(10i128.pow(12) * NANO)),
            ("1P", Nanos(10i128.pow(15) * NANO)),
            ("1E", Nanos(10i128.pow(18) * NANO)),
            ("500m", Nanos(NANO / 2)),
            ("3u", Nanos(3_000)),
            ("7n", Nanos(7)),
            ("1e3", Nanos(1_000 * NANO)),
            ("1E3", Nanos(1_000 * NANO)),
            ("1e+3", Nanos(1_000 * NANO)),
            ("15e-1", Nanos(3 * NANO / 2)),
            ("1.5Gi", Nanos(3 * KI.pow(3) / 2 * NANO)),
            ("1.", Nanos(NANO)),
            (".5", Nanos(NANO / 2)),
            ("-.5Ki", Nanos(-512 * NANO)),
            ("0000000000000000000000000000000000000000001", Nanos(NANO)),
            ("1.0000000000000000000000000000000000000000", Nanos(NANO)),
            // Finer than a nano-unit rounds away from zero.
            ("1.0000000001", Nanos(NANO + 1)),
            ("-1.0000000001", Nanos(-NANO - 1)),
            ("1e-100", Nanos(1)),
            ("0e400", Nanos(0)),
            ("", Format),
            (".", Format),
            ("-", Format),
            (" 1", Format),
            ("1 ", Format),
            ("1Gi ", Format),
            ("Gi", Format),
            ("1.2.3", Format),
            ("1e3x", Format),
            ("1Gb", Format),
            ("1e", Suffix),
            ("1Kii", Suffix),
            ("1K", Suffix),
            ("1kk", Suffix),
            ("1i", Suffix),
            ("1e1.5", Format),
            ("1Ei5", Suffix),
            ("1e40", OutOfRange),
            ("1e99999999999999999999", OutOfRange),
            ("99999999999999999999999999999999999999999", OutOfRange),
            ("1000000000000Ei", OutOfRange),
            ("100000000000Ei", Nanos(100_000_000_000 * KI.pow(6) * NANO)),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    fn check_order(a: &str, b: &str, expected: Ordering) {
        let (qa, qb) = (parse_quantity(a).unwrap(), parse_quantity(b).unwrap());
        assert_eq!(qa.cmp(&qb), expected, "{a} vs {b}");
    }

    #[test]
    fn compares_across_suffixes() {
        let cases = [
            ("1024Mi", "1Gi", Ordering::Equal),
            ("1G", "1Gi", Ordering::Less),
            ("1000M", "1G", Ordering::Equal),
            ("1e9", "1G", Ordering::Equal),
            ("1500m", "1.5", Ordering::Equal),
            ("999m", "1", Ordering::Less),
            ("-1Gi", "0", Ordering::Less),
            ("1Ki", "1k", Ordering::Greater),
        ];
        for (a, b, expected) in cases {
            check_order(a, b, expected);
        }
    }

    fn check_bytes(input: &str, bytes: u64, positive: bool) {
        let q = parse_quantity(input).unwrap();
        assert_eq!((q.bytes(), q.is_positive()), (bytes, positive), "{input}");
    }

    #[test]
    fn bytes_round_up_and_saturate() {
        let cases = [
            ("1Gi", 1 << 30, true),
            ("1500m", 2, true),
            ("1n", 1, true),
            ("0", 0, false),
            ("-5Gi", 0, false),
            ("16Ei", u64::MAX, true),
        ];
        for (input, bytes, positive) in cases {
            check_bytes(input, bytes, positive);
        }
    }

    fn check_display(input: &str, shown: &str) {
        assert_eq!(parse_quantity(input).unwrap().to_string(), shown, "{input}");
    }

    #[test]
    fn displays_canonically() {
        let cases = [
            ("1073741824", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1G", "1000000000"),
            ("1000", "1000"),
            ("0", "0"),
            ("-2Ki", "-2Ki"),
            ("0.5", "500m"),
            ("1.5m", "1500u"),
            ("1.0000000001", "1000000001n"),
        ];
        for (input, shown) in cases {
            check_display(input, shown);
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,40}") {
            let _ = parse_quantity(&s);
        }

        #[test]
        fn parsing_quantity_like_strings_never_panics(
            s in "[+-]?[0-9.]{0,45}[eEinumkKMGTP]{0,3}[-+]?[0-9]{0,12}"
        ) {
            let _ = parse_quantity(&s);
        }

        #[test]
        fn bytes_round_trip(bytes: u64) {
            prop_assert_eq!(Quantity::from_bytes(bytes).bytes(), bytes);
        }

        #[test]
        fn display_round_trips(nanos in -(1i128 << 96)..(1i128 << 96)) {
            let q = Quantity { nanos };
            prop_assert_eq!(parse_quantity(&q.to_string()), Ok(q));
        }

        #[test]
        fn binary_suffix_means_powers_of_1024(n in 0u64..(1 << 20), shift in 0usize..4) {
            let (suffix, power) = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40)][shift];
            let q = parse_quantity(&format!("{n}{suffix}")).unwrap();
            prop_assert_eq!(q, Quantity::from_bytes(n << power));
        }

        #[test]
        fn order_follows_bytes(a: u64, b: u64) {
            prop_assert_eq!(Quantity::from_bytes(a).cmp(&Quantity::from_bytes(b)), a.cmp(&b));
        }
    }
}
