//! The scripts stop on a failed install (issue 12): scripts/test.sh,
//! scripts/demo.sh and scripts/setup-venv.sh install through
//! scripts/lib-install.sh, and with `TRACELINK_TEST_EXTRA_APT_PACKAGE` naming
//! a package that does not exist each must exit non-zero with
//! `<script>: cannot install ... tracelink-no-such-package: <reason>` before
//! it builds or tests anything.
//!
//! Needs root (apt-get install does; SKIP otherwise, a failure under CI) and
//! apt-get. Harmless to the machine: apt-get update refreshes the package
//! lists, and apt-get install refuses the whole transaction for an unknown
//! package, so nothing is installed or removed. The apt lock is waited for
//! (lib-install.sh), and the three scripts run one at a time. A `cargo` that
//! fails at once comes first on PATH: if a script went on past the failed
//! install, it would stop there (and the test fails) instead of building or
//! testing; its venv is a fresh directory, never the real one.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

const NO_SUCH_PACKAGE: &str = "tracelink-no-such-package";
const CARGO_REACHED: &str = "tracelink-scripts-test: the fake cargo was reached";

/// One script at a time: they would wait for each other's apt lock.
static APT: Mutex<()> = Mutex::new(());

fn unavailable(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        return common::skip(test, "apt-get install needs root (not root)");
    }
    if !common::have("apt-get") {
        return common::skip(test, "apt-get is not installed");
    }
    false
}

/// Runs scripts/SCRIPT with the nonexistent extra package and checks that it
/// stops, non-zero, with the message, before reaching cargo.
fn stops_with_the_message(test: &str, script: &str) {
    if unavailable(test) {
        return;
    }
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let fake_bin = tmp.path().join("bin");
    std::fs::create_dir(&fake_bin).unwrap();
    let cargo = fake_bin.join("cargo");
    std::fs::write(
        &cargo,
        format!("#!/bin/sh\necho \"{CARGO_REACHED}: cargo $*\" >&2\nexit 99\n"),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let out = common::output(
        Command::new(top.join("scripts").join(script))
            .current_dir(top)
            .env("TRACELINK_TEST_EXTRA_APT_PACKAGE", NO_SUCH_PACKAGE)
            .env("TRACELINK_INTOTO_VENV", tmp.path().join("venv"))
            .env("PATH", path)
            .stdin(Stdio::null()),
    );
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr
        .lines()
        .find(|l| l.starts_with(&format!("{script}: cannot install ")));
    println!(
        "{test}: {script} exited with {:?} after {secs:.1} s: {}",
        out.status.code(),
        message.unwrap_or("(no message)")
    );
    assert!(
        !out.status.success(),
        "{script} must fail when a package cannot be installed\n{}",
        common::show(&out)
    );
    assert!(
        !stderr.contains(CARGO_REACHED),
        "{script} went on to cargo after the failed install\n{}",
        common::show(&out)
    );
    let Some(message) = message else {
        panic!(
            "{script} must say `{script}: cannot install ...`\n{}",
            common::show(&out)
        );
    };
    // "<script>: cannot install PKGS: <reason>; <hint>"
    let (pkgs, reason) = message[format!("{script}: cannot install ").len()..]
        .split_once(": ")
        .unwrap_or_else(|| panic!("no reason in {message:?}"));
    assert!(
        pkgs.split(' ').any(|p| p == NO_SUCH_PACKAGE),
        "the message must name {NO_SUCH_PACKAGE}: {message:?}"
    );
    assert!(
        reason.contains("apt-get"),
        "the reason must say what failed: {message:?}"
    );
    assert!(
        !tmp.path().join("venv").exists(),
        "{script} went on to make a venv after the failed install"
    );
}

#[test]
fn test_sh_stops_on_a_failed_install_with_a_clear_message() {
    stops_with_the_message(
        "test_sh_stops_on_a_failed_install_with_a_clear_message",
        "test.sh",
    );
}

#[test]
fn demo_sh_stops_on_a_failed_install_with_a_clear_message() {
    stops_with_the_message(
        "demo_sh_stops_on_a_failed_install_with_a_clear_message",
        "demo.sh",
    );
}

#[test]
fn setup_venv_sh_stops_on_a_failed_install_with_a_clear_message() {
    stops_with_the_message(
        "setup_venv_sh_stops_on_a_failed_install_with_a_clear_message",
        "setup-venv.sh",
    );
}
