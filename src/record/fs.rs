//! The FUSE filesystem that serves the monitored root R to the recorded
//! process tree: a passthrough to the real tree that tells an `Observer`
//! about every request that matters for recording.
//!
//! The daemon reaches the real files only through the directory fd of R that
//! was opened before anything was mounted, with `*at` calls beneath O_PATH
//! directory fds it holds for the directories the kernel knows, never
//! following a symlink (every final component is opened with O_NOFOLLOW or
//! AT_SYMLINK_NOFOLLOW, and every directory fd comes from a lookup that saw
//! a directory). Files are keyed by their backing (device, inode), so hard
//! links are one file. With passthrough (root, kernel >= 6.9) reads and
//! writes go straight to the backing file and the daemon sees only metadata
//! requests; otherwise it serves READ and WRITE itself.
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
use std::os::fd::{AsFd, OwnedFd};
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
}

struct Inode {
    node: Node,
    kind: FileType,
    /// A name this inode is known under: (parent FUSE inode, name). The root has none.
    parent: u64,
    name: OsString,
    /// O_PATH fd, for directories only.
    dir: Option<Arc<OwnedFd>>,
    lookups: u64,
}

#[derive(Default)]
struct Table {
    inodes: HashMap<u64, Inode>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Table {
    fn path(&self, ino: u64) -> Result<String, Errno> {
        let mut parts: Vec<&OsStr> = Vec::new();
        let mut cur = ino;
        while cur != INodeNo::ROOT.0 {
            let inode = self.inodes.get(&cur).ok_or(Errno::ESTALE)?;
            parts.push(&inode.name);
            cur = inode.parent;
        }
        let mut path = String::new();
        for part in parts.iter().rev() {
            if !path.is_empty() {
                path.push('/');
            }
            // Names that are not UTF-8 are reported with lossy escapes; the
            // recorder marks such a run incomplete.
            path.push_str(&part.to_string_lossy());
        }
        Ok(path)
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Result<String, Errno> {
        let base = self.path(parent)?;
        let name = name.to_string_lossy();
        Ok(if base.is_empty() {
            name.into_owned()
        } else {
            format!("{base}/{name}")
        })
    }
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

/// The passthrough filesystem over R.
pub struct TraceFs {
    root: Arc<OwnedFd>,
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

/// Where an inode lives: its parent's directory fd and its name there, or
/// for directories (and the root) their own fd.
enum Place {
    Dir(Arc<OwnedFd>),
    Entry(Arc<OwnedFd>, OsString),
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
                parent: 0,
                name: OsString::new(),
                dir: Some(root.clone()),
                lookups: 1,
            },
        );
        table.by_node.insert(node, INodeNo::ROOT.0);
        Ok(TraceFs {
            root,
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

    /// The counts of requests served, readable after the filesystem moved into its session.
    pub fn request_counts(&self) -> Arc<RequestCounts> {
        self.requests.clone()
    }

    /// A flag that tells, once the kernel connection is set up, whether
    /// passthrough is in use (readable after the filesystem moved into its session).
    pub fn passthrough_flag(&self) -> Arc<AtomicBool> {
        self.passthrough.clone()
    }

    fn place(&self, ino: u64) -> Result<Place, Errno> {
        let table = self.table.lock().unwrap();
        let inode = table.inodes.get(&ino).ok_or(Errno::ESTALE)?;
        if let Some(dir) = &inode.dir {
            return Ok(Place::Dir(dir.clone()));
        }
        let parent = table.inodes.get(&inode.parent).ok_or(Errno::ESTALE)?;
        let dir = parent.dir.clone().ok_or(Errno::ESTALE)?;
        Ok(Place::Entry(dir, inode.name.clone()))
    }

    fn dir_fd(&self, ino: u64) -> Result<Arc<OwnedFd>, Errno> {
        match self.place(ino)? {
            Place::Dir(fd) => Ok(fd),
            Place::Entry(..) => Err(Errno::ENOTDIR),
        }
    }

    fn stat_place(place: &Place) -> Result<FileStat, Errno> {
        match place {
            Place::Dir(fd) => nix::sys::stat::fstat(fd.as_fd()).map_err(errno),
            Place::Entry(dir, name) => {
                nix::sys::stat::fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(errno)
            }
        }
    }

    fn path(&self, ino: u64) -> Result<String, Errno> {
        self.table.lock().unwrap().path(ino)
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Result<String, Errno> {
        self.table.lock().unwrap().child_path(parent, name)
    }

    /// Registers (or finds) the inode for a directory entry that was just
    /// stat'ed, counting one kernel lookup.
    fn remember(&self, parent: u64, name: &OsStr, st: &FileStat) -> Result<u64, Errno> {
        let node = (st.st_dev, st.st_ino);
        let kind = kind_of(st.st_mode);
        let mut table = self.table.lock().unwrap();
        if let Some(&ino) = table.by_node.get(&node) {
            let inode = table
                .inodes
                .get_mut(&ino)
                .expect("by_node and inodes agree");
            inode.lookups += 1;
            // The name the kernel used last is a valid way to reach it.
            inode.parent = parent;
            inode.name = name.to_os_string();
            return Ok(ino);
        }
        let dir = if kind == FileType::Directory {
            let parent_fd = table
                .inodes
                .get(&parent)
                .and_then(|p| p.dir.clone())
                .ok_or(Errno::ESTALE)?;
            let fd = nix::fcntl::openat(
                parent_fd.as_fd(),
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
            Some(Arc::new(fd))
        } else {
            None
        };
        let ino = table.next;
        table.next += 1;
        table.inodes.insert(
            ino,
            Inode {
                node,
                kind,
                parent,
                name: name.to_os_string(),
                dir,
                lookups: 1,
            },
        );
        table.by_node.insert(node, ino);
        Ok(ino)
    }

    fn node_of(&self, ino: u64) -> Result<Node, Errno> {
        let table = self.table.lock().unwrap();
        Ok(table.inodes.get(&ino).ok_or(Errno::ESTALE)?.node)
    }

    // ---- the operations, as plain functions ------------------------------

    /// LOOKUP from the kernel: the entry is announced to the observer.
    pub fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let dir = self.dir_fd(parent)?;
        let st = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        let ino = self.remember(parent, name, &st)?;
        let path = self.child_path(parent, name)?;
        let entry = self.entry_of(path, &dir, name, &st);
        self.observer.event(Event::Found(entry));
        Ok(self.attr_of(ino, &st))
    }

    /// The attributes of an entry this daemon just made (not announced: the
    /// request that made it was).
    fn made(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let dir = self.dir_fd(parent)?;
        let st = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        let ino = self.remember(parent, name, &st)?;
        Ok(self.attr_of(ino, &st))
    }

    /// The semantics' view of a directory entry at `path` (= `name` in `dir`).
    fn entry_of(&self, path: String, dir: &OwnedFd, name: &OsStr, st: &FileStat) -> Entry {
        let node = (st.st_dev, st.st_ino);
        match kind_of(st.st_mode) {
            FileType::RegularFile => Entry {
                nlink: st.st_nlink,
                ..Entry::file(path, node)
            },
            FileType::Directory => Entry::dir(path, node),
            FileType::Symlink => {
                let target = nix::fcntl::readlinkat(dir.as_fd(), name)
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
        if kind_of(st.st_mode) != FileType::RegularFile {
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

    /// Every entry below the directory `name` in `dir`, named as if it were
    /// still at `old_prefix` (for a directory rename).
    fn entries_below(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        old_prefix: &str,
        new_prefix: &str,
        out: &mut Vec<Entry>,
    ) {
        let Ok(fd) = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let Ok(mut listing) = nix::dir::Dir::openat(
            fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let names: Vec<OsString> = listing
            .iter()
            .flatten()
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        for child in names {
            let Ok(st) = nix::sys::stat::fstatat(
                fd.as_fd(),
                child.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            let child_str = child.to_string_lossy();
            let old_path = format!("{old_prefix}/{child_str}");
            let new_path = format!("{new_prefix}/{child_str}");
            // Resolve symlinks where they are now, then name their targets
            // as they were before the move.
            let mut entry = self.entry_of(new_path.clone(), &fd, &child, &st);
            entry.path = old_path.clone();
            if let Some((target, _)) = entry.symlink_target.as_mut()
                && let Some(rest) = target.strip_prefix(&format!("{new_prefix}/"))
            {
                *target = format!("{old_prefix}/{rest}");
            }
            let is_dir = entry.kind == Kind::Dir;
            out.push(entry);
            if is_dir {
                self.entries_below(&fd, &child, &old_path, &new_path, out);
            }
        }
    }

    /// Opens the entry `name` in `dir` for reading, never following a symlink.
    fn open_read(dir: &OwnedFd, name: &OsStr) -> std::io::Result<File> {
        nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(std::io::Error::from)
    }

    pub fn do_forget(&self, ino: u64, n: u64) {
        let mut table = self.table.lock().unwrap();
        let Some(inode) = table.inodes.get_mut(&ino) else {
            return;
        };
        inode.lookups = inode.lookups.saturating_sub(n);
        // Directories stay: their fds are how their children are reached.
        if inode.lookups == 0 && inode.kind != FileType::Directory {
            let node = inode.node;
            table.inodes.remove(&ino);
            table.by_node.remove(&node);
        }
    }

    pub fn do_getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let st = Self::stat_place(&self.place(ino)?)?;
        Ok(self.attr_of(ino, &st))
    }

    /// The parent directory fd and name of `ino`, or `None` for the root.
    fn entry(&self, ino: u64) -> Result<Option<(Arc<OwnedFd>, OsString)>, Errno> {
        if ino == INodeNo::ROOT.0 {
            return Ok(None);
        }
        let table = self.table.lock().unwrap();
        let inode = table.inodes.get(&ino).ok_or(Errno::ESTALE)?;
        let parent = table.inodes.get(&inode.parent).ok_or(Errno::ESTALE)?;
        let dir = parent.dir.clone().ok_or(Errno::ESTALE)?;
        Ok(Some((dir, inode.name.clone())))
    }

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
        let entry = self.entry(ino)?;
        // The root is changed through a real fd of it; everything else by name
        // in its parent, never following a symlink.
        let root_fd = match entry {
            None => Some(
                nix::fcntl::openat(
                    self.root.as_fd(),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?,
            ),
            Some(_) => None,
        };
        if let Some(size) = size {
            let Some((dir, name)) = &entry else {
                return Err(Errno::EISDIR);
            };
            let path = self.path(ino)?;
            let node = self.node_of(ino)?;
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
                None => File::from(
                    nix::fcntl::openat(
                        dir.as_fd(),
                        name.as_os_str(),
                        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno)?,
                ),
            };
            let _ = path;
            self.observer
                .before_change(node, &|| Self::open_read(dir, name));
            file.set_len(size).map_err(io_errno)?;
            self.observer.event(Event::Truncate { node, pid: req_pid });
        }
        if let Some(mode) = mode {
            let mode = Mode::from_bits_truncate(mode);
            match (&entry, &root_fd) {
                (Some((dir, name)), _) => nix::sys::stat::fchmodat(
                    dir.as_fd(),
                    name.as_os_str(),
                    mode,
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                ),
                (None, Some(fd)) => nix::sys::stat::fchmod(fd.as_fd(), mode),
                (None, None) => unreachable!("the root has a real fd"),
            }
            .map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            let uid = uid.map(nix::unistd::Uid::from_raw);
            let gid = gid.map(nix::unistd::Gid::from_raw);
            match (&entry, &root_fd) {
                (Some((dir, name)), _) => nix::unistd::fchownat(
                    dir.as_fd(),
                    name.as_os_str(),
                    uid,
                    gid,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ),
                (None, Some(fd)) => nix::unistd::fchown(fd.as_fd(), uid, gid),
                (None, None) => unreachable!("the root has a real fd"),
            }
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
            let (a, m) = (spec(atime), spec(mtime));
            match (&entry, &root_fd) {
                (Some((dir, name)), _) => nix::sys::stat::utimensat(
                    dir.as_fd(),
                    name.as_os_str(),
                    &a,
                    &m,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                ),
                (None, Some(fd)) => nix::sys::stat::futimens(fd.as_fd(), &a, &m),
                (None, None) => unreachable!("the root has a real fd"),
            }
            .map_err(errno)?;
        }
        self.do_getattr(ino)
    }

    pub fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        match self.place(ino)? {
            Place::Entry(dir, name) => nix::fcntl::readlinkat(dir.as_fd(), name.as_os_str())
                .map(|t| t.as_bytes().to_vec())
                .map_err(errno),
            Place::Dir(_) => Err(Errno::EINVAL),
        }
    }

    fn new_entry_owner(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        // The caller owns what it creates. Only root can give files away;
        // an unprivileged daemon's files are its user's already.
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        nix::unistd::fchownat(
            dir.as_fd(),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
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
        let kind = SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits());
        nix::sys::stat::mknodat(
            dir.as_fd(),
            name,
            kind,
            Mode::from_bits_truncate(mode & !umask),
            rdev as _,
        )
        .map_err(errno)?;
        self.new_entry_owner(&dir, name, uid, gid)?;
        let attr = self.made(parent, name)?;
        if kind == SFlag::S_IFREG {
            let path = self.child_path(parent, name)?;
            let node = self.node_of(attr.ino.0)?;
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
        nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(mode & !umask))
            .map_err(errno)?;
        self.new_entry_owner(&dir, name, uid, gid)?;
        let path = self.child_path(parent, name)?;
        self.observer.event(Event::Mkdir { path, pid });
        self.made(parent, name)
    }

    pub fn do_unlink(
        &self,
        pid: u32,
        parent: u64,
        name: &OsStr,
        dir_flag: bool,
    ) -> Result<(), Errno> {
        let dir = self.dir_fd(parent)?;
        let path = self.child_path(parent, name)?;
        let st = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        let flag = if dir_flag {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        if kind_of(st.st_mode) == FileType::RegularFile
            && let Ok(old) = Self::open_read(&dir, name)
        {
            // Keep the old inode open and let the observer hash it later.
            self.observer.keep_before_state((st.st_dev, st.st_ino), old);
        }
        nix::unistd::unlinkat(dir.as_fd(), name, flag).map_err(errno)?;
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
        nix::unistd::symlinkat(target, dir.as_fd(), name).map_err(errno)?;
        self.new_entry_owner(&dir, name, uid, gid)?;
        let path = self.child_path(parent, name)?;
        let resolved_target = self.resolve_symlink(&path, target).map(|(p, _)| p);
        self.observer.event(Event::Symlink {
            path,
            resolved_target,
            pid,
        });
        self.made(parent, name)
    }

    pub fn do_rename(
        &self,
        pid: u32,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        let from_dir = self.dir_fd(parent)?;
        let to_dir = self.dir_fd(newparent)?;
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        let st = nix::sys::stat::fstatat(from_dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        if flags & libc::RENAME_EXCHANGE != 0 {
            // Not modelled by the semantics; programs fall back to plain renames.
            return Err(Errno::EINVAL);
        }
        let replaced_st =
            nix::sys::stat::fstatat(to_dir.as_fd(), newname, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let replaced = replaced_st.map(|s| (s.st_dev, s.st_ino));
        // Keep the replaced file's old inode open and let the observer hash it later.
        if let Some(r) = replaced_st
            && kind_of(r.st_mode) == FileType::RegularFile
            && (r.st_dev, r.st_ino) != (st.st_dev, st.st_ino)
            && let Ok(old) = Self::open_read(&to_dir, newname)
        {
            self.observer.keep_before_state((r.st_dev, r.st_ino), old);
        }
        nix::fcntl::renameat2(
            from_dir.as_fd(),
            name,
            to_dir.as_fd(),
            newname,
            nix::fcntl::RenameFlags::from_bits_truncate(flags),
        )
        .map_err(errno)?;
        let node = (st.st_dev, st.st_ino);
        {
            let mut table = self.table.lock().unwrap();
            if let Some(&ino) = table.by_node.get(&node) {
                let inode = table.inodes.get_mut(&ino).expect("consistent");
                inode.parent = newparent;
                inode.name = newname.to_os_string();
            }
        }
        let mut moved = Vec::new();
        if kind_of(st.st_mode) == FileType::Directory {
            self.entries_below(&to_dir, newname, &from, &to, &mut moved);
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

    pub fn do_link(
        &self,
        pid: u32,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
    ) -> Result<FileAttr, Errno> {
        let Place::Entry(dir, name) = self.place(ino)? else {
            return Err(Errno::EPERM);
        };
        let to_dir = self.dir_fd(newparent)?;
        let from = self.path(ino)?;
        nix::unistd::linkat(
            dir.as_fd(),
            name.as_os_str(),
            to_dir.as_fd(),
            newname,
            AtFlags::empty(),
        )
        .map_err(errno)?;
        let to = self.child_path(newparent, newname)?;
        let node = self.node_of(ino)?;
        self.observer.event(Event::Link {
            from,
            to,
            node,
            pid,
        });
        self.made(newparent, newname)
    }

    /// Opens the backing file of `ino`. With passthrough, the backing file
    /// is opened read-write where possible so that one backing id per inode
    /// serves every open mode.
    fn open_backing_file(&self, ino: u64, flags: i32) -> Result<File, Errno> {
        let Place::Entry(dir, name) = self.place(ino)? else {
            return Err(Errno::EISDIR);
        };
        let keep = flags
            & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY | libc::O_ACCMODE);
        let open = |acc: i32| {
            nix::fcntl::openat(
                dir.as_fd(),
                name.as_os_str(),
                OFlag::from_bits_truncate(keep | acc) | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = if self.uses_passthrough() {
            open(libc::O_RDWR).or_else(|_| open(flags & libc::O_ACCMODE))
        } else {
            open(flags & libc::O_ACCMODE)
        }
        .map_err(errno)?;
        Ok(File::from(fd))
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
        let opened = (|| -> Result<_, Errno> {
            let file = self.open_backing_file(ino.0, flags)?;
            let path = self.path(ino.0)?;
            let node = self.node_of(ino.0)?;
            let place = self.place(ino.0)?;
            Ok((file, path, node, place))
        })();
        let (file, path, node, place) = match opened {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let acc = flags & libc::O_ACCMODE;
        let read = acc == libc::O_RDONLY || acc == libc::O_RDWR;
        let write = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        let truncate = flags & libc::O_TRUNC != 0;
        let pid = req.pid();
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
            let Place::Entry(dir, name) = place else {
                return finish();
            };
            self.observer.before_change_then(
                node,
                Box::new(move || Self::open_read(&dir, &name)),
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
        let result = (|| -> Result<(FileAttr, File), Errno> {
            let dir = self.dir_fd(parent.0)?;
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
            .map_err(errno)?;
            self.new_entry_owner(&dir, name, req.uid(), req.gid())?;
            let st = nix::sys::stat::fstat(fd.as_fd()).map_err(errno)?;
            let ino = self.remember(parent.0, name, &st)?;
            let path = self.child_path(parent.0, name)?;
            self.observer.event(Event::Create {
                path,
                node: (st.st_dev, st.st_ino),
                pid: req.pid(),
            });
            Ok((self.attr_of(ino, &st), File::from(fd)))
        })();
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

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count("opendir");
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
