//! The FUSE filesystem that serves the monitored root R to the recorded
//! process tree: a passthrough to the real tree that tells an `Observer`
//! about every request that matters for recording.
//!
//! Files are reached by **identity, never by a remembered name**
//! (docs/monitoring.md). The daemon holds one O_PATH|O_NOFOLLOW descriptor
//! per inode the kernel currently references, as libfuse's passthrough_hp
//! does: taken when a LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK or LINK reply
//! hands the inode to the kernel, dropped at the FORGET that brings its
//! lookup count to 0 (untouched files cost nothing). Everything done to an
//! inode the kernel names by number goes through that descriptor: OPEN and
//! the observer's hashing opens re-open it through `/proc/self/fd`,
//! GETATTR is an `fstat`, READLINK a `readlinkat(fd, "")`, SETATTR changes
//! it through the descriptor or its `/proc/self/fd` entry, LINK links it
//! from there. So after `ln a c; rm c`, `cat a` reads a, and after hard-link
//! and rename games the bytes served are those of the inode the kernel asked
//! for. Requests that carry a name (lookup, create, mknod, mkdir, symlink,
//! unlink, rmdir, rename, link's new name) use the parent directory's
//! descriptor and that one name, with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW: the
//! daemon never follows a symlink and never leaves R (R's own descriptor
//! was opened before anything was mounted over it).
//!
//! Names are only for naming artifacts in events. For each inode the daemon
//! keeps the names (parent inode, name) the kernel has shown it under
//! (`Names`), and moves or removes them with UNLINK, RMDIR and RENAME
//! (the moved name, and the name of a file the rename replaced), so the path
//! reported for an event is a name that currently refers to that inode. Files
//! are keyed by their backing (device, inode), so hard links are one file.
//!
//! With passthrough (root, kernel >= 6.9) reads and writes go straight to
//! the backing file and the daemon sees only metadata requests; otherwise it
//! serves READ and WRITE itself.
//!
//! The signing key's inode ([`FsConfig::forbidden`]) is never opened, by the
//! tree (EACCES, whatever its name) or for hashing. Running out of
//! descriptors fails the request with EMFILE/ENFILE and makes the run
//! incomplete ([`Observer::failure`]).
//!
//! Each FUSE callback is a thin adapter over a plain method returning
//! `Result<_, Errno>`. This module knows FUSE and files; it knows nothing of
//! in-toto, digests or how events become materials and products.

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use super::semantics::{Entry, Event, Kind, Node};

/// Receives the filesystem's observations. Called on FUSE worker threads,
/// before the request is answered.
pub trait Observer: Send + Sync {
    /// A request succeeded; `event` says what it did.
    fn event(&self, event: Event);
    /// `node` was opened for reading through `file` (its first read is the
    /// moment to start hashing its before-state in the background).
    fn read_open(&self, _node: Node, _file: &File) {}
    /// A request is about to change or remove the content of the regular
    /// file `node`; return only once its before-state is safe. `open` opens
    /// it for reading.
    fn before_change(&self, _node: Node, _open: &dyn Fn() -> std::io::Result<File>) {}
    /// Like `before_change`, without blocking: `proceed` runs once the
    /// before-state of `node` is safe, possibly later on another thread, so
    /// the FUSE worker is free meanwhile. `open` opens the file for reading.
    fn before_change_then(
        &self,
        _node: Node,
        _open: Box<dyn FnOnce() -> std::io::Result<File> + Send>,
        proceed: Box<dyn FnOnce() + Send>,
    ) {
        proceed()
    }
    /// `file` (opened for reading) is the content of `node` that a request
    /// is about to unlink or replace: hash it, later, if its before-state is
    /// still needed. The open descriptor keeps the old inode alive meanwhile.
    fn keep_before_state(&self, _node: Node, _file: File) {}
    /// A lookup found nothing at `path` (a probe: the tree looked for a file
    /// that is not there).
    fn missing(&self, _path: &str, _pid: u32) {}
    /// The directory at `path` ("" for the root) was opened to be listed:
    /// the tree saw the names in it.
    fn listed(&self, _path: &str, _pid: u32) {}
    /// The daemon could not serve a request as the real filesystem would
    /// have (it ran out of file descriptors: EMFILE/ENFILE). The request
    /// failed with that errno; `what` says which. The run is incomplete.
    fn failure(&self, _what: String) {}
    /// The tree tried to open or change the protected file (the signing
    /// key, `FsConfig::forbidden`) under the name `path`; it got EACCES.
    fn refused(&self, _path: &str, _pid: u32) {}
}

/// An observer that ignores everything (a plain passthrough mount).
pub struct NoObserver;
impl Observer for NoObserver {
    fn event(&self, _: Event) {}
}

/// Settings of the mount.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// R's absolute path on the daemon's side (the backing directory).
    pub root_path: std::path::PathBuf,
    /// Where the command sees R (the mount point): absolute symlink targets
    /// under it point into R. Usually `root_path` itself.
    pub seen_root: std::path::PathBuf,
    /// How long the kernel may cache entries and attributes.
    pub ttl: Duration,
    /// Show every entry as owned by this (uid, gid): for an unprivileged
    /// recorder, whose user namespace maps only its own ids.
    pub present_owner: Option<(u32, u32)>,
    /// Ask for FUSE passthrough (needs CAP_SYS_ADMIN in the initial user namespace).
    pub passthrough: bool,
    /// The (device, inode) of a file the tree must never read, whatever its
    /// name (the signing key: docs/threat-model.md). The daemon refuses to
    /// open or change it (EACCES, [`Observer::refused`]) and never opens it
    /// to hash it.
    pub forbidden: Option<Node>,
}

/// An inode the kernel references, reached through its own descriptor.
struct Inode {
    node: Node,
    kind: FileType,
    /// An O_PATH|O_NOFOLLOW descriptor of this very inode (for the root,
    /// R's descriptor). It also keeps (device, inode) from being reused
    /// while the kernel knows the inode.
    fd: Arc<OwnedFd>,
    /// The kernel's lookup count: the inode is dropped when it reaches 0.
    lookups: u64,
}

/// A name of an inode: (parent FUSE inode, name in that directory).
type Name = (u64, OsString);

/// Guards the walk from an inode up to the root (a real tree is far
/// shallower; PATH_MAX allows 2048 one-letter components).
const MAX_DEPTH: usize = 4096;

/// The names the kernel has shown each inode under, for naming artifacts in
/// events (never for reaching a file). A name belongs to at most one inode;
/// an inode may have several (hard links). A name is added when a reply
/// hands the inode to the kernel under it, moved by a rename, and removed by
/// an unlink, an rmdir, a rename away or a rename over it, so the path of an
/// inode is a name that currently refers to it. Names below a renamed
/// directory need no change: they hang off the directory's inode.
#[derive(Default)]
struct Names {
    /// Inode -> its current names, the most recently confirmed last.
    of: HashMap<u64, Vec<Name>>,
    /// Name -> the inode it refers to.
    at: HashMap<Name, u64>,
    /// Inode -> the last name it lost: its path once it has none left (a
    /// file unlinked while open, reopened through /proc).
    former: HashMap<u64, Name>,
}

impl Names {
    /// `name` in `parent` refers to `ino` now (a lookup found it there, or a
    /// request made it there): it becomes `ino`'s most recent name, and no
    /// other inode's.
    fn add(&mut self, ino: u64, parent: u64, name: &OsStr) {
        let key = (parent, name.to_os_string());
        if let Some(old) = self.at.insert(key.clone(), ino)
            && old != ino
        {
            self.lose(old, &key);
        }
        let list = self.of.entry(ino).or_default();
        list.retain(|k| *k != key);
        list.push(key);
    }

    fn lose(&mut self, ino: u64, key: &Name) {
        if let Some(list) = self.of.get_mut(&ino) {
            list.retain(|k| k != key);
            if list.is_empty() {
                self.of.remove(&ino);
            }
        }
        self.former.insert(ino, key.clone());
    }

    /// `name` in `parent` is gone (unlink, rmdir, renamed away or over).
    /// Returns the inode that had it.
    fn remove(&mut self, parent: u64, name: &OsStr) -> Option<u64> {
        let key = (parent, name.to_os_string());
        let ino = self.at.remove(&key)?;
        self.lose(ino, &key);
        Some(ino)
    }

    /// `from` was renamed to `to`: whatever either named loses that name,
    /// and the moved inode gets `to`: `moved` (found by identity), else the
    /// inode `from` named.
    fn rename(&mut self, from: (u64, &OsStr), to: (u64, &OsStr), moved: Option<u64>) {
        let had = self.remove(from.0, from.1);
        self.remove(to.0, to.1);
        if let Some(ino) = moved.or(had) {
            self.add(ino, to.0, to.1);
        }
    }

    /// The kernel forgot `ino`: its names go.
    fn forget(&mut self, ino: u64) {
        for key in self.of.remove(&ino).unwrap_or_default() {
            if self.at.get(&key) == Some(&ino) {
                self.at.remove(&key);
            }
        }
        self.former.remove(&ino);
    }

    /// The path of `ino` relative to R: its most recent current name whose
    /// directories are all known; for an inode with no name left, the last
    /// one it had. `None` if nothing leads to the root.
    fn path(&self, ino: u64) -> Option<String> {
        self.path_at(ino, 0)
    }

    fn path_at(&self, ino: u64, depth: usize) -> Option<String> {
        if ino == INodeNo::ROOT.0 {
            return Some(String::new());
        }
        if depth > MAX_DEPTH {
            return None;
        }
        let under = |(parent, name): &Name| Some(join(self.path_at(*parent, depth + 1)?, name));
        match self.of.get(&ino) {
            Some(current) => current.iter().rev().find_map(under),
            None => self.former.get(&ino).and_then(under),
        }
    }

    /// The path of `name` in the directory `parent`.
    fn child_path(&self, parent: u64, name: &OsStr) -> Option<String> {
        Some(join(self.path(parent)?, name))
    }
}

/// `base/name` (`name` alone at the root). Names that are not UTF-8 are
/// reported with lossy escapes; the recorder marks such a run incomplete.
fn join(mut base: String, name: &OsStr) -> String {
    if !base.is_empty() {
        base.push('/');
    }
    base.push_str(&name.to_string_lossy());
    base
}

#[derive(Default)]
struct Table {
    inodes: HashMap<u64, Inode>,
    by_node: HashMap<Node, u64>,
    names: Names,
    next: u64,
}

struct Handle {
    file: File,
    ino: u64,
    /// Keeps the kernel's backing id alive while this handle is open.
    _backing: Option<Arc<BackingId>>,
}

/// A directory's entries: (inode, type, name).
pub type Listing = Vec<(u64, FileType, OsString)>;

/// Requests served, by kind (for the trace: where the time goes).
pub struct RequestCounts {
    counts: Vec<AtomicU64>,
}

impl RequestCounts {
    const KINDS: &'static [&'static str] = &[
        "releasedir",
        "lookup",
        "forget",
        "getattr",
        "setattr",
        "readlink",
        "mknod",
        "mkdir",
        "unlink",
        "rmdir",
        "symlink",
        "rename",
        "link",
        "open",
        "create",
        "read",
        "write",
        "flush",
        "release",
        "fsync",
        "opendir",
        "readdir",
        "statfs",
        "getxattr",
        "listxattr",
        "lseek",
    ];

    fn new() -> RequestCounts {
        RequestCounts {
            counts: Self::KINDS.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn count(&self, kind: &str) {
        if let Some(i) = Self::KINDS.iter().position(|k| *k == kind) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (kind, number served), for kinds served at least once.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Self::KINDS
            .iter()
            .zip(&self.counts)
            .map(|(k, c)| (*k, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The open files: handles and their kernel backing ids. Shared (`Arc`) so
/// that an OPEN can be answered from another thread.
#[derive(Default)]
struct OpenFiles {
    handles: Mutex<HashMap<u64, Handle>>,
    backing: Mutex<HashMap<u64, Weak<BackingId>>>,
    next_fh: AtomicU64,
}

impl OpenFiles {
    fn add_handle(&self, ino: u64, file: File, backing: Option<Arc<BackingId>>) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed) + 1;
        self.handles.lock().unwrap().insert(
            fh,
            Handle {
                file,
                ino,
                _backing: backing,
            },
        );
        fh
    }

    /// The backing id for `ino`: the one already registered while any handle
    /// uses it, else a new one for `file`.
    fn backing_for(
        &self,
        ino: u64,
        file: &File,
        make: impl FnOnce(&File) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        let mut map = self.backing.lock().unwrap();
        if let Some(existing) = map.get(&ino).and_then(Weak::upgrade) {
            return Some(existing);
        }
        match make(file) {
            Ok(id) => {
                let id = Arc::new(id);
                map.insert(ino, Arc::downgrade(&id));
                Some(id)
            }
            Err(_) => None,
        }
    }

    fn release(&self, fh: u64) {
        if let Some(handle) = self.handles.lock().unwrap().remove(&fh) {
            let mut map = self.backing.lock().unwrap();
            drop(handle._backing);
            if map.get(&handle.ino).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&handle.ino);
            }
        }
    }

    fn handle_file(&self, fh: u64) -> Result<File, Errno> {
        let handles = self.handles.lock().unwrap();
        let handle = handles.get(&fh).ok_or(Errno::EBADF)?;
        handle.file.try_clone().map_err(io_errno)
    }

    /// Registers `file` for `ino` and answers the OPEN: through passthrough
    /// when `passthrough` and the kernel takes a backing id, else plainly.
    fn answer_open(&self, ino: u64, file: File, flags: i32, passthrough: bool, reply: ReplyOpen) {
        let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY;
        // No FLUSH round trip for read-only opens.
        let fopen = if read_only {
            FopenFlags::FOPEN_NOFLUSH
        } else {
            FopenFlags::empty()
        };
        let backing = if passthrough {
            self.backing_for(ino, &file, |f| reply.open_backing(f))
        } else {
            None
        };
        match backing {
            Some(id) => {
                let fh = self.add_handle(ino, file, Some(id.clone()));
                reply.opened_passthrough(FileHandle(fh), fopen, &id);
            }
            None => {
                let fh = self.add_handle(ino, file, None);
                reply.opened(FileHandle(fh), fopen);
            }
        }
    }
}

/// The files the tree has open, readable after the filesystem moved into
/// its session (and after the session ended).
pub struct OpenFilesView(Arc<OpenFiles>);

impl OpenFilesView {
    /// The backing paths of the files open for writing whose handles the
    /// kernel never released.
    pub fn unreleased_writers(&self) -> Vec<std::path::PathBuf> {
        let handles = self.0.handles.lock().unwrap();
        let mut out: Vec<std::path::PathBuf> = handles
            .values()
            .filter(|h| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&h.file);
                crate::sys::fd_status_flags(fd)
                    .is_some_and(|f| f & libc::O_ACCMODE != libc::O_RDONLY)
            })
            .filter_map(|h| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&h.file);
                std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The passthrough filesystem over R.
pub struct TraceFs {
    root: Arc<OwnedFd>,
    /// The daemon's `/proc/self/fd`: files are reopened through it.
    proc_fds: Arc<OwnedFd>,
    table: Mutex<Table>,
    files: Arc<OpenFiles>,
    /// Open directories' listings, by handle.
    listings: Mutex<HashMap<u64, Arc<Listing>>>,
    requests: Arc<RequestCounts>,
    passthrough: Arc<AtomicBool>,
    config: FsConfig,
    observer: Arc<dyn Observer>,
}

fn errno(e: nix::errno::Errno) -> Errno {
    Errno::from_i32(e as i32)
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec as u32)
    } else {
        UNIX_EPOCH - Duration::new((-sec) as u64, 0) + Duration::from_nanos(nsec as u64)
    }
}

fn kind_of(mode: u32) -> FileType {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => FileType::Directory,
        SFlag::S_IFLNK => FileType::Symlink,
        SFlag::S_IFIFO => FileType::NamedPipe,
        SFlag::S_IFCHR => FileType::CharDevice,
        SFlag::S_IFBLK => FileType::BlockDevice,
        SFlag::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn attr(ino: u64, st: &FileStat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: kind_of(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

/// An inode taken out of the table: its identity and its descriptor (kept
/// open while this lives, even if the kernel forgets the inode meanwhile).
struct Reached {
    node: Node,
    kind: FileType,
    fd: Arc<OwnedFd>,
}

/// What OPEN found: the backing file, opened by identity, and how to name it.
struct Opened {
    file: File,
    path: String,
    inode: Reached,
}

/// `name` as one directory entry name: the kernel never sends anything else,
/// and an `*at` call given a longer path could walk through a symlink.
fn component(name: &OsStr) -> Result<&OsStr, Errno> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(name)
}

/// Opens the inode behind the O_PATH descriptor `fd` again with `flags`,
/// through its entry in `proc_fds` (the daemon's `/proc/self/fd`): that magic
/// link leads to this very inode, whatever its names are now. Never used on
/// a symlink's descriptor (the kernel answers ELOOP: nothing is followed).
fn reopen(proc_fds: &OwnedFd, fd: &OwnedFd, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        proc_fds.as_fd(),
        fd.as_raw_fd().to_string().as_str(),
        (flags - OFlag::O_NOFOLLOW) | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the regular file behind `fd` for reading, to hash it.
fn reopen_read(proc_fds: &OwnedFd, fd: &OwnedFd) -> std::io::Result<File> {
    reopen(
        proc_fds,
        fd,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    )
    .map(File::from)
    .map_err(std::io::Error::from)
}

impl TraceFs {
    /// A filesystem serving the directory `root` (an O_PATH or O_RDONLY fd
    /// opened before anything was mounted over it).
    pub fn new(
        root: OwnedFd,
        config: FsConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, Errno> {
        let st = nix::sys::stat::fstat(&root).map_err(errno)?;
        let proc_fds = nix::fcntl::open(
            Path::new("/proc/self/fd"),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let root = Arc::new(root);
        let mut table = Table {
            next: INodeNo::ROOT.0 + 1,
            ..Table::default()
        };
        let node = (st.st_dev, st.st_ino);
        table.inodes.insert(
            INodeNo::ROOT.0,
            Inode {
                node,
                kind: FileType::Directory,
                fd: root.clone(),
                lookups: 1,
            },
        );
        table.by_node.insert(node, INodeNo::ROOT.0);
        Ok(TraceFs {
            root,
            proc_fds: Arc::new(proc_fds),
            table: Mutex::new(table),
            files: Arc::new(OpenFiles::default()),
            listings: Mutex::new(HashMap::new()),
            requests: Arc::new(RequestCounts::new()),
            passthrough: Arc::new(AtomicBool::new(false)),
            config,
            observer,
        })
    }

    /// The attributes the kernel sees. An unprivileged recorder shows every
    /// entry as owned by its user: in its user namespace other owners are
    /// unmapped, and the kernel refuses any write to an inode with an
    /// unmapped owner or group even where the real permissions allow it.
    /// Permission outcomes stay the real ones: the daemon makes every change
    /// with the user's real credentials, and the real filesystem decides.
    fn attr_of(&self, ino: u64, st: &FileStat) -> FileAttr {
        let mut attr = attr(ino, st);
        if let Some((uid, gid)) = self.config.present_owner {
            attr.uid = uid;
            attr.gid = gid;
        }
        attr
    }

    /// Whether open files are served by kernel passthrough.
    pub fn uses_passthrough(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    /// The open files, readable after the filesystem moved into its session.
    pub fn open_files(&self) -> OpenFilesView {
        OpenFilesView(self.files.clone())
    }

    /// The counts of requests served, readable after the filesystem moved into its session.
    pub fn request_counts(&self) -> Arc<RequestCounts> {
        self.requests.clone()
    }

    /// A flag that tells, once the kernel connection is set up, whether
    /// passthrough is in use (readable after the filesystem moved into its session).
    pub fn passthrough_flag(&self) -> Arc<AtomicBool> {
        self.passthrough.clone()
    }

    /// The inode the kernel calls `ino`, by identity.
    fn reach(&self, ino: u64) -> Result<Reached, Errno> {
        let table = self.table.lock().unwrap();
        let inode = table.inodes.get(&ino).ok_or(Errno::ESTALE)?;
        Ok(Reached {
            node: inode.node,
            kind: inode.kind,
            fd: inode.fd.clone(),
        })
    }

    fn dir_fd(&self, ino: u64) -> Result<Arc<OwnedFd>, Errno> {
        let inode = self.reach(ino)?;
        if inode.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(inode.fd)
    }

    /// A name of `ino` for an event (see `Names::path`); empty if none leads
    /// to R, which an inode the kernel reached through R always has.
    fn path(&self, ino: u64) -> String {
        self.table
            .lock()
            .unwrap()
            .names
            .path(ino)
            .unwrap_or_default()
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Result<String, Errno> {
        self.table
            .lock()
            .unwrap()
            .names
            .child_path(parent, name)
            .ok_or(Errno::ESTALE)
    }

    /// The errno of a failed open by the daemon; running out of descriptors
    /// is also a failure of the run (`what` names the request).
    fn open_failed(&self, e: nix::errno::Errno, what: impl FnOnce() -> String) -> Errno {
        if matches!(e, nix::errno::Errno::EMFILE | nix::errno::Errno::ENFILE) {
            self.observer.failure(format!(
                "the FUSE daemon ran out of file descriptors ({e}) {}; the request failed",
                what()
            ));
        }
        errno(e)
    }

    /// EACCES for the protected file (the signing key), whatever its name
    /// (`path` names it for the observer).
    fn allowed(&self, node: Node, path: impl FnOnce() -> String, pid: u32) -> Result<(), Errno> {
        if self.config.forbidden == Some(node) {
            self.observer.refused(&path(), pid);
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// Whether `node` may be opened to hash it.
    fn hashable(&self, node: Node) -> bool {
        self.config.forbidden != Some(node)
    }

    /// An O_PATH descriptor of the entry `name` of the directory `dir` (the
    /// inode `parent`), never following a symlink, and its attributes, taken
    /// from the descriptor itself.
    fn open_entry(
        &self,
        dir: &OwnedFd,
        parent: u64,
        name: &OsStr,
    ) -> Result<(OwnedFd, FileStat), Errno> {
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            self.open_failed(e, || {
                let path = self.child_path(parent, name).unwrap_or_default();
                format!("at {path:?}")
            })
        })?;
        let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
        Ok((fd, st))
    }

    /// Registers the inode behind `fd` (opened as `name` in `parent`, with
    /// attributes `st`) as handed to the kernel once more under that name.
    /// Returns its FUSE inode and the descriptor the table keeps for it (an
    /// inode already known keeps its own; `fd` is then closed).
    fn remember(
        &self,
        parent: u64,
        name: &OsStr,
        fd: OwnedFd,
        st: &FileStat,
    ) -> (u64, Arc<OwnedFd>) {
        let node = (st.st_dev, st.st_ino);
        let mut guard = self.table.lock().unwrap();
        let table = &mut *guard;
        let (ino, kept) = match table.by_node.get(&node) {
            Some(&ino) => {
                let inode = table
                    .inodes
                    .get_mut(&ino)
                    .expect("by_node and inodes agree");
                inode.lookups += 1;
                (ino, inode.fd.clone())
            }
            None => {
                let ino = table.next;
                table.next += 1;
                let fd = Arc::new(fd);
                table.inodes.insert(
                    ino,
                    Inode {
                        node,
                        kind: kind_of(st.st_mode),
                        fd: fd.clone(),
                        lookups: 1,
                    },
                );
                table.by_node.insert(node, ino);
                (ino, fd)
            }
        };
        table.names.add(ino, parent, name);
        (ino, kept)
    }

    // ---- the operations, as plain functions ------------------------------

    /// LOOKUP from the kernel: the entry is announced to the observer.
    pub fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        let (fd, st) = self.open_entry(&dir, parent, name)?;
        let (ino, fd) = self.remember(parent, name, fd, &st);
        let entry = self.entry_of(path, &fd, &st);
        self.observer.event(Event::Found(entry));
        Ok(self.attr_of(ino, &st))
    }

    /// Hands the entry `name` this daemon just made in `parent` to the kernel
    /// (not announced: the request that made it was), first giving it to
    /// `owner` (uid, gid) if set. Returns its attributes and node.
    fn made(
        &self,
        parent: u64,
        name: &OsStr,
        owner: Option<(u32, u32)>,
    ) -> Result<(FileAttr, Node), Errno> {
        let dir = self.dir_fd(parent)?;
        let (fd, mut st) = self.open_entry(&dir, parent, name)?;
        if let Some((uid, gid)) = owner {
            self.give(&fd, uid, gid)?;
            st = nix::sys::stat::fstat(&fd).map_err(errno)?;
        }
        let (ino, _) = self.remember(parent, name, fd, &st);
        Ok((self.attr_of(ino, &st), (st.st_dev, st.st_ino)))
    }

    /// The caller owns what it creates. Only root can give files away; an
    /// unprivileged daemon's files are its user's already.
    fn give(&self, fd: &OwnedFd, uid: u32, gid: u32) -> Result<(), Errno> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        nix::unistd::fchownat(
            fd.as_fd(),
            "",
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)
    }

    /// The semantics' view of a directory entry at `path`, reached through
    /// its descriptor `fd`.
    fn entry_of(&self, path: String, fd: &OwnedFd, st: &FileStat) -> Entry {
        let node = (st.st_dev, st.st_ino);
        match kind_of(st.st_mode) {
            FileType::RegularFile => Entry {
                nlink: st.st_nlink,
                ..Entry::file(path, node)
            },
            FileType::Directory => Entry::dir(path, node),
            FileType::Symlink => {
                let target = nix::fcntl::readlinkat(fd.as_fd(), "")
                    .ok()
                    .and_then(|t| self.resolve_symlink(&path, Path::new(&t)));
                Entry::symlink(path, node, target.as_ref().map(|(p, n)| (p.as_str(), *n)))
            }
            _ => Entry {
                path,
                node,
                kind: Kind::Other,
                nlink: 0,
                symlink_target: None,
            },
        }
    }

    /// Where the symlink at `link_path` (relative to R) with `target` leads,
    /// if that is a regular file under R: (its path under R, its node). The
    /// walk stays beneath R's fd (RESOLVE_BENEATH); anything escaping R,
    /// dangling or not a regular file gives `None`.
    fn resolve_symlink(&self, link_path: &str, target: &Path) -> Option<(String, Node)> {
        let relative = if target.is_absolute() {
            target
                .strip_prefix(&self.config.seen_root)
                .ok()?
                .to_path_buf()
        } else {
            Path::new(link_path)
                .parent()
                .unwrap_or(Path::new(""))
                .join(target)
        };
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".").to_path_buf()
        } else {
            relative
        };
        let how = nix::fcntl::OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(
                nix::fcntl::ResolveFlag::RESOLVE_BENEATH
                    | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let fd = nix::fcntl::openat2(self.root.as_fd(), &relative, how).ok()?;
        let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
        // The protected file is no artifact: a symlink to it must not make
        // anyone hash it.
        if kind_of(st.st_mode) != FileType::RegularFile || !self.hashable((st.st_dev, st.st_ino)) {
            return None;
        }
        let real = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .ok()?;
        let under = real.strip_prefix(&self.config.root_path).ok()?;
        Some((under.to_string_lossy().into_owned(), (st.st_dev, st.st_ino)))
    }

    /// Every entry below the directory `dir` (now at `new_prefix`), named
    /// as if it were still at `old_prefix` (for a directory rename), depth
    /// first. What cannot be listed
    /// (a directory that cannot be opened or read, an entry that cannot be
    /// opened or stat'ed, running out of descriptors) is reported as a
    /// failure: the rename has happened, so the request stands, but the files
    /// below may be missing from the link and the run is incomplete.
    fn entries_below(
        &self,
        dir: &OwnedFd,
        old_prefix: &str,
        new_prefix: &str,
        out: &mut Vec<Entry>,
    ) {
        let fail = |what: &str, e: nix::errno::Errno| {
            self.observer.failure(format!(
                "cannot list what a rename moved from {old_prefix} to {new_prefix}: {what}: {e}"
            ));
        };
        let mut listing = match nix::dir::Dir::openat(
            dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(listing) => listing,
            Err(e) => return fail("opening the directory", e),
        };
        let mut names: Vec<OsString> = Vec::new();
        for entry in listing.iter() {
            match entry {
                Ok(e) => {
                    let name = OsStr::from_bytes(e.file_name().to_bytes());
                    if name != "." && name != ".." {
                        names.push(name.to_os_string());
                    }
                }
                Err(e) => return fail("reading the directory", e),
            }
        }
        for child in names {
            let child_str = child.to_string_lossy();
            let fd = match nix::fcntl::openat(
                dir.as_fd(),
                child.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    fail(&format!("opening {child_str}"), e);
                    continue;
                }
            };
            let st = match nix::sys::stat::fstat(&fd) {
                Ok(st) => st,
                Err(e) => {
                    fail(&format!("stat of {child_str}"), e);
                    continue;
                }
            };
            let old_path = format!("{old_prefix}/{child_str}");
            let new_path = format!("{new_prefix}/{child_str}");
            // Resolve symlinks where they are now, then name their targets
            // as they were before the move.
            let mut entry = self.entry_of(new_path.clone(), &fd, &st);
            entry.path = old_path.clone();
            if let Some((target, _)) = entry.symlink_target.as_mut()
                && let Some(rest) = target.strip_prefix(&format!("{new_prefix}/"))
            {
                *target = format!("{old_prefix}/{rest}");
            }
            let is_dir = entry.kind == Kind::Dir;
            out.push(entry);
            if is_dir {
                self.entries_below(&fd, &old_path, &new_path, out);
            }
        }
    }

    pub fn do_forget(&self, ino: u64, n: u64) {
        let forgotten = {
            let mut table = self.table.lock().unwrap();
            let Some(inode) = table.inodes.get_mut(&ino) else {
                return;
            };
            inode.lookups = inode.lookups.saturating_sub(n);
            if inode.lookups > 0 || ino == INodeNo::ROOT.0 {
                return;
            }
            let inode = table.inodes.remove(&ino).expect("just found");
            if table.by_node.get(&inode.node) == Some(&ino) {
                table.by_node.remove(&inode.node);
            }
            table.names.forget(ino);
            inode
        };
        // Its descriptor is closed here, outside the lock (or later, by a
        // request still using it).
        drop(forgotten);
    }

    pub fn do_getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let inode = self.reach(ino)?;
        let st = nix::sys::stat::fstat(&*inode.fd).map_err(errno)?;
        Ok(self.attr_of(ino, &st))
    }

    /// SETATTR, on the inode itself: through its descriptor, or its
    /// `/proc/self/fd` entry where a call needs a path (chmod, utimens: on a
    /// symlink's descriptor these change the symlink, as lchmod and
    /// `utimensat(AT_SYMLINK_NOFOLLOW)` would).
    #[allow(clippy::too_many_arguments)]
    pub fn do_setattr(
        &self,
        req_pid: u32,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        let inode = self.reach(ino)?;
        let node = inode.node;
        self.allowed(node, || self.path(ino), req_pid)?;
        let fd = &*inode.fd;
        let proc_name = fd.as_raw_fd().to_string();
        if let Some(size) = size {
            match inode.kind {
                FileType::Directory => return Err(Errno::EISDIR),
                FileType::RegularFile => {}
                _ => return Err(Errno::EINVAL),
            }
            let handle_file = fh.and_then(|fh| {
                self.files
                    .handles
                    .lock()
                    .unwrap()
                    .get(&fh)
                    .and_then(|h| h.file.try_clone().ok())
            });
            let file = match handle_file {
                Some(f) => f,
                None => File::from(reopen(&self.proc_fds, fd, OFlag::O_WRONLY).map_err(|e| {
                    self.open_failed(e, || format!("truncating {}", self.path(ino)))
                })?),
            };
            self.observer
                .before_change(node, &|| reopen_read(&self.proc_fds, fd));
            file.set_len(size).map_err(io_errno)?;
            self.observer.event(Event::Truncate { node, pid: req_pid });
        }
        if let Some(mode) = mode {
            nix::sys::stat::fchmodat(
                self.proc_fds.as_fd(),
                proc_name.as_str(),
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            nix::unistd::fchownat(
                fd.as_fd(),
                "",
                uid.map(nix::unistd::Uid::from_raw),
                gid.map(nix::unistd::Gid::from_raw),
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(errno)?;
        }
        if atime.is_some() || mtime.is_some() {
            let spec = |t: Option<TimeOrNow>| match t {
                None => nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
                Some(TimeOrNow::Now) => nix::sys::time::TimeSpec::new(0, libc::UTIME_NOW),
                Some(TimeOrNow::SpecificTime(t)) => {
                    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                    nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
                }
            };
            nix::sys::stat::utimensat(
                self.proc_fds.as_fd(),
                proc_name.as_str(),
                &spec(atime),
                &spec(mtime),
                nix::sys::stat::UtimensatFlags::FollowSymlink,
            )
            .map_err(errno)?;
        }
        self.do_getattr(ino)
    }

    pub fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let inode = self.reach(ino)?;
        if inode.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        nix::fcntl::readlinkat(inode.fd.as_fd(), "")
            .map(|t| t.as_bytes().to_vec())
            .map_err(errno)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn do_mknod(
        &self,
        req: (u32, u32, u32),
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<FileAttr, Errno> {
        let (pid, uid, gid) = req;
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        let kind = SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits());
        nix::sys::stat::mknodat(
            dir.as_fd(),
            name,
            kind,
            Mode::from_bits_truncate(mode & !umask),
            rdev as _,
        )
        .map_err(errno)?;
        let (attr, node) = self.made(parent, name, Some((uid, gid)))?;
        if kind == SFlag::S_IFREG {
            self.observer.event(Event::Create { path, node, pid });
        }
        Ok(attr)
    }

    pub fn do_mkdir(
        &self,
        req: (u32, u32, u32),
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<FileAttr, Errno> {
        let (pid, uid, gid) = req;
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(mode & !umask))
            .map_err(errno)?;
        self.observer.event(Event::Mkdir { path, pid });
        self.made(parent, name, Some((uid, gid))).map(|(a, _)| a)
    }

    /// UNLINK and RMDIR. The entry is found by name (the request's); a
    /// regular file's old inode is kept open for the observer to hash.
    pub fn do_unlink(
        &self,
        pid: u32,
        parent: u64,
        name: &OsStr,
        dir_flag: bool,
    ) -> Result<(), Errno> {
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        let (victim, st) = self.open_entry(&dir, parent, name)?;
        let node = (st.st_dev, st.st_ino);
        if kind_of(st.st_mode) == FileType::RegularFile
            && self.hashable(node)
            && let Ok(old) = reopen_read(&self.proc_fds, &victim)
        {
            // Keep the old inode open and let the observer hash it later.
            self.observer.keep_before_state(node, old);
        }
        drop(victim);
        let flag = if dir_flag {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(dir.as_fd(), name, flag).map_err(errno)?;
        self.table.lock().unwrap().names.remove(parent, name);
        self.observer.event(if dir_flag {
            Event::Rmdir { path, pid }
        } else {
            Event::Unlink { path, pid }
        });
        Ok(())
    }

    pub fn do_symlink(
        &self,
        req: (u32, u32, u32),
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<FileAttr, Errno> {
        let (pid, uid, gid) = req;
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        nix::unistd::symlinkat(target, dir.as_fd(), name).map_err(errno)?;
        let resolved_target = self.resolve_symlink(&path, target).map(|(p, _)| p);
        self.observer.event(Event::Symlink {
            path,
            resolved_target,
            pid,
        });
        self.made(parent, name, Some((uid, gid))).map(|(a, _)| a)
    }

    /// RENAME. Both entries are found by name (the request's); a regular
    /// file it replaces is kept open for the observer to hash. The moved
    /// inode's name moves, and the replaced inode loses its name.
    pub fn do_rename(
        &self,
        pid: u32,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            // Not modelled by the semantics; programs fall back to plain renames.
            return Err(Errno::EINVAL);
        }
        let from_dir = self.dir_fd(parent)?;
        let to_dir = self.dir_fd(newparent)?;
        let (name, newname) = (component(name)?, component(newname)?);
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        let st = nix::sys::stat::fstatat(from_dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        let node = (st.st_dev, st.st_ino);
        let replaced_entry = match self.open_entry(&to_dir, newparent, newname) {
            Ok(found) => Some(found),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let replaced = replaced_entry.as_ref().map(|(_, r)| (r.st_dev, r.st_ino));
        // Keep the replaced file's old inode open and let the observer hash it later.
        if let Some((fd, r)) = &replaced_entry
            && kind_of(r.st_mode) == FileType::RegularFile
            && replaced != Some(node)
            && self.hashable((r.st_dev, r.st_ino))
            && let Ok(old) = reopen_read(&self.proc_fds, fd)
        {
            self.observer.keep_before_state((r.st_dev, r.st_ino), old);
        }
        drop(replaced_entry);
        nix::fcntl::renameat2(
            from_dir.as_fd(),
            name,
            to_dir.as_fd(),
            newname,
            nix::fcntl::RenameFlags::from_bits_truncate(flags),
        )
        .map_err(errno)?;
        // A rename between two names of one inode changes nothing.
        if replaced != Some(node) {
            let mut table = self.table.lock().unwrap();
            let moved = table.by_node.get(&node).copied();
            table
                .names
                .rename((parent, name), (newparent, newname), moved);
        }
        let mut moved = Vec::new();
        if kind_of(st.st_mode) == FileType::Directory {
            match self.open_entry(&to_dir, newparent, newname) {
                Ok((fd, _)) => self.entries_below(&fd, &from, &to, &mut moved),
                Err(e) => self.observer.failure(format!(
                    "cannot list what a rename moved from {from} to {to}: opening the directory: {}", std::io::Error::from_raw_os_error(e.code())
                )),
            }
        }
        self.observer.event(Event::Rename {
            from,
            to,
            replaced,
            moved,
            pid,
        });
        Ok(())
    }

    /// LINK: the inode the kernel names (by identity, through its
    /// `/proc/self/fd` entry) gets the new name.
    pub fn do_link(
        &self,
        pid: u32,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
    ) -> Result<FileAttr, Errno> {
        let inode = self.reach(ino)?;
        if inode.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        let to_dir = self.dir_fd(newparent)?;
        let newname = component(newname)?;
        let from = self.path(ino);
        let to = self.child_path(newparent, newname)?;
        nix::unistd::linkat(
            self.proc_fds.as_fd(),
            inode.fd.as_raw_fd().to_string().as_str(),
            to_dir.as_fd(),
            newname,
            AtFlags::AT_SYMLINK_FOLLOW,
        )
        .map_err(errno)?;
        self.observer.event(Event::Link {
            from,
            to,
            node: inode.node,
            pid,
        });
        self.made(newparent, newname, None).map(|(a, _)| a)
    }

    /// OPEN: the backing file of `ino`, opened by identity. The protected
    /// file is refused.
    fn do_open(&self, pid: u32, ino: u64, flags: i32) -> Result<Opened, Errno> {
        let inode = self.reach(ino)?;
        let path = self.path(ino);
        self.allowed(inode.node, || path.clone(), pid)?;
        match inode.kind {
            FileType::Directory => return Err(Errno::EISDIR),
            FileType::Symlink => return Err(Errno::ELOOP),
            _ => {}
        }
        let file = self.open_backing_file(&inode.fd, flags, &path)?;
        Ok(Opened { file, path, inode })
    }

    /// Opens the inode behind `fd` as the kernel asked (`flags`). With
    /// passthrough, read-write where possible so that one backing id per
    /// inode serves every open mode.
    fn open_backing_file(&self, fd: &OwnedFd, flags: i32, path: &str) -> Result<File, Errno> {
        let keep = flags
            & !(libc::O_CREAT
                | libc::O_EXCL
                | libc::O_TRUNC
                | libc::O_NOCTTY
                | libc::O_NOFOLLOW
                | libc::O_ACCMODE);
        let open = |acc: i32| reopen(&self.proc_fds, fd, OFlag::from_bits_truncate(keep | acc));
        if self.uses_passthrough() {
            open(libc::O_RDWR).or_else(|_| open(flags & libc::O_ACCMODE))
        } else {
            open(flags & libc::O_ACCMODE)
        }
        .map(File::from)
        .map_err(|e| self.open_failed(e, || format!("opening {path}")))
    }

    /// CREATE: a new regular file `name` in `parent`, opened as asked.
    fn do_create(
        &self,
        req: (u32, u32, u32),
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, File), Errno> {
        let (pid, uid, gid) = req;
        let dir = self.dir_fd(parent)?;
        let name = component(name)?;
        let path = self.child_path(parent, name)?;
        let acc = if self.uses_passthrough() {
            libc::O_RDWR
        } else {
            flags & libc::O_ACCMODE
        };
        let keep = flags & !(libc::O_ACCMODE | libc::O_NOCTTY);
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::from_bits_truncate(keep | acc | libc::O_CREAT)
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode & !umask),
        )
        .map_err(|e| self.open_failed(e, || format!("creating {path}")))?;
        let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
        let node = (st.st_dev, st.st_ino);
        // The kernel sends CREATE for names it believes absent; an existing
        // file can only be met in a race with a process outside the tree.
        self.allowed(node, || path.clone(), pid)?;
        self.give(&fd, uid, gid)?;
        let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
        let path_fd = reopen(&self.proc_fds, &fd, OFlag::O_PATH)
            .map_err(|e| self.open_failed(e, || format!("creating {path}")))?;
        let (ino, _) = self.remember(parent, name, path_fd, &st);
        self.observer.event(Event::Create { path, node, pid });
        Ok((self.attr_of(ino, &st), File::from(fd)))
    }

    pub fn do_release(&self, fh: u64) {
        self.files.release(fh);
    }

    fn handle_file(&self, fh: u64) -> Result<File, Errno> {
        self.files.handle_file(fh)
    }

    pub fn do_read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let file = self.handle_file(fh)?;
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_errno(e)),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    pub fn do_write(&self, fh: u64, offset: u64, data: &[u8], append: bool) -> Result<u32, Errno> {
        let file = self.handle_file(fh)?;
        if append {
            // The kernel gives the offset of the end it knows; the backing
            // fd was opened with O_APPEND kept, so a plain write appends.
            use std::io::Write;
            let mut f = &file;
            f.write_all(data).map_err(io_errno)?;
        } else {
            file.write_all_at(data, offset).map_err(io_errno)?;
        }
        Ok(data.len() as u32)
    }

    pub fn do_readdir(&self, ino: u64) -> Result<Listing, Errno> {
        let dir = self.dir_fd(ino)?;
        let mut d = nix::dir::Dir::openat(
            dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let mut out = Vec::new();
        for entry in d.iter() {
            let entry = entry.map_err(errno)?;
            let kind = match entry.file_type() {
                Some(nix::dir::Type::Directory) => FileType::Directory,
                Some(nix::dir::Type::Symlink) => FileType::Symlink,
                Some(nix::dir::Type::Fifo) => FileType::NamedPipe,
                Some(nix::dir::Type::CharacterDevice) => FileType::CharDevice,
                Some(nix::dir::Type::BlockDevice) => FileType::BlockDevice,
                Some(nix::dir::Type::Socket) => FileType::Socket,
                _ => FileType::RegularFile,
            };
            out.push((
                entry.ino(),
                kind,
                OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string(),
            ));
        }
        Ok(out)
    }

    pub fn do_statfs(&self) -> Result<nix::sys::statvfs::Statvfs, Errno> {
        nix::sys::statvfs::fstatvfs(self.root.as_fd()).map_err(errno)
    }
}

const GENERATION: Generation = Generation(0);

impl fuser::Filesystem for TraceFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if self.config.passthrough
            && config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok()
        {
            self.passthrough.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.requests.count("lookup");
        match self.do_lookup(parent.0, name) {
            Ok(attr) => reply.entry(&self.config.ttl, &attr, GENERATION),
            Err(e) if e == Errno::ENOENT => {
                if let Ok(path) = self.child_path(parent.0, name) {
                    self.observer.missing(&path, req.pid());
                }
                // A negative entry (inode 0) lets the kernel cache the miss.
                let mut attr = attr(
                    0,
                    &nix::sys::stat::fstat(self.root.as_fd()).expect("root is open"),
                );
                attr.ino = INodeNo(0);
                reply.entry(&self.config.ttl, &attr, GENERATION)
            }
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.requests.count("forget");
        self.do_forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.requests.count("getattr");
        match self.do_getattr(ino.0) {
            Ok(attr) => reply.attr(&self.config.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.requests.count("setattr");
        match self.do_setattr(
            req.pid(),
            ino.0,
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh.map(|f| f.0),
        ) {
            Ok(attr) => reply.attr(&self.config.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.requests.count("readlink");
        match self.do_readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.requests.count("mknod");
        match self.do_mknod(
            (req.pid(), req.uid(), req.gid()),
            parent.0,
            name,
            mode,
            umask,
            rdev,
        ) {
            Ok(attr) => reply.entry(&self.config.ttl, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.requests.count("mkdir");
        match self.do_mkdir(
            (req.pid(), req.uid(), req.gid()),
            parent.0,
            name,
            mode,
            umask,
        ) {
            Ok(attr) => reply.entry(&self.config.ttl, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.requests.count("unlink");
        match self.do_unlink(req.pid(), parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.requests.count("rmdir");
        match self.do_unlink(req.pid(), parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.requests.count("symlink");
        match self.do_symlink(
            (req.pid(), req.uid(), req.gid()),
            parent.0,
            link_name,
            target,
        ) {
            Ok(attr) => reply.entry(&self.config.ttl, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.requests.count("rename");
        match self.do_rename(
            req.pid(),
            parent.0,
            name,
            newparent.0,
            newname,
            flags.bits(),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.requests.count("link");
        match self.do_link(req.pid(), ino.0, newparent.0, newname) {
            Ok(attr) => reply.entry(&self.config.ttl, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count("open");
        let flags = flags.0;
        let pid = req.pid();
        let Opened { file, path, inode } = match self.do_open(pid, ino.0, flags) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let node = inode.node;
        let acc = flags & libc::O_ACCMODE;
        let read = acc == libc::O_RDONLY || acc == libc::O_RDWR;
        let write = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        let truncate = flags & libc::O_TRUNC != 0;
        let observer = self.observer.clone();
        let files = self.files.clone();
        let passthrough = self.uses_passthrough();
        let ino = ino.0;
        // Everything after the safe point: the observer hears of the open
        // and the kernel gets its answer.
        let finish = move || {
            observer.event(Event::Open {
                path,
                node,
                read,
                write,
                truncate,
                pid,
            });
            if read {
                observer.read_open(node, &file);
            }
            files.answer_open(ino, file, flags, passthrough, reply);
        };
        if write || truncate {
            // The last safe point for a pre-existing file's before-state
            // (with passthrough the daemon never sees the writes). The worker
            // does not wait for the hash: the answer goes out when it is done.
            // The hash reads this very inode, through its own descriptor.
            let proc_fds = self.proc_fds.clone();
            let fd = inode.fd;
            self.observer.before_change_then(
                node,
                Box::new(move || reopen_read(&proc_fds, &fd)),
                Box::new(finish),
            );
        } else {
            finish();
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.requests.count("create");
        let result = self.do_create(
            (req.pid(), req.uid(), req.gid()),
            parent.0,
            name,
            mode,
            umask,
            flags,
        );
        let (attr, file) = match result {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let backing = if self.uses_passthrough() {
            self.files
                .backing_for(attr.ino.0, &file, |f| reply.open_backing(f))
        } else {
            None
        };
        match backing {
            Some(id) => {
                let fh = self.files.add_handle(attr.ino.0, file, Some(id.clone()));
                reply.created_passthrough(
                    &self.config.ttl,
                    &attr,
                    GENERATION,
                    FileHandle(fh),
                    FopenFlags::empty(),
                    &id,
                );
            }
            None => {
                let fh = self.files.add_handle(attr.ino.0, file, None);
                reply.created(
                    &self.config.ttl,
                    &attr,
                    GENERATION,
                    FileHandle(fh),
                    FopenFlags::empty(),
                );
            }
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        self.requests.count("read");
        match self.do_read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        self.requests.count("write");
        match self.do_write(fh.0, offset, data, flags.0 & libc::O_APPEND != 0) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        self.requests.count("flush");
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.requests.count("release");
        self.do_release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.requests.count("fsync");
        let result = self.handle_file(fh.0).and_then(|f| {
            if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            }
            .map_err(io_errno)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count("opendir");
        self.observer.listed(&self.path(ino.0), req.pid());
        // The listing is read once per open directory and served from memory
        // (readdir comes in many small pieces; rereading the directory for
        // each would be quadratic in its size).
        match self.do_readdir(ino.0) {
            Ok(entries) => {
                let fh = self.files.next_fh.fetch_add(1, Ordering::Relaxed) + 1;
                self.listings.lock().unwrap().insert(fh, Arc::new(entries));
                reply.opened(FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.requests.count("releasedir");
        self.listings.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.requests.count("readdir");
        let listing = self.listings.lock().unwrap().get(&fh.0).cloned();
        let entries = match listing {
            Some(entries) => Ok(entries),
            None => self.do_readdir(ino.0).map(Arc::new),
        };
        match entries {
            Ok(entries) => {
                for (i, (entry_ino, kind, name)) in entries.iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(*entry_ino), (i + 1) as u64, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.requests.count("statfs");
        match self.do_statfs() {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        self.requests.count("getxattr");
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        self.requests.count("listxattr");
        reply.error(Errno::ENOSYS);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.requests.count("lseek");
        let result = self.handle_file(fh.0).and_then(|f| {
            nix::unistd::lseek(
                f.as_fd(),
                offset,
                match whence {
                    libc::SEEK_DATA => nix::unistd::Whence::SeekData,
                    libc::SEEK_HOLE => nix::unistd::Whence::SeekHole,
                    libc::SEEK_END => nix::unistd::Whence::SeekEnd,
                    libc::SEEK_CUR => nix::unistd::Whence::SeekCur,
                    _ => nix::unistd::Whence::SeekSet,
                },
            )
            .map_err(errno)
        });
        match result {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u64 = INodeNo::ROOT.0;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    /// Two hard links `a` and `b` of inode 10 in the root, both looked up.
    fn hard_links() -> Names {
        let mut names = Names::default();
        names.add(10, ROOT, os("a"));
        names.add(10, ROOT, os("b"));
        names
    }

    #[test]
    fn a_hard_link_renamed_over_is_no_longer_a_name_of_its_old_inode() {
        // stat a; stat b; mv v b: inode 10 keeps only `a`; v's inode is `b`.
        let mut names = hard_links();
        names.add(11, ROOT, os("v"));
        names.rename((ROOT, os("v")), (ROOT, os("b")), Some(11));
        assert_eq!(names.path(10).as_deref(), Some("a"));
        assert_eq!(names.path(11).as_deref(), Some("b"));
    }

    #[test]
    fn the_most_recent_name_is_reported_while_it_exists() {
        let mut names = hard_links();
        assert_eq!(names.path(10).as_deref(), Some("b"));
        names.add(10, ROOT, os("a"));
        assert_eq!(names.path(10).as_deref(), Some("a"));
    }

    #[test]
    fn an_unlinked_link_leaves_the_other_name() {
        // ln a c; rm c
        let mut names = Names::default();
        names.add(10, ROOT, os("a"));
        names.add(10, ROOT, os("c"));
        assert_eq!(names.remove(ROOT, os("c")), Some(10));
        assert_eq!(names.path(10).as_deref(), Some("a"));
        assert_eq!(names.remove(ROOT, os("c")), None);
    }

    #[test]
    fn an_inode_with_no_name_left_is_named_by_its_last_one() {
        let mut names = hard_links();
        names.remove(ROOT, os("b"));
        names.remove(ROOT, os("a"));
        assert_eq!(names.path(10).as_deref(), Some("a"));
        // Once a name is given again, only current names count.
        names.add(10, ROOT, os("z"));
        assert_eq!(names.path(10).as_deref(), Some("z"));
    }

    #[test]
    fn a_name_found_on_another_inode_leaves_the_old_one() {
        // The kernel looked `b` up again and found inode 12 there.
        let mut names = hard_links();
        names.add(12, ROOT, os("b"));
        assert_eq!(names.path(10).as_deref(), Some("a"));
        assert_eq!(names.path(12).as_deref(), Some("b"));
        assert_eq!(names.at.get(&(ROOT, OsString::from("b"))), Some(&12));
    }

    #[test]
    fn files_below_a_renamed_directory_follow_it() {
        let mut names = Names::default();
        names.add(20, ROOT, os("d"));
        names.add(21, 20, os("sub"));
        names.add(22, 21, os("f"));
        assert_eq!(names.path(22).as_deref(), Some("d/sub/f"));
        names.rename((ROOT, os("d")), (ROOT, os("e")), Some(20));
        assert_eq!(names.path(22).as_deref(), Some("e/sub/f"));
        assert_eq!(names.child_path(21, os("g")).as_deref(), Some("e/sub/g"));
    }

    #[test]
    fn a_rename_into_another_directory_moves_the_name() {
        let mut names = Names::default();
        names.add(20, ROOT, os("d"));
        names.add(22, ROOT, os("f"));
        names.rename((ROOT, os("f")), (20, os("g")), Some(22));
        assert_eq!(names.path(22).as_deref(), Some("d/g"));
        assert!(!names.at.contains_key(&(ROOT, OsString::from("f"))));
    }

    #[test]
    fn a_rename_of_an_unknown_name_names_the_inode_found_by_identity() {
        let mut names = Names::default();
        names.rename((ROOT, os("x")), (ROOT, os("y")), Some(30));
        assert_eq!(names.path(30).as_deref(), Some("y"));
    }

    #[test]
    fn a_name_under_a_forgotten_directory_is_skipped() {
        // Hard links d/a and e/b; the kernel forgot directory d.
        let mut names = Names::default();
        names.add(20, ROOT, os("d"));
        names.add(21, ROOT, os("e"));
        names.add(10, 21, os("b"));
        names.add(10, 20, os("a"));
        assert_eq!(names.path(10).as_deref(), Some("d/a"));
        names.forget(20);
        assert_eq!(names.path(10).as_deref(), Some("e/b"));
    }

    #[test]
    fn a_forgotten_inode_has_no_names() {
        let mut names = hard_links();
        names.forget(10);
        assert_eq!(names.path(10), None);
        assert!(names.at.is_empty());
        assert!(names.of.is_empty());
        assert!(names.former.is_empty());
    }

    #[test]
    fn rmdir_removes_the_directory_name() {
        let mut names = Names::default();
        names.add(20, ROOT, os("d"));
        assert_eq!(names.remove(ROOT, os("d")), Some(20));
        assert!(names.at.is_empty());
    }

    #[test]
    fn names_that_are_not_path_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "/"] {
            assert_eq!(component(os(bad)), Err(Errno::EINVAL), "{bad:?}");
        }
        assert!(component(os("...")).is_ok());
    }

    // ---- the daemon's requests, replayed without a mount ----------------

    /// What the observer heard, one line per call.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Log {
        fn push(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    fn content(mut file: File) -> String {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        text
    }

    impl Observer for Log {
        fn event(&self, event: Event) {
            match event {
                Event::Open { path, .. } => self.push(format!("open {path}")),
                Event::Found(Entry {
                    path,
                    kind: Kind::Symlink,
                    symlink_target,
                    ..
                }) => self.push(format!(
                    "symlink {path} -> {:?}",
                    symlink_target.map(|(p, _)| p)
                )),
                _ => {}
            }
        }
        fn before_change(&self, node: Node, open: &dyn Fn() -> std::io::Result<File>) {
            self.push(format!("before {node:?}: {}", content(open().unwrap())));
        }
        fn keep_before_state(&self, node: Node, file: File) {
            self.push(format!("keep {node:?}: {}", content(file)));
        }
        fn refused(&self, path: &str, pid: u32) {
            self.push(format!("refused {path} {pid}"));
        }
        fn failure(&self, what: String) {
            self.push(format!("failure {what}"));
        }
    }

    /// A daemon over a temporary directory holding `a` and its hard link
    /// `b` ("A"), `v` ("V") and `k` ("KEY", the protected file).
    struct Daemon {
        dir: tempfile::TempDir,
        fs: TraceFs,
        log: Arc<Log>,
        key: Node,
    }

    fn node_at(path: &Path) -> Node {
        let st = nix::sys::stat::lstat(path).unwrap();
        (st.st_dev, st.st_ino)
    }

    impl Daemon {
        fn new() -> Daemon {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path();
            std::fs::write(p.join("a"), "A").unwrap();
            std::fs::hard_link(p.join("a"), p.join("b")).unwrap();
            std::fs::write(p.join("v"), "V").unwrap();
            std::fs::write(p.join("k"), "KEY").unwrap();
            let key = node_at(&p.join("k"));
            let root = nix::fcntl::open(
                p,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let log = Arc::new(Log::default());
            let config = FsConfig {
                root_path: p.to_path_buf(),
                seen_root: p.to_path_buf(),
                ttl: Duration::from_secs(1),
                present_owner: None,
                passthrough: false,
                forbidden: Some(key),
            };
            let fs = TraceFs::new(root, config, log.clone()).unwrap();
            Daemon { dir, fs, log, key }
        }

        fn lookup(&self, name: &str) -> u64 {
            self.fs.do_lookup(ROOT, os(name)).unwrap().ino.0
        }

        fn read(&self, ino: u64) -> Result<String, Errno> {
            let opened = self.fs.do_open(7, ino, libc::O_RDONLY)?;
            self.log.push(format!("open {}", opened.path));
            Ok(content(opened.file))
        }

        fn on_disk(&self, name: &str) -> String {
            std::fs::read_to_string(self.dir.path().join(name)).unwrap()
        }
    }

    #[test]
    fn open_getattr_and_truncate_reach_the_inode_after_its_looked_up_name_is_renamed_over() {
        let d = Daemon::new();
        let a = d.lookup("a");
        assert_eq!(d.lookup("b"), a, "hard links are one inode");
        d.lookup("v");
        d.fs.do_rename(7, ROOT, os("v"), ROOT, os("b"), 0).unwrap();
        assert_eq!(d.read(a).unwrap(), "A");
        assert_eq!(d.fs.do_getattr(a).unwrap().size, 1);
        let a_node = node_at(&d.dir.path().join("a"));
        d.fs.do_setattr(7, a, Some(0o600), None, None, Some(0), None, None, None)
            .unwrap();
        assert_eq!(d.on_disk("a"), "");
        assert_eq!(d.on_disk("b"), "V");
        let a_mode = std::fs::metadata(d.dir.path().join("a")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&a_mode.permissions()) & 0o777,
            0o600
        );
        assert_eq!(
            d.log.lines(),
            [
                format!("keep {a_node:?}: A"),
                "open a".to_string(),
                format!("before {a_node:?}: A"),
            ]
        );
    }

    #[test]
    fn link_and_readlink_reach_the_inode_not_a_name() {
        let d = Daemon::new();
        let a = d.lookup("a");
        d.lookup("b");
        d.fs.do_unlink(7, ROOT, os("b"), false).unwrap();
        d.fs.do_link(7, a, ROOT, os("c")).unwrap();
        assert_eq!(d.on_disk("c"), "A");
        d.fs.do_unlink(7, ROOT, os("c"), false).unwrap();
        assert_eq!(d.read(a).unwrap(), "A");
        assert_eq!(d.fs.path(a), "a");
        std::os::unix::fs::symlink("a", d.dir.path().join("s")).unwrap();
        let s = d.lookup("s");
        std::fs::rename(d.dir.path().join("v"), d.dir.path().join("s")).unwrap();
        assert_eq!(d.fs.do_readlink(s).unwrap(), b"a");
        assert_eq!(d.fs.do_readlink(a), Err(Errno::EINVAL));
    }

    #[test]
    fn the_protected_file_is_refused_under_any_name_and_never_opened_to_hash() {
        let d = Daemon::new();
        std::fs::hard_link(d.dir.path().join("k"), d.dir.path().join("k2")).unwrap();
        let k2 = d.lookup("k2");
        assert_eq!(d.read(k2).map(|_| ()), Err(Errno::EACCES));
        let truncate =
            d.fs.do_setattr(7, k2, None, None, None, Some(0), None, None, None);
        assert_eq!(truncate.map(|_| ()), Err(Errno::EACCES));
        let chmod =
            d.fs.do_setattr(7, k2, Some(0o644), None, None, None, None, None, None);
        assert_eq!(chmod.map(|_| ()), Err(Errno::EACCES));
        // Removing or replacing it is allowed, but its content is not read.
        d.lookup("v");
        d.fs.do_rename(7, ROOT, os("v"), ROOT, os("k2"), 0).unwrap();
        d.lookup("k");
        d.fs.do_unlink(7, ROOT, os("k"), false).unwrap();
        assert_eq!(
            d.log.lines(),
            ["refused k2 7", "refused k2 7", "refused k2 7"]
        );
        assert!(
            !d.log
                .lines()
                .iter()
                .any(|l| l.contains(&format!("{:?}", d.key)))
        );
    }

    #[test]
    fn a_symlink_to_the_protected_file_is_no_artifact() {
        let d = Daemon::new();
        std::os::unix::fs::symlink("k", d.dir.path().join("ks")).unwrap();
        std::os::unix::fs::symlink("a", d.dir.path().join("as")).unwrap();
        d.lookup("ks");
        d.lookup("as");
        assert_eq!(
            d.log.lines(),
            ["symlink ks -> None", "symlink as -> Some(\"a\")"]
        );
    }

    #[test]
    fn a_forgotten_inode_is_closed_and_found_again_by_identity() {
        let d = Daemon::new();
        let a = d.lookup("a");
        d.fs.do_forget(a, 1);
        assert_eq!(d.fs.do_getattr(a).map(|_| ()), Err(Errno::ESTALE));
        let again = d.lookup("b");
        assert_ne!(again, a, "FUSE inode numbers are never reused");
        assert_eq!(d.lookup("a"), again);
        d.fs.do_forget(again, 1);
        assert_eq!(d.read(again).unwrap(), "A", "one lookup is left");
        d.fs.do_forget(again, 1);
        assert_eq!(d.fs.do_getattr(again).map(|_| ()), Err(Errno::ESTALE));
        assert!(d.fs.table.lock().unwrap().names.at.is_empty());
        d.fs.do_forget(ROOT, 1);
        assert!(d.fs.do_getattr(ROOT).is_ok(), "the root is never forgotten");
    }
}
