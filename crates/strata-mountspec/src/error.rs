//! Every way a mount spec can be refused. One variant per refusal, so callers
//! can match on the cause and tests can pin each message. Messages keep
//! Docker's wording (users search for it) and add, in parentheses, what a
//! valid value looks like where Docker's text does not say.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SpecError {
    // `-v` / `--volume`, the CLI's first pass.
    #[error(
        "invalid empty volume spec (expected [SOURCE:]TARGET[:OPTIONS], e.g. data:/var/lib/data)"
    )]
    EmptyVolumeSpec,
    #[error(
        "invalid spec: {spec}: empty section between colons (expected [SOURCE:]TARGET[:OPTIONS])"
    )]
    EmptySection { spec: String },
    #[error(
        "invalid spec: {spec}: too many colons (expected [SOURCE:]TARGET[:OPTIONS]; use --mount for paths that contain ':')"
    )]
    TooManyColons { spec: String },

    // `-v` / `--volume`, the daemon's pass.
    #[error(
        "invalid volume specification: '{spec}' (options need a source and a target, e.g. /src:/dst:ro)"
    )]
    ModeWithoutTarget { spec: String },
    #[error(
        "invalid mode: {mode} (valid: ro or rw, z or Z, nocopy, one of rprivate, private, rshared, shared, rslave, slave, and one of consistent, cached, delegated; each at most once)"
    )]
    InvalidMode { mode: String },
    #[error("invalid volume specification: '{spec}': {reason}")]
    VolumeSpecification {
        spec: String,
        reason: Box<SpecError>,
    },

    // The daemon's mount checks, wrapped in `MountConfig`.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    MountConfig {
        kind: String,
        reason: Box<SpecError>,
    },
    #[error("field Target must not be empty (set target=/path/in/container)")]
    MissingTarget,
    #[error("invalid specification: destination can't be '/'")]
    TargetIsRoot,
    #[error("invalid mount path: '{path}' mount path must be absolute")]
    RelativePath { path: String },
    #[error("field Source must not be empty (set source=/path/on/host)")]
    MissingSource,
    #[error("field Source must not be specified (a tmpfs mount has no source)")]
    ExtraSource,
    #[error("field VolumeOptions must not be specified (nocopy only applies to volumes)")]
    NoCopyOnBind,
    #[error(
        "field BindOptions must not be specified (propagation modes only apply to bind mounts)"
    )]
    PropagationOnVolume,
    #[error(
        "invalid propagation mode: {mode} (expected rprivate, private, rshared, shared, rslave or slave)"
    )]
    InvalidPropagation { mode: String },
    #[error("bind source path does not exist: {path}")]
    BindSourceMissing { path: String },
    #[error("must not set Subpath when using anonymous volumes (name the volume with source=NAME)")]
    AnonymousSubpath,
    #[error(
        "subpath must be a relative path within the volume, got '{subpath}' (e.g. volume-subpath=data/logs)"
    )]
    InvalidSubpath { subpath: String },
    #[error("mount type unknown (expected bind, volume or tmpfs)")]
    UnknownType,
    #[error(
        "volume source '{path}' is a path, not a volume name (use type=bind to mount a host directory)"
    )]
    VolumeSourceIsPath { path: String },

    // `--mount`, the CLI's pass.
    #[error("value is empty (expected a mount spec such as type=volume,source=data,target=/data)")]
    EmptyMountSpec,
    #[error("a mount spec must be a single line (remove the line break)")]
    MultiLineMount,
    #[error(
        "parse error on line 1, column {column}: bare \" in non-quoted-field (quote the whole field, e.g. \"volume-opt=o=addr=1.2.3.4,vers=4\")"
    )]
    BareQuote { column: usize },
    #[error(
        "parse error on line 1, column {column}: extraneous or missing \" in quoted-field (close the quote before the next ',' and write \"\" for a literal quote)"
    )]
    ExtraneousQuote { column: usize },
    #[error("invalid option '{key}' in '{field}': option should not have whitespace")]
    KeyWhitespace { key: String, field: String },
    #[error("invalid value for '{key}': value is empty")]
    EmptyValue { key: String },
    #[error("invalid value for '{key}' in '{field}': value should not have whitespace")]
    ValueWhitespace { key: String, field: String },
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    #[error(
        "invalid value for '{key}': invalid boolean value ({value:?}): must be one of \"true\", \"1\", \"false\", or \"0\" (default \"true\")"
    )]
    InvalidBool { key: String, value: String },
    #[error(
        "unknown option '{key}' in '{field}' (valid keys: type, source, target, readonly, consistency, bind-propagation, bind-recursive, bind-create-src, volume-subpath, volume-nocopy, volume-label, volume-driver, volume-opt, tmpfs-size, tmpfs-mode)"
    )]
    UnknownOption { key: String, field: String },
    #[error("cannot mix '{group}-*' options with mount type '{kind}'")]
    MixedOptions { group: &'static str, kind: String },
    #[error(
        "bind-nonrecursive is deprecated, use bind-recursive=disabled instead; strata does not support non-recursive bind mounts, so remove the option"
    )]
    BindNonRecursive,
    #[error(
        "invalid value for bind-recursive: {value} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
    )]
    InvalidBindRecursive { value: String },
    #[error(
        "bind-recursive={value} is not supported by strata: bind mounts are always recursive (omit the option or use bind-recursive=enabled)"
    )]
    UnsupportedBindRecursive { value: String },
    #[error("mount type '{kind}' is not supported by strata (use bind, volume or tmpfs)")]
    UnsupportedType { kind: String },
    #[error("invalid value for tmpfs-size: {value} (expected bytes or a size such as 64m or 1g)")]
    InvalidTmpfsSize { value: String },
    #[error(
        "invalid value for tmpfs-mode: {value} (expected octal permissions such as 1777 or 0700)"
    )]
    InvalidTmpfsMode { value: String },

    // `--tmpfs`.
    #[error(
        "invalid tmpfs option \"{option}\" (expected a mount flag such as ro, noexec or nosuid, or one of size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=, mpol=)"
    )]
    InvalidTmpfsOption { option: String },
    #[error(
        "invalid tmpfs option \"size={value}\" (expected a byte count with an optional k, m, g, t, p or e suffix, or a percentage such as 50%)"
    )]
    InvalidTmpfsSizeOption { value: String },
    #[error("invalid tmpfs option \"mode={value}\" (expected octal permissions such as 1777)")]
    InvalidTmpfsModeOption { value: String },

    // Names, sizes, duplicates.
    #[error("volume name is too short, names should be at least two alphanumeric characters")]
    VolumeNameTooShort,
    #[error(
        "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidVolumeName { name: String },
    #[error(
        "invalid size: '{value}' (expected bytes with an optional k, m, g, t or p suffix, e.g. 64m, 1.5g or 512KiB)"
    )]
    InvalidSize { value: String },
    #[error("duplicate mount point: {target}")]
    DuplicateMountPoint { target: String },
    // `--device`.
    #[error("invalid device specification: {spec} (expected HOST[:CONTAINER][:PERMISSIONS])")]
    InvalidDevice { spec: String },
    #[error("invalid device mode: {mode} (expected a combination of r, w and m, e.g. rwm)")]
    InvalidDeviceMode { mode: String },
    #[error("bad format for path: {path} (device paths are absolute, e.g. /dev/loop3)")]
    DevicePath { path: String },
}

impl SpecError {
    /// The daemon's `invalid mount config for type "KIND": REASON`.
    pub(crate) fn config(kind: &str, reason: SpecError) -> Self {
        Self::MountConfig {
            kind: kind.to_owned(),
            reason: Box::new(reason),
        }
    }
}
