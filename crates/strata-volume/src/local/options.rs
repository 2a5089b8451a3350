//! `--opt` of the local driver: Docker's `type`, `device`, `o` and `size`,
//! plus `fs`, parsed into what to make. Pure: nothing here touches disk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{LocalError, Result};

/// The options the driver takes, as error messages list them.
pub const VALID: &str = "type, device, o, size and fs";
const KEYS: [&str; 5] = ["type", "device", "o", "size", "fs"];

/// A kernel mount made at first mount: `mount -t fstype -o options device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub fstype: String,
    pub device: String,
    pub options: String,
}

/// The filesystem of a sized volume's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fs {
    Ext4,
    Xfs,
    /// None: the image is a raw block device (a CSI block volume), which
    /// is attached to a loop device but never mounted as a folder.
    Raw,
}

impl Fs {
    pub fn as_str(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Xfs => "xfs",
            Fs::Raw => "raw",
        }
    }
}

/// What a volume's options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// No options: a folder.
    Plain,
    Mount(MountSpec),
    /// At most `size` bytes; `fs` None lets the driver choose (a project
    /// quota where the host has one, else an ext4 image).
    Sized {
        size: u64,
        fs: Option<Fs>,
    },
}

pub fn parse(opts: &BTreeMap<String, String>) -> Result<Request> {
    if let Some(key) = opts.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(LocalError::UnknownOption(key.clone()));
    }
    if let Some((key, _)) = opts.iter().find(|(_, v)| v.is_empty()) {
        return Err(invalid(format!(
            "option {key} is empty; give it a value or leave it out"
        )));
    }
    let get = |k: &str| opts.get(k).map(String::as_str);
    match get("type") {
        Some(fstype) => mount_request(fstype, get("device"), get("o"), get("size"), get("fs")),
        None => sized_request(get("device"), get("o"), get("size"), get("fs")),
    }
}

fn invalid(message: String) -> LocalError {
    LocalError::Options(message)
}

fn mount_request(
    fstype: &str,
    device: Option<&str>,
    o: Option<&str>,
    size: Option<&str>,
    fs: Option<&str>,
) -> Result<Request> {
    if fs.is_some() {
        return Err(invalid(
            "fs= picks the filesystem of a sized volume's image and does not go with type=; leave out one of them".into(),
        ));
    }
    let tmpfs = fstype == "tmpfs";
    let device = match device {
        Some(d) => d,
        None if tmpfs => "tmpfs",
        None => {
            return Err(invalid(format!(
                "type={fstype} needs device= (what to mount, e.g. device=/dev/sdb1, or device=/host/dir with o=bind)"
            )));
        }
    };
    let mut options = o.unwrap_or_default().to_owned();
    if let Some(size) = size {
        if !tmpfs {
            return Err(invalid(format!(
                "size= does not go with type={fstype} (a device has its own size); only type=tmpfs takes size="
            )));
        }
        if options.split(',').any(|o| o.starts_with("size=")) {
            return Err(invalid(
                "the tmpfs size is given twice (size= and o=size=); give it once".into(),
            ));
        }
        let bytes = parse_size(size)?;
        if !options.is_empty() {
            options.push(',');
        }
        options.push_str(&format!("size={bytes}"));
    }
    Ok(Request::Mount(MountSpec {
        fstype: fstype.to_owned(),
        device: device.to_owned(),
        options,
    }))
}

fn sized_request(
    device: Option<&str>,
    o: Option<&str>,
    size: Option<&str>,
    fs: Option<&str>,
) -> Result<Request> {
    if device.is_some() {
        return Err(invalid(
            "device= needs type= (e.g. type=ext4, or type=none with o=bind)".into(),
        ));
    }
    if o.is_some() {
        return Err(invalid(
            "o= needs type= and device= (e.g. type=tmpfs,o=size=64m)".into(),
        ));
    }
    let fs = fs.map(parse_fs).transpose()?;
    match size {
        Some(size) => Ok(Request::Sized {
            size: parse_size(size)?,
            fs,
        }),
        None if fs.is_some() => Err(invalid(
            "fs= picks the filesystem of a sized volume; add size= (e.g. size=10G)".into(),
        )),
        None => Ok(Request::Plain),
    }
}

fn parse_fs(fs: &str) -> Result<Fs> {
    match fs {
        "ext4" => Ok(Fs::Ext4),
        "xfs" => Ok(Fs::Xfs),
        "raw" => Ok(Fs::Raw),
        other => Err(invalid(format!(
            "fs={other} is not supported; use fs=ext4, fs=xfs or fs=raw (no filesystem)"
        ))),
    }
}

/// A size as Docker's `units.RAMInBytes` reads it: a decimal number, an
/// optional space, and an optional unit `k`, `m`, `g`, `t` or `p` (any
/// case, powers of 1024) with optional `i` and `b` (`512M`, `1.5G`,
/// `20GiB`, `100b`). Fractions of a byte are dropped; 0 is refused.
pub fn parse_size(value: &str) -> Result<u64> {
    let err = |why| LocalError::Size {
        value: value.to_owned(),
        why,
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let multiplier = unit_multiplier(unit).ok_or(err("unknown unit"))?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(err("not a number"));
    }
    let bytes = scale(whole, fraction, multiplier).ok_or(err("too large"))?;
    match bytes {
        0 => Err(err("it must be more than 0 bytes")),
        b if b > i64::MAX as u128 => Err(err("too large")),
        b => Ok(b as u64),
    }
}

/// `whole.fraction * multiplier`, rounded down; None when it overflows.
fn scale(whole: &str, fraction: &str, multiplier: u64) -> Option<u128> {
    let whole: u128 = whole.parse().ok()?;
    let mut bytes = whole.checked_mul(multiplier as u128)?;
    // 18 digits of fraction are finer than a byte of any unit.
    let digits = &fraction[..fraction.len().min(18)];
    if !digits.is_empty() {
        let numerator: u128 = digits.parse().ok()?;
        let denominator = 10u128.pow(digits.len() as u32);
        bytes += numerator.checked_mul(multiplier as u128)? / denominator;
    }
    Some(bytes)
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    let mut chars = lower.chars();
    let power = match chars.clone().next() {
        None => return Some(1),
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        Some(_) => 0,
    };
    if power > 0 {
        chars.next();
    }
    let rest = chars.as_str();
    let suffix_ok = match power {
        0 => rest == "b",
        _ => matches!(rest, "" | "b" | "i" | "ib"),
    };
    suffix_ok.then(|| 1024u64.pow(power))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes() {
        let check = |input: &str, expected: Option<u64>| {
            assert_eq!(parse_size(input).ok(), expected, "{input}");
        };
        const K: u64 = 1024;
        check("1", Some(1));
        check("100b", Some(100));
        check("100B", Some(100));
        check("4k", Some(4 * K));
        check("4K", Some(4 * K));
        check("4KiB", Some(4 * K));
        check("4kb", Some(4 * K));
        check("512M", Some(512 * K * K));
        check("512Mi", Some(512 * K * K));
        check("512MiB", Some(512 * K * K));
        check("512 m", Some(512 * K * K));
        check("50G", Some(50 * K * K * K));
        check("1.5G", Some(3 * K * K * K / 2));
        check("0.5k", Some(512));
        check("2T", Some(2 * K * K * K * K));
        check("1p", Some(K * K * K * K * K));
        check("0", None);
        check("0G", None);
        check("0.0001", None);
        check("-1", None);
        check("-1G", None);
        check("", None);
        check("G", None);
        check("1.", None);
        check(".5G", None);
        check("1.2.3", None);
        check("10x", None);
        check("10i", None);
        check("10Gx", None);
        check("10  G", None);
        check(" 10G", None);
        check("10GB ", None);
        check("8000000P", None);
        check("99999999999999999999999999999999999999999", None);
    }

    #[test]
    fn size_errors_say_why() {
        let message = |s: &str| parse_size(s).unwrap_err().to_string();
        assert!(
            message("0").contains("more than 0 bytes"),
            "{}",
            message("0")
        );
        assert!(message("10x").contains("unknown unit"));
        assert!(message("abc").contains("unknown unit"));
        assert!(message("1.2.3").contains("not a number"));
        assert!(message("9000000P").contains("too large"));
    }

    #[test]
    fn requests() {
        let check = |pairs: &[(&str, &str)], expected: Result<Request, &str>| {
            let got = parse(&opts(pairs)).map_err(|e| e.to_string());
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "{pairs:?}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "{pairs:?}: {g}"),
                _ => panic!("{pairs:?}: got {got:?}, expected {expected:?}"),
            }
        };
        let mount = |fstype: &str, device: &str, options: &str| {
            Ok(Request::Mount(MountSpec {
                fstype: fstype.into(),
                device: device.into(),
                options: options.into(),
            }))
        };
        check(&[], Ok(Request::Plain));
        check(
            &[("size", "20M")],
            Ok(Request::Sized {
                size: 20 << 20,
                fs: None,
            }),
        );
        check(
            &[("size", "1G"), ("fs", "xfs")],
            Ok(Request::Sized {
                size: 1 << 30,
                fs: Some(Fs::Xfs),
            }),
        );
        check(
            &[("size", "1G"), ("fs", "raw")],
            Ok(Request::Sized {
                size: 1 << 30,
                fs: Some(Fs::Raw),
            }),
        );
        check(&[("type", "tmpfs")], mount("tmpfs", "tmpfs", ""));
        check(
            &[("type", "tmpfs"), ("o", "size=64m,uid=1000")],
            mount("tmpfs", "tmpfs", "size=64m,uid=1000"),
        );
        check(
            &[("type", "tmpfs"), ("size", "1M"), ("o", "mode=700")],
            mount("tmpfs", "tmpfs", "mode=700,size=1048576"),
        );
        check(
            &[("type", "none"), ("o", "bind"), ("device", "/srv")],
            mount("none", "/srv", "bind"),
        );
        check(
            &[("type", "nfs"), ("o", "addr=1.2.3.4,rw"), ("device", ":/x")],
            mount("nfs", ":/x", "addr=1.2.3.4,rw"),
        );
        check(&[("sise", "1G")], Err("unknown option 'sise'"));
        check(&[("size", "")], Err("option size is empty"));
        check(&[("size", "0")], Err("more than 0"));
        check(&[("type", "ext4")], Err("needs device="));
        check(&[("device", "/dev/sdb")], Err("device= needs type="));
        check(&[("o", "ro")], Err("o= needs type="));
        check(&[("fs", "xfs")], Err("add size="));
        check(&[("size", "1G"), ("fs", "btrfs")], Err("fs=btrfs"));
        check(
            &[("type", "ext4"), ("device", "/dev/sdb"), ("size", "1G")],
            Err("only type=tmpfs takes size="),
        );
        check(
            &[("type", "ext4"), ("device", "/dev/sdb"), ("fs", "xfs")],
            Err("does not go with type="),
        );
        check(
            &[("type", "tmpfs"), ("size", "1M"), ("o", "size=2m")],
            Err("given twice"),
        );
    }

    #[test]
    fn unknown_option_lists_valid_ones() {
        let message = parse(&opts(&[("quota", "1")])).unwrap_err().to_string();
        assert!(message.contains(VALID), "{message}");
    }

    proptest::proptest! {
        #[test]
        fn size_with_unit_multiplies(n in 1u64..(1 << 30), unit in 0usize..6, suffix in 0usize..4) {
            let letters = ["", "k", "M", "g", "T", "p"];
            let suffixes = ["", "b", "i", "iB"];
            let suffix = if unit == 0 { "" } else { suffixes[suffix] };
            let input = format!("{n}{}{suffix}", letters[unit]);
            let expected = (n as u128) * 1024u128.pow(unit as u32);
            match parse_size(&input) {
                Ok(bytes) => proptest::prop_assert_eq!(bytes as u128, expected),
                Err(_) => proptest::prop_assert!(expected > i64::MAX as u128),
            }
        }

        #[test]
        fn size_never_panics_and_is_positive(input in "\\PC{0,12}") {
            if let Ok(bytes) = parse_size(&input) {
                proptest::prop_assert!(bytes > 0 && bytes <= i64::MAX as u64);
            }
        }

        #[test]
        fn fraction_rounds_down(whole in 0u64..1000, tenths in 0u64..10) {
            let bytes = parse_size(&format!("{whole}.{tenths}k"));
            let expected = whole * 1024 + tenths * 1024 / 10;
            match bytes {
                Ok(b) => proptest::prop_assert_eq!(b, expected),
                Err(_) => proptest::prop_assert_eq!(expected, 0),
            }
        }
    }
}
