//! The in-toto demo supply chain (github.com/in-toto/demo), recorded with
//! tracelink and verified by both in-toto-verify 3.1.0 and tracelink verify.
//!
//! Alice owns the project and signs the layout; Bob clones the sources;
//! Carl updates the version (in-toto-record style: `tracelink record
//! start/stop` around an edit) and packages the tarball; the verifier's
//! inspection untars it. All three keys are RSA 3072, as in the demo. A
//! tarball swapped after the package step must fail both verifiers. The
//! upstream repository is a local git repository (no network here).
//!
//! A second test shows `--precise-inspections`: the same chain, verified
//! against a layout whose inspection lists only what `tar` touches, without
//! the ALLOW lines a whole-directory snapshot needs (needs root and FUSE).

mod common;

use common::{intoto_venv, output, show, tracelink};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An RSA 3072 key pair: `dir/name.pem` (PKCS#8, 0600) and `dir/name.pub` (SPKI).
fn rsa_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let pem = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    run_ok(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
                "-out",
            ])
            .arg(&pem),
    );
    fs::set_permissions(&pem, fs::Permissions::from_mode(0o600)).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&public),
    );
    (pem, public)
}

/// The demo's layout (create_layout.py), written with in-toto's Python API
/// and signed with Alice's key. `precise_inspection` drops the ALLOW lines
/// that only a whole-directory snapshot of the inspection needs.
const CREATE_LAYOUT: &str = r#"
import sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Layout
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

alice_pem, bob_pub, carl_pub, out, precise = sys.argv[1:6]
precise = precise == "1"
layout = Layout.read({
    "_type": "layout",
    "keys": {},
    "steps": [],
    "inspect": [],
    "readme": "in-toto demo supply chain",
    "expires": "2099-01-01T00:00:00Z",
})
bob = layout.add_functionary_key_from_path(bob_pub)
carl = layout.add_functionary_key_from_path(carl_pub)
untar_materials = [["MATCH", "demo-project.tar.gz", "WITH", "PRODUCTS", "FROM", "package"]]
untar_products = [["MATCH", "demo-project/foo.py", "WITH", "PRODUCTS", "FROM", "update-version"]]
if not precise:
    untar_materials += [["ALLOW", ".keep"], ["ALLOW", "alice.pub"], ["ALLOW", "root.layout"]]
    untar_products += [["ALLOW", "demo-project/.git/*"], ["ALLOW", "demo-project.tar.gz"],
                       ["ALLOW", ".keep"], ["ALLOW", "alice.pub"], ["ALLOW", "root.layout"]]
layout = Layout.read({
    "_type": "layout",
    "keys": layout.keys,
    "readme": "in-toto demo supply chain",
    "expires": "2099-01-01T00:00:00Z",
    "steps": [{
        "name": "clone",
        "expected_materials": [],
        "expected_products": [["CREATE", "demo-project/foo.py"], ["DISALLOW", "*"]],
        "pubkeys": [bob["keyid"]],
        "expected_command": ["git", "clone", "https://github.com/in-toto/demo-project.git"],
        "threshold": 1,
    }, {
        "name": "update-version",
        "expected_materials": [["MATCH", "demo-project/*", "WITH", "PRODUCTS", "FROM", "clone"],
                               ["DISALLOW", "*"]],
        "expected_products": [["ALLOW", "demo-project/foo.py"], ["DISALLOW", "*"]],
        "pubkeys": [carl["keyid"]],
        "expected_command": [],
        "threshold": 1,
    }, {
        "name": "package",
        "expected_materials": [["MATCH", "demo-project/*", "WITH", "PRODUCTS", "FROM",
                                "update-version"], ["DISALLOW", "*"]],
        "expected_products": [["CREATE", "demo-project.tar.gz"], ["DISALLOW", "*"]],
        "pubkeys": [carl["keyid"]],
        "expected_command": ["tar", "--exclude", ".git", "-zcvf", "demo-project.tar.gz",
                             "demo-project"],
        "threshold": 1,
    }],
    "inspect": [{
        "name": "untar",
        "expected_materials": untar_materials + [["DISALLOW", "*"]],
        "expected_products": untar_products + [["DISALLOW", "*"]],
        "run": ["tar", "xzf", "demo-project.tar.gz"],
    }],
})
metablock = Metablock(signed=layout)
with open(alice_pem, "rb") as f:
    signer = CryptoSigner(load_pem_private_key(f.read(), None))
metablock.create_signature(signer)
metablock.dump(out)
"#;

struct Demo {
    dir: tempfile::TempDir,
    keys: PathBuf,
}

impl Demo {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn key(&self, name: &str, ext: &str) -> PathBuf {
        self.keys.join(format!("{name}.{ext}"))
    }
}

/// Records the demo chain with tracelink, leaving the links in `links/` and
/// Carl's tarball in `carl/`.
fn record_chain(venv: &Path) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    fs::create_dir(&keys).unwrap();
    for name in ["alice", "bob", "carl"] {
        rsa_key(&keys, name);
    }
    let demo = Demo { dir, keys };
    let git = |args: &[&str], cwd: &Path| {
        run_ok(
            Command::new("git")
                .args(["-c", "user.name=demo", "-c", "user.email=demo@example.org"])
                .args(args)
                .current_dir(cwd),
        )
    };
    // The upstream repository Bob clones.
    let upstream = demo.path("upstream");
    fs::create_dir(&upstream).unwrap();
    git(&["init", "-q"], &upstream);
    fs::write(
        upstream.join("foo.py"),
        "VERSION = \"foo-v0\"\n\nprint(\"Hello in-toto\")\n",
    )
    .unwrap();
    git(&["add", "foo.py"], &upstream);
    git(&["commit", "-q", "-m", "initial"], &upstream);
    let links = demo.path("links");
    fs::create_dir(&links).unwrap();

    // Bob: clone.
    let bob = demo.path("bob");
    fs::create_dir(&bob).unwrap();
    run_ok(
        tracelink()
            .current_dir(&bob)
            .args(["run", "-n", "clone", "-k"])
            .arg(demo.key("bob", "pem"))
            .args(["-d"])
            .arg(&links)
            .args(["-p", "demo-project", "--", "git", "clone", "-q"])
            .arg(&upstream)
            .arg("demo-project"),
    );

    // Carl: update-version around an edit, then package.
    let carl = demo.path("carl");
    fs::create_dir(&carl).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(bob.join("demo-project"))
            .arg(&carl),
    );
    run_ok(
        tracelink()
            .current_dir(&carl)
            .args(["record", "start", "-n", "update-version", "-k"])
            .arg(demo.key("carl", "pem"))
            .args(["-m", "demo-project"]),
    );
    fs::write(
        carl.join("demo-project/foo.py"),
        "VERSION = \"foo-v1\"\n\nprint(\"Hello in-toto\")\n",
    )
    .unwrap();
    run_ok(
        tracelink()
            .current_dir(&carl)
            .args(["record", "stop", "-n", "update-version", "-k"])
            .arg(demo.key("carl", "pem"))
            .args(["-p", "demo-project", "-d"])
            .arg(&links),
    );
    run_ok(
        tracelink()
            .current_dir(&carl)
            .args(["run", "-n", "package", "-k"])
            .arg(demo.key("carl", "pem"))
            .args(["-d"])
            .arg(&links)
            .args(["-m", "demo-project", "-p", "demo-project.tar.gz", "--"])
            .args([
                "tar",
                "--exclude",
                ".git",
                "-zcvf",
                "demo-project.tar.gz",
                "demo-project",
            ]),
    );
    let _ = venv;
    demo
}

/// A fresh verification directory: layout, Alice's public key, the links
/// and the tarball (as the demo's final_product).
fn final_product(demo: &Demo, venv: &Path, name: &str, precise: bool) -> PathBuf {
    let dir = demo.path(name);
    fs::create_dir(&dir).unwrap();
    run_ok(
        Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(CREATE_LAYOUT)
            .arg(demo.key("alice", "pem"))
            .arg(demo.key("bob", "pub"))
            .arg(demo.key("carl", "pub"))
            .arg(dir.join("root.layout"))
            .arg(if precise { "1" } else { "0" }),
    );
    fs::copy(demo.key("alice", "pub"), dir.join("alice.pub")).unwrap();
    for entry in fs::read_dir(demo.path("links")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    fs::copy(
        demo.path("carl/demo-project.tar.gz"),
        dir.join("demo-project.tar.gz"),
    )
    .unwrap();
    dir
}

fn in_toto_verify(venv: &Path, dir: &Path) -> std::process::Output {
    output(
        Command::new(venv.join("bin/in-toto-verify"))
            .current_dir(dir)
            .args([
                "--layout",
                "root.layout",
                "--verification-keys",
                "alice.pub",
            ]),
    )
}

fn tracelink_verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    output(
        tracelink()
            .current_dir(dir)
            .args([
                "verify",
                "--layout",
                "root.layout",
                "--verification-keys",
                "alice.pub",
            ])
            .args(extra),
    )
}

#[test]
fn in_toto_demo_chain_recorded_by_tracelink_verifies_with_both_verifiers() {
    let Some(venv) = intoto_venv("in_toto_demo_chain") else {
        return;
    };
    let demo = record_chain(&venv);
    let keyids: Vec<String> = fs::read_dir(demo.path("links"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keyids.len(), 3, "three links: {keyids:?}");

    let good = final_product(&demo, &venv, "final_product", false);
    let reference = in_toto_verify(&venv, &good);
    assert!(
        reference.status.success(),
        "in-toto-verify: {}",
        show(&reference)
    );
    // The inspection untarred into the directory; start again from the tarball.
    fs::remove_dir_all(good.join("demo-project")).unwrap();
    let ours = tracelink_verify(&good, &[]);
    assert_eq!(
        ours.status.code(),
        Some(0),
        "tracelink verify: {}",
        show(&ours)
    );
    let report = String::from_utf8_lossy(&ours.stdout);
    for expected in [
        "step clone: 1 link(s) counted",
        "step update-version: 1 link(s) counted",
        "step package: 1 link(s) counted",
        "inspection untar: ran \"tar xzf demo-project.tar.gz\", exit 0",
        "MATCH demo-project.tar.gz WITH PRODUCTS FROM package: consumed 1",
        "MATCH demo-project/foo.py WITH PRODUCTS FROM update-version: consumed 1",
    ] {
        assert!(
            report.contains(expected),
            "report lacks {expected:?}:\n{report}"
        );
    }

    // Tampering: the package is swapped after Carl recorded it.
    let carl = demo.path("carl");
    fs::write(
        carl.join("demo-project/foo.py"),
        "import os; os.system('evil')\n",
    )
    .unwrap();
    run_ok(Command::new("tar").current_dir(&carl).args([
        "--exclude",
        ".git",
        "-zcf",
        "demo-project.tar.gz",
        "demo-project",
    ]));
    let bad = final_product(&demo, &venv, "tampered", false);
    let reference = in_toto_verify(&venv, &bad);
    assert_eq!(
        reference.status.code(),
        Some(1),
        "in-toto-verify: {}",
        show(&reference)
    );
    let _ = fs::remove_dir_all(bad.join("demo-project"));
    let ours = tracelink_verify(&bad, &[]);
    assert_eq!(
        ours.status.code(),
        Some(1),
        "tracelink verify: {}",
        show(&ours)
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains("inspection \"untar\", materials: 'DISALLOW *' matched the following artifacts: ['demo-project.tar.gz']"),
        "the failure names the swapped tarball: {}",
        show(&ours)
    );
}

#[test]
fn precise_inspections_need_no_allow_lines_for_unrelated_files() {
    let test = "precise_inspections_need_no_allow_lines_for_unrelated_files";
    let Some(venv) = intoto_venv(test) else {
        return;
    };
    if common::precise_unavailable(test, &[]) {
        return;
    }
    let demo = record_chain(&venv);
    let dir = final_product(&demo, &venv, "final_product", true);
    // A snapshot of the directory also holds alice.pub and root.layout,
    // which this layout's inspection does not allow.
    let reference = in_toto_verify(&venv, &dir);
    assert_eq!(
        reference.status.code(),
        Some(1),
        "in-toto-verify: {}",
        show(&reference)
    );
    let _ = fs::remove_dir_all(dir.join("demo-project"));
    let snapshot = tracelink_verify(&dir, &[]);
    assert_eq!(
        snapshot.status.code(),
        Some(1),
        "tracelink verify: {}",
        show(&snapshot)
    );
    let _ = fs::remove_dir_all(dir.join("demo-project"));
    // Recorded precisely, the inspection read the tarball and wrote foo.py.
    let precise = tracelink_verify(&dir, &["--precise-inspections", "--json"]);
    assert_eq!(
        precise.status.code(),
        Some(0),
        "tracelink verify: {}",
        show(&precise)
    );
    let report: serde_json::Value = serde_json::from_slice(&precise.stdout).unwrap();
    let untar = &report["inspections"][0];
    assert_eq!(untar["name"], "untar");
    assert_eq!(untar["materials"], 1, "{untar}");
    assert_eq!(untar["products"], 1, "{untar}");
}
