//! `tracelink rerun` on a real autotools build: GNU hello 2.10 (its
//! release tarball, `./configure && make -j2`), recorded with `--store`.
//!
//! - The rerun reproduces it, with no hidden input, in a report of under 40
//!   lines. configure only probes some files (`test -f build-aux/compile`,
//!   `install-sh`, ...): they are no materials, and a rerun that restored
//!   materials alone failed with `cannot find required auxiliary files`.
//!   `ar` and configure's `conf$$RANDOM` directories are names the rerun
//!   looks up and then makes itself: not hidden inputs.
//! - A source file changed in the original tree afterwards: the rerun takes
//!   the recorded content from the store and still reproduces.
//! - A rerun whose environment makes the build look for one more file is
//!   reported with that hidden input within the report's first 20 lines.
//!
//! The recorded command removes config.log at its end: it holds the random
//! names of gcc's temporary files (`/tmp/ccXXXXXX.o`), which differ between
//! any two builds, rerun or not.
//!
//! The tarball comes from `$TRACELINK_TEST_CACHE` or `tests/data/cache/`
//! (scripts/test.sh fetches it with `apt-get source --download-only hello`).
//! Needs root, /dev/fuse, make and gcc (SKIP otherwise, FAIL under CI).

mod common;

use common::{output, show, tracelink};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, OnceLock};

const TARBALL: &str = "hello_2.10.orig.tar.gz";

/// The recorded command. `HELLO_EXTRA_TOKEN` is secret-named, so the trace
/// redacts it and a rerun takes its value from the rerun's environment:
/// `on` makes the build look for a file the recording never looked for.
const COMMAND: &str = "./configure && make -j2 && rm -f config.log && \
    if [ \"$HELLO_EXTRA_TOKEN\" = on ]; then cat extra-input.txt || true; fi";

fn cache_dir() -> PathBuf {
    match std::env::var_os("TRACELINK_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cache"),
    }
}

/// One recording shared by the tests (it takes a while), and a lock: the
/// reruns mount their trees at the same original root, one at a time.
struct Recorded {
    dir: PathBuf,
    link: PathBuf,
    lock: Mutex<()>,
}

fn recorded(test: &str) -> Option<&'static Recorded> {
    static RECORDED: OnceLock<Option<Recorded>> = OnceLock::new();
    if common::precise_unavailable(test, &["make", "gcc", "tar"]) {
        return None;
    }
    let tarball = cache_dir().join(TARBALL);
    if !tarball.is_file() {
        common::skip(
            test,
            &format!(
                "{} is absent (scripts/test.sh fetches it; or set TRACELINK_TEST_CACHE)",
                tarball.display()
            ),
        );
        return None;
    }
    RECORDED.get_or_init(|| Some(record(&tarball))).as_ref()
}

fn record(tarball: &Path) -> Recorded {
    let dir = tempfile::tempdir().unwrap().keep();
    let out = output(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(&dir),
    );
    assert!(out.status.success(), "{}", show(&out));
    fs::rename(dir.join("hello-2.10"), dir.join("proj")).unwrap();
    let out = output(
        tracelink()
            .arg("keygen")
            .arg(dir.join("key.pem"))
            .arg("--force"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = output(
        tracelink()
            .current_dir(dir.join("proj"))
            .env("HELLO_EXTRA_TOKEN", "off")
            .args(["run", "-n", "build", "-k"])
            .arg(dir.join("key.pem"))
            .arg("-d")
            .arg(&dir)
            .arg("--store")
            .arg(dir.join("store"))
            .args(["--", "sh", "-c", COMMAND]),
    );
    assert!(out.status.success(), "{}", show(&out));
    let link = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "link"))
        .expect("a link was written");
    Recorded {
        dir,
        link,
        lock: Mutex::new(()),
    }
}

impl Recorded {
    /// `tracelink rerun` into the new work directory `name`, with
    /// `HELLO_EXTRA_TOKEN` set to `extra`.
    fn rerun(&self, name: &str, extra: &str, flags: &[&str]) -> Output {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        output(
            tracelink()
                .env("HELLO_EXTRA_TOKEN", extra)
                .arg("rerun")
                .arg(&self.link)
                .arg("--verification-keys")
                .arg(self.dir.join("key.pem.pub"))
                .arg("--workdir")
                .arg(self.dir.join(name))
                .args(flags),
        )
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_configure_and_make_build_reruns_reproduced_without_hidden_inputs() {
    let Some(rec) = recorded("a_configure_and_make_build_reruns_reproduced_without_hidden_inputs")
    else {
        return;
    };
    let out = rec.rerun("rerun-plain", "off", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let verdict = text.lines().nth(1).unwrap_or_default();
    assert!(
        verdict.starts_with("REPRODUCED: ") && verdict.contains(" 0 hidden input(s)"),
        "{}",
        show(&out)
    );
    assert!(!text.contains("HIDDEN INPUT"), "{}", show(&out));
    assert!(
        text.contains("processes: the same tree ("),
        "{}",
        show(&out)
    );
    let lines = text.lines().count();
    assert!(lines < 40, "{lines} lines: {}", show(&out));
    println!("report of {lines} lines:\n{text}");
}

#[test]
fn a_source_changed_in_the_original_tree_reruns_from_the_store() {
    let Some(rec) = recorded("a_source_changed_in_the_original_tree_reruns_from_the_store") else {
        return;
    };
    // The other tests' reruns take src/hello.c from the store as well
    // (the trace names it), so changing it here disturbs none of them.
    let changed = rec.dir.join("proj/src/hello.c");
    let before = fs::read(&changed).unwrap();
    let mut after = before.clone();
    after.extend_from_slice(b"\n/* changed after the recording */\n");
    fs::write(&changed, &after).unwrap();
    let store = rec.dir.join("store");
    let out = rec.rerun(
        "rerun-changed",
        "off",
        &["--store", store.to_str().unwrap()],
    );
    fs::write(&changed, &before).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("REPRODUCED: "),
        "{}",
        show(&out)
    );
    let rerun_copy = fs::read(rec.dir.join("rerun-changed/tree/src/hello.c")).unwrap();
    assert_eq!(rerun_copy, before, "the recorded content, from the store");
}

#[test]
fn a_file_only_the_rerun_looks_for_is_a_hidden_input_in_the_first_20_lines() {
    let Some(rec) =
        recorded("a_file_only_the_rerun_looks_for_is_a_hidden_input_in_the_first_20_lines")
    else {
        return;
    };
    let out = rec.rerun("rerun-extra", "on", &[]);
    let text = stdout(&out);
    let head: Vec<&str> = text.lines().take(20).collect();
    assert!(
        head.iter()
            .any(|l| l.starts_with("HIDDEN INPUT extra-input.txt: ")),
        "{}",
        show(&out)
    );
    assert!(head[1].contains(" 1 hidden input(s)"), "{}", show(&out));
}
