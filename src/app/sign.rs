//! `tracelink sign`: add signatures to an in-toto layout or link, or check
//! them, as in-toto 3.1.0's `in-toto-sign` does.
//!
//! Signing keeps the file's wrapper. A classic `{"signatures", "signed"}`
//! document is signed over the canonical JSON of `signed` as in-toto reads it
//! (fields in-toto's model does not have are dropped, missing optional ones
//! get in-toto's defaults, both with a warning: in-toto verifies exactly that
//! view) and written as in-toto writes it (`json.dumps(indent=1,
//! sort_keys=True)`, no final newline), so the file is byte-identical to
//! in-toto-sign's for the same signatures. A DSSE envelope's payload bytes
//! are signed as they are and the envelope is written as in-toto writes it
//! (`json.dumps(sort_keys=True)`). Every new signature is checked against
//! the key's public half in the bytes about to be written, and the file is
//! written atomically.
//!
//! With --append, a key that already signed the file has its signature
//! replaced in place rather than added a second time (in-toto's verifiers
//! check only the first signature by a keyid, so a stale first one would
//! hide the new one); otherwise the signatures are replaced, as in-toto-sign.
//! `--verify` follows in-toto too: the first signature by each of the key's
//! keyids (Python and legacy convention) is checked.
//!
//! Exit status: 0 signed, or every key verified; 1 the file is not usable
//! in-toto metadata, a signature does not verify, or the result cannot be
//! written; 2 usage errors (flags, unusable key files, several keys or
//! --append for a link).

use crate::cli::SignArgs;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE as BASE64_URL};
use serde_json::{Map, Value, json};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use tracelink::keys::{KeyError, KeyIdFormat, PrivateKey, PublicKey};
use tracelink::link::{self, canonical, dsse, pyjson};
use zeroize::Zeroizing;

const SIGNED: i32 = 0;
const NOT_VERIFIED: i32 = 1;

/// Why `tracelink sign` stops, and with which exit status.
#[derive(Debug)]
enum Failure {
    /// The metadata file or a signature is bad, or the result cannot be written: 1.
    Bad(String),
    /// The command line asks for something that cannot be done: 2.
    Usage(String),
}

impl Failure {
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Bad(_) => 1,
            Failure::Usage(_) => 2,
        }
    }
}

pub fn sign(args: SignArgs) -> anyhow::Result<i32> {
    let result = if args.verify {
        verify(&args)
    } else {
        sign_file(&args)
    };
    Ok(match result {
        Ok(code) => code,
        Err(failure) => {
            let (Failure::Bad(msg) | Failure::Usage(msg)) = &failure;
            eprintln!("tracelink: error: {msg}");
            failure.exit_code()
        }
    })
}

// ------------------------------------------------------------------ signing

fn sign_file(args: &SignArgs) -> Result<i32, Failure> {
    let mut doc = Document::load(&args.file)?;
    doc.warn();
    if let Kind::Link { .. } = doc.kind {
        // in-toto-sign: a link belongs to one functionary and is named after it.
        if args.signing_keys.len() > 1 {
            return Err(Failure::Usage(format!(
                "{}: a link is signed by exactly one key (it is named <step>.<keyid8>.link after its functionary); {} given",
                args.file.display(),
                args.signing_keys.len()
            )));
        }
        if args.append {
            return Err(Failure::Usage(format!(
                "{}: --append is for layouts; a link carries one functionary's signature",
                args.file.display()
            )));
        }
    }
    let keys = load_signing_keys(args)?;
    let message = doc.message();
    if !args.append {
        doc.signatures.clear();
    }
    let mut new_keyids: Vec<(String, PublicKey)> = Vec::new();
    for (path, key) in &keys {
        let format = args
            .keyid_format
            .map(super::keyid_format)
            .unwrap_or_else(|| key.default_keyid_format());
        let keyid = key.keyid(format);
        if new_keyids.iter().any(|(k, _)| *k == keyid) {
            eprintln!(
                "tracelink: warning: {} is a key already given (keyid {keyid}); it signs once",
                path.display()
            );
            continue;
        }
        let sig = key
            .try_sign(&message)
            .map_err(|e| Failure::Bad(format!("{}: cannot sign: {e}", path.display())))?;
        if !key.public().verify(&message, &sig) {
            return Err(Failure::Bad(format!(
                "{}: the signature just made with {} does not verify with its public key; nothing was written",
                args.file.display(),
                path.display()
            )));
        }
        if doc.add_signature(&keyid, &sig) {
            eprintln!(
                "tracelink: {}: replaced the signature by keyid {keyid} it already had",
                args.file.display()
            );
        }
        new_keyids.push((keyid, key.public()));
    }
    let bytes = doc.to_bytes();
    // Read the bytes about to be written back as a verifier would: they must
    // cover what we signed, and every new signature must verify in them.
    let back = Document::parse(&args.file, &bytes)?;
    let back_message = back.message();
    let all_good = back_message == message
        && new_keyids.iter().all(|(keyid, public)| {
            back.signatures_by(std::slice::from_ref(keyid))
                .iter()
                .any(|(_, sig)| sig.as_ref().is_some_and(|s| public.verify(&message, s)))
        });
    if !all_good {
        return Err(Failure::Bad(format!(
            "{}: the signed file does not verify when read back; nothing was written",
            args.file.display()
        )));
    }

    let out = match (&args.output, &doc.kind) {
        (Some(out), _) => out.clone(),
        (None, Kind::Layout) => args.file.clone(),
        (None, Kind::Link { name }) => {
            // in-toto-sign writes <name>.<keyid8>.link in the current directory.
            if name.is_empty() || name.contains('/') || name.contains('\0') || name == ".." {
                return Err(Failure::Bad(format!(
                    "{}: the link's name {name:?} cannot make a file name <name>.<keyid8>.link; give -o",
                    args.file.display()
                )));
            }
            PathBuf::from(link::file_name(name, &new_keyids[0].0))
        }
    };
    write(&out, &bytes)?;
    let ids: Vec<&str> = new_keyids.iter().map(|(k, _)| k.as_str()).collect();
    eprintln!(
        "tracelink: signed {} {} with {} ({}); wrote {}",
        doc.kind.noun(),
        args.file.display(),
        plural(ids.len(), "key"),
        ids.join(", "),
        out.display()
    );
    Ok(SIGNED)
}

/// Writes `bytes` to `path` atomically, keeping the mode of a file it replaces.
fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt as _;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::Usage(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let old_mode = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    let written =
        link::write_atomically(dir, name, bytes).map_err(|e| Failure::Bad(error_chain(&e)))?;
    // A layout signed in place keeps its mode (in-toto-sign rewrites the file).
    if let Some(mode) = old_mode
        && let Err(e) = std::fs::set_permissions(&written, std::fs::Permissions::from_mode(mode))
    {
        eprintln!(
            "tracelink: warning: {}: written, but its mode {mode:04o} could not be restored: {e}",
            path.display()
        );
    }
    Ok(())
}

fn load_signing_keys(args: &SignArgs) -> Result<Vec<(PathBuf, PrivateKey)>, Failure> {
    let prompt = |what: &str| -> Result<Zeroizing<String>, Failure> {
        rpassword::prompt_password(format!("Password for {what}: "))
            .map(Zeroizing::new)
            .map_err(|e| Failure::Usage(format!("cannot read the password from the terminal: {e}")))
    };
    // -P alone prompts once for all keys, as in-toto-sign --prompt does.
    let password: Option<Zeroizing<String>> = match args.password.as_deref() {
        Some("") => Some(prompt(&if args.signing_keys.len() == 1 {
            args.signing_keys[0].display().to_string()
        } else {
            "the signing keys".to_string()
        })?),
        Some(password) => Some(Zeroizing::new(password.to_string())),
        None => None,
    };
    let mut keys = Vec::new();
    for path in &args.signing_keys {
        let key = match PrivateKey::load(path, password.as_ref().map(|p| p.as_str())) {
            Err(KeyError::NeedsPassword { .. })
                if password.is_none() && std::io::stdin().is_terminal() =>
            {
                let password = prompt(&path.display().to_string())?;
                PrivateKey::load(path, Some(&password))
            }
            other => other,
        }
        .map_err(|e| Failure::Usage(error_chain(&e)))?;
        if let Some(mode) = tracelink::keys::insecure_mode(path) {
            eprintln!(
                "tracelink: warning: private key {} can be accessed by other users (mode {mode:04o}); `chmod 600` it",
                path.display()
            );
        }
        keys.push((path.clone(), key));
    }
    Ok(keys)
}

// ------------------------------------------------------------ verification

fn verify(args: &SignArgs) -> Result<i32, Failure> {
    let doc = Document::load(&args.file)?;
    doc.warn();
    let message = doc.message();
    let mut keys = Vec::new();
    for path in &args.verification_keys {
        let key = PublicKey::load(path).map_err(|e| Failure::Usage(error_chain(&e)))?;
        keys.push((path, key));
    }
    let file = args.file.display();
    let mut failed = 0;
    for (path, key) in &keys {
        let keyids = [
            key.keyid(KeyIdFormat::Python),
            key.keyid(KeyIdFormat::Legacy),
        ];
        let sigs = doc.signatures_by(&keyids);
        let good = sigs
            .iter()
            .find(|(_, sig)| sig.as_ref().is_some_and(|s| key.verify(&message, s)));
        match (good, sigs.first()) {
            (Some((keyid, _)), _) => {
                println!(
                    "verified: {file}: signed by {} (keyid {keyid})",
                    path.display()
                );
            }
            (None, Some((keyid, _))) => {
                failed += 1;
                println!(
                    "NOT verified: {file}: the signature by {} (keyid {keyid}) does not verify",
                    path.display()
                );
            }
            (None, None) => {
                failed += 1;
                println!(
                    "NOT verified: {file}: no signature by {} (keyid {}, or {} in the legacy convention)",
                    path.display(),
                    keyids[0],
                    keyids[1]
                );
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "tracelink: {file}: {} of {} did not verify",
            failed,
            plural(keys.len(), "key")
        );
        return Ok(NOT_VERIFIED);
    }
    Ok(SIGNED)
}

// ---------------------------------------------------------------- metadata

/// What the signed object is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Link { name: String },
    Layout,
}

impl Kind {
    fn noun(&self) -> &'static str {
        match self {
            Kind::Link { .. } => "link",
            Kind::Layout => "layout",
        }
    }
}

/// How the file wraps the signed object.
#[derive(Debug, Clone)]
enum Wrapper {
    /// `signed`, as in-toto's model reads it.
    Classic { signed: Value },
    /// The payload bytes, signed as they are.
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
    },
}

/// A layout or link file, classic or DSSE, with its signatures.
#[derive(Debug, Clone)]
struct Document {
    path: PathBuf,
    kind: Kind,
    wrapper: Wrapper,
    /// The signature objects as the file has them (DSSE: one per keyid).
    signatures: Vec<Map<String, Value>>,
    /// What reading the file as in-toto does changed (for warnings).
    notes: Vec<String>,
}

impl Document {
    fn load(path: &Path) -> Result<Document, Failure> {
        let bytes = std::fs::read(path)
            .map_err(|e| Failure::Bad(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Document, Failure> {
        let bad = |reason: String| {
            Failure::Bad(format!(
                "{}: not in-toto layout or link metadata: {reason}",
                path.display()
            ))
        };
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(mut doc) = doc else {
            return Err(bad("not a JSON object".into()));
        };
        let mut notes = Vec::new();
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
        let (kind, wrapper) = if doc.contains_key("payload") {
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
            let payload = doc
                .get("payload")
                .and_then(Value::as_str)
                .and_then(decode_base64)
                .ok_or_else(|| bad("DSSE payload is not a base64 string".into()))?;
            let object: Value = serde_json::from_slice(&payload)
                .map_err(|e| bad(format!("DSSE payload is not JSON: {e}")))?;
            // Checked for its shape only: the payload bytes are signed as they are.
            let mut ignored = Vec::new();
            let (kind, _) = read_signed(&object, &mut ignored).map_err(&bad)?;
            let mut seen = std::collections::BTreeSet::new();
            for sig in &signatures {
                let keyid = sig["keyid"].as_str().unwrap_or_default();
                if !seen.insert(keyid.to_string()) {
                    return Err(bad(format!(
                        "the DSSE envelope has two signatures by keyid {keyid}"
                    )));
                }
            }
            let wrapper = Wrapper::Dsse {
                payload_type: payload_type.to_string(),
                payload,
            };
            (kind, wrapper)
        } else if let Some(signed) = doc.get("signed") {
            let (kind, signed) = read_signed(signed, &mut notes).map_err(&bad)?;
            (kind, Wrapper::Classic { signed })
        } else {
            return Err(bad(
                "neither a classic document ({\"signatures\", \"signed\"}) nor a DSSE envelope"
                    .into(),
            ));
        };
        Ok(Document {
            path: path.into(),
            kind,
            wrapper,
            signatures,
            notes,
        })
    }

    fn warn(&self) {
        for note in &self.notes {
            eprintln!("tracelink: warning: {}: {note}", self.path.display());
        }
    }

    /// The bytes a signature covers.
    fn message(&self) -> Vec<u8> {
        match &self.wrapper {
            Wrapper::Classic { signed } => {
                canonical::encode(signed).expect("read_signed refused what cannot be encoded")
            }
            Wrapper::Dsse {
                payload_type,
                payload,
            } => dsse::pae(payload_type, payload),
        }
    }

    /// For each of `keyids`, the first signature by it (in-toto's verifiers
    /// check only that one), in file order, with the signature bytes if they
    /// decode.
    fn signatures_by(&self, keyids: &[String]) -> Vec<(String, Option<Vec<u8>>)> {
        let mut seen = Vec::new();
        self.signatures
            .iter()
            .filter_map(|sig| {
                let keyid = sig.get("keyid")?.as_str()?;
                if !keyids.iter().any(|k| k == keyid) || seen.contains(&keyid) {
                    return None;
                }
                seen.push(keyid);
                let bytes =
                    sig.get("sig")
                        .and_then(Value::as_str)
                        .and_then(|s| match self.wrapper {
                            Wrapper::Classic { .. } => hex::decode(s).ok(),
                            Wrapper::Dsse { .. } => decode_base64(s),
                        });
                Some((keyid.to_string(), bytes))
            })
            .collect()
    }

    /// Adds a signature at the end, or in place of the signatures by the
    /// same keyid the file already has (returns true then). in-toto keeps
    /// DSSE signatures in a dict by keyid, so does the same there; for the
    /// classic form in-toto-sign --append would add a second entry, but its
    /// verifiers check only the first signature by a keyid: a stale first
    /// one would hide ours.
    fn add_signature(&mut self, keyid: &str, sig: &[u8]) -> bool {
        let encoded = match self.wrapper {
            Wrapper::Classic { .. } => hex::encode(sig),
            Wrapper::Dsse { .. } => BASE64.encode(sig),
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

    /// The file as in-toto writes it.
    fn to_bytes(&self) -> Vec<u8> {
        match &self.wrapper {
            Wrapper::Classic { signed } => {
                let sigs: Vec<Value> = self.signatures.iter().cloned().map(Value::Object).collect();
                let doc = json!({"signatures": sigs, "signed": signed});
                pyjson::dumps(&doc, Some(1)).into_bytes()
            }
            Wrapper::Dsse {
                payload_type,
                payload,
            } => {
                // in-toto re-encodes every signature in standard base64.
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
                    "payload": BASE64.encode(payload),
                    "payloadType": payload_type,
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

/// A link or layout object as in-toto 3.1.0's model reads it: the fields
/// its classes have, with their defaults where missing; other fields are
/// dropped (in-toto verifies and writes only what its model keeps). Notes
/// what changed.
fn read_signed(value: &Value, notes: &mut Vec<String>) -> Result<(Kind, Value), String> {
    let obj = value
        .as_object()
        .ok_or("the signed object is not a JSON object")?;
    let result = match obj.get("_type").and_then(Value::as_str) {
        Some("link") => {
            let signed = read_fields(obj, "signed", LINK_FIELDS, notes)?;
            let name = signed["name"].as_str().unwrap_or_default().to_string();
            (Kind::Link { name }, signed)
        }
        Some("layout") => {
            let mut signed = read_fields(obj, "signed", LAYOUT_FIELDS, notes)?;
            for (list, fields) in [("steps", STEP_FIELDS), ("inspect", INSPECTION_FIELDS)] {
                let items = signed[list].as_array_mut().expect("checked by read_fields");
                for (i, item) in items.iter_mut().enumerate() {
                    let at = format!("signed.{list}[{i}]");
                    let item_obj = item
                        .as_object()
                        .ok_or_else(|| format!("{at} is not an object"))?;
                    *item = read_fields(item_obj, &at, fields, notes)?;
                }
            }
            (Kind::Layout, signed)
        }
        Some(other) => {
            return Err(format!(
                "_type is {other:?}, neither \"link\" nor \"layout\""
            ));
        }
        None => return Err("the signed object has no string _type".into()),
    };
    canonical::encode(&result.1).map_err(|e| format!("cannot be signed: {e}"))?;
    Ok(result)
}

/// JSON shapes the fields must have.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Str,
    Int,
    List,
    Object,
}

/// A field of an in-toto model class: name, shape, default (None: required).
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

fn read_fields(
    obj: &Map<String, Value>,
    at: &str,
    fields: &[Field],
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let mut out = Map::new();
    for &(name, shape, default) in fields {
        let value = match (obj.get(name), default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => {
                notes.push(format!(
                    "{at}.{name} is missing; in-toto's default {} is signed",
                    default()
                ));
                default()
            }
            (None, None) => return Err(format!("{at}.{name} is missing")),
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
            return Err(format!("{at}.{name} is not {what}"));
        }
        out.insert(name.to_string(), value);
    }
    // The type a step or inspection has in in-toto's model, whatever the file says.
    if let Some(t) = fields.iter().find(|f| f.0 == "_type").and_then(|f| f.2) {
        out.insert("_type".into(), t());
    }
    let dropped: Vec<&str> = obj
        .keys()
        .filter(|k| !fields.iter().any(|f| f.0 == k.as_str()))
        .map(String::as_str)
        .collect();
    if !dropped.is_empty() {
        notes.push(format!(
            "{at} has fields in-toto 3.1.0 does not keep (they are neither signed nor written): {}",
            dropped.join(", ")
        ));
    }
    Ok(Value::Object(out))
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, Failure> {
        Document::parse(Path::new("f.layout"), text.as_bytes())
    }

    fn bad(text: &str) -> String {
        match parse(text) {
            Err(Failure::Bad(msg)) => msg,
            other => panic!("{text}: {other:?}"),
        }
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
            let msg = bad(text);
            assert!(msg.starts_with("f.layout: "), "{msg}");
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn classic_layout_is_read_as_in_toto_models_it() {
        let doc = parse(
            r#"{"signatures": [{"keyid": "ab", "sig": "cd"}], "signed": {"_type": "layout", "expires": "2030-01-01T00:00:00Z", "steps": [{"_type": "x", "name": "s", "extra": 1}], "inspect": [], "custom": true}}"#,
        )
        .unwrap();
        assert_eq!(doc.kind, Kind::Layout);
        let Wrapper::Classic { signed } = &doc.wrapper else {
            panic!()
        };
        assert_eq!(
            signed,
            &json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z", "readme": "", "keys": {},
                "inspect": [], "steps": [{"_type": "step", "name": "s", "threshold": 1, "pubkeys": [],
                "expected_command": [], "expected_materials": [], "expected_products": []}]})
        );
        let notes = doc.notes.join("\n");
        assert!(
            notes.contains("signed has fields") && notes.contains("custom"),
            "{notes}"
        );
        assert!(
            notes.contains("signed.steps[0] has fields") && notes.contains("extra"),
            "{notes}"
        );
        assert!(notes.contains("signed.readme is missing"), "{notes}");
        assert_eq!(doc.signatures.len(), 1);
    }

    #[test]
    fn classic_signatures_by_the_same_keyid_are_replaced_and_only_the_first_counts() {
        let mut doc = parse(
            r#"{"signatures": [{"keyid": "a", "sig": "00"}, {"keyid": "b", "sig": "01"}, {"keyid": "a", "sig": "02"}], "signed": {"_type": "link", "name": "x"}}"#,
        )
        .unwrap();
        let a = ["a".to_string()];
        assert_eq!(doc.signatures_by(&a), [("a".to_string(), Some(vec![0]))]);
        assert!(doc.add_signature("a", &[9]));
        let sigs: Vec<(&str, &str)> = doc
            .signatures
            .iter()
            .map(|s| (s["keyid"].as_str().unwrap(), s["sig"].as_str().unwrap()))
            .collect();
        assert_eq!(sigs, [("a", "09"), ("b", "01")]);
        assert!(!doc.add_signature("c", &[10]));
        assert_eq!(doc.signatures.len(), 3);
    }

    #[test]
    fn dsse_signatures_replace_by_keyid_and_duplicates_are_refused() {
        let payload = BASE64.encode(br#"{"_type": "link", "name": "x"}"#);
        let text = format!(
            r#"{{"payload": "{payload}", "payloadType": "application/vnd.in-toto+json", "signatures": [{{"keyid": "a", "sig": "AA=="}}, {{"keyid": "b", "sig": "AQ=="}}]}}"#
        );
        let mut doc = parse(&text).unwrap();
        assert_eq!(doc.kind, Kind::Link { name: "x".into() });
        doc.add_signature("a", &[7]);
        doc.add_signature("c", &[8]);
        let keyids: Vec<&str> = doc
            .signatures
            .iter()
            .map(|s| s["keyid"].as_str().unwrap())
            .collect();
        assert_eq!(keyids, ["a", "b", "c"]);
        assert_eq!(doc.signatures[0]["sig"], "Bw==");
        let dup = text.replace("\"keyid\": \"b\"", "\"keyid\": \"a\"");
        assert!(bad(&dup).contains("two signatures by keyid a"));
    }
}
