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
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
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

/// Writes `bytes` to `dir/name` so that the file is either absent or whole:
/// a temporary file in the same directory, fsync, rename, fsync of the directory.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, LinkError> {
    let path = dir.join(name);
    let fail = |source| LinkError::Write {
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(&path).map_err(|e| fail(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(path)
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
}
