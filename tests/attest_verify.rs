//! `tracelink verify` with link attestations, and `verify --vsa`, on a chain
//! the real binary records: `tracelink run` records a checkout (Alice, `-x
//! -p`) and a build (Bob, `-m`/`-p`) in snapshot mode, the owner's layout is
//! signed with `tracelink sign`, and the build's classic link is turned into
//! a link attestation with the library (`attest::link::statement` +
//! `attest::sign`). Each case verifies its own link directory.
//!
//! The verification summary is checked here field by field and, when the
//! venv with securesystemslib and in-toto-attestation 0.9.3 is there
//! (TRACELINK_INTOTO_VENV or ./.venv-intoto), by tests/attest_check.py with
//! the owner's public key (SKIP otherwise, FAIL under CI).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{output, show, tracelink};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tracelink::attest::{self, Kind};
use tracelink::keys::{KeyIdFormat, PrivateKey, PublicKey};
use tracelink::link::{self, Link};

const BUILD: &str = "mkdir -p out && cat src/hello.c src/Makefile > out/hello";

fn run_ok(cmd: &mut Command) -> Output {
    let out = output(cmd);
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
    out
}

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(fs::read(path).unwrap()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `tracelink: not verified: ...` line.
fn verdict(out: &Output) -> String {
    stderr(out)
        .lines()
        .find(|l| l.starts_with("tracelink: not verified: "))
        .unwrap_or_else(|| panic!("no verdict line: {}", show(out)))
        .to_string()
}

struct Fixture {
    dir: tempfile::TempDir,
    alice: String,
    bob: String,
}

impl Fixture {
    /// Keys, the recorded checkout and build, and the signed layout.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for name in ["owner", "alice", "bob"] {
            run_ok(tracelink().current_dir(dir.path()).args(["keygen", name]));
        }
        let keyid = |name: &str| {
            PublicKey::load(&dir.path().join(format!("{name}.pub")))
                .unwrap()
                .keyid(KeyIdFormat::Python)
        };
        let fixture = Fixture {
            alice: keyid("alice"),
            bob: keyid("bob"),
            dir,
        };
        let work = fixture.path("work");
        fs::create_dir_all(work.join("src")).unwrap();
        fs::write(work.join("src/hello.c"), "int main(void) { return 0; }\n").unwrap();
        fs::write(work.join("src/Makefile"), "hello: hello.c\n").unwrap();
        let recorded = fixture.path("recorded");
        fs::create_dir(&recorded).unwrap();
        run_ok(
            tracelink()
                .current_dir(&work)
                .args(["run", "-n", "checkout", "-k"])
                .arg(fixture.path("alice"))
                .arg("-d")
                .arg(&recorded)
                .args(["-x", "-p", "src"]),
        );
        run_ok(
            tracelink()
                .current_dir(&work)
                .args(["run", "-n", "build", "-k"])
                .arg(fixture.path("bob"))
                .arg("-d")
                .arg(&recorded)
                .args(["-m", "src", "-p", "out", "--", "sh", "-c", BUILD]),
        );
        fixture.write_layout("root.layout", &["bob"], 1);
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the layout `file`, signed by the owner with `tracelink sign`:
    /// the checkout by Alice, the build by the functionaries `build_by`
    /// with `threshold`.
    fn write_layout(&self, file: &str, build_by: &[&str], threshold: i64) {
        let key = |name: &str| {
            let public = PublicKey::load(&self.path(&format!("{name}.pub"))).unwrap();
            let keyid = public.keyid(KeyIdFormat::Python);
            let mut dict = public.key_dict(KeyIdFormat::Python);
            dict["keyid"] = json!(keyid);
            (keyid, dict)
        };
        let (alice, alice_key) = key("alice");
        let (bob, bob_key) = key("bob");
        let builders: Vec<String> = build_by.iter().map(|name| key(name).0).collect();
        let signed = json!({
            "_type": "layout",
            "expires": "2099-01-01T00:00:00Z",
            "readme": "checkout and build",
            "keys": {alice.clone(): alice_key, bob.clone(): bob_key},
            "steps": [
                {"_type": "step", "name": "checkout", "pubkeys": [alice], "threshold": 1,
                 "expected_command": [], "expected_materials": [],
                 "expected_products": [["CREATE", "src/*"], ["DISALLOW", "*"]]},
                {"_type": "step", "name": "build", "pubkeys": builders, "threshold": threshold,
                 "expected_command": ["sh", "-c", BUILD],
                 "expected_materials": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "checkout"],
                                        ["DISALLOW", "*"]],
                 "expected_products": [["CREATE", "out/hello"], ["DISALLOW", "*"]]},
            ],
            "inspect": [],
        });
        let doc = json!({"signatures": [], "signed": signed});
        fs::write(self.path(file), doc.to_string()).unwrap();
        run_ok(
            tracelink()
                .current_dir(self.dir.path())
                .args(["sign", file, "-k", "owner"]),
        );
    }

    fn classic_name(&self, step: &str) -> String {
        link::file_name(step, self.keyid(step))
    }

    fn attestation_name(&self, step: &str) -> String {
        attest::file_name(step, self.keyid(step), Kind::Link)
    }

    fn keyid(&self, step: &str) -> &str {
        match step {
            "checkout" => &self.alice,
            _ => &self.bob,
        }
    }

    /// The bytes `tracelink run` wrote for `step`.
    fn recorded(&self, step: &str) -> Vec<u8> {
        fs::read(self.path("recorded").join(self.classic_name(step))).unwrap()
    }

    /// The link `tracelink run` recorded for `step`.
    fn link(&self, step: &str) -> Link {
        let doc: Value = serde_json::from_slice(&self.recorded(step)).unwrap();
        Link::from_value(&doc["signed"]).unwrap()
    }

    /// `link` as a link attestation signed by the key file `key` under the
    /// keyid of `step`'s functionary.
    fn attestation(&self, link: &Link, key: &str, keyid: &str) -> Vec<u8> {
        let key = PrivateKey::load(&self.path(key), None).unwrap();
        attest::sign(&attest::link::statement(link), &key, keyid).unwrap()
    }

    /// The build step's own attestation (Bob's key and keyid).
    fn build_attestation(&self, link: &Link) -> Vec<u8> {
        self.attestation(link, "bob", &self.bob)
    }

    /// A link directory `name` holding `files`.
    fn links(&self, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir(&dir).unwrap();
        for (file, bytes) in files {
            fs::write(dir.join(file), bytes).unwrap();
        }
        dir
    }

    /// The checkout's classic link and the build as a link attestation
    /// (the build's classic link deleted: it is not there).
    fn mixed(&self, name: &str) -> PathBuf {
        self.links(
            name,
            &[
                (self.classic_name("checkout"), self.recorded("checkout")),
                (
                    self.attestation_name("build"),
                    self.build_attestation(&self.link("build")),
                ),
            ],
        )
    }

    fn verify(&self, link_dir: &Path, extra: &[&str]) -> Output {
        self.verify_layout("root.layout", link_dir, extra)
    }

    fn verify_layout(&self, layout: &str, link_dir: &Path, extra: &[&str]) -> Output {
        output(
            tracelink()
                .current_dir(self.dir.path())
                .args([
                    "verify",
                    "--layout",
                    layout,
                    "--verification-keys",
                    "owner.pub",
                    "--link-dir",
                ])
                .arg(link_dir)
                .args(extra),
        )
    }
}

/// The payload of a DSSE envelope, edited, re-encoded; the signature kept.
fn edit_payload(envelope: &[u8], edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(envelope).unwrap();
    let payload = BASE64.decode(doc["payload"].as_str().unwrap()).unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    edit(&mut statement);
    doc["payload"] = json!(BASE64.encode(serde_json::to_vec(&statement).unwrap()));
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn a_link_attestation_counts_as_the_missing_link() {
    let f = Fixture::new();
    let mixed = f.mixed("mixed");
    assert!(!mixed.join(f.classic_name("build")).exists());
    let out = f.verify(&mixed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    let k8 = |keyid: &str| keyid[..8].to_string();
    for line in [
        "step checkout: 1 link(s) counted, threshold 1".to_string(),
        format!(
            "{} (key {}): counted",
            mixed.join(f.classic_name("checkout")).display(),
            k8(&f.alice)
        ),
        "step build: 1 link(s) counted, threshold 1".to_string(),
        format!(
            "{} (key {}, link attestation): counted",
            mixed.join(f.attestation_name("build")).display(),
            k8(&f.bob)
        ),
    ] {
        assert!(
            text.lines().any(|l| l.trim() == line),
            "{line:?} missing: {}",
            show(&out)
        );
    }
    // The one warning: the verdict is not in-toto-verify's.
    let warnings: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "warning: {}: a link attestation counted for step \"build\" in place of a missing link: in-toto-verify, which reads only links, would not count it",
            mixed.join(f.attestation_name("build")).display()
        )],
        "{}",
        show(&out)
    );

    let out = f.verify(&mixed, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checkout = &report["steps"][0]["links"][0];
    let build = &report["steps"][1]["links"][0];
    assert_eq!(
        (&checkout["status"], &checkout["attestation"]),
        (&json!("counted"), &json!(false))
    );
    assert_eq!(
        (&build["status"], &build["attestation"]),
        (&json!("counted"), &json!(true))
    );
    assert_eq!(
        build["file"],
        json!(
            mixed
                .join(f.attestation_name("build"))
                .display()
                .to_string()
        )
    );

    // Without it the build has no link.
    let only_checkout = f.links(
        "only-checkout",
        &[(f.classic_name("checkout"), f.recorded("checkout"))],
    );
    let out = f.verify(&only_checkout, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        verdict(&out).contains("step \"build\" requires 1 link file(s), found 0"),
        "{}",
        show(&out)
    );

    // Only the keys the layout lists for the step: an attestation signed by
    // Alice (a functionary of another step) under Bob's file name is not
    // counted, and one under Alice's name is not even looked for.
    let by_alice = f.attestation(&f.link("build"), "alice", &f.alice);
    let wrong_key = f.links(
        "wrong-key",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.attestation_name("build"), by_alice.clone()),
        ],
    );
    let out = f.verify(&wrong_key, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!(
            "(key {}, link attestation): not counted: no signature by key {}",
            k8(&f.bob),
            f.bob
        )),
        "{}",
        show(&out)
    );
    assert_eq!(
        verdict(&out),
        "tracelink: not verified: step \"build\" requires at least 1 link(s) validly signed by different authorized functionaries, found 0"
    );
    let alice_name = f.links(
        "alice-name",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (attest::file_name("build", &f.alice, Kind::Link), by_alice),
        ],
    );
    let out = f.verify(&alice_name, &[]);
    assert!(
        verdict(&out).contains("step \"build\" requires 1 link file(s), found 0"),
        "{}",
        show(&out)
    );

    // An attestation of a run recorded with --allow-incomplete gets the
    // warning a link gets, naming the attestation.
    let mut incomplete = f.link("build");
    let mut tl = incomplete
        .environment
        .get("tracelink")
        .cloned()
        .unwrap_or(json!({}));
    tl["complete"] = json!(false);
    incomplete.environment.insert("tracelink".into(), tl);
    let dir = f.links(
        "incomplete",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (
                f.attestation_name("build"),
                f.build_attestation(&incomplete),
            ),
        ],
    );
    let out = f.verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!(
            "warning: {}: step \"build\" was recorded with --allow-incomplete",
            dir.join(f.attestation_name("build")).display()
        )),
        "{}",
        show(&out)
    );

    // ... and verify --vsa signs no PASSED summary for it: the link cannot
    // vouch for everything the step used.
    let out = f.verify(
        &dir,
        &["--vsa", "incomplete.vsa.json", "--signing-key", "owner"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("no verification summary was written")
            && stderr(&out).contains("recorded with --allow-incomplete"),
        "{}",
        show(&out)
    );
    assert!(!f.dir.path().join("incomplete.vsa.json").exists());
}

#[test]
fn attestations_count_towards_a_threshold_of_distinct_functionaries() {
    let f = Fixture::new();
    // The build by Bob and Alice, threshold 2: Bob's classic link and
    // Alice's link attestation of the same run.
    f.write_layout("two.layout", &["bob", "alice"], 2);
    let build = f.link("build");
    let alice_build = attest::file_name("build", &f.alice, Kind::Link);
    let files = |attestation: Vec<u8>| {
        vec![
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.classic_name("build"), f.recorded("build")),
            (alice_build.clone(), attestation),
        ]
    };
    let dir = f.links("two", &files(f.attestation(&build, "alice", &f.alice)));
    let out = f.verify_layout("two.layout", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("step build: 2 link(s) counted, threshold 2"),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "{} (key {}, link attestation): counted",
            dir.join(&alice_build).display(),
            &f.alice[..8]
        )),
        "{}",
        show(&out)
    );
    // Alone, Bob's link does not reach the threshold.
    let one = f.links(
        "one",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.classic_name("build"), f.recorded("build")),
        ],
    );
    let out = f.verify_layout("two.layout", &one, &[]);
    assert_eq!(
        verdict(&out),
        format!(
            "tracelink: not verified: step \"build\" requires 2 link file(s), found 1 in {}",
            one.display()
        )
    );
    // Alice's attestation signed by Bob's key under her name: not counted,
    // one functionary short.
    let dir = f.links("by-bob", &files(f.attestation(&build, "bob", &f.alice)));
    let out = f.verify_layout("two.layout", &dir, &[]);
    assert_eq!(
        verdict(&out),
        "tracelink: not verified: step \"build\" requires at least 2 link(s) validly signed by different authorized functionaries, found 1"
    );
    // Counted links must agree on their artifacts: named by their files.
    let mut other = build.clone();
    other
        .products
        .insert("out/extra".into(), build.products["out/hello"].clone());
    let dir = f.links("disagree", &files(f.attestation(&other, "alice", &f.alice)));
    let out = f.verify_layout("two.layout", &dir, &[]);
    assert_eq!(
        verdict(&out),
        format!(
            "tracelink: not verified: step \"build\": links {} and {alice_build} have different artifacts",
            f.classic_name("build")
        )
    );
}

#[test]
fn a_tampered_attestation_fails_as_a_tampered_link_does() {
    let f = Fixture::new();
    let forged = "00".repeat(32);
    // The classic link with a product digest changed, signature kept.
    let mut doc: Value = serde_json::from_slice(&f.recorded("build")).unwrap();
    doc["signed"]["products"]["out/hello"]["sha256"] = json!(forged);
    let classic = f.links(
        "tampered-link",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.classic_name("build"), serde_json::to_vec(&doc).unwrap()),
        ],
    );
    // The attestation with the same digest changed in its payload.
    let envelope = f.build_attestation(&f.link("build"));
    let tampered = edit_payload(&envelope, |st| {
        let subject = st["subject"].as_array_mut().unwrap();
        let hello = subject
            .iter_mut()
            .find(|s| s["name"] == "out/hello")
            .unwrap();
        hello["digest"]["sha256"] = json!(forged);
    });
    let attested = f.links(
        "tampered-attestation",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.attestation_name("build"), tampered),
        ],
    );
    let link_out = f.verify(&classic, &[]);
    let attestation_out = f.verify(&attested, &[]);
    assert_eq!(link_out.status.code(), Some(1), "{}", show(&link_out));
    assert_eq!(
        attestation_out.status.code(),
        Some(1),
        "{}",
        show(&attestation_out)
    );
    // The same verdict, word for word.
    let expected = "tracelink: not verified: step \"build\" requires at least 1 link(s) validly signed by different authorized functionaries, found 0";
    assert_eq!(
        (verdict(&link_out), verdict(&attestation_out)),
        (expected.to_string(), expected.to_string())
    );
    // The same reason in the report, the attestation marked as such.
    let reason = format!(
        "not counted: the signature by key {} does not verify",
        f.bob
    );
    let k8 = &f.bob[..8];
    assert!(
        stdout(&link_out).contains(&format!(
            "{} (key {k8}): {reason}",
            classic.join(f.classic_name("build")).display()
        )),
        "{}",
        show(&link_out)
    );
    assert!(
        stdout(&attestation_out).contains(&format!(
            "{} (key {k8}, link attestation): {reason}",
            attested.join(f.attestation_name("build")).display()
        )),
        "{}",
        show(&attestation_out)
    );
}

#[test]
fn a_malformed_attestation_is_named_with_its_field() {
    let f = Fixture::new();
    let key = PrivateKey::load(&f.path("bob"), None).unwrap();
    let mut statement = attest::link::statement(&f.link("build"));
    statement.predicate.insert("products".into(), json!({}));
    let signed = attest::sign(&statement, &key, &f.bob).unwrap();
    let dir = f.links(
        "malformed",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.attestation_name("build"), signed),
        ],
    );
    let out = f.verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        verdict(&out),
        format!(
            "tracelink: not verified: {}: predicate.products: unknown field",
            dir.join(f.attestation_name("build")).display()
        )
    );
    // Not JSON at all.
    fs::write(dir.join(f.attestation_name("build")), "{").unwrap();
    let out = f.verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        verdict(&out).starts_with(&format!(
            "tracelink: not verified: {}: envelope: not JSON",
            dir.join(f.attestation_name("build")).display()
        )),
        "{}",
        show(&out)
    );
    // A FIFO in its place: refused, named, without blocking.
    let fifo = dir.join(f.attestation_name("build"));
    fs::remove_file(&fifo).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = f.verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        verdict(&out).starts_with(&format!("tracelink: not verified: {}", fifo.display())),
        "{}",
        show(&out)
    );
}

#[test]
fn a_link_and_its_attestation_must_say_the_same() {
    let f = Fixture::new();
    let build = f.link("build");
    let pair = |name: &str, attestation: Vec<u8>| {
        f.links(
            name,
            &[
                (f.classic_name("checkout"), f.recorded("checkout")),
                (f.classic_name("build"), f.recorded("build")),
                (f.attestation_name("build"), attestation),
            ],
        )
    };
    // Identical: verified; the link is what counts.
    let same = pair("same", f.build_attestation(&build));
    let out = f.verify(&same, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!(
            "{} (key {}): counted",
            same.join(f.classic_name("build")).display(),
            &f.bob[..8]
        )),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("step build: 1 link(s) counted"),
        "{}",
        show(&out)
    );

    // Different products, or a different stdout: an error naming both.
    let mut other = build.clone();
    other
        .products
        .insert("out/extra".into(), other.products["out/hello"].clone());
    let mut chatty = build.clone();
    chatty.byproducts.stdout = Some("something else\n".into());
    for (name, link, fields) in [
        ("differ-products", other, "products"),
        ("differ-byproducts", chatty, "byproducts"),
    ] {
        let dir = pair(name, f.build_attestation(&link));
        let out = f.verify(&dir, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert_eq!(
            verdict(&out),
            format!(
                "tracelink: not verified: step \"build\": the link {} and the link attestation {} of the same key differ ({fields}); a link attestation beside a link must say the same",
                dir.join(f.classic_name("build")).display(),
                dir.join(f.attestation_name("build")).display()
            )
        );
    }

    // The same link, but the attestation's signature does not verify (its
    // payload re-encoded): also an error naming both.
    let reencoded = edit_payload(&f.build_attestation(&build), |_| {});
    let dir = pair("bad-signature-beside", reencoded);
    let out = f.verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        verdict(&out),
        format!(
            "tracelink: not verified: step \"build\": the link attestation {} beside the link {}: the signature by key {} does not verify",
            dir.join(f.attestation_name("build")).display(),
            dir.join(f.classic_name("build")).display(),
            f.bob
        )
    );
}

#[test]
fn vsa_summarises_a_passed_verification() {
    let f = Fixture::new();
    let mixed = f.mixed("mixed");
    let vsa = f.path("summary.vsa.json");
    let out = f.verify(
        &mixed,
        &["--vsa", "summary.vsa.json", "--signing-key", "owner"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stderr(&out).contains("tracelink: wrote the verification summary summary.vsa.json"),
        "{}",
        show(&out)
    );

    // The owner's key verifies it.
    let bytes = fs::read(&vsa).unwrap();
    let envelope = attest::Envelope::parse(&vsa, &bytes).unwrap();
    let owner = PublicKey::load(&f.path("owner.pub")).unwrap();
    assert!(envelope.verifies(&owner.keyid(KeyIdFormat::Python), &owner));
    let st = &envelope.statement;
    assert_eq!(
        st.predicate_type,
        "https://slsa.dev/verification_summary/v1"
    );

    // subject: the last step's (build's) products.
    let products = f.link("build").products;
    assert_eq!(products.keys().collect::<Vec<_>>(), ["out/hello"]);
    let subject: Vec<(String, _)> = st
        .subject
        .iter()
        .map(|s| (s.name.clone().unwrap(), s.digest.clone()))
        .collect();
    assert_eq!(subject, products.into_iter().collect::<Vec<_>>());

    let p = Value::Object(st.predicate.clone());
    assert_eq!(
        p["inputAttestations"],
        json!([
            {"name": f.classic_name("checkout"),
             "digest": {"sha256": sha256_file(&mixed.join(f.classic_name("checkout")))}},
            {"name": f.attestation_name("build"),
             "digest": {"sha256": sha256_file(&mixed.join(f.attestation_name("build")))}},
        ])
    );
    assert_eq!(
        p["policy"],
        json!({"uri": "root.layout", "digest": {"sha256": sha256_file(&f.path("root.layout"))}})
    );
    assert_eq!(p["verifiedLevels"], json!(["SLSA_BUILD_LEVEL_1"]));
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["resourceUri"], "file:out/hello");
    assert_eq!(p["verifier"]["id"], "https://tracelink.example/verifier/v1");
    assert!(
        p["timeVerified"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{p}"
    );

    // --vsa-resource-uri.
    let out = f.verify(
        &mixed,
        &[
            "--vsa",
            "named.vsa.json",
            "--signing-key",
            "owner",
            "--vsa-resource-uri",
            "https://example.com/hello",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let named = attest::Envelope::parse(
        &f.path("named.vsa.json"),
        &fs::read(f.path("named.vsa.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        named.statement.predicate["resourceUri"],
        "https://example.com/hello"
    );

    // The reference libraries: signature (securesystemslib, owner's public
    // key) and the specification's required fields.
    if let Some(python) = common::attest_checker_python("vsa_summarises_a_passed_verification") {
        let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attest_check.py");
        let out = output(
            Command::new(python)
                .arg(checker)
                .arg(&vsa)
                .arg(f.path("owner.pub")),
        );
        assert!(out.status.success(), "attest_check: {}", show(&out));
        assert!(
            stdout(&out).contains("ok (https://slsa.dev/verification_summary/v1)"),
            "{}",
            show(&out)
        );
        // Another key's public half does not verify it.
        let out = output(
            Command::new(common::venv_python().unwrap())
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attest_check.py"))
                .arg(&vsa)
                .arg(f.path("alice.pub")),
        );
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    }
}

#[test]
fn no_vsa_without_a_passed_verification() {
    let f = Fixture::new();
    let mut doc: Value = serde_json::from_slice(&f.recorded("build")).unwrap();
    doc["signed"]["products"]["out/hello"]["sha256"] = json!("00".repeat(32));
    let tampered = f.links(
        "tampered",
        &[
            (f.classic_name("checkout"), f.recorded("checkout")),
            (f.classic_name("build"), serde_json::to_vec(&doc).unwrap()),
        ],
    );
    // A failed verification writes nothing and leaves an old file alone.
    fs::write(f.path("old.vsa.json"), "old").unwrap();
    for name in ["old.vsa.json", "new.vsa.json"] {
        let out = f.verify(&tampered, &["--vsa", name, "--signing-key", "owner"]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(!stderr(&out).contains("wrote"), "{}", show(&out));
    }
    assert_eq!(fs::read_to_string(f.path("old.vsa.json")).unwrap(), "old");
    assert!(!f.path("new.vsa.json").exists());

    // --vsa needs --signing-key and the other way round: usage errors.
    let mixed = f.mixed("mixed");
    for args in [
        &["--vsa", "new.vsa.json"][..],
        &["--signing-key", "owner"][..],
    ] {
        let out = f.verify(&mixed, args);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    }
    assert!(!f.path("new.vsa.json").exists());

    // A signing key that cannot be read: not verified, nothing written.
    let out = f.verify(
        &mixed,
        &["--vsa", "new.vsa.json", "--signing-key", "no-such-key"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!f.path("new.vsa.json").exists());
    // No temporary file is left behind either.
    let leftovers: Vec<_> = fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vsa") && n != "old.vsa.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
