//! Precise recording of one run: the observer that turns the filesystem's
//! requests into semantics events and before-state digests, and the end of
//! the run (product digests, completeness, the runtime trace).
//!
//! Before-states: a file's content before the run is hashed in the
//! background from its first read-open; a request that would change or
//! remove a pre-existing file whose before-state is not yet known waits
//! for that hash (or hashes it there and then). Products are hashed in
//! parallel after the tree has ended. This module knows files, digests and
//! processes; it knows nothing of in-toto links or keys.
//!
//! The trace is published beside the link: before it is returned, every
//! secret of the command's environment is replaced by a marker wherever it
//! appears in it (`crate::secrets` decides what is secret).

use super::fs::Observer;
use super::semantics::{Event, Node, Note, Outcome, Tracker};
use super::session::{self, SessionError, SessionSpec};
use crate::hash::{self, Algorithm};
use crate::secrets;
use crate::store::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Digests of one file: (algorithm, hex), in the order asked for.
pub type Digests = Vec<(Algorithm, String)>;

/// A file's content as recorded: its digests, and its size and permission
/// bits (`st_mode & 0o7777`) at the time (for the trace and for reruns).
/// Two states are equal when their digests are: a chmod alone is no change.
#[derive(Debug, Clone)]
pub struct FileState {
    pub digests: Digests,
    pub size: u64,
    pub mode: u32,
}

impl PartialEq for FileState {
    fn eq(&self, other: &Self) -> bool {
        self.digests == other.digests
    }
}

impl Eq for FileState {}

impl FileState {
    /// The sha256 among the digests, if recorded.
    pub fn sha256(&self) -> Option<&str> {
        self.digests
            .iter()
            .find(|(alg, _)| *alg == Algorithm::Sha256)
            .map(|(_, hex)| hex.as_str())
    }
}

/// A before-state hash in flight, and what waits for it.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

type Continuation = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct SlotState {
    done: bool,
    waiters: Vec<Continuation>,
}

impl Slot {
    /// Marks the hash done and runs what waited for it.
    fn finish(&self) {
        let waiters = {
            let mut state = self.state.lock().unwrap();
            state.done = true;
            std::mem::take(&mut state.waiters)
        };
        self.cv.notify_all();
        for waiter in waiters {
            waiter();
        }
    }

    /// Blocks until the hash is done.
    fn wait(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.done {
            state = self.cv.wait(state).unwrap();
        }
    }

    /// Runs `then` once the hash is done: now, or on the thread that finishes it.
    fn then(&self, then: Continuation) {
        let mut state = self.state.lock().unwrap();
        if state.done {
            drop(state);
            then();
        } else {
            state.waiters.push(then);
        }
    }
}

/// Where a before-state hash reads from.
enum Source {
    /// A descriptor already open on the file (a reader's, or the old inode
    /// of a file being unlinked or replaced).
    File(File),
    /// Open the file when the job runs.
    Open(Box<dyn FnOnce() -> std::io::Result<File> + Send>),
}

/// Who touched an artifact, for the trace.
#[derive(Debug, Default, Clone)]
struct Access {
    readers: BTreeSet<u32>,
    writers: BTreeSet<u32>,
}

struct Shared {
    tracker: Mutex<Tracker<FileState>>,
    algs: Vec<Algorithm>,
    /// `--store`: before-states are copied here as they are hashed.
    store: Option<Store>,
    slots: Mutex<HashMap<Node, Arc<Slot>>>,
    errors: Mutex<Vec<String>>,
    accesses: Mutex<BTreeMap<String, Access>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    unrepresentable: AtomicBool,
    /// Caller thread id (as FUSE gives it) -> process id in the sandbox.
    processes: Mutex<HashMap<u32, u32>>,
    /// Sandbox pid -> (name, global parent pid) at the process's first request.
    seen: Mutex<BTreeMap<u32, (String, String)>>,
    /// Caller thread id -> where its process lives, at its first request: a
    /// caller outside the sandbox's PID namespace is not of the tree.
    pid_ns: Mutex<BTreeMap<u32, Caller>>,
    /// Lookups that found nothing: path -> the processes that looked.
    missing: Mutex<BTreeMap<String, BTreeSet<u32>>>,
    /// Opens of the signing key the daemon refused: path -> the processes.
    refused: Mutex<BTreeMap<String, BTreeSet<u32>>>,
    /// Every path a lookup found.
    found: Mutex<BTreeSet<String>>,
    /// Directories and symlinks the tree made (mkdir, symlink), kept even
    /// if removed later: they and what is beneath them are not probes of
    /// the tree as it was, and a rerun that looks them up and makes them
    /// again has no hidden input there.
    made: Mutex<BTreeSet<String>>,
    /// Directories the tree opened to list ("" for the root).
    listed: Mutex<BTreeSet<String>>,
}

/// A caller of the mount, as /proc showed it.
struct Caller {
    /// Its process id in the sandbox's PID namespace (or ours, if outside).
    pid: u32,
    /// Its own PID namespace (`pid:[N]`).
    ns: String,
    /// How many PID namespaces deep it is, counting ours (the sandbox's: 2).
    depth: usize,
}

/// The observer: feeds the tracker and hashes before-states.
pub struct Recorder {
    shared: Arc<Shared>,
    jobs: crossbeam_channel::Sender<(Node, Source, Arc<Slot>)>,
}

/// Reads a file from the start with positional reads (the descriptor may
/// be shared with the process being recorded; its offset is left alone).
struct ReadFromStart<'a> {
    file: &'a File,
    offset: u64,
}

impl std::io::Read for ReadFromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl Shared {
    fn hash_before(&self, node: Node, file: &File) -> Result<(), String> {
        let fail = |msg: String| {
            self.errors.lock().unwrap().push(msg.clone());
            Err(msg)
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => return fail(format!("cannot stat inode {node:?}: {e}")),
        };
        if (meta.dev(), meta.ino()) != node {
            return fail(format!(
                "inode {node:?} was replaced before its before-state could be hashed"
            ));
        }
        match file_state(file, &meta, &self.algs, self.store.as_ref()) {
            Ok(state) => {
                self.tracker.lock().unwrap().set_before(node, state);
                Ok(())
            }
            Err(e) => fail(format!(
                "cannot hash the before-state of inode {node:?}: {e}"
            )),
        }
    }
}

impl Recorder {
    /// A recorder hashing with `algs` on `threads` background workers,
    /// copying before-states into `store` when given.
    pub fn new(algs: &[Algorithm], threads: usize, store: Option<Store>) -> Recorder {
        let shared = Arc::new(Shared {
            tracker: Mutex::new(Tracker::new()),
            algs: algs.to_vec(),
            store,
            slots: Mutex::new(HashMap::new()),
            errors: Mutex::new(Vec::new()),
            accesses: Mutex::new(BTreeMap::new()),
            counts: Mutex::new(BTreeMap::new()),
            unrepresentable: AtomicBool::new(false),
            processes: Mutex::new(HashMap::new()),
            missing: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeMap::new()),
            pid_ns: Mutex::new(BTreeMap::new()),
            found: Mutex::new(BTreeSet::new()),
            made: Mutex::new(BTreeSet::new()),
            listed: Mutex::new(BTreeSet::new()),
        });
        let (jobs, rx) = crossbeam_channel::unbounded::<(Node, Source, Arc<Slot>)>();
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("before-state".into())
                .spawn(move || {
                    for (node, source, slot) in rx {
                        let file = match source {
                            Source::File(file) => Ok(file),
                            Source::Open(open) => open(),
                        };
                        match file {
                            Ok(file) => {
                                let _ = shared.hash_before(node, &file);
                            }
                            Err(e) => shared.errors.lock().unwrap().push(format!(
                                "cannot open inode {node:?} to hash its before-state: {e}"
                            )),
                        }
                        slot.finish();
                    }
                })
                .expect("cannot start a hashing thread");
        }
        Recorder { shared, jobs }
    }

    fn count(&self, what: &'static str) {
        *self.shared.counts.lock().unwrap().entry(what).or_default() += 1;
    }

    /// The sandbox's pid of the process a FUSE caller thread belongs to,
    /// from /proc/TID/status (never /proc/TID/cmdline, which takes the
    /// caller's memory lock and can deadlock against a caller blocked in a
    /// page fault). Falls back to the thread id as FUSE gave it.
    fn process_of(&self, tid: u32) -> u32 {
        if let Some(&pid) = self.shared.processes.lock().unwrap().get(&tid) {
            return pid;
        }
        let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        // NStgid lists the process's id in our PID namespace, then in the
        // sandbox's (one level down), then in any namespace the tree made.
        let ids: Vec<u32> = field("NStgid:")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let pid = ids.get(1).or(ids.first()).copied().unwrap_or(tid);
        self.shared.processes.lock().unwrap().insert(tid, pid);
        let ns = std::fs::read_link(format!("/proc/{tid}/ns/pid"))
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.shared
            .pid_ns
            .lock()
            .unwrap()
            .entry(tid)
            .or_insert(Caller {
                pid,
                ns,
                depth: ids.len(),
            });
        // Without ptrace this first touch of the root is all we learn of the
        // process: its name and (global) parent, from /proc/TID/status.
        self.shared
            .seen
            .lock()
            .unwrap()
            .entry(pid)
            .or_insert_with(|| (field("Name:"), field("PPid:")));
        pid
    }

    fn access(&self, path: &str, tid: u32, write: bool) {
        let pid = self.process_of(tid);
        let mut accesses = self.shared.accesses.lock().unwrap();
        let entry = accesses.entry(path.to_string()).or_default();
        if write {
            entry.writers.insert(pid);
        } else {
            entry.readers.insert(pid);
        }
    }
}

impl Observer for Recorder {
    fn event(&self, event: Event) {
        let (kind, path) = match &event {
            Event::Found(e) => ("lookup", &e.path),
            Event::Open { path, .. } => ("open", path),
            Event::Create { path, .. } => ("create", path),
            Event::Truncate { .. } => ("truncate", &String::new()),
            Event::Unlink { path, .. } => ("unlink", path),
            Event::Rename { to, .. } => ("rename", to),
            Event::Link { to, .. } => ("link", to),
            Event::Symlink { path, .. } => ("symlink", path),
            Event::Mkdir { path, .. } => ("mkdir", path),
            Event::Rmdir { path, .. } => ("rmdir", path),
        };
        self.count(kind);
        match &event {
            Event::Found(entry) => {
                self.shared.found.lock().unwrap().insert(entry.path.clone());
            }
            Event::Mkdir { path, .. } | Event::Symlink { path, .. } => {
                self.shared.made.lock().unwrap().insert(path.clone());
            }
            _ => {}
        }
        if path.contains('\u{FFFD}') {
            self.shared.unrepresentable.store(true, Ordering::Relaxed);
        }
        match &event {
            Event::Open {
                path,
                read,
                write,
                truncate,
                pid,
                ..
            } => {
                if *read {
                    self.access(path, *pid, false);
                }
                if *write || *truncate {
                    self.access(path, *pid, true);
                }
            }
            Event::Create { path, pid, .. } => self.access(path, *pid, true),
            Event::Unlink { path, pid } => self.access(path, *pid, true),
            Event::Rename { from, to, pid, .. } => {
                self.access(from, *pid, true);
                self.access(to, *pid, true);
            }
            Event::Link { to, pid, .. } => self.access(to, *pid, true),
            _ => {}
        }
        self.shared.tracker.lock().unwrap().apply(&event);
    }

    fn failure(&self, what: String) {
        self.shared.errors.lock().unwrap().push(what);
    }

    fn refused(&self, path: &str, tid: u32) {
        let pid = self.process_of(tid);
        self.shared
            .refused
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .insert(pid);
    }

    fn listed(&self, path: &str, _tid: u32) {
        self.shared.listed.lock().unwrap().insert(path.to_string());
    }

    fn missing(&self, path: &str, tid: u32) {
        self.count("lookup-missing");
        let pid = self.process_of(tid);
        let mut missing = self.shared.missing.lock().unwrap();
        missing.entry(path.to_string()).or_default().insert(pid);
    }

    fn read_open(&self, node: Node, file: &File) {
        if !self.shared.tracker.lock().unwrap().needs_before_state(node) {
            return;
        }
        let mut slots = self.shared.slots.lock().unwrap();
        if slots.contains_key(&node) {
            return;
        }
        let Ok(copy) = file.try_clone() else { return };
        let slot = Arc::new(Slot::default());
        slots.insert(node, slot.clone());
        let _ = self.jobs.send((node, Source::File(copy), slot));
    }

    fn before_change_then(
        &self,
        node: Node,
        open: Box<dyn FnOnce() -> std::io::Result<File> + Send>,
        proceed: Box<dyn FnOnce() + Send>,
    ) {
        if !self.shared.tracker.lock().unwrap().needs_before_state(node) {
            return proceed();
        }
        let mut slots = self.shared.slots.lock().unwrap();
        if let Some(slot) = slots.get(&node).cloned() {
            drop(slots);
            return slot.then(proceed);
        }
        let slot = Arc::new(Slot::default());
        slot.then(proceed);
        slots.insert(node, slot.clone());
        drop(slots);
        self.count("deferred-open");
        let _ = self.jobs.send((node, Source::Open(open), slot));
    }

    fn keep_before_state(&self, node: Node, file: File) {
        if !self.shared.tracker.lock().unwrap().needs_before_state(node) {
            return;
        }
        let mut slots = self.shared.slots.lock().unwrap();
        if slots.contains_key(&node) {
            return;
        }
        let slot = Arc::new(Slot::default());
        slots.insert(node, slot.clone());
        drop(slots);
        let _ = self.jobs.send((node, Source::File(file), slot));
    }

    fn before_change(&self, node: Node, open: &dyn Fn() -> std::io::Result<File>) {
        if !self.shared.tracker.lock().unwrap().needs_before_state(node) {
            return;
        }
        let pending = self.shared.slots.lock().unwrap().get(&node).cloned();
        if let Some(slot) = pending {
            slot.wait();
            if !self.shared.tracker.lock().unwrap().needs_before_state(node) {
                return;
            }
        }
        match open() {
            Ok(file) => {
                let _ = self.shared.hash_before(node, &file);
            }
            Err(e) => self.shared.errors.lock().unwrap().push(format!(
                "cannot open inode {node:?} to hash its before-state: {e}"
            )),
        }
    }
}

/// Everything a precise run found out.
#[derive(Debug)]
pub struct Recording {
    pub materials: BTreeMap<String, FileState>,
    pub products: BTreeMap<String, FileState>,
    /// Why the record cannot claim completeness (empty: complete).
    pub incomplete: Vec<String>,
    pub status: super::sandbox::SandboxStatus,
    /// `--run-timeout` struck: the tree was killed.
    pub timed_out: bool,
    /// The runtime trace (docs/trace-format.md), as JSON.
    pub trace: Value,
    /// The secrets of the command's environment the trace was redacted
    /// with (for documents made from the trace, such as attestations).
    pub redaction: secrets::Redaction,
    /// When the command was started and when its tree was gone (before the
    /// products were hashed).
    pub started: std::time::SystemTime,
    pub finished: std::time::SystemTime,
}

/// How to record.
#[derive(Clone)]
pub struct RecordSpec {
    pub session: SessionSpec,
    pub algs: Vec<Algorithm>,
    /// Descriptors of ours the command will not inherit (e.g. stdout and
    /// stderr when they are captured).
    pub not_inherited: Vec<i32>,
    /// Paths (relative to the root) that are not artifacts.
    pub exclude: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// `--store`: keep a copy of every material's before-state and every
    /// product, by digest.
    pub store: Option<Store>,
}

/// The trace's format version: 2 since secrets are replaced by markers and
/// listed in `redacted` (format 1, without the field, kept secret-looking
/// values as `sha256:<hex>`).
pub const TRACE_FORMAT: u64 = 2;

/// Runs the command under precise recording, redacting the trace's secrets
/// by the rules alone (no `--redact-env`/`--keep-env`).
pub fn record(spec: &RecordSpec, io: session::SessionIo<'_>) -> Result<Recording, SessionError> {
    record_with(spec, &secrets::Policy::default(), io)
}

/// Runs the command under precise recording; the trace's secrets are
/// redacted by the rules as `policy` adjusts them (docs/secrets.md).
pub fn record_with(
    spec: &RecordSpec,
    policy: &secrets::Policy,
    io: session::SessionIo<'_>,
) -> Result<Recording, SessionError> {
    let started = std::time::SystemTime::now();
    // Descriptors the command inherits bypass the mount: those under the
    // root are reopened through it for the command (others refused).
    let inherited = super::inherit::plan(&spec.session.root, &spec.not_inherited)
        .map_err(SessionError::Inherited)?;
    let mut session_spec = spec.session.clone();
    session_spec.reopen = inherited.reopen.clone();
    let recorder = Arc::new(Recorder::new(
        &spec.algs,
        hash::default_threads(),
        spec.store.clone(),
    ));
    let shared = recorder.shared.clone();
    let outcome = session::run(&session_spec, recorder.clone(), io)?;
    let finished = std::time::SystemTime::now();
    drop(recorder);

    // Every request has been answered and the tree is gone: wait for the
    // background before-state hashes still running.
    let slots: Vec<Arc<Slot>> = shared.slots.lock().unwrap().values().cloned().collect();
    for slot in slots {
        slot.wait();
    }
    let tracker = std::mem::take(&mut *shared.tracker.lock().unwrap());
    let finals = hash_finals(&spec.session.root, &tracker.final_queries(), spec);
    let Outcome {
        materials,
        products,
        notes,
    } = tracker.finish(|path, node| finals.get(&(path.to_string(), node)).cloned());

    let mut incomplete = Vec::new();
    for (pid, name) in &outcome.status.stragglers {
        incomplete.push(format!(
            "process {pid} ({name}) was still running when the command ended (killed)"
        ));
    }
    for note in notes.iter().filter(|n| n.is_error()) {
        incomplete.push(describe(note));
    }
    incomplete.extend(shared.errors.lock().unwrap().iter().cloned());
    incomplete.extend(inherited.incomplete.iter().cloned());
    incomplete.extend(outcome.incomplete.iter().cloned());
    incomplete.extend(unknown_callers(&shared, &outcome, spec.session.ptrace));
    if shared.unrepresentable.load(Ordering::Relaxed) {
        incomplete.push(
            "a path under the root is not valid UTF-8 and cannot be an in-toto artifact name"
                .into(),
        );
    }
    let exclude = &spec.exclude;
    let materials: BTreeMap<_, _> = materials.into_iter().filter(|(p, _)| !exclude(p)).collect();
    let products: BTreeMap<_, _> = products.into_iter().filter(|(p, _)| !exclude(p)).collect();

    let mut trace = json!({
        "_type": "tracelink-trace",
        "version": env!("CARGO_PKG_VERSION"),
        "root": spec.session.seen_root().to_string_lossy(),
        "backing_root": spec.session.mount_at.as_ref().map(|_| spec.session.root.to_string_lossy()),
        "cwd": spec.session.cwd.to_string_lossy(),
        "command": spec.session.argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
        "uid": nix::unistd::getuid().as_raw(),
        "gid": nix::unistd::getgid().as_raw(),
        "started": started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64().to_string()).unwrap_or_default(),
        "passthrough": outcome.passthrough,
        "exit": {
            "code": outcome.status.code,
            "signal": outcome.status.signal,
        },
        "inherited": inherited.reopen.iter().map(|f| json!({
            "fd": f.fd, "path": f.path.to_string_lossy(), "read": f.reads(), "write": f.writes(), "directory": f.dir,
        })).collect::<Vec<_>>(),
        "stragglers": outcome.status.stragglers.iter().map(|(pid, name)| json!({"pid": pid, "name": name})).collect::<Vec<_>>(),
        "complete": incomplete.is_empty(),
        "incomplete": incomplete,
        "artifacts": artifacts_json(&shared.accesses.lock().unwrap(), &materials, &products),
        "store": spec.store.as_ref().map(|s| s.dir().to_string_lossy().into_owned()),
        "notes": notes.iter().filter(|n| !n.is_error()).map(describe).collect::<Vec<_>>(),
        "probes": probes(&shared),
        "probed": probed_json(&probed(&shared, spec)),
        "made": shared.made.lock().unwrap().iter().collect::<Vec<_>>(),
        "refused": shared.refused.lock().unwrap().iter().map(|(p, pids)| json!({
            "path": p, "by": pids, "why": "the signing key: not readable by the recorded tree",
        })).collect::<Vec<_>>(),
        "fuse_requests": outcome.requests.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "events": shared.counts.lock().unwrap().iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "ptrace": spec.session.ptrace,
        "process_tree": process_tree(&outcome.status.procs, &shared.accesses.lock().unwrap(), spec.session.ptrace),
        "processes_seen": if spec.session.ptrace {
            Value::Null
        } else {
            json!({
                "note": "--no-ptrace: processes as they first touched the root; execs elsewhere were not observed",
                "processes": shared.seen.lock().unwrap().iter().map(|(pid, (name, ppid))| json!({
                    "pid": pid, "name": name, "parent_global_pid": ppid,
                })).collect::<Vec<_>>(),
            })
        },
    });
    // The trace is published: no secret of the command's environment may
    // be in it, wherever the tree carried it (argv, paths, probes).
    let redaction = secrets::Redaction::new(command_environment(&spec.session), policy);
    let elsewhere = redaction.scrub_json(&mut trace);
    trace["format"] = json!(TRACE_FORMAT);
    trace["environment"] = json!(redaction.environment());
    trace["redacted"] = json!(redaction.redacted().keys().collect::<Vec<_>>());
    trace["redaction"] = json!({
        "marker": secrets::marker("NAME"),
        "why": redaction.redacted(),
        "strings_elsewhere": elsewhere,
    });
    Ok(Recording {
        materials,
        products,
        incomplete,
        status: outcome.status,
        timed_out: outcome.timed_out,
        trace,
        redaction,
        started,
        finished,
    })
}

/// Callers of the mount that are not of the recorded tree (docs/threat-model.md):
/// processes outside the sandbox's PID namespace, and with ptrace, processes
/// the tracer never saw (a clone it could not follow). PID 1 (it reopens
/// inherited descriptors) and requests without a caller (pid 0) are known.
fn unknown_callers(
    shared: &Shared,
    outcome: &session::SessionOutcome,
    ptrace: bool,
) -> Vec<String> {
    let traced: BTreeSet<u32> = outcome.status.procs.iter().map(|p| p.pid as u32).collect();
    let seen = shared.seen.lock().unwrap();
    let name = |pid: &u32| seen.get(pid).map_or("?", |(n, _)| n.as_str()).to_string();
    let mut out = Vec::new();
    let callers = shared.pid_ns.lock().unwrap();
    for caller in callers.values() {
        let pid = &caller.pid;
        if *pid == 0 {
            continue;
        }
        let in_sandbox = caller.depth >= 2 && outcome.pid_ns.as_deref() == Some(caller.ns.as_str());
        // A namespace the tree made for itself (`unshare -p`): still of the
        // tree when the tracer followed it there.
        let nested = caller.depth > 2 && ptrace && traced.contains(pid);
        if !(in_sandbox || nested) {
            out.push(format!(
                "process {pid} ({}) outside the recorded tree used the monitored mount",
                name(pid)
            ));
        } else if ptrace && *pid != 1 && !traced.contains(pid) {
            out.push(format!(
                "process {pid} ({}) used the monitored mount but the tracer never saw it",
                name(pid)
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Digests `file` (from its start, whatever its offset), copying it into
/// `store` when given: then the sha256 is the digest of the copy as stored.
fn file_state(
    file: &File,
    meta: &std::fs::Metadata,
    algs: &[Algorithm],
    store: Option<&Store>,
) -> std::io::Result<FileState> {
    let mut digests = None;
    if let Some(store) = store {
        let stored = store
            .put_file(file, "a recorded file")
            .map_err(std::io::Error::other)?;
        if algs == [Algorithm::Sha256] {
            digests = Some(vec![(Algorithm::Sha256, stored.sha256)]);
        } else {
            let mut buf = vec![0u8; 256 * 1024];
            let found =
                hash::digest_reader(&mut ReadFromStart { file, offset: 0 }, algs, &mut buf)?;
            let sha = found.iter().find(|(a, _)| *a == Algorithm::Sha256);
            if sha.is_some_and(|(_, hex)| *hex != stored.sha256) {
                return Err(std::io::Error::other(
                    "the file changed while it was stored",
                ));
            }
            digests = Some(found);
        }
    }
    let digests = match digests {
        Some(d) => d,
        None => {
            let mut buf = vec![0u8; 256 * 1024];
            hash::digest_reader(&mut ReadFromStart { file, offset: 0 }, algs, &mut buf)?
        }
    };
    Ok(FileState {
        digests,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
    })
}

/// Hashes every file the tracker asks about, in parallel, from outside the
/// mount. A query with a node is answered only if the path still holds that
/// node; a query without one follows the symlink at the path, which must
/// stay under the root.
fn hash_finals(
    root: &Path,
    queries: &[(String, Option<Node>)],
    spec: &RecordSpec,
) -> HashMap<(String, Option<Node>), FileState> {
    let mut jobs = Vec::new();
    let mut keys = Vec::new();
    for (path, node) in queries {
        let full = root.join(path);
        let target: Option<PathBuf> = match node {
            Some(_) => Some(full),
            None => std::fs::canonicalize(&full)
                .ok()
                .filter(|t| t.starts_with(root)),
        };
        if let Some(target) = target {
            let meta = std::fs::metadata(&target);
            // The signing key is never read for the tree, whatever name the
            // tree gave it: such a product stays unhashed (incomplete).
            let key = spec.session.protect.as_ref().map(|p| p.node);
            if meta.as_ref().is_ok_and(|m| Some((m.dev(), m.ino())) == key) {
                continue;
            }
            let size_hint = meta.map(|m| m.len()).unwrap_or(0);
            jobs.push(hash::Job {
                path: target,
                size_hint,
            });
            keys.push((path.clone(), *node));
        }
    }
    let results = hash::hash_all(&jobs, &spec.algs, hash::default_threads(), &mut |_| true);
    // With a store, each product is also copied in; its stored sha256 must
    // be the one just hashed (otherwise it changed meanwhile: no digest).
    let stored: Vec<Option<String>> = match &spec.store {
        None => Vec::new(),
        Some(store) => {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let slots: Vec<Mutex<Option<String>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
            std::thread::scope(|scope| {
                for _ in 0..hash::default_threads() {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            // Content the store already holds is not copied again.
                            let known = results[i].as_ref().ok().and_then(|h| {
                                h.digests
                                    .iter()
                                    .find(|(alg, _)| *alg == Algorithm::Sha256)
                                    .map(|(_, hex)| hex.clone())
                            });
                            if let Some(sha256) = known.filter(|d| store.contains(d)) {
                                *slots[i].lock().unwrap() = Some(sha256);
                                continue;
                            }
                            if let Ok(put) = store.put_path(&job.path) {
                                *slots[i].lock().unwrap() = Some(put.sha256);
                            }
                        }
                    });
                }
            });
            slots.into_iter().map(|m| m.into_inner().unwrap()).collect()
        }
    };
    let mut out = HashMap::new();
    for (i, (key, result)) in keys.into_iter().zip(results).enumerate() {
        let Ok(hashed) = result else { continue };
        if key.1.is_some_and(|n| n != (hashed.id.dev, hashed.id.ino)) {
            continue;
        }
        let mode = std::fs::metadata(&jobs[i].path)
            .map(|m| m.mode() & 0o7777)
            .unwrap_or(0);
        let state = FileState {
            digests: hashed.digests,
            size: hashed.id.size,
            mode,
        };
        if spec.store.is_some() && stored[i].as_deref() != state.sha256() {
            continue;
        }
        out.insert(key, state);
    }
    out
}

/// Lookups that found nothing, and entries that were looked up but never
/// opened, created or changed (stat-only). With entry caching (TTL > 0) a
/// repeated probe by another process may not reach the daemon: these lists
/// are what the kernel asked, not every stat(2) the tree made.
fn probes(shared: &Shared) -> Value {
    let accesses = shared.accesses.lock().unwrap();
    let stat_only: Vec<String> = shared
        .found
        .lock()
        .unwrap()
        .iter()
        .filter(|p| !accesses.contains_key(*p))
        .cloned()
        .collect();
    json!({
        "missing": shared.missing.lock().unwrap().iter().map(|(p, pids)| json!({"path": p, "by": pids})).collect::<Vec<_>>(),
        "stat_only": stat_only,
    })
}

/// The largest probed file whose digest the trace keeps (and whose
/// content `--store` copies).
pub const PROBED_MAX_FILE: u64 = 1 << 20;
/// The most probed-file content `--store` copies in one run; the trace
/// lists what was left out beyond it.
pub const PROBED_MAX_TOTAL: u64 = 256 << 20;

/// What a rerun needs to answer a probe (stat, access, a lookup) as the
/// recording's tree did: the entry's kind, mode, size, symlink target, and
/// for a small regular file whose name is not secret, its sha256.
#[derive(Debug, Clone, Default)]
struct ProbedEntry {
    kind: &'static str,
    mode: u32,
    size: u64,
    target: Option<String>,
    sha256: Option<String>,
    /// Why there is no digest or stored copy, if there is none.
    left_out: Option<&'static str>,
}

/// Whether the file name `path` looks like it holds a secret (a component
/// named by the secret rules of [`secrets::secret_name`], with or without
/// its extension, or a private-key file): its digest is not published and
/// its content not stored.
pub fn secret_file_name(path: &str) -> bool {
    path.split('/').any(|part| {
        let stem = part.split('.').next().unwrap_or(part);
        let lower = part.to_ascii_lowercase();
        secrets::secret_name(part)
            || secrets::secret_name(stem)
            || lower.starts_with("id_rsa")
            || lower.starts_with("id_ed25519")
            || lower.starts_with("id_ecdsa")
            || lower.ends_with(".pem")
            || lower.ends_with(".key")
            || lower == ".netrc"
            || lower == ".pgpass"
    })
}

/// Every path that was only probed (looked up, never opened, created or
/// changed), as it is now in the backing tree (unchanged by the run: it was
/// never written), with small files' digests and, under `--store`, their
/// content copied (never the protected signing key, never a secret-named
/// file, at most [`PROBED_MAX_TOTAL`] bytes in all).
fn probed(shared: &Shared, spec: &RecordSpec) -> BTreeMap<String, ProbedEntry> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let accesses = shared.accesses.lock().unwrap();
    let made = shared.made.lock().unwrap();
    let missing = shared.missing.lock().unwrap();
    // Made by the tree (or beneath what it made), or absent when it first
    // looked: not the tree as it was before the run.
    let made_here = |p: &str| {
        let mut p = p;
        loop {
            if made.contains(p) || accesses.contains_key(p) {
                return true;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return false,
            }
        }
    };
    let mut found: BTreeSet<String> = shared.found.lock().unwrap().clone();
    // What a listed directory held (as it is now: what the run made or
    // changed in it is left out below), so that the rerun lists the same.
    for dir in shared.listed.lock().unwrap().iter() {
        if !dir.is_empty() {
            found.insert(dir.clone());
        }
        let Ok(entries) = std::fs::read_dir(spec.session.root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                found.insert(if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    let found: Vec<String> = found
        .into_iter()
        .filter(|p| !made_here(p) && !missing.contains_key(p))
        .collect();
    drop((accesses, made, missing));
    let protected = spec.session.protect.as_ref().map(|p| p.node);
    let mut stored_total = 0u64;
    let mut out = BTreeMap::new();
    for path in found {
        let full = spec.session.root.join(&path);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        let ft = meta.file_type();
        let mut entry = ProbedEntry {
            mode: meta.mode() & 0o7777,
            size: meta.len(),
            ..ProbedEntry::default()
        };
        if ft.is_symlink() {
            entry.kind = "symlink";
            entry.target = std::fs::read_link(&full)
                .ok()
                .map(|t| t.to_string_lossy().into_owned());
        } else if ft.is_dir() {
            entry.kind = "dir";
        } else if ft.is_file() {
            entry.kind = "file";
            if protected == Some((meta.dev(), meta.ino())) {
                entry.left_out = Some("the signing key");
            } else if secret_file_name(&path) {
                entry.left_out = Some("secret-named");
            } else if meta.len() > PROBED_MAX_FILE {
                entry.left_out = Some("larger than 1 MiB");
            } else if let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&full)
            {
                let mut buf = vec![0u8; 64 * 1024];
                if let Ok(d) = hash::digest_reader(&mut &file, &[Algorithm::Sha256], &mut buf) {
                    entry.sha256 = d.into_iter().next().map(|(_, hex)| hex);
                }
                if let (Some(store), Some(sha)) = (&spec.store, &entry.sha256)
                    && !store.contains(sha)
                {
                    if stored_total + meta.len() > PROBED_MAX_TOTAL {
                        entry.left_out =
                            Some("not stored: the bound on probed content was reached");
                    } else if store.put_file(&file, &path).is_ok() {
                        stored_total += meta.len();
                    }
                }
            }
        } else {
            entry.kind = if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "device"
            };
        }
        out.insert(path, entry);
    }
    out
}

fn probed_json(probed: &BTreeMap<String, ProbedEntry>) -> Value {
    let mut out = serde_json::Map::new();
    for (path, e) in probed {
        let mut v = json!({"kind": e.kind, "mode": e.mode, "size": e.size});
        if let Some(t) = &e.target {
            v["target"] = json!(t);
        }
        if let Some(d) = &e.sha256 {
            v["sha256"] = json!(d);
        }
        if let Some(why) = e.left_out {
            v["left_out"] = json!(why);
        }
        out.insert(path.clone(), v);
    }
    Value::Object(out)
}

/// Per artifact: who read and wrote it, and the size and mode of the
/// material (before the run) and the product (after), where recorded.
fn artifacts_json(
    accesses: &BTreeMap<String, Access>,
    materials: &BTreeMap<String, FileState>,
    products: &BTreeMap<String, FileState>,
) -> Value {
    let mut out = serde_json::Map::new();
    let paths: BTreeSet<&String> = accesses
        .keys()
        .chain(materials.keys())
        .chain(products.keys())
        .collect();
    let state = |f: &FileState| json!({"size": f.size, "mode": f.mode});
    for path in paths {
        let (readers, writers) = accesses
            .get(path)
            .map(|a| (a.readers.clone(), a.writers.clone()))
            .unwrap_or_default();
        let mut entry = json!({"read_by": readers, "written_by": writers});
        if let Some(m) = materials.get(path) {
            entry["material"] = state(m);
        }
        if let Some(p) = products.get(path) {
            entry["product"] = state(p);
        }
        out.insert(path.clone(), entry);
    }
    Value::Object(out)
}

/// The process tree with what each process read and wrote (null without ptrace).
fn process_tree(
    procs: &[super::tracer::Proc],
    accesses: &BTreeMap<String, Access>,
    traced: bool,
) -> Value {
    if !traced {
        return Value::Null;
    }
    let mut read: HashMap<u32, Vec<&str>> = HashMap::new();
    let mut wrote: HashMap<u32, Vec<&str>> = HashMap::new();
    for (path, access) in accesses {
        for pid in &access.readers {
            read.entry(*pid).or_default().push(path);
        }
        for pid in &access.writers {
            wrote.entry(*pid).or_default().push(path);
        }
    }
    Value::Array(
        procs
            .iter()
            .map(|proc| {
                let mut value = serde_json::to_value(proc).unwrap_or(Value::Null);
                let pid = proc.pid as u32;
                value["read"] = json!(read.get(&pid).cloned().unwrap_or_default());
                value["wrote"] = json!(wrote.get(&pid).cloned().unwrap_or_default());
                value
            })
            .collect(),
    )
}

fn describe(note: &Note) -> String {
    match note {
        Note::Transient { path } => format!("transient file {path} (created and removed)"),
        Note::UnseenHardLinks { paths, nlink } => format!(
            "{} changed and has {nlink} hard links; the tree used only {}",
            paths.join(", "),
            paths.len()
        ),
        Note::ChangedAfterDirRename { before, after } => format!(
            "changed after its directory was renamed: {} (was {})",
            after.join(", "),
            before.join(", ")
        ),
        Note::NonArtifactSymlink { path } => {
            format!("symlink {path} does not lead to a regular file under the root")
        }
        Note::MissingBeforeState { path } => {
            format!("the content of {path} before the run is unknown")
        }
        Note::MissingFinalDigest { path } => format!("product {path} could not be hashed"),
        Note::Anomaly { message } => format!("monitoring anomaly: {message}"),
    }
}

/// The environment the command runs with (the session's, or ours), as
/// strings (bytes that are not UTF-8 become U+FFFD, as everywhere in the
/// trace).
fn command_environment(session: &SessionSpec) -> Vec<(String, String)> {
    let lossy = |(k, v): (&std::ffi::OsStr, &std::ffi::OsStr)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    };
    match &session.env {
        Some(env) => env.iter().map(|(k, v)| lossy((k, v))).collect(),
        None => std::env::vars_os().map(|(k, v)| lossy((&k, &v))).collect(),
    }
}
