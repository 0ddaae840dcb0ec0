//! Replaying a recorded step (`tracelink rerun`): the inputs a replay needs
//! (every recorded material with its mode, taken from a content-addressed
//! store or from the original root, each checked against its recorded
//! digest), the environment to run it in, and the comparison of what the
//! replay did with what the recording says: products identical, different
//! (with the first differing byte), missing or extra; inputs the replay read
//! that the recording does not list (hidden inputs); probes whose answer
//! changed.
//!
//! Links and traces may be crafted (docs/threat-model.md, "Links, traces and
//! layouts made by others"):
//! every name they give is checked before anything is created (a material
//! is a relative path of plain components: no `..`, `.`, empty component,
//! leading `/` or NUL; the root and the starting directory are absolute
//! paths of such components), and the work tree is written only through
//! descriptors, one checked component at a time, with
//! openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) ([`Beneath`]): a name
//! that would escape, or a symlink met on the way (whoever planted it), is
//! refused, naming the path, and nothing is created outside the work
//! directory. Materials are restored as regular files (a recorded symlink
//! material as the file it resolved to); the symlinks the recording only
//! probed are recreated last, after every file and directory, so no write
//! of the rerun passes through a symlink of its own making either.
//! Materials read from the original root are opened beneath it
//! (RESOLVE_BENEATH): a symlink there that leads outside the root is refused.
//! Recorded modes keep their permission bits only (no setuid, setgid or
//! sticky bit on files a crafted trace describes).
//!
//! This module knows links, traces, the store and files. It knows nothing of
//! FUSE, of how the replay runs, or of printing.

use crate::account::Trace;
use crate::hash::{self, Algorithm};
use crate::link::{ArtifactMap, Link};
use crate::store::{Store, StoreError};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    #[error(
        "material {path} has no sha256 digest in the link; only sha256 content can be restored"
    )]
    NoSha256 { path: String },
    #[error(
        "material {path} changed since the recording: {file} now has sha256 {now}, the link records {recorded}; give the recording's --store to rerun"
    )]
    Changed {
        path: String,
        file: PathBuf,
        recorded: String,
        now: String,
    },
    #[error(
        "material {path} is neither in the store nor readable at {file} ({reason}); give the recording's --store to rerun"
    )]
    Unavailable {
        path: String,
        file: PathBuf,
        reason: String,
    },
    #[error("the trace does not say which root the step was recorded in")]
    NoRoot,
    #[error("material {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path:?} is refused: {reason}")]
    BadName {
        what: &'static str,
        path: String,
        reason: &'static str,
    },
    #[error(
        "{path} is a symlink (or one is on the way to it): the rerun follows no symlink beneath its work directory"
    )]
    Symlink { path: PathBuf },
    #[error(
        "material {path}: {file} leads outside the original root {root} (through a symlink); give the recording's --store to rerun"
    )]
    OutsideRoot {
        path: String,
        file: PathBuf,
        root: PathBuf,
    },
}

/// Where a material's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The store holds an object with its sha256.
    Store,
    /// The original root still holds it unchanged (checked by hashing).
    Root(PathBuf),
}

/// One material to put into the work tree.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: String,
    pub sha256: String,
    /// Permission bits as recorded (0o644 when the trace does not say).
    pub mode: u32,
    pub source: Source,
}

/// Where the recording ran, from its trace, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// The original root: absolute, plain components.
    pub root: PathBuf,
    pub start: Start,
}

/// Where the recorded command started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Beneath the root: this relative path of plain components ("" for the
    /// root itself), created in the work tree.
    InRoot(String),
    /// Outside the root: this absolute path, which must exist here (the
    /// rerun creates nothing there).
    Outside(PathBuf),
}

impl Places {
    /// The starting directory as the replayed command sees it (the work
    /// tree is mounted at the root's path).
    pub fn cwd(&self) -> PathBuf {
        match &self.start {
            Start::InRoot(rel) if rel.is_empty() => self.root.clone(),
            Start::InRoot(rel) => self.root.join(rel),
            Start::Outside(dir) => dir.clone(),
        }
    }
}

/// The trace's root and starting directory, refused unless each is an
/// absolute path of plain components (a crafted `cwd` of `ROOT/../..`
/// would otherwise name a directory outside the work tree).
pub fn places(trace: &Trace) -> Result<Places, RerunError> {
    let root = trace.root.as_deref().ok_or(RerunError::NoRoot)?;
    let root_parts = absolute_components("the trace's root", root)?;
    let cwd = trace.cwd.as_deref().ok_or(RerunError::BadName {
        what: "the trace's starting directory (cwd)",
        path: String::new(),
        reason: "the trace names none",
    })?;
    let cwd_parts = absolute_components("the trace's starting directory (cwd)", cwd)?;
    let start = match cwd_parts.strip_prefix(root_parts.as_slice()) {
        Some(rest) => Start::InRoot(rest.join("/")),
        None => Start::Outside(PathBuf::from(cwd)),
    };
    Ok(Places {
        root: PathBuf::from(root),
        start,
    })
}

/// What to restore, and the original root opened to read from.
#[derive(Debug)]
pub struct Plan {
    pub inputs: Vec<Input>,
    original: Option<OriginalRoot>,
    /// The modification time (seconds since the epoch) every restored file
    /// gets: one instant before the replay starts, so that no restored file
    /// looks newer than another (make would otherwise rebuild a generated
    /// file, `aclocal.m4` or `configure`, whose source was restored after
    /// it), and every product of the replay is newer than every input.
    pub mtime: i64,
}

/// Seconds since the epoch at which restored files are dated: a second
/// before the recording started (the trace's `started`), or before now.
fn restored_mtime(trace: &Trace) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let started = trace
        .raw
        .get("started")
        .and_then(|s| s.as_str())
        .and_then(|s| s.parse::<f64>().ok())
        .map(|s| s as i64)
        .filter(|&s| s > 0 && s < now);
    started.unwrap_or(now) - 1
}

/// Dates `leaf` beneath `dir` at `secs` (not following a symlink).
fn set_mtime(dir: &Beneath, leaf: &str, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    let _ = nix::sys::stat::utimensat(
        &dir.fd,
        leaf,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

/// Finds every material's content: in `store` if it holds the digest, else
/// at the original root (the trace's `root`), where it must still hash to the
/// recorded digest. Every material name is checked first; the first material
/// that is refused or cannot be had is the error.
pub fn plan_inputs(link: &Link, trace: &Trace, store: Option<&Store>) -> Result<Plan, RerunError> {
    for path in link.materials.keys() {
        check_name(path)?;
    }
    let root = PathBuf::from(trace.root.as_deref().ok_or(RerunError::NoRoot)?);
    let original = OriginalRoot::open(&root);
    let mut inputs = Vec::new();
    for (path, digests) in &link.materials {
        let sha256 = digests
            .get("sha256")
            .ok_or_else(|| RerunError::NoSha256 { path: path.clone() })?
            .clone();
        let mode = trace
            .artifacts
            .get(path)
            .and_then(|a| a.material.as_ref())
            .and_then(|m| m.mode)
            .unwrap_or(0o644)
            & 0o777;
        let source = if store.is_some_and(|s| s.contains(&sha256)) {
            Source::Store
        } else {
            let file = root.join(path);
            let now = match &original {
                Ok(original) => original.sha256(path),
                Err(e) => Err(Unreadable::Io(std::io::Error::new(
                    e.kind(),
                    format!("the original root {}: {e}", root.display()),
                ))),
            };
            match now {
                Ok(now) if now == sha256 => Source::Root(file),
                Ok(now) => {
                    return Err(RerunError::Changed {
                        path: path.clone(),
                        file,
                        recorded: sha256,
                        now,
                    });
                }
                Err(e) => return Err(e.into_error(path, file, &root)),
            }
        };
        inputs.push(Input {
            path: path.clone(),
            sha256,
            mode,
            source,
        });
    }
    Ok(Plan {
        inputs,
        original: original.ok(),
        mtime: restored_mtime(trace),
    })
}

/// A material name: a relative path of plain components, so that it names
/// a file beneath the work tree and nothing else.
fn check_name(path: &str) -> Result<Vec<&str>, RerunError> {
    relative_components(path).map_err(|reason| RerunError::BadName {
        what: "material name",
        path: path.into(),
        reason,
    })
}

/// The components of `path` if it is relative and every component is a
/// plain name; else why not.
fn relative_components(path: &str) -> Result<Vec<&str>, &'static str> {
    if path.is_empty() {
        return Err("it is empty");
    }
    if path.contains('\0') {
        return Err("it contains a NUL byte");
    }
    if path.starts_with('/') {
        return Err("it is an absolute path, not one beneath the root");
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err("it has an empty component (`//` or a final `/`)"),
            "." => return Err("it has a `.` component"),
            ".." => return Err("it has a `..` component, which could lead outside the tree"),
            _ => {}
        }
    }
    Ok(parts)
}

/// The components of the absolute `path` (none for `/`), each a plain name.
fn absolute_components<'a>(what: &'static str, path: &'a str) -> Result<Vec<&'a str>, RerunError> {
    let bad = |reason| RerunError::BadName {
        what,
        path: path.into(),
        reason,
    };
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("it is not an absolute path"))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    relative_components(rest).map_err(bad)
}

/// A directory the rerun writes beneath: opened once; everything beneath
/// it is created and opened through descriptors, one checked component at
/// a time, with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and
/// O_NOFOLLOW, so neither a name from a link or trace nor a symlink
/// (whoever planted it) can lead a write outside it.
#[derive(Debug)]
pub struct Beneath {
    fd: OwnedFd,
    /// The path it was reached by, for messages.
    path: PathBuf,
}

/// Flags of a directory opened beneath another.
const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_RDONLY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens the single component `name` beneath `dir`, following no symlink.
/// Without openat2 (kernels before 5.6, or a container's seccomp filter
/// that answers ENOSYS or EPERM) openat with O_NOFOLLOW does the same for
/// one plain component.
fn open_beneath(dir: BorrowedFd<'_>, name: &str, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    match nix::fcntl::openat2(dir, name, how) {
        Err(Errno::ENOSYS | Errno::EPERM) => nix::fcntl::openat(dir, name, flags, mode),
        other => other,
    }
}

impl Beneath {
    /// Opens the directory `path` (the caller's own: the work directory),
    /// not following a final symlink.
    pub fn open(path: &Path) -> Result<Beneath, RerunError> {
        let fd = nix::fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| {
            if e == Errno::ELOOP {
                RerunError::Symlink { path: path.into() }
            } else {
                RerunError::Create {
                    path: path.into(),
                    source: e.into(),
                }
            }
        })?;
        Ok(Beneath {
            fd,
            path: path.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, name: &str, e: Errno) -> RerunError {
        let path = self.path.join(name);
        // RESOLVE_NO_SYMLINKS / O_NOFOLLOW met a symlink (ELOOP, or ENOTDIR
        // with O_DIRECTORY); EXDEV: the resolution left the directory
        // (cannot happen for one plain component, named all the same).
        let symlink = matches!(e, Errno::ELOOP | Errno::EXDEV)
            || nix::sys::stat::fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
        if symlink {
            RerunError::Symlink { path }
        } else {
            RerunError::Create {
                path,
                source: e.into(),
            }
        }
    }

    /// Creates (if absent) and opens the directory `name`, one plain
    /// component, mode 0755 before the umask.
    pub fn create_dir(&self, name: &str) -> Result<Beneath, RerunError> {
        match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.error(name, e)),
        }
        let fd = open_beneath(self.fd.as_fd(), name, DIR_FLAGS, Mode::empty())
            .map_err(|e| self.error(name, e))?;
        Ok(Beneath {
            fd,
            path: self.path.join(name),
        })
    }

    /// Creates (if absent) every directory of `parts` in turn and opens the
    /// last (this directory for no parts).
    fn create_dirs(&self, parts: &[&str]) -> Result<Beneath, RerunError> {
        let mut dir = Beneath {
            fd: self.fd.try_clone().map_err(|source| RerunError::Create {
                path: self.path.clone(),
                source,
            })?,
            path: self.path.clone(),
        };
        for part in parts {
            dir = dir.create_dir(part)?;
        }
        Ok(dir)
    }

    /// Creates the directory `rel` (a relative path of plain components,
    /// "" for this directory itself) and its parents.
    pub fn create_path(&self, rel: &str) -> Result<Beneath, RerunError> {
        if rel.is_empty() {
            return self.create_dirs(&[]);
        }
        let parts = relative_components(rel).map_err(|reason| RerunError::BadName {
            what: "directory",
            path: rel.into(),
            reason,
        })?;
        self.create_dirs(&parts)
    }

    /// Creates the new file `name` (one plain component, never one that
    /// exists, never through a symlink), mode 0600 until the caller sets it.
    fn create_file(&self, name: &str) -> Result<File, RerunError> {
        open_beneath(
            self.fd.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY,
            Mode::from_bits_truncate(0o600),
        )
        .map(File::from)
        .map_err(|e| self.error(name, e))
    }
}

/// The original root, opened once to read materials beneath it.
#[derive(Debug)]
struct OriginalRoot {
    fd: OwnedFd,
    path: PathBuf,
}

/// Why a material at the original root cannot be read.
enum Unreadable {
    /// A symlink (or `..`) on the way leads outside the root.
    Outside,
    Io(std::io::Error),
}

impl Unreadable {
    fn into_error(self, path: &str, file: PathBuf, root: &Path) -> RerunError {
        match self {
            Unreadable::Outside => RerunError::OutsideRoot {
                path: path.into(),
                file,
                root: root.into(),
            },
            Unreadable::Io(e) => RerunError::Unavailable {
                path: path.into(),
                file,
                reason: e.to_string(),
            },
        }
    }
}

impl OriginalRoot {
    /// The root is this machine's directory at the trace's path (the rerun
    /// mounts its work tree there too): opened by that path.
    fn open(root: &Path) -> std::io::Result<OriginalRoot> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(OriginalRoot {
            fd,
            path: root.into(),
        })
    }

    /// Opens the regular file `rel` beneath the root: symlinks inside the
    /// root are followed (a recorded symlink material is one), none that
    /// leads outside it, no magic link, no FIFO or device.
    fn open_file(&self, rel: &str) -> Result<File, Unreadable> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = match nix::fcntl::openat2(self.fd.as_fd(), rel, how) {
            Ok(fd) => fd,
            Err(Errno::EXDEV) => return Err(Unreadable::Outside),
            // No openat2 (see `open_beneath`): one component at a time,
            // following no symlink at all.
            Err(Errno::ENOSYS | Errno::EPERM) => self.open_file_nofollow(rel)?,
            Err(e) => return Err(Unreadable::Io(e.into())),
        };
        let file = File::from(fd);
        let meta = file.metadata().map_err(Unreadable::Io)?;
        if !meta.is_file() {
            return Err(Unreadable::Io(std::io::Error::other("not a regular file")));
        }
        Ok(file)
    }

    fn open_file_nofollow(&self, rel: &str) -> Result<OwnedFd, Unreadable> {
        let parts = relative_components(rel)
            .map_err(|reason| Unreadable::Io(std::io::Error::other(reason)))?;
        let (last, dirs) = parts.split_last().expect("a name has a component");
        let mut dir = self.fd.try_clone().map_err(Unreadable::Io)?;
        for part in dirs {
            dir = nix::fcntl::openat(&dir, *part, DIR_FLAGS, Mode::empty())
                .map_err(|e| Unreadable::Io(e.into()))?;
        }
        nix::fcntl::openat(
            &dir,
            *last,
            OFlag::O_RDONLY
                | OFlag::O_NOCTTY
                | OFlag::O_NONBLOCK
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Unreadable::Io(e.into()))
    }

    fn sha256(&self, rel: &str) -> Result<String, Unreadable> {
        let mut file = self.open_file(rel)?;
        sha256_of_file(&mut file).map_err(Unreadable::Io)
    }
}

impl Plan {
    /// Writes every input beneath `tree`, creating directories (0755) as
    /// needed, each file new (never over one that exists) with its
    /// recorded permission bits, and checks each written file's digest.
    /// `done` is told the bytes written so far.
    pub fn populate(
        &self,
        tree: &Beneath,
        store: Option<&Store>,
        done: &mut dyn FnMut(u64),
    ) -> Result<(), RerunError> {
        let mut bytes = 0u64;
        for input in &self.inputs {
            let parts = check_name(&input.path)?;
            let (leaf, dirs) = parts.split_last().expect("a name has a component");
            let parent = tree.create_dirs(dirs)?;
            let dest = parent.path.join(leaf);
            let written = match &input.source {
                Source::Store => {
                    // The store writes a new file by path: this one resolves
                    // through our descriptor of the checked parent, and its
                    // last component is created O_EXCL (never through a
                    // symlink).
                    let through_fd =
                        PathBuf::from(format!("/proc/self/fd/{}", parent.fd.as_raw_fd()))
                            .join(leaf);
                    store
                        .expect("planned from the store")
                        .restore(&input.sha256, &through_fd, input.mode)
                        .map_err(|source| RerunError::Store {
                            path: input.path.clone(),
                            source,
                        })?;
                    nix::sys::stat::fstatat(
                        &parent.fd,
                        *leaf,
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map(|st| st.st_size as u64)
                    .unwrap_or(0)
                }
                Source::Root(file) => {
                    let original =
                        self.original
                            .as_ref()
                            .ok_or_else(|| RerunError::Unavailable {
                                path: input.path.clone(),
                                file: file.clone(),
                                reason: "the original root cannot be opened".into(),
                            })?;
                    let mut src = original
                        .open_file(&input.path)
                        .map_err(|e| e.into_error(&input.path, file.clone(), &original.path))?;
                    let mut out = parent.create_file(leaf)?;
                    let create = |source| RerunError::Create {
                        path: dest.clone(),
                        source,
                    };
                    let (now, size) = copy_hashing(&mut src, &mut out).map_err(create)?;
                    if now != input.sha256 {
                        drop(out);
                        let _ = nix::unistd::unlinkat(
                            &parent.fd,
                            *leaf,
                            nix::unistd::UnlinkatFlags::NoRemoveDir,
                        );
                        return Err(RerunError::Changed {
                            path: input.path.clone(),
                            file: file.clone(),
                            recorded: input.sha256.clone(),
                            now,
                        });
                    }
                    use std::os::unix::fs::PermissionsExt as _;
                    out.set_permissions(std::fs::Permissions::from_mode(input.mode))
                        .map_err(create)?;
                    size
                }
            };
            set_mtime(&parent, leaf, self.mtime);
            bytes += written;
            done(bytes);
        }
        Ok(())
    }
}

/// One path the recording only probed, as its trace describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub path: String,
    pub kind: String,
    pub mode: u32,
    pub size: u64,
    pub target: Option<String>,
    pub sha256: Option<String>,
}

/// How a probed path was recreated in the work tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recreated {
    /// With its recorded content (from the store or the original root).
    Content,
    /// A file of the recorded kind, mode and size, without its content.
    Placeholder,
    /// A directory or symlink.
    Entry,
    /// Already there (a material, or a directory on the way to one).
    Existing,
    /// Not recreated: why.
    Skipped(String),
}

/// The paths the recording only probed (the trace's `probed`), names
/// checked, materials left out (they are restored as such).
pub fn probed(trace: &Trace, link: &Link) -> Vec<Probed> {
    let Some(map) = trace.raw.get("probed").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, v) in map {
        if link.materials.contains_key(path) || check_name(path).is_err() {
            continue;
        }
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let sha256 =
            s("sha256").filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
        out.push(Probed {
            path: path.clone(),
            kind: s("kind").unwrap_or_default(),
            mode: v.get("mode").and_then(|m| m.as_u64()).unwrap_or(0o644) as u32 & 0o777,
            size: v.get("size").and_then(|m| m.as_u64()).unwrap_or(0),
            target: s("target"),
            sha256,
        });
    }
    out
}

/// Placeholders larger than this are created sparse all the same; a
/// crafted trace cannot make the rerun write more than this many bytes.
const PLACEHOLDER_MAX: u64 = 1 << 30;

impl Plan {
    /// Recreates the probed paths beneath `tree` after the materials:
    /// directories, then files (content from the store, else from the
    /// original root when it still has the recorded digest, else a
    /// placeholder of the recorded size and mode), then symlinks, so that
    /// no creation passes through a symlink. Nothing that exists is
    /// replaced. Returns how each was recreated.
    pub fn recreate_probes(
        &self,
        tree: &Beneath,
        probed: &[Probed],
        store: Option<&Store>,
    ) -> Vec<(String, Recreated)> {
        let mut out = Vec::new();
        let order = |p: &Probed| match p.kind.as_str() {
            "dir" => 0,
            "file" => 1,
            "symlink" => 2,
            _ => 3,
        };
        let mut sorted: Vec<&Probed> = probed.iter().collect();
        sorted.sort_by_key(|p| (order(p), p.path.matches('/').count()));
        for p in sorted {
            let result = self.recreate_one(tree, p, store);
            if matches!(result, Ok(Recreated::Content | Recreated::Placeholder))
                && let Ok(parts) = check_name(&p.path)
                && let Some((leaf, dirs)) = parts.split_last()
                && let Ok(parent) = tree.create_dirs(dirs)
            {
                set_mtime(&parent, leaf, self.mtime);
            }
            out.push((
                p.path.clone(),
                result.unwrap_or_else(|e| Recreated::Skipped(e.to_string())),
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn recreate_one(
        &self,
        tree: &Beneath,
        p: &Probed,
        store: Option<&Store>,
    ) -> Result<Recreated, RerunError> {
        let parts = check_name(&p.path)?;
        let (leaf, dirs) = parts.split_last().expect("a name has a component");
        let parent = tree.create_dirs(dirs)?;
        let exists =
            nix::sys::stat::fstatat(&parent.fd, *leaf, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok();
        if exists {
            return Ok(Recreated::Existing);
        }
        match p.kind.as_str() {
            "dir" => {
                parent.create_dir(leaf)?;
                Ok(Recreated::Entry)
            }
            "symlink" => {
                let target = p.target.as_deref().unwrap_or_default();
                if target.is_empty() || target.contains('\0') {
                    return Ok(Recreated::Skipped("no symlink target recorded".into()));
                }
                nix::unistd::symlinkat(target, &parent.fd, *leaf)
                    .map_err(|e| parent.error(leaf, e))?;
                Ok(Recreated::Entry)
            }
            "file" => {
                use std::os::unix::fs::PermissionsExt as _;
                let dest = parent.path.join(leaf);
                // Permission bits only: no setuid, setgid or sticky bit.
                let mode = p.mode & 0o777;
                if let (Some(store), Some(sha)) = (store, &p.sha256)
                    && store.contains(sha)
                {
                    let through_fd =
                        PathBuf::from(format!("/proc/self/fd/{}", parent.fd.as_raw_fd()))
                            .join(leaf);
                    store
                        .restore(sha, &through_fd, mode)
                        .map_err(|source| RerunError::Store {
                            path: p.path.clone(),
                            source,
                        })?;
                    return Ok(Recreated::Content);
                }
                let create = |source| RerunError::Create {
                    path: dest.clone(),
                    source,
                };
                if let (Some(original), Some(sha)) = (&self.original, &p.sha256)
                    && original.sha256(&p.path).ok().as_ref() == Some(sha)
                    && let Ok(mut src) = original.open_file(&p.path)
                {
                    let mut out = parent.create_file(leaf)?;
                    let (now, _) = copy_hashing(&mut src, &mut out).map_err(create)?;
                    if now == *sha {
                        out.set_permissions(std::fs::Permissions::from_mode(mode))
                            .map_err(create)?;
                        return Ok(Recreated::Content);
                    }
                    drop(out);
                    let _ = nix::unistd::unlinkat(
                        &parent.fd,
                        *leaf,
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                }
                let out = parent.create_file(leaf)?;
                out.set_len(p.size.min(PLACEHOLDER_MAX)).map_err(create)?;
                out.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(create)?;
                Ok(Recreated::Placeholder)
            }
            other => Ok(Recreated::Skipped(format!("a {other} is not recreated"))),
        }
    }
}

/// Copies `src` to `out`, returning the sha256 of the bytes written and
/// their number.
fn copy_hashing(src: &mut File, out: &mut File) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn sha256_of_file(file: &mut File) -> std::io::Result<String> {
    let mut buf = vec![0u8; 256 * 1024];
    let digests = hash::digest_reader(file, &[Algorithm::Sha256], &mut buf)?;
    Ok(digests
        .into_iter()
        .next()
        .expect("one algorithm asked for")
        .1)
}

/// A value a trace of format 1 kept only as its sha256 (`sha256:<hex>`).
fn digest_only(value: &str) -> bool {
    value.starts_with("sha256:") && value.len() == 7 + 64
}

/// The variables whose recorded values are not their values: the trace's
/// `redacted` list (format 2, where they hold `<redacted:NAME>` markers),
/// or in older traces those kept only as `sha256:<hex>`.
pub fn redacted(trace: &Trace) -> BTreeSet<String> {
    match trace.raw.get("redacted") {
        Some(list) => list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect(),
        None => trace
            .environment
            .iter()
            .filter(|(_, value)| digest_only(value))
            .map(|(name, _)| name.clone())
            .collect(),
    }
}

/// A variable of the recorded environment the rerun could not restore as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvNote {
    /// Redacted in the trace and absent now: left out.
    RedactedMissing { name: String },
    /// Redacted in the trace: the current value is used, and there is
    /// nothing to compare it with.
    RedactedNotCompared { name: String },
    /// Redacted in an old trace that kept its sha256; the current value has
    /// another digest.
    RedactedDiffers { name: String },
}

/// The recorded environment, with each redacted value taken from `current`,
/// and notes on what could not be restored as recorded. Old traces (format
/// 1) published a digest, which is checked.
pub fn environment(
    trace: &Trace,
    current: &BTreeMap<String, String>,
) -> (Vec<(String, String)>, Vec<EnvNote>) {
    let redacted = redacted(trace);
    let mut env = Vec::new();
    let mut notes = Vec::new();
    for (name, value) in &trace.environment {
        if !redacted.contains(name) {
            env.push((name.clone(), value.clone()));
            continue;
        }
        match current.get(name) {
            None => notes.push(EnvNote::RedactedMissing { name: name.clone() }),
            Some(now) => {
                if !digest_only(value) {
                    notes.push(EnvNote::RedactedNotCompared { name: name.clone() });
                } else if *value
                    != format!("sha256:{}", hex::encode(Sha256::digest(now.as_bytes())))
                {
                    notes.push(EnvNote::RedactedDiffers { name: name.clone() });
                }
                env.push((name.clone(), now.clone()));
            }
        }
    }
    (env, notes)
}

/// How one product of the recording compares with the replay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Identical,
    /// Different content; `first_difference` is the offset of the first
    /// differing byte when the original content was available to compare.
    Different {
        original: Option<PathBuf>,
        first_difference: Option<u64>,
    },
    /// The recording has it, the replay did not produce it.
    Missing,
    /// The replay produced it, the recording does not have it.
    Extra,
}

/// The comparison of a replay with its recording.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Every product of either run (path → verdict).
    pub products: BTreeMap<String, Verdict>,
    /// Inputs the replay read, or looked for and did not find, that the
    /// recording neither lists nor looked for.
    pub hidden_inputs: Vec<String>,
    /// Recorded materials the replay did not use.
    pub unused_inputs: Vec<String>,
    /// Paths looked up in both runs and found in one only:
    /// (path, missing in the original, missing in the rerun).
    pub probes_changed: Vec<(String, bool, bool)>,
    /// Files the recording only probed (stat, lookup) that the replay read:
    /// the rerun gave it what the recording saw of them, perhaps a
    /// placeholder without their content.
    pub read_probed: Vec<String>,
    /// The process trees as (chain of programs, argv with temporary names
    /// normalized) with their counts in each run, where they differ.
    pub processes: ProcessComparison,
    /// The first product (in path order) that is not identical, and the
    /// process that wrote it (the rerun's, else the recording's).
    pub first_divergence: Option<(String, Option<String>)>,
}

/// The process trees of the two runs compared as multisets of
/// (chain of programs, normalized argv).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessComparison {
    pub recorded: usize,
    pub rerun: usize,
    /// (chain, argv, count in the recording, count in the rerun), for every
    /// key whose counts differ, in order of first start in either run.
    pub differing: Vec<(String, String, usize, usize)>,
}

impl Comparison {
    /// Every product identical and none missing or extra.
    pub fn reproduced(&self) -> bool {
        self.products.values().all(|v| *v == Verdict::Identical)
    }
}

/// Compares the replay (`rerun` link and trace, its files under `rerun_tree`)
/// with the recording. Original bytes of a differing product come from the
/// store or from the original root, when either still has them.
pub fn compare(
    original: &Link,
    original_trace: &Trace,
    rerun: &ArtifactMap,
    rerun_materials: &ArtifactMap,
    rerun_trace: Option<&Trace>,
    rerun_tree: &Path,
    store: Option<&Store>,
) -> Comparison {
    let mut out = Comparison::default();
    for (path, digests) in &original.products {
        let verdict = match rerun.get(path) {
            None => Verdict::Missing,
            Some(now) if now == digests => Verdict::Identical,
            Some(_) => {
                let original_file =
                    original_content(path, digests.get("sha256"), original_trace, store);
                let first_difference = original_file
                    .as_deref()
                    .and_then(|a| first_difference(a, &rerun_tree.join(path)));
                Verdict::Different {
                    original: original_file,
                    first_difference,
                }
            }
        };
        out.products.insert(path.clone(), verdict);
    }
    for path in rerun.keys() {
        if !original.products.contains_key(path) {
            out.products.insert(path.clone(), Verdict::Extra);
        }
    }
    let probed_before = |p: &str| {
        original_trace.probes.stat_only.iter().any(|s| s == p)
            || original_trace
                .raw
                .get("probed")
                .and_then(|m| m.get(p))
                .is_some()
    };
    for path in rerun_materials.keys() {
        if original.materials.contains_key(path) {
            continue;
        }
        if probed_before(path) {
            out.read_probed.push(path.clone());
        } else {
            out.hidden_inputs.push(path.clone());
        }
    }
    out.unused_inputs = original
        .materials
        .keys()
        .filter(|p| !rerun_materials.contains_key(*p))
        .cloned()
        .collect();
    if let Some(rerun_trace) = rerun_trace {
        // A path the rerun looked for and did not find, which the original
        // never looked for: an input the recording does not have (the work
        // tree holds only recorded materials, so reading it failed).
        for path in missing(rerun_trace) {
            // A name the rerun looked up and then created itself (mkstemp,
            // ar's temporary member file, libtool's temporary directories),
            // or one beneath a directory either run created: not an input.
            if created_by(rerun_trace, &path) || created_by(original_trace, &path) {
                continue;
            }
            match answer(original_trace, &path) {
                Answer::NotAsked => out.hidden_inputs.push(path),
                Answer::Found => out.probes_changed.push((path, false, true)),
                Answer::Missing => {}
            }
        }
        for path in missing(original_trace) {
            if answer(rerun_trace, &path) == Answer::Found {
                out.probes_changed.push((path, true, false));
            }
        }
        out.hidden_inputs.sort();
        out.hidden_inputs.dedup();
        out.probes_changed.sort();
        out.processes = compare_processes(original_trace, rerun_trace);
    }
    out.first_divergence = out
        .products
        .iter()
        .find(|(_, v)| **v != Verdict::Identical)
        .map(|(path, _)| {
            let writer = rerun_trace
                .and_then(|t| writer_of(t, path))
                .or_else(|| writer_of(original_trace, path));
            (path.clone(), writer)
        });
    out
}

/// Whether `path`, or a directory above it, was created or written by the
/// run of `trace`.
fn created_by(trace: &Trace, path: &str) -> bool {
    let made: BTreeSet<&str> = trace
        .raw
        .get("made")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    let written = |p: &str| {
        made.contains(p)
            || trace
                .artifacts
                .get(p)
                .is_some_and(|a| !a.written_by.is_empty())
    };
    let mut p = path;
    loop {
        if written(p) {
            return true;
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// The process of `trace` that wrote `path`: its argv, quoted roughly.
fn writer_of(trace: &Trace, path: &str) -> Option<String> {
    let pid = *trace.artifacts.get(path)?.written_by.first()?;
    let procs = trace.process_tree.as_ref()?;
    let proc = procs.iter().find(|p| p.pid == pid)?;
    let argv = proc
        .execs
        .last()
        .map(|e| e.argv.join(" "))
        .unwrap_or_default();
    Some(format!("pid {pid}: {argv}"))
}

/// A temporary name with the random part masked: a path component whose
/// stem is a prefix and 6 or more letters and digits in mixed case or with
/// digits (`ccAbC123.s`, `stJrgOB2`, `conftest.Xy12ab`, `lt-Ab3dEf`).
fn normalize_arg(arg: &str, transient: &BTreeSet<String>) -> String {
    let parts: Vec<&str> = arg.split('/').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // A name the run made and removed (configure's `conf$$RANDOM`).
            if transient.contains(*part) {
                return "*".to_string();
            }
            // A name directly in a temporary directory is random (gcc's
            // `/tmp/ccXXXXXX.s`, gnulib's `/tmp/cgXXXXXX/dummy.c`).
            let in_tmp = i > 0 && parts[i - 1].ends_with("tmp") && !part.is_empty();
            if in_tmp && i + 1 < parts.len() {
                return "*".to_string();
            }
            if in_tmp {
                return match part.split_once('.') {
                    Some((_, ext)) => format!("*.{ext}"),
                    None => "*".to_string(),
                };
            }
            let looks_random = |w: &str| {
                w.len() >= 6
                    && w.chars().all(|c| c.is_ascii_alphanumeric())
                    && w.chars().filter(|c| c.is_ascii_uppercase()).count() >= 1
                    && w.chars().filter(|c| c.is_ascii_lowercase()).count() >= 1
                    && w.chars()
                        .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                        .count()
                        >= 2
            };
            let mut pieces: Vec<String> = Vec::new();
            for piece in part.split('.') {
                let stem = piece.strip_prefix("lt-").unwrap_or(piece);
                let tail = stem.get(stem.len().saturating_sub(6)..).unwrap_or("");
                if looks_random(stem)
                    || (stem.len() >= 8
                        && looks_random(tail)
                        && tail.chars().any(|c| c.is_ascii_digit()))
                {
                    pieces.push("*".into());
                } else {
                    pieces.push(piece.to_string());
                }
            }
            pieces.join(".")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The last components of what the run of `trace` made or wrote and did
/// not leave behind: its temporary names.
fn transient_names(trace: &Trace) -> BTreeSet<String> {
    let made = trace
        .raw
        .get("made")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str());
    let written = trace
        .artifacts
        .iter()
        .filter(|(_, a)| !a.written_by.is_empty() && a.product.is_none() && a.material.is_none())
        .map(|(p, _)| p.as_str());
    made.chain(written)
        .filter(|p| trace.artifacts.get(*p).is_none_or(|a| a.product.is_none()))
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .filter(|n| n.len() >= 4)
        .collect()
}

/// Compares the process trees as multisets of (chain, normalized argv),
/// counting the processes that ran a program.
pub fn compare_processes(a: &Trace, b: &Trace) -> ProcessComparison {
    use crate::account::Tree;
    let empty = Vec::new();
    let keys = |t: &Trace| -> Vec<(u64, String, String)> {
        let transient = transient_names(t);
        let procs = t.process_tree.as_ref().unwrap_or(&empty);
        let tree = Tree::new(procs);
        let chains = tree.chains();
        // A process that ran no program (a subshell's fork) has no argv to
        // compare; how many a shell forks depends on timing (make -j2).
        procs
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.execs.is_empty())
            .map(|(i, p)| {
                let argv = p
                    .execs
                    .last()
                    .map(|e| {
                        e.argv
                            .iter()
                            .map(|a| normalize_arg(a, &transient))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                (p.start_ms.unwrap_or(0), chains[i].clone(), argv)
            })
            .collect()
    };
    let (ka, kb) = (keys(a), keys(b));
    let mut counts: BTreeMap<(String, String), (usize, usize, u64)> = BTreeMap::new();
    for (start, chain, argv) in &ka {
        let e = counts
            .entry((chain.clone(), argv.clone()))
            .or_insert((0, 0, u64::MAX));
        e.0 += 1;
        e.2 = e.2.min(*start);
    }
    for (start, chain, argv) in &kb {
        let e = counts
            .entry((chain.clone(), argv.clone()))
            .or_insert((0, 0, u64::MAX));
        e.1 += 1;
        e.2 = e.2.min(*start);
    }
    let mut differing: Vec<(u64, String, String, usize, usize)> = counts
        .into_iter()
        .filter(|(_, (x, y, _))| x != y)
        .map(|((chain, argv), (x, y, start))| (start, chain, argv, x, y))
        .collect();
    differing.sort();
    ProcessComparison {
        recorded: ka.len(),
        rerun: kb.len(),
        differing: differing
            .into_iter()
            .map(|(_, chain, argv, x, y)| (chain, argv, x, y))
            .collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Missing,
    Found,
    NotAsked,
}

fn missing(trace: &Trace) -> BTreeSet<String> {
    trace
        .probes
        .missing
        .iter()
        .map(|m| m.path.clone())
        .collect()
}

/// What a run learnt when it looked up `path`.
fn answer(trace: &Trace, path: &str) -> Answer {
    if trace.probes.missing.iter().any(|m| m.path == path) {
        Answer::Missing
    } else if trace.artifacts.contains_key(path) || trace.probes.stat_only.iter().any(|p| p == path)
    {
        Answer::Found
    } else {
        Answer::NotAsked
    }
}

/// A file holding the original content of product `path`: the store's
/// object, or the file at the original root (reached beneath it) if it
/// still has that digest.
fn original_content(
    path: &str,
    sha256: Option<&String>,
    trace: &Trace,
    store: Option<&Store>,
) -> Option<PathBuf> {
    let sha256 = sha256?;
    if let Some(store) = store
        && store.contains(sha256)
    {
        return Some(store.object_path(sha256));
    }
    relative_components(path).ok()?;
    let root = Path::new(trace.root.as_deref()?);
    let original = OriginalRoot::open(root).ok()?;
    (original.sha256(path).ok()? == *sha256).then(|| root.join(path))
}

/// The offset of the first byte where `a` and `b` differ (the shorter
/// length when one is a prefix of the other), or `None` if they are equal
/// or cannot be read.
pub fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    // Either side may come from a crafted trace's tree or store: only
    // regular files, never a FIFO that blocks or a device without end.
    let open = |p: &Path| crate::untrusted::open(p, crate::untrusted::ROOT_FILE).ok();
    let mut fa = open(a)?.file;
    let mut fb = open(b)?.file;
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba).ok()?;
        let nb = read_full(&mut fb, &mut bb).ok()?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Some(offset + i as u64);
        }
        if na != nb {
            return Some(offset + n as u64);
        }
        if na == 0 {
            return None;
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_finds_the_offset_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = big.clone();
        changed[150_001] ^= 1;
        let a = write("a", &big);
        let b = write("b", &changed);
        let c = write("c", &big[..1000]);
        assert_eq!(first_difference(&a, &b), Some(150_001));
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(first_difference(&a, &c), Some(1000));
    }

    #[test]
    fn crafted_probes_create_nothing_outside_the_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let tree = Beneath::open(dir.path())
            .unwrap()
            .create_dir("tree")
            .unwrap();
        let plan = Plan {
            inputs: Vec::new(),
            original: None,
            mtime: 1,
        };
        let probe = |path: &str, kind: &str, target: Option<&str>| Probed {
            path: path.into(),
            kind: kind.into(),
            mode: 0o4755,
            size: 3,
            target: target.map(Into::into),
            sha256: None,
        };
        // A symlink leading out, and a file and a directory beneath it:
        // files and directories come first, so the symlink finds its name
        // taken; nothing is written through it.
        let probes = [
            probe("esc", "symlink", Some(outside.to_str().unwrap())),
            probe("esc/x", "file", None),
            probe("esc/d", "dir", None),
            probe("link", "symlink", Some("../../outside")),
            probe("fifo", "fifo", None),
        ];
        let done = plan.recreate_probes(&tree, &probes, None);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let how: BTreeMap<String, Recreated> = done.into_iter().collect();
        assert_eq!(how["esc"], Recreated::Existing);
        assert_eq!(how["esc/x"], Recreated::Placeholder);
        assert_eq!(how["link"], Recreated::Entry);
        assert!(matches!(how["fifo"], Recreated::Skipped(_)));
        let x = std::fs::symlink_metadata(tree.path().join("esc/x")).unwrap();
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!((x.len(), x.mode() & 0o7777, x.mtime()), (3, 0o755, 1));
        // A later file beneath the symlink is refused, not written outside.
        let err = plan.recreate_one(&tree, &probe("link/y", "file", None), None);
        assert!(matches!(err, Err(RerunError::Symlink { .. })), "{err:?}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn temporary_names_are_normalized() {
        assert_eq!(
            normalize_arg("/tmp/ccAbC123.s", &BTreeSet::new()),
            "/tmp/*.s"
        );
        assert_eq!(
            normalize_arg("/tmp/ccygv27d.o", &BTreeSet::new()),
            "/tmp/*.o"
        );
        assert_eq!(
            normalize_arg("/tmp/cg12duja/dummy.o", &BTreeSet::new()),
            "/tmp/*/dummy.o"
        );
        assert_eq!(normalize_arg("build/stJrgOB2", &BTreeSet::new()), "build/*");
        assert_eq!(normalize_arg("-o", &BTreeSet::new()), "-o");
        assert_eq!(
            normalize_arg("src/hello.c", &BTreeSet::new()),
            "src/hello.c"
        );
        assert_eq!(normalize_arg("Makefile", &BTreeSet::new()), "Makefile");
        assert_eq!(
            normalize_arg("lib/libgnu.a", &BTreeSet::new()),
            "lib/libgnu.a"
        );
    }

    #[test]
    fn artifact_names_must_stay_inside_the_tree() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a/\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "dir/b.c", ".hidden/x", "..x/y..", "a b/c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    fn trace_at(root: &str, cwd: &str) -> Trace {
        let mut trace = Trace::parse(b"{}").unwrap();
        trace.root = Some(root.into());
        trace.cwd = Some(cwd.into());
        trace
    }

    #[test]
    fn the_root_and_starting_directory_must_be_plain_absolute_paths() {
        let start = |root: &str, cwd: &str| places(&trace_at(root, cwd)).map(|p| p.start);
        let ok = |root: &str, cwd: &str| start(root, cwd).unwrap();
        assert_eq!(ok("/r", "/r"), Start::InRoot(String::new()));
        assert_eq!(ok("/r", "/r/a/b"), Start::InRoot("a/b".into()));
        assert_eq!(ok("/r", "/rr/a"), Start::Outside("/rr/a".into()));
        assert_eq!(ok("/r", "/"), Start::Outside("/".into()));
        for (root, cwd) in [
            ("/r", "/r/../../x"),
            ("/r", "/r/./a"),
            ("/r", "/r//a"),
            ("/r", "r/a"),
            ("/r", "/r/a\0"),
            ("/r/../s", "/s"),
            ("r", "/r"),
        ] {
            assert!(
                matches!(start(root, cwd), Err(RerunError::BadName { .. })),
                "{root} {cwd}"
            );
        }
    }

    #[test]
    fn nothing_is_created_through_a_symlink_beneath_the_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let tree = Beneath::open(dir.path())
            .unwrap()
            .create_dir("tree")
            .unwrap();
        std::os::unix::fs::symlink(&outside, tree.path().join("link")).unwrap();
        let err = tree.create_path("link/sub").unwrap_err();
        assert!(matches!(err, RerunError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("tree/link"), "{err}");
        assert!(tree.create_file("link").is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(
            tree.create_path("a/b")
                .unwrap()
                .path()
                .ends_with("tree/a/b")
        );
        assert!(tree.path().join("a/b").is_dir());
    }

    #[test]
    fn redacted_values_come_from_the_current_environment() {
        let token = "s3cret";
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())));
        let mut trace = Trace::parse(b"{}").unwrap();
        trace.environment = [
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("API_TOKEN".to_string(), digest.clone()),
            ("GONE_KEY".to_string(), digest.clone()),
            ("OTHER_SECRET".to_string(), digest),
        ]
        .into();
        let current: BTreeMap<String, String> = [
            ("API_TOKEN".to_string(), token.to_string()),
            ("OTHER_SECRET".to_string(), "changed".to_string()),
            ("PATH".to_string(), "/ignored".to_string()),
        ]
        .into();
        let (env, notes) = environment(&trace, &current);
        assert_eq!(
            env,
            [
                ("API_TOKEN".to_string(), token.to_string()),
                ("OTHER_SECRET".to_string(), "changed".to_string()),
                ("PATH".to_string(), "/usr/bin".to_string()),
            ]
        );
        assert_eq!(
            notes,
            [
                EnvNote::RedactedMissing {
                    name: "GONE_KEY".into()
                },
                EnvNote::RedactedDiffers {
                    name: "OTHER_SECRET".into()
                },
            ]
        );
    }

    #[test]
    fn redacted_values_of_a_format_2_trace_are_taken_and_not_compared() {
        let trace = Trace::parse(
            br#"{"format": 2,
                 "environment": {"API_TOKEN": "<redacted:API_TOKEN>",
                                 "DATABASE_URL": "postgres://u:<redacted:DATABASE_URL>@h/db",
                                 "GONE_KEY": "<redacted:GONE_KEY>",
                                 "LOOKS_LIKE": "<redacted:X>",
                                 "OLD_STYLE": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                                 "PATH": "/usr/bin"},
                 "redacted": ["API_TOKEN", "DATABASE_URL", "GONE_KEY"]}"#,
        )
        .unwrap();
        let current: BTreeMap<String, String> = [
            ("API_TOKEN", "tok"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
            ("LOOKS_LIKE", "now"),
            ("OLD_STYLE", "now"),
            ("PATH", "/ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (env, notes) = environment(&trace, &current);
        // Only the listed names come from the current environment; a value
        // that merely looks like a marker or a digest is restored as recorded.
        assert_eq!(
            env,
            [
                ("API_TOKEN", "tok"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
                ("LOOKS_LIKE", "<redacted:X>"),
                (
                    "OLD_STYLE",
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                ),
                ("PATH", "/usr/bin"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(
            notes,
            [
                EnvNote::RedactedNotCompared {
                    name: "API_TOKEN".into()
                },
                EnvNote::RedactedNotCompared {
                    name: "DATABASE_URL".into()
                },
                EnvNote::RedactedMissing {
                    name: "GONE_KEY".into()
                },
            ]
        );
    }
}
