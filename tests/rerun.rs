//! `tracelink run --store` and `tracelink rerun` on real recorded builds:
//! a deterministic make build reruns with every product identical; a build
//! that embeds the time is reported with the differing product and offset;
//! a material changed in the tree refuses the rerun (no store) naming the
//! file, and reruns from the store; an input the rerun looks for that the
//! recording never did is reported as hidden. Crafted links and traces
//! (docs/threat-model.md): a `..` starting directory, material names that
//! leave the tree and a symlinked directory leading out of the root are
//! refused with nothing created outside the work directory; a link whose
//! signature does not verify is replayed only with --unverified, which the
//! report's first line states; an incomplete recording is named in the
//! verdict.
//!
//! Needs root and /dev/fuse (SKIP otherwise, FAIL under CI), and make + cc.

mod common;

use common::{output, show, tracelink};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A project directory `proj` and a key beside it.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(makefile: &str, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("proj");
        fs::create_dir(&proj).unwrap();
        fs::write(proj.join("Makefile"), makefile).unwrap();
        for (name, text) in files {
            let path = proj.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let out = output(
            tracelink()
                .arg("keygen")
                .arg(dir.path().join("key.pem"))
                .arg("--force"),
        );
        assert!(out.status.success(), "{}", show(&out));
        Project { dir }
    }

    fn proj(&self) -> PathBuf {
        self.dir.path().join("proj")
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Records `make` precisely (with a store when asked); returns the link.
    fn record(&self, store: bool) -> PathBuf {
        self.record_with(store, &[])
    }

    /// `record` with more `tracelink run` flags.
    fn record_with(&self, store: bool, flags: &[&str]) -> PathBuf {
        let mut cmd = tracelink();
        cmd.current_dir(self.proj())
            .args(["run", "-n", "build", "-k"])
            .arg(self.path("key.pem"))
            .arg("-d")
            .arg(self.dir.path());
        if store {
            cmd.arg("--store").arg(self.path("store"));
        }
        let out = output(cmd.args(flags).args(["--", "make"]));
        assert!(out.status.success(), "{}", show(&out));
        fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "link"))
            .expect("a link was written")
    }

    /// `tracelink rerun` with the functionary's public key.
    fn rerun(&self, link: &Path, extra: &[&str]) -> Output {
        let key = self.path("key.pem.pub");
        let mut args = vec!["--verification-keys", key.to_str().unwrap()];
        args.extend(extra);
        self.rerun_as(link, &args)
    }

    /// `tracelink rerun` with exactly these flags besides --workdir.
    fn rerun_as(&self, link: &Path, flags: &[&str]) -> Output {
        output(
            tracelink()
                .arg("rerun")
                .arg(link)
                .arg("--workdir")
                .arg(self.path("rerun"))
                .args(flags),
        )
    }
}

const HELLO: &str =
    "#include <stdio.h>\n#include \"msg.h\"\nint main(void) { puts(MSG); return 0; }\n";

fn deterministic() -> Project {
    Project::new(
        "all: hello hello.txt\n\
         hello: hello.c msg.h\n\tcc -O2 -o hello hello.c\n\
         hello.txt: hello\n\t./hello > hello.txt\n",
        &[("hello.c", HELLO), ("msg.h", "#define MSG \"hi\"\n")],
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deterministic_make_build_reruns_with_every_product_identical() {
    if common::precise_unavailable(
        "deterministic_make_build_reruns_with_every_product_identical",
        &["make", "cc"],
    ) {
        return;
    }
    let p = deterministic();
    let link = p.record(false);
    // --full lists identical products however many there are.
    let out = p.rerun(&link, &["--full"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    for line in ["identical  hello\n", "identical  hello.txt\n"] {
        assert!(text.contains(line), "missing {line:?}: {}", show(&out));
    }
    assert!(
        text.contains(
            "REPRODUCED: 2 identical, 0 different, 0 missing, 0 extra product(s); 0 hidden input(s)"
        ),
        "{}",
        show(&out)
    );
    // The work tree holds exactly the recorded materials (plus the rerun's
    // products), and the rerun's own link is in the metadata folder.
    let mut tree: Vec<String> = fs::read_dir(p.path("rerun/tree"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    tree.sort();
    assert_eq!(tree, ["Makefile", "hello", "hello.c", "hello.txt", "msg.h"]);
    assert!(p.path("rerun/metadata/build.rerun.link").is_file());
    assert!(p.path("rerun/metadata/report.txt").is_file());
}

#[test]
fn a_build_embedding_the_time_is_reported_with_the_differing_product_and_offset() {
    if common::precise_unavailable(
        "a_build_embedding_the_time_is_reported_with_the_differing_product_and_offset",
        &["make", "cc"],
    ) {
        return;
    }
    let p = Project::new(
        "stamp.txt: Makefile\n\t(echo built-at; date +%s%N) > stamp.txt\n",
        &[],
    );
    let link = p.record(true);
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    // "built-at\n" is 9 bytes, then at least the nanoseconds differ.
    let line = text
        .lines()
        .find(|l| l.starts_with("DIFFERENT  stamp.txt: first difference at byte "))
        .unwrap_or_else(|| panic!("no DIFFERENT line: {}", show(&out)));
    let offset: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((9..29).contains(&offset), "{line}");
    assert!(
        text.contains("    --- recorded/stamp.txt"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("NOT REPRODUCED: 0 identical, 1 different"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_changed_material_refuses_without_store_and_reruns_from_the_store() {
    if common::precise_unavailable(
        "a_changed_material_refuses_without_store_and_reruns_from_the_store",
        &["make", "cc"],
    ) {
        return;
    }
    let p = deterministic();
    let link = p.record(true);
    fs::write(p.proj().join("msg.h"), "#define MSG \"changed\"\n").unwrap();
    // Without the store (moved away), the changed header is refused, named.
    fs::rename(p.path("store"), p.path("store.moved")).unwrap();
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("material msg.h changed since the recording"),
        "{}",
        show(&out)
    );
    assert!(
        !p.path("rerun").exists(),
        "nothing was built: {}",
        show(&out)
    );
    // With the store, the rerun restores the recorded header and reproduces.
    let out = p.rerun(&link, &["--store", p.path("store.moved").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        fs::read_to_string(p.path("rerun/tree/msg.h")).unwrap(),
        "#define MSG \"hi\"\n"
    );
    assert_eq!(
        fs::read_to_string(p.path("rerun/tree/hello.txt")).unwrap(),
        "hi\n"
    );
}

#[test]
fn an_input_the_recording_never_looked_for_is_reported_as_hidden() {
    if common::precise_unavailable(
        "an_input_the_recording_never_looked_for_is_reported_as_hidden",
        &["make", "cc"],
    ) {
        return;
    }
    // Whether `extra.txt` is read depends on a file outside the root.
    let flag = tempfile::tempdir().unwrap();
    let makefile = format!(
        "out.txt: in.txt\n\tcat in.txt > out.txt\n\tif [ -e {0}/flag ]; then cat extra.txt >> out.txt || true; fi\n",
        flag.path().display()
    );
    let p = Project::new(&makefile, &[("in.txt", "input\n")]);
    let link = p.record(false);
    fs::write(flag.path().join("flag"), "").unwrap();
    let out = p.rerun(&link, &[]);
    let text = stdout(&out);
    assert!(
        text.contains("HIDDEN INPUT extra.txt: the rerun read or looked for it"),
        "{}",
        show(&out)
    );
    assert!(text.contains("1 hidden input(s)"), "{}", show(&out));
}

// --- Crafted links and traces (docs/threat-model.md, "made by others") -----

/// A step that needs only make: `out.txt` copied from `in.txt`.
fn copy_step() -> Project {
    Project::new(
        "out.txt: in.txt\n\tcat in.txt > out.txt\n",
        &[("in.txt", "input\n")],
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Rewrites the recorded trace and link with `edit(trace, signed)`, puts the
/// trace's new sha256 into the link, and signs the link again with the
/// project's key: a crafted recording whose signature verifies.
fn craft(
    p: &Project,
    link: &Path,
    edit: impl FnOnce(&mut serde_json::Value, &mut serde_json::Value),
) {
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(link).unwrap()).unwrap();
    let name = doc["signed"]["environment"]["tracelink"]["trace"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let trace_path = link.parent().unwrap().join(name);
    // Written compact and compressed (format 3); rewritten as plain JSON,
    // which readers take whatever the name.
    let mut trace =
        tracelink::tracefile::read_json(&fs::read(&trace_path).unwrap(), 1 << 30).unwrap();
    edit(&mut trace, &mut doc["signed"]);
    let bytes = serde_json::to_vec_pretty(&trace).unwrap();
    fs::write(&trace_path, &bytes).unwrap();
    doc["signed"]["environment"]["tracelink"]["trace"]["sha256"] = sha256_hex(&bytes).into();
    fs::write(link, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = output(
        tracelink()
            .arg("sign")
            .arg(link)
            .arg("-k")
            .arg(p.path("key.pem"))
            .arg("-o")
            .arg(link),
    );
    assert!(out.status.success(), "re-signing: {}", show(&out));
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_crafted_dotdot_cwd_is_refused_and_nothing_is_created_outside_the_work_dir() {
    if common::precise_unavailable(
        "a_crafted_dotdot_cwd_is_refused_and_nothing_is_created_outside_the_work_dir",
        &["make"],
    ) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);
    // The work tree is WORKDIR/tree = <tmp>/rerun/tree: two `..` from the
    // tree lead to <tmp>, where the old rerun created escape/sub.
    craft(&p, &link, |trace, _| {
        let root = trace["root"].as_str().unwrap().to_owned();
        trace["cwd"] = format!("{root}/../../escape/sub").into();
    });
    let before = listing(p.dir.path());
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("/../../escape/sub"),
        "the refusal names the crafted directory: {}",
        show(&out)
    );
    assert!(!p.path("escape").exists(), "{}", show(&out));
    let mut after = listing(p.dir.path());
    after.retain(|n| n != "rerun");
    assert_eq!(before, after, "{}", show(&out));
}

#[test]
fn crafted_material_names_are_refused_and_nothing_is_created_outside_the_work_dir() {
    if common::precise_unavailable(
        "crafted_material_names_are_refused_and_nothing_is_created_outside_the_work_dir",
        &["make"],
    ) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);
    let digest = sha256_hex(b"input\n");
    let absolute = p.path("abs/x.txt").display().to_string();
    for (name, reason) in [
        ("../escape/x.txt", "`..` component"),
        ("sub/../../../escape/x.txt", "`..` component"),
        (absolute.as_str(), "absolute path"),
        ("./x.txt", "`.` component"),
        ("a//x.txt", "empty component"),
    ] {
        craft(&p, &link, |trace, signed| {
            let materials = signed["materials"].as_object_mut().unwrap();
            materials.retain(|k, _| !k.contains("x.txt"));
            materials.insert(name.into(), serde_json::json!({"sha256": digest}));
            trace["artifacts"][name] = serde_json::json!({
                "material": {"mode": 0o644, "size": 6}, "read_by": [], "written_by": []});
        });
        let before = listing(p.dir.path());
        let out = p.rerun(&link, &[]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("material name {name:?} is refused")) && err.contains(reason),
            "{name}: {}",
            show(&out)
        );
        for escaped in ["escape", "abs", "x.txt"] {
            assert!(!p.path(escaped).exists(), "{name}: {}", show(&out));
        }
        let mut after = listing(p.dir.path());
        after.retain(|n| n != "rerun");
        assert_eq!(before, after, "{name}: {}", show(&out));
        assert!(
            !p.path("rerun").exists(),
            "refused before anything was built"
        );
    }
}

#[test]
fn a_material_through_a_symlinked_directory_leading_outside_the_root_is_refused() {
    if common::precise_unavailable(
        "a_material_through_a_symlinked_directory_leading_outside_the_root_is_refused",
        &["make"],
    ) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);
    // A directory outside the root, with a canary file, and a symlink to it
    // in the original root; the crafted link lists a material through it
    // with the canary's digest, so that only following the symlink finds it.
    let outside = p.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("x.h"), "canary\n").unwrap();
    std::os::unix::fs::symlink(&outside, p.proj().join("inc")).unwrap();
    let digest = sha256_hex(b"canary\n");
    craft(&p, &link, |trace, signed| {
        signed["materials"]["inc/x.h"] = serde_json::json!({"sha256": digest});
        trace["artifacts"]["inc/x.h"] = serde_json::json!({
            "material": {"mode": 0o644, "size": 7}, "read_by": [], "written_by": []});
    });
    let before = listing(p.dir.path());
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("material inc/x.h: ")
            && stderr(&out).contains("leads outside the original root"),
        "{}",
        show(&out)
    );
    assert!(!p.path("rerun").exists(), "{}", show(&out));
    assert_eq!(listing(&outside), ["x.h"]);
    assert_eq!(fs::read_to_string(outside.join("x.h")).unwrap(), "canary\n");
    assert_eq!(before, listing(p.dir.path()));
}

#[test]
fn a_link_whose_signature_does_not_verify_is_replayed_only_with_unverified() {
    if common::precise_unavailable(
        "a_link_whose_signature_does_not_verify_is_replayed_only_with_unverified",
        &["make"],
    ) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);

    // Neither --verification-keys nor --unverified: refused, saying which.
    let out = p.rerun_as(&link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("pass --verification-keys PUB")
            && stderr(&out).contains("--unverified"),
        "{}",
        show(&out)
    );
    assert!(!p.path("rerun").exists(), "{}", show(&out));
    // Both: a usage error.
    let key = p.path("key.pem.pub");
    let key = key.to_str().unwrap();
    let out = p.rerun_as(&link, &["--verification-keys", key, "--unverified"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(!p.path("rerun").exists(), "{}", show(&out));

    // Another functionary's key: refused.
    let other = output(
        tracelink()
            .arg("keygen")
            .arg(p.path("other.pem"))
            .arg("--force"),
    );
    assert!(other.status.success(), "{}", show(&other));
    let other = p.path("other.pem.pub");
    let out = p.rerun_as(&link, &["--verification-keys", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("its signature does not verify with any of the given keys"),
        "{}",
        show(&out)
    );
    assert!(!p.path("rerun").exists(), "{}", show(&out));

    // Changed after signing (the trace untouched): refused with the right key...
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&link).unwrap()).unwrap();
    doc["signed"]["environment"]["note"] = "added after signing".into();
    fs::write(&link, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("its signature does not verify"),
        "{}",
        show(&out)
    );
    assert!(
        !p.path("rerun").exists(),
        "nothing replayed: {}",
        show(&out)
    );
    // ... and replayed with --unverified, which the report says first.
    let out = p.rerun_as(&link, &["--unverified"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("UNVERIFIED: the signature of ")
            && text
                .lines()
                .next()
                .unwrap()
                .contains("was not checked (--unverified)"),
        "{}",
        show(&out)
    );
    let report = fs::read_to_string(p.path("rerun/metadata/report.txt")).unwrap();
    assert!(report.starts_with("UNVERIFIED: "), "{report}");
}

#[test]
fn a_dsse_link_is_checked_with_the_functionarys_key() {
    if common::precise_unavailable(
        "a_dsse_link_is_checked_with_the_functionarys_key",
        &["make"],
    ) {
        return;
    }
    let p = copy_step();
    let link = p.record_with(false, &["--use-dsse"]);
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("signature verified: "),
        "{}",
        show(&out)
    );
}

#[test]
fn names_from_the_link_are_escaped_in_the_report() {
    if common::precise_unavailable("names_from_the_link_are_escaped_in_the_report", &["make"]) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);
    craft(&p, &link, |_, signed| {
        signed["name"] = "bu\u{9b}ild".into();
        signed["products"]["out\u{1b}[2K\u{202e}.txt"] =
            serde_json::json!({"sha256": sha256_hex(b"x")});
    });
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report = fs::read_to_string(p.path("rerun/metadata/report.txt")).unwrap();
    for text in [stdout(&out), report] {
        assert!(
            !text.contains(['\u{1b}', '\u{9b}', '\u{202e}']),
            "raw control characters: {text:?}"
        );
        assert!(
            text.contains("rerun of step \"bu\\x9bild\": make"),
            "{text}"
        );
        assert!(
            text.contains("MISSING    out\\x1b[2K\\u202e.txt: recorded as a product"),
            "{text}"
        );
    }
}

#[test]
fn the_verdict_says_when_the_original_recording_was_incomplete() {
    if common::precise_unavailable(
        "the_verdict_says_when_the_original_recording_was_incomplete",
        &["make"],
    ) {
        return;
    }
    // A process still running when the command ends makes the recording
    // incomplete; --allow-incomplete signs it all the same, marked.
    let p = Project::new(
        "out.txt: in.txt\n\tsleep 5 & cat in.txt > out.txt\n",
        &[("in.txt", "input\n")],
    );
    let link = p.record_with(false, &["--allow-incomplete"]);
    let out = p.rerun(&link, &[]);
    let verdict = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(
        verdict.contains(
            "BUT the original recording was incomplete (recorded with --allow-incomplete): process"
        ) && verdict.contains("(sleep) was still running when the command ended"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains("was recorded with --allow-incomplete"),
        "{}",
        show(&out)
    );

    // A complete recording's verdict says nothing of the kind.
    let q = copy_step();
    let link = q.record(false);
    let out = q.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!stdout(&out).contains("incomplete"), "{}", show(&out));
}

// --- What the recording saw, not only what it hashed (issue 11) -----------

#[test]
fn files_directories_and_symlinks_the_step_only_probed_are_recreated() {
    if common::precise_unavailable(
        "files_directories_and_symlinks_the_step_only_probed_are_recreated",
        &["make"],
    ) {
        return;
    }
    // configure's way: `test -f` on auxiliary files it never reads, an
    // empty directory it expects, a symlink it checks for. None of them is
    // a material; a rerun that restored materials only failed here.
    let flag = tempfile::tempdir().unwrap();
    let makefile = format!(
        "out.txt: in.txt\n\
         \ttest -f aux/install-sh && test -x aux/compile && test -d empty && test -L link\n\
         \tcat in.txt > out.txt\n\
         \tif [ -e {0}/flag ]; then cat aux/install-sh >> out.txt; fi\n",
        flag.path().display()
    );
    let p = Project::new(
        &makefile,
        &[
            ("in.txt", "input\n"),
            ("aux/install-sh", "#!/bin/sh\necho install\n"),
            ("aux/compile", "#!/bin/sh\n"),
        ],
    );
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(
        p.proj().join("aux/compile"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir(p.proj().join("empty")).unwrap();
    std::os::unix::fs::symlink("in.txt", p.proj().join("link")).unwrap();
    let link = p.record(true);
    let trace = tracelink::tracefile::read_json(
        &fs::read(link.with_extension("link.trace.json.gz")).unwrap(),
        u64::MAX,
    )
    .unwrap();
    let probed = &trace["probed"];
    assert_eq!(probed["aux/install-sh"]["kind"], "file", "{probed}");
    assert_eq!(probed["aux/install-sh"]["size"], 23, "{probed}");
    assert!(probed["aux/install-sh"]["sha256"].is_string(), "{probed}");
    assert_eq!(probed["aux/compile"]["mode"], 0o755, "{probed}");
    assert_eq!(probed["empty"]["kind"], "dir", "{probed}");
    assert_eq!(probed["link"]["kind"], "symlink", "{probed}");
    assert_eq!(probed["link"]["target"], "in.txt", "{probed}");

    // The original changes after the recording: the store still has the
    // probed file's content.
    fs::write(p.proj().join("aux/install-sh"), "changed\n").unwrap();
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("REPRODUCED: 1 identical"),
        "{}",
        show(&out)
    );
    let tree = p.path("rerun/tree");
    assert_eq!(
        fs::read_to_string(tree.join("aux/install-sh")).unwrap(),
        "#!/bin/sh\necho install\n"
    );
    assert!(tree.join("empty").is_dir());
    assert_eq!(
        fs::read_link(tree.join("link")).unwrap(),
        Path::new("in.txt")
    );

    // Without the store and with the original changed, the file is a
    // placeholder of the recorded size, named; read by the rerun, it is
    // reported as a probed file now read.
    fs::remove_dir_all(p.path("store")).unwrap();
    fs::remove_dir_all(p.path("rerun")).unwrap();
    fs::write(flag.path().join("flag"), "").unwrap();
    let out = p.rerun(&link, &[]);
    let text = stdout(&out);
    assert!(
        text.contains("  placeholder aux/install-sh\n"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("PROBED, NOW READ aux/install-sh: the recording only probed it, the rerun read it (a placeholder"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::metadata(tree.join("aux/install-sh")).unwrap().len(), 23);
}

#[test]
fn names_the_rerun_looks_up_and_then_makes_itself_are_not_hidden_inputs() {
    if common::precise_unavailable(
        "names_the_rerun_looks_up_and_then_makes_itself_are_not_hidden_inputs",
        &["make", "cc", "ar", "mktemp"],
    ) {
        return;
    }
    // ar writes its archive through a randomly named temporary file beside
    // it (looked up first, then created); mktemp makes a random directory.
    let p = Project::new(
        "all: lib.a out.txt\n\
         a.o: a.c\n\tcc -c -o a.o a.c\n\
         lib.a: a.o\n\tar rc lib.a a.o\n\
         out.txt: in.txt\n\td=$$(mktemp -d ./tmp.XXXXXX) && cat in.txt > $$d/f && cat $$d/f > out.txt && rm -r $$d\n",
        &[
            ("a.c", "int a(void) { return 1; }\n"),
            ("in.txt", "input\n"),
        ],
    );
    let link = p.record(false);
    let out = p.rerun(&link, &[]);
    let text = stdout(&out);
    assert!(!text.contains("HIDDEN INPUT"), "{}", show(&out));
    assert!(text.contains(" 0 hidden input(s)"), "{}", show(&out));
}

#[test]
fn the_report_of_many_processes_leads_with_the_verdict_and_the_first_divergence() {
    if common::precise_unavailable(
        "the_report_of_many_processes_leads_with_the_verdict_and_the_first_divergence",
        &["make"],
    ) {
        return;
    }
    let flag = tempfile::tempdir().unwrap();
    let makefile = format!(
        "all: a.txt z.txt\n\
         a.txt: in.txt\n\tfor i in $$(seq 300); do /bin/true $$i; done; cat in.txt > a.txt\n\
         z.txt: in.txt\n\tif [ -e {0}/flag ]; then echo other > z.txt; exit 1; else cat in.txt > z.txt; fi\n",
        flag.path().display()
    );
    let p = Project::new(&makefile, &[("in.txt", "input\n")]);
    let link = p.record(true);
    let out = p.rerun(&link, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.lines().count() < 40, "{}", show(&out));
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("REPRODUCED: 2 identical"),
        "{}",
        show(&out)
    );
    assert!(!text.contains("process vanished"), "{}", show(&out));

    fs::remove_dir_all(p.path("rerun")).unwrap();
    fs::write(flag.path().join("flag"), "").unwrap();
    let out = p.rerun(&link, &[]);
    let text = stdout(&out);
    let head: Vec<&str> = text.lines().take(20).collect();
    assert!(
        head[1].starts_with("NOT REPRODUCED: 1 identical, 1 different"),
        "{}",
        show(&out)
    );
    // Plain values, not Some(0).
    assert!(
        head.contains(&"exit status: recorded 0, rerun 2"),
        "{}",
        show(&out)
    );
    assert!(
        head.iter().any(
            |l| l.starts_with("first divergence: z.txt (written by pid ")
                && l.contains("echo other > z.txt")
        ),
        "{}",
        show(&out)
    );
}

#[test]
fn json_prints_the_whole_comparison() {
    if common::precise_unavailable("json_prints_the_whole_comparison", &["make"]) {
        return;
    }
    let p = copy_step();
    let link = p.record(false);
    let out = p.rerun(&link, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"], "reproduced", "{doc}");
    assert_eq!(doc["counts"]["identical"], 1, "{doc}");
    assert_eq!(doc["products"]["out.txt"], "identical", "{doc}");
    assert_eq!(doc["hidden_inputs"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["exit"]["recorded"], doc["exit"]["rerun"], "{doc}");
    assert!(doc["processes"]["differing"].is_array(), "{doc}");
    assert!(p.path("rerun/metadata/report.json").is_file());
}

#[test]
fn the_signing_key_and_secret_named_files_probed_are_neither_hashed_nor_stored() {
    if common::precise_unavailable(
        "the_signing_key_and_secret_named_files_probed_are_neither_hashed_nor_stored",
        &["make"],
    ) {
        return;
    }
    let p = Project::new(
        "out.txt: in.txt\n\ttest -f signing.pem && test -f deploy_token.txt && test -f notes.txt\n\tcat in.txt > out.txt\n",
        &[
            ("in.txt", "input\n"),
            ("deploy_token.txt", "tok-123456789\n"),
            ("notes.txt", "plain\n"),
        ],
    );
    // The signing key lies in the recorded tree itself.
    fs::copy(p.path("key.pem"), p.proj().join("signing.pem")).unwrap();
    let out = output(
        tracelink()
            .current_dir(p.proj())
            .args(["run", "-n", "build", "-k", "signing.pem", "-d"])
            .arg(p.dir.path())
            .arg("--store")
            .arg(p.path("store"))
            .args(["--", "make"]),
    );
    assert!(out.status.success(), "{}", show(&out));
    let trace_path = fs::read_dir(p.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".link.trace.json.gz"))
        .unwrap();
    let trace = tracelink::tracefile::read_json(&fs::read(trace_path).unwrap(), u64::MAX).unwrap();
    let probed = &trace["probed"];
    assert_eq!(
        probed["signing.pem"]["left_out"], "the signing key",
        "{probed}"
    );
    assert!(probed["signing.pem"].get("sha256").is_none(), "{probed}");
    assert_eq!(
        probed["deploy_token.txt"]["left_out"], "secret-named",
        "{probed}"
    );
    assert!(
        probed["deploy_token.txt"].get("sha256").is_none(),
        "{probed}"
    );
    assert!(probed["notes.txt"]["sha256"].is_string(), "{probed}");
    for secret in [
        fs::read(p.proj().join("signing.pem")).unwrap(),
        fs::read(p.proj().join("deploy_token.txt")).unwrap(),
    ] {
        let stored = walk(&p.path("store"))
            .into_iter()
            .any(|f| fs::read(&f).is_ok_and(|b| b == secret));
        assert!(!stored, "stored: {}", String::from_utf8_lossy(&secret));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
