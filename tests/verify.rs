//! `tracelink verify` on hand-made supply chains (no Python needed): the
//! report a person reads, the JSON report, exit statuses, and errors that
//! name the file and the problem. Verdict parity with in-toto-verify is
//! tests/verify_parity.rs's job.

mod common;

use common::{output, show, tracelink};
use serde_json::{Value, json};
use std::fs;
use std::path::PathBuf;
use tracelink::keys::{KeyIdFormat, PrivateKey};
use tracelink::link::{self, ArtifactMap, Link, Wrapper, canonical, pyjson};

struct Chain {
    dir: tempfile::TempDir,
    owner: PrivateKey,
    functionary: PrivateKey,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let owner = PrivateKey::from_seed(&[1; 32]);
        let functionary = PrivateKey::from_seed(&[2; 32]);
        fs::write(dir.path().join("owner.pub"), owner.public().to_spki_pem()).unwrap();
        Chain {
            dir,
            owner,
            functionary,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn functionary_keyid(&self) -> String {
        self.functionary.keyid(KeyIdFormat::Python)
    }

    /// Writes `root.layout`, signed by the owner, around `steps` and `inspect`.
    fn layout(&self, expires: &str, steps: Value, inspect: Value) {
        let public = self.functionary.public();
        let keyid = self.functionary_keyid();
        let mut key = public.key_dict(KeyIdFormat::Python);
        key["keyid"] = json!(keyid);
        // Signed as in-toto signs it: every field of its model present.
        let steps: Vec<Value> = steps
            .as_array()
            .unwrap()
            .iter()
            .map(|step| {
                let mut full = json!({"_type": "step", "pubkeys": [], "expected_command": [],
                    "threshold": 1, "expected_materials": [], "expected_products": []});
                for (k, v) in step.as_object().unwrap() {
                    full[k] = v.clone();
                }
                full
            })
            .collect();
        let inspect: Vec<Value> = inspect
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let mut full = json!({"_type": "inspection", "run": [],
                    "expected_materials": [], "expected_products": []});
                for (k, v) in item.as_object().unwrap() {
                    full[k] = v.clone();
                }
                full
            })
            .collect();
        let signed = json!({
            "_type": "layout",
            "expires": expires,
            "readme": "",
            "keys": {keyid: key},
            "steps": steps,
            "inspect": inspect,
        });
        let sig = hex::encode(self.owner.sign(&canonical::encode(&signed).unwrap()));
        let doc = json!({
            "signatures": [{"keyid": self.owner.keyid(KeyIdFormat::Python), "sig": sig}],
            "signed": signed,
        });
        fs::write(self.path("root.layout"), pyjson::dumps(&doc, Some(1))).unwrap();
    }

    /// Writes the functionary's signed link for `step`.
    fn link(&self, step: &str, materials: &[(&str, &str)], products: &[(&str, &str)]) {
        self.link_with_environment(step, materials, products, json!({}));
    }

    /// `link` with this `environment`.
    fn link_with_environment(
        &self,
        step: &str,
        materials: &[(&str, &str)],
        products: &[(&str, &str)],
        environment: Value,
    ) {
        let map = |items: &[(&str, &str)]| -> ArtifactMap {
            items
                .iter()
                .map(|(p, d)| {
                    (
                        p.to_string(),
                        [("sha256".to_string(), d.repeat(64 / d.len()))].into(),
                    )
                })
                .collect()
        };
        let link = Link {
            name: step.into(),
            command: vec!["make".into()],
            materials: map(materials),
            products: map(products),
            environment: environment.as_object().unwrap().clone(),
            ..Link::default()
        };
        let keyid = self.functionary_keyid();
        let bytes = link::sign(link, &self.functionary, &keyid, Wrapper::Classic).unwrap();
        fs::write(self.path(&link::file_name(step, &keyid)), bytes).unwrap();
    }

    fn verify(&self, extra: &[&str]) -> std::process::Output {
        output(
            tracelink()
                .current_dir(self.dir.path())
                .args([
                    "verify",
                    "--layout",
                    "root.layout",
                    "--verification-keys",
                    "owner.pub",
                ])
                .args(extra),
        )
    }
}

fn two_steps(chain: &Chain) {
    let keyid = chain.functionary_keyid();
    chain.layout(
        "2099-01-01T00:00:00Z",
        json!([
            {"name": "build", "pubkeys": [keyid], "expected_command": ["make"],
             "expected_materials": [["ALLOW", "src/*"], ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "out/*"], ["DISALLOW", "*"]]},
            {"name": "package", "pubkeys": [keyid], "expected_command": ["tar"],
             "expected_materials": [["MATCH", "out/*", "WITH", "PRODUCTS", "FROM", "build"],
                                    ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "pkg.tar"], ["DISALLOW", "*"]]},
        ]),
        json!([]),
    );
    chain.link(
        "build",
        &[("src/a.c", "a1"), ("src/b.c", "b1")],
        &[("out/a.o", "c1"), ("out/b.o", "d1")],
    );
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn report_shows_each_rule_and_what_it_consumed() {
    let chain = Chain::new();
    two_steps(&chain);
    chain.link(
        "package",
        &[("out/a.o", "c1"), ("out/b.o", "d1")],
        &[("pkg.tar", "e1")],
    );
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    for line in [
        "step build: 1 link(s) counted, threshold 1",
        "    ALLOW src/*: consumed 2 (src/a.c, src/b.c)",
        "    CREATE out/*: consumed 2 (out/a.o, out/b.o)",
        "    MATCH out/* WITH PRODUCTS FROM build: consumed 2 (out/a.o, out/b.o)",
        "    CREATE pkg.tar: consumed 1 (pkg.tar)",
        // The package link ran `make`, the layout expects `tar`.
        "warning: step \"package\": the link by",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        stderr(&out).contains("tracelink: verified: root.layout"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_tampered_artifact_fails_with_the_rule_and_the_path_on_the_last_line() {
    let chain = Chain::new();
    two_steps(&chain);
    // out/b.o changed between build and package.
    chain.link(
        "package",
        &[("out/a.o", "c1"), ("out/b.o", "ff")],
        &[("pkg.tar", "e1")],
    );
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let last = stderr(&out).lines().last().unwrap_or_default().to_owned();
    assert_eq!(
        last,
        "tracelink: not verified: step \"package\", materials: 'DISALLOW *' matched the following artifacts: ['out/b.o']"
    );
    assert!(
        stdout(&out).contains("    MATCH out/* WITH PRODUCTS FROM build: consumed 1 (out/a.o)"),
        "{}",
        show(&out)
    );
}

#[test]
fn json_report_lists_links_rules_and_the_failure() {
    let chain = Chain::new();
    two_steps(&chain);
    let out = chain.verify(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["verified"], false);
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("step \"package\" requires 1 link file(s), found 0"),
        "{failure}"
    );
    assert_eq!(report["steps"][0]["name"], "build");
    assert_eq!(report["steps"][0]["links"][0]["status"], "counted");
    assert_eq!(report["steps"][1]["links"][0]["status"], "missing");
    assert_eq!(report["signatures"][0]["verified"], true);
}

#[test]
fn expired_layouts_fail_naming_the_date() {
    let chain = Chain::new();
    chain.layout("2001-01-01T00:00:00Z", json!([]), json!([]));
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("the layout expired at 2001-01-01T00:00:00Z"),
        "{}",
        show(&out)
    );
}

#[test]
fn malformed_metadata_is_named_with_its_problem() {
    let chain = Chain::new();
    two_steps(&chain);
    let keyid = chain.functionary_keyid();
    let package = link::file_name("package", &keyid);
    fs::write(chain.path(&package), "{\"signatures\": [], \"signed\": ").unwrap();
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains(&format!("{package}: not in-toto metadata: not JSON")),
        "{}",
        show(&out)
    );

    fs::write(chain.path("root.layout"), "[1, 2").unwrap();
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("root.layout: not in-toto metadata: not JSON"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_layout_with_a_bad_rule_is_refused_naming_the_step() {
    let chain = Chain::new();
    chain.layout(
        "2099-01-01T00:00:00Z",
        json!([{"name": "build", "expected_products": [["CREATE"]]}]),
        json!([]),
    );
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("root.layout: steps[0]: step \"build\": `expected_products`"),
        "{}",
        show(&out)
    );
}

#[test]
fn wrong_owner_key_and_missing_key_file_fail_and_usage_errors_exit_2() {
    let chain = Chain::new();
    two_steps(&chain);
    let other = PrivateKey::from_seed(&[3; 32]);
    fs::write(chain.path("other.pub"), other.public().to_spki_pem()).unwrap();
    let out = output(
        tracelink()
            .current_dir(chain.dir.path())
            .args(["verify", "--layout", "root.layout", "--verification-keys"])
            .args(["owner.pub", "other.pub"]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains(&format!(
            "root.layout: no signature by key {}",
            other.keyid(KeyIdFormat::Python)
        )),
        "{}",
        show(&out)
    );

    let out = output(tracelink().current_dir(chain.dir.path()).args([
        "verify",
        "--layout",
        "root.layout",
        "--verification-keys",
        "nope.pub",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("nope.pub"), "{}", show(&out));

    let out = output(tracelink().args(["verify", "--layout", "root.layout"]));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn inspections_run_in_the_current_directory_and_a_failing_one_fails() {
    let chain = Chain::new();
    let keyid = chain.functionary_keyid();
    let layout = |run: Value| {
        chain.layout(
            "2099-01-01T00:00:00Z",
            json!([{"name": "build", "pubkeys": [keyid]}]),
            json!([{"name": "check", "run": run,
                    "expected_products": [["CREATE", "made-by-inspection"], ["ALLOW", "*"]]}]),
        )
    };
    chain.link("build", &[], &[]);
    layout(json!(["touch", "made-by-inspection"]));
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(chain.path("made-by-inspection").exists());
    assert!(
        stdout(&out).contains("    CREATE made-by-inspection: consumed 1 (made-by-inspection)"),
        "{}",
        show(&out)
    );

    layout(json!(["sh", "-c", "exit 3"]));
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("inspection \"check\": \"sh -c exit 3\" exited with 3"),
        "{}",
        show(&out)
    );

    layout(json!(["no-such-program-here"]));
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("no-such-program-here"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_link_recorded_with_allow_incomplete_is_named_in_a_warning_and_the_verdict_stays() {
    let chain = Chain::new();
    two_steps(&chain);
    chain.link_with_environment(
        "package",
        &[("out/a.o", "c1"), ("out/b.o", "d1")],
        &[("pkg.tar", "e1")],
        json!({"tracelink": {"mode": "precise", "complete": false, "version": "0.1.0"}}),
    );
    let package = link::file_name("package", &chain.functionary_keyid());
    let build = link::file_name("build", &chain.functionary_keyid());
    // in-toto ignores `environment`: verified, exit 0, with the warning.
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("--allow-incomplete"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].starts_with("  warning: ")
            && warnings[0].contains(&package)
            && warnings[0].contains("step \"package\" was recorded with --allow-incomplete"),
        "{text}"
    );
    assert!(!warnings[0].contains(&build), "{text}");
    let out = chain.verify(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(&package)
                && w.as_str().unwrap().contains("--allow-incomplete")),
        "{report}"
    );

    // Every such link is named, and a failing chain keeps in-toto's verdict.
    chain.link_with_environment(
        "build",
        &[("src/a.c", "a1"), ("src/b.c", "b1")],
        &[("out/a.o", "c1"), ("out/b.o", "ff")],
        json!({"tracelink": {"mode": "precise", "complete": false}}),
    );
    let out = chain.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    for file in [&build, &package] {
        assert!(
            text.lines().any(|l| l.contains("warning: ")
                && l.contains(file.as_str())
                && l.contains("--allow-incomplete")),
            "{file}: {text}"
        );
    }
}
