//! Helpers shared by the integration tests: the binary under test, the
//! in-toto reference venv, and the SKIP convention.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tracelink binary cargo built for this test run.
pub fn tracelink() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracelink"))
}

/// The tracelink binary, started with SIGINT, SIGTERM and SIGHUP at their
/// default disposition, for tests that send it stop signals. A signal that
/// is ignored when tracelink starts is inherited ignored by the command, so
/// the forwarded signal does not stop it (`nohup`; a background job of a
/// non-interactive shell ignores SIGINT): a test run started that way would
/// hand the ignored SIGINT down to the command under test and fail for no
/// fault of tracelink's. `env --default-signal` (coreutils) resets them and execs tracelink,
/// so the child's pid is tracelink's.
pub fn tracelink_default_signals() -> Command {
    let mut cmd = Command::new("env");
    cmd.arg("--default-signal=INT,TERM,HUP")
        .arg(env!("CARGO_BIN_EXE_tracelink"));
    cmd
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

/// The venv's python when it has what tests/attest_check.py needs
/// (securesystemslib, in-toto-attestation 0.9.3), or `None` after a SKIP
/// line (a failure under CI).
pub fn attest_checker_python(test: &str) -> Option<PathBuf> {
    let python = venv_python();
    let usable = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import in_toto_attestation, securesystemslib"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if usable {
        return python;
    }
    skip(
        test,
        "no venv with securesystemslib and in-toto-attestation 0.9.3 (TRACELINK_INTOTO_VENV or ./.venv-intoto)",
    );
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

/// Who runs a test whose point is a permission check (an unreadable file
/// must be refused): root reads everything, so as root the tracelink under
/// test runs as the unprivileged test user instead.
pub enum Runner {
    /// Not root: the test's own user.
    Myself,
    /// Root: the test user (`TRACELINK_TEST_USER`, default `tracelink-test`),
    /// through `setpriv`.
    User { name: String, uid: u32, gid: u32 },
}

/// The runner for the permission test `test`: this user when not root, the
/// test user when root; `None` after a SKIP line (a failure under CI) when
/// root has no test user or no `setpriv`. Prints `test: running as WHO`.
pub fn unprivileged_runner(test: &str) -> Option<Runner> {
    if !nix::unistd::geteuid().is_root() {
        let uid = nix::unistd::geteuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name);
        println!("{test}: running as {name} (not root: this user)");
        return Some(Runner::Myself);
    }
    let name = std::env::var("TRACELINK_TEST_USER").unwrap_or_else(|_| "tracelink-test".into());
    let user = match nix::unistd::User::from_name(&name) {
        Ok(Some(user)) if !user.uid.is_root() => user,
        _ => {
            skip(
                test,
                &format!(
                    "as root, permissions do not apply, and there is no unprivileged user {name} \
                     to run as (set TRACELINK_TEST_USER; scripts/test.sh creates tracelink-test)"
                ),
            );
            return None;
        }
    };
    if !have("setpriv") {
        skip(
            test,
            "as root, permissions do not apply, and setpriv (util-linux) is not installed to \
             run as the test user",
        );
        return None;
    }
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    println!("{test}: running as {name} (uid {uid}; as root, permissions do not apply)");
    Some(Runner::User { name, uid, gid })
}

impl Runner {
    /// Readies `dir`, a fresh temporary directory holding everything the
    /// test's tracelink uses, for the runner, and returns the tracelink
    /// binary to run. As the test user: `dir` becomes 0755, everything in it
    /// the user's (call it before making files unreadable: a file of mode
    /// 000 is unreadable by its owner too), and the binary a copy in `dir`
    /// (the build directory may be closed to the user).
    pub fn prepare(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let Runner::User { uid, gid, .. } = self else {
            return PathBuf::from(env!("CARGO_BIN_EXE_tracelink"));
        };
        let bin = dir.join("tracelink-for-user");
        copy_binary(&bin);
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        fn chown_all(path: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
            if std::fs::symlink_metadata(path).unwrap().is_dir() {
                for entry in std::fs::read_dir(path).unwrap() {
                    chown_all(&entry.unwrap().path(), uid, gid);
                }
            }
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            chown_all(&entry.unwrap().path(), *uid, *gid);
        }
        bin
    }

    /// A command running `bin` (from [`Runner::prepare`]) as the runner.
    pub fn command(&self, bin: &Path) -> Command {
        match self {
            Runner::Myself => Command::new(bin),
            Runner::User { uid, gid, .. } => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(bin);
                cmd
            }
        }
    }

    /// The runner's user name (for messages).
    pub fn name(&self) -> String {
        match self {
            Runner::Myself => "this user".into(),
            Runner::User { name, .. } => name.clone(),
        }
    }
}
