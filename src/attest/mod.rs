//! in-toto Attestation Framework statements (Statement v1 in a DSSE
//! envelope) for a recorded step: the link predicate, SLSA Provenance v1,
//! the runtime trace, and the SLSA Verification Summary `verify --vsa`
//! writes; and the reader that checks an envelope's signature and turns a
//! link attestation back into a [`Link`].
//!
//! Field names and casing follow the JSON mapping of the in-toto attestation
//! protos (lowerCamelCase: `predicateType`, `resolvedDependencies`, ...).
//! What the statements mean, the buildType and the file names are described
//! in `docs/attestations.md`.
//!
//! This module knows the link model, keys and the trace's JSON; it knows
//! nothing of FUSE, processes or the command line.
//!
//! Wiring (`tracelink run --attest`), before the link is handed to the
//! signer:
//!
//! ```text
//! let step = attest::StepRecord { link: &link, mode: attest::Mode::Precise,
//!     excludes: &patterns, started, finished, working_directory: None,
//!     trace: Some(attest::TraceFile { name: &trace_name, sha256: &trace_sha256,
//!                                     document: &recording.trace }),
//!     redaction: None };
//! match attest::envelopes(&step, &key, &keyid)? {
//!     attest::Envelopes::NoSubject => eprintln!("tracelink: warning: ... no products ..."),
//!     attest::Envelopes::Files(files) => for (name, bytes) in files {
//!         out_dir.write_atomically(&name, &bytes)?;
//!     },
//! }
//! ```
//!
//! Reading: [`read_link_attestation`] (verify), [`Envelope::parse`] and
//! [`Envelope::verifies`] (show), [`Envelope::sniff`] (tell a statement from
//! a DSSE link); VSA: [`vsa::last_steps`], [`vsa::subject_from_products`],
//! [`vsa::statement`], [`sign`].

pub mod link;
pub mod provenance;
pub mod runtime_trace;
pub mod vsa;

use crate::keys::{PrivateKey, PublicKey};
use crate::link::{DigestSet, Link, dsse, pyjson};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `_type` of a Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payloadType of an in-toto statement.
pub const PAYLOAD_TYPE: &str = dsse::PAYLOAD_TYPE;
pub const LINK_PREDICATE: &str = "https://in-toto.io/attestation/link/v0.3";
pub const PROVENANCE_PREDICATE: &str = "https://slsa.dev/provenance/v1";
pub const RUNTIME_TRACE_PREDICATE: &str = "https://in-toto.io/attestation/runtime-trace/v0.1";
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";

/// Where tracelink's own URIs live. A placeholder (the `.example` top-level
/// domain is reserved, RFC 2606) until the project has a home: every URI
/// below is built from it, and docs/attestations.md lists them.
pub const URI_BASE: &str = "https://tracelink.example";

/// The buildType of a precise recording (provenance) and the
/// monitoredProcess.type of its runtime trace.
pub fn build_type(mode: Mode) -> String {
    format!("{URI_BASE}/buildtypes/{}/v1", mode.as_str())
}

/// runDetails.builder.id: tracelink recording a step on a functionary's
/// machine (the functionary's key signs).
pub fn builder_id() -> String {
    format!("{URI_BASE}/builder/v1")
}

/// The runtime trace's monitor.type: tracelink's FUSE monitor with the
/// ptrace process tree.
pub fn monitor_type() -> String {
    format!("{URI_BASE}/monitor/fuse-ptrace/v1")
}

/// The VSA's verifier.id.
pub fn verifier_id() -> String {
    format!("{URI_BASE}/verifier/v1")
}

/// How the step was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run inside the monitored mount and process tree (with a trace).
    Precise,
    /// Materials and products hashed before and after (`-m`/`-p`).
    Snapshot,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Precise => "precise",
            Mode::Snapshot => "snapshot",
        }
    }
}

/// Which statement an envelope file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Link,
    Provenance,
    RuntimeTrace,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Link, Kind::Provenance, Kind::RuntimeTrace];

    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Link => LINK_PREDICATE,
            Kind::Provenance => PROVENANCE_PREDICATE,
            Kind::RuntimeTrace => RUNTIME_TRACE_PREDICATE,
        }
    }

    /// What follows the link's file name.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Link => ".attest-link.json",
            Kind::Provenance => ".attest-provenance.json",
            Kind::RuntimeTrace => ".attest-runtime-trace.json",
        }
    }
}

/// `<step>.<keyid8>.link.attest-<kind>.json` (still matched by the default
/// exclude `*.link*`).
pub fn file_name(step: &str, keyid: &str, kind: Kind) -> String {
    format!("{}{}", crate::link::file_name(step, keyid), kind.suffix())
}

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("{path}: cannot read: {problem}")]
    Read { path: PathBuf, problem: String },
    #[error("{path}: {field}: {reason}")]
    Malformed {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{path}: payloadType is {found:?}, not {PAYLOAD_TYPE:?}")]
    PayloadType { path: PathBuf, found: String },
    #[error("{path}: no signature verifies with the given keys (keyids in the file: {keyids})")]
    BadSignature { path: PathBuf, keyids: String },
    #[error("{path}: predicateType is {found:?}, not {wanted:?}")]
    WrongPredicate {
        path: PathBuf,
        found: String,
        wanted: &'static str,
    },
    #[error("cannot build the {what}: {reason}")]
    Build { what: &'static str, reason: String },
    #[error(
        "the signature just made on the {0} statement does not verify against the signing key's public key; nothing was written"
    )]
    SelfCheck(String),
}

/// A field of a document that is not what it must be (the reader adds the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn at(self, path: &Path) -> AttestError {
        AttestError::Malformed {
            path: path.to_path_buf(),
            field: self.field,
            reason: self.reason,
        }
    }
}

/// An in-toto ResourceDescriptor (the fields tracelink uses; `content` is
/// never written and refused when read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceDescriptor {
    pub name: Option<String>,
    pub uri: Option<String>,
    pub digest: DigestSet,
    pub download_location: Option<String>,
    pub media_type: Option<String>,
    pub annotations: Map<String, Value>,
}

impl ResourceDescriptor {
    /// A named artifact with its digests.
    pub fn artifact(name: &str, digest: &DigestSet) -> ResourceDescriptor {
        ResourceDescriptor {
            name: Some(name.to_string()),
            digest: digest.clone(),
            ..ResourceDescriptor::default()
        }
    }

    /// The JSON object (empty fields left out, as the proto JSON mapping does).
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        if let Some(name) = &self.name {
            obj.insert("name".into(), json!(name));
        }
        if let Some(uri) = &self.uri {
            obj.insert("uri".into(), json!(uri));
        }
        if !self.digest.is_empty() {
            obj.insert("digest".into(), json!(self.digest));
        }
        if let Some(loc) = &self.download_location {
            obj.insert("downloadLocation".into(), json!(loc));
        }
        if let Some(media) = &self.media_type {
            obj.insert("mediaType".into(), json!(media));
        }
        if !self.annotations.is_empty() {
            obj.insert(
                "annotations".into(),
                Value::Object(self.annotations.clone()),
            );
        }
        Value::Object(obj)
    }

    /// Reads a ResourceDescriptor strictly: known fields only, each of its
    /// type, at least one of name, uri and digest.
    pub fn from_value(value: &Value, field: &str) -> Result<ResourceDescriptor, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new(field, "not an object"))?;
        let mut rd = ResourceDescriptor::default();
        for (key, v) in obj {
            let here = format!("{field}.{key}");
            let text = || {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| FieldError::new(&here, "not a string"))
            };
            match key.as_str() {
                "name" => rd.name = Some(text()?),
                "uri" => rd.uri = Some(text()?),
                "downloadLocation" => rd.download_location = Some(text()?),
                "mediaType" => rd.media_type = Some(text()?),
                "digest" => rd.digest = digest_set(v, &here)?,
                "annotations" => {
                    rd.annotations = v
                        .as_object()
                        .cloned()
                        .ok_or_else(|| FieldError::new(&here, "not an object"))?
                }
                "content" => {
                    return Err(FieldError::new(
                        &here,
                        "inline content is not accepted in tracelink's statements",
                    ));
                }
                _ => return Err(FieldError::new(&here, "unknown field")),
            }
        }
        if rd.name.is_none() && rd.uri.is_none() && rd.digest.is_empty() {
            return Err(FieldError::new(
                field,
                "a ResourceDescriptor needs at least one of name, uri and digest",
            ));
        }
        Ok(rd)
    }
}

fn digest_set(value: &Value, field: &str) -> Result<DigestSet, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new(field, "not an object of digests"))?;
    obj.iter()
        .map(|(alg, hex)| match hex.as_str() {
            Some(hex) if !hex.is_empty() => Ok((alg.clone(), hex.to_string())),
            _ => Err(FieldError::new(
                format!("{field}.{alg}"),
                "not a non-empty string",
            )),
        })
        .collect()
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub subject: Vec<ResourceDescriptor>,
    pub predicate_type: String,
    pub predicate: Map<String, Value>,
}

impl Statement {
    pub fn to_value(&self) -> Value {
        json!({
            "_type": STATEMENT_TYPE,
            "subject": self.subject.iter().map(ResourceDescriptor::to_value).collect::<Vec<_>>(),
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        })
    }

    /// Reads a Statement v1 strictly: `_type`, a non-empty subject whose
    /// entries have digests and unique names, `predicateType`, an object
    /// `predicate`, no other field.
    pub fn from_value(value: &Value) -> Result<Statement, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("statement", "not a JSON object"))?;
        if let Some(key) = obj
            .keys()
            .find(|k| !["_type", "subject", "predicateType", "predicate"].contains(&k.as_str()))
        {
            return Err(FieldError::new(key.clone(), "unknown field"));
        }
        match obj.get("_type").and_then(Value::as_str) {
            Some(STATEMENT_TYPE) => {}
            Some(other) => {
                return Err(FieldError::new(
                    "_type",
                    format!("is {other:?}, not {STATEMENT_TYPE:?}"),
                ));
            }
            None => return Err(FieldError::new("_type", "missing or not a string")),
        }
        let subjects = obj
            .get("subject")
            .and_then(Value::as_array)
            .ok_or_else(|| FieldError::new("subject", "missing or not a list"))?;
        if subjects.is_empty() {
            return Err(FieldError::new(
                "subject",
                "empty (Statement v1 requires one)",
            ));
        }
        let mut subject = Vec::with_capacity(subjects.len());
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in subjects.iter().enumerate() {
            let field = format!("subject[{i}]");
            let rd = ResourceDescriptor::from_value(s, &field)?;
            if rd.digest.is_empty() {
                return Err(FieldError::new(&field, "no digest"));
            }
            if let Some(name) = &rd.name
                && !names.insert(name.clone())
            {
                return Err(FieldError::new(
                    &field,
                    format!("name {name:?} given twice"),
                ));
            }
            subject.push(rd);
        }
        let predicate_type = obj
            .get("predicateType")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| FieldError::new("predicateType", "missing or not a string"))?
            .to_string();
        let predicate = obj
            .get("predicate")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| FieldError::new("predicate", "missing or not an object"))?;
        Ok(Statement {
            subject,
            predicate_type,
            predicate,
        })
    }
}

/// The subjects of a step's statements: its products, with every digest
/// algorithm recorded.
pub fn subjects(link: &Link) -> Vec<ResourceDescriptor> {
    link.products
        .iter()
        .map(|(name, digest)| ResourceDescriptor::artifact(name, digest))
        .collect()
}

/// The runtime trace file written beside the link.
#[derive(Debug, Clone, Copy)]
pub struct TraceFile<'a> {
    /// Its file name (`<link>.trace.json.gz`).
    pub name: &'a str,
    /// sha256 of the file as written (the compressed bytes).
    pub sha256: &'a str,
    /// The trace document (as `record::precise` returns it, redacted).
    pub document: &'a Value,
}

/// What the statements of one recorded step are made from.
#[derive(Debug, Clone, Copy)]
pub struct StepRecord<'a> {
    /// The link as signed (its products are the subjects).
    pub link: &'a Link,
    pub mode: Mode,
    /// The exclude patterns in force.
    pub excludes: &'a [String],
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The directory the command started in, relative to the root (`.`):
    /// None takes it from the trace (`root`, `cwd`), or `.` without one.
    pub working_directory: Option<&'a str>,
    /// Precise mode: the trace. Snapshot mode: None.
    pub trace: Option<TraceFile<'a>>,
    /// The redaction the trace was made with, when the caller has it; the
    /// runtime-trace predicate is scrubbed with it and, always, with the
    /// shape rules (tokens, JWTs, PEM keys, URL passwords).
    pub redaction: Option<&'a crate::secrets::Redaction>,
}

impl StepRecord<'_> {
    /// The working directory relative to the root.
    pub fn working_directory(&self) -> String {
        if let Some(dir) = self.working_directory {
            return dir.to_string();
        }
        let Some(trace) = self.trace else {
            return ".".into();
        };
        let (Some(root), Some(cwd)) = (
            trace.document.get("root").and_then(Value::as_str),
            trace.document.get("cwd").and_then(Value::as_str),
        ) else {
            return ".".into();
        };
        relative_working_directory(Path::new(root), Path::new(cwd))
    }
}

/// `cwd` relative to `root` (`.` when it is the root); a directory outside
/// the root is given as it is (absolute).
pub fn relative_working_directory(root: &Path, cwd: &Path) -> String {
    match cwd.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => cwd.to_string_lossy().into_owned(),
    }
}

/// The statements of a step, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Statements {
    /// The step has no products: Statement v1 requires a subject, so no
    /// statement is made (the caller warns).
    NoSubject,
    /// Link and provenance, and the runtime trace in precise mode.
    Made(Vec<(Kind, Statement)>),
}

/// Signed envelopes of a step, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelopes {
    NoSubject,
    /// (file name, envelope bytes), one per statement.
    Files(Vec<(String, Vec<u8>)>),
}

/// The statements of a recorded step.
pub fn statements(step: &StepRecord) -> Result<Statements, AttestError> {
    if step.link.products.is_empty() {
        return Ok(Statements::NoSubject);
    }
    let mut out = vec![
        (Kind::Link, link::statement(step.link)),
        (Kind::Provenance, provenance::statement(step)?),
    ];
    if step.mode == Mode::Precise && step.trace.is_some() {
        out.push((Kind::RuntimeTrace, runtime_trace::statement(step)?));
    }
    Ok(Statements::Made(out))
}

/// The statements of a recorded step, signed with `key` (the link's key,
/// `keyid` as the link's) and named for files beside the link: the same
/// statements as [`statements`], in its order. The runtime trace's (the
/// largest by far: the whole process tree, scrubbed again for secrets) is
/// made and signed on a thread of its own meanwhile; its thread is joined
/// before any error of the others is returned.
pub fn envelopes(
    step: &StepRecord,
    key: &PrivateKey,
    keyid: &str,
) -> Result<Envelopes, AttestError> {
    if step.link.products.is_empty() {
        return Ok(Envelopes::NoSubject);
    }
    let name = |kind| file_name(&step.link.name, keyid, kind);
    std::thread::scope(|scope| {
        let runtime_trace = (step.mode == Mode::Precise && step.trace.is_some()).then(|| {
            scope.spawn(|| runtime_trace::statement(step).and_then(|st| sign(&st, key, keyid)))
        });
        let link_and_provenance = (|| {
            Ok(vec![
                (
                    name(Kind::Link),
                    sign(&link::statement(step.link), key, keyid)?,
                ),
                (
                    name(Kind::Provenance),
                    sign(&provenance::statement(step)?, key, keyid)?,
                ),
            ])
        })();
        let runtime_trace = runtime_trace.map(|thread| {
            thread.join().map_err(|_| AttestError::Build {
                what: "runtime trace statement",
                reason: "the thread making it panicked".into(),
            })
        });
        let mut files = link_and_provenance?;
        if let Some(envelope) = runtime_trace {
            files.push((name(Kind::RuntimeTrace), envelope??));
        }
        Ok(Envelopes::Files(files))
    })
}

/// The DSSE envelope of `statement` signed by `key` (as `keyid`), laid out
/// as the link's DSSE envelope is. The envelope is read back and its
/// signature checked before the bytes are returned.
pub fn sign(statement: &Statement, key: &PrivateKey, keyid: &str) -> Result<Vec<u8>, AttestError> {
    let payload = pyjson::dumps(&statement.to_value(), None).into_bytes();
    let pae = dsse::pae(PAYLOAD_TYPE, &payload);
    let sig = key.sign(&pae);
    let doc = json!({
        "payload": BASE64.encode(&payload),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": BASE64.encode(sig)}],
    });
    let bytes = pyjson::dumps(&doc, None).into_bytes();
    let public = key.public();
    match parse_envelope(Path::new("<new statement>"), &bytes, &[(keyid, &public)]) {
        Ok(v) if v.payload == payload => Ok(bytes),
        _ => Err(AttestError::SelfCheck(statement.predicate_type.clone())),
    }
}

/// An envelope whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub statement: Statement,
    /// The keyid whose signature verified.
    pub keyid: String,
    /// The payload bytes the signature covers.
    pub payload: Vec<u8>,
}

/// A DSSE envelope holding a Statement, parsed strictly; its signatures not
/// yet checked (`tracelink show` lists them with per-key verdicts).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub statement: Statement,
    /// The payload bytes the signatures cover (through the PAE).
    pub payload: Vec<u8>,
    /// (keyid, decoded signature; None when `sig` is not base64), in order.
    pub signatures: Vec<(String, Option<Vec<u8>>)>,
}

impl Envelope {
    /// Whether `bytes` look like a DSSE envelope holding an in-toto
    /// Statement (rather than a DSSE link, which has the same payloadType):
    /// for readers that take both. Nothing is checked beyond that.
    pub fn sniff(bytes: &[u8]) -> bool {
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(bytes) else {
            return false;
        };
        doc.get("payload")
            .and_then(Value::as_str)
            .and_then(|p| BASE64.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .is_some_and(|v| v.get("_type").and_then(Value::as_str) == Some(STATEMENT_TYPE))
    }

    /// Parses an envelope strictly: exactly `payload`, `payloadType`
    /// (in-toto's) and `signatures` (objects with string `keyid` and `sig`),
    /// the payload a Statement v1 ([`Statement::from_value`]). `path` names
    /// the file in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Envelope, AttestError> {
        let bad = |field: &str, reason: String| AttestError::Malformed {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| bad("envelope", format!("not JSON: {e}")))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("envelope", "not a JSON object".into()))?;
        if let Some(key) = obj
            .keys()
            .find(|k| !["payload", "payloadType", "signatures"].contains(&k.as_str()))
        {
            return Err(bad(key, "unknown field of a DSSE envelope".into()));
        }
        let payload_type = obj
            .get("payloadType")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("payloadType", "missing or not a string".into()))?;
        if payload_type != PAYLOAD_TYPE {
            return Err(AttestError::PayloadType {
                path: path.to_path_buf(),
                found: payload_type.to_string(),
            });
        }
        let payload = obj
            .get("payload")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("payload", "missing or not a string".into()))
            .and_then(|s| {
                BASE64
                    .decode(s)
                    .map_err(|e| bad("payload", format!("not base64: {e}")))
            })?;
        let sigs = obj
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("signatures", "missing or not a list".into()))?;
        let mut signatures = Vec::with_capacity(sigs.len());
        for (i, sig) in sigs.iter().enumerate() {
            let field = format!("signatures[{i}]");
            let sig = sig
                .as_object()
                .ok_or_else(|| bad(&field, "not an object".into()))?;
            let keyid = sig
                .get("keyid")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{field}.keyid"), "missing or not a string".into()))?;
            let raw = sig
                .get("sig")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{field}.sig"), "missing or not a string".into()))?;
            signatures.push((keyid.to_string(), BASE64.decode(raw).ok()));
        }
        let value: Value = serde_json::from_slice(&payload)
            .map_err(|e| bad("payload", format!("not JSON: {e}")))?;
        let statement = Statement::from_value(&value).map_err(|e| e.at(path))?;
        Ok(Envelope {
            statement,
            payload,
            signatures,
        })
    }

    /// Whether a signature carrying `keyid` verifies with `key`.
    pub fn verifies(&self, keyid: &str, key: &PublicKey) -> bool {
        let pae = dsse::pae(PAYLOAD_TYPE, &self.payload);
        self.signatures
            .iter()
            .any(|(id, sig)| id == keyid && sig.as_ref().is_some_and(|sig| key.verify(&pae, sig)))
    }

    /// The link this envelope's link attestation stands for (signatures not
    /// checked: see [`Envelope::verifies`]); `path` names the file in errors.
    pub fn link(&self, path: &Path) -> Result<Link, AttestError> {
        statement_link(path, &self.statement)
    }

    /// The first of `keys` (keyid, public key) whose signature verifies.
    pub fn verified_by(&self, keys: &[(&str, &PublicKey)]) -> Option<String> {
        keys.iter()
            .find(|(keyid, key)| self.verifies(keyid, key))
            .map(|(keyid, _)| keyid.to_string())
    }
}

/// Parses a DSSE envelope strictly ([`Envelope::parse`]) and checks that one
/// of `keys` (keyid, public key) signed it. `path` names the file in errors.
pub fn parse_envelope(
    path: &Path,
    bytes: &[u8],
    keys: &[(&str, &PublicKey)],
) -> Result<Verified, AttestError> {
    let envelope = Envelope::parse(path, bytes)?;
    let Some(keyid) = envelope.verified_by(keys) else {
        let seen: Vec<&str> = envelope
            .signatures
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        return Err(AttestError::BadSignature {
            path: path.to_path_buf(),
            keyids: if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            },
        });
    };
    Ok(Verified {
        statement: envelope.statement,
        keyid,
        payload: envelope.payload,
    })
}

/// Reads an envelope file (a regular file, size-bounded as link files are)
/// and verifies it ([`parse_envelope`]).
pub fn read_envelope(path: &Path, keys: &[(&str, &PublicKey)]) -> Result<Verified, AttestError> {
    let bytes = crate::untrusted::read(path, crate::untrusted::METADATA).map_err(|e| {
        AttestError::Read {
            path: path.to_path_buf(),
            problem: e.problem(),
        }
    })?;
    parse_envelope(path, &bytes, keys)
}

/// Reads a link attestation file, verifies its signature, and converts it
/// into the classic link model. Returns the link and the keyid that signed.
pub fn read_link_attestation(
    path: &Path,
    keys: &[(&str, &PublicKey)],
) -> Result<(Link, String), AttestError> {
    let verified = read_envelope(path, keys)?;
    let link = statement_link(path, &verified.statement)?;
    Ok((link, verified.keyid))
}

/// The link a link attestation's statement stands for; `path` names the
/// file in errors.
fn statement_link(path: &Path, statement: &Statement) -> Result<Link, AttestError> {
    link::to_link(statement).map_err(|e| match e {
        link::ToLinkError::NotLink(found) => AttestError::WrongPredicate {
            path: path.to_path_buf(),
            found,
            wanted: LINK_PREDICATE,
        },
        link::ToLinkError::Field(f) => f.at(path),
    })
}

/// `t` as RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`, or with milliseconds when
/// it has a fraction of a second).
pub fn rfc3339(t: SystemTime) -> String {
    let (secs, millis) = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(e) => (-(e.duration().as_secs_f64().ceil() as i64), 0),
    };
    let base = crate::verify::layout::format_unix(secs);
    if millis == 0 {
        base
    } else {
        format!("{}.{millis:03}Z", &base[..base.len() - 1])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::KeyIdFormat;
    use crate::link::{ArtifactMap, Byproducts};
    use std::time::Duration;

    pub fn key() -> PrivateKey {
        PrivateKey::from_seed(&[7; 32])
    }

    pub fn digest(hex: &str) -> DigestSet {
        DigestSet::from([("sha256".to_string(), hex.repeat(64 / hex.len()))])
    }

    pub fn sample_link() -> Link {
        let mut environment = Map::new();
        environment.insert(
            "tracelink".into(),
            json!({"version": "0.1.0", "mode": "precise", "complete": true,
                   "trace": {"name": "build.0123abcd.link.trace.json.gz", "sha256": "ab".repeat(32)}}),
        );
        Link {
            name: "build".into(),
            command: vec!["make".into(), "-j2".into()],
            materials: ArtifactMap::from([
                ("Makefile".into(), digest("a1")),
                ("src/main.c".into(), digest("b2")),
            ]),
            products: ArtifactMap::from([
                ("main.o".into(), digest("c3")),
                (
                    "prog".into(),
                    DigestSet::from([
                        ("sha256".to_string(), "d4".repeat(32)),
                        ("sha512".to_string(), "e5".repeat(64)),
                    ]),
                ),
            ]),
            byproducts: Byproducts {
                return_value: Some(0),
                stdout: Some("cc -c src/main.c\n".into()),
                stderr: Some(String::new()),
            },
            environment,
        }
    }

    pub fn sample_trace() -> Value {
        json!({
            "_type": "tracelink-trace",
            "format": 2,
            "root": "/srv/project",
            "cwd": "/srv/project/sub",
            "command": ["make", "-j2", "TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
            "ptrace": true,
            "complete": true,
            "redacted": ["GITHUB_TOKEN"],
            "artifacts": {
                "Makefile": {"read_by": [2], "written_by": [], "material": {"size": 10, "mode": 420}},
                "src/main.c": {"read_by": [3], "written_by": [], "material": {"size": 20, "mode": 420}},
                "main.o": {"read_by": [4], "written_by": [3], "product": {"size": 30, "mode": 420}},
                "prog": {"read_by": [], "written_by": [4], "product": {"size": 40, "mode": 493}},
            },
            "process_tree": [
                {"pid": 2, "ppid": 1, "start_ms": 0, "end_ms": 90, "exit_code": 0,
                 "execs": [{"argv": ["make", "-j2"], "executable": "/usr/bin/make", "cwd": "/srv/project/sub", "sha256": "11".repeat(32), "at_ms": 0}],
                 "read": ["Makefile"], "wrote": []},
                {"pid": 3, "ppid": 2, "start_ms": 5, "end_ms": 50, "exit_code": 0,
                 "execs": [
                    {"argv": ["sh", "-c", "cc -c src/main.c"], "executable": "/usr/bin/dash", "cwd": "/srv/project/sub", "sha256": "22".repeat(32), "at_ms": 5},
                    {"argv": ["cc", "-c", "src/main.c"], "executable": "/usr/bin/gcc-12", "cwd": "/srv/project/sub", "sha256": "33".repeat(32), "at_ms": 6}
                 ],
                 "read": ["src/main.c"], "wrote": ["main.o"]},
                {"pid": 4, "ppid": 2, "start_ms": 55, "end_ms": 80, "exit_code": 0,
                 "execs": [
                    {"argv": ["cc", "-o", "prog", "main.o"], "executable": "/usr/bin/gcc-12", "cwd": "/srv/project/sub", "sha256": "33".repeat(32), "at_ms": 55},
                    {"argv": ["./tool"], "executable": "/srv/project/tool", "cwd": "/srv/project/sub", "at_ms": 70}
                 ],
                 "read": ["main.o"], "wrote": ["prog"]}
            ]
        })
    }

    pub fn step<'a>(link: &'a Link, trace: &'a Value, excludes: &'a [String]) -> StepRecord<'a> {
        StepRecord {
            link,
            mode: Mode::Precise,
            excludes,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
            finished: SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_012_345),
            working_directory: None,
            trace: Some(TraceFile {
                name: "build.0123abcd.link.trace.json.gz",
                sha256: "ab".repeat(32).leak(),
                document: trace,
            }),
            redaction: None,
        }
    }

    #[test]
    fn file_names_are_covered_by_the_default_exclude() {
        let ex = crate::exclude::ExcludeSet::defaults();
        let keyid = "0123abcd".repeat(8);
        for kind in Kind::ALL {
            let name = file_name("build", &keyid, kind);
            assert!(name.starts_with("build.0123abcd.link.attest-"), "{name}");
            assert!(ex.is_excluded(&name), "{name}");
        }
        assert_eq!(
            file_name("build", &keyid, Kind::RuntimeTrace),
            "build.0123abcd.link.attest-runtime-trace.json"
        );
    }

    #[test]
    fn no_products_no_statements() {
        let mut link = sample_link();
        link.products.clear();
        let trace = sample_trace();
        let excludes = vec![];
        let step = step(&link, &trace, &excludes);
        assert_eq!(statements(&step).unwrap(), Statements::NoSubject);
        let key = key();
        assert_eq!(
            envelopes(&step, &key, &key.keyid(KeyIdFormat::Python)).unwrap(),
            Envelopes::NoSubject
        );
    }

    /// The thread making the runtime trace's envelope changes nothing:
    /// `envelopes` gives the statements of `statements`, in its order, each
    /// signed (ed25519 signatures are deterministic), byte for byte.
    #[test]
    fn envelopes_are_the_statements_signed_in_order() {
        let link = sample_link();
        let trace = sample_trace();
        let excludes = vec!["*.link*".to_string()];
        let precise = step(&link, &trace, &excludes);
        let snapshot = StepRecord {
            mode: Mode::Snapshot,
            trace: None,
            ..precise
        };
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        for (step, count) in [(&precise, 3), (&snapshot, 2)] {
            let Statements::Made(list) = statements(step).unwrap() else {
                panic!("no statements")
            };
            let signed: Vec<(String, Vec<u8>)> = list
                .iter()
                .map(|(kind, st)| {
                    (
                        file_name(&link.name, &keyid, *kind),
                        sign(st, &key, &keyid).unwrap(),
                    )
                })
                .collect();
            assert_eq!(signed.len(), count);
            assert_eq!(
                envelopes(step, &key, &keyid).unwrap(),
                Envelopes::Files(signed)
            );
        }
    }

    #[test]
    fn every_statement_has_the_products_as_subject_and_verifies() {
        let link = sample_link();
        let trace = sample_trace();
        let excludes = vec!["*.link*".to_string()];
        let step = step(&link, &trace, &excludes);
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let Envelopes::Files(files) = envelopes(&step, &key, &keyid).unwrap() else {
            panic!("no envelopes")
        };
        assert_eq!(files.len(), 3);
        let public = key.public();
        for (name, bytes) in &files {
            let v = parse_envelope(Path::new(name), bytes, &[(&keyid, &public)]).unwrap();
            assert_eq!(v.keyid, keyid);
            assert_eq!(v.statement.subject, subjects(&link), "{name}");
            let names: Vec<_> = v
                .statement
                .subject
                .iter()
                .map(|s| s.name.clone().unwrap())
                .collect();
            assert_eq!(names, ["main.o", "prog"]);
            assert_eq!(
                v.statement.subject[1].digest.len(),
                2,
                "every algorithm recorded"
            );
        }
        // Snapshot mode: no runtime trace.
        let snap = StepRecord {
            mode: Mode::Snapshot,
            trace: None,
            ..step
        };
        let Statements::Made(list) = statements(&snap).unwrap() else {
            panic!()
        };
        let kinds: Vec<Kind> = list.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [Kind::Link, Kind::Provenance]);
    }

    #[test]
    fn reader_rejects_bad_envelopes_naming_file_and_field() {
        let link = sample_link();
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let public = key.public();
        let keys = [(keyid.as_str(), &public)];
        let path = Path::new("x.attest-link.json");
        let st = link::statement(&link);
        let good = sign(&st, &key, &keyid).unwrap();
        // Wrong payloadType.
        let mut doc: Value = serde_json::from_slice(&good).unwrap();
        doc["payloadType"] = json!("application/json");
        let err = parse_envelope(path, doc.to_string().as_bytes(), &keys).unwrap_err();
        assert!(matches!(err, AttestError::PayloadType { .. }), "{err}");
        assert!(err.to_string().starts_with("x.attest-link.json: "), "{err}");
        // Another key.
        let other = PrivateKey::from_seed(&[9; 32]);
        let err = parse_envelope(path, &good, &[(keyid.as_str(), &other.public())]).unwrap_err();
        assert!(matches!(err, AttestError::BadSignature { .. }), "{err}");
        // Signed, but `_type` wrong / unknown field / subject without digest.
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: [(&str, Edit); 4] = [
            (
                "_type",
                Box::new(|v| v["_type"] = json!("https://in-toto.io/Statement/v0.1")),
            ),
            ("extra", Box::new(|v| v["extra"] = json!(1))),
            (
                "subject[0]",
                Box::new(|v| v["subject"][0] = json!({"name": "a"})),
            ),
            (
                "subject[1].digest.sha256",
                Box::new(|v| v["subject"][1]["digest"]["sha256"] = json!(5)),
            ),
        ];
        for (field, edit) in cases {
            let mut v = st.to_value();
            edit(&mut v);
            let payload = serde_json::to_vec(&v).unwrap();
            let sig = key.sign(&dsse::pae(PAYLOAD_TYPE, &payload));
            let env = json!({"payload": BASE64.encode(&payload), "payloadType": PAYLOAD_TYPE,
                             "signatures": [{"keyid": keyid, "sig": BASE64.encode(sig)}]});
            let err = parse_envelope(path, env.to_string().as_bytes(), &keys).unwrap_err();
            match &err {
                AttestError::Malformed {
                    path: p, field: f, ..
                } => {
                    assert_eq!(p, path);
                    assert_eq!(f, field, "{err}");
                }
                other => panic!("{field}: {other}"),
            }
        }
    }

    #[test]
    fn sniff_tells_statements_from_dsse_links() {
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let link = sample_link();
        let statement = sign(&link::statement(&link), &key, &keyid).unwrap();
        assert!(Envelope::sniff(&statement));
        let dsse_link =
            crate::link::sign(link.clone(), &key, &keyid, crate::link::Wrapper::Dsse).unwrap();
        assert!(!Envelope::sniff(&dsse_link));
        let classic = crate::link::sign(link, &key, &keyid, crate::link::Wrapper::Classic).unwrap();
        assert!(!Envelope::sniff(&classic));
        let env = Envelope::parse(Path::new("a"), &statement).unwrap();
        assert_eq!(env.signatures.len(), 1);
        assert!(env.verifies(&keyid, &key.public()));
        assert!(!env.verifies("other", &key.public()));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000)),
            "2025-12-06T05:46:40Z"
        );
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_012_345)),
            "2025-12-06T05:46:52.345Z"
        );
    }

    #[test]
    fn working_directory_is_relative_to_the_root() {
        assert_eq!(
            relative_working_directory(Path::new("/r"), Path::new("/r")),
            "."
        );
        assert_eq!(
            relative_working_directory(Path::new("/r"), Path::new("/r/a/b")),
            "a/b"
        );
        let link = sample_link();
        let trace = sample_trace();
        let ex = vec![];
        assert_eq!(step(&link, &trace, &ex).working_directory(), "sub");
    }
}
