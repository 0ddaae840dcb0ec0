//! `tracelink sign` against in-toto 3.1.0's in-toto-sign and in-toto-verify:
//! layouts (classic and DSSE) signed by tracelink with ed25519, RSA and
//! ECDSA keys verify with both; files in-toto-sign signed verify with
//! `tracelink sign --verify`; files are byte-identical to in-toto-sign's for
//! deterministic (ed25519) signatures; --append, link file names, tampering,
//! wrong keys, usage errors and exit statuses.
//!
//! The interoperability tests need the in-toto 3.1.0 venv
//! (`TRACELINK_INTOTO_VENV`, see tests/common) and print `SKIP: ...` without
//! it; the others need nothing but the binary.

mod common;

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// in-toto's keyid of tests/vectors/rfc8032.pub.
const ED_KEYID: &str = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";
const ED_LEGACY_KEYID: &str = "01e8764eedab63b3593451765fc337b2cc6d2c66923845da255f448c19e2afc5";

/// A temporary directory holding the test keys: ed.pem/ed.pub (RFC 8032),
/// rsa.pem/rsa.pub (3072 bits), ec.pem/ec.pub (P-256), private ones 0600.
struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys");
        for (src, dst) in [
            (common::vector("rfc8032.pem"), "ed.pem"),
            (common::vector("rfc8032.pub"), "ed.pub"),
            (data.join("rsa.pem"), "rsa.pem"),
            (data.join("rsa.pub"), "rsa.pub"),
            (data.join("ec.pem"), "ec.pem"),
            (data.join("ec.pub"), "ec.pub"),
        ] {
            fs::copy(src, dir.join(dst)).unwrap();
            let mode = if dst.ends_with(".pem") { 0o600 } else { 0o644 };
            fs::set_permissions(dir.join(dst), fs::Permissions::from_mode(mode)).unwrap();
        }
        Case { _tmp: tmp, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `tracelink ARGS` in the case directory, stdin closed.
    fn tl(&self, args: &[&str]) -> Output {
        common::output(
            common::tracelink()
                .args(args)
                .current_dir(&self.dir)
                .stdin(Stdio::null()),
        )
    }

    /// `tracelink sign FILE -k KEYS...`, which must succeed.
    fn sign(&self, file: &str, keys: &[&str], extra: &[&str]) -> Output {
        let mut args = vec!["sign", file];
        args.extend_from_slice(extra);
        args.push("-k");
        args.extend_from_slice(keys);
        let out = self.tl(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            common::show(&out)
        );
        out
    }

    /// `tracelink sign FILE --verify --verification-keys PUBS...`
    fn verify(&self, file: &str, pubs: &[&str]) -> Output {
        let mut args = vec!["sign", file, "--verify", "--verification-keys"];
        args.extend_from_slice(pubs);
        self.tl(&args)
    }

    /// A venv tool in the case directory.
    fn venv(&self, venv: &Path, tool: &str, args: &[&str]) -> Output {
        common::output(
            Command::new(venv.join("bin").join(tool))
                .args(args)
                .current_dir(&self.dir),
        )
    }

    /// `in-toto-sign -f FILE -k PUBS... --verify` must accept FILE.
    fn in_toto_sign_verifies(&self, venv: &Path, file: &str, pubs: &[&str]) {
        let mut args = vec!["-f", file, "-k"];
        args.extend_from_slice(pubs);
        args.push("--verify");
        let out = self.venv(venv, "in-toto-sign", &args);
        assert!(
            out.status.success(),
            "in-toto-sign {args:?}: {}",
            common::show(&out)
        );
    }

    /// `in-toto-verify --layout FILE --verification-keys PUBS...` must pass.
    fn in_toto_verify_passes(&self, venv: &Path, file: &str, pubs: &[&str]) {
        let mut args = vec!["--layout", file, "--verification-keys"];
        args.extend_from_slice(pubs);
        let out = self.venv(venv, "in-toto-verify", &args);
        assert!(
            out.status.success(),
            "in-toto-verify {args:?}: {}",
            common::show(&out)
        );
    }

    /// Writes an unsigned layout with no steps, expiring in a month, made
    /// with in-toto's Python API: `NAME` classic and `NAME.dsse` as DSSE.
    fn python_layout(&self, venv: &Path, name: &str) {
        let script = format!(
            "from in_toto.models.layout import Layout\n\
             from in_toto.models.metadata import Metablock, Envelope\n\
             layout = Layout(readme='tracelink sign test \\u00e9')\n\
             Metablock(signed=layout).dump('{name}')\n\
             Envelope.from_signable(layout).dump('{name}.dsse')\n"
        );
        let out = self.venv(venv, "python", &["-c", &script]);
        assert!(out.status.success(), "{}", common::show(&out));
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_slice(&self.read(name)).unwrap()
    }

    fn copy(&self, from: &str, to: &str) {
        fs::copy(self.path(from), self.path(to)).unwrap();
    }

    /// The keyids of FILE's signatures (classic or DSSE), in file order.
    fn keyids(&self, name: &str) -> Vec<String> {
        self.json(name)["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["keyid"].as_str().unwrap().to_string())
            .collect()
    }

    /// The keyid in-toto gives tests/data/keys/NAME.
    fn intoto_keyid(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/intoto_keyids.json");
        let all: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        all[name]["keyid"].as_str().unwrap().to_string()
    }

    /// `tracelink run -x -p product -n NAME -k KEY FLAGS`: a link in the case directory.
    fn link(&self, name: &str, key: &str, flags: &[&str]) -> String {
        fs::write(self.path("product"), b"bytes\n").unwrap();
        let mut args = vec!["run", "-x", "-p", "product", "-n", name, "-k", key];
        args.extend_from_slice(flags);
        let out = self.tl(&args);
        assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
        let keyid = match key {
            "ed.pem" => ED_KEYID.to_string(),
            other => Case::intoto_keyid(other),
        };
        let file = format!("{name}.{}.link", &keyid[..8]);
        assert!(self.path(&file).is_file(), "{file}: {}", common::show(&out));
        file
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails if any line of a private key's PEM body shows up in the output.
fn assert_no_key_material(case: &Case, out: &Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for key in ["ed.pem", "rsa.pem", "ec.pem"] {
        let pem = fs::read_to_string(case.path(key)).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!all.contains(line), "{key} material printed: {all}");
        }
    }
}

// ------------------------------------------------- against in-toto 3.1.0

#[test]
fn layouts_signed_by_tracelink_verify_with_in_toto_sign_and_in_toto_verify() {
    let test = "layouts_signed_by_tracelink_verify_with_in_toto_sign_and_in_toto_verify";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    for form in ["root.layout", "root.layout.dsse"] {
        // Each key alone, then all three at once.
        for keys in [
            &["ed.pem"][..],
            &["rsa.pem"],
            &["ec.pem"],
            &["ed.pem", "rsa.pem", "ec.pem"],
        ] {
            let file = format!("signed-{}", keys.join("-"));
            case.copy(form, &file);
            let out = case.sign(&file, keys, &[]);
            assert_no_key_material(&case, &out);
            let pubs: Vec<String> = keys.iter().map(|k| k.replace(".pem", ".pub")).collect();
            let pubs: Vec<&str> = pubs.iter().map(String::as_str).collect();
            assert_eq!(case.keyids(&file).len(), keys.len(), "{form} {keys:?}");
            assert_eq!(
                case.json(&file).get("payload").is_some(),
                form.ends_with(".dsse"),
                "{form}: the wrapper is kept"
            );
            case.in_toto_sign_verifies(&venv, &file, &pubs);
            case.in_toto_verify_passes(&venv, &file, &pubs);
            let out = case.verify(&file, &pubs);
            assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
            assert_eq!(
                stdout(&out)
                    .lines()
                    .filter(|l| l.starts_with("verified: "))
                    .count(),
                keys.len(),
                "{}",
                common::show(&out)
            );
        }
    }
}

#[test]
fn ed25519_signed_files_are_byte_identical_to_in_toto_signs() {
    let test = "ed25519_signed_files_are_byte_identical_to_in_toto_signs";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    for form in ["root.layout", "root.layout.dsse"] {
        case.copy(form, "ours");
        case.copy(form, "theirs");
        case.sign("ours", &["ed.pem"], &[]);
        let out = case.venv(&venv, "in-toto-sign", &["-f", "theirs", "-k", "ed.pem"]);
        assert!(out.status.success(), "{}", common::show(&out));
        assert_eq!(
            String::from_utf8(case.read("ours")).unwrap(),
            String::from_utf8(case.read("theirs")).unwrap(),
            "{form}"
        );
        // --append with a second (deterministic) signature, same again.
        case.sign("ours", &["ed.pem"], &["-a", "--keyid-format", "legacy"]);
        let out = case.venv(&venv, "python", &["-c", &append_legacy_script("theirs")]);
        assert!(out.status.success(), "{}", common::show(&out));
        assert_eq!(
            String::from_utf8(case.read("ours")).unwrap(),
            String::from_utf8(case.read("theirs")).unwrap(),
            "{form} with --append"
        );
        assert_eq!(case.keyids("ours"), [ED_KEYID, ED_LEGACY_KEYID]);
    }

    // A link re-signed: in-toto-sign and tracelink write the same file
    // under the same name in the current directory.
    let link = case.link("build", "ec.pem", &[]);
    fs::create_dir(case.path("theirs.d")).unwrap();
    let out = common::output(
        Command::new(venv.join("bin/in-toto-sign"))
            .args(["-f", &format!("../{link}"), "-k", "../ed.pem"])
            .current_dir(case.path("theirs.d")),
    );
    assert!(out.status.success(), "{}", common::show(&out));
    let out = case.sign(&link, &["ed.pem"], &[]);
    let name = "build.74c181c7.link";
    assert!(stderr(&out).contains(name), "{}", common::show(&out));
    assert_eq!(
        String::from_utf8(case.read(name)).unwrap(),
        String::from_utf8(case.read(&format!("theirs.d/{name}"))).unwrap()
    );
}

/// Python that appends a signature by the RFC 8032 key under its legacy
/// keyid to FILE, as `in-toto-sign -a` would with a legacy-keyid signer.
fn append_legacy_script(file: &str) -> String {
    format!(
        "from cryptography.hazmat.primitives.serialization import load_pem_private_key\n\
         from securesystemslib.signer import CryptoSigner, SSlibKey\n\
         from in_toto.models.metadata import Metadata\n\
         key = load_pem_private_key(open('ed.pem', 'rb').read(), None)\n\
         public = SSlibKey.from_crypto(key.public_key(), '{ED_LEGACY_KEYID}')\n\
         md = Metadata.load('{file}')\n\
         md.create_signature(CryptoSigner(key, public))\n\
         md.dump('{file}')\n"
    )
}

#[test]
fn files_signed_by_in_toto_sign_verify_with_tracelink() {
    let test = "files_signed_by_in_toto_sign_verify_with_tracelink";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    for form in ["root.layout", "root.layout.dsse"] {
        case.copy(form, "signed");
        let out = case.venv(
            &venv,
            "in-toto-sign",
            &["-f", "signed", "-k", "ed.pem", "rsa.pem", "ec.pem"],
        );
        assert!(out.status.success(), "{}", common::show(&out));
        let out = case.verify("signed", &["ec.pub", "ed.pub", "rsa.pub"]);
        assert_eq!(out.status.code(), Some(0), "{form}: {}", common::show(&out));
        let text = stdout(&out);
        for (public, keyid) in [
            ("ec.pub", Case::intoto_keyid("ec.pem")),
            ("ed.pub", ED_KEYID.to_string()),
            ("rsa.pub", Case::intoto_keyid("rsa.pem")),
        ] {
            assert!(
                text.lines().any(|l| l.starts_with("verified: signed")
                    && l.contains(public)
                    && l.contains(&keyid)),
                "{form}: one line for {public}\n{text}"
            );
        }
    }
    // Links in-toto-run signed, classic and DSSE.
    fs::write(case.path("product"), b"bytes\n").unwrap();
    for flags in [&[][..], &["--use-dsse"]] {
        let mut args = vec![
            "-n",
            "step",
            "--signing-key",
            "rsa.pem",
            "-p",
            "product",
            "-x",
        ];
        args.extend_from_slice(flags);
        let out = case.venv(&venv, "in-toto-run", &args);
        assert!(out.status.success(), "{}", common::show(&out));
        let link = format!("step.{}.link", &Case::intoto_keyid("rsa.pem")[..8]);
        let out = case.verify(&link, &["rsa.pub"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            common::show(&out)
        );
        let out = case.verify(&link, &["ec.pub"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{flags:?}: {}",
            common::show(&out)
        );
    }
}

#[test]
fn append_keeps_the_old_signature_and_the_default_replaces_it() {
    let test = "append_keeps_the_old_signature_and_the_default_replaces_it";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    for form in ["root.layout", "root.layout.dsse"] {
        case.copy(form, "l");
        // The first signature by in-toto-sign, the second appended by us.
        let out = case.venv(&venv, "in-toto-sign", &["-f", "l", "-k", "rsa.pem"]);
        assert!(out.status.success(), "{}", common::show(&out));
        let rsa_sig = case.json("l")["signatures"][0].clone();
        case.sign("l", &["ec.pem"], &["--append"]);
        assert_eq!(
            case.json("l")["signatures"][0],
            rsa_sig,
            "{form}: kept as it was"
        );
        assert_eq!(
            case.keyids("l"),
            [Case::intoto_keyid("rsa.pem"), Case::intoto_keyid("ec.pem")]
        );
        case.in_toto_sign_verifies(&venv, "l", &["rsa.pub", "ec.pub"]);
        case.in_toto_verify_passes(&venv, "l", &["rsa.pub", "ec.pub"]);
        // Without --append our signature replaces both.
        case.sign("l", &["ed.pem"], &[]);
        assert_eq!(case.keyids("l"), [ED_KEYID]);
        let out = case.verify("l", &["ed.pub", "rsa.pub"]);
        assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
        assert!(
            stdout(&out).contains("NOT verified: l: no signature by rsa.pub"),
            "{}",
            common::show(&out)
        );
    }
}

#[test]
fn append_by_a_key_that_signed_before_replaces_its_stale_signature() {
    let test = "append_by_a_key_that_signed_before_replaces_its_stale_signature";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    case.copy("root.layout", "l");
    case.sign("l", &["ed.pem", "rsa.pem"], &[]);
    // The owner edits the layout and signs it again with one of the keys.
    let edited = String::from_utf8(case.read("l"))
        .unwrap()
        .replace("tracelink sign test", "edited");
    fs::write(case.path("l"), &edited).unwrap();
    fs::write(case.path("theirs"), &edited).unwrap();
    let out = case.sign("l", &["ed.pem"], &["-a"]);
    assert!(
        stderr(&out).contains("replaced the signature by keyid"),
        "{}",
        common::show(&out)
    );
    assert_eq!(
        case.keyids("l"),
        [ED_KEYID.to_string(), Case::intoto_keyid("rsa.pem")]
    );
    case.in_toto_sign_verifies(&venv, "l", &["ed.pub"]);
    case.in_toto_verify_passes(&venv, "l", &["ed.pub"]);
    let out = case.verify("l", &["ed.pub", "rsa.pub"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the RSA signature is stale: {}",
        common::show(&out)
    );
    // in-toto-sign -a appends a second entry, after the stale one, and its
    // verifiers check only the first: neither accepts that file.
    let out = case.venv(
        &venv,
        "in-toto-sign",
        &["-f", "theirs", "-a", "-k", "ed.pem"],
    );
    assert!(out.status.success(), "{}", common::show(&out));
    assert_eq!(case.keyids("theirs").len(), 3);
    let out = case.venv(
        &venv,
        "in-toto-sign",
        &["-f", "theirs", "-k", "ed.pub", "--verify"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    let out = case.verify("theirs", &["ed.pub"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
}

#[test]
fn link_resigned_lands_at_the_new_keys_file_name() {
    let test = "link_resigned_lands_at_the_new_keys_file_name";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    for dsse in [false, true] {
        let flags: &[&str] = if dsse { &["--use-dsse"] } else { &[] };
        let old = case.link("build", "ed.pem", flags);
        for key in ["rsa.pem", "ec.pem"] {
            let out = case.sign(&old, &[key], &[]);
            let keyid = Case::intoto_keyid(key);
            let new = format!("build.{}.link", &keyid[..8]);
            assert!(stderr(&out).contains(&new), "{}", common::show(&out));
            assert_eq!(case.keyids(&new), [keyid], "one signature, the new key's");
            assert_eq!(case.json(&new).get("payload").is_some(), dsse);
            case.in_toto_sign_verifies(&venv, &new, &[&key.replace(".pem", ".pub")]);
            // The old file is untouched.
            assert_eq!(case.keyids(&old), [ED_KEYID]);
            fs::remove_file(case.path(&new)).unwrap();
        }
        // -o puts it elsewhere.
        case.sign(&old, &["rsa.pem"], &["-o", "elsewhere.link"]);
        case.in_toto_sign_verifies(&venv, "elsewhere.link", &["rsa.pub"]);
        fs::remove_file(case.path(&old)).unwrap();
    }
}

#[test]
fn tampered_layout_and_wrong_key_are_rejected_by_both() {
    let test = "tampered_layout_and_wrong_key_are_rejected_by_both";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let case = Case::new();
    case.python_layout(&venv, "root.layout");
    case.copy("root.layout", "l");
    case.sign("l", &["rsa.pem", "ec.pem"], &[]);
    let text = String::from_utf8(case.read("l")).unwrap();
    fs::write(
        case.path("t"),
        text.replace("tracelink sign test", "tracelink sign TEST"),
    )
    .unwrap();
    for (file, pubs, bad) in [
        ("t", &["rsa.pub", "ec.pub"][..], &["rsa.pub", "ec.pub"][..]),
        ("l", &["rsa.pub", "ed.pub"], &["ed.pub"]),
    ] {
        let out = case.verify(file, pubs);
        assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
        assert!(
            stderr(&out).contains(&format!("{file}: ")),
            "{}",
            common::show(&out)
        );
        for public in bad {
            assert!(
                stdout(&out).lines().any(
                    |l| l.starts_with(&format!("NOT verified: {file}: ")) && l.contains(public)
                ),
                "{}",
                common::show(&out)
            );
        }
        let mut args = vec!["-f", file, "-k"];
        args.extend_from_slice(pubs);
        args.push("--verify");
        let out = case.venv(&venv, "in-toto-sign", &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "in-toto agrees: {}",
            common::show(&out)
        );
    }
}

// ------------------------------------------------ without in-toto Python

/// A minimal classic layout with no signatures.
const LAYOUT: &str = r#"{"signatures": [], "signed": {"_type": "layout", "expires": "2099-01-01T00:00:00Z", "inspect": [], "keys": {}, "readme": "", "steps": []}}"#;

#[test]
fn legacy_keyid_signatures_are_found_by_verify() {
    let case = Case::new();
    fs::write(case.path("l"), LAYOUT).unwrap();
    case.sign("l", &["ed.pem"], &["--keyid-format", "legacy"]);
    assert_eq!(case.keyids("l"), [ED_LEGACY_KEYID]);
    let out = case.verify("l", &["ed.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        stdout(&out).contains(ED_LEGACY_KEYID),
        "{}",
        common::show(&out)
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let case = Case::new();
    fs::write(case.path("l"), LAYOUT).unwrap();
    let link = case.link("build", "ed.pem", &[]);
    for (args, want) in [
        (
            vec!["sign", link.as_str(), "-k", "ed.pem", "rsa.pem"],
            "exactly one key",
        ),
        (
            vec!["sign", link.as_str(), "-a", "-k", "ed.pem"],
            "--append is for layouts",
        ),
        (vec!["sign", "l", "-k", "ed.pub"], "public key"),
        (vec!["sign", "l", "-k", "missing.pem"], "missing.pem"),
        (
            vec!["sign", "l", "--verify", "--verification-keys", "ed.pem"],
            "private key",
        ),
        (vec!["sign", "l", "--verify"], "--verification-keys"),
        (
            vec![
                "sign",
                "l",
                "--verify",
                "--verification-keys",
                "ed.pub",
                "-a",
            ],
            "--append",
        ),
        (vec!["sign", "l"], "--signing-key"),
    ] {
        let out = case.tl(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::show(&out)
        );
        assert!(
            stderr(&out).contains(want),
            "{args:?}: {}",
            common::show(&out)
        );
    }
    // Nothing was written by any of them.
    assert_eq!(fs::read_to_string(case.path("l")).unwrap(), LAYOUT);
}

#[test]
fn bad_metadata_exits_1_naming_the_file_and_problem() {
    let case = Case::new();
    for (name, text, want) in [
        ("nojson", "{\"signed\": ", "not JSON"),
        (
            "step",
            r#"{"signatures": [], "signed": {"_type": "step"}}"#,
            "neither \"link\" nor \"layout\"",
        ),
        (
            "noexp",
            r#"{"signatures": [], "signed": {"_type": "layout", "steps": [], "inspect": []}}"#,
            "signed.expires is missing",
        ),
    ] {
        fs::write(case.path(name), text).unwrap();
        for verify in [false, true] {
            let args: Vec<&str> = if verify {
                vec!["sign", name, "--verify", "--verification-keys", "ed.pub"]
            } else {
                vec!["sign", name, "-k", "ed.pem"]
            };
            let out = case.tl(&args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?}: {}",
                common::show(&out)
            );
            let err = stderr(&out);
            assert!(
                err.contains(&format!("{name}: ")) && err.contains(want),
                "{args:?}: {err}"
            );
        }
        assert_eq!(
            fs::read_to_string(case.path(name)).unwrap(),
            text,
            "untouched"
        );
    }
    // A link whose name cannot be a file name needs -o.
    let link = r#"{"signatures": [], "signed": {"_type": "link", "name": "../up"}}"#;
    fs::write(case.path("odd.link"), link).unwrap();
    let out = case.tl(&["sign", "odd.link", "-k", "ed.pem"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    assert!(stderr(&out).contains("give -o"), "{}", common::show(&out));
    case.sign("odd.link", &["ed.pem"], &["-o", "odd.signed.link"]);
    assert_eq!(case.keyids("odd.signed.link"), [ED_KEYID]);
    let out = case.tl(&["sign", "absent.layout", "-k", "ed.pem"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("cannot read absent.layout"),
        "{}",
        common::show(&out)
    );
}

#[test]
fn fields_in_toto_drops_are_dropped_with_a_warning() {
    let case = Case::new();
    let text = LAYOUT.replace(r#""readme": """#, r#""readme": "", "extra": 1"#);
    fs::write(case.path("l"), text).unwrap();
    let out = case.sign("l", &["ed.pem"], &[]);
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("extra"),
        "{}",
        common::show(&out)
    );
    assert!(case.json("l")["signed"].get("extra").is_none());
    let out = case.verify("l", &["ed.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
}

#[test]
fn insecure_key_warns_and_layout_keeps_its_mode() {
    let case = Case::new();
    fs::write(case.path("l"), LAYOUT).unwrap();
    fs::set_permissions(case.path("l"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(case.path("ec.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    let out = case.sign("l", &["ec.pem"], &[]);
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("ec.pem") && err.contains("chmod 600"),
        "{err}"
    );
    assert_no_key_material(&case, &out);
    let mode = fs::metadata(case.path("l")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let names: Vec<String> = fs::read_dir(&case.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "no temporary file left: {names:?}");
}

#[test]
fn encrypted_key_signs_with_password_and_refuses_without() {
    let case = Case::new();
    let enc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/rsa-enc.pem");
    fs::copy(enc, case.path("enc.pem")).unwrap();
    fs::set_permissions(case.path("enc.pem"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(case.path("l"), LAYOUT).unwrap();
    let out = case.tl(&["sign", "l", "-k", "enc.pem"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(stderr(&out).contains("-P"), "{}", common::show(&out));
    let out = case.tl(&["sign", "l", "-P", "wrong", "-k", "enc.pem"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("wrong password"),
        "{}",
        common::show(&out)
    );
    assert!(!stderr(&out).contains("tracelink\n"), "password not echoed");
    case.sign("l", &["enc.pem"], &["-P", "tracelink"]);
    let out = case.verify("l", &["rsa.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
}
