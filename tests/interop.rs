//! Interoperability of tracelink's links with the reference verifier, in-toto
//! Python 3.1.0: `in-toto-sign --verify` on single links, `in-toto-verify` of
//! a signed layout with two steps and an inspection (classic and DSSE links),
//! tampering, `tracelink record` against `in-toto-record`, and legacy keyids.
//!
//! Needs the in-toto 3.1.0 venv (`TRACELINK_INTOTO_VENV`, see tests/common).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// keyids of the RFC 8032 test key (tests/vectors/keys.txt).
const RFC8032_PYTHON_KEYID: &str =
    "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";
const RFC8032_LEGACY_KEYID: &str =
    "01e8764eedab63b3593451765fc337b2cc6d2c66923845da255f448c19e2afc5";
const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

// ---------------------------------------------------------------------------
// Helpers

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn python_keyid(public_hex: &str) -> String {
    sha256_hex(
        format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{public_hex}"}},"scheme":"ed25519"}}"#
        )
        .as_bytes(),
    )
}

fn legacy_keyid(public_hex: &str) -> String {
    sha256_hex(
        format!(
            r#"{{"keyid_hash_algorithms":["sha256","sha512"],"keytype":"ed25519","keyval":{{"public":"{public_hex}"}},"scheme":"ed25519"}}"#
        )
        .as_bytes(),
    )
}

/// Raw ed25519 public key (hex) from an SPKI PEM file.
fn public_hex(pub_pem: &Path) -> String {
    let text = fs::read_to_string(pub_pem).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = BASE64.decode(b64.trim()).unwrap();
    assert_eq!(der.len(), 44, "not an ed25519 SPKI key: {pub_pem:?}");
    assert_eq!(hex::encode(&der[..12]), "302a300506032b6570032100");
    hex::encode(&der[12..])
}

struct Key {
    private: PathBuf,
    public: PathBuf,
    keyid: String,
    public_hex: String,
}

impl Key {
    fn prefix(&self) -> &str {
        &self.keyid[..8]
    }
}

/// `tracelink keygen DIR/NAME`; checks the printed keyid.
fn keygen(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let out = common::output(common::tracelink().arg("keygen").arg(&private));
    assert!(out.status.success(), "keygen: {}", common::show(&out));
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let public = dir.join(format!("{name}.pub"));
    let public_hex = public_hex(&public);
    let keyid = python_keyid(&public_hex);
    assert_eq!(
        printed, keyid,
        "keygen printed a keyid that is not the python keyid"
    );
    Key {
        private,
        public,
        keyid,
        public_hex,
    }
}

fn rfc8032(dir: &Path) -> Key {
    let private = common::rfc8032_key(dir);
    let public = dir.join("rfc8032.pub");
    fs::copy(common::vector("rfc8032.pub"), &public).unwrap();
    assert_eq!(public_hex(&public), RFC8032_PUBLIC);
    Key {
        private,
        public,
        keyid: RFC8032_PYTHON_KEYID.to_owned(),
        public_hex: RFC8032_PUBLIC.to_owned(),
    }
}

/// Runs `cmd` and asserts it exited 0.
fn ok(cmd: &mut Command) -> Output {
    let out = common::output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        common::show(&out)
    );
    out
}

fn tracelink_run(cwd: &Path, key: &Path, step: &str, args: &[&str]) -> Output {
    ok(common::tracelink()
        .current_dir(cwd)
        .args(["run", "-n", step, "--signing-key"])
        .arg(key)
        .args(args))
}

fn intoto(venv: &Path, tool: &str) -> Command {
    Command::new(venv.join("bin").join(tool))
}

fn sign_verify(venv: &Path, file: &Path, public: &Path) -> Output {
    common::output(
        intoto(venv, "in-toto-sign")
            .arg("-f")
            .arg(file)
            .arg("-k")
            .arg(public)
            .arg("--verify"),
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

/// The link object of a classic or DSSE link file.
fn link_object(path: &Path) -> Value {
    let v = read_json(path);
    if let Some(payload) = v.get("payload") {
        assert_eq!(v["payloadType"], "application/vnd.in-toto+json");
        let bytes = BASE64.decode(payload.as_str().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    } else {
        v["signed"].clone()
    }
}

fn stderr_and_stdout(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn digest(content: &[u8]) -> Value {
    json!({ "sha256": sha256_hex(content) })
}

fn key_dict(key: &Key, keyid: &str, legacy: bool) -> Value {
    let mut d = json!({
        "keyid": keyid,
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": { "public": key.public_hex },
    });
    if legacy {
        d["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
    }
    d
}

/// Writes `layout` (the `signed` part) unsigned to DIR/unsigned.layout and
/// signs it with `owner` via in-toto-sign into DIR/root.layout.
fn sign_layout(venv: &Path, dir: &Path, layout: &Value, owner: &Key) -> PathBuf {
    let unsigned = dir.join("unsigned.layout");
    let signed = dir.join("root.layout");
    fs::write(
        &unsigned,
        serde_json::to_vec_pretty(&json!({ "signatures": [], "signed": layout })).unwrap(),
    )
    .unwrap();
    ok(intoto(venv, "in-toto-sign")
        .arg("-f")
        .arg(&unsigned)
        .arg("-k")
        .arg(&owner.private)
        .arg("-o")
        .arg(&signed));
    let out = sign_verify(venv, &signed, &owner.public);
    assert!(
        out.status.success(),
        "layout signature: {}",
        common::show(&out)
    );
    signed
}

fn in_toto_verify(venv: &Path, cwd: &Path, layout: &Path, owner: &Key, link_dir: &Path) -> Output {
    common::output(
        intoto(venv, "in-toto-verify")
            .current_dir(cwd)
            .arg("--layout")
            .arg(layout)
            .arg("--verification-keys")
            .arg(&owner.public)
            .arg("--link-dir")
            .arg(link_dir)
            // The default of 10 s is short on a loaded test machine.
            .args(["--inspection-timeout", "120"]),
    )
}

// ---------------------------------------------------------------------------
// 1. in-toto-sign --verify on single links

#[test]
fn links_pass_in_toto_sign_verify_and_tampered_ones_fail() {
    let Some(venv) = common::intoto_venv("links_pass_in_toto_sign_verify_and_tampered_ones_fail")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let func = keygen(base, "func");
    let other = keygen(base, "other");
    let ws = base.join("ws");
    fs::create_dir_all(ws.join("lib")).unwrap();
    fs::write(ws.join("in.txt"), b"input\n").unwrap();
    fs::write(ws.join("lib/dep.c"), b"int dep;\n").unwrap();

    for (variant, extra) in [("classic", &[][..]), ("dsse", &["--use-dsse"][..])] {
        let md = base.join(format!("md-{variant}"));
        fs::create_dir(&md).unwrap();
        let step = format!("build-{variant}");
        let mut args = vec!["-d", md.to_str().unwrap(), "-m", ".", "-p", "out.txt"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", "cat in.txt lib/dep.c > out.txt"]);
        fs::remove_file(ws.join("out.txt")).ok();
        tracelink_run(&ws, &func.private, &step, &args);

        let link_path = md.join(format!("{step}.{}.link", func.prefix()));
        assert!(link_path.exists(), "[{variant}] no {link_path:?}");
        let link = link_object(&link_path);
        assert_eq!(
            link["materials"],
            json!({
                "in.txt": digest(b"input\n"),
                "lib/dep.c": digest(b"int dep;\n"),
            }),
            "[{variant}]"
        );
        assert_eq!(
            link["products"],
            json!({ "out.txt": digest(b"input\nint dep;\n") }),
            "[{variant}]"
        );
        assert_eq!(
            link["command"],
            json!(["sh", "-c", "cat in.txt lib/dep.c > out.txt"])
        );
        assert_eq!(link["byproducts"]["return-value"], 0);
        let file = read_json(&link_path);
        assert_eq!(
            file["signatures"][0]["keyid"],
            json!(func.keyid),
            "[{variant}]"
        );
        assert_eq!(file["signatures"].as_array().unwrap().len(), 1);

        // The reference accepts it with the functionary's key...
        let out = sign_verify(&venv, &link_path, &func.public);
        assert_eq!(
            out.status.code(),
            Some(0),
            "[{variant}] in-toto-sign --verify rejects tracelink's link:\n{}",
            common::show(&out)
        );
        // ...and rejects it with another key (no signature by that keyid).
        let out = sign_verify(&venv, &link_path, &other.public);
        assert_eq!(
            out.status.code(),
            Some(1),
            "[{variant}] wrong key accepted:\n{}",
            common::show(&out)
        );
        assert!(
            stderr_and_stdout(&out).contains("Signature verification failed"),
            "{}",
            common::show(&out)
        );

        // A hand-edited artifact digest breaks the signature.
        let tampered = md.join(format!("tampered.{}.link", func.prefix()));
        let mut obj = link.clone();
        obj["products"]["out.txt"]["sha256"] = json!(sha256_hex(b"evil\n"));
        let mut file = file.clone();
        if variant == "dsse" {
            file["payload"] = json!(BASE64.encode(serde_json::to_vec(&obj).unwrap()));
        } else {
            file["signed"] = obj;
        }
        fs::write(&tampered, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        let out = sign_verify(&venv, &tampered, &func.public);
        assert_eq!(
            out.status.code(),
            Some(1),
            "[{variant}] in-toto-sign --verify accepts a tampered link:\n{}",
            common::show(&out)
        );
        assert!(
            stderr_and_stdout(&out).contains("Signature verification failed"),
            "{}",
            common::show(&out)
        );
    }
}

// ---------------------------------------------------------------------------
// 2./3. Full layout verification and tampering

const SRC_FILES: [(&str, &[u8]); 4] = [
    ("src/main.c", b"int main(void) { return 0; }\n"),
    ("src/lib/util.c", b"int util(void) { return 1; }\n"),
    ("src/lib/util.h", b"int util(void);\n"),
    ("src/read me.txt", b"a file with a space\n"),
];

/// The supply chain: write-code (creates src/), package (tar), inspection
/// untar; both steps by `func`, layout by `owner`.
fn chain_layout(func: &Key, func_keyid: &str, legacy: bool) -> Value {
    json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "tracelink interoperability test",
        "keys": { func_keyid: key_dict(func, func_keyid, legacy) },
        "steps": [
            {
                "_type": "step",
                "name": "write-code",
                "threshold": 1,
                "pubkeys": [func_keyid],
                "expected_command": ["sh", "-c", write_code_script()],
                "expected_materials": [["DISALLOW", "*"]],
                "expected_products": [["CREATE", "src/*"], ["DISALLOW", "*"]],
            },
            {
                "_type": "step",
                "name": "package",
                "threshold": 1,
                "pubkeys": [func_keyid],
                "expected_command": ["tar", "czf", "pkg.tar.gz", "src"],
                "expected_materials": [
                    ["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "write-code"],
                    ["DISALLOW", "*"],
                ],
                "expected_products": [["CREATE", "pkg.tar.gz"], ["DISALLOW", "*"]],
            },
        ],
        "inspect": [
            {
                "_type": "inspection",
                "name": "untar",
                "run": ["tar", "xzf", "pkg.tar.gz"],
                "expected_materials": [
                    ["MATCH", "pkg.tar.gz", "WITH", "PRODUCTS", "FROM", "package"],
                    ["DISALLOW", "*"],
                ],
                "expected_products": [
                    ["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "write-code"],
                    ["MATCH", "pkg.tar.gz", "WITH", "PRODUCTS", "FROM", "package"],
                    ["DISALLOW", "*"],
                ],
            },
        ],
    })
}

struct Chain {
    _dir: tempfile::TempDir,
    base: PathBuf,
    ws: PathBuf,
    links: PathBuf,
    func: Key,
    owner: Key,
}

fn new_chain() -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let func = keygen(&base, "func");
    let owner = keygen(&base, "owner");
    let ws = base.join("ws");
    let links = base.join("links");
    fs::create_dir(&ws).unwrap();
    fs::create_dir(&links).unwrap();
    Chain {
        _dir: dir,
        base,
        ws,
        links,
        func,
        owner,
    }
}

/// The shell script write-code runs: it creates SRC_FILES.
fn write_code_script() -> String {
    let mut script = String::from("set -e; mkdir -p src/lib;");
    for (path, content) in SRC_FILES {
        script.push_str(&format!(
            " printf '{}' > '{path}';",
            String::from_utf8_lossy(content).replace('\n', "\\n")
        ));
    }
    script
}

/// Records write-code, runs `between` on the workspace, records package.
/// The links carry the keyid whose first 8 hex digits are `prefix`.
fn record_chain(c: &Chain, prefix: &str, extra: &[&str], between: impl FnOnce(&Path)) {
    let script = write_code_script();
    let md = c.links.to_str().unwrap();
    let mut args = vec!["-d", md, "-p", "src"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    tracelink_run(&c.ws, &c.func.private, "write-code", &args);
    for (path, content) in SRC_FILES {
        assert_eq!(fs::read(c.ws.join(path)).unwrap(), content, "{path}");
    }
    let write_code = link_object(&c.links.join(format!("write-code.{prefix}.link")));
    let expected: serde_json::Map<String, Value> = SRC_FILES
        .iter()
        .map(|(p, content)| (p.to_string(), digest(content)))
        .collect();
    assert_eq!(write_code["products"], Value::Object(expected));
    assert_eq!(write_code["materials"], json!({}));

    between(&c.ws);

    let mut args = vec!["-d", md, "-m", "src", "-p", "pkg.tar.gz"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "tar", "czf", "pkg.tar.gz", "src"]);
    tracelink_run(&c.ws, &c.func.private, "package", &args);
}

/// A clean directory holding only the delivered pkg.tar.gz, where the
/// verifier runs (the inspection records `-m . -p .` there).
fn delivery(c: &Chain) -> PathBuf {
    let fin = c.base.join("final");
    fs::create_dir(&fin).unwrap();
    fs::copy(c.ws.join("pkg.tar.gz"), fin.join("pkg.tar.gz")).unwrap();
    fin
}

fn verified_chain(test: &str, extra: &[&str]) {
    let Some(venv) = common::intoto_venv(test) else {
        return;
    };
    let c = new_chain();
    record_chain(&c, c.func.prefix(), extra, |_| {});
    let layout = sign_layout(
        &venv,
        &c.base,
        &chain_layout(&c.func, &c.func.keyid, false),
        &c.owner,
    );
    let fin = delivery(&c);
    let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
    assert_eq!(
        out.status.code(),
        Some(0),
        "in-toto-verify rejects tracelink's supply chain ({extra:?}):\n{}",
        common::show(&out)
    );
    // The inspection really ran.
    assert_eq!(
        fs::read(fin.join("src/main.c")).unwrap(),
        SRC_FILES[0].1,
        "untar did not extract"
    );
}

#[test]
fn in_toto_verify_accepts_classic_links() {
    verified_chain("in_toto_verify_accepts_classic_links", &[]);
}

#[test]
fn in_toto_verify_accepts_dsse_links() {
    verified_chain("in_toto_verify_accepts_dsse_links", &["--use-dsse"]);
}

fn assert_verification_fails(out: &Output, must_name: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "in-toto-verify was expected to fail:\n{}",
        common::show(out)
    );
    let text = stderr_and_stdout(out);
    for name in must_name {
        assert!(
            text.contains(name),
            "in-toto-verify's output does not name {name:?}:\n{}",
            common::show(out)
        );
    }
}

#[test]
fn in_toto_verify_rejects_a_source_changed_between_steps() {
    let Some(venv) = common::intoto_venv("in_toto_verify_rejects_a_source_changed_between_steps")
    else {
        return;
    };
    for extra in [&[][..], &["--use-dsse"][..]] {
        let c = new_chain();
        record_chain(&c, c.func.prefix(), extra, |ws| {
            fs::write(ws.join("src/main.c"), b"int main(void) { return 666; }\n").unwrap();
        });
        let layout = sign_layout(
            &venv,
            &c.base,
            &chain_layout(&c.func, &c.func.keyid, false),
            &c.owner,
        );
        let fin = delivery(&c);
        let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
        // package's material src/main.c does not MATCH write-code's product,
        // so the terminal DISALLOW of package's materials catches it.
        assert_verification_fails(
            &out,
            &[
                "RuleVerificationError: 'DISALLOW *' matched the following artifacts: \
                 ['src/main.c']",
                "Full trace for 'expected_materials' of item 'package'",
            ],
        );
    }
}

#[test]
fn in_toto_verify_rejects_a_swapped_package() {
    let Some(venv) = common::intoto_venv("in_toto_verify_rejects_a_swapped_package") else {
        return;
    };
    let c = new_chain();
    record_chain(&c, c.func.prefix(), &[], |_| {});
    let layout = sign_layout(
        &venv,
        &c.base,
        &chain_layout(&c.func, &c.func.keyid, false),
        &c.owner,
    );
    let fin = delivery(&c);
    // The delivered package is rebuilt from a changed source after signing.
    let evil = c.base.join("evil");
    fs::create_dir_all(evil.join("src")).unwrap();
    fs::write(evil.join("src/main.c"), b"backdoor\n").unwrap();
    ok(Command::new("tar")
        .current_dir(&evil)
        .args(["czf"])
        .arg(fin.join("pkg.tar.gz"))
        .arg("src"));
    let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
    // untar's material pkg.tar.gz does not MATCH package's product.
    assert_verification_fails(
        &out,
        &[
            "RuleVerificationError: 'DISALLOW *' matched the following artifacts: \
             ['pkg.tar.gz']",
            "Full trace for 'expected_materials' of item 'untar'",
        ],
    );
}

#[test]
fn in_toto_verify_rejects_an_edited_link() {
    let Some(venv) = common::intoto_venv("in_toto_verify_rejects_an_edited_link") else {
        return;
    };
    for extra in [&[][..], &["--use-dsse"][..]] {
        let c = new_chain();
        // write-code's record is edited to claim the changed source, so the
        // rules would pass; the signature must not.
        record_chain(&c, c.func.prefix(), extra, |ws| {
            fs::write(ws.join("src/main.c"), b"int main(void) { return 666; }\n").unwrap();
        });
        let path = c.links.join(format!("write-code.{}.link", c.func.prefix()));
        let mut file = read_json(&path);
        let mut obj = link_object(&path);
        obj["products"]["src/main.c"] = digest(b"int main(void) { return 666; }\n");
        if file.get("payload").is_some() {
            file["payload"] = json!(BASE64.encode(serde_json::to_vec(&obj).unwrap()));
        } else {
            file["signed"] = obj;
        }
        fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        let layout = sign_layout(
            &venv,
            &c.base,
            &chain_layout(&c.func, &c.func.keyid, false),
            &c.owner,
        );
        let fin = delivery(&c);
        let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
        assert_verification_fails(
            &out,
            &[
                "ThresholdVerificationError: Step 'write-code' requires at least '1' links \
               validly signed by different authorized functionaries. Only found '0'",
            ],
        );
        assert!(
            !stderr_and_stdout(&out).contains("RuleVerificationError"),
            "an unsigned link reached rule verification:\n{}",
            common::show(&out)
        );
    }
}

// ---------------------------------------------------------------------------
// 4. tracelink record start/stop against in-toto-record

fn build_record_tree(ws: &Path) {
    fs::create_dir_all(ws.join("dir/sub")).unwrap();
    fs::write(ws.join("a.txt"), b"a\n").unwrap();
    fs::write(ws.join("old.txt"), b"to be deleted\n").unwrap();
    fs::write(ws.join("dir/sub/b.txt"), b"b\n").unwrap();
    fs::write(ws.join("with space.txt"), b"space\n").unwrap();
    fs::write(ws.join("ignored.pyc"), b"pyc\n").unwrap();
    std::os::unix::fs::symlink("a.txt", ws.join("link-a")).unwrap();
}

fn do_record_work(ws: &Path) {
    fs::write(ws.join("a.txt"), b"a changed\n").unwrap();
    fs::remove_file(ws.join("old.txt")).unwrap();
    fs::write(ws.join("new.txt"), b"new\n").unwrap();
    fs::create_dir(ws.join("made")).unwrap();
    fs::write(ws.join("made/c.txt"), b"c\n").unwrap();
}

fn tracelink_record(ws: &Path, key: &Path, phase: &str, args: &[&str]) -> Output {
    ok(common::tracelink()
        .current_dir(ws)
        .args(["record", phase, "-n", "edit", "-k"])
        .arg(key)
        .args(args))
}

fn intoto_record(venv: &Path, ws: &Path, key: &Path, phase: &str, args: &[&str]) -> Output {
    ok(intoto(venv, "in-toto-record")
        .current_dir(ws)
        .args([phase, "-n", "edit", "--signing-key"])
        .arg(key)
        .args(args))
}

#[test]
fn record_start_stop_matches_in_toto_record() {
    let Some(venv) = common::intoto_venv("record_start_stop_matches_in_toto_record") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let func = keygen(base, "func");
    let func2 = keygen(base, "func2");
    let ws = base.join("ws");
    let (md_tl, md_py) = (base.join("md-tl"), base.join("md-py"));
    for d in [&ws, &md_tl, &md_py] {
        fs::create_dir(d).unwrap();
    }
    build_record_tree(&ws);

    // Both record the same tree and the same work; different keys so their
    // preliminary links (.edit.<keyid8>.link-unfinished in ws) do not clash.
    tracelink_record(&ws, &func.private, "start", &["-m", "."]);
    intoto_record(&venv, &ws, &func2.private, "start", &["-m", "."]);
    assert!(
        ws.join(format!(".edit.{}.link-unfinished", func.prefix()))
            .exists(),
        "tracelink record start wrote no preliminary link in the cwd"
    );
    do_record_work(&ws);
    tracelink_record(
        &ws,
        &func.private,
        "stop",
        &["-p", ".", "-d", md_tl.to_str().unwrap()],
    );
    intoto_record(
        &venv,
        &ws,
        &func2.private,
        "stop",
        &["-p", ".", "-d", md_py.to_str().unwrap()],
    );

    let ours = md_tl.join(format!("edit.{}.link", func.prefix()));
    let theirs = md_py.join(format!("edit.{}.link", func2.prefix()));
    let out = sign_verify(&venv, &ours, &func.public);
    assert_eq!(
        out.status.code(),
        Some(0),
        "in-toto-sign --verify rejects tracelink record's link:\n{}",
        common::show(&out)
    );
    let (o, t) = (link_object(&ours), link_object(&theirs));
    assert_eq!(
        o["materials"], t["materials"],
        "materials differ from in-toto-record's"
    );
    assert_eq!(
        o["products"], t["products"],
        "products differ from in-toto-record's"
    );
    for field in ["_type", "name", "command", "byproducts", "environment"] {
        assert_eq!(
            o[field], t[field],
            "signed.{field} differs from in-toto-record's"
        );
    }
    // And they are what the tree says.
    assert_eq!(
        o["materials"],
        json!({
            "a.txt": digest(b"a\n"),
            "dir/sub/b.txt": digest(b"b\n"),
            "link-a": digest(b"a\n"),
            "old.txt": digest(b"to be deleted\n"),
            "with space.txt": digest(b"space\n"),
        })
    );
    assert_eq!(
        o["products"],
        json!({
            "a.txt": digest(b"a changed\n"),
            "dir/sub/b.txt": digest(b"b\n"),
            "link-a": digest(b"a changed\n"),
            "made/c.txt": digest(b"c\n"),
            "new.txt": digest(b"new\n"),
            "with space.txt": digest(b"space\n"),
        })
    );
    // Both preliminary links are gone.
    let leftovers: Vec<_> = fs::read_dir(&ws)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("link-unfinished"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "preliminary links left: {leftovers:?}"
    );
}

#[test]
fn record_start_stop_is_byte_identical_to_in_toto_record() {
    let Some(venv) = common::intoto_venv("record_start_stop_is_byte_identical_to_in_toto_record")
    else {
        return;
    };
    // Same key, same step, twin trees: the links must be identical files.
    for extra in [&[][..], &["--use-dsse"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let func = keygen(base, "func");
        let (ws_tl, ws_py) = (base.join("ws-tl"), base.join("ws-py"));
        let (md_tl, md_py) = (base.join("md-tl"), base.join("md-py"));
        for d in [&ws_tl, &ws_py, &md_tl, &md_py] {
            fs::create_dir(d).unwrap();
        }
        build_record_tree(&ws_tl);
        build_record_tree(&ws_py);

        let mut start = vec!["-m", "."];
        start.extend_from_slice(extra);
        tracelink_record(&ws_tl, &func.private, "start", &start);
        intoto_record(&venv, &ws_py, &func.private, "start", &start);
        let unfinished = format!(".edit.{}.link-unfinished", func.prefix());
        let (u_tl, u_py) = (
            fs::read(ws_tl.join(&unfinished)).unwrap(),
            fs::read(ws_py.join(&unfinished)).unwrap(),
        );
        assert!(
            u_tl == u_py,
            "[{extra:?}] preliminary links differ:\n--- in-toto-record\n{}\n--- tracelink\n{}",
            String::from_utf8_lossy(&u_py),
            String::from_utf8_lossy(&u_tl)
        );
        do_record_work(&ws_tl);
        do_record_work(&ws_py);
        let mut stop_tl = vec!["-p", ".", "-d", md_tl.to_str().unwrap()];
        stop_tl.extend_from_slice(extra);
        let mut stop_py = vec!["-p", ".", "-d", md_py.to_str().unwrap()];
        stop_py.extend_from_slice(extra);
        tracelink_record(&ws_tl, &func.private, "stop", &stop_tl);
        intoto_record(&venv, &ws_py, &func.private, "stop", &stop_py);
        let name = format!("edit.{}.link", func.prefix());
        let (l_tl, l_py) = (
            fs::read(md_tl.join(&name)).unwrap(),
            fs::read(md_py.join(&name)).unwrap(),
        );
        assert!(
            l_tl == l_py,
            "[{extra:?}] links differ:\n--- in-toto-record\n{}\n--- tracelink\n{}",
            String::from_utf8_lossy(&l_py),
            String::from_utf8_lossy(&l_tl)
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Legacy keyids

#[test]
fn legacy_keyid_links() {
    let Some(venv) = common::intoto_venv("legacy_keyid_links") else {
        return;
    };
    assert_eq!(python_keyid(RFC8032_PUBLIC), RFC8032_PYTHON_KEYID);
    assert_eq!(legacy_keyid(RFC8032_PUBLIC), RFC8032_LEGACY_KEYID);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let key = rfc8032(base);
    let ws = base.join("ws");
    let md = base.join("md");
    fs::create_dir(&ws).unwrap();
    fs::create_dir(&md).unwrap();
    fs::write(ws.join("f.txt"), b"f\n").unwrap();

    // PEM key with --keyid-format legacy, and the legacy JSON key (legacy by
    // default): both name the file and the signature with the legacy keyid.
    let json_key = base.join("legacy-sslib-key.json");
    fs::copy(common::vector("legacy-sslib-key.json"), &json_key).unwrap();
    let md_s = md.to_str().unwrap();
    tracelink_run(
        &ws,
        &key.private,
        "pem",
        &["--keyid-format", "legacy", "-d", md_s, "-x", "-p", "."],
    );
    tracelink_run(&ws, &json_key, "json", &["-d", md_s, "-x", "-p", "."]);
    tracelink_run(
        &ws,
        &key.private,
        "dsse",
        &[
            "--keyid-format",
            "legacy",
            "--use-dsse",
            "-d",
            md_s,
            "-x",
            "-p",
            ".",
        ],
    );
    for step in ["pem", "json", "dsse"] {
        let path = md.join(format!("{step}.01e8764e.link"));
        assert!(
            path.exists(),
            "no {path:?}; metadata dir holds {:?}",
            fs::read_dir(&md)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
        let file = read_json(&path);
        assert_eq!(
            file["signatures"][0]["keyid"], RFC8032_LEGACY_KEYID,
            "[{step}]"
        );
        assert_eq!(
            link_object(&path)["products"],
            json!({ "f.txt": digest(b"f\n") })
        );

        // in-toto 3.1.0 computes the python keyid of a PEM public key and
        // looks for a signature by that keyid only: a legacy-keyid link
        // cannot be checked with in-toto-sign and a PEM key (exit 1).
        let out = sign_verify(&venv, &path, &key.public);
        assert_eq!(
            out.status.code(),
            Some(1),
            "[{step}] in-toto-sign --verify was expected to find no signature by the \
             python keyid:\n{}",
            common::show(&out)
        );
        assert!(
            stderr_and_stdout(&out).contains("Signature verification failed"),
            "{}",
            common::show(&out)
        );
    }
    // The same key with the default (python) keyid verifies.
    tracelink_run(&ws, &key.private, "pem", &["-d", md_s, "-x", "-p", "."]);
    let python_link = md.join("pem.74c181c7.link");
    let out = sign_verify(&venv, &python_link, &key.public);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
}

#[test]
fn in_toto_verify_accepts_legacy_keyid_links_when_the_layout_lists_them() {
    let Some(venv) =
        common::intoto_venv("in_toto_verify_accepts_legacy_keyid_links_when_the_layout_lists_them")
    else {
        return;
    };
    // Verifiers never recompute keyids: a layout that lists the functionary
    // under the legacy keyid accepts legacy-keyid links.
    for extra in [
        &["--keyid-format", "legacy"][..],
        &["--keyid-format", "legacy", "--use-dsse"][..],
    ] {
        let c = new_chain();
        let legacy = legacy_keyid(&c.func.public_hex);
        record_chain(&c, &legacy[..8], extra, |_| {});
        for step in ["write-code", "package"] {
            let path = c.links.join(format!("{step}.{}.link", &legacy[..8]));
            assert!(path.exists(), "[{extra:?}] no {path:?}");
        }
        let layout = sign_layout(
            &venv,
            &c.base,
            &chain_layout(&c.func, &legacy, true),
            &c.owner,
        );
        let fin = delivery(&c);
        let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
        assert_eq!(
            out.status.code(),
            Some(0),
            "[{extra:?}] in-toto-verify rejects legacy-keyid links under a legacy-keyid layout:\n{}",
            common::show(&out)
        );
        // ...and a layout listing the python keyid finds no link for them.
        let layout = sign_layout(
            &venv,
            &c.base,
            &chain_layout(&c.func, &c.func.keyid, false),
            &c.owner,
        );
        let out = in_toto_verify(&venv, &fin, &layout, &c.owner, &c.links);
        assert_verification_fails(
            &out,
            &[
                "LinkNotFoundError: Step 'write-code' requires '1' link metadata file(s), \
               found '0'.",
            ],
        );
    }
}
