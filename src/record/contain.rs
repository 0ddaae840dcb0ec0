//! What the recorded tree may see of the machine (docs/threat-model.md),
//! prepared in the sandbox's mount namespace before the command exists.
//!
//! The command later enters a user namespace of its own, so every mount made
//! here is locked for it: it cannot unmount or reveal what lies beneath.
//! This module makes those mounts:
//! - other mounts of the root's filesystem (a second bind mount, the same
//!   disk mounted twice, an overlay with a layer under the root) are covered
//!   by an empty read-only tmpfs, so the root's files are reachable only
//!   through the monitored mount;
//! - a minimal /dev (no block devices: no raw reads of the root's disk);
//! - /sys read-only, with the FUSE connections (abort), cgroups, debugfs and
//!   tracefs masked; /proc/sys read-only and /proc/sysrq-trigger masked;
//! - the signing key covered when it lies outside the root;
//! - with `--isolate`, empty directories over the usual places of host sockets.
//!
//! It knows mounts and paths; it knows nothing of FUSE, processes or in-toto.

use nix::mount::{MsFlags, mount};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// One line of /proc/self/mountinfo, the parts we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// "major:minor" of the filesystem.
    pub dev: String,
    /// The directory of the filesystem this mount shows.
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Filesystem-specific options (an overlay's layers are there).
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space...).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Parses /proc/self/mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 4 || sep < 6 {
            continue;
        }
        out.push(MountInfo {
            dev: fields[2].to_string(),
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
            fs_type: fields[sep + 1].to_string(),
            super_options: fields[sep + 3].to_string(),
        });
    }
    out
}

/// The mount `path` is reached through: the last listed mount whose mount
/// point is `path` or an ancestor of it (later mounts are on top).
fn mount_of<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
}

/// Whether one of `a`, `b` is an ancestor of (or equal to) the other.
fn related(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The overlay layers named in an overlay's options.
fn overlay_layers(options: &str) -> Vec<PathBuf> {
    let mut layers = Vec::new();
    for option in options.split(',') {
        let Some((key, value)) = option.split_once('=') else {
            continue;
        };
        if matches!(
            key,
            "lowerdir" | "upperdir" | "workdir" | "lowerdir+" | "datadir+"
        ) {
            layers.extend(value.split(':').map(unescape));
        }
    }
    layers
}

/// The mount points that reach the root's files other than through `root`
/// itself: every other mount of its filesystem whose directory is an
/// ancestor of, equal to or below the root's, and every overlay with a
/// layer related to the root. Mount points below the root are left out
/// (the monitored mount hides them).
pub fn other_views(mounts: &[MountInfo], root: &Path) -> Vec<PathBuf> {
    let Some(home) = mount_of(mounts, root) else {
        return Vec::new();
    };
    let rel = root
        .strip_prefix(&home.mount_point)
        .unwrap_or(Path::new(""));
    let root_in_fs = home.root.join(rel);
    let mut out = Vec::new();
    for m in mounts {
        if std::ptr::eq(m, home) || m.mount_point.starts_with(root) {
            continue;
        }
        let same_fs = m.dev == home.dev && related(&m.root, &root_in_fs);
        let overlay = m.fs_type == "overlay"
            && overlay_layers(&m.super_options)
                .iter()
                .any(|layer| related(layer, root));
        if (same_fs || overlay) && !out.contains(&m.mount_point) {
            out.push(m.mount_point.clone());
        }
    }
    out
}

/// Why the tree's view could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error("cannot read the mount table")]
    MountTable(#[source] std::io::Error),
    #[error(
        "{0} is another mount of the monitored root's filesystem and it cannot be covered without hiding the root itself; record from a root that is not beneath it"
    )]
    AncestorView(PathBuf),
    #[error("cannot {what} {}: {source}", path.display())]
    Mount {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
}

fn mount_err(what: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> ContainError {
    let path = path.to_path_buf();
    move |source| ContainError::Mount { what, path, source }
}

/// Mounts an empty read-only tmpfs over the directory `path`, or
/// /dev/null over a file.
fn cover(path: &Path) -> Result<(), ContainError> {
    let meta = std::fs::symlink_metadata(path);
    if meta.as_ref().is_ok_and(|m| m.is_dir()) {
        mount(
            Some("tracelink-cover"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,mode=0555"),
        )
        .map_err(mount_err("cover", path))
    } else {
        bind_read_only(Path::new("/dev/null"), path).map_err(mount_err("cover", path))
    }
}

fn bind_read_only(src: &Path, dest: &Path) -> nix::Result<()> {
    mount(
        Some(src),
        dest,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    remount_read_only(dest)
}

/// Makes the mount at `path` read-only, keeping the flags the kernel may
/// have locked (nosuid, nodev, noexec, atime) or the remount is refused.
fn remount_read_only(path: &Path) -> nix::Result<()> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let flags = statvfs(path)?.flags();
    let mut ms = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs) {
            ms |= m;
        }
    }
    mount(None::<&str>, path, None::<&str>, ms, None::<&str>)
}

/// What to prepare.
pub struct Plan<'a> {
    /// The root as the tree sees it (the monitored mount goes there later).
    pub root: &'a Path,
    /// The directory the mount serves, when it is not `root` (a rerun serves
    /// a work tree at the original root's path): it is covered too.
    pub backing: Option<&'a Path>,
    /// A file to hide from the tree (the signing key), when outside the root.
    pub hide: Option<&'a Path>,
    pub isolate: bool,
}

/// Prepares the tree's view in the current (private) mount namespace, before
/// the monitored mount is made. Call with the mount table of this namespace.
pub fn prepare(plan: &Plan<'_>) -> Result<(), ContainError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(ContainError::MountTable)?;
    let mounts = parse_mountinfo(&text);
    let served = plan.backing.unwrap_or(plan.root);
    for view in other_views(&mounts, served) {
        if plan.root.starts_with(&view) || served.starts_with(&view) {
            return Err(ContainError::AncestorView(view));
        }
        cover(&view)?;
    }
    if let Some(backing) = plan.backing
        && backing != plan.root
    {
        // The served directory itself is reachable by its own path.
        cover(backing)?;
    }
    if let Some(key) = plan.hide
        && !key.starts_with(served)
    {
        cover(key)?;
    }
    if plan.isolate {
        let mut dirs: Vec<PathBuf> = ["/run", "/var/run", "/tmp/.X11-unix"]
            .iter()
            .map(PathBuf::from)
            .collect();
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
            dirs.push(PathBuf::from(xdg));
        }
        for dir in dirs {
            // A symlink (/var/run -> /run) is covered through its target;
            // a directory holding the root cannot be covered.
            let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
            if !is_dir || plan.root.starts_with(&dir) {
                continue;
            }
            mount(
                Some("tracelink-isolate"),
                &dir,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("size=1m,mode=0755"),
            )
            .map_err(mount_err("mount an empty tmpfs over", &dir))?;
        }
    }
    minimal_dev(plan.root)?;
    read_only_sys(&mounts, plan.root)?;
    Ok(())
}

/// The device nodes the tree gets in its /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Replaces /dev by a tmpfs holding binds of the harmless character devices,
/// the pts and shm mounts and the usual symlinks: no block device is there.
fn minimal_dev(root: &Path) -> Result<(), ContainError> {
    let dev = Path::new("/dev");
    if root.starts_with(dev) {
        return Ok(());
    }
    // The old nodes are reached through descriptors once the tmpfs hides them.
    let mut keep: Vec<(OsString, std::os::fd::OwnedFd)> = Vec::new();
    for name in DEVICES
        .iter()
        .chain(["pts", "shm", "mqueue", "hugepages"].iter())
    {
        let path = dev.join(name);
        if let Ok(fd) = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        ) {
            keep.push((OsString::from(name), fd));
        }
    }
    mount(
        Some("tracelink-dev"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )
    .map_err(mount_err("mount a minimal /dev over", dev))?;
    for (name, fd) in &keep {
        let source = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ));
        let target = dev.join(name);
        let is_dir =
            nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if is_dir {
            std::fs::create_dir(&target)
        } else {
            std::fs::File::create(&target).map(drop)
        }
        .map_err(|e| ContainError::Mount {
            what: "create",
            path: target.clone(),
            source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mount_err("bind into the minimal /dev:", &target))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).map_err(|e| ContainError::Mount {
            what: "create the symlink",
            path: dev.join(link),
            source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    remount_read_only(dev).map_err(mount_err("make read-only", dev))
}

/// Directories of /sys that are masked: the FUSE connections (abort), the
/// cgroup tree, debugfs and tracefs.
const SYS_MASKED: [&str; 4] = [
    "/sys/fs/fuse/connections",
    "/sys/fs/cgroup",
    "/sys/kernel/debug",
    "/sys/kernel/tracing",
];

/// Masks the control directories of /sys and makes /sys and every mount
/// below it read-only.
fn read_only_sys(mounts: &[MountInfo], root: &Path) -> Result<(), ContainError> {
    let sys = Path::new("/sys");
    if root.starts_with(sys) || !sys.is_dir() {
        return Ok(());
    }
    for dir in SYS_MASKED {
        let dir = Path::new(dir);
        if dir.is_dir() {
            cover(dir)?;
        }
    }
    // /sys itself becomes a bind of itself so that it can be read-only
    // whatever the mount table had there.
    mount(
        Some(sys),
        sys,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err("bind", sys))?;
    let mut below: Vec<&Path> = mounts
        .iter()
        .map(|m| m.mount_point.as_path())
        .filter(|p| p.starts_with(sys))
        .collect();
    below.sort();
    below.dedup();
    remount_read_only(sys).map_err(mount_err("make read-only", sys))?;
    for path in below {
        // Masked ones are read-only already; a vanished one needs nothing.
        if path == sys || SYS_MASKED.iter().any(|m| path.starts_with(m)) {
            continue;
        }
        match remount_read_only(path) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(mount_err("make read-only", path)(e)),
        }
    }
    Ok(())
}

/// Inside the tree's PID namespace, once its /proc is mounted: /proc/sys
/// read-only and /proc/sysrq-trigger masked (root in the tree's user
/// namespace is still uid 0 to their permission checks).
pub fn harden_proc() -> Result<(), ContainError> {
    let sys = Path::new("/proc/sys");
    mount(Some(sys), sys, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(mount_err("bind", sys))?;
    remount_read_only(sys).map_err(mount_err("make read-only", sys))?;
    let sysrq = Path::new("/proc/sysrq-trigger");
    if sysrq.exists() {
        bind_read_only(Path::new("/dev/null"), sysrq).map_err(mount_err("mask", sysrq))?;
    }
    Ok(())
}

/// `path` as bytes, for messages that must not lose non-UTF-8 names.
pub fn display_bytes(path: &OsStr) -> String {
    path.as_bytes().escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:5 / /dev rw,nosuid - devtmpfs udev rw
30 22 254:1 /srv /mnt/work rw - ext4 /dev/vda1 rw
31 22 254:1 /srv/project/sub /srv/sub rw - ext4 /dev/vda1 rw
32 22 254:1 /etc/hosts /etc/hosts rw - ext4 /dev/vda1 rw
33 22 254:1 /var/lib /var/lib rw - ext4 /dev/vda1 rw
34 22 0:40 / /merged rw - overlay overlay rw,lowerdir=/srv/project/layer:/l2,upperdir=/u,workdir=/w
35 22 254:1 /srv/project/x /srv/project/x rw - ext4 /dev/vda1 rw
36 22 254:1 / /mnt/disk\\040two rw - ext4 /dev/vda1 rw
";

    #[test]
    fn other_views_of_the_root_are_found() {
        let mounts = parse_mountinfo(TABLE);
        let views = other_views(&mounts, Path::new("/srv/project"));
        assert_eq!(
            views,
            vec![
                PathBuf::from("/mnt/work"),
                PathBuf::from("/srv/sub"),
                PathBuf::from("/merged"),
                PathBuf::from("/mnt/disk two"),
            ]
        );
    }

    #[test]
    fn unrelated_binds_of_the_same_disk_are_left_alone() {
        let mounts = parse_mountinfo(TABLE);
        let views = other_views(&mounts, Path::new("/srv/project"));
        assert!(!views.contains(&PathBuf::from("/etc/hosts")));
        assert!(!views.contains(&PathBuf::from("/var/lib")));
        assert!(!views.contains(&PathBuf::from("/dev")));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b\\134c"), PathBuf::from("/a b\\c"));
        assert_eq!(unescape("/plain\\04"), PathBuf::from("/plain\\04"));
    }
}
