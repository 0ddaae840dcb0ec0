//! RSA and ECDSA keys against in-toto 3.1.0 / securesystemslib 1.6:
//! keyids, key dictionaries and signatures made by the Python side must be
//! what `tracelink::keys::PublicKey` computes and accepts, and links that
//! `tracelink run` signs with RSA and ECDSA private keys (tests/data/keys)
//! must be named by in-toto's keyid and verify with `in-toto-sign --verify`.
//!
//! Needs the in-toto 3.1.0 venv (`TRACELINK_INTOTO_VENV`, see tests/common)
//! and `openssl`; prints `SKIP: ...` without them (fails under `CI`).

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use tracelink::keys::{KeyIdFormat, KeyType, PublicKey};

const MESSAGE: &[u8] = b"{\"_type\":\"link\",\"name\":\"rsa and ecdsa\"}\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = common::output(Command::new("openssl").args(args).current_dir(dir));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        common::show(&out)
    );
}

fn have_openssl(test: &str) -> bool {
    if Command::new("openssl").arg("version").output().is_ok() {
        return true;
    }
    let msg = format!("SKIP: {test}: openssl not found");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI must run this test");
    }
    println!("{msg}");
    eprintln!("{msg}");
    false
}

/// Key files in a tempdir: NAME.pem (private, when Python should sign) and
/// NAME.pub (public) for each case.
fn make_keys(dir: &Path) {
    let o = |args: &[&str]| openssl(dir, args);
    o(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        "rsa.pem",
    ]);
    o(&["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
    // The same key as PKCS#1 `RSA PUBLIC KEY`, and as SPKI with CRLF lines.
    o(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-RSAPublicKey_out",
        "-out",
        "rsa-pkcs1.pub",
    ]);
    let pem = std::fs::read_to_string(dir.join("rsa.pub")).unwrap();
    std::fs::write(dir.join("rsa-crlf.pub"), pem.replace('\n', "\r\n")).unwrap();
    o(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ec.pem",
    ]);
    o(&["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub"]);
    // The same key with a compressed point: securesystemslib writes it uncompressed.
    o(&[
        "ec",
        "-in",
        "ec.pem",
        "-pubout",
        "-conv_form",
        "compressed",
        "-out",
        "ec-compressed.pub",
    ]);
    // An RSA-PSS (OID 1.2.840.113549.1.1.10) key: read as plain RSA.
    o(&[
        "genpkey",
        "-algorithm",
        "RSA-PSS",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "pss-key",
    ]);
    o(&[
        "pkey",
        "-in",
        "pss-key",
        "-pubout",
        "-out",
        "rsa-pss-oid.pub",
    ]);
    std::fs::write(dir.join("msg"), MESSAGE).unwrap();
}

fn python_view(venv: &Path, dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/sslib_keys.py");
    let out = common::output(Command::new(venv.join("bin/python")).arg(script).arg(dir));
    assert!(
        out.status.success(),
        "sslib_keys.py: {}",
        common::show(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rsa_and_ecdsa_keys_match_securesystemslib() {
    let test = "rsa_and_ecdsa_keys_match_securesystemslib";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    if !have_openssl(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys(dir);
    let python = python_view(&venv, dir);
    let cases = [
        ("rsa", KeyType::Rsa, 3),
        ("rsa-pkcs1", KeyType::Rsa, 0),
        ("rsa-crlf", KeyType::Rsa, 0),
        ("rsa-pss-oid", KeyType::Rsa, 0),
        ("ec", KeyType::Ecdsa, 2),
        ("ec-compressed", KeyType::Ecdsa, 0),
    ];
    assert_eq!(python.as_object().unwrap().len(), cases.len(), "{python:#}");
    for (name, kind, n_sigs) in cases {
        let entry = &python[name];
        let mut dict = entry["dict"].clone();
        let keyid = dict
            .as_object_mut()
            .unwrap()
            .remove("keyid")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();

        let public = PublicKey::load(&dir.join(format!("{name}.pub")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(public.key_type(), kind, "{name}");
        assert_eq!(public.keyid(KeyIdFormat::Python), keyid, "{name}");
        assert_eq!(public.key_dict(KeyIdFormat::Python), dict, "{name}");

        let from_dict = PublicKey::from_key_dict(&dict).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_dict, public, "{name}");
        assert_eq!(from_dict.keyid(KeyIdFormat::Python), keyid, "{name}");

        let sigs = entry["sigs"].as_object().unwrap();
        assert_eq!(sigs.len(), n_sigs, "{name}: {sigs:?}");
        for (label, sig) in sigs {
            let sig = hex::decode(sig.as_str().unwrap()).unwrap();
            assert!(
                public.verify(MESSAGE, &sig),
                "{name} {label}: Python's signature"
            );
            assert!(!public.verify(b"another message", &sig), "{name} {label}");
            for bit in [0, sig.len() * 4, sig.len() * 8 - 1] {
                let mut bad = sig.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !public.verify(MESSAGE, &bad),
                    "{name} {label}: bit {bit} flipped"
                );
            }
            assert!(
                !public.verify(MESSAGE, &sig[..sig.len() - 1]),
                "{name} {label}: short"
            );
        }
    }
    // A signature by one key does not verify under the other kind.
    let rsa = PublicKey::load(&dir.join("rsa.pub")).unwrap();
    let ec = PublicKey::load(&dir.join("ec.pub")).unwrap();
    let ec_sig = hex::decode(python["ec"]["sigs"]["signer"].as_str().unwrap()).unwrap();
    let rsa_sig = hex::decode(python["rsa"]["sigs"]["signer"].as_str().unwrap()).unwrap();
    assert!(!rsa.verify(MESSAGE, &ec_sig));
    assert!(!ec.verify(MESSAGE, &rsa_sig));
}

/// A private (0600) copy of tests/data/keys/NAME in `dir`.
fn key_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keys")
        .join(name);
    let dst = dir.join(name);
    std::fs::copy(&src, &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    dst
}

/// The keyid in-toto 3.1.0 gives the private key file NAME (intoto_keyids.json).
fn intoto_keyid(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/intoto_keyids.json");
    let all: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    all[name]["keyid"].as_str().unwrap().to_string()
}

/// `tracelink run -x -p product -n step -k KEY EXTRA` in `dir`; returns the
/// link's path, which must be `step.<in-toto keyid8>.link`.
fn sign_off(dir: &Path, key: &Path, keyid: &str, extra: &[&str]) -> std::path::PathBuf {
    std::fs::write(dir.join("product"), b"signed off\n").unwrap();
    let out = common::output(
        common::tracelink()
            .args(["run", "-x", "-p", "product", "-n", "step", "-k"])
            .arg(key)
            .args(extra)
            .current_dir(dir)
            .stdin(std::process::Stdio::null()),
    );
    assert!(
        out.status.success(),
        "{key:?} {extra:?}: {}",
        common::show(&out)
    );
    let link = dir.join(format!("step.{}.link", &keyid[..8]));
    assert!(link.is_file(), "{link:?} missing: {}", common::show(&out));
    link
}

/// `in-toto-sign -f LINK -k PUB --verify` must accept the link.
fn assert_in_toto_sign_verifies(venv: &Path, dir: &Path, link: &Path, public: &Path) {
    let out = common::output(
        Command::new(venv.join("bin/in-toto-sign"))
            .arg("-f")
            .arg(link)
            .arg("-k")
            .arg(public)
            .arg("--verify")
            .current_dir(dir),
    );
    assert!(
        out.status.success(),
        "in-toto-sign --verify {link:?} with {public:?}: {}",
        common::show(&out)
    );
}

#[test]
fn links_signed_with_rsa_and_ecdsa_keys_verify_with_in_toto_sign() {
    let test = "links_signed_with_rsa_and_ecdsa_keys_verify_with_in_toto_sign";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    for (private, public) in [
        ("rsa.pem", "rsa.pub"),
        ("rsa-trad.pem", "rsa.pub"),
        ("rsa-pss.pem", "rsa-pss.pub"),
        ("ec.pem", "ec.pub"),
        ("ec-trad.pem", "ec.pub"),
        ("ecparam.pem", "ecparam.pub"),
    ] {
        for dsse in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let key = key_copy(dir, private);
            let public = key_copy(dir, public);
            let keyid = intoto_keyid(private);
            let extra: &[&str] = if dsse { &["--use-dsse"] } else { &[] };
            let link = sign_off(dir, &key, &keyid, extra);
            let doc: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
            assert_eq!(doc.get("payload").is_some(), dsse, "{private}: {doc}");
            assert_eq!(doc["signatures"][0]["keyid"], keyid.as_str(), "{private}");
            assert_in_toto_sign_verifies(&venv, dir, &link, &public);
            // And a tampered copy is rejected by in-toto too.
            let text = std::fs::read_to_string(&link).unwrap();
            let tampered = if dsse {
                let sig = doc["signatures"][0]["sig"].as_str().unwrap();
                let mut bad = sig.as_bytes().to_vec();
                bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
                text.replace(sig, std::str::from_utf8(&bad).unwrap())
            } else {
                text.replace("product", "producT")
            };
            let bad = dir.join("tampered.link");
            std::fs::write(&bad, tampered).unwrap();
            let out = common::output(
                Command::new(venv.join("bin/in-toto-sign"))
                    .arg("-f")
                    .arg(&bad)
                    .arg("-k")
                    .arg(&public)
                    .arg("--verify"),
            );
            assert_eq!(
                out.status.code(),
                Some(1),
                "{private} dsse={dsse}: {}",
                common::show(&out)
            );
        }
    }
}

#[test]
fn encrypted_pkcs8_rsa_key_signs_with_password() {
    let test = "encrypted_pkcs8_rsa_key_signs_with_password";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = key_copy(dir, "rsa-enc.pem");
    let public = key_copy(dir, "rsa.pub");
    let keyid = intoto_keyid("rsa-enc.pem");
    assert_eq!(keyid, intoto_keyid("rsa.pem"));
    let link = sign_off(dir, &key, &keyid, &["-P", "tracelink"]);
    assert_in_toto_sign_verifies(&venv, dir, &link, &public);

    // Without the password (and no terminal): a clear error, no link.
    std::fs::remove_file(&link).unwrap();
    let out = common::output(
        common::tracelink()
            .args(["run", "-x", "-p", "product", "-n", "step", "-k"])
            .arg(&key)
            .current_dir(dir)
            .stdin(std::process::Stdio::null()),
    );
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-P") && err.contains("rsa-enc.pem"), "{err}");
    assert!(!link.exists());
}

#[test]
fn in_toto_reads_the_committed_key_files_as_recorded() {
    // intoto_keyids.json is what in-toto 3.1.0 made of tests/data/keys; a
    // newer in-toto (or a regenerated key) must agree with it.
    let test = "in_toto_reads_the_committed_key_files_as_recorded";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys");
    let out = common::output(
        Command::new(venv.join("bin/python"))
            .arg("intoto_keyids.py")
            .current_dir(&dir),
    );
    assert!(out.status.success(), "{}", common::show(&out));
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(dir.join("intoto_keyids.json")).unwrap()).unwrap();
    assert_eq!(live, recorded);
}

#[test]
fn record_start_and_stop_sign_with_ecdsa_and_rsa_keys() {
    let test = "record_start_and_stop_sign_with_ecdsa_and_rsa_keys";
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    for (private, public, flags) in [
        ("ec.pem", "ec.pub", &[][..]),
        ("rsa.pem", "rsa.pub", &["--use-dsse"][..]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let key = key_copy(dir, private);
        let public = key_copy(dir, public);
        std::fs::write(dir.join("material"), b"in\n").unwrap();
        for (what, paths) in [("start", ["-m", "material"]), ("stop", ["-p", "material"])] {
            let out = common::output(
                common::tracelink()
                    .args(["record", what, "-n", "pkg", "-k"])
                    .arg(&key)
                    .args(paths)
                    .args(flags)
                    .current_dir(dir)
                    .stdin(std::process::Stdio::null()),
            );
            assert!(
                out.status.success(),
                "{private} {what}: {}",
                common::show(&out)
            );
        }
        let link = dir.join(format!("pkg.{}.link", &intoto_keyid(private)[..8]));
        assert_in_toto_sign_verifies(&venv, dir, &link, &public);
    }
}
