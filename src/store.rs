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
//!
//! This module knows files and digests; it knows nothing of links, traces
//! or how the files were found.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

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

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

const BLOCK: usize = 256 * 1024;

impl Store {
    /// Opens the store at `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            dir: dir.into(),
            source,
        };
        std::fs::create_dir_all(dir.join("sha256")).map_err(open_err)?;
        std::fs::create_dir_all(dir.join("tmp")).map_err(open_err)?;
        let dir = std::fs::canonicalize(dir).map_err(open_err)?;
        Ok(Store { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the object with this sha256 lives (whether or not it exists).
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        let (head, tail) = sha256.split_at(sha256.len().min(2));
        self.dir.join("sha256").join(head).join(tail)
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.object_path(sha256).is_file()
    }

    /// Copies the content of the open file `src` (from offset 0, whatever
    /// its file position) into the store and returns its digest. `what`
    /// names the source in errors.
    pub fn put_file(&self, src: &File, what: &str) -> Result<Stored, StoreError> {
        let put_err = |source| StoreError::Put {
            what: what.into(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(self.dir.join("tmp"))
            .map_err(put_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BLOCK];
        let mut size = 0u64;
        let reflinked = crate::sys::reflink(src, tmp.as_file()).is_ok();
        // Hash what was stored: the clone itself, or the bytes as written.
        let (reader, tee) = if reflinked {
            (tmp.as_file().try_clone().map_err(put_err)?, false)
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
                tmp.write_all(&buf[..n]).map_err(put_err)?;
            }
            size += n as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        let dest = self.object_path(&sha256);
        if dest.is_file() {
            return Ok(Stored {
                sha256,
                size,
                reflinked,
                existed: true,
            });
        }
        tmp.as_file().sync_all().map_err(put_err)?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o444))
            .map_err(put_err)?;
        std::fs::create_dir_all(dest.parent().expect("objects have a parent")).map_err(put_err)?;
        // persist_noclobber: a concurrent put of the same content wins; ours is dropped.
        let existed = match tmp.persist_noclobber(&dest) {
            Ok(_) => false,
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => true,
            Err(e) => return Err(put_err(e.error)),
        };
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

    /// Writes the object `sha256` to the new file `dest` with `mode`,
    /// checking that the bytes written are the ones named.
    pub fn restore(&self, sha256: &str, dest: &Path, mode: u32) -> Result<(), StoreError> {
        let object = self.object_path(sha256);
        let src = File::open(&object).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::Missing {
                sha256: sha256.into(),
            },
            _ => StoreError::Restore {
                sha256: sha256.into(),
                dest: dest.into(),
                source: e,
            },
        })?;
        let restore_err = |source| StoreError::Restore {
            sha256: sha256.into(),
            dest: dest.into(),
            source,
        };
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
