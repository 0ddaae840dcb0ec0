//! in-toto link metadata: the model, its canonical and on-disk encodings,
//! signing (classic signature wrapper or DSSE envelope), checking our own
//! signature, and writing the file atomically.
//!
//! This module knows in-toto's formats and keys. It knows nothing of how
//! artifacts were found (snapshot walk or FUSE) or how the command ran.

pub mod canonical;
pub mod dsse;
pub mod pyjson;
pub mod signed;

use crate::keys::{PrivateKey, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Digests of one artifact: algorithm name -> lowercase hex.
pub type DigestSet = BTreeMap<String, String>;
/// Artifact path -> digests.
pub type ArtifactMap = BTreeMap<String, DigestSet>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot encode the link as canonical JSON")]
    Canonical(#[from] canonical::CanonicalError),
    #[error(
        "the signature just made does not verify against the signing key's public key; nothing was written"
    )]
    SelfCheck,
    #[error("cannot open the directory {path}")]
    OpenDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not in-toto link metadata: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: no valid signature by key {keyid}")]
    BadSignature { path: PathBuf, keyid: String },
}

/// The `byproducts` of a link. in-toto writes `{}` when no command ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Byproducts {
    pub return_value: Option<i64>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// The `signed` part of a link: exactly in-toto's seven keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub name: String,
    pub command: Vec<String>,
    pub materials: ArtifactMap,
    pub products: ArtifactMap,
    pub byproducts: Byproducts,
    pub environment: Map<String, Value>,
}

impl Link {
    /// The JSON object that is signed, taking the link's data without copying it.
    pub fn into_value(self) -> Value {
        let mut byproducts = Map::new();
        if let Some(rv) = self.byproducts.return_value {
            byproducts.insert("return-value".into(), json!(rv));
        }
        if let Some(out) = self.byproducts.stdout {
            byproducts.insert("stdout".into(), Value::String(out));
        }
        if let Some(err) = self.byproducts.stderr {
            byproducts.insert("stderr".into(), Value::String(err));
        }
        let artifacts = |map: ArtifactMap| -> Value {
            Value::Object(
                map.into_iter()
                    .map(|(path, digests)| {
                        let digests = digests
                            .into_iter()
                            .map(|(alg, hex)| (alg, Value::String(hex)))
                            .collect();
                        (path, Value::Object(digests))
                    })
                    .collect(),
            )
        };
        let mut obj = Map::new();
        obj.insert("_type".into(), json!("link"));
        obj.insert("name".into(), Value::String(self.name));
        obj.insert(
            "command".into(),
            Value::Array(self.command.into_iter().map(Value::String).collect()),
        );
        obj.insert("materials".into(), artifacts(self.materials));
        obj.insert("products".into(), artifacts(self.products));
        obj.insert("byproducts".into(), Value::Object(byproducts));
        obj.insert("environment".into(), Value::Object(self.environment));
        Value::Object(obj)
    }

    /// The JSON object that is signed.
    pub fn to_value(&self) -> Value {
        let mut byproducts = Map::new();
        if let Some(rv) = self.byproducts.return_value {
            byproducts.insert("return-value".into(), json!(rv));
        }
        if let Some(out) = &self.byproducts.stdout {
            byproducts.insert("stdout".into(), json!(out));
        }
        if let Some(err) = &self.byproducts.stderr {
            byproducts.insert("stderr".into(), json!(err));
        }
        json!({
            "_type": "link",
            "name": self.name,
            "command": self.command,
            "materials": artifacts_value(&self.materials),
            "products": artifacts_value(&self.products),
            "byproducts": byproducts,
            "environment": self.environment,
        })
    }

    /// Reads a link object back, checking the shape in-toto requires.
    pub fn from_value(value: &Value) -> Result<Link, String> {
        let obj = value.as_object().ok_or("the link is not a JSON object")?;
        if obj.get("_type").and_then(Value::as_str) != Some("link") {
            return Err("`_type` is not \"link\"".into());
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or("`name` is missing or not a string")?
            .to_string();
        let command = serde_json::from_value(obj.get("command").cloned().unwrap_or(json!([])))
            .map_err(|e| format!("`command`: {e}"))?;
        // Built straight from the JSON (no intermediate copy: links can hold
        // tens of thousands of artifacts).
        let artifacts = |key: &str| -> Result<ArtifactMap, String> {
            let Some(value) = obj.get(key) else {
                return Ok(ArtifactMap::new());
            };
            let map = value
                .as_object()
                .ok_or_else(|| format!("`{key}` is not an object"))?;
            map.iter()
                .map(|(path, digests)| {
                    let digests = digests.as_object().ok_or_else(|| {
                        format!("`{key}`: {path:?} does not map to an object of digests")
                    })?;
                    let set = digests
                        .iter()
                        .map(|(alg, hex)| match hex.as_str() {
                            Some(hex) => Ok((alg.clone(), hex.to_owned())),
                            None => {
                                Err(format!("`{key}`: {path:?}: digest {alg:?} is not a string"))
                            }
                        })
                        .collect::<Result<DigestSet, String>>()?;
                    Ok((path.clone(), set))
                })
                .collect()
        };
        let by = obj
            .get("byproducts")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let text = |k: &str| by.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Link {
            name,
            command,
            materials: artifacts("materials")?,
            products: artifacts("products")?,
            byproducts: Byproducts {
                return_value: by.get("return-value").and_then(Value::as_i64),
                stdout: text("stdout"),
                stderr: text("stderr"),
            },
            environment: obj
                .get("environment")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// An artifact map as a JSON object, built directly (serde's generic path
/// costs twice as much on links with tens of thousands of artifacts).
fn artifacts_value(map: &ArtifactMap) -> Value {
    Value::Object(
        map.iter()
            .map(|(path, digests)| {
                let digests = digests
                    .iter()
                    .map(|(alg, hex)| (alg.clone(), Value::String(hex.clone())))
                    .collect();
                (path.clone(), Value::Object(digests))
            })
            .collect(),
    )
}

/// How the signed link is wrapped on disk: classic signature wrapper or
/// DSSE envelope.
pub type Wrapper = signed::Form;

/// `<step>.<first 8 hex of keyid>.link`
pub fn file_name(step: &str, keyid: &str) -> String {
    format!("{step}.{}.link", &keyid[..keyid.len().min(8)])
}

/// in-toto-record's preliminary link: `.<step>.<keyid8>.link-unfinished`.
pub fn unfinished_file_name(step: &str, keyid: &str) -> String {
    format!(".{}-unfinished", file_name(step, keyid))
}

/// Every file tracelink writes for a step, as what follows the link's name
/// `<step>.<keyid8>.link` (`""`: the link itself). A feature that writes
/// another file for a step adds its suffix here: the step-name check
/// (`crate::stepname`) makes sure the longest of them, and the temporary
/// name it is written under, fit in a file name.
pub const STEP_FILE_SUFFIXES: &[&str] = &[
    // The link.
    "",
    // The runtime trace of precise recording (`crate::tracefile`).
    crate::tracefile::COMPRESSED_SUFFIX,
    // `--attest`: in-toto Statement v1 attestations (link, SLSA Provenance
    // v1, runtime trace).
    ".attest-link.json",
    ".attest-provenance.json",
    ".attest-runtime-trace.json",
    // `record start`'s preliminary link, `unfinished_file_name`, is named
    // `.` + the link's name + this.
    "-unfinished",
];

/// Every file name tracelink may write for `step` signed by `keyid`: each
/// of `STEP_FILE_SUFFIXES` (the preliminary link with its leading `.`) and
/// the temporary name each is written under first.
pub fn step_file_names(step: &str, keyid: &str) -> Vec<String> {
    let link = file_name(step, keyid);
    let mut names = Vec::new();
    for suffix in STEP_FILE_SUFFIXES {
        let name = if *suffix == "-unfinished" {
            unfinished_file_name(step, keyid)
        } else {
            format!("{link}{suffix}")
        };
        names.push(temporary_name(&name, u64::MAX));
        names.push(name);
    }
    names
}

/// The temporary name `OutputDir::write_atomically` writes `name` under:
/// `.<name>.<random, 16 hex>.tmp`.
pub fn temporary_name(name: &str, random: u64) -> String {
    format!(".{name}.{random:016x}.tmp")
}

/// Signs `link` and returns the file's bytes, laid out as in-toto Python
/// writes them. The bytes are parsed back before they are returned: the
/// signature must verify with the key's public half and what it covers must
/// be exactly the link we meant (same canonical bytes). We never hand out
/// bytes whose signature we have not verified.
pub fn sign(
    link: Link,
    key: &PrivateKey,
    keyid: &str,
    wrapper: Wrapper,
) -> Result<Vec<u8>, LinkError> {
    let value = link.into_value();
    // `meant` is what the signature covers: the canonical bytes of `signed`
    // (classic) or the PAE of the payload (DSSE).
    let (bytes, meant) = match wrapper {
        Wrapper::Classic => {
            // Lay out the `signed` part of the file while the canonical
            // bytes are made and signed; the signature goes in the head.
            let (canonical, body) = std::thread::scope(|scope| {
                let body = scope.spawn(|| pyjson::dumps_at(&value, Some(1), 1));
                let canonical = canonical::encode(&value);
                (canonical, body.join().expect("the encoder thread panicked"))
            });
            let canonical = canonical?;
            let sig = hex::encode(key.sign(&canonical));
            let text = format!(
                "{{\n \"signatures\": [\n  {{\n   \"keyid\": {},\n   \"sig\": \"{sig}\"\n  }}\n ],\n \"signed\": {body}\n}}",
                pyjson::dumps(&json!(keyid), None)
            );
            (text.into_bytes(), canonical)
        }
        Wrapper::Dsse => {
            let payload = pyjson::dumps(&value, None).into_bytes();
            let pae = dsse::pae(dsse::PAYLOAD_TYPE, &payload);
            let sig = key.sign(&pae);
            let doc = json!({
                "payload": BASE64.encode(&payload),
                "payloadType": dsse::PAYLOAD_TYPE,
                "signatures": [{"keyid": keyid, "sig": BASE64.encode(sig)}],
            });
            (pyjson::dumps(&doc, None).into_bytes(), pae)
        }
    };
    // Read the file as written back: its signature must verify and cover
    // exactly what we meant to sign.
    match verify_bytes(&bytes, &key.public(), keyid) {
        Ok(checked) if checked.message == meant => Ok(bytes),
        _ => Err(LinkError::SelfCheck),
    }
}

/// Signed metadata whose signature checked out.
struct Checked {
    /// The signed object (the link).
    signed: Value,
    /// The bytes the signature covers.
    message: Vec<u8>,
    wrapper: Wrapper,
}

/// Parses signed metadata (classic or DSSE) and checks that `keyid` signed
/// it with `public` (any signature carrying the keyid may verify).
fn verify_bytes(bytes: &[u8], public: &PublicKey, keyid: &str) -> Result<Checked, String> {
    let doc = signed::Document::parse(bytes).map_err(|e| e.0)?;
    let message = doc.message().into_owned();
    let valid = doc
        .signatures()
        .any(|(k, sig)| k == keyid && sig.is_some_and(|sig| public.verify(&message, &sig)));
    if !valid {
        return Err(format!("no valid signature by key {keyid}"));
    }
    Ok(Checked {
        wrapper: doc.form,
        signed: doc.payload,
        message,
    })
}

/// Parses link metadata (classic or DSSE) and checks that `keyid` signed it
/// with `public`. Returns the link and the wrapper it came in.
pub fn parse_and_verify(
    bytes: &[u8],
    public: &PublicKey,
    keyid: &str,
) -> Result<(Link, Wrapper), String> {
    let checked = verify_bytes(bytes, public, keyid)?;
    Ok((Link::from_value(&checked.signed)?, checked.wrapper))
}

/// Reads a link file and checks `keyid`'s signature on it.
pub fn read_verified(
    path: &Path,
    public: &PublicKey,
    keyid: &str,
) -> Result<(Link, Wrapper), LinkError> {
    let bytes = std::fs::read(path).map_err(|source| LinkError::Read {
        path: path.into(),
        source,
    })?;
    parse_and_verify(&bytes, public, keyid).map_err(|reason| {
        if reason.starts_with("no valid signature") {
            LinkError::BadSignature {
                path: path.into(),
                keyid: keyid.into(),
            }
        } else {
            LinkError::Malformed {
                path: path.into(),
                reason,
            }
        }
    })
}

/// A directory that output files (links, traces) go to, opened once: every
/// file is created beneath this descriptor, never through the directory's
/// path again. The recorder opens the metadata directory before the
/// recorded command runs, so a tree that renames the directory and puts a
/// symlink in its place cannot redirect the link or the trace: they land in
/// the directory that was opened, wherever it now is (docs/threat-model.md).
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    /// The path it was opened by, for messages.
    path: PathBuf,
    /// Opened O_PATH (the directory is not readable): no fsync of it.
    path_only: bool,
}

impl OutputDir {
    /// Opens the directory `path` (close-on-exec).
    pub fn open(path: &Path) -> Result<OutputDir, LinkError> {
        let open = |extra: OFlag| {
            nix::fcntl::open(
                path,
                OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | extra,
                Mode::empty(),
            )
        };
        // A writable directory we may not list still takes files: then
        // O_PATH, which openat accepts but fsync does not.
        let (fd, path_only) = match open(OFlag::O_RDONLY) {
            Ok(fd) => (fd, false),
            Err(Errno::EACCES) => (open(OFlag::O_PATH).map_err(|e| open_error(path, e))?, true),
            Err(e) => return Err(open_error(path, e)),
        };
        Ok(OutputDir {
            fd,
            path: path.to_path_buf(),
            path_only,
        })
    }

    /// The path the directory was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the opened directory is now (from /proc/self/fd), if that can
    /// be told and differs from the path it was opened by: it was renamed,
    /// or another directory or a symlink took its name.
    pub fn moved_to(&self) -> Option<PathBuf> {
        let now = std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).ok()?;
        let was = std::fs::canonicalize(&self.path).ok();
        if was.as_deref() == Some(now.as_path()) {
            return None;
        }
        // canonicalize may fail (the name is gone) or name another
        // directory (a symlink in its place): compare identities.
        let same = match (
            std::fs::metadata(&self.path),
            nix::sys::stat::fstat(&self.fd),
        ) {
            (Ok(meta), Ok(st)) => meta.dev() == st.st_dev && meta.ino() == st.st_ino,
            _ => false,
        };
        (!same).then_some(now)
    }

    /// Writes `bytes` to the file `name` in this directory so that it is
    /// either absent or whole: a new temporary file created beneath the
    /// descriptor (O_CREAT|O_EXCL|O_NOFOLLOW), fsync, renameat onto `name`
    /// (replacing a file or symlink of that name, never following it),
    /// fsync of the directory. Returns the file's path for messages (the
    /// directory's current location when it moved).
    pub fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, LinkError> {
        let path = self.path.join(name);
        let fail = |source: std::io::Error| LinkError::Write {
            path: path.clone(),
            source,
        };
        check_name(name).map_err(fail)?;
        let (tmp_name, file) = self.create_temporary(name).map_err(fail)?;
        let written = write_and_sync(file, bytes)
            .and_then(|()| {
                nix::fcntl::renameat(&self.fd, tmp_name.as_str(), &self.fd, name)
                    .map_err(std::io::Error::from)
            })
            .map_err(fail);
        if let Err(e) = written {
            let _ = nix::unistd::unlinkat(
                &self.fd,
                tmp_name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            return Err(e);
        }
        if !self.path_only {
            nix::unistd::fsync(&self.fd).map_err(|e| fail(std::io::Error::from(e)))?;
        }
        Ok(match self.moved_to() {
            Some(now) => now.join(name),
            None => path,
        })
    }

    /// Removes the file `name` from this directory (never following a
    /// symlink: a symlink of that name is removed itself). Ok(false) when
    /// there was none.
    pub fn remove(&self, name: &str) -> Result<bool, LinkError> {
        let fail = |source: std::io::Error| LinkError::Write {
            path: self.path.join(name),
            source,
        };
        check_name(name).map_err(fail)?;
        match nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(fail(std::io::Error::from(e))),
        }
    }

    /// Creates the new file `name` in this directory for reading and
    /// writing (mode 0644 before the umask): never one that exists, never
    /// through a symlink.
    pub fn create(&self, name: &str) -> Result<std::fs::File, LinkError> {
        let fail = |source: std::io::Error| LinkError::Write {
            path: self.path.join(name),
            source,
        };
        check_name(name).map_err(fail)?;
        nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(std::fs::File::from)
        .map_err(|e| fail(e.into()))
    }

    /// A new, empty file `.<name>.<random>.tmp` beneath the descriptor,
    /// never a file or symlink that was there before.
    fn create_temporary(&self, name: &str) -> std::io::Result<(String, std::fs::File)> {
        let mut last = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        for _ in 0..16 {
            let random = getrandom::u64().map_err(|e| std::io::Error::other(e.to_string()))?;
            let tmp_name = temporary_name(name, random);
            match nix::fcntl::openat(
                &self.fd,
                tmp_name.as_str(),
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(fd) => return Ok((tmp_name, std::fs::File::from(fd))),
                Err(Errno::EEXIST) => last = Errno::EEXIST.into(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last)
    }
}

/// A file name directly in the directory: no `/`, not `.` or `..`.
fn check_name(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an output file's name cannot contain '/' or be . or ..",
        ));
    }
    Ok(())
}

fn write_and_sync(mut file: std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

fn open_error(path: &Path, e: Errno) -> LinkError {
    LinkError::OpenDir {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Writes `bytes` to `dir/name` atomically (`OutputDir::write_atomically`),
/// opening `dir` now: for writers whose directory the recorded tree cannot
/// reach meanwhile (sign, layout draft).
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, LinkError> {
    OutputDir::open(dir)?.write_atomically(name, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyIdFormat;

    fn vector(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name)
    }

    fn demo_link() -> Link {
        let digest = |hex: &str| DigestSet::from([("sha256".to_string(), hex.to_string())]);
        let foo = digest("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
        let bar = digest("98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4");
        Link {
            name: "demo".into(),
            command: vec![
                "sh".into(),
                "-c".into(),
                "printf \"hi\\n\" > bar.txt".into(),
            ],
            materials: ArtifactMap::from([("foo.txt".into(), foo.clone())]),
            products: ArtifactMap::from([("bar.txt".into(), bar), ("foo.txt".into(), foo)]),
            byproducts: Byproducts {
                return_value: Some(0),
                stdout: Some(String::new()),
                stderr: Some(String::new()),
            },
            environment: Map::new(),
        }
    }

    fn rfc8032() -> PrivateKey {
        PrivateKey::load(&vector("rfc8032.pem"), None).unwrap()
    }

    #[test]
    fn demo_link_canonical_bytes_match_the_reference() {
        let want = std::fs::read(vector("demo.signed.canonical")).unwrap();
        assert_eq!(want.len(), 445);
        assert_eq!(canonical::encode(&demo_link().to_value()).unwrap(), want);
    }

    #[test]
    fn demo_link_file_is_byte_identical_to_in_toto_runs() {
        let key = rfc8032();
        let keyid = key.keyid(KeyIdFormat::Python);
        let bytes = sign(demo_link(), &key, &keyid, Wrapper::Classic).unwrap();
        let want = std::fs::read(vector("demo.74c181c7.link")).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            String::from_utf8(want).unwrap()
        );
        assert_eq!(file_name("demo", &keyid), "demo.74c181c7.link");
    }

    #[test]
    fn dsse_vector_verifies_with_our_pae() {
        let key = rfc8032();
        let keyid = key.keyid(KeyIdFormat::Python);
        let bytes = std::fs::read(vector("demo.74c181c7.dsse.link")).unwrap();
        let (link, wrapper) = parse_and_verify(&bytes, &key.public(), &keyid).unwrap();
        assert_eq!(wrapper, Wrapper::Dsse);
        assert_eq!(link, demo_link());
    }

    #[test]
    fn dsse_vector_is_reproduced_from_the_same_payload() {
        let key = rfc8032();
        let keyid = key.keyid(KeyIdFormat::Python);
        let ours = sign(demo_link(), &key, &keyid, Wrapper::Dsse).unwrap();
        let want = std::fs::read(vector("demo.74c181c7.dsse.link")).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(want).unwrap()
        );
        // And from the vector's own payload bytes, whatever serialized them.
        let doc: Value =
            serde_json::from_slice(&std::fs::read(vector("demo.74c181c7.dsse.link")).unwrap())
                .unwrap();
        let payload = BASE64.decode(doc["payload"].as_str().unwrap()).unwrap();
        let sig = key.sign(&dsse::pae(dsse::PAYLOAD_TYPE, &payload));
        assert_eq!(
            BASE64.encode(sig),
            doc["signatures"][0]["sig"].as_str().unwrap()
        );
    }

    #[test]
    fn a_tampered_link_fails_verification() {
        let key = rfc8032();
        let keyid = key.keyid(KeyIdFormat::Python);
        let bytes = std::fs::read(vector("demo.74c181c7.link")).unwrap();
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("bar.txt", "baz.txt");
        let err = parse_and_verify(tampered.as_bytes(), &key.public(), &keyid).unwrap_err();
        assert!(err.contains("no valid signature"), "{err}");
    }

    #[test]
    fn no_command_link_has_empty_byproducts() {
        let link = Link {
            name: "x".into(),
            ..Link::default()
        };
        assert_eq!(
            canonical::encode(&link.to_value()).unwrap(),
            br#"{"_type":"link","byproducts":{},"command":[],"environment":{},"materials":{},"name":"x","products":{}}"#
        );
    }

    #[test]
    fn atomic_write_leaves_only_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomically(dir.path(), "a.link", b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.link")]);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn output_dir_swapped_for_a_symlink_still_receives_the_file() {
        let base = tempfile::tempdir().unwrap();
        let meta = base.path().join("meta");
        let elsewhere = base.path().join("elsewhere");
        std::fs::create_dir(&meta).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        let out = OutputDir::open(&meta).unwrap();
        let moved = base.path().join("meta.moved");
        std::fs::rename(&meta, &moved).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &meta).unwrap();

        let written = out.write_atomically("a.link", b"{}").unwrap();
        assert_eq!(names(&moved), ["a.link"]);
        assert!(names(&elsewhere).is_empty());
        assert_eq!(
            written,
            std::fs::canonicalize(&moved).unwrap().join("a.link"),
            "the path reported is where the file is"
        );
        assert!(out.moved_to().is_some());
    }

    #[test]
    fn output_file_name_taken_by_a_symlink_is_replaced_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let dir = base.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("a.link")).unwrap();
        let out = OutputDir::open(&dir).unwrap();
        assert_eq!(out.moved_to(), None);
        out.write_atomically("a.link", b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let meta = std::fs::symlink_metadata(dir.join("a.link")).unwrap();
        assert!(meta.is_file());
        assert_eq!(std::fs::read(dir.join("a.link")).unwrap(), b"{}");
        assert_eq!(names(&dir), ["a.link"]);
    }

    #[test]
    fn output_names_with_a_slash_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir::open(dir.path()).unwrap();
        for name in ["a/b.link", "..", ".", ""] {
            let err = out.write_atomically(name, b"{}").unwrap_err();
            assert!(matches!(err, LinkError::Write { .. }), "{name}: {err}");
        }
        assert!(names(dir.path()).is_empty());
    }
}
