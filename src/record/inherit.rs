//! Descriptors the recorded command inherits from tracelink's caller
//! (docs/threat-model.md, docs/recording.md).
//!
//! A descriptor opened before tracelink started bypasses the monitored
//! mount. So before the run, every inherited descriptor is looked at:
//! - a directory or O_PATH descriptor is refused unless it refers to the
//!   root or below (an inherited directory outside the mount lets
//!   `openat(fd, "../...")` walk to the root's files unseen);
//! - a regular file under the root, and a directory under it, are reopened
//!   *through the mount* with the same access mode and O_APPEND, at the same
//!   offset, and put in the inherited descriptor's place, so every access
//!   reaches the monitor; at the end the original description's offset is
//!   set to the reopened one's, so `{ tracelink run ... -- make; echo done; }
//!   > log` still appends after the command's output;
//! - everything else (pipes, sockets, terminals, files outside the root) is
//!   left as it is.
//!
//! `plan` runs in the recorder, `Reopened::open` in the sandbox's PID 1 (the
//! mount is there). This module knows descriptors and paths; it knows
//! nothing of FUSE requests or in-toto.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// An inherited descriptor to reopen through the mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopen {
    pub fd: i32,
    /// Its path relative to the root (bytes as they are).
    pub path: OsString,
    pub dir: bool,
    /// O_RDONLY/O_WRONLY/O_RDWR, and O_APPEND, as the original had them.
    pub flags: i32,
}

impl Reopen {
    /// Whether the file may be read / written through it.
    pub fn reads(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_RDONLY | libc::O_RDWR)
    }
    pub fn writes(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR)
    }

    /// The form it travels in on the sandbox helper's command line:
    /// `FD:d|f:FLAGS:PATH` (the path last, bytes as they are).
    pub fn to_arg(&self) -> OsString {
        let mut bytes = format!(
            "{}:{}:{}:",
            self.fd,
            if self.dir { 'd' } else { 'f' },
            self.flags
        )
        .into_bytes();
        bytes.extend_from_slice(self.path.as_bytes());
        OsString::from_vec(bytes)
    }

    pub fn from_arg(arg: &std::ffi::OsStr) -> Option<Reopen> {
        let mut parts = arg.as_bytes().splitn(4, |b| *b == b':');
        let fd = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let dir = match parts.next()? {
            b"d" => true,
            b"f" => false,
            _ => return None,
        };
        let flags = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let path = OsString::from_vec(parts.next()?.to_vec());
        Some(Reopen {
            fd,
            path,
            dir,
            flags,
        })
    }
}

/// Why an inherited descriptor cannot be given to the command.
#[derive(Debug, thiserror::Error)]
pub enum InheritError {
    #[error(
        "descriptor {fd} refers to the directory {path}, outside the monitored root: the command could walk from it to the root's files unseen; close it (e.g. `{fd}<&-`) or make it refer to a directory under the root"
    )]
    DirOutside { fd: i32, path: String },
    #[error(
        "descriptor {fd} is an O_PATH descriptor on {path}, outside the monitored root; close it before running tracelink"
    )]
    PathOutside { fd: i32, path: String },
    #[error(
        "descriptor {fd} refers to {path}, which no longer holds the file the descriptor is open on; close it before running tracelink"
    )]
    Moved { fd: i32, path: String },
}

/// What the recorder learns of its inherited descriptors.
#[derive(Debug, Default)]
pub struct Plan {
    pub reopen: Vec<Reopen>,
    /// Why the run cannot be complete (a name that is not UTF-8).
    pub incomplete: Vec<String>,
}

/// Looks at this process's descriptors the command would inherit (not
/// close-on-exec, not in `skip`).
pub fn plan(root: &Path, skip: &[i32]) -> Result<Plan, InheritError> {
    let mut plan = Plan::default();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Ok(plan);
    };
    let mut fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    fds.sort();
    for fd in fds {
        if skip.contains(&fd) {
            continue;
        }
        let Some((cloexec, _)) = crate::sys::fd_flags(fd) else {
            continue;
        };
        let Some(flags) = crate::sys::fd_status_flags(fd) else {
            continue;
        };
        if cloexec {
            continue;
        }
        let link = PathBuf::from(format!("/proc/self/fd/{fd}"));
        let Ok(target) = std::fs::read_link(&link) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&link) else {
            continue;
        };
        let o_path = flags & libc::O_PATH != 0;
        let shown = crate::record::contain::display_bytes(target.as_os_str());
        // Only absolute names are paths; pipes, sockets and anonymous inodes
        // read `pipe:[...]` and the like.
        if !target.is_absolute() {
            continue;
        }
        let under = target.strip_prefix(root).ok().map(Path::to_path_buf);
        let Some(rel) = under else {
            if meta.is_dir() {
                return Err(InheritError::DirOutside { fd, path: shown });
            }
            if o_path {
                return Err(InheritError::PathOutside { fd, path: shown });
            }
            continue;
        };
        if !(meta.is_dir() || meta.is_file()) {
            // A fifo or socket under the root is not an artifact; an
            // O_PATH descriptor on one cannot reach any file.
            continue;
        }
        // The name must still hold this very file (a deleted or renamed-over
        // file's descriptor names a path that is something else now).
        let here = std::fs::symlink_metadata(&target);
        if !here.is_ok_and(|h| (h.dev(), h.ino()) == (meta.dev(), meta.ino())) {
            if meta.nlink() == 0 {
                // Deleted before the run: no name under the root reaches it.
                continue;
            }
            return Err(InheritError::Moved { fd, path: shown });
        }
        if rel.to_str().is_none() {
            plan.incomplete.push(format!(
                "the inherited descriptor {fd} refers to {shown}, whose name is not valid UTF-8 and cannot be an in-toto artifact name"
            ));
        }
        let dir = meta.is_dir();
        plan.reopen.push(Reopen {
            fd,
            path: rel.into_os_string(),
            dir,
            flags: if o_path {
                libc::O_PATH
            } else {
                flags & (libc::O_ACCMODE | libc::O_APPEND)
            },
        });
    }
    Ok(plan)
}

/// An inherited descriptor reopened through the mount (in PID 1).
pub struct Reopened {
    pub fd: i32,
    /// The new open file description (PID 1 keeps this copy to read the
    /// final offset; the command gets it as `fd`).
    pub file: OwnedFd,
}

impl Reopened {
    /// Opens `reopen.path` under `root` (the mount) as the original was
    /// opened, at the original's offset.
    pub fn open(root: &Path, reopen: &Reopen) -> std::io::Result<Reopened> {
        use nix::fcntl::OFlag;
        let path = root.join(&reopen.path);
        let mut flags = OFlag::from_bits_retain(reopen.flags) | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        if reopen.dir {
            flags |= OFlag::O_DIRECTORY;
        }
        let file = nix::fcntl::open(&path, flags, nix::sys::stat::Mode::empty())
            .map_err(std::io::Error::from)?;
        if !reopen.dir && reopen.flags & libc::O_PATH == 0 {
            let offset = crate::sys::offset_of(reopen.fd);
            if let Ok(offset) = offset {
                nix::unistd::lseek(file.as_fd(), offset, nix::unistd::Whence::SeekSet)
                    .map_err(std::io::Error::from)?;
            }
        }
        Ok(Reopened {
            fd: reopen.fd,
            file,
        })
    }

    /// Puts the reopened description in the original's place (in the
    /// command's process, before it executes).
    pub fn install(&self) -> std::io::Result<()> {
        crate::sys::dup2(self.file.as_fd(), self.fd)
    }

    /// Hands the reopened description's offset back to the original, which
    /// tracelink's caller still shares.
    pub fn hand_back_offset(&self) {
        use nix::unistd::{Whence, lseek};
        if let Ok(offset) = lseek(self.file.as_fd(), 0, Whence::SeekCur) {
            let _ = crate::sys::set_offset(self.fd, offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_travels_with_any_path_bytes() {
        let r = Reopen {
            fd: 7,
            path: OsString::from_vec(b"a:b/\xff name".to_vec()),
            dir: false,
            flags: libc::O_WRONLY | libc::O_APPEND,
        };
        assert_eq!(Reopen::from_arg(&r.to_arg()), Some(r.clone()));
        assert!(r.writes() && !r.reads());
    }
}
