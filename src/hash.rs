//! The parallel hashing pool: digests of many files at once, on all cores.
//!
//! Jobs are handed out largest first (so a few big files do not end up on
//! one worker at the end), read in big blocks, and checked for change while
//! they were read: the file's identity (device, inode, size, mtime, ctime)
//! is taken before and after, and a file that changed is read again.
//! sha256 comes from the `sha2` crate, which uses the CPU's SHA extensions
//! where present; blake3 is opt-in. This module knows files and digests; it
//! knows nothing of in-toto, links or how the files were chosen.

use sha2::Digest as _;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The hex sha256 of `bytes` (of a file already read, e.g. metadata).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A digest algorithm tracelink can record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Blake3,
}

impl Algorithm {
    /// The name in-toto links use for it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Parses a comma-separated list such as `sha256,blake3`.
    pub fn parse_list(text: &str) -> Result<Vec<Algorithm>, HashError> {
        let mut algs = Vec::new();
        for part in text.split(',').map(str::trim) {
            let alg = match part {
                "sha256" => Algorithm::Sha256,
                "blake3" => Algorithm::Blake3,
                other => return Err(HashError::UnknownAlgorithm(other.to_string())),
            };
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs.sort();
        Ok(algs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("unknown digest algorithm {0:?} (expected sha256 or blake3, comma-separated)")]
    UnknownAlgorithm(String),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file any more")]
    NotRegular { path: PathBuf },
    #[error("{path} kept changing while it was being hashed")]
    Unstable { path: PathBuf },
    #[error("hashing was interrupted")]
    Interrupted,
}

/// What identifies a file's content without reading it: if all of these are
/// unchanged, so is the content, provided the file was not changed within
/// the timestamp granularity of the moment it was hashed (see `Hashed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The digests of one file and the identity it had while being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// (algorithm, lowercase hex), in the order asked for.
    pub digests: Vec<(Algorithm, String)>,
    pub id: FileId,
    /// Wall-clock time just before the file was opened.
    pub started: SystemTime,
}

impl Hashed {
    /// Whether a file that now has identity `now` still has these digests
    /// without reading it again: same identity, and its last change (ctime)
    /// lies safely before the moment we started reading, so that a write in
    /// the same timestamp tick as our read cannot hide (the "racy clean" case).
    pub fn still_valid_for(&self, now: &FileId) -> bool {
        const MARGIN: Duration = Duration::from_secs(1);
        let ctime = std::time::UNIX_EPOCH
            + Duration::new(self.id.ctime.0.max(0) as u64, self.id.ctime.1 as u32);
        self.id == *now && ctime + MARGIN < self.started
    }
}

/// One file to hash. `size_hint` orders the work (largest first).
#[derive(Debug, Clone)]
pub struct Job {
    pub path: PathBuf,
    pub size_hint: u64,
}

/// Progress as the pool reports it to the caller's thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The number of hashing threads: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Hashes every job with `algs` on `threads` workers. Results come back in
/// the order of `jobs`. `tick` runs on the calling thread about every 100 ms
/// and at the end; returning `false` from it stops the work and yields
/// `HashError::Interrupted` for the files not yet hashed.
///
/// Workers take the next job with one atomic increment and keep their
/// results to themselves until they finish: no message per file, so tens
/// of thousands of small files cost no wake-ups.
pub fn hash_all(
    jobs: &[Job],
    algs: &[Algorithm],
    threads: usize,
    tick: &mut dyn FnMut(&Progress) -> bool,
) -> Vec<Result<Hashed, HashError>> {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].size_hint));
    let next = AtomicUsize::new(0);
    let files_done = AtomicUsize::new(0);
    let bytes_done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Number of workers still running, and a signal when it reaches zero.
    let running = (std::sync::Mutex::new(0usize), std::sync::Condvar::new());
    let progress = |files_done: &AtomicUsize, bytes_done: &AtomicU64| Progress {
        files_done: files_done.load(Relaxed),
        files_total: jobs.len(),
        bytes_done: bytes_done.load(Relaxed),
        bytes_total: jobs.iter().map(|j| j.size_hint).sum(),
    };
    let mut results: Vec<Option<Result<Hashed, HashError>>> = Vec::new();
    results.resize_with(jobs.len(), || None);

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1).min(jobs.len().max(1)))
            .map(|_| {
                *running.0.lock().unwrap() += 1;
                let (order, next, files_done, bytes_done, stop, running) =
                    (&order, &next, &files_done, &bytes_done, &stop, &running);
                scope.spawn(move || {
                    let mut buf = vec![0u8; BLOCK];
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        let result = if stop.load(Relaxed) {
                            Err(HashError::Interrupted)
                        } else {
                            hash_file(&jobs[i].path, algs, &mut buf)
                        };
                        files_done.fetch_add(1, Relaxed);
                        bytes_done.fetch_add(jobs[i].size_hint, Relaxed);
                        mine.push((i, result));
                    }
                    let mut count = running.0.lock().unwrap();
                    *count -= 1;
                    running.1.notify_all();
                    mine
                })
            })
            .collect();
        let mut count = running.0.lock().unwrap();
        while *count > 0 {
            count = running
                .1
                .wait_timeout(count, Duration::from_millis(100))
                .unwrap()
                .0;
            if *count > 0 && !tick(&progress(&files_done, &bytes_done)) {
                stop.store(true, Relaxed);
            }
        }
        drop(count);
        for worker in workers {
            for (i, result) in worker.join().expect("a hashing worker panicked") {
                results[i] = Some(result);
            }
        }
    });
    tick(&progress(&files_done, &bytes_done));
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(HashError::Interrupted)))
        .collect()
}

/// Read size: big enough to amortize syscalls, small enough to stay in L2.
const BLOCK: usize = 256 * 1024;

/// Hashes one file, reading it again (up to 3 times) if it changes meanwhile.
pub fn hash_file(path: &Path, algs: &[Algorithm], buf: &mut [u8]) -> Result<Hashed, HashError> {
    let read_err = |source| HashError::Read {
        path: path.to_path_buf(),
        source,
    };
    for _ in 0..3 {
        let started = SystemTime::now();
        // O_NONBLOCK: if the path was swapped for a fifo meanwhile, do not hang.
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(read_err)?;
        let before = file.metadata().map_err(read_err)?;
        if !before.is_file() {
            return Err(HashError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        // Read exactly the size fstat gave: a file that grows or shrinks
        // meanwhile is caught by the identity check below, and small files
        // need no extra read to see the end.
        let mut limited = std::io::Read::take(&mut file, before.len());
        let digests = digest_reader(&mut limited, algs, buf).map_err(read_err)?;
        let after = file.metadata().map_err(read_err)?;
        let id = FileId::of(&before);
        if id == FileId::of(&after) {
            return Ok(Hashed {
                digests,
                id,
                started,
            });
        }
    }
    Err(HashError::Unstable {
        path: path.to_path_buf(),
    })
}

/// Digests everything `reader` yields.
pub fn digest_reader(
    reader: &mut dyn std::io::Read,
    algs: &[Algorithm],
    buf: &mut [u8],
) -> std::io::Result<Vec<(Algorithm, String)>> {
    let mut sha = algs.contains(&Algorithm::Sha256).then(sha2::Sha256::new);
    let mut b3 = algs.contains(&Algorithm::Blake3).then(blake3::Hasher::new);
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(h) = sha.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(h) = b3.as_mut() {
            h.update(&buf[..n]);
        }
    }
    Ok(algs
        .iter()
        .map(|&alg| {
            let hex = match alg {
                Algorithm::Sha256 => hex::encode(sha.take().expect("asked for").finalize()),
                Algorithm::Blake3 => b3
                    .take()
                    .expect("asked for")
                    .finalize()
                    .to_hex()
                    .to_string(),
            };
            (alg, hex)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_hello() {
        let mut buf = vec![0u8; 4];
        let digests = digest_reader(
            &mut &b"hello\n"[..],
            &[Algorithm::Sha256, Algorithm::Blake3],
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            digests[0],
            (
                Algorithm::Sha256,
                "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into()
            )
        );
        assert_eq!(digests[1].1, blake3::hash(b"hello\n").to_hex().to_string());
    }

    #[test]
    fn algorithm_lists_parse_and_reject_unknown_names() {
        assert_eq!(
            Algorithm::parse_list("blake3,sha256").unwrap(),
            vec![Algorithm::Sha256, Algorithm::Blake3]
        );
        let err = Algorithm::parse_list("sha256,md5").unwrap_err();
        assert!(err.to_string().contains("\"md5\""), "{err}");
    }

    #[test]
    fn pool_returns_results_in_job_order_with_errors_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        for i in 0..50 {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![i as u8; i * 1000]).unwrap();
            jobs.push(Job {
                path,
                size_hint: (i * 1000) as u64,
            });
        }
        jobs.push(Job {
            path: dir.path().join("missing"),
            size_hint: 0,
        });
        let results = hash_all(&jobs, &[Algorithm::Sha256], 3, &mut |_| true);
        for (i, result) in results.iter().take(50).enumerate() {
            let want = hex::encode(sha2::Sha256::digest(vec![i as u8; i * 1000]));
            assert_eq!(result.as_ref().unwrap().digests[0].1, want, "file {i}");
        }
        assert!(matches!(results[50], Err(HashError::Read { .. })));
    }

    #[test]
    fn a_fresh_file_is_not_trusted_without_rereading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let hashed = hash_file(&path, &[Algorithm::Sha256], &mut [0u8; 16]).unwrap();
        // Written within the last second: a same-tick rewrite could hide.
        assert!(!hashed.still_valid_for(&hashed.id));
        let old = Hashed {
            started: hashed.started + Duration::from_secs(5),
            ..hashed.clone()
        };
        assert!(old.still_valid_for(&hashed.id));
        let changed = FileId {
            size: 2,
            ..hashed.id
        };
        assert!(!old.still_valid_for(&changed));
    }
}
