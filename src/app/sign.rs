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
//! Reading the file, in-toto's model view, the signatures and the bytes
//! written are `tracelink::link::signed`'s (shared with `tracelink verify`);
//! this file is the command's wiring: keys (with the password prompt),
//! messages, exit statuses and the atomic write.
//!
//! Exit status: 0 signed, or every key verified; 1 the file is not usable
//! in-toto metadata, a signature does not verify, or the result cannot be
//! written; 2 usage errors (flags, unusable key files, several keys or
//! --append for a link).

use crate::cli::SignArgs;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use tracelink::keys::{KeyError, KeyIdFormat, PrivateKey, PublicKey};
use tracelink::link::{self, signed::Document, signed::Kind};
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
    let mut doc = load(&args.file)?;
    let kind = doc.kind();
    if let Kind::Link { .. } = kind {
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
    let message = doc.message().into_owned();
    if !args.append {
        doc.clear_signatures();
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
    let back = parse(&args.file, &bytes)?;
    let back_message = back.message();
    let all_good = back_message == message
        && new_keyids.iter().all(|(keyid, public)| {
            back.first_signatures_by(std::slice::from_ref(keyid))
                .iter()
                .any(|(_, sig)| sig.as_ref().is_some_and(|s| public.verify(&message, s)))
        });
    if !all_good {
        return Err(Failure::Bad(format!(
            "{}: the signed file does not verify when read back; nothing was written",
            args.file.display()
        )));
    }

    let out = match (&args.output, &kind) {
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
        kind.noun(),
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
    let doc = load(&args.file)?;
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
        let sigs = doc.first_signatures_by(&keyids);
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

/// Reads a layout or link as in-toto-sign does (refusing what does not fit
/// in-toto's model) and warns about the fields the model drops or defaults.
fn load(path: &Path) -> Result<Document, Failure> {
    // Another person's file: a FIFO or a huge file must not hang us.
    let bytes = tracelink::untrusted::read(path, tracelink::untrusted::METADATA)
        .map_err(|e| Failure::Bad(format!("cannot read {}: {e}", path.display())))?;
    let doc = parse(path, &bytes)?;
    let notes = doc.check_signable().map_err(malformed(path))?;
    for note in notes {
        eprintln!("tracelink: warning: {}: {note}", path.display());
    }
    Ok(doc)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Document, Failure> {
    Document::parse(bytes).map_err(malformed(path))
}

fn malformed(path: &Path) -> impl Fn(link::signed::Malformed) -> Failure + '_ {
    move |reason| {
        Failure::Bad(format!(
            "{}: not in-toto layout or link metadata: {reason}",
            path.display()
        ))
    }
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
