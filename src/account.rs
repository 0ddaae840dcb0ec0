//! An account of one recorded step, for `tracelink show` and `tracelink diff`:
//! the signed link as the file carries it (wrapper, signatures, the link
//! itself), the signature checked against given public keys, and the runtime
//! trace beside it, trusted only when its sha256 equals the one signed in the
//! link's `environment.tracelink`; and the differences between two accounts.
//!
//! A link attestation (an in-toto Statement v1 with the link predicate, in a
//! DSSE envelope: `crate::attest`) is read as the link it stands for, its
//! signatures checked as a DSSE link's and its trace found the same way
//! (the predicate keeps the link's `environment`). Any other statement
//! (provenance, runtime trace, a verification summary) is a
//! [`Record::Statement`]: [`load_record`] reads either.
//!
//! The trace is read as the JSON document precise recording writes, leniently:
//! fields this module does not know are kept in the raw document but
//! otherwise ignored, and missing ones take empty defaults, so traces of
//! older or newer versions still read. Artifact sizes and modes
//! (`artifacts.<path>.material/product = {size, mode}`) are optional. A
//! trace names its format (`"format"`, [`TRACE_FORMATS`]; none is format
//! 1); a format this version does not know is malformed, not guessed at.
//!
//! Links and traces may be crafted (docs/threat-model.md): the link and the
//! trace are read through `crate::untrusted` (regular files only, the trace
//! never through a symbolic link, bounded sizes), and nothing here prints.
//!
//! Process trees are compared by matching processes, not pids (pids differ
//! between runs). Each process is named by its *chain*: the program names
//! (base name of argv[0] of the last exec; a process that never executed
//! takes its parent's) from the root of the tree down to it, such as
//! `make > cc > as`. Within one chain, processes with identical argument
//! lists (all their execs) pair first; the rest pair in order of start and
//! count as "argv changed"; those left over appeared (only in B) or vanished
//! (only in A). A pair whose executables (path or sha256: the toolchain)
//! differ is reported as changed too. Arguments naming files directly inside
//! a temporary directory (`/tmp`, `/var/tmp`, the trace's `TMPDIR`) are
//! compared with the file name masked, since compilers name their
//! intermediate files randomly. The link's `environment` is compared without
//! `tracelink.trace` (two runs' traces always differ, in timings at least).
//!
//! This module reads files and compares; it knows nothing of how links and
//! traces were recorded, of printing, or of exit statuses.

use crate::attest::{self, AttestError, Envelope, Statement};
use crate::keys::{KeyIdFormat, PublicKey};
use crate::link::{DigestSet, Link};
use crate::verify::metadata::{Form, Metadata, MetadataError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Why a link cannot be given an account at all.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("{path}: not in-toto link metadata: {reason}")]
    NotALink { path: PathBuf, reason: String },
    /// A DSSE envelope holding an in-toto Statement that is malformed.
    #[error(transparent)]
    Attestation(#[from] AttestError),
}

/// How the link was recorded, from its `environment.tracelink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `tracelink run` without -m/-p: a runtime trace accompanies the link.
    Precise,
    /// No `environment.tracelink`: snapshot mode (-m/-p, or another in-toto tool).
    Snapshot,
    /// A mode this version does not know.
    Other(String),
}

impl Mode {
    pub fn name(&self) -> &str {
        match self {
            Mode::Precise => "precise",
            Mode::Snapshot => "snapshot",
            Mode::Other(name) => name,
        }
    }
}

/// The runtime trace a link names, and whether it can be trusted.
#[derive(Debug)]
pub enum TraceState {
    /// The link names no trace (snapshot mode).
    None,
    /// The trace file cannot be read.
    Missing { path: PathBuf, reason: String },
    /// Something other than a trace is in its place: not a regular file, a
    /// symbolic link, or larger than a trace may be (`crate::untrusted`).
    /// It was not read.
    Refused { path: PathBuf, reason: String },
    /// The trace file's sha256 is not the signed one: its content is not
    /// part of the signed record.
    Mismatch {
        path: PathBuf,
        signed: String,
        actual: String,
    },
    /// The link's reference to the trace, or the trace itself, is malformed.
    Malformed { path: PathBuf, reason: String },
    /// The trace matches the digest in the link.
    Trusted {
        path: PathBuf,
        sha256: String,
        trace: Box<Trace>,
    },
}

impl TraceState {
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            TraceState::Trusted { trace, .. } => Some(trace),
            _ => None,
        }
    }

    /// A problem with the trace, in one sentence naming the file.
    pub fn problem(&self) -> Option<String> {
        match self {
            TraceState::None | TraceState::Trusted { .. } => None,
            TraceState::Missing { path, reason } => Some(format!(
                "the trace {} that the link names cannot be read: {reason}",
                path.display()
            )),
            TraceState::Refused { path, reason } => Some(format!(
                "the trace {} that the link names {reason}",
                path.display()
            )),
            TraceState::Mismatch {
                path,
                signed,
                actual,
            } => Some(format!(
                "the trace {} does NOT match the digest signed in the link (signed sha256 {signed}, file sha256 {actual}): it was changed or replaced, and its content is not part of the signed record",
                path.display()
            )),
            TraceState::Malformed { path, reason } => {
                Some(format!("the trace {}: {reason}", path.display()))
            }
        }
    }
}

/// One step's record: the link file and the trace beside it.
#[derive(Debug)]
pub struct Account {
    pub path: PathBuf,
    pub form: Form,
    pub link: Link,
    /// The keyids of the signatures the file carries.
    pub signatures: Vec<String>,
    pub mode: Mode,
    /// `environment.tracelink.complete` (None: not said).
    pub complete: Option<bool>,
    /// `environment.tracelink.version`.
    pub recorder_version: Option<String>,
    pub trace: TraceState,
    /// Whether the file is a link attestation (in-toto Statement v1, link
    /// predicate, in a DSSE envelope; `form` is then `Dsse`) rather than a
    /// classic or DSSE link.
    pub attestation: bool,
    signed: Signed,
}

/// What the signatures of a record are checked against.
#[derive(Debug)]
enum Signed {
    /// A classic or DSSE link.
    Metadata(Metadata),
    /// A DSSE envelope holding a Statement.
    Envelope(Envelope),
}

impl Signed {
    /// Whether `keyid` signed with `key`, or why not.
    fn verify(&self, key: &PublicKey, keyid: &str) -> Result<(), String> {
        match self {
            Signed::Metadata(metadata) => metadata.verify_signature(key, keyid),
            Signed::Envelope(envelope) => {
                if !envelope.signatures.iter().any(|(k, _)| k == keyid) {
                    Err(format!("no signature by key {keyid}"))
                } else if envelope.verifies(keyid, key) {
                    Ok(())
                } else {
                    Err(format!("the signature by key {keyid} does not verify"))
                }
            }
        }
    }

    /// Checks the signature with `key`, trying its Python and its legacy keyid.
    fn check_key(&self, key_path: &Path, key: &PublicKey) -> KeyCheck {
        let mut keyids = vec![key.keyid(KeyIdFormat::Python)];
        let legacy = key.keyid(KeyIdFormat::Legacy);
        if legacy != keyids[0] {
            keyids.push(legacy);
        }
        let mut reasons = Vec::new();
        for keyid in &keyids {
            match self.verify(key, keyid) {
                Ok(()) => {
                    return KeyCheck {
                        key: key_path.into(),
                        keyids: vec![keyid.clone()],
                        verified: true,
                        reason: None,
                    };
                }
                Err(reason) => reasons.push(reason),
            }
        }
        // Prefer the reason that found a signature.
        let reason = reasons
            .iter()
            .find(|r| r.contains("does not verify"))
            .or(reasons.first())
            .cloned();
        KeyCheck {
            key: key_path.into(),
            keyids,
            verified: false,
            reason,
        }
    }
}

/// What a file given to `show` or `diff` holds.
#[derive(Debug)]
pub enum Record {
    /// A classic or DSSE link, or a link attestation.
    Link(Box<Account>),
    /// An in-toto Statement other than a link attestation.
    Statement(Box<StatementRecord>),
}

/// A DSSE envelope holding an in-toto Statement that is not a link
/// attestation (provenance, runtime trace, verification summary, or a
/// predicate this version does not know), its signatures not yet checked.
#[derive(Debug)]
pub struct StatementRecord {
    pub path: PathBuf,
    pub statement: Statement,
    /// The keyids of the signatures the envelope carries.
    pub signatures: Vec<String>,
    signed: Signed,
}

impl StatementRecord {
    /// Checks the signature with `key`, trying its Python and its legacy keyid.
    pub fn check_key(&self, key_path: &Path, key: &PublicKey) -> KeyCheck {
        self.signed.check_key(key_path, key)
    }

    /// The kind of statement, when tracelink writes its predicate.
    pub fn kind(&self) -> Option<attest::Kind> {
        attest::Kind::ALL
            .into_iter()
            .find(|k| k.predicate_type() == self.statement.predicate_type)
    }

    /// A file the statement names beside it (provenance's
    /// `runDetails.byproducts`: the runtime trace) checked against the
    /// sha256 signed in the statement, as a link's trace is.
    pub fn check_beside(&self, name: &str, sha256: &str) -> TraceState {
        read_trace(
            &self.path,
            &serde_json::json!({"name": name, "sha256": sha256}),
        )
    }
}

/// Reads a file given to `show` or `diff`: a classic or DSSE link, a link
/// attestation (both with the trace they name), or another in-toto
/// Statement in a DSSE envelope. The file is read as metadata is (a
/// regular file, bounded: `crate::untrusted::METADATA`).
pub fn load_record(path: &Path) -> Result<Record, AccountError> {
    use crate::untrusted::{self, UntrustedError};
    let bytes = untrusted::read(path, untrusted::METADATA).map_err(|e| match e {
        UntrustedError::Io { path, source } => MetadataError::Read { path, source },
        refused => MetadataError::Refused(refused),
    })?;
    if !Envelope::sniff(&bytes) {
        let metadata = Metadata::parse(path, &bytes)?;
        return Account::from_metadata(path, metadata).map(|a| Record::Link(Box::new(a)));
    }
    let envelope = Envelope::parse(path, &bytes)?;
    let signatures = envelope
        .signatures
        .iter()
        .map(|(keyid, _)| keyid.clone())
        .collect();
    match attest::link::to_link(&envelope.statement) {
        Ok(link) => Ok(Record::Link(Box::new(Account::new(
            path,
            Form::Dsse,
            link,
            signatures,
            true,
            Signed::Envelope(envelope),
        )))),
        Err(attest::link::ToLinkError::Field(e)) => Err(AttestError::Malformed {
            path: path.into(),
            field: e.field,
            reason: e.reason,
        }
        .into()),
        Err(attest::link::ToLinkError::NotLink(_)) => {
            Ok(Record::Statement(Box::new(StatementRecord {
                path: path.into(),
                statement: envelope.statement.clone(),
                signatures,
                signed: Signed::Envelope(envelope),
            })))
        }
    }
}

/// The outcome of checking the signature with one public key.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    pub key: PathBuf,
    /// The keyid that verified, or the keyids tried.
    pub keyids: Vec<String>,
    pub verified: bool,
    /// Why it did not verify.
    pub reason: Option<String>,
}

impl Account {
    /// Reads a link file (classic or DSSE, or a link attestation) and the
    /// trace it names. Another statement is not a link.
    pub fn load(path: &Path) -> Result<Account, AccountError> {
        match load_record(path)? {
            Record::Link(account) => Ok(*account),
            Record::Statement(record) => Err(AccountError::NotALink {
                path: path.into(),
                reason: format!(
                    "it holds an in-toto Statement with predicateType {:?}, not a link attestation",
                    record.statement.predicate_type
                ),
            }),
        }
    }

    fn from_metadata(path: &Path, metadata: Metadata) -> Result<Account, AccountError> {
        let not_a_link = |reason: String| AccountError::NotALink {
            path: path.into(),
            reason,
        };
        if metadata.payload_type() != "link" {
            return Err(not_a_link(format!(
                "it holds a {}, not a link",
                metadata.payload_type()
            )));
        }
        let link = Link::from_value(&metadata.payload).map_err(not_a_link)?;
        let signatures = metadata.signature_keyids().map(str::to_owned).collect();
        Ok(Account::new(
            path,
            metadata.form,
            link,
            signatures,
            false,
            Signed::Metadata(metadata),
        ))
    }

    fn new(
        path: &Path,
        form: Form,
        link: Link,
        signatures: Vec<String>,
        attestation: bool,
        signed: Signed,
    ) -> Account {
        let record = link.environment.get("tracelink");
        let (mode, complete, recorder_version) = match record {
            None => (Mode::Snapshot, None, None),
            Some(record) => {
                let mode = match record.get("mode").and_then(Value::as_str) {
                    Some("precise") => Mode::Precise,
                    Some("snapshot") => Mode::Snapshot,
                    Some(other) => Mode::Other(other.to_string()),
                    None => Mode::Other("(not said)".into()),
                };
                (
                    mode,
                    record.get("complete").and_then(Value::as_bool),
                    record
                        .get("version")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
            }
        };
        let trace = match record.and_then(|r| r.get("trace")) {
            None | Some(Value::Null) => TraceState::None,
            Some(reference) => read_trace(path, reference),
        };
        Account {
            path: path.into(),
            form,
            link,
            signatures,
            mode,
            complete,
            recorder_version,
            trace,
            attestation,
            signed,
        }
    }

    /// Checks the signature with `key`, trying its Python and its legacy keyid.
    pub fn check_key(&self, key_path: &Path, key: &PublicKey) -> KeyCheck {
        self.signed.check_key(key_path, key)
    }

    /// Reasons the recording is incomplete, from the trace (if trusted).
    pub fn incomplete_reasons(&self) -> &[String] {
        self.trace
            .trace()
            .map(|t| t.incomplete.as_slice())
            .unwrap_or_default()
    }

    /// What the trace knows of an artifact: size and mode before (material)
    /// or after (product) the step.
    pub fn file_meta(&self, path: &str, product: bool) -> Option<FileMeta> {
        let access = self.trace.trace()?.artifacts.get(path)?;
        if product {
            access.product
        } else {
            access.material
        }
    }
}

/// Reads the trace a link names and checks its digest.
fn read_trace(link_path: &Path, reference: &Value) -> TraceState {
    let dir = link_path.parent().unwrap_or(Path::new("."));
    let name = reference.get("name").and_then(Value::as_str);
    let signed = reference.get("sha256").and_then(Value::as_str);
    let (Some(name), Some(signed)) = (name, signed) else {
        return TraceState::Malformed {
            path: link_path.into(),
            reason: "environment.tracelink.trace has no string `name` and `sha256`".into(),
        };
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return TraceState::Malformed {
            path: link_path.into(),
            reason: format!(
                "environment.tracelink.trace.name {name:?} is not a file name beside the link"
            ),
        };
    }
    let path = dir.join(name);
    // Beside a link anyone may have put anything: a regular file, not
    // through a symlink, bounded (crate::untrusted).
    let bytes = match crate::untrusted::read(&path, crate::untrusted::TRACE) {
        Ok(bytes) => bytes,
        Err(e @ crate::untrusted::UntrustedError::Io { .. }) => {
            return TraceState::Missing {
                path,
                reason: e.problem(),
            };
        }
        Err(e) => {
            return TraceState::Refused {
                path,
                reason: e.problem(),
            };
        }
    };
    use sha2::Digest as _;
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(signed) {
        return TraceState::Mismatch {
            path,
            signed: signed.to_string(),
            actual,
        };
    }
    // Only signed bytes are decompressed, and only up to the trace bound
    // (a small gzip file can expand to anything).
    let json = match crate::tracefile::decompress(&bytes, crate::untrusted::TRACE.max) {
        Ok(json) => json,
        Err(e @ crate::tracefile::TraceFileError::TooLarge { .. }) => {
            return TraceState::Refused {
                path,
                reason: format!("is refused: {e}"),
            };
        }
        Err(e) => {
            return TraceState::Malformed {
                path,
                reason: e.to_string(),
            };
        }
    };
    match Trace::parse(&json) {
        Ok(trace) => TraceState::Trusted {
            path,
            sha256: actual,
            trace: Box::new(trace),
        },
        Err(reason) => TraceState::Malformed { path, reason },
    }
}

/// The runtime trace of a precise recording (the parts show and diff use;
/// `raw` holds all of it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Trace {
    /// The trace format (`TRACE_FORMATS`); 1 for a trace that does not say.
    /// For a compact trace (format 3), the format of the document it holds.
    #[serde(skip)]
    pub format: u64,
    /// The tracelink version that recorded it.
    pub version: Option<String>,
    pub root: Option<String>,
    pub cwd: Option<String>,
    /// Where the root really was, when it was served at another path (rerun).
    pub backing_root: Option<String>,
    /// The content-addressed store artifacts were copied into (run --store).
    pub store: Option<String>,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub exit: Exit,
    pub inherited: Vec<Inherited>,
    pub stragglers: Vec<Straggler>,
    pub complete: Option<bool>,
    pub incomplete: Vec<String>,
    pub artifacts: BTreeMap<String, ArtifactAccess>,
    pub notes: Vec<String>,
    pub probes: Probes,
    pub ptrace: Option<bool>,
    /// None when recorded with --no-ptrace.
    pub process_tree: Option<Vec<Proc>>,
    pub processes_seen: Option<Value>,
    #[serde(skip)]
    pub raw: Value,
}

/// The trace formats this version reads: a trace's `"format"` (an integer;
/// a trace without one, as every tracelink up to 0.1 writes, is format 1).
/// A later format that older readers must not misread gets a higher number.
/// 1: secrets in the environment as `sha256:` digests; 2: secrets replaced
/// by markers everywhere in the trace, with the list of redacted names;
/// 3: a compact container (shared strings, no nulls: `crate::tracefile`)
/// for a document of format 1 or 2, which says its own format.
pub const TRACE_FORMATS: std::ops::RangeInclusive<u64> = 1..=3;

impl Trace {
    pub fn parse(bytes: &[u8]) -> Result<Trace, String> {
        let mut raw: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if !raw.is_object() {
            return Err("not a JSON object".into());
        }
        if let Some(kind) = raw.get("_type")
            && kind != "tracelink-trace"
        {
            return Err(format!(
                "not a trace: its `_type` is {kind}, not \"tracelink-trace\""
            ));
        }
        let format_of = |raw: &Value| match raw.get("format") {
            None => Ok(1),
            Some(v) => match v.as_u64() {
                Some(n) if TRACE_FORMATS.contains(&n) => Ok(n),
                Some(n) => Err(format!(
                    "trace format {n}, which this tracelink does not read (it reads format {}); \
                     a newer tracelink wrote it",
                    TRACE_FORMATS.end()
                )),
                None => Err(format!("`format` is {v}, not a format number")),
            },
        };
        let mut format = format_of(&raw)?;
        if format == crate::tracefile::FORMAT {
            // A compact container: the document inside has its own format.
            raw = crate::tracefile::expand(raw)?;
            format = format_of(&raw)?;
            if format == crate::tracefile::FORMAT {
                return Err("a compact trace holds another compact trace".into());
            }
        }
        let mut trace: Trace =
            serde_json::from_value(raw.clone()).map_err(|e| format!("not a trace: {e}"))?;
        trace.format = format;
        trace.raw = raw;
        Ok(trace)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Exit {
    pub code: Option<i64>,
    pub signal: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Inherited {
    pub fd: i64,
    pub path: String,
    pub read: bool,
    pub write: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Straggler {
    pub pid: i64,
    pub name: String,
}

/// Size and permission bits (st_mode & 0o7777) of an artifact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct FileMeta {
    pub size: u64,
    #[serde(default)]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ArtifactAccess {
    pub read_by: Vec<i64>,
    pub written_by: Vec<i64>,
    pub material: Option<FileMeta>,
    pub product: Option<FileMeta>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Probes {
    pub missing: Vec<Missing>,
    pub stat_only: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Missing {
    pub path: String,
    pub by: Vec<i64>,
}

/// One process of the tree.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Proc {
    pub pid: i64,
    #[serde(alias = "parent")]
    pub ppid: i64,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub execs: Vec<Exec>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub read: Vec<String>,
    pub wrote: Vec<String>,
}

/// One program a process executed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Exec {
    pub argv: Vec<String>,
    #[serde(alias = "exe")]
    pub executable: String,
    pub cwd: String,
    pub sha256: Option<String>,
    pub at_ms: Option<u64>,
}

impl Proc {
    /// The program name: base name of argv[0] (or the executable) of the last exec.
    pub fn program(&self) -> Option<String> {
        let exec = self.execs.last()?;
        let name = exec
            .argv
            .first()
            .filter(|a| !a.is_empty())
            .unwrap_or(&exec.executable);
        Some(name.rsplit('/').next().unwrap_or(name).to_string())
    }
}

/// A process tree arranged for walking: roots and children in order of start.
pub struct Tree<'a> {
    pub procs: &'a [Proc],
    pub roots: Vec<usize>,
    pub children: HashMap<i64, Vec<usize>>,
}

impl<'a> Tree<'a> {
    pub fn new(procs: &'a [Proc]) -> Tree<'a> {
        let pids: HashMap<i64, usize> = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
        let mut roots = Vec::new();
        let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, p) in procs.iter().enumerate() {
            if p.ppid != p.pid && pids.contains_key(&p.ppid) {
                children.entry(p.ppid).or_default().push(i);
            } else {
                roots.push(i);
            }
        }
        let order = |v: &mut Vec<usize>| {
            v.sort_by_key(|&i| (procs[i].start_ms.unwrap_or(0), procs[i].pid));
        };
        order(&mut roots);
        children.values_mut().for_each(order);
        Tree {
            procs,
            roots,
            children,
        }
    }

    /// Depth-first order with depths (a pid cycle cannot loop: each index
    /// is visited once).
    pub fn walk(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.procs.len());
        let mut seen = vec![false; self.procs.len()];
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            out.push((i, depth));
            if let Some(kids) = self.children.get(&self.procs[i].pid) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
        // Processes only reachable through a cycle.
        out.extend(
            seen.iter()
                .enumerate()
                .filter(|(_, seen)| !**seen)
                .map(|(i, _)| (i, 0)),
        );
        out
    }

    /// Each process's chain of program names from the root (`make > cc > as`).
    pub fn chains(&self) -> Vec<String> {
        let mut chains = vec![String::new(); self.procs.len()];
        let mut programs: Vec<String> = vec![String::new(); self.procs.len()];
        let index: HashMap<i64, usize> = self
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pid, i))
            .collect();
        let mut parent_of: Vec<Option<usize>> = vec![None; self.procs.len()];
        for (pid, kids) in &self.children {
            for &k in kids {
                parent_of[k] = index.get(pid).copied();
            }
        }
        for (i, _) in self.walk() {
            let parent = parent_of[i];
            programs[i] = self.procs[i]
                .program()
                .or_else(|| parent.map(|p| programs[p].clone()))
                .unwrap_or_else(|| "?".into());
            chains[i] = match parent {
                Some(p) if !chains[p].is_empty() => format!("{} > {}", chains[p], programs[i]),
                _ => programs[i].clone(),
            };
        }
        chains
    }
}

// ---------------------------------------------------------------------------
// Differences

/// Added, removed and changed entries of two maps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapDiff<V> {
    pub added: Vec<(String, V)>,
    pub removed: Vec<(String, V)>,
    pub changed: Vec<(String, V, V)>,
}

impl<V> MapDiff<V> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares two sorted maps in one merge pass.
pub fn diff_maps<V: Clone + PartialEq>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> MapDiff<V> {
    let mut out = MapDiff {
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
    };
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    loop {
        match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some((ka, va)), None) => {
                out.removed.push(((*ka).clone(), (*va).clone()));
                ia.next();
            }
            (None, Some((kb, vb))) => {
                out.added.push(((*kb).clone(), (*vb).clone()));
                ib.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.removed.push(((*ka).clone(), (*va).clone()));
                    ia.next();
                }
                std::cmp::Ordering::Greater => {
                    out.added.push(((*kb).clone(), (*vb).clone()));
                    ib.next();
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.changed
                            .push(((*ka).clone(), (*va).clone(), (*vb).clone()));
                    }
                    ia.next();
                    ib.next();
                }
            },
        }
    }
    out
}

/// A process as diff reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRef {
    pub pid: i64,
    pub chain: String,
    /// argv of each exec.
    pub argv: Vec<Vec<String>>,
}

/// A matched pair whose execs differ.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcChange {
    pub a: ProcRef,
    pub b: ProcRef,
    pub argv_changed: bool,
    /// Executables whose path or sha256 changed: (exec index, A's, B's).
    pub executables: Vec<(usize, String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcDiff {
    pub appeared: Vec<ProcRef>,
    pub vanished: Vec<ProcRef>,
    pub changed: Vec<ProcChange>,
}

impl ProcDiff {
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty() && self.vanished.is_empty() && self.changed.is_empty()
    }
}

/// Masks file names directly inside temporary directories.
struct TmpMask {
    dirs: Vec<String>,
}

impl TmpMask {
    fn new(traces: [&Trace; 2]) -> TmpMask {
        let mut dirs: Vec<String> = vec!["/tmp/".into(), "/var/tmp/".into()];
        for t in traces {
            if let Some(d) = t.environment.get("TMPDIR").filter(|d| d.starts_with('/')) {
                let d = format!("{}/", d.trim_end_matches('/'));
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        TmpMask { dirs }
    }

    fn arg(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        'outer: while !rest.is_empty() {
            for dir in &self.dirs {
                if let Some(pos) = rest.find(dir.as_str()) {
                    let at_boundary = pos == 0
                        || !rest[..pos]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_');
                    if at_boundary {
                        let after = &rest[pos + dir.len()..];
                        let end = after
                            .find(|c: char| c == '/' || c.is_whitespace() || ",:;=".contains(c))
                            .unwrap_or(after.len());
                        // Only a file directly in the directory.
                        if !after[end..].starts_with('/') {
                            out.push_str(&rest[..pos]);
                            out.push_str(dir);
                            out.push('*');
                            rest = &after[end..];
                            continue 'outer;
                        }
                    }
                }
            }
            out.push_str(rest);
            break;
        }
        out
    }

    fn argv(&self, p: &Proc) -> Vec<Vec<String>> {
        p.execs
            .iter()
            .map(|e| e.argv.iter().map(|a| self.arg(a)).collect())
            .collect()
    }
}

/// Matches the processes of two trees (see the module documentation).
pub fn diff_processes(a: &Trace, b: &Trace) -> ProcDiff {
    let empty = Vec::new();
    let pa = a.process_tree.as_ref().unwrap_or(&empty);
    let pb = b.process_tree.as_ref().unwrap_or(&empty);
    let (ta, tb) = (Tree::new(pa), Tree::new(pb));
    let (ca, cb) = (ta.chains(), tb.chains());
    let mask = TmpMask::new([a, b]);
    let reference = |procs: &[Proc], chains: &[String], i: usize| ProcRef {
        pid: procs[i].pid,
        chain: chains[i].clone(),
        argv: procs[i].execs.iter().map(|e| e.argv.clone()).collect(),
    };
    // Group by chain, in order of start.
    let group = |procs: &[Proc], chains: &[String]| {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut order: Vec<usize> = (0..procs.len()).collect();
        order.sort_by_key(|&i| (procs[i].start_ms.unwrap_or(0), procs[i].pid));
        for i in order {
            groups.entry(chains[i].clone()).or_default().push(i);
        }
        groups
    };
    let (ga, mut gb) = (group(pa, &ca), group(pb, &cb));
    let mut out = ProcDiff::default();
    let executables = |x: &Proc, y: &Proc| -> Vec<(usize, String, String)> {
        let describe = |e: &Exec| match &e.sha256 {
            Some(sha) => format!("{} (sha256 {sha})", e.executable),
            None => e.executable.clone(),
        };
        x.execs
            .iter()
            .zip(&y.execs)
            .enumerate()
            .filter(|(_, (ex, ey))| ex.executable != ey.executable || ex.sha256 != ey.sha256)
            .map(|(n, (ex, ey))| (n, describe(ex), describe(ey)))
            .collect()
    };
    for (chain, list_a) in ga {
        let list_b = gb.remove(&chain).unwrap_or_default();
        let mut by_argv: HashMap<Vec<Vec<String>>, VecDeque<usize>> = HashMap::new();
        for &j in &list_b {
            by_argv.entry(mask.argv(&pb[j])).or_default().push_back(j);
        }
        let mut used_b = vec![false; list_b.len()];
        let pos_b: HashMap<usize, usize> =
            list_b.iter().enumerate().map(|(n, &j)| (j, n)).collect();
        let mut left_a = Vec::new();
        for &i in &list_a {
            match by_argv
                .get_mut(&mask.argv(&pa[i]))
                .and_then(VecDeque::pop_front)
            {
                Some(j) => {
                    used_b[pos_b[&j]] = true;
                    let exes = executables(&pa[i], &pb[j]);
                    if !exes.is_empty() {
                        out.changed.push(ProcChange {
                            a: reference(pa, &ca, i),
                            b: reference(pb, &cb, j),
                            argv_changed: false,
                            executables: exes,
                        });
                    }
                }
                None => left_a.push(i),
            }
        }
        let mut left_b = list_b
            .iter()
            .zip(&used_b)
            .filter(|(_, used)| !**used)
            .map(|(&j, _)| j);
        for i in left_a {
            match left_b.next() {
                Some(j) => out.changed.push(ProcChange {
                    a: reference(pa, &ca, i),
                    b: reference(pb, &cb, j),
                    argv_changed: true,
                    executables: executables(&pa[i], &pb[j]),
                }),
                None => out.vanished.push(reference(pa, &ca, i)),
            }
        }
        out.appeared.extend(left_b.map(|j| reference(pb, &cb, j)));
    }
    for (_, list_b) in gb {
        out.appeared
            .extend(list_b.into_iter().map(|j| reference(pb, &cb, j)));
    }
    // In order of pids (of start, within one recording).
    out.appeared.sort_by_key(|p| p.pid);
    out.vanished.sort_by_key(|p| p.pid);
    out.changed.sort_by_key(|c| c.a.pid);
    out
}

/// The differences between two accounts.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub name: Option<(String, String)>,
    pub command: Option<(Vec<String>, Vec<String>)>,
    pub return_value: Option<(Option<i64>, Option<i64>)>,
    pub materials: MapDiff<DigestSet>,
    pub products: MapDiff<DigestSet>,
    pub stdout_changed: bool,
    pub stderr_changed: bool,
    /// The link's `environment` (of `environment.tracelink`, only what
    /// describes the recording: the trace's name and digest always differ).
    pub link_environment: MapDiff<Value>,
    /// Whether both traces were compared.
    pub traces_compared: bool,
    pub environment: MapDiff<String>,
    /// Starting directory, root, exit, completeness: (what, A, B).
    pub trace_fields: Vec<(String, String, String)>,
    pub processes: ProcDiff,
    /// Why the process trees were not compared (a trace recorded with --no-ptrace has none).
    pub processes_not_compared: Option<String>,
}

impl Diff {
    /// Equal in what the exit status covers: name, command, materials,
    /// products and return-value.
    pub fn equal(&self) -> bool {
        self.name.is_none()
            && self.command.is_none()
            && self.return_value.is_none()
            && self.materials.is_empty()
            && self.products.is_empty()
    }
}

/// The link's environment flattened for comparison (see `Diff::link_environment`).
fn link_environment(link: &Link) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in &link.environment {
        match (k.as_str(), v) {
            ("tracelink", Value::Object(record)) => {
                for (field, value) in record {
                    if field != "trace" {
                        out.insert(format!("tracelink.{field}"), value.clone());
                    }
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Compares two accounts; traces are compared when both are trusted.
pub fn diff(a: &Account, b: &Account) -> Diff {
    let (la, lb) = (&a.link, &b.link);
    let mut out = Diff {
        name: (la.name != lb.name).then(|| (la.name.clone(), lb.name.clone())),
        command: (la.command != lb.command).then(|| (la.command.clone(), lb.command.clone())),
        return_value: (la.byproducts.return_value != lb.byproducts.return_value)
            .then_some((la.byproducts.return_value, lb.byproducts.return_value)),
        materials: diff_maps(&la.materials, &lb.materials),
        products: diff_maps(&la.products, &lb.products),
        stdout_changed: la.byproducts.stdout != lb.byproducts.stdout,
        stderr_changed: la.byproducts.stderr != lb.byproducts.stderr,
        link_environment: diff_maps(&link_environment(la), &link_environment(lb)),
        ..Diff::default()
    };
    if let (Some(ta), Some(tb)) = (a.trace.trace(), b.trace.trace()) {
        out.traces_compared = true;
        out.environment = diff_maps(&ta.environment, &tb.environment);
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| "(none)".into());
        let fields = [
            ("root", show(&ta.root), show(&tb.root)),
            ("cwd", show(&ta.cwd), show(&tb.cwd)),
            ("exit code", num(ta.exit.code), num(tb.exit.code)),
            ("exit signal", num(ta.exit.signal), num(tb.exit.signal)),
            (
                "complete",
                format!("{:?}", ta.complete),
                format!("{:?}", tb.complete),
            ),
        ];
        out.trace_fields = fields
            .into_iter()
            .filter(|(_, x, y)| x != y)
            .map(|(w, x, y)| (w.to_string(), x, y))
            .collect();
        match (&ta.process_tree, &tb.process_tree) {
            (Some(_), Some(_)) => out.processes = diff_processes(ta, tb),
            (None, None) => {
                out.processes_not_compared =
                    Some("neither trace has a process tree (--no-ptrace)".into())
            }
            (None, Some(_)) => {
                out.processes_not_compared =
                    Some("A's trace has no process tree (--no-ptrace)".into())
            }
            (Some(_), None) => {
                out.processes_not_compared =
                    Some("B's trace has no process tree (--no-ptrace)".into())
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i64, ppid: i64, start: u64, argv: &[&str]) -> Proc {
        Proc {
            pid,
            ppid,
            start_ms: Some(start),
            execs: vec![Exec {
                argv: argv.iter().map(|a| a.to_string()).collect(),
                executable: format!("/usr/bin/{}", argv[0]),
                ..Exec::default()
            }],
            ..Proc::default()
        }
    }

    fn trace(procs: Vec<Proc>) -> Trace {
        Trace {
            process_tree: Some(procs),
            ..Trace::default()
        }
    }

    #[test]
    fn chains_follow_parents_and_forks_take_the_parent_name() {
        let mut fork = proc(5, 3, 3, &["x"]);
        fork.execs.clear();
        let procs = vec![
            proc(2, 1, 0, &["make"]),
            proc(3, 2, 1, &["/bin/sh", "-c", "cc"]),
            proc(4, 3, 2, &["cc", "-c", "a.c"]),
            fork,
        ];
        let tree = Tree::new(&procs);
        assert_eq!(
            tree.chains(),
            ["make", "make > sh", "make > sh > cc", "make > sh > sh"]
        );
        let walk: Vec<(i64, usize)> = tree
            .walk()
            .into_iter()
            .map(|(i, d)| (procs[i].pid, d))
            .collect();
        assert_eq!(walk, [(2, 0), (3, 1), (4, 2), (5, 2)]);
    }

    #[test]
    fn temporary_file_names_are_masked() {
        let mask = TmpMask::new([&Trace::default(), &Trace::default()]);
        assert_eq!(mask.arg("/tmp/ccAbC123.s"), "/tmp/*");
        assert_eq!(
            mask.arg("-plugin-opt=-fresolution=/tmp/ccX.res"),
            "-plugin-opt=-fresolution=/tmp/*"
        );
        // Deeper paths and look-alikes stay.
        assert_eq!(mask.arg("/tmp/build/a.o"), "/tmp/build/a.o");
        assert_eq!(mask.arg("/home/tmp/x"), "/home/tmp/x");
    }

    #[test]
    fn processes_pair_by_chain_then_argv() {
        let a = trace(vec![
            proc(2, 1, 0, &["make"]),
            proc(3, 2, 1, &["cc", "-c", "a.c", "-o", "/tmp/cc1.s"]),
            proc(4, 2, 2, &["cc", "-c", "b.c"]),
            proc(5, 2, 3, &["strip", "prog"]),
        ]);
        let b = trace(vec![
            proc(7, 1, 0, &["make"]),
            // Order changed (make -j), temp name changed: still the same.
            proc(8, 7, 1, &["cc", "-c", "b.c"]),
            proc(9, 7, 2, &["cc", "-c", "a.c", "-o", "/tmp/cc2.s"]),
            proc(10, 7, 3, &["cc", "-c", "c.c"]),
            proc(11, 7, 4, &["ar", "rcs", "lib.a"]),
        ]);
        let d = diff_processes(&a, &b);
        assert_eq!(d.changed, []);
        let appeared: Vec<i64> = d.appeared.iter().map(|p| p.pid).collect();
        assert_eq!(appeared, [10, 11]);
        assert_eq!(d.vanished.len(), 1);
        assert_eq!(d.vanished[0].chain, "make > strip");

        // Same chain, other arguments: changed, paired in order of start.
        let c = trace(vec![
            proc(2, 1, 0, &["make"]),
            proc(3, 2, 1, &["cc", "-O2", "-c", "a.c", "-o", "/tmp/cc1.s"]),
            proc(4, 2, 2, &["cc", "-c", "b.c"]),
            proc(5, 2, 3, &["strip", "prog"]),
        ]);
        let d = diff_processes(&a, &c);
        assert!(d.appeared.is_empty() && d.vanished.is_empty());
        assert_eq!(d.changed.len(), 1);
        assert!(d.changed[0].argv_changed);
        assert_eq!(d.changed[0].b.argv[0][1], "-O2");
    }

    #[test]
    fn maps_merge() {
        let a: BTreeMap<String, i32> = [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)].into();
        let b: BTreeMap<String, i32> = [("b".into(), 2), ("c".into(), 4), ("d".into(), 5)].into();
        let d = diff_maps(&a, &b);
        assert_eq!(d.removed, [("a".to_string(), 1)]);
        assert_eq!(d.added, [("d".to_string(), 5)]);
        assert_eq!(d.changed, [("c".to_string(), 3, 4)]);
    }

    #[test]
    fn traces_without_optional_fields_parse() {
        let t = Trace::parse(br#"{"artifacts": {"a": {"read_by": [2], "written_by": [], "product": {"size": 3, "mode": 420}}}, "process_tree": null}"#).unwrap();
        assert_eq!(
            t.artifacts["a"].product,
            Some(FileMeta {
                size: 3,
                mode: Some(420)
            })
        );
        assert!(t.artifacts["a"].material.is_none());
        assert!(t.process_tree.is_none());
        assert_eq!(t.format, 1, "a trace without `format` is format 1");
        assert!(Trace::parse(b"[1]").is_err());
        assert!(Trace::parse(br#"{"environment": 3}"#).is_err());
    }

    #[test]
    fn the_trace_format_is_checked() {
        let t = Trace::parse(br#"{"_type": "tracelink-trace", "format": 1}"#).unwrap();
        assert_eq!(t.format, 1);
        let t = Trace::parse(br#"{"_type": "tracelink-trace", "format": 2}"#).unwrap();
        assert_eq!(t.format, 2, "secrets as markers");
        let t = Trace::parse(
            br#"{"_type": "tracelink-trace", "format": 3, "strings": ["/root"], "trace": {"root": "@0", "cwd": "@0"}}"#,
        )
        .unwrap();
        assert_eq!((t.format, t.root.as_deref()), (1, Some("/root")), "compact");
        assert_eq!(t.raw["cwd"], "/root");
        let t = Trace::parse(
            br#"{"_type": "tracelink-trace", "format": 3, "strings": [], "trace": {"format": 2}}"#,
        )
        .unwrap();
        assert_eq!(t.format, 2, "the format of the document inside");
        let err = Trace::parse(
            br#"{"_type": "tracelink-trace", "format": 3, "strings": [], "trace": {"format": 3}}"#,
        )
        .unwrap_err();
        assert!(err.contains("another compact trace"), "{err}");
        let err = Trace::parse(br#"{"format": 4, "root": "/r"}"#).unwrap_err();
        assert!(
            err.starts_with("trace format 4, which this tracelink does not read"),
            "{err}"
        );
        let err = Trace::parse(br#"{"format": "1"}"#).unwrap_err();
        assert_eq!(err, r#"`format` is "1", not a format number"#);
        let err = Trace::parse(br#"{"_type": "link"}"#).unwrap_err();
        assert_eq!(
            err,
            r#"not a trace: its `_type` is "link", not "tracelink-trace""#
        );
    }

    #[test]
    fn attestations_are_read_as_links_or_statements() {
        use crate::attest::tests::{key, sample_link};
        use crate::keys::PrivateKey;
        let dir = tempfile::tempdir().unwrap();
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let link = sample_link();
        let att = dir.path().join("build.attest-link.json");
        let st = attest::link::statement(&link);
        std::fs::write(&att, attest::sign(&st, &key, &keyid).unwrap()).unwrap();
        let Record::Link(account) = load_record(&att).unwrap() else {
            panic!("a link attestation is a link")
        };
        assert!(account.attestation);
        assert_eq!(account.form, Form::Dsse);
        assert_eq!(account.link, link);
        assert_eq!(account.signatures, vec![keyid.clone()]);
        assert_eq!(account.mode, Mode::Precise);
        // The trace it names is looked for beside it (not there).
        assert!(
            matches!(account.trace, TraceState::Missing { .. }),
            "{:?}",
            account.trace
        );
        let check = account.check_key(Path::new("k.pub"), &key.public());
        assert!(check.verified, "{check:?}");
        let other = PrivateKey::from_seed(&[9; 32]).public();
        let check = account.check_key(Path::new("o.pub"), &other);
        assert!(!check.verified);
        assert!(
            check
                .reason
                .as_deref()
                .unwrap()
                .starts_with("no signature by key"),
            "{check:?}"
        );

        // Another predicate: a statement, not a link.
        let mut other_st = st.clone();
        other_st.predicate_type = attest::VSA_PREDICATE.into();
        let vsa = dir.path().join("x.vsa.json");
        std::fs::write(&vsa, attest::sign(&other_st, &key, &keyid).unwrap()).unwrap();
        let Record::Statement(record) = load_record(&vsa).unwrap() else {
            panic!("a VSA is not a link")
        };
        assert_eq!(record.kind(), None);
        assert!(record.check_key(Path::new("k.pub"), &key.public()).verified);
        let err = Account::load(&vsa).unwrap_err().to_string();
        assert!(err.contains("not a link attestation"), "{err}");
        assert!(err.contains(attest::VSA_PREDICATE), "{err}");
    }
}
