//! Helpers shared by the integration tests: the binary under test, the
//! in-toto reference venv, and the SKIP convention.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tracelink binary cargo built for this test run.
pub fn tracelink() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracelink"))
}

/// The repository's test vectors.
pub fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

/// The venv's python, if the in-toto venv is there (no SKIP line: for
/// tests that only re-check committed data against the live library).
pub fn venv_python() -> Option<PathBuf> {
    let python = venv_dir().join("bin/python");
    python.is_file().then_some(python)
}

fn venv_dir() -> PathBuf {
    std::env::var_os("TRACELINK_INTOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-intoto"))
}

/// The venv holding in-toto 3.1.0 (`scripts/setup-venv.sh`), or `None` after
/// printing a SKIP line. Under CI (`CI` set) a missing venv fails the test
/// instead: CI must run the interoperability tests for real.
pub fn intoto_venv(test: &str) -> Option<PathBuf> {
    let venv = venv_dir();
    if venv.join("bin/in-toto-verify").exists() {
        return Some(venv);
    }
    let msg = format!(
        "SKIP: {test}: in-toto 3.1.0 venv not found at {} (run scripts/setup-venv.sh)",
        venv.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI must run this test");
    }
    eprintln!("{msg}");
    println!("{msg}");
    None
}

/// Runs `cmd`, panicking with its output if it could not start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Stdout and stderr of `out` for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A private copy of the RFC 8032 test key (mode 0600) in `dir`.
pub fn rfc8032_key(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("rfc8032.pem");
    std::fs::copy(vector("rfc8032.pem"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Prints `SKIP: <test>: <reason>` and returns true; under CI (`CI` set) it
/// panics instead, since CI must run every test for real.
pub fn skip(test: &str, reason: &str) -> bool {
    let msg = format!("SKIP: {test}: {reason}");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI must run this test");
    }
    println!("{msg}");
    eprintln!("{msg}");
    true
}

/// Whether `prog` is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether precise recording as root, or one of `tools`, is unavailable
/// here (after a SKIP line).
pub fn precise_unavailable(test: &str, tools: &[&str]) -> bool {
    if !nix::unistd::geteuid().is_root() {
        return skip(test, "precise mode needs root (not root)");
    }
    if !Path::new("/dev/fuse").exists() {
        return skip(test, "precise mode needs /dev/fuse (absent)");
    }
    if let Some(missing) = tools.iter().find(|t| !have(t)) {
        return skip(test, &format!("{missing} is not installed"));
    }
    false
}

/// GNU hello 2.10's release tarball, the real third-party build the tests
/// record.
pub const HELLO_TARBALL: &str = "hello_2.10.orig.tar.gz";

/// The tarball in `$TRACELINK_TEST_CACHE` or `tests/data/cache/`
/// (scripts/test.sh fetches it), or `None` after a SKIP line (a failure
/// under CI).
pub fn hello_tarball(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TRACELINK_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cache"),
    };
    let tarball = dir.join(HELLO_TARBALL);
    if tarball.is_file() {
        return Some(tarball);
    }
    skip(
        test,
        &format!(
            "{} is absent (scripts/test.sh fetches it; or set TRACELINK_TEST_CACHE)",
            tarball.display()
        ),
    );
    None
}

/// Unpacks the hello tarball as the new directory `dest`.
pub fn unpack_hello(tarball: &Path, dest: &Path) {
    let parent = dest.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let tmp = tempfile::tempdir_in(parent).unwrap();
    let out = output(
        Command::new("tar")
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(tmp.path()),
    );
    assert!(
        out.status.success(),
        "untar {}: {}",
        tarball.display(),
        show(&out)
    );
    std::fs::rename(tmp.path().join("hello-2.10"), dest).unwrap();
}

/// Copies the tracelink binary under test to `dest` (for a test user who
/// cannot read the build directory) and returns once it can be executed.
/// Another test thread that forks while the copy is open for writing gives
/// its child the writable descriptor until that child executes; running the
/// copy meanwhile fails with ETXTBSY ("Text file busy"), so this waits for
/// those children to be gone.
pub fn copy_binary(dest: &Path) {
    std::fs::copy(env!("CARGO_BIN_EXE_tracelink"), dest)
        .unwrap_or_else(|e| panic!("cannot copy the binary to {}: {e}", dest.display()));
    for _ in 0..500 {
        match Command::new(dest)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => return,
        }
    }
    panic!("{} stayed busy (ETXTBSY) for 5 s", dest.display());
}
