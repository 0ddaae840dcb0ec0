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
use serde_json::{Map, Value, json};
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
            let message = canonical::encode(&signable(&payload))
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

/// What a classic signature covers, as in-toto 3.1.0 computes it: not the
/// `signed` object as the file has it, but the object in-toto's model makes
/// of it (`attr.asdict`): only the model's fields, absent ones filled with
/// their defaults, and `_type` of steps and inspections forced. A field added
/// to a signed link is therefore ignored, and a link signed with an extra
/// field never verifies. (DSSE signatures cover the payload bytes as they are.)
fn signable(payload: &Value) -> Value {
    let Some(obj) = payload.as_object() else {
        return payload.clone();
    };
    let field = |key: &str, default: Value| obj.get(key).cloned().unwrap_or(default);
    let items = |key: &str, each: fn(&Value) -> Value| match obj.get(key) {
        Some(Value::Array(items)) => Value::Array(items.iter().map(each).collect()),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let mut out = Map::new();
    match obj.get("_type").and_then(Value::as_str) {
        Some("link") => {
            out.insert("_type".into(), json!("link"));
            out.insert("name".into(), field("name", Value::Null));
            out.insert("materials".into(), field("materials", json!({})));
            out.insert("products".into(), field("products", json!({})));
            out.insert("byproducts".into(), field("byproducts", json!({})));
            out.insert("command".into(), field("command", json!([])));
            out.insert("environment".into(), field("environment", json!({})));
        }
        Some("layout") => {
            out.insert("_type".into(), json!("layout"));
            out.insert("steps".into(), items("steps", signable_step));
            out.insert("inspect".into(), items("inspect", signable_inspection));
            out.insert("keys".into(), field("keys", json!({})));
            out.insert("expires".into(), field("expires", Value::Null));
            out.insert("readme".into(), field("readme", json!("")));
        }
        _ => return payload.clone(),
    }
    Value::Object(out)
}

fn signable_item(item: &Value, kind: &str, extra: &[(&str, Value)]) -> Value {
    let Some(obj) = item.as_object() else {
        return item.clone();
    };
    let field = |key: &str, default: Value| obj.get(key).cloned().unwrap_or(default);
    let mut out = Map::new();
    out.insert("_type".into(), json!(kind));
    out.insert("name".into(), field("name", Value::Null));
    out.insert(
        "expected_materials".into(),
        field("expected_materials", json!([])),
    );
    out.insert(
        "expected_products".into(),
        field("expected_products", json!([])),
    );
    for (key, default) in extra {
        out.insert((*key).into(), field(key, default.clone()));
    }
    Value::Object(out)
}

fn signable_step(step: &Value) -> Value {
    signable_item(
        step,
        "step",
        &[
            ("pubkeys", json!([])),
            ("expected_command", json!([])),
            ("threshold", json!(1)),
        ],
    )
}

fn signable_inspection(inspection: &Value) -> Value {
    signable_item(inspection, "inspection", &[("run", json!([]))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyIdFormat, PrivateKey};

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
