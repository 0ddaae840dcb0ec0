//! Signed in-toto metadata as a verifier reads it: a classic
//! `{"signatures", "signed"}` document or a DSSE envelope, holding a link or
//! a layout, and the signature checks in-toto 3.1.0 applies to each form.
//!
//! This module knows the two wrappers and keys; it knows nothing of layouts'
//! meaning, of where files live or of how verdicts are reported.

use crate::keys::PublicKey;
use crate::link::{canonical, dsse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why a metadata file cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not in-toto metadata: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// One signature as the file carries it (`sig` still encoded: hex in the
/// classic form, base64 in DSSE).
#[derive(Debug, Clone)]
struct Signature {
    keyid: String,
    sig: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Classic,
    Dsse,
}

/// A parsed metadata file whose signatures have not been checked yet.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub path: PathBuf,
    pub form: Form,
    /// The signed object: a link or a layout.
    pub payload: Value,
    /// The bytes signatures cover: canonical JSON of `signed` (classic) or
    /// the DSSE pre-authentication encoding of the payload.
    message: Vec<u8>,
    signatures: Vec<Signature>,
}

impl Metadata {
    /// Reads and parses a metadata file; the payload's `_type` must be
    /// `link` or `layout`.
    pub fn load(path: &Path) -> Result<Metadata, MetadataError> {
        let bytes = std::fs::read(path).map_err(|source| MetadataError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Metadata, MetadataError> {
        let malformed = |reason: String| MetadataError::Malformed {
            path: path.into(),
            reason,
        };
        let mut doc: Value =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let (form, payload, message) = if doc.get("payload").is_some() {
            let payload_type = doc.get("payloadType").and_then(Value::as_str);
            if payload_type != Some(dsse::PAYLOAD_TYPE) {
                return Err(malformed(format!(
                    "a DSSE envelope whose payloadType is not {:?}",
                    dsse::PAYLOAD_TYPE
                )));
            }
            let encoded = doc["payload"]
                .as_str()
                .ok_or_else(|| malformed("the DSSE payload is not a string".into()))?;
            let raw = BASE64
                .decode(encoded)
                .map_err(|e| malformed(format!("the DSSE payload is not base64: {e}")))?;
            let payload: Value = serde_json::from_slice(&raw)
                .map_err(|e| malformed(format!("the DSSE payload is not JSON: {e}")))?;
            let message = dsse::pae(dsse::PAYLOAD_TYPE, &raw);
            (Form::Dsse, payload, message)
        } else if let Some(signed) = doc.get_mut("signed") {
            let payload = signed.take();
            let message = canonical::encode(&payload)
                .map_err(|e| malformed(format!("`signed` has no canonical JSON form: {e}")))?;
            (Form::Classic, payload, message)
        } else {
            return Err(malformed(
                "neither a signed document ({\"signatures\", \"signed\"}) nor a DSSE envelope"
                    .into(),
            ));
        };
        match payload.get("_type").and_then(Value::as_str) {
            Some("link" | "layout") => {}
            other => {
                return Err(malformed(format!(
                    "`_type` is {other:?}, expected \"link\" or \"layout\""
                )));
            }
        }
        let signatures = doc
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("`signatures` is missing or not a list".into()))?
            .iter()
            .map(|s| {
                let field = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
                match (field("keyid"), field("sig")) {
                    (Some(keyid), Some(sig)) => Ok(Signature { keyid, sig }),
                    _ => Err(malformed(
                        "a signature without a string `keyid` and `sig`".into(),
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Metadata {
            path: path.into(),
            form,
            payload,
            message,
            signatures,
        })
    }

    /// `link` or `layout`.
    pub fn payload_type(&self) -> &str {
        self.payload["_type"].as_str().unwrap_or_default()
    }

    /// Checks that `keyid` signed this document with `key`, as in-toto 3.1.0
    /// does: in the classic form only the *first* signature carrying the
    /// keyid is tried; in a DSSE envelope any signature carrying it may
    /// verify.
    pub fn verify_signature(&self, key: &PublicKey, keyid: &str) -> Result<(), String> {
        let mut candidates = self.signatures.iter().filter(|s| s.keyid == keyid);
        let verifies = |s: &Signature| {
            let raw = match self.form {
                Form::Classic => hex::decode(&s.sig).ok(),
                Form::Dsse => BASE64.decode(&s.sig).ok(),
            };
            raw.is_some_and(|raw| key.verify(&self.message, &raw))
        };
        let found = match self.form {
            Form::Classic => candidates.next().map(verifies),
            Form::Dsse => {
                let mut any = None;
                for s in candidates {
                    any = Some(verifies(s));
                    if any == Some(true) {
                        break;
                    }
                }
                any
            }
        };
        match found {
            None => Err(format!("no signature by key {keyid}")),
            Some(false) => Err(format!("the signature by key {keyid} does not verify")),
            Some(true) => Ok(()),
        }
    }

    /// The keyids of the signatures the file carries.
    pub fn signature_keyids(&self) -> impl Iterator<Item = &str> {
        self.signatures.iter().map(|s| s.keyid.as_str())
    }
}
