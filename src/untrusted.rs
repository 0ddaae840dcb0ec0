//! Opening and reading files that other people made (docs/threat-model.md):
//! links and layouts handed to `show`, `diff`, `verify`, `layout draft` and
//! `rerun`, the runtime trace beside a link, store objects.
//!
//! A crafted file must not hang a reader, make it allocate without bound or
//! read through a symbolic link someone planted beside a link. So:
//!
//! - The file must be a regular file. It is checked with `stat` before it is
//!   opened (opening a device can have side effects; opening a FIFO blocks
//!   until someone writes to it), opened with `O_NONBLOCK | O_NOCTTY` (a FIFO
//!   swapped in between does not block, a terminal does not become ours) and
//!   checked again with `fstat` on the descriptor, which is what is read.
//! - Files beside a link (the trace, store objects) are never read through a
//!   symbolic link: `lstat`, then `O_NOFOLLOW`. A file a person names on the
//!   command line, or that a layout names in a link directory (as in-toto
//!   finds links), may be a symbolic link to a regular file: following it is
//!   the caller's choice, as with in-toto; the target must still be a regular
//!   file.
//! - Reading into memory is bounded ([`Policy::max`]): the size `fstat`
//!   reports is checked before anything is allocated, and no more than the
//!   bound is read should the file grow meanwhile. Traces are not compressed
//!   today; if they ever are, the bound applies to the decompressed bytes.
//!
//! The bounds (measured on precise recordings): a trace costs about 850
//! bytes per process and about 70 bytes per file a process read under the
//! root (each pair is listed twice: in the process and in the artifact);
//! 6,000 processes and 4,000 files came to 5 MB, a libsodium build (10,000
//! processes) to about 9 MB, and a kernel-sized build (tens of thousands of
//! compile units reading hundreds of headers each) is estimated at a few
//! hundred MB. Traces are bounded at 1 GiB. A link costs about 100 bytes per
//! artifact: 256 MiB holds over two million artifacts, layouts are smaller.
//!
//! Callers: `verify::metadata` (links and layouts), `account` (the trace),
//! `app::draft` (links); `rerun` should open store objects with
//! [`STORE_OBJECT`] and files of the original root with [`ROOT_FILE`].
//!
//! This module knows files only.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// How one kind of file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// What the file is, for messages ("runtime trace").
    pub what: &'static str,
    /// Whether a symbolic link in place of the file is followed.
    pub follow: bool,
    /// Most bytes [`read`] returns; [`open`] checks it too.
    pub max: u64,
}

const MIB: u64 = 1 << 20;

/// The runtime trace beside a precise link (`<link>.trace.json.gz`, or
/// `.trace.json` as older versions wrote it); the bound is on the file and
/// on its decompressed content (`crate::tracefile::decompress`).
pub const TRACE: Policy = Policy {
    what: "runtime trace",
    follow: false,
    max: 1024 * MIB,
};

/// A link or layout file named on the command line or found in a link
/// directory.
pub const METADATA: Policy = Policy {
    what: "link or layout file",
    follow: true,
    max: 256 * MIB,
};

/// An object of a content-addressed store (a material's or product's
/// content). Read by streaming, and checked against its digest by the
/// caller: no bound beyond being a regular file, whose size is finite.
pub const STORE_OBJECT: Policy = Policy {
    what: "store object",
    follow: false,
    max: u64::MAX,
};

/// A file under the root a trace names (a material read back from the
/// original tree, to be checked against its digest). A precise link records
/// a symlink to a regular file under its own name with the target's digest,
/// so a symlink is followed; the target must still be a regular file (a
/// symlink to /dev/zero or a FIFO is refused, not read forever). Read by
/// streaming: no bound beyond that.
pub const ROOT_FILE: Policy = Policy {
    what: "file under the recorded root",
    follow: true,
    max: u64::MAX,
};

/// Why an untrusted file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} {}", path.display(), symlink_problem(what))]
    Symlink { path: PathBuf, what: &'static str },
    #[error("{} {}", path.display(), not_regular_problem(kind, what))]
    NotRegular {
        path: PathBuf,
        kind: &'static str,
        what: &'static str,
    },
    #[error("{} {}", path.display(), too_large_problem(*size, *max, what))]
    TooLarge {
        path: PathBuf,
        size: u64,
        max: u64,
        what: &'static str,
    },
}

fn symlink_problem(what: &str) -> String {
    format!("is a symbolic link; a {what} is read only from a regular file, never through a link")
}

fn not_regular_problem(kind: &str, what: &str) -> String {
    format!("is a {kind}, not a regular file; a {what} is read only from a regular file")
}

fn too_large_problem(size: u64, max: u64, what: &str) -> String {
    format!(
        "is {size} bytes, larger than a {what} may be ({}); it is not read",
        human(max)
    )
}

/// `1 GiB`, `256 MiB`, or bytes.
fn human(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl UntrustedError {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            UntrustedError::Io { path, .. }
            | UntrustedError::Symlink { path, .. }
            | UntrustedError::NotRegular { path, .. }
            | UntrustedError::TooLarge { path, .. } => path,
        }
    }

    /// The problem without the file's name (for messages that name it
    /// already).
    pub fn problem(&self) -> String {
        match self {
            UntrustedError::Io { source, .. } => source.to_string(),
            UntrustedError::Symlink { what, .. } => symlink_problem(what),
            UntrustedError::NotRegular { kind, what, .. } => not_regular_problem(kind, what),
            UntrustedError::TooLarge {
                size, max, what, ..
            } => too_large_problem(*size, *max, what),
        }
    }

    /// Whether the file is simply not there (in-toto skips a missing link).
    pub fn is_not_found(&self) -> bool {
        matches!(self, UntrustedError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound)
    }
}

fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    Some(if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    })
}

/// A regular file opened for reading, and its size when opened.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub size: u64,
}

/// Opens `path` for reading under `policy` (see the module documentation);
/// a file larger than `policy.max` is refused.
pub fn open(path: &Path, policy: Policy) -> Result<Opened, UntrustedError> {
    let io = |source| UntrustedError::Io {
        path: path.into(),
        source,
    };
    let check = |file_type: std::fs::FileType, size: u64| -> Result<(), UntrustedError> {
        if file_type.is_symlink() {
            return Err(UntrustedError::Symlink {
                path: path.into(),
                what: policy.what,
            });
        }
        if let Some(kind) = kind_of(file_type) {
            return Err(UntrustedError::NotRegular {
                path: path.into(),
                kind,
                what: policy.what,
            });
        }
        if size > policy.max {
            return Err(UntrustedError::TooLarge {
                path: path.into(),
                size,
                max: policy.max,
                what: policy.what,
            });
        }
        Ok(())
    };
    let before = if policy.follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(io)?;
    check(before.file_type(), before.len())?;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !policy.follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match File::options().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        // Swapped for a symlink since the lstat.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !policy.follow => {
            return Err(UntrustedError::Symlink {
                path: path.into(),
                what: policy.what,
            });
        }
        Err(e) => return Err(io(e)),
    };
    let now = file.metadata().map_err(io)?;
    check(now.file_type(), now.len())?;
    Ok(Opened {
        file,
        size: now.len(),
    })
}

/// Reads all of `path` under `policy`: at most `policy.max` bytes.
pub fn read(path: &Path, policy: Policy) -> Result<Vec<u8>, UntrustedError> {
    let Opened { file, size } = open(path, policy)?;
    let capacity = usize::try_from(size).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(capacity);
    // One byte more than allowed tells a file that grew past the bound.
    file.take(policy.max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| UntrustedError::Io {
            path: path.into(),
            source,
        })?;
    if bytes.len() as u64 > policy.max {
        return Err(UntrustedError::TooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            max: policy.max,
            what: policy.what,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    const SMALL: Policy = Policy {
        what: "test file",
        follow: false,
        max: 16,
    };

    #[test]
    fn regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"sixteen bytes!!!").unwrap();
        assert_eq!(read(&path, SMALL).unwrap(), b"sixteen bytes!!!");
        std::fs::write(&path, b"seventeen bytes!!").unwrap();
        let err = read(&path, SMALL).unwrap_err();
        assert!(matches!(err, UntrustedError::TooLarge { size: 17, .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "{} is 17 bytes, larger than a test file may be (16 bytes); it is not read",
                path.display()
            )
        );
    }

    #[test]
    fn symlinks_are_refused_unless_followed_and_then_must_reach_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"ok").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        let err = read(&link, SMALL).unwrap_err();
        assert!(matches!(err, UntrustedError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let follow = Policy {
            follow: true,
            ..SMALL
        };
        assert_eq!(read(&link, follow).unwrap(), b"ok");
        let zero = dir.path().join("zero");
        symlink("/dev/zero", &zero).unwrap();
        let err = read(&zero, follow).unwrap_err();
        assert!(
            matches!(
                err,
                UntrustedError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn fifos_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let err = read(&fifo, SMALL).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            err.to_string(),
            format!(
                "{} is a FIFO, not a regular file; a test file is read only from a regular file",
                fifo.display()
            )
        );
        let err = read(dir.path(), SMALL).unwrap_err();
        assert!(
            matches!(
                err,
                UntrustedError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
        let err = read(&dir.path().join("absent"), SMALL).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn sparse_giants_are_refused_before_anything_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        File::create(&path).unwrap().set_len(2 << 30).unwrap();
        let started = Instant::now();
        let err = read(&path, TRACE).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            err.problem()
                .starts_with("is 2147483648 bytes, larger than a runtime trace may be (1 GiB)"),
            "{err}"
        );
        // Opening for streaming has no bound but the type.
        assert_eq!(open(&path, STORE_OBJECT).unwrap().size, 2 << 30);
        let zero = dir.path().join("zero");
        symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            open(&zero, ROOT_FILE),
            Err(UntrustedError::NotRegular { .. })
        ));
        assert!(matches!(
            open(&zero, STORE_OBJECT),
            Err(UntrustedError::Symlink { .. })
        ));
    }
}
