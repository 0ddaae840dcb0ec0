//! The namespaces a precisely recorded command runs in (docs/monitoring.md).
//!
//! The recorder opens R and `/dev/fuse` and starts this helper (its own
//! binary, re-executed as `tracelink __sandbox`), which:
//! 1. enters a new mount namespace and a new PID namespace (as a user, also
//!    a user namespace mapping the user to itself, to be allowed to mount),
//! 2. makes every mount private (nothing propagates to the host), prepares
//!    what the tree may see (`contain`: other views of R covered, a minimal
//!    /dev, /sys read-only), mounts the FUSE connection over R itself, so
//!    the command keeps its absolute paths and nobody outside the namespace
//!    sees the mount, and closes its copy of the FUSE fd (only the recorder
//!    serves the connection),
//! 3. forks PID 1 of the new PID namespace, which mounts a fresh /proc,
//!    reopens inherited descriptors under R through the mount (`inherit`),
//!    and starts the command in the original working directory (now on the
//!    mount): the command alone enters a user namespace of its own (PID 1
//!    writes its id maps: as root every id to itself) and a mount namespace,
//!    so every mount above is locked for it, and executes under the seccomp
//!    filter of docs/threat-model.md. PID 1 is not dumpable, reaps orphans,
//!    forwards signals, follows the tree with ptrace, and when the command
//!    ends lists and kills whatever is still running (stragglers).
//!
//! Both helper processes die with their parent (PR_SET_PDEATHSIG), and the
//! mount namespace dies with its last process: a killed recorder leaves no
//! mount behind. The outcome travels to the recorder as one line per fact
//! on a status pipe. This module knows processes and mounts; it knows
//! nothing of FUSE requests, digests or in-toto.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use super::inherit::Reopen;

/// What the recorder passes to the helper on its command line.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// A Unix socket on which the helper sends back the FUSE connection it mounted.
    pub fuse_sock: i32,
    pub status_fd: i32,
    pub root: PathBuf,
    pub cwd: PathBuf,
    pub argv: Vec<OsString>,
    /// Follow the process tree with ptrace (off for commands that trace themselves).
    pub ptrace: bool,
    /// `--isolate`: a network namespace of the tree's own, host socket
    /// directories covered.
    pub isolate: bool,
    /// A file the tree must not see (the signing key), covered when it lies
    /// outside the root.
    pub hide: Option<PathBuf>,
    /// Inherited descriptors to reopen through the mount.
    pub reopen: Vec<super::inherit::Reopen>,
    /// The directory the mount serves when it is not `root` (a rerun's work
    /// tree): hidden from the tree.
    pub backing: Option<PathBuf>,
}

/// The command's end as PID 1 saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxStatus {
    /// Exit code, or None when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The command could not be started: (errno, message).
    pub spawn_error: Option<(i32, String)>,
    /// Processes still running when the command ended: (pid, name).
    pub stragglers: Vec<(i32, String)>,
    /// The helper failed before the command ran.
    pub setup_error: Option<String>,
    /// The process tree, when followed with ptrace.
    pub procs: Vec<super::tracer::Proc>,
}

impl SandboxStatus {
    /// Parses the status pipe's lines.
    pub fn parse(text: &str) -> SandboxStatus {
        let mut status = SandboxStatus::default();
        for line in text.lines() {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "exit" => status.code = rest.parse().ok(),
                "signal" => status.signal = rest.parse().ok(),
                "spawn-error" => {
                    let (errno, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                    status.spawn_error = Some((errno.parse().unwrap_or(0), msg.to_string()));
                }
                "straggler" => {
                    let (pid, name) = rest.split_once(' ').unwrap_or((rest, ""));
                    status
                        .stragglers
                        .push((pid.parse().unwrap_or(0), name.to_string()));
                }
                "setup-error" => status.setup_error = Some(rest.to_string()),
                "proc" => {
                    if let Ok(proc) = serde_json::from_str(rest) {
                        status.procs.push(proc);
                    }
                }
                _ => {}
            }
        }
        status
    }
}

/// How long the tree has to end after a forwarded stop signal.
const STOP_GRACE_SECS: u32 = 5;

const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The helper's main function. Returns its exit status.
pub fn sandbox_main(spec: SandboxSpec) -> i32 {
    let status_fd = owned(spec.status_fd);
    // Neither the status pipe nor the socket may reach the command: a tree
    // that could write status lines could forge its own exit and processes.
    let _ = nix::fcntl::fcntl(
        std::os::fd::AsFd::as_fd(&status_fd),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut status = std::fs::File::from(status_fd);
    match setup(&spec) {
        // The recorder may only read the FUSE device once it is mounted.
        Ok(()) => {
            let _ = writeln!(status, "mounted");
        }
        Err(e) => {
            let _ = writeln!(status, "setup-error {e}");
            return 125;
        }
    }
    // PID 1 waits until its pid has been reported: the recorder tells the
    // tree's callers by their PID namespace, and a connection that ended
    // with the tree from one aborted while it ran by whether PID 1 lives.
    let (go_r, go_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => {
            let _ = writeln!(status, "setup-error cannot make a pipe: {e}");
            return 125;
        }
    };
    match crate::sys::fork_single_threaded() {
        Ok(None) => {
            drop(go_w);
            let mut byte = [0u8; 1];
            if !matches!(
                std::io::Read::read(&mut std::fs::File::from(go_r), &mut byte),
                Ok(1)
            ) {
                std::process::exit(125);
            }
            std::process::exit(init(&spec, status))
        }
        Ok(Some(init_pid)) => {
            drop(go_r);
            let _ = writeln!(status, "init {init_pid}");
            drop(status);
            let _ = nix::unistd::write(&go_w, b"g");
            drop(go_w);
            let _ = crate::sys::forward_stop_signals_to(init_pid, &FORWARDED);
            loop {
                match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init_pid), None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return 125,
                }
            }
        }
        Err(e) => {
            let _ = writeln!(status, "setup-error cannot fork PID 1: {e}");
            125
        }
    }
}

fn owned(fd: i32) -> OwnedFd {
    crate::sys::own_inherited_fd(fd)
}

fn setup(spec: &SandboxSpec) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::CloneFlags;
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let sock = std::os::unix::net::UnixStream::from(owned(spec.fuse_sock));
    let _ = nix::fcntl::fcntl(
        std::os::fd::AsFd::as_fd(&sock),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let root = nix::unistd::geteuid().is_root();
    if root {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
            .map_err(|e| format!("cannot create mount and PID namespaces: {e}"))?;
    } else {
        // An unprivileged user gets a user namespace that maps it to itself:
        // inside it may make private mounts, mount FUSE and a /proc.
        nix::sched::unshare(
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
        )
        .map_err(|e| {
            format!("cannot create user, mount and PID namespaces (are unprivileged user namespaces enabled?): {e}")
        })?;
        let write = |file: &str, text: String| {
            std::fs::write(file, text).map_err(|e| format!("cannot write {file}: {e}"))
        };
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make mounts private: {e}"))?;
    // The connection is opened here, inside the user namespace (the kernel
    // wants the mounter's namespace to be the opener's), and sent back;
    // before /dev is replaced by the tree's minimal one.
    let fuse = nix::fcntl::open(
        "/dev/fuse",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
    super::contain::prepare(&super::contain::Plan {
        root: &spec.root,
        backing: spec.backing.as_deref(),
        hide: spec.hide.as_deref(),
        isolate: spec.isolate,
    })
    .map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    })?;
    // Root serves the tree to every user of the sandbox; an unprivileged
    // recorder only to itself (everything in its user namespace is it).
    let options = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid},default_permissions{}",
        std::os::fd::AsRawFd::as_raw_fd(&fuse),
        if root { ",allow_other" } else { "" }
    );
    mount(
        Some("tracelink"),
        &spec.root,
        Some("fuse.tracelink"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| format!("cannot mount FUSE over {}: {e}", spec.root.display()))?;
    // Only the recorder may hold the connection: a helper's copy would keep
    // it alive after the recorder died, and the tree would hang.
    crate::sys::send_fd(&sock, std::os::fd::AsFd::as_fd(&fuse))
        .map_err(|e| format!("cannot hand the FUSE connection to the recorder: {e}"))?;
    drop(fuse);
    Ok(())
}

/// PID 1 of the new PID namespace.
fn init(spec: &SandboxSpec, mut status: std::fs::File) -> i32 {
    use nix::mount::{MsFlags, mount};
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let fail = |status: &mut std::fs::File, msg: String| {
        let _ = writeln!(status, "setup-error {msg}");
        125
    };
    // A /proc of our own lets the tree (ps, /proc/self) see its namespace and
    // us name stragglers; the host's /proc (with the helper's and the
    // recorder's directories) is beneath it, locked.
    if let Err(e) = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        return fail(
            &mut status,
            format!("cannot mount a /proc for the tree: {e}"),
        );
    }
    if let Err(e) = super::contain::harden_proc() {
        return fail(&mut status, e.to_string());
    }
    // The old cwd is the directory under the mount: enter the mount.
    if let Err(e) = std::env::set_current_dir(&spec.cwd) {
        return fail(
            &mut status,
            format!("cannot enter {}: {e}", spec.cwd.display()),
        );
    }
    let mut reopened = Vec::new();
    for reopen in &spec.reopen {
        match super::inherit::Reopened::open(&spec.root, reopen) {
            Ok(r) => reopened.push(r),
            Err(e) => {
                return fail(
                    &mut status,
                    format!(
                        "cannot reopen the inherited descriptor {} ({}) through the monitored mount: {e}",
                        reopen.fd,
                        super::contain::display_bytes(reopen.path.as_os_str())
                    ),
                );
            }
        }
    }
    let program = match crate::runner::resolve_program(&spec.argv[0]) {
        Ok(program) => program,
        Err(e) => {
            let errno = match e {
                crate::runner::RunError::NotFound(_) => libc::ENOENT,
                _ => libc::EACCES,
            };
            let _ = writeln!(status, "spawn-error {errno} {e}");
            return 127;
        }
    };
    // The tree (root in its own user namespace) must not ptrace or read
    // the memory of the process that reports on it. (Until now the recorder
    // may read our /proc files: it does for the reopened descriptors.)
    let _ = nix::sys::prctl::set_dumpable(false);
    let command_pid = match spawn_command(spec, &program, &reopened) {
        Ok(pid) => pid,
        Err(Spawn::Exec(errno, msg)) => {
            let _ = writeln!(status, "spawn-error {errno} {msg}");
            reap_all();
            return 127;
        }
        Err(Spawn::Setup(msg)) => {
            reap_all();
            return fail(&mut status, msg);
        }
    };
    // A forwarded stop signal goes to every process of the tree, and a tree
    // that ignores it is killed a little later: tracelink always ends.
    let _ = crate::sys::forward_stop_signals_to_namespace(&FORWARDED, STOP_GRACE_SECS);
    let (ended, procs) = if spec.ptrace {
        super::tracer::follow(command_pid, &spec.root)
    } else {
        (wait_for(command_pid), Vec::new())
    };
    let code = match ended {
        Some(super::tracer::Ended::Code(c)) => {
            let _ = writeln!(status, "exit {c}");
            c
        }
        Some(super::tracer::Ended::Signal(sig)) => {
            let _ = writeln!(status, "signal {sig}");
            128 + sig
        }
        None => 125,
    };
    for proc in &procs {
        if let Ok(json) = serde_json::to_string(proc) {
            let _ = writeln!(status, "proc {json}");
        }
    }
    // Whatever still runs is a straggler: name it, end it, and count what
    // the kill reaped (a process that had already exited is not one).
    let names: HashMap<i32, String> = living_processes().into_iter().collect();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-1),
        nix::sys::signal::Signal::SIGKILL,
    );
    loop {
        match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::__WALL)) {
            Ok(nix::sys::wait::WaitStatus::Signaled(pid, nix::sys::signal::Signal::SIGKILL, _)) => {
                let name = names.get(&pid.as_raw()).map_or("?", String::as_str);
                let _ = writeln!(status, "straggler {} {name}", pid.as_raw());
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    // The tree is gone: the caller's descriptions continue where the
    // command's reopened ones ended.
    for r in &reopened {
        r.hand_back_offset();
    }
    code
}

/// Why the command did not start.
enum Spawn {
    /// Executing it failed: (errno, message).
    Exec(i32, String),
    /// Its namespaces or filter could not be set up.
    Setup(String),
}

/// Forks the command's process: it enters a user and mount namespace of its
/// own (and with `--isolate` a network namespace), waits while PID 1 writes
/// its id maps, takes its reopened descriptors, asks to be traced, installs
/// the seccomp filter and executes `program`. Returns its pid once it has
/// executed (or stopped at its exec, when traced).
fn spawn_command(
    spec: &SandboxSpec,
    program: &std::path::Path,
    reopened: &[super::inherit::Reopened],
) -> Result<i32, Spawn> {
    use nix::sched::CloneFlags;
    use std::ffi::CString;
    use std::io::Read as _;
    use std::os::unix::ffi::OsStrExt as _;
    let cstr = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).ok();
    let Some(path) = cstr(program.as_os_str()) else {
        return Err(Spawn::Exec(
            libc::EINVAL,
            "the program name holds a NUL byte".into(),
        ));
    };
    let Some(argv) = spec
        .argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Option<Vec<_>>>()
    else {
        return Err(Spawn::Exec(
            libc::EINVAL,
            "an argument holds a NUL byte".into(),
        ));
    };
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
    let pipes = pipe()
        .and_then(|a| pipe().map(|b| (a, b)))
        .and_then(|ab| pipe().map(|c| (ab, c)));
    let (((ready_r, ready_w), (go_r, go_w)), (err_r, err_w)) =
        pipes.map_err(|e| Spawn::Setup(format!("cannot make pipes: {e}")))?;
    let mut flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
    if spec.isolate {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    match crate::sys::fork_single_threaded() {
        Err(e) => Err(Spawn::Setup(format!(
            "cannot fork the command's process: {e}"
        ))),
        Ok(None) => {
            // The command's process. Every failure goes to PID 1 on `err_w`.
            drop((ready_r, go_w, err_r));
            let mut err = std::fs::File::from(err_w);
            // PID 1 is not dumpable and fork copied that; PID 1 must be able
            // to open this process's id maps (exec would reset it anyway).
            let _ = nix::sys::prctl::set_dumpable(true);
            let die = |err: &mut std::fs::File, kind: char, errno: i32, msg: String| -> ! {
                let _ = write!(err, "{kind}{errno} {msg}");
                std::process::exit(if kind == 'X' { 127 } else { 125 })
            };
            if let Err(e) = nix::sched::unshare(flags) {
                die(
                    &mut err,
                    'S',
                    e as i32,
                    format!(
                        "the command cannot enter a user namespace of its own (are user namespaces enabled?): {e}"
                    ),
                );
            }
            let _ = nix::unistd::write(&ready_w, b"u");
            drop(ready_w);
            let mut byte = [0u8; 1];
            if !matches!(std::fs::File::from(go_r).read(&mut byte), Ok(1)) {
                die(
                    &mut err,
                    'S',
                    0,
                    "PID 1 did not map the command's user namespace".into(),
                );
            }
            if spec.isolate
                && let Err(e) = crate::sys::loopback_up()
            {
                die(
                    &mut err,
                    'S',
                    e.raw_os_error().unwrap_or(0),
                    format!("cannot bring up the loopback interface: {e}"),
                );
            }
            for r in reopened {
                if let Err(e) = r.install() {
                    die(
                        &mut err,
                        'S',
                        e.raw_os_error().unwrap_or(0),
                        format!("cannot install the reopened descriptor {}: {e}", r.fd),
                    );
                }
            }
            if spec.ptrace
                && let Err(e) = nix::sys::ptrace::traceme()
            {
                die(&mut err, 'S', e as i32, format!("cannot be traced: {e}"));
            }
            if let Err(e) = crate::sys::install_tree_filter() {
                die(
                    &mut err,
                    'S',
                    e.raw_os_error().unwrap_or(0),
                    format!("cannot install the seccomp filter: {e}"),
                );
            }
            let mut e = nix::unistd::execv(&path, &argv).unwrap_err();
            if e == nix::errno::Errno::ENOEXEC {
                // A script without `#!`: run it with the shell, as execvp does.
                let sh = c"/bin/sh".to_owned();
                let mut shell_argv = vec![sh.clone(), path.clone()];
                shell_argv.extend(argv.iter().skip(1).cloned());
                e = nix::unistd::execv(&sh, &shell_argv).unwrap_err();
            }
            die(
                &mut err,
                'X',
                e as i32,
                format!("{}: {e}", program.display()),
            )
        }
        Ok(Some(pid)) => {
            drop((ready_w, go_r, err_w));
            let mut byte = [0u8; 1];
            let unshared = matches!(std::fs::File::from(ready_r).read(&mut byte), Ok(1));
            if unshared {
                if let Err(e) = write_id_maps(pid) {
                    return Err(Spawn::Setup(e));
                }
                let _ = nix::unistd::write(&go_w, b"g");
            }
            drop(go_w);
            // End of file: the command executed (the pipe is close-on-exec).
            let mut report = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut report);
            if report.is_empty() {
                return Ok(pid);
            }
            let (head, msg) = report.split_once(' ').unwrap_or((&report, ""));
            let errno = head.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0);
            if head.starts_with('X') {
                Err(Spawn::Exec(errno, msg.to_string()))
            } else {
                Err(Spawn::Setup(msg.to_string()))
            }
        }
    }
}

/// Writes the command's user namespace id maps: as root every id to itself
/// (ownership and permissions unchanged, no capability of ours); as a user,
/// the user to itself.
fn write_id_maps(pid: i32) -> Result<(), String> {
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let (uids, gids) = if uid == 0 {
        ("0 0 4294967295".to_string(), "0 0 4294967295".to_string())
    } else {
        (format!("{uid} {uid} 1"), format!("{gid} {gid} 1"))
    };
    for (file, map) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// Reaps every child (after the command failed to start).
fn reap_all() {
    while let Ok(_) | Err(nix::errno::Errno::EINTR) =
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::__WALL))
    {}
}

/// Waits (reaping orphans meanwhile) until `command` ends.
fn wait_for(command: i32) -> Option<super::tracer::Ended> {
    use nix::sys::wait::WaitStatus;
    loop {
        match nix::sys::wait::waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, c)) if pid.as_raw() == command => {
                return Some(super::tracer::Ended::Code(c));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == command => {
                return Some(super::tracer::Ended::Signal(sig as i32));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Processes of this PID namespace other than PID 1: (pid, name from /proc/PID/status).
fn living_processes() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == 1 {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        // A zombie already exited; it is reaped below, not a straggler.
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            continue;
        }
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        out.push((pid, name));
    }
    out.sort();
    out
}

impl SandboxSpec {
    /// The helper's command line after the program name.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "__sandbox".into(),
            "--fuse-sock".into(),
            self.fuse_sock.to_string().into(),
            "--status-fd".into(),
            self.status_fd.to_string().into(),
            "--root".into(),
            self.root.clone().into(),
            "--cwd".into(),
            self.cwd.clone().into(),
            format!("--ptrace={}", self.ptrace).into(),
            format!("--isolate={}", self.isolate).into(),
        ];
        if let Some(hide) = &self.hide {
            args.push("--hide".into());
            args.push(hide.clone().into());
        }
        if let Some(backing) = &self.backing {
            args.push("--backing".into());
            args.push(backing.clone().into());
        }
        for reopen in &self.reopen {
            args.push("--reopen".into());
            args.push(reopen.to_arg());
        }
        args.push("--".into());
        args.extend(self.argv.iter().cloned());
        args
    }
}
