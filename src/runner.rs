//! Runs the step's command: spawning it, forwarding SIGINT/SIGTERM/SIGHUP to
//! it, an optional timeout, and optionally capturing its output while still
//! showing it (`--record-streams`).
//!
//! Output is captured through temporary files, as in-toto-run does, not
//! pipes: a background process that keeps the stream open cannot hang the
//! recorder, and the files are read until the command has exited. This
//! module knows processes; it knows nothing of in-toto or artifacts.

use crate::sys;
use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("command not found: {0:?}")]
    NotFound(String),
    #[error("cannot execute {program:?}")]
    CannotExecute {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the command did not finish within {0} s and was killed")]
    TimedOut(u64),
    #[error("cannot capture the command's output")]
    Capture(#[source] std::io::Error),
    #[error("cannot wait for the command")]
    Wait(#[source] std::io::Error),
}

impl RunError {
    /// The exit status a shell would give for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::NotFound(_) => 127,
            RunError::CannotExecute { .. } => 126,
            RunError::TimedOut(_) => 124,
            RunError::Capture(_) | RunError::Wait(_) => 125,
        }
    }
}

/// Finds the program to execute the way a shell does: a name with a `/` is
/// used as it is; otherwise the first executable regular file of that name
/// in a `$PATH` directory, skipping directories that cannot be searched
/// (execvp would instead fail with EACCES if one of them is unreadable, and
/// a missing command would look like a permission problem).
pub fn resolve_program(program: &std::ffi::OsStr) -> Result<std::path::PathBuf, RunError> {
    use std::os::unix::ffi::OsStrExt;
    let shown = program.to_string_lossy().into_owned();
    if program.is_empty() {
        return Err(RunError::NotFound(shown));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(program.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut not_executable = None;
    for dir in std::env::split_paths(&path) {
        let candidate = if dir.as_os_str().is_empty() {
            std::path::PathBuf::from(program)
        } else {
            dir.join(program)
        };
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
                    return Ok(candidate);
                }
                not_executable.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    match not_executable {
        Some(path) => Err(RunError::CannotExecute {
            program: path.to_string_lossy().into_owned(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        }),
        None => Err(RunError::NotFound(shown)),
    }
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// in-toto's `return-value`: the exit code, or minus the signal number.
    pub return_value: i64,
    /// The exit status to pass on: the code, or 128 + signal.
    pub exit_code: i32,
    /// Captured output (lossy UTF-8), when asked for.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// Signals that stop a recording: forwarded to the command, and no link is
/// written for a run they interrupted.
pub const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Watches for the stop signals from the moment it is created. Create it
/// before any other thread, so that every thread inherits the blocked mask.
pub struct Interrupts {
    received: Arc<AtomicI32>,
    child: Arc<AtomicI32>,
    /// Forward to every descendant of ours, not only to `child`.
    tree: Arc<AtomicBool>,
    /// Held while a signal is being forwarded: changing the target waits
    /// for it, so that the whole tree has been sent a signal before the
    /// recorder, its command ended, goes on (and perhaps exits).
    forwarding: Arc<std::sync::Mutex<()>>,
}

impl Interrupts {
    pub fn install() -> std::io::Result<Interrupts> {
        sys::block_signals(&STOP_SIGNALS)?;
        let received = Arc::new(AtomicI32::new(0));
        let child = Arc::new(AtomicI32::new(0));
        let tree = Arc::new(AtomicBool::new(false));
        let forwarding = Arc::new(std::sync::Mutex::new(()));
        let (r, c, t, f) = (
            received.clone(),
            child.clone(),
            tree.clone(),
            forwarding.clone(),
        );
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                while let Ok(info) = sys::wait_signal(&STOP_SIGNALS) {
                    let _forwarding = f.lock().unwrap_or_else(|e| e.into_inner());
                    r.store(info.signo, Ordering::SeqCst);
                    let pid = c.load(Ordering::SeqCst);
                    // A terminal's signal already reached the whole process group.
                    if pid > 0 && !info.from_kernel {
                        if t.load(Ordering::SeqCst) {
                            signal_tree(pid, info.signo);
                        } else {
                            signal(pid, info.signo);
                        }
                    }
                }
            })?;
        Ok(Interrupts {
            received,
            child,
            tree,
            forwarding,
        })
    }

    /// Forward stop signals to `pid` from now on (0: to nobody). For the
    /// sandbox helper, which passes them on to the whole tree itself.
    pub fn forward_to(&self, pid: i32) {
        let _wait = self.forwarding.lock().unwrap_or_else(|e| e.into_inner());
        self.tree.store(false, Ordering::SeqCst);
        self.child.store(pid, Ordering::SeqCst);
    }

    /// Forward stop signals to `pid` and every other descendant of ours
    /// from now on: a command run without a sandbox (snapshot mode). The
    /// signal must reach the whole tree, as a terminal's reaches its
    /// process group: a shell waiting for its child does not end on SIGINT
    /// until the child does, and a child of one that ends on SIGTERM would
    /// go on running.
    pub fn forward_to_tree(&self, pid: i32) {
        let _wait = self.forwarding.lock().unwrap_or_else(|e| e.into_inner());
        self.child.store(pid, Ordering::SeqCst);
        self.tree.store(pid > 0, Ordering::SeqCst);
    }

    /// The stop signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }
}

fn signal(pid: i32, signo: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::try_from(signo).ok(),
    );
}

/// Sends `signo` to the command `pid` and every other descendant of this
/// process (its children and grandchildren; with this process a child
/// subreaper, also those whose parent already ended). The tree is read
/// first (twice, for a process forked meanwhile), then signalled at once,
/// parents before their children: dash that outlived its child by even a
/// moment runs its next command, though the signal is on its way to it.
fn signal_tree(pid: i32, signo: i32) {
    let me = std::process::id() as i32;
    let mut targets = vec![pid];
    for _ in 0..2 {
        for p in descendants(me) {
            if !targets.contains(&p) {
                targets.push(p);
            }
        }
    }
    for p in targets {
        signal(p, signo);
    }
}

/// The processes descending from `ancestor` (not itself), parents first.
fn descendants(ancestor: i32) -> Vec<i32> {
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and `)`.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([ancestor]);
    while let Some(p) = queue.pop_front() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if c != ancestor && !out.contains(&c) {
                out.push(c);
                queue.push_back(c);
            }
        }
    }
    out
}

/// Runs `argv` and waits for it, killing it after `timeout`.
pub fn run(
    argv: &[String],
    record_streams: bool,
    timeout: Option<Duration>,
    interrupts: &Interrupts,
) -> Result<Outcome, RunError> {
    let program = argv.first().cloned().unwrap_or_default();
    // Orphans of the command become our children, not init's: they stay in
    // the tree a stop signal is forwarded to.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut command = Command::new(resolve_program(program.as_ref())?);
    std::os::unix::process::CommandExt::arg0(&mut command, &program);
    command.args(&argv[1..]);
    sys::unblock_signals_in_child(&mut command);
    let streams = record_streams.then(Streams::new).transpose()?;
    if let Some(streams) = &streams {
        let (out, err) = streams.stdio()?;
        command.stdout(out).stderr(err);
    }
    let mut child = command.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => RunError::NotFound(program.clone()),
        _ => RunError::CannotExecute {
            program: program.clone(),
            source,
        },
    })?;
    // Drop our copies of the write ends now that the child has its own.
    drop(command);
    let pid = child.id() as i32;
    interrupts.forward_to_tree(pid);
    let tees = streams.map(Streams::show);
    let status = wait(&mut child, pid, timeout);
    interrupts.forward_to(0);
    let (stdout, stderr) = match tees {
        Some(tees) => {
            let (out, err) = tees.finish()?;
            (Some(out), Some(err))
        }
        None => (None, None),
    };
    let status = status?;
    Ok(outcome(status, stdout, stderr))
}

fn wait(
    child: &mut std::process::Child,
    pid: i32,
    timeout: Option<Duration>,
) -> Result<ExitStatus, RunError> {
    let Some(timeout) = timeout else {
        return child.wait().map_err(RunError::Wait);
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(RunError::Wait)? {
            return Ok(status);
        }
        if std::time::Instant::now() >= deadline {
            // The whole tree: a grandchild would outlive its killed parent.
            signal_tree(pid, libc::SIGKILL);
            let _ = child.wait();
            return Err(RunError::TimedOut(timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn outcome(status: ExitStatus, stdout: Option<String>, stderr: Option<String>) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let (return_value, exit_code) = match (status.code(), status.signal()) {
        (Some(code), _) => (i64::from(code), code),
        (None, Some(sig)) => (-i64::from(sig), 128 + sig),
        (None, None) => (-1, 125),
    };
    Outcome {
        return_value,
        exit_code,
        stdout,
        stderr,
    }
}

/// `--record-streams`: the command's stdout and stderr go to two unlinked
/// temporary files, which are copied to ours as they grow and kept.
pub struct Streams {
    out: Capture,
    err: Capture,
}

/// Streams being shown while the command runs.
pub struct Shown {
    exited: Arc<AtomicBool>,
    out: std::thread::JoinHandle<std::io::Result<String>>,
    err: std::thread::JoinHandle<std::io::Result<String>>,
}

impl Streams {
    pub fn new() -> Result<Streams, RunError> {
        Ok(Streams {
            out: Capture::new()?,
            err: Capture::new()?,
        })
    }

    /// What to give the command as its stdout and stderr.
    pub fn stdio(&self) -> Result<(Stdio, Stdio), RunError> {
        Ok((self.out.writer()?, self.err.writer()?))
    }

    /// Starts copying the captured output to our stdout and stderr.
    pub fn show(self) -> Shown {
        let exited = Arc::new(AtomicBool::new(false));
        Shown {
            out: self.out.tee(std::io::stdout(), exited.clone()),
            err: self.err.tee(std::io::stderr(), exited.clone()),
            exited,
        }
    }
}

impl Shown {
    /// Once the command (and everything that could write) has ended: copies
    /// the rest and returns both streams as lossy UTF-8.
    pub fn finish(self) -> Result<(String, String), RunError> {
        self.exited.store(true, Ordering::SeqCst);
        Ok((join_capture(self.out)?, join_capture(self.err)?))
    }
}

/// One captured stream: an unlinked temporary file the child writes to.
struct Capture {
    file: std::fs::File,
}

impl Capture {
    fn new() -> Result<Capture, RunError> {
        Ok(Capture {
            file: tempfile::tempfile().map_err(RunError::Capture)?,
        })
    }

    fn writer(&self) -> Result<Stdio, RunError> {
        Ok(Stdio::from(
            self.file.try_clone().map_err(RunError::Capture)?,
        ))
    }

    /// Copies what the child writes to `sink` as it comes, until `exited`
    /// and everything is read; returns all of it as lossy UTF-8.
    fn tee<W: Write + Send + 'static>(
        self,
        mut sink: W,
        exited: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<std::io::Result<String>> {
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            // Positional reads: the child's descriptor shares the file
            // offset with ours, so seeking or reading through it would race.
            let file = self.file;
            let mut all = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let done = exited.load(Ordering::SeqCst);
                loop {
                    let n = file.read_at(&mut buf, all.len() as u64)?;
                    if n == 0 {
                        break;
                    }
                    let _ = sink.write_all(&buf[..n]);
                    all.extend_from_slice(&buf[..n]);
                }
                let _ = sink.flush();
                if done {
                    return Ok(String::from_utf8_lossy(&all).into_owned());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    }
}

fn join_capture(
    handle: std::thread::JoinHandle<std::io::Result<String>>,
) -> Result<String, RunError> {
    match handle.join() {
        Ok(result) => result.map_err(RunError::Capture),
        Err(_) => Err(RunError::Capture(std::io::Error::other(
            "the capture thread panicked",
        ))),
    }
}
