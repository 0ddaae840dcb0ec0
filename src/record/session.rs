//! A recording session: opens the monitored root and the FUSE device, starts
//! the sandbox helper (`sandbox`), serves the filesystem (`fs`) until the
//! sandbox is gone, and reports how the command ended.
//!
//! This module knows processes, mounts and the filesystem; it knows nothing
//! of in-toto or digests.

use super::fs::{FsConfig, Observer, TraceFs};
use super::sandbox::{SandboxSpec, SandboxStatus};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "FUSE is not available ({0}): precise recording needs /dev/fuse; record in snapshot mode with -m/--materials and -p/--products instead"
    )]
    NoFuse(String),
    /// The device is there but this user may not open it.
    #[error("{0}")]
    FuseDenied(String),
    #[error("cannot open the monitored root {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot start the sandbox helper")]
    Helper(#[source] std::io::Error),
    #[error("the sandbox could not be set up: {0}")]
    Setup(String),
    #[error("an inherited descriptor cannot be handed to the command")]
    Inherited(#[source] super::inherit::InheritError),
    #[error("the FUSE session failed")]
    Fuse(#[source] std::io::Error),
}

/// How to run the command.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The monitored root, absolute and canonical.
    pub root: PathBuf,
    /// Where the command sees the root: the FUSE mount goes over this path
    /// (default: the root itself, so absolute paths are unchanged). A rerun
    /// serves a fresh work directory at the original root's path.
    pub mount_at: Option<PathBuf>,
    /// The command's whole environment (default: ours).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// The directory the command starts in.
    pub cwd: PathBuf,
    pub argv: Vec<OsString>,
    pub ttl: Duration,
    pub passthrough: bool,
    pub threads: usize,
    /// Follow the process tree with ptrace.
    pub ptrace: bool,
    /// Kill the whole tree after this long.
    pub timeout: Option<Duration>,
    /// `--isolate`: the tree gets its own network namespace (loopback only)
    /// and empty directories over the usual places of host sockets.
    pub isolate: bool,
    /// A file the tree must not read (the signing key): hidden from the tree
    /// wherever it lies (docs/threat-model.md).
    pub protect: Option<Protected>,
    /// Inherited descriptors under the root, reopened through the mount
    /// for the command (`inherit::plan`).
    pub reopen: Vec<super::inherit::Reopen>,
}

/// A file the recorded tree may not read, by path and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// Its absolute path, as the recorder found it.
    pub path: PathBuf,
    /// Its (device, inode): under the root the daemon refuses this inode.
    pub node: (u64, u64),
}

impl SessionSpec {
    /// How precise recording runs `argv` from `cwd` on `root`: entries and
    /// attributes cached for a second, passthrough where it is allowed
    /// (CAP_SYS_ADMIN in the initial user namespace: root), at least two
    /// FUSE threads, the process tree followed with ptrace, no timeout, the
    /// root mounted over itself, our environment.
    pub fn recording(root: PathBuf, cwd: PathBuf, argv: Vec<OsString>) -> SessionSpec {
        SessionSpec {
            root,
            mount_at: None,
            env: None,
            cwd,
            argv,
            ttl: Duration::from_secs(1),
            passthrough: nix::unistd::geteuid().is_root(),
            threads: crate::hash::default_threads().max(2),
            ptrace: true,
            timeout: None,
            isolate: false,
            protect: None,
            reopen: Vec::new(),
        }
    }

    /// The root's path as the command sees it.
    pub fn seen_root(&self) -> &Path {
        self.mount_at.as_deref().unwrap_or(&self.root)
    }
}

/// The session's connections to the caller.
pub struct SessionIo<'a> {
    /// The command's stdout and stderr (default: ours).
    pub stdout: Option<std::process::Stdio>,
    pub stderr: Option<std::process::Stdio>,
    /// Learns the pid of the sandbox helper: signals sent to it reach the command.
    pub on_spawn: &'a dyn Fn(i32),
}

/// What the session saw.
#[derive(Debug)]
pub struct SessionOutcome {
    pub status: SandboxStatus,
    /// The timeout expired and the tree was killed.
    pub timed_out: bool,
    /// FUSE requests served, by kind.
    pub requests: Vec<(&'static str, u64)>,
    pub passthrough: bool,
    /// Why the monitoring cannot claim to be complete (the connection was
    /// aborted, or outlived the tree).
    pub incomplete: Vec<String>,
    /// The sandbox's PID namespace (`pid:[N]`): callers of the mount from
    /// elsewhere are not of the tree.
    pub pid_ns: Option<String>,
}

fn cloexec(fd: impl AsFd, on: bool) -> nix::Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags)).map(|_| ())
}

/// The FUSE device the recorder checks it can open before starting
/// anything: `/dev/fuse`. `TRACELINK_TEST_FUSE_DEVICE` names another file
/// in its place, for the tests only (tests/args.rs checks the message for
/// an unusable device without changing the real one, which other tests
/// use at the same time); the sandbox always opens `/dev/fuse` itself.
fn fuse_device() -> PathBuf {
    std::env::var_os("TRACELINK_TEST_FUSE_DEVICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/fuse"))
}

/// What to tell a user who may not open the FUSE device `device` (the
/// open failed with `err`): its mode and owner, what distributions ship,
/// and the two ways out.
pub fn fuse_denied_message(device: &Path, err: nix::errno::Errno) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let found = match std::fs::metadata(device) {
        Ok(meta) => {
            let user = nix::unistd::User::from_uid(meta.uid().into())
                .ok()
                .flatten()
                .map_or_else(|| meta.uid().to_string(), |u| u.name);
            let group = nix::unistd::Group::from_gid(meta.gid().into())
                .ok()
                .flatten()
                .map_or_else(|| meta.gid().to_string(), |g| g.name);
            format!(
                "it is mode {:04o}, owned by {user}:{group}",
                meta.mode() & 0o7777
            )
        }
        Err(e) => format!("its mode and owner cannot be read ({e})"),
    };
    format!(
        "precise recording cannot open the FUSE device {} ({err}): {found}, and this user (uid {}) may not read and write it. Distributions ship it mode 0666 (read-write for everyone, as FUSE expects). Either make it usable again (as root: `chmod 0666 {}`), or record in snapshot mode with -m/--materials and -p/--products, which needs no FUSE",
        device.display(),
        nix::unistd::getuid(),
        device.display()
    )
}

/// Runs `spec.argv` with `spec.root` served through a monitored FUSE mount,
/// telling `observer` about every request that matters.
pub fn run(
    spec: &SessionSpec,
    observer: Arc<dyn Observer>,
    io: SessionIo<'_>,
) -> Result<SessionOutcome, SessionError> {
    let root = nix::fcntl::open(
        &spec.root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| SessionError::Root {
        path: spec.root.clone(),
        source,
    })?;
    raise_open_file_limit();
    // Fail early and clearly where FUSE is missing or not ours to use; the
    // helper opens its own connection inside its namespaces.
    let device = fuse_device();
    drop(
        nix::fcntl::open(
            device.as_path(),
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => {
                SessionError::FuseDenied(fuse_denied_message(&device, e))
            }
            _ => SessionError::NoFuse(format!("{}: {e}", device.display())),
        })?,
    );
    let (fuse_sock, helper_sock) =
        std::os::unix::net::UnixStream::pair().map_err(SessionError::Helper)?;
    let (status_read, status_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SessionError::Helper(e.into()))?;

    // The helper inherits exactly these two descriptors.
    cloexec(&helper_sock, false).map_err(|e| SessionError::Helper(e.into()))?;
    cloexec(&status_write, false).map_err(|e| SessionError::Helper(e.into()))?;
    let sandbox = SandboxSpec {
        fuse_sock: helper_sock.as_raw_fd(),
        status_fd: status_write.as_raw_fd(),
        root: spec.seen_root().to_path_buf(),
        cwd: spec.cwd.clone(),
        argv: spec.argv.clone(),
        ptrace: spec.ptrace,
        isolate: spec.isolate,
        hide: spec.protect.as_ref().map(|p| p.path.clone()),
        backing: spec.mount_at.as_ref().map(|_| spec.root.clone()),
        reopen: spec.reopen.clone(),
    };
    let mut command = std::process::Command::new("/proc/self/exe");
    command.args(sandbox.to_args());
    if let Some(env) = &spec.env {
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    crate::sys::unblock_signals_in_child(&mut command);
    if let Some(out) = io.stdout {
        command.stdout(out);
    }
    if let Some(err) = io.stderr {
        command.stderr(err);
    }
    let spawned = command.spawn();
    drop(command);
    drop(helper_sock);
    drop(status_write);
    let mut helper = spawned.map_err(SessionError::Helper)?;
    (io.on_spawn)(helper.id() as i32);

    let fs = TraceFs::new(
        root,
        FsConfig {
            root_path: spec.root.clone(),
            seen_root: spec.seen_root().to_path_buf(),
            present_owner: (!nix::unistd::geteuid().is_root()).then(|| {
                (
                    nix::unistd::getuid().as_raw(),
                    nix::unistd::getgid().as_raw(),
                )
            }),
            ttl: spec.ttl,
            passthrough: spec.passthrough,
            forbidden: spec.protect.as_ref().map(|p| p.node),
        },
        observer,
    )
    .map_err(|e| SessionError::Fuse(std::io::Error::from_raw_os_error(e.code())))?;
    let passthrough = fs.passthrough_flag();
    let requests = fs.request_counts();
    let open_files = fs.open_files();
    let config = {
        let mut c = fuser::Config::default();
        c.n_threads = Some(spec.threads.max(1));
        c.clone_fd = true;
        c
    };
    let mut status_lines = std::io::BufReader::new(std::fs::File::from(status_read));
    let mut first = String::new();
    let _ = std::io::BufRead::read_line(&mut status_lines, &mut first);
    if first.trim_end() != "mounted" {
        let _ = helper.wait();
        let mut rest = String::new();
        let _ = status_lines.read_to_string(&mut rest);
        let status = SandboxStatus::parse(&(first + &rest));
        return Err(SessionError::Setup(
            status
                .setup_error
                .unwrap_or_else(|| "the helper ended before mounting".into()),
        ));
    }
    let fuse = crate::sys::receive_fd(&fuse_sock).map_err(SessionError::Helper)?;
    // The helper reports PID 1's pid before PID 1 starts anything: the
    // tree's callers are told by their PID namespace, and a connection that
    // ended with the tree from one aborted while it ran by whether PID 1 lives.
    let mut init_line = String::new();
    let _ = std::io::BufRead::read_line(&mut status_lines, &mut init_line);
    let init_pid: i32 = init_line
        .trim_end()
        .strip_prefix("init ")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // Readable once PID 1 exists (PID 1 itself is not dumpable; the helper is).
    let pid_ns = std::fs::read_link(format!("/proc/{}/ns/pid_for_children", helper.id()))
        .ok()
        .map(|l| l.to_string_lossy().into_owned());
    // The rest of the status (the process tree can be large) is read while
    // the tree runs, so that PID 1 never blocks on a full pipe.
    let rest = std::thread::spawn(move || {
        let mut text = init_line;
        let _ = status_lines.read_to_string(&mut text);
        text
    });
    drop(fuse_sock);
    let server = {
        std::thread::Builder::new()
            .name("fuse".into())
            .spawn(move || -> (std::io::Result<()>, bool) {
                let served = fuser::Session::from_fd(fs, fuse, fuser::SessionACL::All, config)
                    .and_then(fuser::Session::run);
                // The connection ends when the tree's namespaces are gone,
                // which is after PID 1 has ended; ending while PID 1 still
                // runs means somebody aborted it.
                (served, init_pid == 0 || process_runs(init_pid))
            })
            .map_err(SessionError::Helper)?
    };

    let timed_out = wait(&mut helper, spec.timeout);
    let text = rest.join().unwrap_or_default();
    let status = SandboxStatus::parse(&text);
    if let Some(error) = &status.setup_error {
        return Err(SessionError::Setup(error.clone()));
    }
    let mut incomplete = Vec::new();
    // The tree is gone. The connection ends by itself unless a file of the
    // mount is still open somewhere (in flight in a unix socket, held by a
    // loop device): then tracelink ends it.
    let forced = !finished_within(&server, Duration::from_secs(2));
    if forced {
        end_fuse_workers(&server);
        incomplete.push(
            "a file of the monitored mount was still open after the tree ended (kept in flight in a unix socket or held by a loop device?): the connection was closed by tracelink and whatever held the file may have used it unseen".into(),
        );
    }
    if server.is_finished() {
        let (served, aborted) = server
            .join()
            .map_err(|_| SessionError::Fuse(std::io::Error::other("the FUSE server panicked")))?;
        if forced {
            // Closing the connection does not stop passthrough I/O on files
            // still open: one open for writing could change the root unseen.
            for path in open_files.unreleased_writers() {
                incomplete.push(format!(
                    "{} was still open for writing after the tree ended (never released)",
                    path.display()
                ));
            }
        } else if aborted {
            incomplete.push(
                "the FUSE connection was aborted while the tree was running (not by tracelink)"
                    .into(),
            );
        }
        match served {
            Ok(_) => {}
            // Our own ending of the workers shows as a read error.
            Err(_) if forced => {}
            // The connection ends with the namespace; when that races with
            // the last requests the kernel reports it aborted. Once the
            // command's end is known, that is the normal end of the session.
            Err(e)
                if (status.code.is_some() || status.signal.is_some())
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED | libc::ENODEV | libc::ENOTCONN)
                    ) => {}
            Err(e) => return Err(SessionError::Fuse(e)),
        }
    } else {
        incomplete.push("the FUSE workers could not be stopped".into());
    }
    Ok(SessionOutcome {
        status,
        timed_out,
        requests: requests.snapshot(),
        passthrough: passthrough.load(Ordering::Relaxed),
        incomplete,
        pid_ns,
    })
}

/// Whether process `pid` (a global pid) exists and has not exited.
fn process_runs(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesized name, which may hold anything.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Waits up to `limit` for `thread` to finish.
fn finished_within<T>(thread: &std::thread::JoinHandle<T>, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !thread.is_finished() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The signal that interrupts a FUSE worker's read.
const WAKE_SIGNAL: i32 = libc::SIGUSR2;

/// Ends the FUSE session whatever the kernel still holds (docs/monitoring.md):
/// every /dev/fuse descriptor of this process is replaced by one that
/// cannot be read, and each worker is interrupted in its read; its retry
/// fails, the worker ends, and the last close of the connection's
/// descriptors aborts it.
fn end_fuse_workers<T>(server: &std::thread::JoinHandle<T>) {
    let Ok(null) = nix::fcntl::open(
        Path::new("/dev/null"),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    for fd in fuse_descriptors() {
        let _ = crate::sys::dup2(null.as_fd(), fd);
    }
    let _ = crate::sys::interrupt_with(WAKE_SIGNAL);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.is_finished() && std::time::Instant::now() < deadline {
        for tid in fuse_worker_threads() {
            let _ = crate::sys::signal_thread(tid, WAKE_SIGNAL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This process's descriptors open on /dev/fuse.
fn fuse_descriptors() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == Path::new("/dev/fuse")))
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// The threads of this process that serve FUSE requests (fuser names them).
fn fuse_worker_threads() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("fuser-"))
        })
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Waits for the helper; after `timeout`, kills it (its PID 1 and with it
/// the whole PID namespace die too). Returns whether the timeout struck.
fn wait(helper: &mut std::process::Child, timeout: Option<Duration>) -> bool {
    let Some(timeout) = timeout else {
        let _ = helper.wait();
        return false;
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) | Err(_) = helper.try_wait() {
            return false;
        }
        if std::time::Instant::now() >= deadline {
            let _ = helper.kill();
            let _ = helper.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Raises this process's open-file limit to its hard maximum: the daemon
/// holds a descriptor per inode the kernel references.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
