//! The attestation library's statements as the reference Python libraries
//! read them: sample envelopes (link predicate, SLSA provenance, runtime
//! trace, verification summary) are written to a temporary directory and
//! tests/attest_check.py checks each (securesystemslib verifies the DSSE
//! signature; in-toto-attestation 0.9.3 parses the Statement and the
//! predicates strictly). Envelopes the checker must refuse are refused.
//!
//! Needs the venv with in-toto 3.1.0 and in-toto-attestation 0.9.3
//! (TRACELINK_INTOTO_VENV, or ./.venv-intoto): SKIP otherwise (FAIL under CI).
//! The end-to-end test of `tracelink run --attest` is tests/attest.rs.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};
use tracelink::attest::{self, Envelopes, Kind, Mode, StepRecord, TraceFile};
use tracelink::keys::{KeyIdFormat, PrivateKey};
use tracelink::link::{self, ArtifactMap, Byproducts, DigestSet, Link, Wrapper};

fn checker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attest_check.py")
}

/// Runs the checker; (exit code, stdout + stderr).
fn check(python: &Path, envelope: &Path, pem: &Path, link: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(python);
    cmd.arg(checker()).arg(envelope).arg(pem);
    if let Some(link) = link {
        cmd.arg("--link").arg(link);
    }
    let out = cmd.output().expect("run the checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn digest(hex: &str) -> DigestSet {
    DigestSet::from([("sha256".to_string(), hex.repeat(64 / hex.len()))])
}

fn sample_link() -> Link {
    let mut environment = Map::new();
    environment.insert(
        "tracelink".into(),
        json!({"version": "0.1.0", "mode": "precise", "complete": true,
               "trace": {"name": "build.x.link.trace.json.gz", "sha256": "ab".repeat(32)}}),
    );
    Link {
        name: "build".into(),
        command: vec!["make".into(), "-j2".into()],
        materials: ArtifactMap::from([
            ("Makefile".into(), digest("a1")),
            ("src/main.c".into(), digest("b2")),
        ]),
        products: ArtifactMap::from([
            ("main.o".into(), digest("c3")),
            (
                "prog".into(),
                DigestSet::from([
                    ("sha256".to_string(), "d4".repeat(32)),
                    ("sha512".to_string(), "e5".repeat(64)),
                ]),
            ),
        ]),
        byproducts: Byproducts {
            return_value: Some(0),
            stdout: Some("cc -c src/main.c\n".into()),
            stderr: Some(String::new()),
        },
        environment,
    }
}

fn sample_trace() -> Value {
    json!({
        "_type": "tracelink-trace",
        "root": "/srv/project",
        "cwd": "/srv/project",
        "command": ["make", "-j2"],
        "ptrace": true,
        "redacted": [],
        "artifacts": {
            "Makefile": {"read_by": [2], "written_by": [], "material": {"size": 10, "mode": 420}},
            "src/main.c": {"read_by": [3], "written_by": []},
            "main.o": {"read_by": [4], "written_by": [3]},
            "prog": {"read_by": [], "written_by": [4]},
            "tmp.s": {"read_by": [3], "written_by": [3]},
        },
        "process_tree": [
            {"pid": 2, "ppid": 1, "start_ms": 0, "end_ms": 90, "exit_code": 0,
             "execs": [{"argv": ["make", "-j2"], "executable": "/usr/bin/make", "cwd": "/srv/project", "sha256": "11".repeat(32), "at_ms": 0}]},
            {"pid": 3, "ppid": 2, "start_ms": 5, "end_ms": 50, "exit_code": 0,
             "execs": [{"argv": ["cc", "-c", "src/main.c"], "executable": "/usr/bin/g++", "cwd": "/srv/project", "sha256": "33".repeat(32), "at_ms": 6}]},
            {"pid": 4, "ppid": 2, "start_ms": 55, "end_ms": 80, "signal": 9, "execs": []}
        ]
    })
}

struct Signer {
    key: PrivateKey,
    keyid: String,
    pem: PathBuf,
}

fn signers(dir: &Path) -> Vec<Signer> {
    let mut keys = vec![("ed25519", PrivateKey::from_seed(&[3; 32]))];
    // ECDSA P-256 and RSA keys when openssl can make them.
    for (name, args) in [
        (
            "ecdsa",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        ),
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
    ] {
        let path = dir.join(format!("{name}.key"));
        let made = Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&path)
            .output()
            .is_ok_and(|o| o.status.success());
        if made {
            keys.push((
                name,
                PrivateKey::load(&path, None).expect("load the openssl key"),
            ));
        } else {
            println!("note: openssl could not make a {name} key; checking ed25519 only for it");
        }
    }
    keys.into_iter()
        .map(|(name, key)| {
            let pem = dir.join(format!("{name}.pub.pem"));
            std::fs::write(&pem, key.public().to_spki_pem()).unwrap();
            let keyid = key.keyid(KeyIdFormat::Python);
            Signer { key, keyid, pem }
        })
        .collect()
}

fn vsa_summary(link: &Link) -> attest::vsa::Summary {
    attest::vsa::Summary {
        subject: attest::vsa::subject_from_products([&link.products]).unwrap(),
        time_verified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
        resource_uri: "file:prog".into(),
        policy_uri: "root.layout".into(),
        policy_digest: digest("f0"),
        input_attestations: vec![attest::ResourceDescriptor::artifact(
            "build.0123abcd.link",
            &digest("0f"),
        )],
    }
}

#[test]
fn reference_libraries_accept_every_statement() {
    let test = "reference_libraries_accept_every_statement";
    let Some(python) = common::attest_checker_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let link = sample_link();
    let trace = sample_trace();
    let excludes = vec!["*.link*".to_string(), ".git".to_string()];
    for signer in signers(dir.path()) {
        let step = StepRecord {
            link: &link,
            mode: Mode::Precise,
            excludes: &excludes,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
            finished: SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_001_500),
            working_directory: None,
            trace: Some(TraceFile {
                name: "build.x.link.trace.json.gz",
                sha256: &"ab".repeat(32),
                document: &trace,
            }),
            redaction: None,
        };
        let Envelopes::Files(files) = attest::envelopes(&step, &signer.key, &signer.keyid).unwrap()
        else {
            panic!("no envelopes")
        };
        assert_eq!(files.len(), 3);
        let classic =
            link::sign(link.clone(), &signer.key, &signer.keyid, Wrapper::Classic).unwrap();
        let link_path = dir.path().join(link::file_name("build", &signer.keyid));
        std::fs::write(&link_path, classic).unwrap();
        for (name, bytes) in &files {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let (code, out) = check(&python, &path, &signer.pem, Some(&link_path));
            assert_eq!(code, 0, "{name}: {out}");
        }
        // The snapshot-mode statements too.
        let snap = StepRecord {
            mode: Mode::Snapshot,
            trace: None,
            ..step
        };
        let Envelopes::Files(files) = attest::envelopes(&snap, &signer.key, &signer.keyid).unwrap()
        else {
            panic!()
        };
        assert_eq!(files.len(), 2);
        for (name, bytes) in &files {
            let path = dir.path().join(format!("snapshot-{name}"));
            std::fs::write(&path, bytes).unwrap();
            let (code, out) = check(&python, &path, &signer.pem, Some(&link_path));
            assert_eq!(code, 0, "snapshot {name}: {out}");
        }
        // The verification summary.
        let st = attest::vsa::statement(&vsa_summary(&link)).unwrap();
        let path = dir.path().join("root.vsa.json");
        std::fs::write(
            &path,
            attest::sign(&st, &signer.key, &signer.keyid).unwrap(),
        )
        .unwrap();
        let (code, out) = check(&python, &path, &signer.pem, None);
        assert_eq!(code, 0, "vsa: {out}");
        println!("{}: ok", signer.pem.display());
    }
}

/// An envelope over `statement` (any JSON) signed by `key`.
fn envelope(statement: &Value, key: &PrivateKey, keyid: &str) -> Vec<u8> {
    let payload = serde_json::to_vec(statement).unwrap();
    let sig = key.sign(&link::dsse::pae(attest::PAYLOAD_TYPE, &payload));
    serde_json::to_vec(&json!({
        "payload": BASE64.encode(&payload),
        "payloadType": attest::PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": BASE64.encode(sig)}],
    }))
    .unwrap()
}

#[test]
fn reference_checker_refuses_what_it_must() {
    let test = "reference_checker_refuses_what_it_must";
    let Some(python) = common::attest_checker_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let signer = signers(dir.path()).remove(0);
    let link = sample_link();
    let good = attest::link::statement(&link).to_value();
    let vsa = attest::vsa::statement(&vsa_summary(&link))
        .unwrap()
        .to_value();
    let trace = sample_trace();
    let ex: Vec<String> = vec![];
    let rt = attest::runtime_trace::statement(&StepRecord {
        link: &link,
        mode: Mode::Precise,
        excludes: &ex,
        started: SystemTime::UNIX_EPOCH,
        finished: SystemTime::UNIX_EPOCH,
        working_directory: None,
        trace: Some(TraceFile {
            name: "t",
            sha256: "00",
            document: &trace,
        }),
        redaction: None,
    })
    .unwrap()
    .to_value();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, &Value, Edit, &str)> = vec![
        (
            "unknown statement field",
            &good,
            Box::new(|v| v["extra"] = json!(1)),
            "parse strictly",
        ),
        (
            "no subject",
            &good,
            Box::new(|v| v["subject"] = json!([])),
            "subject",
        ),
        (
            "unknown link field",
            &good,
            Box::new(|v| v["predicate"]["products"] = json!({})),
            "link predicate",
        ),
        (
            "material without digest",
            &good,
            Box::new(|v| v["predicate"]["materials"][0] = json!({"name": "x"})),
            "no digest",
        ),
        (
            "runtime trace without hostID",
            &rt,
            Box::new(|v| {
                v["predicate"]["monitoredProcess"]
                    .as_object_mut()
                    .unwrap()
                    .remove("hostID");
            }),
            "hostID",
        ),
        (
            "runtime trace without monitorLog",
            &rt,
            Box::new(|v| {
                v["predicate"].as_object_mut().unwrap().remove("monitorLog");
            }),
            "monitorLog",
        ),
        (
            "vsa with one level as a string",
            &vsa,
            Box::new(|v| v["predicate"]["verifiedLevels"] = json!("SLSA_BUILD_LEVEL_1")),
            "verifiedLevels",
        ),
        (
            "vsa without policy uri",
            &vsa,
            Box::new(|v| {
                v["predicate"]["policy"]
                    .as_object_mut()
                    .unwrap()
                    .remove("uri");
            }),
            "policy.uri",
        ),
    ];
    for (what, base, edit, expect) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let path = dir.path().join("bad.json");
        std::fs::write(&path, envelope(&v, &signer.key, &signer.keyid)).unwrap();
        let (code, out) = check(&python, &path, &signer.pem, None);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(expect), "{what}: {out}");
    }
    // A tampered payload, and the wrong key.
    let bytes = attest::sign(&attest::link::statement(&link), &signer.key, &signer.keyid).unwrap();
    let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
    let mut payload: Value =
        serde_json::from_slice(&BASE64.decode(doc["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["predicate"]["name"] = json!("other");
    doc["payload"] = json!(BASE64.encode(serde_json::to_vec(&payload).unwrap()));
    let path = dir.path().join("tampered.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (code, out) = check(&python, &path, &signer.pem, None);
    assert_eq!(code, 1, "tampered: {out}");
    assert!(out.contains("signature"), "{out}");
    let other = PrivateKey::from_seed(&[4; 32]);
    let other_pem = dir.path().join("other.pem");
    std::fs::write(&other_pem, other.public().to_spki_pem()).unwrap();
    let path = dir
        .path()
        .join(attest::file_name("build", &signer.keyid, Kind::Link));
    std::fs::write(&path, &bytes).unwrap();
    let (code, out) = check(&python, &path, &other_pem, None);
    assert_eq!(code, 1, "wrong key: {out}");
    // The checker's --link comparison notices a subject that is not the products.
    let mut other_link = link.clone();
    other_link.products.insert("extra".into(), digest("99"));
    let link_path = dir.path().join("other.link");
    std::fs::write(
        &link_path,
        link::sign(other_link, &signer.key, &signer.keyid, Wrapper::Dsse).unwrap(),
    )
    .unwrap();
    let (code, out) = check(&python, &path, &signer.pem, Some(&link_path));
    assert_eq!(code, 1, "--link: {out}");
    assert!(out.contains("products"), "{out}");
}
