//! Signed in-toto metadata, a link or a layout, as in-toto 3.1.0 reads and
//! writes it: the classic `{"signatures", "signed"}` document or the DSSE
//! envelope; in-toto's model view of the signed object, which is what a
//! classic signature covers (`signable`); the signatures the file carries,
//! adding and replacing one; and the file laid out as in-toto writes it.
//!
//! Both `tracelink verify` (through `verify::metadata`) and `tracelink sign`
//! read files through this module. It hands out the bytes a signature covers
//! and the signatures, decoded; it knows no keys, decides nothing about which
//! signature counts (in-toto-verify and in-toto-sign differ there: that is
//! for the callers), and knows nothing of files, layouts' meaning or reports.

use super::{canonical, dsse, pyjson};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE as BASE64_URL};
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// Why bytes are not signed in-toto metadata (the reason, without the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// How the file wraps the signed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `{"signatures": [...], "signed": {...}}`: signatures (hex) over the
    /// canonical JSON of in-toto's model of `signed`.
    Classic,
    /// A DSSE envelope: signatures (base64) over the pre-authentication
    /// encoding of the payload bytes as they are.
    Dsse,
}

/// What the signed object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Link { name: String },
    Layout,
}

impl Kind {
    /// `link` or `layout`, as `_type` says.
    pub fn noun(&self) -> &'static str {
        match self {
            Kind::Link { .. } => "link",
            Kind::Layout => "layout",
        }
    }
}

/// A parsed layout or link file whose signatures have not been checked.
#[derive(Debug, Clone)]
pub struct Document {
    pub form: Form,
    /// The signed object as the file has it (classic `signed`, or the DSSE
    /// payload parsed); its `_type` is `link` or `layout`.
    pub payload: Value,
    /// Classic: the canonical JSON of `signable(payload)`. DSSE: the payload
    /// bytes as the envelope has them.
    signed_bytes: Vec<u8>,
    /// The signature objects as the file has them, each with a string keyid.
    signatures: Vec<Map<String, Value>>,
    /// Whether the file has a `signatures` list (a classic document may omit it).
    listed: bool,
}

impl Document {
    /// Parses a classic document or a DSSE envelope whose payload type is
    /// in-toto's and whose object's `_type` is `link` or `layout`. Only what
    /// every reader needs is checked: the model's fields are not (see
    /// [`Document::check_signable`]), nor is a signature's `sig`.
    pub fn parse(bytes: &[u8]) -> Result<Document, Malformed> {
        let bad = |reason: String| Malformed(reason);
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(mut doc) = doc else {
            return Err(bad("not a JSON object".into()));
        };
        let listed = doc.contains_key("signatures");
        let signatures = match doc.remove("signatures") {
            None if doc.contains_key("signed") => Vec::new(),
            None => return Err(bad("`signatures` is missing".into())),
            Some(Value::Array(sigs)) => sigs
                .into_iter()
                .enumerate()
                .map(|(i, sig)| match sig {
                    Value::Object(sig) if sig.get("keyid").is_some_and(Value::is_string) => Ok(sig),
                    _ => Err(bad(format!(
                        "signatures[{i}] is not an object with a keyid"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad("`signatures` is not a list".into())),
        };
        let (form, payload, signed_bytes) = if doc.contains_key("payload") {
            let payload_type = doc
                .get("payloadType")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("DSSE envelope without payloadType".into()))?;
            if payload_type != dsse::PAYLOAD_TYPE {
                return Err(bad(format!(
                    "DSSE payloadType is {payload_type:?}, not {:?}",
                    dsse::PAYLOAD_TYPE
                )));
            }
            let raw = doc
                .get("payload")
                .and_then(Value::as_str)
                .and_then(decode_base64)
                .ok_or_else(|| bad("DSSE payload is not a base64 string".into()))?;
            let payload: Value = serde_json::from_slice(&raw)
                .map_err(|e| bad(format!("DSSE payload is not JSON: {e}")))?;
            link_or_layout(&payload).map_err(bad)?;
            (Form::Dsse, payload, raw)
        } else if let Some(signed) = doc.remove("signed") {
            link_or_layout(&signed).map_err(bad)?;
            // A link that has exactly the model's fields is its own model
            // view: encode it without copying (links can be large).
            let exact_link = signed.as_object().is_some_and(|obj| {
                obj.get("_type").and_then(Value::as_str) == Some("link")
                    && obj.len() == LINK_FIELDS.len()
                    && LINK_FIELDS.iter().all(|f| obj.contains_key(f.0))
            });
            let encoded = if exact_link {
                canonical::encode(&signed)
            } else {
                canonical::encode(&signable(&signed).value)
            };
            let canonical = encoded.map_err(|e| {
                bad(format!(
                    "`signed` has no canonical JSON form, so it cannot be signed or verified: {e}"
                ))
            })?;
            (Form::Classic, signed, canonical)
        } else {
            return Err(bad(
                "neither a classic document ({\"signatures\", \"signed\"}) nor a DSSE envelope"
                    .into(),
            ));
        };
        Ok(Document {
            form,
            payload,
            signed_bytes,
            signatures,
            listed,
        })
    }

    /// A link (with its name) or a layout.
    pub fn kind(&self) -> Kind {
        match self.payload["_type"].as_str() {
            Some("link") => Kind::Link {
                name: self.payload["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            },
            _ => Kind::Layout,
        }
    }

    /// in-toto's model of the signed object, with what it changed and what
    /// does not fit it.
    pub fn signable(&self) -> Signable {
        signable(&self.payload)
    }

    /// What in-toto-sign requires beyond what verifying needs: the object
    /// fits in-toto's model (every required field there, every field of its
    /// type) and can be encoded canonically, and a DSSE envelope has one
    /// signature per keyid (in-toto keeps them in a dict). Returns the notes
    /// on fields in-toto's model dropped or filled with defaults.
    pub fn check_signable(&self) -> Result<Vec<String>, Malformed> {
        let Signable {
            value,
            notes,
            mut problems,
        } = self.signable();
        if !problems.is_empty() {
            return Err(Malformed(problems.swap_remove(0)));
        }
        if self.form == Form::Dsse {
            // (A classic `signed` was encoded when it was parsed.)
            canonical::encode(&value)
                .map_err(|e| Malformed(format!("the payload cannot be signed: {e}")))?;
            let mut seen = std::collections::BTreeSet::new();
            for (keyid, _) in self.signatures() {
                if !seen.insert(keyid) {
                    return Err(Malformed(format!(
                        "the DSSE envelope has two signatures by keyid {keyid}"
                    )));
                }
            }
        }
        Ok(notes)
    }

    /// The bytes a signature covers: the canonical JSON of in-toto's model of
    /// `signed` (classic), or the DSSE pre-authentication encoding of the
    /// payload bytes.
    pub fn message(&self) -> Cow<'_, [u8]> {
        match self.form {
            Form::Classic => Cow::Borrowed(&self.signed_bytes),
            Form::Dsse => Cow::Owned(dsse::pae(dsse::PAYLOAD_TYPE, &self.signed_bytes)),
        }
    }

    /// Whether the file has a `signatures` list (in-toto reads a classic
    /// document without one as unsigned).
    pub fn lists_signatures(&self) -> bool {
        self.listed
    }

    /// The signature objects as the file has them, in file order.
    pub fn signature_objects(&self) -> &[Map<String, Value>] {
        &self.signatures
    }

    /// Every signature in file order: its keyid, and its bytes if `sig` is
    /// a string that decodes (hex in the classic form; in DSSE base64 as
    /// securesystemslib decodes it).
    pub fn signatures(&self) -> impl Iterator<Item = (&str, Option<Vec<u8>>)> {
        self.signatures.iter().map(|sig| {
            let keyid = sig["keyid"].as_str().unwrap_or_default();
            let bytes = sig
                .get("sig")
                .and_then(Value::as_str)
                .and_then(|s| match self.form {
                    Form::Classic => hex::decode(s).ok(),
                    Form::Dsse => decode_base64(s),
                });
            (keyid, bytes)
        })
    }

    /// For each of `keyids`, the first signature by it (in-toto's classic
    /// verifier checks only that one), in file order.
    pub fn first_signatures_by(&self, keyids: &[String]) -> Vec<(String, Option<Vec<u8>>)> {
        let mut seen: Vec<&str> = Vec::new();
        self.signatures()
            .filter(|(keyid, _)| {
                let wanted = keyids.iter().any(|k| k == keyid) && !seen.contains(keyid);
                if wanted {
                    seen.push(keyid);
                }
                wanted
            })
            .map(|(keyid, bytes)| (keyid.to_string(), bytes))
            .collect()
    }

    /// Removes every signature.
    pub fn clear_signatures(&mut self) {
        self.signatures.clear();
    }

    /// Adds a signature at the end, or in place of the signatures by the
    /// same keyid the file already has (returns true then). in-toto keeps
    /// DSSE signatures in a dict by keyid, so does the same there; for the
    /// classic form in-toto-sign --append would add a second entry, but its
    /// verifiers check only the first signature by a keyid: a stale first
    /// one would hide ours.
    pub fn add_signature(&mut self, keyid: &str, sig: &[u8]) -> bool {
        let encoded = match self.form {
            Form::Classic => hex::encode(sig),
            Form::Dsse => BASE64.encode(sig),
        };
        let mut entry = Map::new();
        entry.insert("keyid".into(), json!(keyid));
        entry.insert("sig".into(), json!(encoded));
        let by_keyid =
            |s: &Map<String, Value>| s.get("keyid").and_then(Value::as_str) == Some(keyid);
        match self.signatures.iter().position(by_keyid) {
            Some(first) => {
                self.signatures[first] = entry;
                let mut i = 0;
                self.signatures.retain(|s| {
                    i += 1;
                    i - 1 == first || !by_keyid(s)
                });
                true
            }
            None => {
                self.signatures.push(entry);
                false
            }
        }
    }

    /// The file as in-toto writes it: a classic document is in-toto's model
    /// of `signed` with the signatures, `json.dumps(indent=1, sort_keys=True)`
    /// (no final newline); a DSSE envelope keeps its payload bytes and is
    /// `json.dumps(sort_keys=True)`, every signature in standard base64.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.form {
            Form::Classic => {
                let sigs: Vec<Value> = self.signatures.iter().cloned().map(Value::Object).collect();
                let doc = json!({"signatures": sigs, "signed": self.signable().value});
                pyjson::dumps(&doc, Some(1)).into_bytes()
            }
            Form::Dsse => {
                let sigs: Vec<Value> = self
                    .signatures
                    .iter()
                    .map(|sig| {
                        let mut sig = sig.clone();
                        if let Some(bytes) = sig
                            .get("sig")
                            .and_then(Value::as_str)
                            .and_then(decode_base64)
                        {
                            sig.insert("sig".into(), json!(BASE64.encode(bytes)));
                        }
                        Value::Object(sig)
                    })
                    .collect();
                let doc = json!({
                    "payload": BASE64.encode(&self.signed_bytes),
                    "payloadType": dsse::PAYLOAD_TYPE,
                    "signatures": sigs,
                });
                pyjson::dumps(&doc, None).into_bytes()
            }
        }
    }
}

/// Base64 as securesystemslib decodes it: standard, else URL-safe (padded).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(text)
        .or_else(|_| BASE64_URL.decode(text))
        .ok()
}

/// The signed object and whether it is a layout (else a link); any other
/// value is refused.
fn link_or_layout(value: &Value) -> Result<(&Map<String, Value>, bool), String> {
    let obj = value
        .as_object()
        .ok_or("the signed object is not a JSON object")?;
    match obj.get("_type").and_then(Value::as_str) {
        Some("link") => Ok((obj, false)),
        Some("layout") => Ok((obj, true)),
        Some(other) => Err(format!(
            "_type is {other:?}, neither \"link\" nor \"layout\""
        )),
        None => Err("the signed object has no string _type".into()),
    }
}

/// in-toto's model view of a signed object.
#[derive(Debug, Clone, PartialEq)]
pub struct Signable {
    /// The object in-toto 3.1.0's model makes of it (`attr.asdict`): only the
    /// fields its classes have, absent ones filled with their defaults (a
    /// required one with null), `_type` of steps and inspections forced. It
    /// is what a classic signature covers and what in-toto writes.
    pub value: Value,
    /// Fields the model dropped or filled with a default, for warnings.
    pub notes: Vec<String>,
    /// Where the object does not fit the model (a required field missing, a
    /// field of the wrong type), in the order in-toto-sign finds them. A
    /// verifier still computes what a signature covers; a signer refuses.
    pub problems: Vec<String>,
}

/// in-toto's model view of a link or layout object; any other value is
/// taken as it is (with a problem). A field added to a signed link is
/// therefore not covered by a classic signature, and a link signed with an
/// extra field never verifies. (DSSE signatures cover the payload bytes as
/// they are.)
pub fn signable(signed: &Value) -> Signable {
    let mut out = Signable {
        value: Value::Null,
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let (obj, layout) = match link_or_layout(signed) {
        Ok(found) => found,
        Err(problem) => {
            out.problems.push(problem);
            out.value = signed.clone();
            return out;
        }
    };
    let fields = if layout { LAYOUT_FIELDS } else { LINK_FIELDS };
    let mut value = model_of(obj, "signed", fields, &mut out);
    if layout {
        for (list, fields) in [("steps", STEP_FIELDS), ("inspect", INSPECTION_FIELDS)] {
            let Some(items) = value.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for (i, item) in items.iter_mut().enumerate() {
                let at = format!("signed.{list}[{i}]");
                match item.as_object() {
                    Some(item_obj) => *item = model_of(item_obj, &at, fields, &mut out),
                    None => out.problems.push(format!("{at} is not an object")),
                }
            }
        }
    }
    out.value = value;
    out
}

/// JSON types the fields must have.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    Str,
    Int,
    List,
    Object,
}

/// A field of an in-toto model class: name, type, default (None: required).
type Field = (&'static str, Shape, Option<fn() -> Value>);

const LINK_FIELDS: &[Field] = &[
    ("_type", Shape::Str, None),
    ("name", Shape::Str, None),
    ("command", Shape::List, Some(|| json!([]))),
    ("materials", Shape::Object, Some(|| json!({}))),
    ("products", Shape::Object, Some(|| json!({}))),
    ("byproducts", Shape::Object, Some(|| json!({}))),
    ("environment", Shape::Object, Some(|| json!({}))),
];

/// in-toto gives a layout without `expires` an expiry a month from now;
/// tracelink will not sign a date nobody chose.
const LAYOUT_FIELDS: &[Field] = &[
    ("_type", Shape::Str, None),
    ("expires", Shape::Str, None),
    ("readme", Shape::Str, Some(|| json!(""))),
    ("keys", Shape::Object, Some(|| json!({}))),
    ("steps", Shape::List, None),
    ("inspect", Shape::List, None),
];

const STEP_FIELDS: &[Field] = &[
    ("_type", Shape::Str, Some(|| json!("step"))),
    ("name", Shape::Str, None),
    ("threshold", Shape::Int, Some(|| json!(1))),
    ("pubkeys", Shape::List, Some(|| json!([]))),
    ("expected_command", Shape::List, Some(|| json!([]))),
    ("expected_materials", Shape::List, Some(|| json!([]))),
    ("expected_products", Shape::List, Some(|| json!([]))),
];

const INSPECTION_FIELDS: &[Field] = &[
    ("_type", Shape::Str, Some(|| json!("inspection"))),
    ("name", Shape::Str, None),
    ("run", Shape::List, Some(|| json!([]))),
    ("expected_materials", Shape::List, Some(|| json!([]))),
    ("expected_products", Shape::List, Some(|| json!([]))),
];

/// One model object made of `obj` (at `at` in the document): notes and
/// problems go to `out`.
fn model_of(obj: &Map<String, Value>, at: &str, fields: &[Field], out: &mut Signable) -> Value {
    let mut model = Map::new();
    for &(name, shape, default) in fields {
        let value = match (obj.get(name), default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => {
                out.notes.push(format!(
                    "{at}.{name} is missing; in-toto's default {} is signed",
                    default()
                ));
                default()
            }
            (None, None) => {
                out.problems.push(format!("{at}.{name} is missing"));
                model.insert(name.to_string(), Value::Null);
                continue;
            }
        };
        let fits = match shape {
            Shape::Str => value.is_string(),
            Shape::Int => value.is_i64() || value.is_u64(),
            Shape::List => value.is_array(),
            Shape::Object => value.is_object(),
        };
        if !fits {
            let what = match shape {
                Shape::Str => "a string",
                Shape::Int => "an integer",
                Shape::List => "a list",
                Shape::Object => "an object",
            };
            out.problems.push(format!("{at}.{name} is not {what}"));
        }
        model.insert(name.to_string(), value);
    }
    // The type a step or inspection has in in-toto's model, whatever the file says.
    if let Some(t) = fields.iter().find(|f| f.0 == "_type").and_then(|f| f.2) {
        model.insert("_type".into(), t());
    }
    let dropped: Vec<&str> = obj
        .keys()
        .filter(|k| !fields.iter().any(|f| f.0 == k.as_str()))
        .map(String::as_str)
        .collect();
    if !dropped.is_empty() {
        out.notes.push(format!(
            "{at} has fields in-toto 3.1.0 does not keep (they are neither signed nor written): {}",
            dropped.join(", ")
        ));
    }
    Value::Object(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and checks as in-toto-sign does.
    fn for_signing(text: &str) -> Result<Document, Malformed> {
        let doc = Document::parse(text.as_bytes())?;
        doc.check_signable()?;
        Ok(doc)
    }

    #[test]
    fn malformed_files_are_named_with_the_problem() {
        for (text, want) in [
            ("{", "not JSON"),
            ("[]", "not a JSON object"),
            ("{\"signatures\": []}", "neither a classic"),
            (
                "{\"signatures\": 1, \"signed\": {}}",
                "`signatures` is not a list",
            ),
            (
                "{\"signatures\": [], \"signed\": {\"_type\": \"step\"}}",
                "neither \"link\"",
            ),
            ("{\"signatures\": [], \"signed\": {}}", "no string _type"),
            (
                "{\"signatures\": [], \"signed\": {\"_type\": \"link\"}}",
                "signed.name is missing",
            ),
            (
                "{\"signatures\": [], \"signed\": {\"_type\": \"layout\", \"steps\": [], \"inspect\": []}}",
                "signed.expires is missing",
            ),
            (
                "{\"signatures\": [], \"signed\": {\"_type\": \"layout\", \"expires\": \"x\", \"steps\": [{\"name\": \"a\", \"threshold\": \"2\"}], \"inspect\": []}}",
                "signed.steps[0].threshold is not an integer",
            ),
            (
                "{\"signatures\": [], \"signed\": {\"_type\": \"link\", \"name\": \"a\", \"environment\": {\"x\": 1.5}}}",
                "cannot be signed",
            ),
            (
                "{\"payload\": \"e30=\", \"payloadType\": \"text/plain\", \"signatures\": []}",
                "payloadType",
            ),
            (
                "{\"payload\": \"!!\", \"payloadType\": \"application/vnd.in-toto+json\", \"signatures\": []}",
                "base64",
            ),
            (
                "{\"payload\": \"e30=\", \"payloadType\": \"application/vnd.in-toto+json\", \"signatures\": []}",
                "no string _type",
            ),
        ] {
            let Err(Malformed(msg)) = for_signing(text) else {
                panic!("{text}: accepted")
            };
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn classic_layout_is_read_as_in_toto_models_it() {
        let doc = for_signing(
            r#"{"signatures": [{"keyid": "ab", "sig": "cd"}], "signed": {"_type": "layout", "expires": "2030-01-01T00:00:00Z", "steps": [{"_type": "x", "name": "s", "extra": 1}], "inspect": [], "custom": true}}"#,
        )
        .unwrap();
        assert_eq!(doc.kind(), Kind::Layout);
        let Signable {
            value,
            notes,
            problems,
        } = doc.signable();
        assert_eq!(
            value,
            json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z", "readme": "", "keys": {},
                "inspect": [], "steps": [{"_type": "step", "name": "s", "threshold": 1, "pubkeys": [],
                "expected_command": [], "expected_materials": [], "expected_products": []}]})
        );
        assert!(problems.is_empty(), "{problems:?}");
        let notes = notes.join("\n");
        assert!(
            notes.contains("signed has fields") && notes.contains("custom"),
            "{notes}"
        );
        assert!(
            notes.contains("signed.steps[0] has fields") && notes.contains("extra"),
            "{notes}"
        );
        assert!(notes.contains("signed.readme is missing"), "{notes}");
        assert_eq!(doc.signature_objects().len(), 1);
        assert_eq!(doc.message(), canonical::encode(&value).unwrap());
    }

    #[test]
    fn a_verifier_still_gets_the_model_of_what_does_not_fit_it() {
        let signable = signable(&json!({"_type": "link", "command": "x", "extra": 1}));
        assert_eq!(
            signable.value,
            json!({"_type": "link", "name": null, "command": "x", "materials": {},
                   "products": {}, "byproducts": {}, "environment": {}})
        );
        assert_eq!(
            signable.problems,
            ["signed.name is missing", "signed.command is not a list"]
        );
    }

    #[test]
    fn classic_signatures_by_the_same_keyid_are_replaced_and_only_the_first_counts() {
        let mut doc = for_signing(
            r#"{"signatures": [{"keyid": "a", "sig": "00"}, {"keyid": "b", "sig": "01"}, {"keyid": "a", "sig": "02"}], "signed": {"_type": "link", "name": "x"}}"#,
        )
        .unwrap();
        let a = ["a".to_string()];
        assert_eq!(
            doc.first_signatures_by(&a),
            [("a".to_string(), Some(vec![0]))]
        );
        assert!(doc.add_signature("a", &[9]));
        let sigs: Vec<(&str, &str)> = doc
            .signature_objects()
            .iter()
            .map(|s| (s["keyid"].as_str().unwrap(), s["sig"].as_str().unwrap()))
            .collect();
        assert_eq!(sigs, [("a", "09"), ("b", "01")]);
        assert!(!doc.add_signature("c", &[10]));
        assert_eq!(doc.signature_objects().len(), 3);
    }

    #[test]
    fn dsse_signatures_replace_by_keyid_and_duplicates_are_refused() {
        let payload = BASE64.encode(br#"{"_type": "link", "name": "x"}"#);
        let text = format!(
            r#"{{"payload": "{payload}", "payloadType": "application/vnd.in-toto+json", "signatures": [{{"keyid": "a", "sig": "AA=="}}, {{"keyid": "b", "sig": "AQ=="}}]}}"#
        );
        let mut doc = for_signing(&text).unwrap();
        assert_eq!(doc.kind(), Kind::Link { name: "x".into() });
        doc.add_signature("a", &[7]);
        doc.add_signature("c", &[8]);
        let keyids: Vec<&str> = doc.signatures().map(|(keyid, _)| keyid).collect();
        assert_eq!(keyids, ["a", "b", "c"]);
        assert_eq!(doc.signature_objects()[0]["sig"], "Bw==");
        let dup = text.replace("\"keyid\": \"b\"", "\"keyid\": \"a\"");
        assert!(Document::parse(dup.as_bytes()).is_ok());
        let Err(Malformed(msg)) = for_signing(&dup) else {
            panic!("duplicate keyids accepted")
        };
        assert!(msg.contains("two signatures by keyid a"), "{msg}");
    }
}
