//! A content-addressed store of file contents, named by their sha256:
//! what `tracelink run --store DIR` keeps of every material (as it was
//! before the step) and every product, so that a step can be replayed after
//! the tree has moved on.
//!
//! Layout: `DIR/sha256/<first 2 hex>/<remaining 62 hex>`, read-only files.
//! Each object is written to a temporary file in `DIR/tmp`, hashed *as
//! stored*, and renamed into place only when absent: equal contents are
//! kept once, and an object's name is always the digest of its bytes.
//! Copies share blocks with the original where the filesystem can reflink.
//! `DIR/sha256` and `DIR/tmp` are opened when the store is opened (before
//! a recorded command runs) and everything beneath them is reached through
//! those descriptors without following symlinks: the store may lie inside
//! the recorded tree, which may rename its directories or plant symlinks.
//!
//! This module knows files and digests; it knows nothing of links, traces
//! or how the files were found.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {dir}")]
    Open {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot copy {what} into the store")]
    Put {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the store has no object {sha256}")]
    Missing { sha256: String },
    #[error("store object {path} does not hold the content its name says (sha256 {actual})")]
    Corrupt { path: PathBuf, actual: String },
    #[error("cannot restore {sha256} to {dest}")]
    Restore {
        sha256: String,
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One object put into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    /// The copy shares blocks with its source (no data was copied).
    pub reflinked: bool,
    /// The store already held this content.
    pub existed: bool,
}

/// An open store. Its directories are opened once, by `open` (before a
/// recorded command runs): objects, temporary files and object
/// subdirectories are created and found beneath those descriptors, never
/// through the store's path and never through a symlink, so a recorded
/// tree that swaps a store directory for a symlink cannot redirect the
/// copies (docs/threat-model.md).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    fds: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    /// `DIR/sha256`
    objects: OwnedFd,
    /// `DIR/tmp` (not for a store opened to read: `open_existing`)
    tmp: Option<OwnedFd>,
}

const BLOCK: usize = 256 * 1024;

/// Directories beneath a store descriptor: open, never following a symlink.
const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Opens the directory `name` beneath `parent`, creating it if `create`;
/// `None` if it does not exist (and is not to be created).
fn subdir(parent: impl AsFd, name: &str, create: bool) -> std::io::Result<Option<OwnedFd>> {
    if create {
        match nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match nix::fcntl::openat(parent.as_fd(), name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if !create => Ok(None),
        Err(Errno::ELOOP) => Err(std::io::Error::other(format!(
            "{name} is a symlink, not a directory"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// An object's name split into its subdirectory and file name: only a
/// sha256 in lowercase hex names an object (a crafted link's digest never
/// names a path).
fn split(sha256: &str) -> Option<(&str, &str)> {
    let hex = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| sha256.split_at(2))
}

/// A temporary file in the store's `tmp`, removed when dropped unless it
/// was renamed into place.
struct Temporary<'a> {
    dir: &'a OwnedFd,
    name: String,
    file: File,
    placed: bool,
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        if !self.placed {
            let _ = nix::unistd::unlinkat(
                self.dir,
                self.name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

impl Store {
    /// Opens the store at `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, true)
    }

    /// Opens an existing store to read objects from, creating nothing (the
    /// directory may come from a crafted trace); `put_*` then fails.
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, false)
    }

    fn open_with(dir: &Path, create: bool) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            dir: dir.into(),
            source,
        };
        if create {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let top = nix::fcntl::open(
            dir,
            OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|e| open_err(e.into()))?;
        let objects = subdir(&top, "sha256", create)
            .map_err(open_err)?
            .ok_or_else(|| {
                open_err(std::io::Error::other(
                    "not a store: it has no sha256 directory",
                ))
            })?;
        let tmp = if create {
            subdir(&top, "tmp", true).map_err(open_err)?
        } else {
            None
        };
        let dir = std::fs::canonicalize(dir).map_err(open_err)?;
        Ok(Store {
            dir,
            fds: Arc::new(Dirs { objects, tmp }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the object with this sha256 lives (whether or not it exists),
    /// by the path the store was opened with: for messages and readers
    /// outside a recording; the store itself reaches objects through its
    /// descriptors.
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        let (head, tail) = sha256.split_at(sha256.len().min(2));
        self.dir.join("sha256").join(head).join(tail)
    }

    pub fn contains(&self, sha256: &str) -> bool {
        let Some((head, tail)) = split(sha256) else {
            return false;
        };
        let Ok(Some(sub)) = subdir(&self.fds.objects, head, false) else {
            return false;
        };
        nix::sys::stat::fstatat(&sub, tail, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
    }

    /// A new temporary file beneath `tmp` (O_EXCL, O_NOFOLLOW).
    fn temporary(&self) -> std::io::Result<Temporary<'_>> {
        let tmp = self
            .fds
            .tmp
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the store was opened to read only"))?;
        let mut last = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        for _ in 0..16 {
            let random = getrandom::u64().map_err(|e| std::io::Error::other(e.to_string()))?;
            let name = format!("put-{random:016x}");
            match nix::fcntl::openat(
                tmp,
                name.as_str(),
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_RDWR
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => {
                    return Ok(Temporary {
                        dir: tmp,
                        name,
                        file: File::from(fd),
                        placed: false,
                    });
                }
                Err(Errno::EEXIST) => last = Errno::EEXIST.into(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last)
    }

    /// Moves `tmp` to `sha256/<head>/<tail>` unless an object is there
    /// already; returns whether one was.
    fn place(&self, tmp: &mut Temporary<'_>, head: &str, tail: &str) -> std::io::Result<bool> {
        let sub = subdir(&self.fds.objects, head, true)?.expect("created");
        let renamed = nix::fcntl::renameat2(
            tmp.dir,
            tmp.name.as_str(),
            &sub,
            tail,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        );
        let result = match renamed {
            Ok(()) => Ok(false),
            Err(Errno::EEXIST) => return Ok(true),
            // A filesystem without RENAME_NOREPLACE: a hard link does not
            // replace either.
            Err(Errno::EINVAL | Errno::ENOSYS) => match nix::unistd::linkat(
                tmp.dir,
                tmp.name.as_str(),
                &sub,
                tail,
                nix::fcntl::AtFlags::empty(),
            ) {
                Ok(()) => {
                    let _ = nix::unistd::unlinkat(
                        tmp.dir,
                        tmp.name.as_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                    Ok(false)
                }
                Err(Errno::EEXIST) => return Ok(true),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        if result.is_ok() {
            tmp.placed = true;
        }
        result
    }

    /// Copies the content of the open file `src` (from offset 0, whatever
    /// its file position) into the store and returns its digest. `what`
    /// names the source in errors.
    pub fn put_file(&self, src: &File, what: &str) -> Result<Stored, StoreError> {
        let put_err = |source| StoreError::Put {
            what: what.into(),
            source,
        };
        let mut tmp = self.temporary().map_err(put_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BLOCK];
        let mut size = 0u64;
        let reflinked = crate::sys::reflink(src, &tmp.file).is_ok();
        // Hash what was stored: the clone itself, or the bytes as written.
        let (reader, tee) = if reflinked {
            (tmp.file.try_clone().map_err(put_err)?, false)
        } else {
            (src.try_clone().map_err(put_err)?, true)
        };
        loop {
            let n = match reader.read_at(&mut buf, size) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(put_err(e)),
            };
            hasher.update(&buf[..n]);
            if tee {
                tmp.file.write_all(&buf[..n]).map_err(put_err)?;
            }
            size += n as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        let (head, tail) = split(&sha256).expect("a sha256 in hex");
        if self.contains(&sha256) {
            return Ok(Stored {
                sha256,
                size,
                reflinked,
                existed: true,
            });
        }
        tmp.file.sync_all().map_err(put_err)?;
        tmp.file
            .set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(put_err)?;
        // A concurrent put of the same content wins; ours is dropped.
        let existed = self.place(&mut tmp, head, tail).map_err(put_err)?;
        Ok(Stored {
            sha256,
            size,
            reflinked,
            existed,
        })
    }

    /// Opens `path` (not following a final symlink) and puts it.
    pub fn put_path(&self, path: &Path) -> Result<Stored, StoreError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let what = path.display().to_string();
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|source| StoreError::Put {
                what: what.clone(),
                source,
            })?;
        self.put_file(&file, &what)
    }

    /// Opens the object `sha256` beneath the store's descriptors (never
    /// through a symlink).
    fn open_object(&self, sha256: &str) -> std::io::Result<Option<File>> {
        let Some((head, tail)) = split(sha256) else {
            return Ok(None);
        };
        let Some(sub) = subdir(&self.fds.objects, head, false)? else {
            return Ok(None);
        };
        match nix::fcntl::openat(
            &sub,
            tail,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => {
                // A store may be someone else's: an object is a regular file
                // or it is not one (a FIFO or device in its place).
                let file = File::from(fd);
                if !file.metadata()?.is_file() {
                    return Err(std::io::Error::other(format!(
                        "store object {sha256} is not a regular file"
                    )));
                }
                Ok(Some(file))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the object `sha256` to the new file `dest` with `mode`,
    /// checking that the bytes written are the ones named.
    pub fn restore(&self, sha256: &str, dest: &Path, mode: u32) -> Result<(), StoreError> {
        let object = self.object_path(sha256);
        let restore_err = |source| StoreError::Restore {
            sha256: sha256.into(),
            dest: dest.into(),
            source,
        };
        let src = self
            .open_object(sha256)
            .map_err(restore_err)?
            .ok_or_else(|| StoreError::Missing {
                sha256: sha256.into(),
            })?;
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(restore_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BLOCK];
        let reflinked = crate::sys::reflink(&src, &out).is_ok();
        let mut offset = 0u64;
        loop {
            let n = src.read_at(&mut buf, offset).map_err(restore_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if !reflinked {
                out.write_all(&buf[..n]).map_err(restore_err)?;
            }
            offset += n as u64;
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            drop(out);
            let _ = std::fs::remove_file(dest);
            return Err(StoreError::Corrupt {
                path: object,
                actual,
            });
        }
        out.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(restore_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    #[test]
    fn equal_contents_are_kept_once_under_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "hello\n").unwrap();
        std::fs::write(&b, "hello\n").unwrap();
        let first = store.put_path(&a).unwrap();
        assert_eq!(first.sha256, HELLO_SHA256);
        assert_eq!(first.size, 6);
        assert!(!first.existed);
        let second = store.put_path(&b).unwrap();
        assert!(second.existed);
        let object = store.object_path(HELLO_SHA256);
        assert_eq!(std::fs::read(&object).unwrap(), b"hello\n");
        assert_eq!(
            std::fs::metadata(&object).unwrap().permissions().mode() & 0o777,
            0o444
        );
        let objects = walk(&dir.path().join("store/sha256"));
        assert_eq!(objects, [object]);
        assert!(walk(&dir.path().join("store/tmp")).is_empty());
    }

    #[test]
    fn put_reads_from_the_start_whatever_the_file_position() {
        use std::io::{Read as _, Seek as _};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        let mut file = File::open(&path).unwrap();
        let mut two = [0u8; 2];
        file.read_exact(&mut two).unwrap();
        assert_eq!(store.put_file(&file, "f").unwrap().sha256, HELLO_SHA256);
        assert_eq!(file.stream_position().unwrap(), 2);
    }

    #[test]
    fn restore_writes_the_mode_and_refuses_a_corrupt_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "hello\n").unwrap();
        store.put_path(&src).unwrap();
        let dest = dir.path().join("out");
        store.restore(HELLO_SHA256, &dest, 0o755).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello\n");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // Restoring never overwrites.
        assert!(store.restore(HELLO_SHA256, &dest, 0o644).is_err());

        let object = store.object_path(HELLO_SHA256);
        std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&object, "evil\n").unwrap();
        let err = store
            .restore(HELLO_SHA256, &dir.path().join("out2"), 0o644)
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!dir.path().join("out2").exists());
        let missing = store.restore(&"0".repeat(64), &dir.path().join("out3"), 0o644);
        assert!(matches!(missing, Err(StoreError::Missing { .. })));
    }

    #[test]
    fn store_directory_swapped_for_a_symlink_still_receives_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let objects = dir.path().join("s/sha256");
        let moved = dir.path().join("s/sha256.moved");
        std::fs::rename(&objects, &moved).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &objects).unwrap();
        let tmp_moved = dir.path().join("s/tmp.moved");
        std::fs::rename(dir.path().join("s/tmp"), &tmp_moved).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("s/tmp")).unwrap();

        let src = dir.path().join("src");
        std::fs::write(&src, "hello\n").unwrap();
        let put = store.put_path(&src).unwrap();
        assert_eq!(put.sha256, HELLO_SHA256);
        assert!(store.contains(HELLO_SHA256));
        assert!(walk(&elsewhere).is_empty(), "{:?}", walk(&elsewhere));
        assert_eq!(
            walk(&moved),
            [moved.join(&HELLO_SHA256[..2]).join(&HELLO_SHA256[2..])]
        );
        assert!(walk(&tmp_moved).is_empty());
        let out = dir.path().join("out");
        store.restore(HELLO_SHA256, &out, 0o644).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello\n");
    }

    #[test]
    fn object_subdirectory_planted_as_a_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(
            &elsewhere,
            dir.path().join("s/sha256").join(&HELLO_SHA256[..2]),
        )
        .unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "hello\n").unwrap();
        let err = store.put_path(&src).unwrap_err();
        assert!(matches!(err, StoreError::Put { .. }), "{err}");
        assert!(walk(&elsewhere).is_empty());
        assert!(walk(&dir.path().join("s/tmp")).is_empty());
        assert!(!store.contains(HELLO_SHA256));
    }

    #[test]
    fn open_existing_creates_nothing_and_reads_only() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        let err = Store::open_existing(&plain).unwrap_err();
        assert!(format!("{err:#}").contains("plain"), "{err}");
        assert!(walk(&plain).is_empty());
        assert!(std::fs::read_dir(&plain).unwrap().next().is_none());

        let store = Store::open(&dir.path().join("s")).unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "hello\n").unwrap();
        store.put_path(&src).unwrap();
        let reader = Store::open_existing(&dir.path().join("s")).unwrap();
        assert!(reader.contains(HELLO_SHA256));
        assert!(reader.put_path(&src).is_err());
        reader
            .restore(HELLO_SHA256, &dir.path().join("out"), 0o644)
            .unwrap();
    }

    #[test]
    fn only_a_sha256_names_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join("s/secret"), "x").unwrap();
        for name in [
            "../secret",
            "../../s/secret",
            "",
            "ab",
            &HELLO_SHA256.to_uppercase(),
        ] {
            assert!(!store.contains(name), "{name}");
            let err = store.restore(name, &dir.path().join("out"), 0o644);
            assert!(matches!(err, Err(StoreError::Missing { .. })), "{name}");
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
