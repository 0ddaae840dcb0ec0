//! Snapshot recording: the artifacts under a list of paths, exactly as
//! in-toto-run 3.1.0 records them for `-m/--materials` and `-p/--products`.
//!
//! Port of in-toto's `FileResolver.hash_artifacts` with `follow_symlink_dirs`
//! on: each given path is normalized (`posixpath.normpath`), excluded paths
//! are dropped, a file (or a symlink to one) is recorded under its given
//! name, a directory (or a symlink to one) is walked with symlinked
//! directories followed, excluded directories pruned, and only entries that
//! resolve to regular files kept (fifos, sockets, devices and dangling
//! symlinks are skipped). Names get `\` replaced by `/`, then the first
//! matching `--lstrip-paths` prefix removed.
//!
//! Where in-toto-run would silently record less than it was asked to (an
//! unreadable directory) or loop (a symlink cycle), tracelink refuses with an
//! error instead: a link must not claim a tree it did not see. Hashing is
//! done by the `hash` pool; this module chooses the files and knows nothing
//! of how the command runs or how the link is signed.

use crate::exclude::ExcludeSet;
use crate::hash::{self, Algorithm, FileId, Hashed, Job};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "{path:?}: file name is not valid UTF-8, and in-toto artifact paths are strings (exclude it with --exclude)"
    )]
    NonUtf8 { path: PathBuf },
    #[error(
        "cannot read directory {path:?} (in-toto-run would skip it silently; tracelink will not record a tree it cannot see: fix the permissions or --exclude it)"
    )]
    UnreadableDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot inspect {path:?}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "symlink loop: {path:?} leads back to {ancestor:?}, which in-toto-run would walk until the path is too long (--exclude one of them)"
    )]
    SymlinkLoop { path: PathBuf, ancestor: PathBuf },
    #[error("--lstrip-paths {a:?} and {b:?} overlap (one is a prefix of the other)")]
    LstripOverlap { a: String, b: String },
    #[error("--lstrip-paths makes two artifacts share the name {name:?}")]
    LstripDuplicate { name: String },
    #[error("{uri:?}: the {scheme:?} artifact scheme is not supported by tracelink")]
    UnsupportedScheme { uri: String, scheme: String },
    #[error(transparent)]
    Hash(#[from] hash::HashError),
}

/// How to find and name artifacts: in-toto-run's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Paths are looked up relative to this directory (`--base-path`); the
    /// recorded names do not include it.
    pub base_path: Option<PathBuf>,
    pub excludes: ExcludeSet,
    /// `--lstrip-paths`
    pub lstrip: Vec<String>,
}

/// One file the walk found, before hashing.
#[derive(Debug, Clone)]
pub struct Found {
    /// The artifact name as in-toto records it.
    pub name: String,
    /// Where to read it.
    pub path: PathBuf,
    /// Identity from `stat` (symlinks followed) at walk time.
    pub id: FileId,
}

/// The recorded artifacts: name -> digests and the identity they were taken from.
pub type Recorded = BTreeMap<String, Hashed>;

/// Lists the artifacts under `paths` as in-toto-run would, without hashing.
pub fn find(paths: &[String], opts: &Options) -> Result<Vec<Found>, SnapshotError> {
    for (i, a) in opts.lstrip.iter().enumerate() {
        for b in &opts.lstrip[i + 1..] {
            if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                return Err(SnapshotError::LstripOverlap {
                    a: a.clone(),
                    b: b.clone(),
                });
            }
        }
    }
    let mut walk = Walk {
        opts,
        found: Vec::new(),
        names: HashMap::new(),
    };
    for uri in paths {
        let (scheme, path) = match uri.split_once(':') {
            Some(("file", rest)) => ("file:", rest),
            Some((scheme @ ("ostree" | "dir"), _)) => {
                return Err(SnapshotError::UnsupportedScheme {
                    uri: uri.clone(),
                    scheme: scheme.into(),
                });
            }
            _ => ("", uri.as_str()),
        };
        walk.top(scheme, &normpath(path))?;
    }
    Ok(walk.found)
}

/// Finds and hashes the artifacts under `paths`. A file whose identity is
/// unchanged since it was hashed in `reuse` (see `Hashed::still_valid_for`)
/// keeps that digest instead of being read again.
pub fn record(
    paths: &[String],
    opts: &Options,
    algs: &[Algorithm],
    reuse: Option<&Recorded>,
    tick: &mut dyn FnMut(&hash::Progress) -> bool,
) -> Result<Recorded, SnapshotError> {
    let started = std::time::Instant::now();
    let found = find(paths, opts)?;
    if std::env::var_os("TRACELINK_TIMINGS").is_some() {
        eprintln!(
            "tracelink: timing: walk: {:.3} s ({} files)",
            started.elapsed().as_secs_f64(),
            found.len()
        );
    }
    let reusable: HashMap<(u64, u64), &Hashed> = reuse
        .into_iter()
        .flat_map(|r| r.values())
        .map(|h| ((h.id.dev, h.id.ino), h))
        .collect();
    let mut recorded = Recorded::new();
    let mut jobs = Vec::new();
    let mut job_names = Vec::new();
    for f in found {
        match reusable.get(&(f.id.dev, f.id.ino)) {
            Some(h) if h.still_valid_for(&f.id) => {
                recorded.insert(f.name, (*h).clone());
            }
            _ => {
                jobs.push(Job {
                    path: f.path,
                    size_hint: f.id.size,
                });
                job_names.push(f.name);
            }
        }
    }
    let results = hash::hash_all(&jobs, algs, hash::default_threads(), tick);
    for (name, result) in job_names.into_iter().zip(results) {
        recorded.insert(name, result?);
    }
    Ok(recorded)
}

struct Walk<'a> {
    opts: &'a Options,
    found: Vec<Found>,
    /// name -> index in `found` (a later duplicate replaces an earlier one, as in a dict).
    names: HashMap<String, usize>,
}

impl Walk<'_> {
    fn fs_path(&self, name: &Path) -> PathBuf {
        match &self.opts.base_path {
            Some(base) => base.join(name),
            None => name.to_path_buf(),
        }
    }

    fn top(&mut self, scheme: &str, path: &str) -> Result<(), SnapshotError> {
        if self.opts.excludes.is_excluded(path) {
            return Ok(());
        }
        let fs = self.fs_path(Path::new(path));
        let meta = match std::fs::metadata(&fs) {
            Ok(meta) => meta,
            // in-toto-run: "path does not exist, skipping" (dangling symlinks too).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(SnapshotError::Stat { path: fs, source }),
        };
        if meta.is_file() {
            self.add(scheme, path.to_string(), fs, &meta)?;
        } else if meta.is_dir() {
            let mut ancestors = vec![((meta.dev(), meta.ino()), fs.clone())];
            self.dir(scheme, path, true, &fs, &mut ancestors)?;
        }
        Ok(())
    }

    /// Walks directory `fs`, whose artifact name is `name`; `utf8` is false
    /// when some component of it is not UTF-8 (`name` is then lossy, good
    /// only for exclude checks, and any file found below is an error).
    fn dir(
        &mut self,
        scheme: &str,
        name: &str,
        utf8: bool,
        fs: &Path,
        ancestors: &mut Vec<((u64, u64), PathBuf)>,
    ) -> Result<(), SnapshotError> {
        let unreadable = |source| SnapshotError::UnreadableDir {
            path: fs.to_path_buf(),
            source,
        };
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(fs).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let child_fs = entry.path();
            let file_name = entry.file_name();
            let child_name = match std::str::from_utf8(file_name.as_bytes()) {
                Ok(s) if utf8 => Some(join(name, s)),
                _ => None,
            };
            // For the exclude check, a non-UTF-8 name is matched in its lossy form.
            let match_name = child_name
                .clone()
                .unwrap_or_else(|| join(name, &file_name.to_string_lossy()));
            if self.opts.excludes.is_excluded(&match_name) {
                continue;
            }
            let file_type = entry.file_type().map_err(|source| SnapshotError::Stat {
                path: child_fs.clone(),
                source,
            })?;
            // os.walk sorts entries with is_dir() (symlinks followed) and
            // in-toto keeps the rest if isfile() (symlinks followed).
            let meta = if file_type.is_symlink() {
                match std::fs::metadata(&child_fs) {
                    Ok(meta) => meta,
                    Err(_) => continue, // dangling or looping symlink: skipped
                }
            } else if file_type.is_dir() || file_type.is_file() {
                std::fs::metadata(&child_fs).map_err(|source| SnapshotError::Stat {
                    path: child_fs.clone(),
                    source,
                })?
            } else {
                continue; // fifo, socket, device
            };
            if meta.is_dir() {
                subdirs.push((match_name, child_name, child_fs, meta));
            } else if meta.is_file() {
                let Some(child_name) = child_name else {
                    return Err(SnapshotError::NonUtf8 { path: child_fs });
                };
                self.add(scheme, child_name, child_fs, &meta)?;
            }
        }
        for (match_name, child_name, child_fs, meta) in subdirs {
            let key = (meta.dev(), meta.ino());
            if let Some((_, ancestor)) = ancestors.iter().find(|(k, _)| *k == key) {
                return Err(SnapshotError::SymlinkLoop {
                    path: child_fs,
                    ancestor: ancestor.clone(),
                });
            }
            ancestors.push((key, child_fs.clone()));
            self.dir(
                scheme,
                &match_name,
                child_name.is_some(),
                &child_fs,
                ancestors,
            )?;
            ancestors.pop();
        }
        Ok(())
    }

    fn add(
        &mut self,
        scheme: &str,
        name: String,
        path: PathBuf,
        meta: &std::fs::Metadata,
    ) -> Result<(), SnapshotError> {
        let mut name = name.replace('\\', "/");
        if let Some(prefix) = self
            .opts
            .lstrip
            .iter()
            .find(|p| name.starts_with(p.as_str()))
        {
            name.drain(..prefix.len());
        }
        if !self.opts.lstrip.is_empty() && self.names.contains_key(&name) {
            return Err(SnapshotError::LstripDuplicate { name });
        }
        let name = format!("{scheme}{name}");
        let found = Found {
            name: name.clone(),
            path,
            id: FileId::of(meta),
        };
        match self.names.get(&name) {
            Some(&i) => self.found[i] = found,
            None => {
                self.names.insert(name, self.found.len());
                self.found.push(found);
            }
        }
        Ok(())
    }
}

/// `os.path.normpath(join(base, name))` for an already normalized `base`.
fn join(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        normpath(&format!("{base}{name}"))
    } else {
        normpath(&format!("{base}/{name}"))
    }
}

/// Python's `posixpath.normpath`: collapses `//`, `.` and `..` lexically,
/// keeps exactly two leading slashes, and turns "" into ".".
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." if initial == 0 && (parts.is_empty() || parts.last() == Some(&"..")) => {
                parts.push("..")
            }
            ".." => {
                parts.pop();
            }
            _ => parts.push(comp),
        }
    }
    let joined = parts.join("/");
    let out = format!("{}{joined}", "/".repeat(initial));
    if out.is_empty() { ".".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_matches_python() {
        // Expected values from python3 -c 'import posixpath; print(posixpath.normpath(p))'
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("./a", "a"),
            ("a/./b/", "a/b"),
            ("a//b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/..", "/"),
            ("/a/../..", "/"),
            ("//a", "//a"),
            ("///a", "/a"),
            ("/./a/", "/a"),
            ("..", ".."),
            ("a/..", "."),
        ];
        for (input, want) in cases {
            assert_eq!(normpath(input), want, "normpath({input:?})");
        }
    }

    fn opts() -> Options {
        Options {
            base_path: None,
            excludes: ExcludeSet::defaults(),
            lstrip: Vec::new(),
        }
    }

    #[test]
    fn overlapping_lstrip_prefixes_are_refused() {
        let o = Options {
            lstrip: vec!["a/".into(), "a/b/".into()],
            ..opts()
        };
        assert!(matches!(
            find(&[".".into()], &o),
            Err(SnapshotError::LstripOverlap { .. })
        ));
    }

    #[test]
    fn symlink_loop_is_an_error_not_an_endless_walk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("d/up")).unwrap();
        let o = Options {
            base_path: Some(dir.path().into()),
            ..opts()
        };
        let err = find(&[".".into()], &o).unwrap_err();
        assert!(matches!(err, SnapshotError::SymlinkLoop { .. }), "{err}");
    }
}
