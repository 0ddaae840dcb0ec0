//! `tracelink run --attest` end to end (docs/attestations.md).
//!
//! 1. A precise `make` build of a generated C project writes the link, the
//!    trace and three statements (link, SLSA provenance, runtime trace).
//!    tests/attest_check.py checks each with the reference libraries
//!    (securesystemslib verifies the DSSE signature against the public key;
//!    in-toto-attestation 0.9.3 parses the Statement and the link and
//!    provenance predicates strictly, the runtime trace field by field;
//!    `--link`: subject = products, resolvedDependencies = materials +
//!    toolchain). The same is asserted here from the envelopes: subjects =
//!    the link's products, resolvedDependencies = the link's materials then
//!    the toolchain (make and the compiler, outside the root, with sha256),
//!    the provenance byproduct = the trace as the link names it.
//! 2. A step without products writes no statements (and removes an earlier
//!    run's), warns, and still writes the link; the same with `-x`.
//! 3. Snapshot mode (`-m . -p .`) writes the link and provenance statements
//!    only.
//! 4. An incomplete precise run (a process outlives the command) writes no
//!    statements (and no link); with `--allow-incomplete` it writes both,
//!    the provenance saying `complete: false`.
//! 5. An unprivileged precise run with `--attest` (the test user of
//!    `TRACELINK_TEST_USER`).
//!
//! Precise tests need root and /dev/fuse (and make, cc); the checker needs
//! the venv with in-toto 3.1.0 and in-toto-attestation 0.9.3
//! (TRACELINK_INTOTO_VENV, or ./.venv-intoto). SKIP otherwise, FAIL under CI.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tracelink::keys::{KeyIdFormat, PrivateKey};
use tracelink::link::Link;

/// The rfc8032 test key's keyid begins with this.
const KEYID8: &str = "74c181c7";
const KINDS: [&str; 3] = ["link", "provenance", "runtime-trace"];

/// A key, its public PEM, a project tree and a metadata directory.
struct Area {
    _tmp: tempfile::TempDir,
    key: PathBuf,
    public_pem: PathBuf,
    keyid: String,
    tree: PathBuf,
    meta: PathBuf,
}

impl Area {
    fn new() -> Area {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = common::rfc8032_key(top);
        let (private, _) = PrivateKey::load_file(&key, None).unwrap();
        let public_pem = top.join("rfc8032.pub.pem");
        std::fs::write(&public_pem, private.public().to_spki_pem()).unwrap();
        let keyid = private.keyid(KeyIdFormat::Python);
        assert!(keyid.starts_with(KEYID8), "{keyid}");
        let (tree, meta) = (top.join("tree"), top.join("meta"));
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(&meta).unwrap();
        Area {
            _tmp: tmp,
            key,
            public_pem,
            keyid,
            tree,
            meta,
        }
    }

    fn put(&self, rel: &str, text: &str) {
        let path = self.tree.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A small C project: sources in two directories, headers, a Makefile.
    fn c_project(&self) {
        self.put(
            "include/util.h",
            "int add(int a, int b);\nint twice(int a);\n",
        );
        self.put("include/config.h", "#define GREETING \"attested\"\n");
        self.put(
            "src/util.c",
            "#include \"util.h\"\nint add(int a, int b) { return a + b; }\nint twice(int a) { return add(a, a); }\n",
        );
        self.put(
            "src/main.c",
            "#include <stdio.h>\n#include \"util.h\"\n#include \"config.h\"\nint main(void) { printf(\"%s %d\\n\", GREETING, twice(21)); return 0; }\n",
        );
        self.put(
            "lib/extra.c",
            "#include \"util.h\"\nint extra(void) { return twice(2); }\n",
        );
        self.put("README", "not read by the build\n");
        self.put(
            "Makefile",
            "CFLAGS = -O0 -Iinclude\n\
             OBJS = src/main.o src/util.o lib/extra.o\n\
             prog: $(OBJS)\n\tcc -o $@ $(OBJS)\n\
             %.o: %.c include/util.h include/config.h\n\tcc $(CFLAGS) -c -o $@ $<\n",
        );
    }

    /// `tracelink run -n STEP -k KEY -d META EXTRA [-- ARGV]` in the tree.
    fn run(&self, step: &str, extra: &[&str], argv: &[&str]) -> Output {
        let mut cmd = common::tracelink();
        cmd.args(["run", "-n", step, "-k"])
            .arg(&self.key)
            .arg("-d")
            .arg(&self.meta)
            .args(extra);
        if !argv.is_empty() {
            cmd.arg("--").args(argv);
        }
        common::output(
            cmd.current_dir(&self.tree)
                .stdin(std::process::Stdio::null()),
        )
    }

    fn link_name(&self, step: &str) -> String {
        format!("{step}.{KEYID8}.link")
    }

    fn statement_name(&self, step: &str, kind: &str) -> String {
        format!("{}.attest-{kind}.json", self.link_name(step))
    }

    /// The files of the metadata directory.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.meta)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The step's link, its signature checked.
    fn link(&self, step: &str) -> Link {
        let (private, _) = PrivateKey::load_file(&self.key, None).unwrap();
        tracelink::link::read_verified(
            &self.meta.join(self.link_name(step)),
            &private.public(),
            &self.keyid,
        )
        .unwrap()
        .0
    }

    /// A statement of the step: its signature checked by the library, the
    /// envelope's layout checked here, the Statement as JSON.
    fn statement(&self, step: &str, kind: &str) -> Value {
        let path = self.meta.join(self.statement_name(step, kind));
        let (private, _) = PrivateKey::load_file(&self.key, None).unwrap();
        let public = private.public();
        tracelink::attest::read_envelope(&path, &[(self.keyid.as_str(), &public)])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        let sigs = envelope["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 1, "{envelope}");
        assert_eq!(sigs[0]["keyid"], self.keyid.as_str());
        let payload = BASE64
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&payload).unwrap()
    }

    /// tests/attest_check.py on a statement, with `--link`.
    fn check(&self, python: &Path, step: &str, kind: &str) {
        let out = common::output(
            Command::new(python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attest_check.py"))
                .arg(self.meta.join(self.statement_name(step, kind)))
                .arg(&self.public_pem)
                .arg("--link")
                .arg(self.meta.join(self.link_name(step))),
        );
        assert!(
            out.status.success(),
            "attest_check.py {kind}: {}",
            common::show(&out)
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The link's artifacts as a statement lists them: name -> digest set.
fn artifacts_json(map: &tracelink::link::ArtifactMap) -> Vec<Value> {
    map.iter()
        .map(|(name, digest)| json!({"name": name, "digest": digest}))
        .collect()
}

/// A statement's subject, by name.
fn subject(statement: &Value) -> BTreeMap<String, Value> {
    statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["digest", "name"], "{s}");
            (s["name"].as_str().unwrap().to_string(), s["digest"].clone())
        })
        .collect()
}

fn products(link: &Link) -> BTreeMap<String, Value> {
    link.products
        .iter()
        .map(|(n, d)| (n.clone(), json!(d)))
        .collect()
}

fn rfc3339_ms(text: &str) -> i64 {
    // 2026-12-05T20:53:34.940Z (milliseconds optional)
    let out = Command::new("date")
        .args(["-u", "-d", text, "+%s%3N"])
        .output()
        .unwrap();
    assert!(out.status.success(), "date cannot read {text:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn precise_make_build_writes_three_statements_that_check() {
    const TEST: &str = "precise_make_build_attest";
    if common::precise_unavailable(TEST, &["make", "cc"]) {
        return;
    }
    let Some(python) = common::attest_checker_python(TEST) else {
        return;
    };
    let area = Area::new();
    area.c_project();
    let before = std::time::SystemTime::now();
    let out = area.run("build", &["--attest"], &["make"]);
    let after = std::time::SystemTime::now();
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let link_name = area.link_name("build");
    let trace_name = format!("{link_name}.trace.json.gz");
    let statements: Vec<String> = KINDS
        .iter()
        .map(|k| area.statement_name("build", k))
        .collect();
    let mut expected = vec![link_name.clone(), trace_name.clone()];
    expected.extend(statements.iter().cloned());
    expected.sort();
    assert_eq!(area.entries(), expected);
    // The success line names the link and every statement.
    let err = stderr(&out);
    let wrote = err
        .lines()
        .find(|l| l.starts_with("tracelink: wrote "))
        .unwrap_or_else(|| panic!("no success line: {err}"));
    assert!(wrote.contains(&link_name), "{wrote}");
    for name in &statements {
        assert!(wrote.contains(name.as_str()), "{name} not in {wrote}");
    }
    assert!(!err.contains("warning"), "{err}");

    // The reference libraries.
    for kind in KINDS {
        area.check(&python, "build", kind);
    }

    let link = area.link("build");
    assert_eq!(
        link.products.keys().collect::<Vec<_>>(),
        ["lib/extra.o", "prog", "src/main.o", "src/util.o"]
    );
    assert!(link.materials.contains_key("src/main.c"), "{link:?}");
    assert!(!link.materials.contains_key("README"), "{link:?}");
    let trace_sha256 = hex::encode(sha2::Sha256::digest(
        std::fs::read(area.meta.join(&trace_name)).unwrap(),
    ));
    assert_eq!(
        link.environment["tracelink"]["trace"],
        json!({"name": trace_name, "sha256": trace_sha256})
    );

    let mut by_kind = BTreeMap::new();
    for kind in KINDS {
        let st = area.statement("build", kind);
        assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
        // Subjects: the products, names and digests.
        assert_eq!(subject(&st), products(&link), "{kind} subject");
        by_kind.insert(kind, st);
    }
    assert_eq!(
        by_kind["link"]["predicateType"],
        "https://in-toto.io/attestation/link/v0.3"
    );
    assert_eq!(
        by_kind["link"]["predicate"]["materials"],
        json!(artifacts_json(&link.materials))
    );
    assert_eq!(by_kind["link"]["predicate"]["command"], json!(["make"]));

    // Provenance: resolvedDependencies = materials, then the toolchain.
    let prov = &by_kind["provenance"];
    assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v1");
    let def = &prov["predicate"]["buildDefinition"];
    assert_eq!(
        def["buildType"],
        "https://tracelink.example/buildtypes/precise/v1"
    );
    assert_eq!(def["externalParameters"]["workingDirectory"], ".");
    assert_eq!(def["internalParameters"]["complete"], true);
    assert_eq!(def["internalParameters"]["processTracer"], true);
    let deps = def["resolvedDependencies"].as_array().unwrap();
    let materials = artifacts_json(&link.materials);
    assert!(
        deps.len() > materials.len(),
        "no toolchain entries: {deps:#?}"
    );
    assert_eq!(&deps[..materials.len()], &materials[..]);
    let root = std::fs::canonicalize(&area.tree).unwrap();
    let mut tools = Vec::new();
    for dep in &deps[materials.len()..] {
        let name = dep["name"].as_str().unwrap();
        assert!(name.starts_with('/'), "{dep}");
        assert!(!Path::new(name).starts_with(&root), "{dep}");
        assert_eq!(dep["uri"], format!("file://{name}"), "{dep}");
        assert_eq!(dep["annotations"], json!({"tracelink.toolchain": true}));
        let sha = dep["digest"]["sha256"].as_str().unwrap();
        assert_eq!(sha.len(), 64, "{dep}");
        // The program as it is on disk now.
        let on_disk = hex::encode(sha2::Sha256::digest(std::fs::read(name).unwrap()));
        assert_eq!(sha, on_disk, "{name}");
        tools.push(
            Path::new(name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert!(tools.iter().any(|t| t == "make"), "{tools:?}");
    assert!(
        tools
            .iter()
            .any(|t| t == "cc1" || t.contains("gcc") || t.contains("clang")),
        "no compiler in {tools:?}"
    );
    let details = &prov["predicate"]["runDetails"];
    assert_eq!(
        details["byproducts"],
        json!([{"name": trace_name, "digest": {"sha256": trace_sha256}, "mediaType": "application/gzip"}])
    );
    // startedOn/finishedOn: the command's run, within the test's.
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    };
    let started = rfc3339_ms(details["metadata"]["startedOn"].as_str().unwrap());
    let finished = rfc3339_ms(details["metadata"]["finishedOn"].as_str().unwrap());
    assert!(
        ms(before) <= started && started <= finished && finished <= ms(after),
        "{before:?} {started} {finished} {after:?}"
    );

    // Runtime trace: the checker checked every field; the process tree and
    // the artifacts are those of this build.
    let rt = &by_kind["runtime-trace"];
    assert_eq!(
        rt["predicateType"],
        "https://in-toto.io/attestation/runtime-trace/v0.1"
    );
    let log = &rt["predicate"]["monitorLog"];
    assert!(
        log["process"].as_array().unwrap().len() >= 4,
        "make, three compilers and a link: {log}"
    );
    let accessed: Vec<&str> = log["fileAccess"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for path in ["src/main.c", "include/util.h", "prog"] {
        assert!(accessed.contains(&path), "{path} not in {accessed:?}");
    }
    assert_eq!(
        rt["predicate"]["metadata"]["buildStartedOn"],
        details["metadata"]["startedOn"]
    );
}

#[test]
fn a_step_without_products_writes_no_statements() {
    const TEST: &str = "attest_without_products";
    let area = Area::new();
    area.put("a.txt", "existing\n");
    let warning = "tracelink: warning: step check has no products: no attestations written (an in-toto Statement needs a subject)";

    // -x with products: the statements are written...
    let out = area.run("check", &["--attest", "-x", "-p", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        area.entries(),
        [
            area.link_name("check"),
            area.statement_name("check", "link"),
            area.statement_name("check", "provenance"),
        ]
    );
    // ... and -x without products: none, and the earlier run's are gone
    // (they would describe another run than the link beside them).
    let out = area.run("check", &["--attest", "-x", "-m", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(stderr(&out).contains(warning), "{}", common::show(&out));
    assert_eq!(area.entries(), [area.link_name("check")]);
    assert!(area.link("check").materials.contains_key("a.txt"));

    if common::precise_unavailable(TEST, &[]) {
        return;
    }
    for argv in [&["true"][..], &["cat", "a.txt"]] {
        let out = area.run("check", &["--attest"], argv);
        assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
        let err = stderr(&out);
        assert!(err.contains(warning), "{argv:?}: {err}");
        let wrote = err
            .lines()
            .find(|l| l.starts_with("tracelink: wrote "))
            .unwrap_or_else(|| panic!("no success line: {err}"));
        assert!(!wrote.contains("attest"), "{wrote}");
        assert_eq!(
            area.entries(),
            [
                area.link_name("check"),
                format!("{}.trace.json.gz", area.link_name("check"))
            ]
        );
        let link = area.link("check");
        assert!(link.products.is_empty(), "{link:?}");
    }
    assert!(area.link("check").materials.contains_key("a.txt"));
}

#[test]
fn snapshot_mode_writes_link_and_provenance_only() {
    const TEST: &str = "snapshot_attest";
    let Some(python) = common::attest_checker_python(TEST) else {
        return;
    };
    let area = Area::new();
    area.put("in.txt", "input\n");
    let out = area.run(
        "snap",
        &["-m", ".", "-p", ".", "--attest"],
        &["sh", "-c", "cat in.txt in.txt > out.txt"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        area.entries(),
        [
            area.link_name("snap"),
            area.statement_name("snap", "link"),
            area.statement_name("snap", "provenance"),
        ]
    );
    for kind in ["link", "provenance"] {
        area.check(&python, "snap", kind);
    }
    let link = area.link("snap");
    let prov = area.statement("snap", "provenance");
    assert_eq!(subject(&prov), products(&link));
    assert_eq!(
        subject(&prov).keys().collect::<Vec<_>>(),
        ["in.txt", "out.txt"]
    );
    let def = &prov["predicate"]["buildDefinition"];
    assert_eq!(
        def["buildType"],
        "https://tracelink.example/buildtypes/snapshot/v1"
    );
    assert_eq!(def["internalParameters"]["mode"], "snapshot");
    // No toolchain in snapshot mode: exactly the materials.
    assert_eq!(
        def["resolvedDependencies"],
        json!(artifacts_json(&link.materials))
    );
    assert!(
        prov["predicate"]["runDetails"].get("byproducts").is_none(),
        "{prov}"
    );
    let link_st = area.statement("snap", "link");
    assert_eq!(subject(&link_st), products(&link));
}

#[test]
fn an_incomplete_run_gets_statements_only_with_allow_incomplete() {
    const TEST: &str = "incomplete_attest";
    if common::precise_unavailable(TEST, &[]) {
        return;
    }
    let area = Area::new();
    area.put("in.txt", "input\n");
    let script = ["sh", "-c", "sleep 5 & cat in.txt > out.txt"];
    let out = area.run("late", &["--attest"], &script);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("still running"),
        "{}",
        common::show(&out)
    );
    assert_eq!(
        area.entries(),
        [format!("{}.trace.json.gz", area.link_name("late"))]
    );
    let out = area.run("late", &["--attest", "--allow-incomplete"], &script);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let mut expected = vec![
        area.link_name("late"),
        format!("{}.trace.json.gz", area.link_name("late")),
    ];
    expected.extend(KINDS.iter().map(|k| area.statement_name("late", k)));
    expected.sort();
    assert_eq!(area.entries(), expected);
    let prov = area.statement("late", "provenance");
    assert_eq!(
        prov["predicate"]["buildDefinition"]["internalParameters"]["complete"],
        false
    );
    assert_eq!(
        subject(&prov).keys().collect::<Vec<_>>(),
        ["out.txt"],
        "{prov}"
    );
}

#[test]
fn unprivileged_precise_run_attests() {
    const TEST: &str = "unprivileged_precise_attest";
    if !nix::unistd::geteuid().is_root() {
        common::skip(TEST, "needs root to switch to the test user");
        return;
    }
    let Some(user) = std::env::var_os("TRACELINK_TEST_USER") else {
        common::skip(TEST, "TRACELINK_TEST_USER is not set");
        return;
    };
    let Ok(Some(user)) = nix::unistd::User::from_name(&user.to_string_lossy()) else {
        common::skip(TEST, "no such test user");
        return;
    };
    let fuse_mode = std::fs::metadata("/dev/fuse").map(|m| m.permissions().mode() & 0o777);
    if fuse_mode.ok() != Some(0o666) {
        common::skip(TEST, "/dev/fuse is not usable by other users");
        return;
    }
    if !common::have("setpriv") {
        common::skip(TEST, "setpriv is not installed");
        return;
    }
    let Some(python) = common::attest_checker_python(TEST) else {
        return;
    };
    let area = Area::new();
    area.put("in.txt", "input\n");
    let bin = area._tmp.path().join("tracelink");
    common::copy_binary(&bin);
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = (user.uid, user.gid);
    for p in [&area.tree, &area.meta, &area.key, &area.tree.join("in.txt")] {
        nix::unistd::chown(p.as_path(), Some(uid), Some(gid)).unwrap();
    }
    let out = common::output(
        Command::new("setpriv")
            .args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(&bin)
            .args(["run", "-n", "user", "--attest", "-k"])
            .arg(&area.key)
            .arg("-d")
            .arg(&area.meta)
            .args(["--", "sh", "-c", "cat in.txt > out.txt"])
            .current_dir(&area.tree)
            .stdin(std::process::Stdio::null()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    for kind in KINDS {
        area.check(&python, "user", kind);
        let st = area.statement("user", kind);
        assert_eq!(subject(&st).keys().collect::<Vec<_>>(), ["out.txt"]);
    }
    for name in area.entries() {
        let meta = std::fs::metadata(area.meta.join(&name)).unwrap();
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(meta.uid(), uid.as_raw(), "{name} is the user's");
    }
}

/// A run without --attest after one with it left the earlier run's
/// statements beside the new link: they described another run, and `verify`
/// fails a link whose attestation differs from it. They are removed now.
#[test]
fn a_run_without_attest_removes_an_earlier_runs_statements() {
    let area = Area::new();
    area.put("a.txt", "one\n");
    let out = area.run("check", &["--attest", "-x", "-p", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(area.entries().len(), 3, "{:?}", area.entries());

    area.put("a.txt", "two\n");
    let out = area.run("check", &["-x", "-p", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(area.entries(), [area.link_name("check")]);
}
