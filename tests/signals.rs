//! Stop signals sent to tracelink's pid alone (as `kill PID` does, not a
//! terminal's, which reaches the whole process group) must reach the whole
//! process tree, and SIGINT, SIGTERM and SIGHUP must all behave alike:
//! tracelink ends at once with 130, 143 or 129, writes no link, and the
//! command's grandchild is gone (README, "exit status").
//!
//! The bug these pin: SIGINT was forwarded to the command's top process
//! only. A shell waiting for its child ignores SIGINT until the child ends,
//! so `sh -c 'sleep 8; touch marker'` ran its full 8 s (and went on to its
//! next command in snapshot mode). SIGTERM and SIGHUP only seemed to work:
//! the top shell died, and in precise mode PID 1 then killed the rest; in
//! snapshot mode the grandchild was left running.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Precise,
    Snapshot,
}

/// How long the grandchild sleeps before it would create the marker.
const SLEEP_SECS: u64 = 8;

struct Case {
    _tmp: tempfile::TempDir,
    tree: PathBuf,
    meta: PathBuf,
    key: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        let meta = tmp.path().join("meta");
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(&meta).unwrap();
        let key = common::rfc8032_key(tmp.path());
        Case {
            _tmp: tmp,
            tree,
            meta,
            key,
        }
    }
}

/// `sleep`'s argument, unique to this test: the grandchild is found on the
/// host by it (in precise mode the tree's own pids are those of its PID
/// namespace, so a pid it wrote would not name it here).
fn token(sig: i32, mode: Mode) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{SLEEP_SECS}.{:05}{sig:02}{}{:09}",
        std::process::id() % 100_000,
        u8::from(mode == Mode::Precise),
        nanos
    )
}

/// Host pids of processes whose command line is exactly `sleep TOKEN`.
fn sleepers(token: &str) -> Vec<i32> {
    let want = format!("sleep\0{token}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline == want.as_bytes() {
            // A zombie is gone but for its parent's wait; not "running".
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            if state != Some("Z") {
                found.push(pid);
            }
        }
    }
    found
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts `tracelink run` on `sh -c 'sh -c "sleep T; touch marker"; touch
/// after'` (the grandchild `sleep` is tracelink's great-grandchild), waits
/// until the sleep runs, sends `sig` to tracelink's pid only, and checks
/// that the whole tree ended at once and nothing was written.
fn stop_reaches_the_tree(test: &str, sig: i32, mode: Mode) {
    if mode == Mode::Precise && common::precise_unavailable(test, &["sleep", "touch"]) {
        return;
    }
    let case = Case::new();
    let token = token(sig, mode);
    let script = format!("sh -c 'sleep {token}; touch marker'; touch after");
    let mut cmd = common::tracelink_default_signals();
    cmd.args(["run", "-n", "step", "-k"])
        .arg(&case.key)
        .arg("-d")
        .arg(&case.meta);
    if mode == Mode::Snapshot {
        cmd.args(["-p", "."]);
    }
    cmd.args(["--", "sh", "-c", &script])
        .current_dir(&case.tree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let sleeper = loop {
        if let Some(&pid) = sleepers(&token).first() {
            break pid;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "tracelink ended ({status}) before the tree ran\n{}",
                common::show(&out)
            );
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the sleep never started\n{}", common::show(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let sleeping_since = Instant::now();

    // SAFETY: kill(2) with a pid we spawned and still own (not yet waited for).
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let sent = Instant::now();
    let status = wait_timeout(&mut child, Duration::from_secs(2));
    let took = sent.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        status.is_some(),
        "tracelink did not end within 2 s of signal {sig} (it took {:.1} s)\n{}",
        took.as_secs_f64(),
        common::show(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(128 + sig),
        "exit status for signal {sig}\n{}",
        common::show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("interrupted by signal {sig}; no link was written")),
        "{}",
        common::show(&out)
    );
    assert_eq!(
        entries(&case.meta),
        Vec::<String>::new(),
        "nothing is written for an interrupted step\n{}",
        common::show(&out)
    );
    // The grandchild is gone (allowing its last moments to be reaped).
    let deadline = Instant::now() + Duration::from_secs(1);
    while !sleepers(&token).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = sleepers(&token);
    for &pid in &left {
        // SAFETY: kill(2) on a pid we just read; cleanup of a failed test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "the grandchild `sleep {token}` (pid {sleeper}) still runs after signal {sig}: {left:?}\n{}",
        common::show(&out)
    );
    // Past the time it would have woken: neither it nor the shells went on.
    let wake = Duration::from_secs(SLEEP_SECS) + Duration::from_millis(700);
    if let Some(rest) = wake.checked_sub(sleeping_since.elapsed()) {
        std::thread::sleep(rest);
    }
    for name in ["marker", "after"] {
        assert!(
            !case.tree.join(name).exists(),
            "{name} was created: the tree went on after signal {sig}\n{}",
            common::show(&out)
        );
    }
    assert_eq!(entries(&case.meta), Vec::<String>::new());
}

#[test]
fn sigint_to_tracelink_pid_reaches_grandchild_precise() {
    stop_reaches_the_tree(
        "sigint_to_tracelink_pid_reaches_grandchild_precise",
        libc::SIGINT,
        Mode::Precise,
    );
}

#[test]
fn sigint_to_tracelink_pid_reaches_grandchild_snapshot() {
    stop_reaches_the_tree(
        "sigint_to_tracelink_pid_reaches_grandchild_snapshot",
        libc::SIGINT,
        Mode::Snapshot,
    );
}

#[test]
fn sigterm_to_tracelink_pid_reaches_grandchild_precise() {
    stop_reaches_the_tree(
        "sigterm_to_tracelink_pid_reaches_grandchild_precise",
        libc::SIGTERM,
        Mode::Precise,
    );
}

#[test]
fn sigterm_to_tracelink_pid_reaches_grandchild_snapshot() {
    stop_reaches_the_tree(
        "sigterm_to_tracelink_pid_reaches_grandchild_snapshot",
        libc::SIGTERM,
        Mode::Snapshot,
    );
}

#[test]
fn sighup_to_tracelink_pid_reaches_grandchild_precise() {
    stop_reaches_the_tree(
        "sighup_to_tracelink_pid_reaches_grandchild_precise",
        libc::SIGHUP,
        Mode::Precise,
    );
}

#[test]
fn sighup_to_tracelink_pid_reaches_grandchild_snapshot() {
    stop_reaches_the_tree(
        "sighup_to_tracelink_pid_reaches_grandchild_snapshot",
        libc::SIGHUP,
        Mode::Snapshot,
    );
}

/// `--run-timeout` in snapshot mode killed the command's top process only:
/// its grandchild ran on and finished the step's work after tracelink
/// had reported the timeout.
#[test]
fn run_timeout_kills_the_grandchild_too_snapshot() {
    let case = Case::new();
    let token = token(libc::SIGKILL, Mode::Snapshot).replacen(&SLEEP_SECS.to_string(), "3", 1);
    let script = format!("sh -c 'sleep {token}; touch marker'; touch after");
    let started = Instant::now();
    let out = common::output(
        common::tracelink()
            .args(["run", "-n", "step", "-k"])
            .arg(&case.key)
            .arg("-d")
            .arg(&case.meta)
            .args(["-p", ".", "--run-timeout", "1", "--", "sh", "-c", &script])
            .current_dir(&case.tree)
            .stdin(Stdio::null()),
    );
    assert_eq!(out.status.code(), Some(124), "{}", common::show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{}",
        common::show(&out)
    );
    let deadline = Instant::now() + Duration::from_millis(500);
    while !sleepers(&token).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = sleepers(&token);
    for &pid in &left {
        // SAFETY: kill(2) on a pid we just read; cleanup of a failed test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "the grandchild still runs: {left:?}");
    std::thread::sleep(
        Duration::from_secs(3).saturating_sub(started.elapsed()) + Duration::from_millis(700),
    );
    for name in ["marker", "after"] {
        assert!(!case.tree.join(name).exists(), "{name} was created");
    }
    assert_eq!(entries(&case.meta), Vec::<String>::new());
}
