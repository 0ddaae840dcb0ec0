//! The process tree of a recorded command, observed by PID 1 of the sandbox
//! with ptrace event stops only (fork, vfork, clone, exec): no system-call
//! stops, so the tree runs at full speed between those events.
//!
//! Each process is recorded with its parent, every program it executed
//! (argv, executable path, starting directory and, for programs outside the
//! monitored root, the executable's sha256: the toolchain), and how it
//! ended. Executables under the root are recorded by the filesystem as
//! materials; hashing them here would read them through the mount. Pids are
//! those of the sandbox's PID namespace. This module knows processes only.
//!
//! An executable's digest is taken through /proc/PID/exe at the exec stop,
//! which opens the very file the process executes, whatever has since
//! happened to its path, and is cached by that file's identity and
//! version (device, inode, size, mtime, ctime), never by path: a tool
//! replaced or rewritten between two runs of it gets each run's own digest
//! (docs/threat-model.md).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Instant;

use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// One program a process executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    pub argv: Vec<String>,
    pub executable: String,
    pub cwd: String,
    /// sha256 of the executable, for programs outside the monitored root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Milliseconds since the command started.
    pub at_ms: u64,
}

/// One process of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub start_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    pub execs: Vec<Exec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// An executable file's identity and version: (device, inode, size, mtime
/// seconds and nanoseconds, ctime seconds and nanoseconds).
type FileVersion = (u64, u64, u64, i64, i64, i64, i64);

/// Digests of executables already hashed, by file version.
type Digests = HashMap<FileVersion, Option<String>>;

/// How the command itself ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

/// Follows the tree of `command` (a child of the caller that stops at its
/// exec because it asked to be traced) until `command` itself ends. Returns
/// how it ended and every process seen so far; processes still running
/// stay traced (and die with PTRACE_O_EXITKILL or the caller's kill).
pub fn follow(command: i32, root: &Path) -> (Option<Ended>, Vec<Proc>) {
    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let options = ptrace::Options::PTRACE_O_TRACEFORK
        | ptrace::Options::PTRACE_O_TRACEVFORK
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC
        | ptrace::Options::PTRACE_O_EXITKILL;
    let mut procs: HashMap<i32, Proc> = HashMap::new();
    let mut order: Vec<i32> = Vec::new();
    // Thread ids -> their process.
    let mut threads: HashMap<i32, i32> = HashMap::new();
    let mut hashes = Digests::new();
    let mut ended = None;
    procs.insert(command, new_proc(command, 1, 0));
    order.push(command);
    let mut command_started = false;

    while ended.is_none() {
        let status = match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(status) => status,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        match status {
            WaitStatus::Stopped(pid, Signal::SIGTRAP)
                if pid.as_raw() == command && !command_started =>
            {
                // The command's first exec (it asked to be traced).
                command_started = true;
                let _ = ptrace::setoptions(pid, options);
                record_exec(&mut procs, pid.as_raw(), root, &mut hashes, ms());
                let _ = ptrace::cont(pid, None);
            }
            WaitStatus::PtraceEvent(pid, _, event) => {
                let p = pid.as_raw();
                match event {
                    libc::PTRACE_EVENT_FORK
                    | libc::PTRACE_EVENT_VFORK
                    | libc::PTRACE_EVENT_CLONE => {
                        if let Ok(new) = ptrace::getevent(pid) {
                            let new = new as i32;
                            let parent = *threads.get(&p).unwrap_or(&p);
                            if event == libc::PTRACE_EVENT_CLONE && is_thread(new) {
                                threads.insert(new, parent);
                            } else {
                                let mut proc = new_proc(new, parent, ms());
                                // A child may already have reported its first stop.
                                if let Some(early) = procs.remove(&new) {
                                    proc.execs = early.execs;
                                } else {
                                    order.push(new);
                                }
                                if !order.contains(&new) {
                                    order.push(new);
                                }
                                procs.insert(new, proc);
                            }
                        }
                    }
                    libc::PTRACE_EVENT_EXEC => {
                        // After exec the thread group has one thread: this pid.
                        record_exec(&mut procs, p, root, &mut hashes, ms());
                    }
                    _ => {}
                }
                let _ = ptrace::cont(pid, None);
            }
            WaitStatus::Stopped(pid, sig) => {
                let p = pid.as_raw();
                if sig == Signal::SIGSTOP && !procs.contains_key(&p) && !threads.contains_key(&p) {
                    // A new child's automatic first stop, before its parent's event.
                    procs.insert(p, new_proc(p, 0, ms()));
                    order.push(p);
                    let _ = ptrace::cont(pid, None);
                } else if sig == Signal::SIGSTOP
                    && procs
                        .get(&p)
                        .is_some_and(|x| x.execs.is_empty() && x.start_ms + 1000 > ms())
                {
                    let _ = ptrace::cont(pid, None);
                } else {
                    // A signal for the tracee: deliver it.
                    let _ = ptrace::cont(pid, sig);
                }
            }
            WaitStatus::Exited(pid, code) => {
                let p = pid.as_raw();
                if let Some(proc) = procs.get_mut(&p) {
                    proc.exit_code = Some(code);
                    proc.end_ms = Some(ms());
                }
                if p == command {
                    ended = Some(Ended::Code(code));
                }
            }
            WaitStatus::Signaled(pid, sig, _) => {
                let p = pid.as_raw();
                if let Some(proc) = procs.get_mut(&p) {
                    proc.signal = Some(sig as i32);
                    proc.end_ms = Some(ms());
                }
                if p == command {
                    ended = Some(Ended::Signal(sig as i32));
                }
            }
            _ => {}
        }
    }
    let procs = order.into_iter().filter_map(|p| procs.remove(&p)).collect();
    (ended, procs)
}

fn new_proc(pid: i32, ppid: i32, start_ms: u64) -> Proc {
    Proc {
        pid,
        ppid,
        start_ms,
        end_ms: None,
        execs: Vec::new(),
        exit_code: None,
        signal: None,
    }
}

/// Whether `tid` is a thread of another process (from /proc/TID/status).
fn is_thread(tid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<i32>().ok())
    };
    matches!((field("Tgid:"), field("Pid:")), (Some(tgid), Some(pid)) if tgid != pid)
}

/// Records the program `pid` is stopped at the exec of. Safe to read its
/// /proc files: it is in a ptrace stop, not inside a page fault.
fn record_exec(
    procs: &mut HashMap<i32, Proc>,
    pid: i32,
    root: &Path,
    hashes: &mut Digests,
    at_ms: u64,
) {
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let executable = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    let sha256 = if executable.starts_with(root) || executable.as_os_str().is_empty() {
        None
    } else {
        exe_sha256(pid, hashes)
    };
    let proc = procs.entry(pid).or_insert_with(|| new_proc(pid, 0, at_ms));
    proc.execs.push(Exec {
        argv,
        executable: executable.to_string_lossy().into_owned(),
        cwd: cwd.to_string_lossy().into_owned(),
        sha256,
        at_ms,
    });
}

/// The sha256 of the file `pid` executes, opened through /proc/PID/exe
/// (the inode executed, not whatever its path names now), cached by the
/// open file's version.
fn exe_sha256(pid: i32, hashes: &mut Digests) -> Option<String> {
    let file = std::fs::File::open(format!("/proc/{pid}/exe")).ok()?;
    let meta = file.metadata().ok()?;
    let version = (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    );
    hashes
        .entry(version)
        .or_insert_with(|| sha256_of(file))
        .clone()
}

fn sha256_of(mut file: std::fs::File) -> Option<String> {
    let mut buf = vec![0u8; 256 * 1024];
    let digests =
        crate::hash::digest_reader(&mut file, &[crate::hash::Algorithm::Sha256], &mut buf).ok()?;
    digests.into_iter().next().map(|(_, hex)| hex)
}
