//! `hostPath` volumes' `type`: what must be at the path before a pod may
//! use it, made when the type says so (`DirectoryOrCreate` a 0755 folder,
//! `FileOrCreate` an empty 0644 file). Symlinks are followed, as upstream:
//! the type is that of what the path leads to.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a host path cannot be used; worded as upstream's kubelet words it.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("hostPath type check failed: {} is not {what}", path.display())]
    WrongType { path: PathBuf, what: &'static str },
    #[error("hostPath type check failed: cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "hostPath type check failed: unknown type {0:?}; use DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice"
    )]
    UnknownType(String),
}

/// Checks (and for the `…OrCreate` types makes) what `path` must be for
/// `kind`, the volume's `type` ("" checks nothing).
pub fn check(path: &Path, kind: &str) -> Result<(), HostPathError> {
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            make_directory(path)?;
            expect(path, "a directory", |t| t.is_dir())
        }
        "Directory" => expect(path, "a directory", |t| t.is_dir()),
        "FileOrCreate" => {
            make_file(path)?;
            expect(path, "a file", |t| t.is_file())
        }
        "File" => expect(path, "a file", |t| t.is_file()),
        "Socket" => expect(path, "a socket file", |t| t.is_socket()),
        "CharDevice" => expect(path, "a character device", |t| t.is_char_device()),
        "BlockDevice" => expect(path, "a block device", |t| t.is_block_device()),
        other => Err(HostPathError::UnknownType(other.to_string())),
    }
}

/// What is at `path` (a missing path is nothing) must pass `is`.
fn expect(
    path: &Path,
    what: &'static str,
    is: impl Fn(std::fs::FileType) -> bool,
) -> Result<(), HostPathError> {
    match std::fs::metadata(path) {
        Ok(meta) if is(meta.file_type()) => Ok(()),
        _ => Err(HostPathError::WrongType {
            path: path.to_path_buf(),
            what,
        }),
    }
}

/// A missing folder is made, with its parents, mode 0755.
fn make_directory(path: &Path) -> Result<(), HostPathError> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let created = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        // The umask may have taken bits away; upstream promises 0755.
        .and_then(|()| std::fs::set_permissions(path, PermissionsExt::from_mode(0o755)));
    created.map_err(|source| HostPathError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// A missing file is made empty, mode 0644; its folder must exist (as
/// upstream, which does not make it).
fn make_file(path: &Path) -> Result<(), HostPathError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|file| file.set_permissions(PermissionsExt::from_mode(0o644)));
    match created {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(HostPathError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with a file, a dir, a socket and nothing at `missing`.
    fn scene() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        std::os::unix::net::UnixListener::bind(dir.path().join("socket")).unwrap();
        dir
    }

    /// `check` of `name` (below a fresh scene, or absolute) as `kind`: the
    /// error's text, or "ok".
    fn check_at(name: &str, kind: &str, expected: &str) {
        let dir = scene();
        let path = dir.path().join(name);
        let got = match check(&path, kind) {
            Ok(()) => "ok".to_string(),
            Err(e) => e
                .to_string()
                .replace(&dir.path().display().to_string(), "<dir>"),
        };
        assert_eq!(got, expected, "{name} as {kind:?}");
    }

    #[test]
    fn types_are_checked_as_upstream_words_them() {
        let failed = "hostPath type check failed:";
        let cases = [
            ("dir", "Directory", "ok".to_string()),
            (
                "file",
                "Directory",
                format!("{failed} <dir>/file is not a directory"),
            ),
            (
                "missing",
                "Directory",
                format!("{failed} <dir>/missing is not a directory"),
            ),
            ("file", "File", "ok".into()),
            ("dir", "File", format!("{failed} <dir>/dir is not a file")),
            (
                "socket",
                "File",
                format!("{failed} <dir>/socket is not a file"),
            ),
            ("socket", "Socket", "ok".into()),
            (
                "file",
                "Socket",
                format!("{failed} <dir>/file is not a socket file"),
            ),
            (
                "missing",
                "Socket",
                format!("{failed} <dir>/missing is not a socket file"),
            ),
            ("/dev/null", "CharDevice", "ok".into()),
            (
                "file",
                "CharDevice",
                format!("{failed} <dir>/file is not a character device"),
            ),
            (
                "/dev/null",
                "BlockDevice",
                format!("{failed} /dev/null is not a block device"),
            ),
            ("missing", "", "ok".into()),
            ("file", "", "ok".into()),
            ("dir", "DirectoryOrCreate", "ok".into()),
            (
                "file",
                "DirectoryOrCreate",
                format!("{failed} <dir>/file is not a directory"),
            ),
            ("file", "FileOrCreate", "ok".into()),
            (
                "dir",
                "FileOrCreate",
                format!("{failed} <dir>/dir is not a file"),
            ),
            (
                "missing/deeper",
                "FileOrCreate",
                format!(
                    "{failed} cannot create <dir>/missing/deeper: No such file or directory (os error 2)"
                ),
            ),
            (
                "file",
                "Folder",
                format!(
                    "{failed} unknown type \"Folder\"; use DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice"
                ),
            ),
        ];
        for (name, kind, expected) in cases {
            check_at(name, kind, &expected);
        }
    }

    #[test]
    fn or_create_types_make_what_is_missing_with_upstream_modes() {
        let dir = scene();
        let folder = dir.path().join("a/b");
        check(&folder, "DirectoryOrCreate").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert!(folder.is_dir());
        assert_eq!(mode(&folder), 0o755);
        let file = dir.path().join("dir/new");
        check(&file, "FileOrCreate").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"");
        assert_eq!(mode(&file), 0o644);
        // An existing file is kept as it is.
        check(&dir.path().join("file"), "FileOrCreate").unwrap();
        assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), b"x");
    }
}
