//! `tracelink show` and `tracelink diff` on in-toto attestations: links
//! recorded by `tracelink run`, their statements made with the library
//! (`tracelink::attest::envelopes`) and written beside them, as `run
//! --attest` does.
//!
//! 1. Snapshot mode (`-m`/`-p`): show of the link attestation gives the
//!    link's step, command, materials and products (the --json artifact
//!    sections equal the classic link's); the signature verifies with the
//!    right key, not with a wrong one; a tampered payload is flagged; diff
//!    of the link and its attestation is equal (0), with a changed
//!    attestation it differs (1); show of the provenance prints its key
//!    fields; diff refuses a provenance statement (2, naming the file).
//! 2. Precise mode: the attestation's trace is found and checked as the
//!    link's (a replaced trace is a warning and exit 1); show of the runtime
//!    trace statement and of the provenance's byproduct.
//! 3. Crafted statements: control characters in names are escaped.
//!
//! Precise tests need root and /dev/fuse (SKIP otherwise, FAIL under CI).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{output, show, tracelink};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};
use tracelink::attest::{self, Envelopes, Kind, Mode, StepRecord, TraceFile};
use tracelink::keys::{KeyIdFormat, PrivateKey};
use tracelink::link::Link;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}

/// `tracelink keygen dir/name`: returns (private, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let out = output(tracelink().arg("keygen").arg(&key));
    assert!(out.status.success(), "keygen: {}", show(&out));
    (key.clone(), dir.join(format!("{name}.pub")))
}

/// The one `<step>.*.link` in `dir`.
fn link_in(dir: &Path, step: &str) -> PathBuf {
    let links: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{step}.")) && name.ends_with(".link")
        })
        .collect();
    assert_eq!(links.len(), 1, "one {step} link in {dir:?}: {links:?}");
    links[0].clone()
}

fn run_show(link: &Path, args: &[&str]) -> Output {
    output(tracelink().arg("show").arg(link).args(args))
}

fn run_diff(a: &Path, b: &Path) -> Output {
    output(tracelink().arg("diff").arg(a).arg(b))
}

/// The link a signed link file holds (signature not checked).
fn read_link(path: &Path) -> Link {
    let metadata = tracelink::verify::metadata::Metadata::load(path).unwrap();
    Link::from_value(&metadata.payload).unwrap()
}

/// The statements of `link` signed with the key at `key`, written into
/// `dir`; their paths by kind.
fn attest_into(
    dir: &Path,
    link: &Link,
    key: &Path,
    mode: Mode,
    trace: Option<TraceFile>,
) -> Vec<(Kind, PathBuf)> {
    let key = PrivateKey::load(key, None).unwrap();
    let keyid = key.keyid(KeyIdFormat::Python);
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
    let step = StepRecord {
        link,
        mode,
        excludes: &[],
        started,
        finished: started + Duration::from_millis(1234),
        working_directory: None,
        trace,
        redaction: None,
    };
    let Envelopes::Files(files) = attest::envelopes(&step, &key, &keyid).unwrap() else {
        panic!("no statements: the step has no products")
    };
    fs::create_dir_all(dir).unwrap();
    files
        .into_iter()
        .map(|(name, bytes)| {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| name.ends_with(k.suffix()))
                .unwrap();
            let path = dir.join(name);
            fs::write(&path, bytes).unwrap();
            (kind, path)
        })
        .collect()
}

fn of_kind(files: &[(Kind, PathBuf)], kind: Kind) -> PathBuf {
    files
        .iter()
        .find(|(k, _)| *k == kind)
        .unwrap_or_else(|| panic!("no {kind:?} statement in {files:?}"))
        .1
        .clone()
}

/// A copy of the envelope at `path` (written to `to`) whose payload is
/// edited by `edit`, the signature left as it was.
fn tamper(path: &Path, to: &Path, edit: impl Fn(&mut Value)) {
    let mut env: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let payload = BASE64.decode(env["payload"].as_str().unwrap()).unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    edit(&mut statement);
    env["payload"] = json!(BASE64.encode(serde_json::to_vec(&statement).unwrap()));
    fs::write(to, serde_json::to_vec(&env).unwrap()).unwrap();
}

/// A snapshot recording: `cp src/a.txt out/b.txt` with `-m src -p out`.
fn snapshot_link(tmp: &Path, key: &Path) -> PathBuf {
    let proj = tmp.join("proj");
    fs::create_dir_all(proj.join("src")).unwrap();
    fs::create_dir_all(proj.join("out")).unwrap();
    fs::write(proj.join("src/a.txt"), "alpha\n").unwrap();
    fs::write(proj.join("src/c.txt"), "gamma\n").unwrap();
    let links = tmp.join("links");
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(&proj)
            .args(["run", "-n", "copy", "-k"])
            .arg(key)
            .arg("-d")
            .arg(&links)
            .args([
                "-m",
                "src",
                "-p",
                "out",
                "--",
                "cp",
                "src/a.txt",
                "out/b.txt",
            ]),
    );
    assert!(run.status.success(), "tracelink run: {}", show(&run));
    link_in(&links, "copy")
}

#[test]
fn show_and_diff_snapshot_attestations() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let (_, other_public) = keygen(tmp.path(), "other");
    let classic = snapshot_link(tmp.path(), &key);
    let link = read_link(&classic);
    let dir = classic.parent().unwrap();
    let files = attest_into(dir, &link, &key, Mode::Snapshot, None);
    assert_eq!(files.len(), 2, "link and provenance: {files:?}");
    let att = of_kind(&files, Kind::Link);
    let prov = of_kind(&files, Kind::Provenance);

    // Text: presented as the link, described as a statement.
    let out = run_show(&att, &["--files"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    assert!(
        t.contains("(in-toto Statement v1, link predicate v0.3, DSSE)"),
        "{t}"
    );
    assert!(t.contains("step:        copy\n"), "{t}");
    assert!(t.contains("command:     cp src/a.txt out/b.txt\n"), "{t}");
    assert!(t.contains("signature not checked"), "{t}");
    assert!(t.contains("exit:        0 (return-value)"), "{t}");
    assert!(t.contains("materials (2):"), "{t}");
    assert!(t.contains("products (1):"), "{t}");
    assert!(t.contains("  out/b.txt  sha256:"), "{t}");

    // --json: the same materials, products, step, command and byproducts as the classic link.
    let j_att = json_of(&run_show(&att, &["--json"]));
    let j_link = json_of(&run_show(&classic, &["--json"]));
    for field in [
        "materials",
        "products",
        "step",
        "command",
        "byproducts",
        "environment",
    ] {
        assert_eq!(j_att[field], j_link[field], "{field}");
    }
    assert_eq!(j_att["products"].as_object().unwrap().len(), 1);
    assert_eq!(j_att["materials"].as_object().unwrap().len(), 2);
    assert_eq!(
        j_att["attestation"]["predicateType"],
        attest::LINK_PREDICATE
    );
    assert_eq!(j_link["attestation"], Value::Null);
    assert_eq!(j_att["trace"]["status"], "none");

    // Signatures: the right key, a wrong one.
    let out = run_show(&att, &["--verification-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        text(&out).contains("signature verified with"),
        "{}",
        show(&out)
    );
    let out = run_show(
        &att,
        &["--verification-keys", other_public.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        text(&out).contains("signature NOT verified with"),
        "{}",
        show(&out)
    );
    let j = json_of(&run_show(
        &att,
        &[
            "--json",
            "--verification-keys",
            public.to_str().unwrap(),
            other_public.to_str().unwrap(),
        ],
    ));
    let results = j["signature_check"]["results"].as_array().unwrap();
    assert_eq!(results[0]["verified"], true);
    assert_eq!(results[1]["verified"], false);

    // A tampered payload: a product's digest changed, the signature kept.
    let tampered = tmp.path().join("tampered.attest-link.json");
    tamper(&att, &tampered, |st| {
        st["subject"][0]["digest"]["sha256"] = json!("00".repeat(32));
    });
    let out = run_show(
        &tampered,
        &["--verification-keys", public.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let t = text(&out);
    assert!(t.contains("signature NOT verified with"), "{t}");
    assert!(t.contains("does not verify"), "{t}");

    // diff: the link and its own attestation are equal, both ways.
    for (a, b) in [(&classic, &att), (&att, &classic), (&att, &att)] {
        let out = run_diff(a, b);
        assert_eq!(code(&out), 0, "{}", show(&out));
        assert!(
            text(&out).trim_end().ends_with("summary: equal"),
            "{}",
            show(&out)
        );
    }
    // A changed attestation (signed again: another product digest) differs.
    let mut changed = link.clone();
    changed
        .products
        .get_mut("out/b.txt")
        .unwrap()
        .insert("sha256".into(), "11".repeat(32));
    let files_b = attest_into(
        &tmp.path().join("changed"),
        &changed,
        &key,
        Mode::Snapshot,
        None,
    );
    let att_b = of_kind(&files_b, Kind::Link);
    let out = run_show(&att_b, &["--verification-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "re-signed: {}", show(&out));
    for (a, b) in [(&classic, &att_b), (&att, &att_b)] {
        let out = run_diff(a, b);
        assert_eq!(code(&out), 1, "{}", show(&out));
        let t = text(&out);
        assert!(t.contains("  ~ out/b.txt\n"), "{t}");
        assert!(t.contains("summary: differ: 1 product changed"), "{t}");
    }

    // Provenance: its key fields.
    let out = run_show(&prov, &["--verification-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show of a snapshot provenance statement:\n{t}");
    assert!(
        t.contains("(in-toto Statement v1, SLSA Provenance v1, DSSE)"),
        "{t}"
    );
    assert!(
        t.contains("predicate:   https://slsa.dev/provenance/v1\n"),
        "{t}"
    );
    assert!(t.contains("subjects:    1: out/b.txt\n"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    assert!(
        t.contains("buildType:   https://tracelink.example/buildtypes/snapshot/v1\n"),
        "{t}"
    );
    assert!(t.contains("  step: copy\n"), "{t}");
    assert!(t.contains("  command: cp src/a.txt out/b.txt\n"), "{t}");
    assert!(
        t.contains("resolved dependencies: 2 (0 toolchain entries)"),
        "{t}"
    );
    assert!(
        t.contains("builder:     https://tracelink.example/builder/v1\n"),
        "{t}"
    );
    assert!(
        t.contains("invocation:  urn:tracelink:invocation:sha256:"),
        "{t}"
    );
    assert!(t.contains("started:     2025-12-06T05:46:40Z\n"), "{t}");
    assert!(t.contains("finished:    2025-12-06T05:46:41.234Z\n"), "{t}");
    assert!(t.contains("byproducts:  0\n"), "{t}");
    let out = run_show(
        &prov,
        &["--verification-keys", other_public.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        text(&out).contains("signature NOT verified"),
        "{}",
        show(&out)
    );
    let out = run_show(&prov, &["--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["predicateType"], attest::PROVENANCE_PREDICATE);
    assert_eq!(j["statement"]["_type"], attest::STATEMENT_TYPE);
    assert_eq!(j["statement"]["subject"][0]["name"], "out/b.txt");
    assert_eq!(
        j["statement"]["predicate"]["buildDefinition"]["externalParameters"]["step"],
        "copy"
    );
    // A tampered provenance is flagged.
    let tampered = tmp.path().join("tampered.attest-provenance.json");
    tamper(&prov, &tampered, |st| {
        st["predicate"]["buildDefinition"]["externalParameters"]["command"] = json!(["true"]);
    });
    let out = run_show(
        &tampered,
        &["--verification-keys", public.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(text(&out).contains("does not verify"), "{}", show(&out));

    // diff does not compare provenance: 2, naming the file and what it takes.
    for (a, b) in [(&classic, &prov), (&prov, &att)] {
        let out = run_diff(a, b);
        assert_eq!(code(&out), 2, "{}", show(&out));
        let e = stderr(&out);
        assert!(e.contains(prov.to_str().unwrap()), "{e}");
        assert!(e.contains("https://slsa.dev/provenance/v1"), "{e}");
        assert!(e.contains("diff compares links"), "{e}");
        assert!(e.contains("link attestations"), "{e}");
    }
}

#[test]
fn malformed_attestations_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let classic = snapshot_link(tmp.path(), &key);
    let link = read_link(&classic);
    let files = attest_into(&tmp.path().join("att"), &link, &key, Mode::Snapshot, None);
    let att = of_kind(&files, Kind::Link);
    // Signed or not, a statement that is not what it must be is refused,
    // naming the file and the field.
    let bad = tmp.path().join("bad.attest-link.json");
    tamper(&att, &bad, |st| st["predicate"]["extra"] = json!(1));
    for out in [run_show(&bad, &[]), run_diff(&classic, &bad)] {
        assert_eq!(code(&out), 2, "{}", show(&out));
        let e = stderr(&out);
        assert!(e.contains(bad.to_str().unwrap()), "{e}");
        assert!(e.contains("predicate.extra"), "{e}");
    }
    let bad = tmp.path().join("bad2.attest-link.json");
    let mut env: Value = serde_json::from_slice(&fs::read(&att).unwrap()).unwrap();
    env["payloadType"] = json!("application/json");
    env["extra"] = json!(true);
    fs::write(&bad, env.to_string()).unwrap();
    let out = run_show(&bad, &[]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains(bad.to_str().unwrap()),
        "{}",
        show(&out)
    );
}

#[test]
fn crafted_statements_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let classic = snapshot_link(tmp.path(), &key);
    let mut link = read_link(&classic);
    link.name = "evil\x1b[31mred".into();
    link.command = vec!["echo".into(), "\x1b]0;title\x07".into()];
    let digest = link.products.values().next().unwrap().clone();
    link.products.insert("x\x1b[2Jy".into(), digest);
    let files = attest_into(&tmp.path().join("evil"), &link, &key, Mode::Snapshot, None);
    for kind in [Kind::Link, Kind::Provenance] {
        let path = of_kind(&files, kind);
        for args in [&[][..], &["--files"][..]] {
            let out = run_show(&path, args);
            assert_eq!(code(&out), 0, "{kind:?}: {}", show(&out));
            let t = text(&out);
            assert!(!t.contains('\x1b'), "{kind:?}: raw escape in:\n{t}");
            assert!(!t.contains('\x07'), "{kind:?}: raw BEL in:\n{t}");
        }
    }
}

/// The trace beside a precise link.
fn trace_of(link: &Path) -> PathBuf {
    PathBuf::from(format!("{}.trace.json.gz", link.display()))
}

#[test]
fn show_precise_attestations_with_their_trace() {
    if common::precise_unavailable("show_precise_attestations_with_their_trace", &["sh"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let proj = tmp.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    fs::write(proj.join("in.txt"), "input\n").unwrap();
    let links = tmp.path().join("links");
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(&proj)
            .args(["run", "-n", "build", "-k"])
            .arg(&key)
            .arg("-d")
            .arg(&links)
            .args(["--", "sh", "-c", "cat in.txt > out.txt"]),
    );
    assert!(run.status.success(), "tracelink run: {}", show(&run));
    let classic = link_in(&links, "build");
    let link = read_link(&classic);
    let trace_path = trace_of(&classic);
    let bytes = fs::read(&trace_path).unwrap();
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    // The document as recorded (the file holds it compacted, format 3).
    let document = tracelink::tracefile::read_json(&bytes, u64::MAX).unwrap();
    let name = trace_path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let files = attest_into(
        &links,
        &link,
        &key,
        Mode::Precise,
        Some(TraceFile {
            name: &name,
            sha256: &sha256,
            document: &document,
        }),
    );
    assert_eq!(files.len(), 3, "{files:?}");
    let att = of_kind(&files, Kind::Link);

    // The attestation's trace is the link's, checked against the signed digest.
    let out = run_show(&att, &["--verification-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show of a precise link attestation:\n{t}");
    assert!(t.contains("link predicate v0.3, DSSE"), "{t}");
    assert!(t.contains("recording:   precise"), "{t}");
    assert!(t.contains("matches the signed digest"), "{t}");
    assert!(t.contains("from the trace:"), "{t}");
    let j_att = json_of(&run_show(&att, &["--json"]));
    let j_link = json_of(&run_show(&classic, &["--json"]));
    assert_eq!(j_att["materials"], j_link["materials"]);
    assert_eq!(j_att["products"], j_link["products"]);
    assert_eq!(j_att["trace"]["status"], "verified");
    assert_eq!(j_att["trace"]["sha256"], sha256);
    assert!(j_att["products"]["out.txt"]["size"].is_u64(), "{j_att}");
    let out = run_diff(&classic, &att);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        text(&out).contains("processes: same commands"),
        "{}",
        show(&out)
    );

    // Runtime trace statement.
    let rt = of_kind(&files, Kind::RuntimeTrace);
    let out = run_show(&rt, &["--verification-keys", public.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show of a runtime trace statement:\n{t}");
    assert!(t.contains("runtime trace predicate v0.1, DSSE"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    assert!(
        t.contains("monitor:     https://tracelink.example/monitor/fuse-ptrace/v1\n"),
        "{t}"
    );
    let processes = document["process_tree"].as_array().unwrap().len();
    assert!(processes >= 1);
    assert!(t.contains(&format!("processes:   {processes}\n")), "{t}");
    let j = json_of(&run_show(&rt, &["--json"]));
    let accesses = j["statement"]["predicate"]["monitorLog"]["fileAccess"]
        .as_array()
        .unwrap()
        .len();
    assert!(accesses >= 2, "{j}");
    assert!(t.contains(&format!("file access: {accesses}\n")), "{t}");
    assert_eq!(j["predicateType"], attest::RUNTIME_TRACE_PREDICATE);

    // Provenance: toolchain and its byproduct, the trace, checked.
    let prov = of_kind(&files, Kind::Provenance);
    let out = run_show(&prov, &[]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show of a precise provenance statement:\n{t}");
    assert!(
        t.contains("buildType:   https://tracelink.example/buildtypes/precise/v1\n"),
        "{t}"
    );
    assert!(t.contains("  toolchain: /"), "{t}");
    assert!(t.contains("byproducts:  1\n"), "{t}");
    let line = t
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("no byproduct line in {t}"));
    assert!(line.contains("matches the signed digest"), "{t}");

    // The trace replaced: a warning for the attestation and the provenance,
    // an error for diff.
    let mut changed = bytes.clone();
    let n = changed.len();
    changed[n - 5] ^= 0xff;
    fs::write(&trace_path, &changed).unwrap();
    let out = run_show(&att, &[]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stderr(&out).contains("does NOT match"), "{}", show(&out));
    assert!(!text(&out).contains("from the trace:"), "{}", show(&out));
    let out = run_show(&prov, &[]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stderr(&out).contains("does NOT match"), "{}", show(&out));
    let out = run_diff(&classic, &att);
    assert_eq!(code(&out), 2, "{}", show(&out));
    // Gone: the provenance travels without it, said but not an error.
    fs::remove_file(&trace_path).unwrap();
    let out = run_show(&prov, &[]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        text(&out).contains("not found beside the statement"),
        "{}",
        show(&out)
    );
}
