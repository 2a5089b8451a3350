//! `--tmpfs /path[:options]`. Docker splits at the first `:` (options such
//! as `mpol=bind:0-3` contain colons), checks the path like any target, and
//! when the container starts merges the options with its defaults, refusing
//! any that is neither a known mount flag nor one of its tmpfs data keys.
//! The options are kept as given for the runtime to merge; `size=` and
//! `mode=` are also read into typed fields, with the kernel's grammar,
//! because that is who reads them in the end.

use crate::mount::parse_octal;
use crate::path::check_target;
use crate::{MountSpec, Source, SpecError};

/// Mount flags Docker's tmpfs option merge knows.
const FLAGS: [&str; 33] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

/// `key=value` options Docker lets through to the kernel.
const DATA_KEYS: [&str; 7] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Parses one `--tmpfs` value.
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec, SpecError> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let target = check_target(target)?;
    let options: Vec<String> = match options {
        "" => Vec::new(),
        options => options.split(',').map(str::to_owned).collect(),
    };
    let typed = Typed::read(&options)?;
    Ok(MountSpec {
        source: Source::Tmpfs {
            size: typed.size.flatten(),
            mode: typed.mode,
            options,
        },
        target,
        readonly: typed.readonly.unwrap_or(false),
        relabel: None,
    })
}

/// What the options say, the last of each kind winning as in the merge.
#[derive(Default)]
struct Typed {
    /// `Some(None)` for a percentage of host memory.
    size: Option<Option<u64>>,
    mode: Option<u32>,
    readonly: Option<bool>,
}

impl Typed {
    /// Walks the options from the last, as Docker's merge does, so the first
    /// refusal is the one Docker reports.
    fn read(options: &[String]) -> Result<Self, SpecError> {
        let mut typed = Self::default();
        for option in options.iter().rev() {
            typed.apply(option)?;
        }
        Ok(typed)
    }

    fn apply(&mut self, option: &str) -> Result<(), SpecError> {
        if FLAGS.contains(&option) {
            if matches!(option, "ro" | "rw") {
                self.readonly.get_or_insert(option == "ro");
            }
            return Ok(());
        }
        match option.split_once('=') {
            Some(("size", value)) if self.size.is_none() => self.size = Some(kernel_size(value)?),
            Some(("mode", value)) if self.mode.is_none() => self.mode = Some(kernel_mode(value)?),
            Some((key, _)) if DATA_KEYS.contains(&key) => {}
            _ => {
                return Err(SpecError::InvalidTmpfsOption {
                    option: option.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// The kernel's `size=`: a C integer (`0x` hex, leading `0` octal, else
/// decimal), an optional k/m/g/t/p/e (powers of 1024), then an optional `%`
/// of host memory, which gives `None`.
fn kernel_size(value: &str) -> Result<Option<u64>, SpecError> {
    let invalid = || SpecError::InvalidTmpfsSizeOption {
        value: value.to_owned(),
    };
    let (radix, digits) = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) if hex.starts_with(|c: char| c.is_ascii_hexdigit()) => (16, hex),
        _ if value.starts_with('0') => (8, value),
        _ => (10, value),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let number = u64::from_str_radix(&digits[..end], radix).map_err(|_| invalid())?;
    let mut rest = &digits[end..];
    let mut bytes = Some(number);
    if let Some(power) = rest
        .chars()
        .next()
        .and_then(|c| "kmgtpe".find(c.to_ascii_lowercase()))
    {
        bytes = number.checked_mul(1 << (10 * (power + 1)));
        rest = &rest[1..];
    }
    match (bytes, rest) {
        (Some(bytes), "") => Ok(Some(bytes)),
        (Some(_), "%") => Ok(None),
        _ => Err(invalid()),
    }
}

/// The kernel's `mode=`: octal, within 32 bits.
fn kernel_mode(value: &str) -> Result<u32, SpecError> {
    parse_octal(value).ok_or_else(|| SpecError::InvalidTmpfsModeOption {
        value: value.to_owned(),
    })
}
