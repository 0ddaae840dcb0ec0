//! The parallel hashing pool (`tracelink::hash::hash_all`) over the two
//! shapes a recording meets: many small files (a source tree) and a few large
//! ones (images, archives). The files are written once per group into a
//! temporary directory before the first sample (not timed) and removed when
//! the run ends; they are then in the page cache, so this measures digesting
//! and the pool's overhead (open, fstat, read), not the disk.
//!
//! Run: `cargo bench --bench hash_pool`.

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tracelink::hash::{self, Algorithm, Job};

fn main() {
    divan::main();
    // Statics are never dropped: remove the generated trees here.
    for dir in CREATED.lock().unwrap().drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Temporary directories made by the fixtures, removed by `main`.
static CREATED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A tree of generated files and the jobs that hash them.
struct Fixture {
    jobs: Vec<Job>,
    bytes: u64,
}

impl Fixture {
    /// Writes `count` files of `size` bytes each (distinct contents) into a
    /// new temporary directory, spread over subdirectories of 100 files.
    fn generate(count: usize, size: usize) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("tracelink-bench-")
            .tempdir()
            .expect("cannot make a temporary directory")
            .keep();
        CREATED.lock().unwrap().push(dir.clone());
        let mut content = vec![0u8; size];
        // Cheap, non-repeating content (an xorshift stream): digesting does
        // not depend on the bytes, but compressing file systems would.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut jobs = Vec::with_capacity(count);
        for i in 0..count {
            for chunk in content.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            let sub = dir.join(format!("d{:03}", i / 100));
            std::fs::create_dir_all(&sub).expect("cannot make a directory");
            let path = sub.join(format!("f{i:05}.bin"));
            std::fs::write(&path, &content).expect("cannot write a file");
            jobs.push(Job {
                path,
                size_hint: size as u64,
            });
        }
        Fixture {
            jobs,
            bytes: (count * size) as u64,
        }
    }

    fn bench(&self, bencher: Bencher, alg: Algorithm) {
        let threads = hash::default_threads();
        let algs = [alg];
        bencher
            .counter(BytesCount::new(self.bytes))
            .counter(ItemsCount::new(self.jobs.len()))
            .bench(|| {
                let results = hash::hash_all(
                    black_box(&self.jobs),
                    black_box(&algs),
                    threads,
                    &mut |_| true,
                );
                assert!(results.iter().all(Result::is_ok), "a file failed to hash");
                results
            });
    }
}

/// 10,000 files of 4 KiB (40 MiB).
mod small_files {
    use super::*;

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| Fixture::generate(10_000, 4 * 1024))
    }

    #[divan::bench(sample_count = 20)]
    fn sha256(bencher: Bencher) {
        fixture().bench(bencher, Algorithm::Sha256);
    }

    #[divan::bench(sample_count = 20)]
    fn blake3(bencher: Bencher) {
        fixture().bench(bencher, Algorithm::Blake3);
    }
}

/// 4 files of 64 MiB (256 MiB).
mod large_files {
    use super::*;

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| Fixture::generate(4, 64 * 1024 * 1024))
    }

    #[divan::bench(sample_count = 10)]
    fn sha256(bencher: Bencher) {
        fixture().bench(bencher, Algorithm::Sha256);
    }

    #[divan::bench(sample_count = 10)]
    fn blake3(bencher: Bencher) {
        fixture().bench(bencher, Algorithm::Blake3);
    }
}
