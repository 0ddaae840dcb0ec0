//! Signed in-toto metadata as a verifier reads it: a link or layout file,
//! classic or DSSE, and the signature checks in-toto 3.1.0's verifier applies
//! to each form. Reading the file's wrappers and in-toto's model view of the
//! signed object (what a classic signature covers, `link::signed::signable`)
//! is `link::signed`'s, shared with `tracelink sign`; this module adds which
//! signature counts and what a verifier refuses to read.
//!
//! This module knows the wrappers and keys; it knows nothing of layouts'
//! meaning, of where files live or of how verdicts are reported.

use crate::keys::PublicKey;
use crate::link::signed::Document;
pub use crate::link::signed::Form;
use serde_json::{Map, Value};
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
    /// Not a regular file, or larger than metadata may be
    /// ([`crate::untrusted::METADATA`]): refused without reading it.
    #[error(transparent)]
    Refused(crate::untrusted::UntrustedError),
    #[error("{path}: not in-toto metadata: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// A parsed metadata file whose signatures have not been checked yet. The
/// document's `form` and `payload` (the signed object: a link or a layout)
/// are read through it.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub path: PathBuf,
    /// sha256 (hex) of the file's bytes as read.
    pub sha256: String,
    document: Document,
}

impl std::ops::Deref for Metadata {
    type Target = Document;

    fn deref(&self) -> &Document {
        &self.document
    }
}

impl Metadata {
    /// Reads and parses a metadata file; the payload's `_type` must be
    /// `link` or `layout`. The file may come from anyone: it must be a
    /// regular file (a symbolic link to one is followed, as in-toto does)
    /// of at most [`crate::untrusted::METADATA`]'s bound. A file that cannot
    /// be opened is `Read`; one that is not a regular file or too large is
    /// `Refused`.
    pub fn load(path: &Path) -> Result<Metadata, MetadataError> {
        use crate::untrusted::{self, UntrustedError};
        let bytes = untrusted::read(path, untrusted::METADATA).map_err(|e| match e {
            UntrustedError::Io { path, source } => MetadataError::Read { path, source },
            refused => MetadataError::Refused(refused),
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses a metadata file. Unlike in-toto-sign, a verifier does not
    /// require the signed object to fit in-toto's model (the signature then
    /// covers the model's view of it), but it does require a `signatures`
    /// list whose entries have a string `keyid` and `sig`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Metadata, MetadataError> {
        let malformed = |reason: String| MetadataError::Malformed {
            path: path.into(),
            reason,
        };
        let document = Document::parse(bytes).map_err(|e| malformed(e.0))?;
        if !document.lists_signatures() {
            return Err(malformed("`signatures` is missing or not a list".into()));
        }
        let sig_is_text = |s: &Map<String, Value>| s.get("sig").is_some_and(Value::is_string);
        if !document.signature_objects().iter().all(sig_is_text) {
            return Err(malformed(
                "a signature without a string `keyid` and `sig`".into(),
            ));
        }
        Ok(Metadata {
            path: path.into(),
            sha256: crate::hash::sha256_hex(bytes),
            document,
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
        let message = self.message();
        let mut verdicts = self
            .signatures()
            .filter(|(k, _)| *k == keyid)
            .map(|(_, sig)| sig.is_some_and(|sig| key.verify(&message, &sig)));
        let found = match self.form {
            Form::Classic => verdicts.next(),
            Form::Dsse => {
                let mut any = None;
                for verified in verdicts {
                    any = Some(verified);
                    if verified {
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
        self.signature_objects()
            .iter()
            .map(|s| s["keyid"].as_str().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyIdFormat, PrivateKey};
    use crate::link::canonical;
    use serde_json::json;

    fn classic(signed: &Value, signed_bytes_of: &Value, key: &PrivateKey) -> Vec<u8> {
        let sig = hex::encode(key.sign(&canonical::encode(signed_bytes_of).unwrap()));
        let keyid = key.keyid(KeyIdFormat::Python);
        serde_json::to_vec(&json!({"signatures": [{"keyid": keyid, "sig": sig}], "signed": signed}))
            .unwrap()
    }

    #[test]
    fn classic_signatures_cover_in_totos_model_of_the_link_not_the_raw_object() {
        let key = PrivateKey::from_seed(&[9; 32]);
        let keyid = key.keyid(KeyIdFormat::Python);
        let link = json!({"_type": "link", "name": "build", "command": [], "materials": {},
                          "products": {}, "byproducts": {}, "environment": {}});
        let mut extended = link.clone();
        extended["extra"] = json!("added after signing");
        // Signed as in-toto signs it, then a field added: in-toto ignores the field.
        let bytes = classic(&extended, &link, &key);
        let meta = Metadata::parse(Path::new("x.link"), &bytes).unwrap();
        assert_eq!(meta.verify_signature(&key.public(), &keyid), Ok(()));
        // Signed over the raw object with the extra field: in-toto's model
        // drops it, so the signature does not verify.
        let bytes = classic(&extended, &extended, &key);
        let meta = Metadata::parse(Path::new("x.link"), &bytes).unwrap();
        assert!(meta.verify_signature(&key.public(), &keyid).is_err());
        // Absent fields take the model's defaults.
        let sparse = json!({"_type": "link", "name": "build"});
        let bytes = classic(&sparse, &link, &key);
        let meta = Metadata::parse(Path::new("x.link"), &bytes).unwrap();
        assert_eq!(meta.verify_signature(&key.public(), &keyid), Ok(()));
    }

    #[test]
    fn classic_layout_signatures_cover_the_model_with_step_types_forced() {
        let key = PrivateKey::from_seed(&[9; 32]);
        let keyid = key.keyid(KeyIdFormat::Python);
        let model = json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z", "readme": "",
            "keys": {}, "inspect": [],
            "steps": [{"_type": "step", "name": "a", "pubkeys": [], "expected_command": [],
                       "threshold": 1, "expected_materials": [], "expected_products": []}]});
        let on_disk = json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z",
            "keys": {}, "inspect": [], "steps": [{"_type": "whatever", "name": "a", "note": 1}]});
        let bytes = classic(&on_disk, &model, &key);
        let meta = Metadata::parse(Path::new("root.layout"), &bytes).unwrap();
        assert_eq!(meta.verify_signature(&key.public(), &keyid), Ok(()));
    }
}
