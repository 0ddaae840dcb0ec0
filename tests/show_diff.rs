//! `tracelink show` and `tracelink diff` on real recorded links.
//!
//! 1. A small C project built with `make` and `cc` under precise recording:
//!    `show` (text and --json) names the step, command, every material and
//!    product with its digest, and the process tree with what `cc`/`as`/`ld`
//!    wrote; --verification-keys with the right and a wrong key; a DSSE
//!    link; a tampered trace is refused, not shown as signed.
//! 2. `diff` of runs of that build: a clean rebuild (equal, 0), a changed
//!    source (1, names the material and products), a changed command that
//!    adds a product (1), a tampered trace (2).
//! 3. Snapshot-mode links (no trace) and malformed input (exit 2).
//! 4. Large links: 10,000 products in snapshot mode, then a second record
//!    with a few files changed, added and removed; show and diff must be
//!    fast and report the right counts and names.
//! 5. The default summary of a generated 300-file `make -j2` and of GNU
//!    hello 2.10's (its release tarball, SKIP when absent, FAIL under CI):
//!    under 80 lines, its counts those of --json, and --files / --tree
//!    listing every file and process.
//!
//! Precise tests need root and /dev/fuse (SKIP otherwise, FAIL under CI)
//! and make and cc.

mod common;

use common::{output, show, tracelink};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(
        fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    ))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
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

const MAKEFILE: &str = "\
OBJS = main.o util.o greet.o
all: prog
prog: $(OBJS)
\tcc -o prog $(OBJS)
%.o: %.c common.h
\tcc -c -o $@ $<
extra:
\techo extra > extra.txt
clean:
\trm -f *.o prog extra.txt
.PHONY: all extra clean
";

/// A three-file C project in `dir/proj`.
fn project(dir: &Path) -> PathBuf {
    let proj = dir.join("proj");
    fs::create_dir_all(&proj).unwrap();
    let files = [
        ("Makefile", MAKEFILE),
        ("common.h", "int util(int);\nconst char *greet(void);\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include \"common.h\"\nint main(void) { printf(\"%s %d\\n\", greet(), util(2)); return 0; }\n",
        ),
        (
            "util.c",
            "#include \"common.h\"\nint util(int x) { return x * 21; }\n",
        ),
        (
            "greet.c",
            "#include \"common.h\"\nconst char *greet(void) { return \"hello\"; }\n",
        ),
    ];
    for (name, body) in files {
        fs::write(proj.join(name), body).unwrap();
    }
    proj
}

/// `make clean`, then `tracelink run` of `make ARGS` in precise mode, the
/// link going to `dir/<out>`. Returns the link's path.
fn record_build(
    proj: &Path,
    dir: &Path,
    out: &str,
    key: &Path,
    extra: &[&str],
    make_args: &[&str],
) -> PathBuf {
    let clean = output(
        Command::new("make")
            .arg("-s")
            .arg("clean")
            .current_dir(proj),
    );
    assert!(clean.status.success(), "make clean: {}", show(&clean));
    let links = dir.join(out);
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(proj)
            .args(["run", "-n", "build", "-k"])
            .arg(key)
            .arg("-d")
            .arg(&links)
            .args(extra)
            .arg("--")
            .arg("make")
            .args(make_args),
    );
    assert!(run.status.success(), "tracelink run make: {}", show(&run));
    link_in(&links, "build")
}

fn run_show(args: &[&str], link: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let out = output(tracelink().arg("show").arg(link).args(args));
    (out, started.elapsed())
}

fn run_diff(a: &Path, b: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = output(tracelink().arg("diff").arg(a).arg(b).args(args));
    (out, started.elapsed())
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}

/// The trace beside `link`: compressed (format 3) or plain (as older
/// versions wrote it).
fn trace_of(link: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.trace.json.gz", link.display()));
    if gz.exists() {
        gz
    } else {
        PathBuf::from(format!("{}.trace.json", link.display()))
    }
}

/// The line of `text` that contains `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn show_precise_build() {
    if common::precise_unavailable("show_precise_build", &["make", "cc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let (_, other_public) = keygen(tmp.path(), "other");
    let proj = project(tmp.path());
    let link = record_build(&proj, tmp.path(), "a", &key, &[], &[]);

    let (out, took) = run_show(&["--files", "--tree"], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show --files --tree of a precise make build took {took:?}:\n{t}");
    assert!(t.contains("step:        build\n"), "{t}");
    assert!(t.contains("command:     make\n"), "{t}");
    assert!(t.contains("classic signed link"), "{t}");
    assert!(t.contains("signature not checked"), "{t}");
    assert!(t.contains("exit:        0 (return-value)"), "{t}");
    assert!(t.contains("recording:   precise, complete"), "{t}");
    assert!(t.contains("matches the signed digest"), "{t}");
    assert!(t.contains("materials (5):"), "{t}");
    assert!(t.contains("products (4):"), "{t}");
    for material in ["Makefile", "common.h", "main.c", "util.c", "greet.c"] {
        let digest = sha256_file(&proj.join(material));
        let line = line_with(&t, &format!("  {material}  sha256:"));
        assert!(line.contains(&digest), "{material}: {line}");
    }
    for product in ["main.o", "util.o", "greet.o", "prog"] {
        let digest = sha256_file(&proj.join(product));
        let line = line_with(&t, &format!("  {product}  sha256:"));
        assert!(line.contains(&digest), "{product}: {line}");
    }
    assert!(
        t.contains(&format!(
            "root:        {}",
            proj.canonicalize().unwrap().display()
        )),
        "{t}"
    );
    // The process tree: make at the top, cc children indented below it,
    // and what they read and wrote.
    assert!(t.contains("process tree ("), "{t}");
    let make = line_with(&t, "] make  (exit 0)");
    let cc = line_with(&t, "] cc -c -o util.o util.c  (exit 0)");
    let indent = |l: &str| l.len() - l.trim_start().len();
    assert!(indent(cc) > indent(make), "cc is not below make:\n{t}");
    assert!(
        t.contains("] cc -o prog main.o util.o greet.o  (exit 0)"),
        "{t}"
    );
    assert!(t.contains("read (1): Makefile"), "{t}");
    assert!(t.contains("wrote (1): util.o"), "{t}");
    assert!(t.contains("wrote (1): prog"), "{t}");
    assert!(t.contains("read (3): greet.o, main.o, util.o"), "{t}");
    assert!(t.contains("stragglers:  none"), "{t}");
    assert!(t.contains("probes:"), "{t}");

    // --json: everything, the trace included.
    let (out, _) = run_show(&["--json"], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["step"], "build");
    assert_eq!(j["command"], serde_json::json!(["make"]));
    assert_eq!(j["wrapper"], "classic");
    assert_eq!(j["return_value"], 0);
    assert_eq!(j["recording"]["mode"], "precise");
    assert_eq!(j["recording"]["complete"], true);
    assert_eq!(j["signature_check"]["checked"], false);
    assert_eq!(
        j["materials"]["util.c"]["digests"]["sha256"],
        sha256_file(&proj.join("util.c"))
    );
    assert_eq!(
        j["products"]["prog"]["digests"]["sha256"],
        sha256_file(&proj.join("prog"))
    );
    assert_eq!(j["trace"]["status"], "verified");
    let tree = j["trace"]["content"]["process_tree"].as_array().unwrap();
    assert!(
        tree.iter().any(|p| p["execs"][0]["argv"][0] == "make"),
        "{tree:?}"
    );
    assert!(
        j["trace"]["content"]["environment"]
            .as_object()
            .is_some_and(|e| !e.is_empty())
    );

    // Keys: the signer's verifies, another key does not (exit 1).
    let (out, _) = run_show(&["--verification-keys", public.to_str().unwrap()], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        text(&out).contains("signature verified with"),
        "{}",
        show(&out)
    );
    let (out, _) = run_show(
        &["--verification-keys", other_public.to_str().unwrap()],
        &link,
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        text(&out).contains("signature NOT verified with"),
        "{}",
        show(&out)
    );
    assert!(
        text(&out).contains("materials (5) in 1 directory:"),
        "{}",
        show(&out)
    );
    let (out, _) = run_show(
        &[
            "--json",
            "--verification-keys",
            public.to_str().unwrap(),
            other_public.to_str().unwrap(),
        ],
        &link,
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["signature_check"]["results"][0]["verified"], true);
    assert_eq!(j["signature_check"]["results"][1]["verified"], false);
    // A private key or a missing key file: exit 2, naming the file.
    let (out, _) = run_show(&["--verification-keys", "/nonexistent/key.pub"], &link);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("/nonexistent/key.pub"),
        "{}",
        show(&out)
    );

    // A DSSE link.
    let dsse = record_build(&proj, tmp.path(), "dsse", &key, &["--use-dsse"], &[]);
    let (out, _) = run_show(
        &["--tree", "--verification-keys", public.to_str().unwrap()],
        &dsse,
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(text(&out).contains("(DSSE envelope)"), "{}", show(&out));
    assert!(
        text(&out).contains("signature verified with"),
        "{}",
        show(&out)
    );
    assert!(text(&out).contains("process tree ("), "{}", show(&out));

    // A tampered trace: refused with a warning, the link part still shown.
    let trace = trace_of(&link);
    let original = serde_json::to_string_pretty(
        &tracelink::tracefile::read_json(&fs::read(&trace).unwrap(), 1 << 30).unwrap(),
    )
    .unwrap();
    let tampered = original.replacen("\"make\"", "\"evil\"", 1);
    assert_ne!(original, tampered);
    fs::write(&trace, &tampered).unwrap();
    let (out, _) = run_show(
        &["--tree", "--verification-keys", public.to_str().unwrap()],
        &link,
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let t = text(&out);
    assert!(stderr(&out).contains("WARNING"), "{}", show(&out));
    assert!(stderr(&out).contains("does NOT match"), "{}", show(&out));
    assert!(t.contains("trace:       WARNING:"), "{t}");
    assert!(!t.contains("process tree"), "{t}");
    assert!(!t.contains("evil"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    let (out, _) = run_show(&["--json"], &link);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["trace"]["status"], "mismatch");
    assert!(j["trace"].get("content").is_none(), "{j}");
    // A missing trace.
    fs::remove_file(&trace).unwrap();
    let (out, _) = run_show(&[], &link);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stderr(&out).contains("cannot be read"), "{}", show(&out));
}

#[test]
fn diff_precise_builds() {
    if common::precise_unavailable("diff_precise_builds", &["make", "cc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let proj = project(tmp.path());
    let a = record_build(&proj, tmp.path(), "a", &key, &[], &[]);
    // A clean rebuild of the same tree: equal.
    let b = record_build(&proj, tmp.path(), "b", &key, &[], &[]);
    let (out, took) = run_diff(&a, &b, &[]);
    let t = text(&out);
    println!("diff of two clean builds took {took:?}:\n{t}");
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(t.contains("materials: same"), "{t}");
    assert!(t.contains("products: same"), "{t}");
    assert!(t.contains("processes: same commands"), "{t}");
    assert!(t.trim_end().ends_with("summary: equal"), "{t}");

    // A changed source: its material and the products built from it differ.
    let util = proj.join("util.c");
    fs::write(
        &util,
        "#include \"common.h\"\nint util(int x) { return x * 42; }\n",
    )
    .unwrap();
    let c = record_build(&proj, tmp.path(), "c", &key, &[], &[]);
    let (out, _) = run_diff(&a, &c, &[]);
    let t = text(&out);
    println!("diff after changing util.c:\n{t}");
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        t.contains("materials: 0 added, 0 removed, 1 changed"),
        "{t}"
    );
    assert!(t.contains("  ~ util.c\n"), "{t}");
    assert!(t.contains(&sha256_file(&util)), "{t}");
    assert!(t.contains("products: 0 added, 0 removed, 2 changed"), "{t}");
    assert!(t.contains("  ~ util.o\n"), "{t}");
    assert!(t.contains("  ~ prog\n"), "{t}");
    assert!(!t.contains("  ~ main.o"), "{t}");
    assert!(
        t.contains("summary: differ: 1 material changed, 2 products changed"),
        "{t}"
    );
    let (out, _) = run_diff(&a, &c, &["--json"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["equal"], false);
    assert_eq!(j["materials"]["changed"][0]["path"], "util.c");
    assert_eq!(
        j["materials"]["changed"][0]["b"]["sha256"],
        sha256_file(&util)
    );
    let changed: Vec<&str> = j["products"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["prog", "util.o"]);
    assert_eq!(j["traces_compared"], true);

    // A changed command that also builds another product.
    let d = record_build(&proj, tmp.path(), "d", &key, &[], &["all", "extra"]);
    let (out, _) = run_diff(&c, &d, &[]);
    let t = text(&out);
    println!("diff with `make all extra`:\n{t}");
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        t.contains("command: changed\n  A make\n  B make all extra\n"),
        "{t}"
    );
    assert!(t.contains("products: 1 added, 0 removed, 0 changed"), "{t}");
    assert!(t.contains("  + extra.txt  sha256:"), "{t}");
    assert!(t.contains(&sha256_file(&proj.join("extra.txt"))), "{t}");
    assert!(t.contains("processes: 1 appeared"), "{t}");
    assert!(
        line_with(&t, "  + [").contains("make > sh: /bin/sh -c 'echo extra > extra.txt'"),
        "{t}"
    );
    assert!(
        t.contains("summary: differ: command, 1 product added"),
        "{t}"
    );

    // A tampered trace: an error (2), naming the trace.
    let trace = trace_of(&b);
    let mut bytes = fs::read(&trace).unwrap();
    bytes.push(b'\n');
    fs::write(&trace, bytes).unwrap();
    let (out, _) = run_diff(&a, &b, &[]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains(trace.to_str().unwrap()),
        "{}",
        show(&out)
    );
    assert!(stderr(&out).contains("does NOT match"), "{}", show(&out));
}

#[test]
fn show_incomplete_and_no_ptrace() {
    if common::precise_unavailable("show_incomplete_and_no_ptrace", &["make", "cc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let proj = project(tmp.path());

    // A straggler: signed only with --allow-incomplete, and shown as such.
    let links = tmp.path().join("inc");
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(&proj)
            .args(["run", "-n", "strag", "--allow-incomplete", "-k"])
            .arg(&key)
            .arg("-d")
            .arg(&links)
            .args(["--", "sh", "-c", "sleep 30 & cat util.c > copy.txt"]),
    );
    assert!(run.status.success(), "{}", show(&run));
    let link = link_in(&links, "strag");
    let (out, _) = run_show(&["--tree"], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("{t}");
    assert!(t.contains("recording:   precise, INCOMPLETE"), "{t}");
    assert!(t.contains("incomplete: process "), "{t}");
    assert!(t.contains("(sleep) was still running"), "{t}");
    assert!(t.contains("straggler:   pid "), "{t}");
    assert!(t.contains("] sleep 30  (no exit seen)"), "{t}");
    assert!(t.contains("] cat util.c  (exit 0)"), "{t}");
    assert!(t.contains("wrote (1): copy.txt"), "{t}");
    let (out, _) = run_show(&["--json"], &link);
    let j = json_of(&out);
    assert_eq!(j["recording"]["complete"], false);
    assert!(
        j["recording"]["incomplete"][0]
            .as_str()
            .unwrap()
            .contains("sleep")
    );

    // --no-ptrace: no process tree, the processes that touched the root.
    let with = record_build(&proj, tmp.path(), "with", &key, &[], &[]);
    let without = record_build(&proj, tmp.path(), "without", &key, &["--no-ptrace"], &[]);
    let (out, _) = run_show(&["--tree"], &without);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    assert!(
        t.contains("process tree: not recorded (--no-ptrace)"),
        "{t}"
    );
    let (out, _) = run_diff(&with, &without, &[]);
    let t = text(&out);
    println!("{t}");
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        t.contains("processes: not compared: B's trace has no process tree (--no-ptrace)"),
        "{t}"
    );
    assert!(t.contains("summary: equal"), "{t}");
}

#[test]
fn show_caps_long_lists() {
    if common::precise_unavailable("show_caps_long_lists", &["make", "cc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let links = tmp.path().join("links");
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(&work)
            .args(["run", "-n", "many", "-k"])
            .arg(&key)
            .arg("-d")
            .arg(&links)
            .args([
                "--",
                "sh",
                "-c",
                "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo $i > f$i.txt; done",
            ]),
    );
    assert!(run.status.success(), "{}", show(&run));
    let link = link_in(&links, "many");
    let (out, _) = run_show(&["--files", "--tree"], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    assert!(t.contains("products (30):"), "{t}");
    // The process line lists the first few files, then how many more.
    let wrote = line_with(&t, "wrote (30): ");
    assert!(wrote.ends_with(", and 22 more"), "{wrote}");
    // --json has them all.
    let (out, _) = run_show(&["--json"], &link);
    let j = json_of(&out);
    let tree = j["trace"]["content"]["process_tree"].as_array().unwrap();
    let sh = tree
        .iter()
        .find(|p| p["execs"][0]["argv"][0] == "sh")
        .unwrap();
    assert_eq!(sh["wrote"].as_array().unwrap().len(), 30);
    assert_eq!(j["products"]["f17.txt"]["size"], 3);
}

/// `tracelink run -x -p DIR` (snapshot mode, no command) from `cwd`.
fn snapshot(cwd: &Path, key: &Path, out: &Path, step: &str, dir: &str) -> (PathBuf, Duration) {
    fs::create_dir_all(out).unwrap();
    let started = Instant::now();
    let run = output(
        tracelink()
            .current_dir(cwd)
            .args(["run", "-n", step, "-k"])
            .arg(key)
            .arg("-d")
            .arg(out)
            .args(["-x", "-p", dir]),
    );
    let took = started.elapsed();
    assert!(run.status.success(), "snapshot run: {}", show(&run));
    (link_in(out, step), took)
}

#[test]
fn show_and_diff_snapshot_links() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), "beta\n").unwrap();
    let (a, _) = snapshot(tmp.path(), &key, &tmp.path().join("la"), "checkout", "src");

    let (out, _) = run_show(
        &["--files", "--verification-keys", public.to_str().unwrap()],
        &a,
    );
    let t = text(&out);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(t.contains("step:        checkout"), "{t}");
    assert!(t.contains("command:     (none)"), "{t}");
    assert!(t.contains("recording:   snapshot"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    assert!(t.contains("materials (0):"), "{t}");
    assert!(t.contains("products (2):"), "{t}");
    let line = line_with(&t, "  src/sub/b.txt  sha256:");
    assert!(line.contains(&sha256_file(&src.join("sub/b.txt"))), "{t}");
    assert!(!t.contains("trace:"), "{t}");
    assert!(!t.contains("process tree"), "{t}");
    let (out, _) = run_show(&["--json"], &a);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["recording"]["mode"], "snapshot");
    assert_eq!(j["trace"]["status"], "none");
    assert_eq!(
        j["products"]["src/a.txt"]["digests"]["sha256"],
        sha256_file(&src.join("a.txt"))
    );

    // Same tree again: equal; then a change.
    let (b, _) = snapshot(tmp.path(), &key, &tmp.path().join("lb"), "checkout", "src");
    let (out, _) = run_diff(&a, &b, &[]);
    let t = text(&out);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        t.contains("traces: not compared: neither link has a trace"),
        "{t}"
    );
    assert!(t.trim_end().ends_with("summary: equal"), "{t}");
    fs::write(src.join("a.txt"), "ALPHA\n").unwrap();
    let (c, _) = snapshot(tmp.path(), &key, &tmp.path().join("lc"), "checkout", "src");
    let (out, _) = run_diff(&a, &c, &[]);
    let t = text(&out);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(t.contains("  ~ src/a.txt\n"), "{t}");
    assert!(t.contains("summary: differ: 1 product changed"), "{t}");
    // A key named by its legacy keyid verifies too.
    let legacy_dir = tmp.path().join("legacy");
    fs::create_dir_all(&legacy_dir).unwrap();
    let run = output(
        tracelink()
            .current_dir(tmp.path())
            .args(["run", "-n", "legacy", "--keyid-format", "legacy", "-k"])
            .arg(&key)
            .arg("-d")
            .arg(&legacy_dir)
            .args(["-x", "-p", "src"]),
    );
    assert!(run.status.success(), "{}", show(&run));
    let legacy = link_in(&legacy_dir, "legacy");
    let (out, _) = run_show(&["--verification-keys", public.to_str().unwrap()], &legacy);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        text(&out).contains("signature verified with"),
        "{}",
        show(&out)
    );
    // A different step name counts.
    let (d, _) = snapshot(tmp.path(), &key, &tmp.path().join("ld"), "other", "src");
    let (out, _) = run_diff(&c, &d, &[]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        text(&out).contains("name: \"checkout\" -> \"other\""),
        "{}",
        show(&out)
    );
}

#[test]
fn malformed_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "key");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    let (good, _) = snapshot(tmp.path(), &key, &tmp.path().join("l"), "s", "src");
    let not_json = tmp.path().join("bad.link");
    fs::write(&not_json, "{ not json").unwrap();
    let layout = tmp.path().join("root.layout");
    fs::write(
        &layout,
        r#"{"signatures": [], "signed": {"_type": "layout", "expires": "2030-01-01T00:00:00Z", "keys": {}, "steps": [], "inspect": [], "readme": ""}}"#,
    )
    .unwrap();
    let missing = tmp.path().join("missing.link");
    for bad in [&not_json, &layout, &missing] {
        let (out, _) = run_show(&[], bad);
        assert_eq!(code(&out), 2, "show {}: {}", bad.display(), show(&out));
        assert!(
            stderr(&out).contains(bad.to_str().unwrap()),
            "show names the file: {}",
            show(&out)
        );
        let (out, _) = run_diff(&good, bad, &[]);
        assert_eq!(code(&out), 2, "diff {}: {}", bad.display(), show(&out));
        assert!(
            stderr(&out).contains(bad.to_str().unwrap()),
            "diff names the file: {}",
            show(&out)
        );
    }
    let (out, _) = run_show(&[], &layout);
    assert!(
        stderr(&out).contains("layout, not a link"),
        "{}",
        show(&out)
    );
}

#[test]
fn large_links_10000_products() {
    const N: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let tree = tmp.path().join("tree");
    for d in 0..100 {
        fs::create_dir_all(tree.join(format!("d{d:02}"))).unwrap();
    }
    let name = |i: usize| format!("tree/d{:02}/f{i:05}.txt", i % 100);
    for i in 0..N {
        fs::write(tmp.path().join(name(i)), format!("file {i}\n")).unwrap();
    }
    let (a, took_a) = snapshot(tmp.path(), &key, &tmp.path().join("la"), "big", "tree");
    // Change three files, remove one, add one.
    for i in [7, 4242, 9999] {
        fs::write(tmp.path().join(name(i)), format!("changed {i}\n")).unwrap();
    }
    fs::remove_file(tmp.path().join(name(123))).unwrap();
    fs::write(tmp.path().join("tree/d00/new.txt"), "new\n").unwrap();
    let (b, took_b) = snapshot(tmp.path(), &key, &tmp.path().join("lb"), "big", "tree");
    println!("recorded two snapshot links of {N} products in {took_a:?} and {took_b:?}");

    let (out, took) = run_show(
        &["--files", "--verification-keys", public.to_str().unwrap()],
        &a,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = text(&out);
    println!(
        "show of {N} products: {took:?}, {} lines",
        t.lines().count()
    );
    assert!(t.contains(&format!("products ({N}):")), "{}", &t[..2000]);
    assert!(t.contains("signature verified with"));
    let product_lines = t.lines().filter(|l| l.starts_with("  tree/")).count();
    assert_eq!(product_lines, N);
    let line = line_with(&t, "  tree/d42/f04242.txt  sha256:");
    assert!(
        line.contains(&hex::encode(Sha256::digest(b"file 4242\n"))),
        "{line}"
    );
    // A guard against a hang or a quadratic blow-up, not a speed target
    // (bench figures are in the README): debug builds under a loaded CI
    // machine take seconds here.
    assert!(took < Duration::from_secs(60), "show took {took:?}");

    let (out, took_json) = run_show(&["--json"], &a);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json_of(&out);
    assert_eq!(j["products"].as_object().unwrap().len(), N);
    println!("show --json of {N} products: {took_json:?}");

    let (out, took) = run_diff(&a, &b, &[]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let t = text(&out);
    println!("diff of two links of {N} products: {took:?}\n{t}");
    assert!(t.contains("products: 1 added, 1 removed, 3 changed"), "{t}");
    assert!(t.contains("  + tree/d00/new.txt  sha256:"), "{t}");
    assert!(t.contains("  - tree/d23/f00123.txt  sha256:"), "{t}");
    for i in [7, 4242, 9999] {
        assert!(t.contains(&format!("  ~ {}\n", name(i))), "{t}");
    }
    assert!(
        t.contains("summary: differ: 1 product added, 1 product removed, 3 products changed"),
        "{t}"
    );
    assert!(took < Duration::from_secs(60), "diff took {took:?}");
    let (out, took_json) = run_diff(&a, &b, &["--json"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let j = json_of(&out);
    assert_eq!(j["products"]["changed"].as_array().unwrap().len(), 3);
    println!("diff --json of {N} products: {took_json:?}");
    // A link against itself: equal.
    let (out, took) = run_diff(&a, &a, &[]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(text(&out).trim_end().ends_with("summary: equal"));
    println!("diff of a {N}-product link with itself: {took:?}");
}

/// A C project of `n` sources in `dirs` directories, built by `make -j2`.
fn generated_project(dir: &Path, n: usize, dirs: usize) -> PathBuf {
    let proj = dir.join("gen");
    fs::create_dir_all(proj.join("include")).unwrap();
    fs::write(
        proj.join("include/common.h"),
        "#define VALUE(x) ((x) * 3 + 1)\n",
    )
    .unwrap();
    let mut objs = String::new();
    for i in 0..n {
        let sub = format!("src/mod{}", i % dirs);
        fs::create_dir_all(proj.join(&sub)).unwrap();
        fs::write(
            proj.join(format!("{sub}/f{i}.c")),
            format!("#include \"common.h\"\nint f{i}(int x) {{ return VALUE(x) + {i}; }}\n"),
        )
        .unwrap();
        objs.push_str(&format!(" {sub}/f{i}.o"));
    }
    fs::write(proj.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    fs::write(
        proj.join("Makefile"),
        format!(
            "OBJS ={objs} main.o\nprog: $(OBJS)\n\tcc -o $@ $(OBJS)\n\
             %.o: %.c include/common.h\n\tcc -Iinclude -c -o $@ $<\n"
        ),
    )
    .unwrap();
    proj
}

/// `tracelink run -- make -j2` in `proj`, the link going to `dir/out`.
fn record_make_j2(proj: &Path, dir: &Path, key: &Path) -> PathBuf {
    let links = dir.join("links");
    fs::create_dir_all(&links).unwrap();
    let run = output(
        tracelink()
            .current_dir(proj)
            .args(["run", "-n", "build", "-k"])
            .arg(key)
            .arg("-d")
            .arg(&links)
            .args(["--", "make", "-s", "-j2"]),
    );
    assert!(
        run.status.success(),
        "tracelink run make -j2: {}",
        show(&run)
    );
    link_in(&links, "build")
}

/// The lines of `t` after the line `title` that start with two spaces.
fn section<'a>(t: &'a str, title: &str) -> Vec<&'a str> {
    t.lines()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect()
}

/// Base name of argv[0] (or the executable) of a trace exec in JSON.
fn program_of(exec: &Value) -> String {
    let argv0 = exec["argv"][0].as_str().filter(|a| !a.is_empty());
    let name = argv0.or(exec["executable"].as_str()).unwrap_or("");
    name.rsplit('/').next().unwrap().to_string()
}

#[test]
fn show_summary_of_a_real_build() {
    if common::precise_unavailable("show_summary_of_a_real_build", &["make", "cc"]) {
        return;
    }
    const N: usize = 300;
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let proj = generated_project(tmp.path(), N, 12);
    let link = record_make_j2(&proj, tmp.path(), &key);
    let trace = trace_of(&link);
    assert!(
        trace.to_string_lossy().ends_with(".link.trace.json.gz"),
        "{trace:?}"
    );

    let (out, took) = run_show(&["--verification-keys", public.to_str().unwrap()], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show (summary) of make -j2 of {N} files: {took:?}\n{t}");
    assert!(t.lines().count() < 80, "{} lines:\n{t}", t.lines().count());
    assert!(t.contains("step:        build\n"), "{t}");
    assert!(t.contains("command:     make -s -j2\n"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    assert!(t.contains("recording:   precise, complete"), "{t}");

    let (j, runs) = summary_matches_json_files_and_tree(&t, &link);
    let procs = j["trace"]["content"]["process_tree"].as_array().unwrap();
    assert!(procs.len() > 3 * N, "{} processes", procs.len());
    let top = section(&t, "top programs by runs:");
    assert!(
        top[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            >= N
    );
    assert!(runs.get("cc").is_some_and(|n| *n >= N), "{runs:?}");
    // --depth 0: the top (make) only, the rest counted.
    let (out, _) = run_show(&["--tree", "--depth", "0"], &link);
    let t = text(&out);
    assert!(t.contains("] make -s -j2  (exit 0)"), "{t}");
    assert!(!t.contains("] cc "), "{t}");
    assert!(
        t.contains(&format!(
            "({} processes below depth 0 not shown)",
            procs.len() - 1
        )),
        "{t}"
    );
    // --depth without --tree is a usage error.
    let (out, _) = run_show(&["--depth", "1"], &link);
    assert_eq!(code(&out), 2, "{}", show(&out));

    // --process: the processes that ran a matching program.
    let (out, _) = run_show(&["--process", "as"], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    let head = format!("processes matching as ({} of {}):", runs["as"], procs.len());
    assert!(t.contains(&head), "{head}\n{}", &t[..t.len().min(3000)]);
    // A glob on the command line: the compiler driver and as of one file.
    let (out, _) = run_show(&["--process", "*-o src/mod3/f3.o *"], &link);
    let t = text(&out);
    assert!(
        t.contains("processes matching '*-o src/mod3/f3.o *' (2 of "),
        "{t}"
    );
    assert!(
        t.contains("] cc -Iinclude -c -o src/mod3/f3.o src/mod3/f3.c  (exit 0)"),
        "{t}"
    );
    assert!(t.contains("under make > cc > as"), "{t}");
    assert!(t.contains("wrote (1): src/mod3/f3.o"), "{t}");
}

/// Signs, with `key`, a copy of `link` (in a new directory `dir`) that
/// names the trace `name` with `bytes` beside it. Returns the new link.
fn resign_with_trace(link: &Path, key: &Path, dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
    let mut doc: Value = serde_json::from_slice(&fs::read(link).unwrap()).unwrap();
    doc["signed"]["environment"]["tracelink"]["trace"] = serde_json::json!({
        "name": name,
        "sha256": hex::encode(Sha256::digest(bytes)),
    });
    let unsigned = dir.join("unsigned.json");
    fs::write(&unsigned, serde_json::to_vec(&doc).unwrap()).unwrap();
    let new_link = dir.join(link.file_name().unwrap());
    let out = output(
        tracelink()
            .arg("sign")
            .arg(&unsigned)
            .arg("-k")
            .arg(key)
            .arg("-o")
            .arg(&new_link),
    );
    assert!(out.status.success(), "sign: {}", show(&out));
    fs::remove_file(&unsigned).unwrap();
    new_link
}

#[test]
fn old_format_traces_show_and_a_gzip_bomb_is_refused() {
    if common::precise_unavailable(
        "old_format_traces_show_and_a_gzip_bomb_is_refused",
        &["make", "cc"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let proj = generated_project(tmp.path(), 20, 3);
    let link = record_make_j2(&proj, tmp.path(), &key);
    let bytes = fs::read(trace_of(&link)).unwrap();
    let trace = tracelink::tracefile::read_json(&bytes, 1 << 30).unwrap();
    assert_eq!(trace["format"], 2, "format 3 holds a format-2 document");
    let (out, _) = run_show(&[], &link);
    let summary = text(&out);
    let processes = line_with(&summary, "processes:   ").to_string();

    // The same trace as formats 1 and 2 wrote it: pretty JSON, plain.
    let plain_name = format!("{}.trace.json", link.file_name().unwrap().to_str().unwrap());
    for format in [1, 2] {
        let mut old = trace.clone();
        match format {
            1 => old.as_object_mut().unwrap().remove("format"),
            n => old
                .as_object_mut()
                .unwrap()
                .insert("format".into(), n.into()),
        };
        let old_link = resign_with_trace(
            &link,
            &key,
            &tmp.path().join(format!("f{format}")),
            &plain_name,
            &serde_json::to_vec_pretty(&old).unwrap(),
        );
        let (out, _) = run_show(
            &["--verification-keys", public.to_str().unwrap()],
            &old_link,
        );
        assert_eq!(code(&out), 0, "format {format}: {}", show(&out));
        let t = text(&out);
        assert!(t.contains("signature verified with"), "{t}");
        assert!(t.contains("matches the signed digest"), "{t}");
        assert!(t.contains(&processes), "format {format}: {t}");
        let (out, _) = run_show(&["--tree", "--files"], &old_link);
        assert_eq!(code(&out), 0, "{}", show(&out));
        let (out, _) = run_diff(&link, &old_link, &[]);
        assert_eq!(code(&out), 0, "format {format} against 3: {}", show(&out));
        assert!(text(&out).contains("summary: equal"), "{}", show(&out));
        // A plain trace compressed with gzip reads too.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &serde_json::to_vec(&old).unwrap()).unwrap();
        let gz_link = resign_with_trace(
            &link,
            &key,
            &tmp.path().join(format!("gz{format}")),
            &format!("{plain_name}.gz"),
            &gz.finish().unwrap(),
        );
        let (out, _) = run_show(&[], &gz_link);
        assert_eq!(code(&out), 0, "gzip format {format}: {}", show(&out));
        assert!(text(&out).contains(&processes), "{}", show(&out));
    }

    // A gzip bomb: 1 MiB of spaces compressed, the member repeated until it
    // expands past the 1 GiB bound; about a megabyte on disk.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b' '; 1 << 20]).unwrap();
    let member = gz.finish().unwrap();
    let bomb: Vec<u8> = member.repeat(1025);
    assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
    let bomb_dir = tmp.path().join("bomb");
    let bomb_name = format!("{plain_name}.gz");
    let bomb_link = resign_with_trace(&link, &key, &bomb_dir, &bomb_name, &bomb);
    let (out, took) = run_show(&[], &bomb_link);
    println!(
        "show of a link naming a gzip bomb: {took:?}\n{}",
        show(&out)
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains(&bomb_name), "{err}");
    assert!(
        err.contains("larger than a runtime trace may be (1073741824 bytes decompressed)"),
        "{err}"
    );
    assert!(
        text(&out).contains("the trace is not shown"),
        "{}",
        show(&out)
    );
    let (out, _) = run_diff(&link, &bomb_link, &[]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    // The digest is checked on the bytes as written, before anything is
    // decompressed: a changed bomb is a mismatch, not a decompression.
    let mut changed = bomb.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    fs::write(bomb_dir.join(&bomb_name), &changed).unwrap();
    let (out, took) = run_show(&[], &bomb_link);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stderr(&out).contains("does NOT match"), "{}", show(&out));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Checks the default `show` text `t` of the precise `link` against
/// `show --json` (the materials' and products' counts by directory, the
/// number of processes, the top programs' runs) and that `--files` lists
/// every material and product with its digest and `--tree` every process.
/// Returns the JSON and the runs of each program.
fn summary_matches_json_files_and_tree(
    t: &str,
    link: &Path,
) -> (Value, std::collections::HashMap<String, usize>) {
    let (out, _) = run_show(&["--json"], link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j = json_of(&out);
    let materials = j["materials"].as_object().unwrap();
    let products = j["products"].as_object().unwrap();
    let procs = j["trace"]["content"]["process_tree"].as_array().unwrap();
    // Counts match --json: files, directories, processes, programs.
    for (title, map) in [("materials", materials), ("products", products)] {
        let mut dirs: std::collections::BTreeMap<String, usize> = Default::default();
        for path in map.keys() {
            let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
            *dirs.entry(format!("{dir}/")).or_default() += 1;
        }
        let head = format!(
            "{title} ({}) in {} {}:",
            map.len(),
            dirs.len(),
            if dirs.len() == 1 {
                "directory"
            } else {
                "directories"
            }
        );
        assert!(t.contains(&head), "{head}\n{t}");
        let lines = section(t, &head);
        let shown = dirs.len().min(8);
        assert_eq!(
            lines.len(),
            shown + usize::from(dirs.len() > 8),
            "up to 8 directories, then the rest: {lines:?}"
        );
        for line in &lines[..shown] {
            let mut words = line.split_whitespace();
            let (dir, n) = (words.next().unwrap(), words.next().unwrap());
            assert_eq!(n.parse::<usize>().unwrap(), dirs[dir], "{line}");
        }
        if dirs.len() > 8 {
            assert!(
                lines[8].contains("(--files lists every file)"),
                "{}",
                lines[8]
            );
        }
    }
    assert!(
        t.contains(&format!("processes:   {}, ", procs.len())),
        "{t}"
    );
    let mut runs: std::collections::HashMap<String, usize> = Default::default();
    for p in procs {
        for e in p["execs"].as_array().unwrap() {
            *runs.entry(program_of(e)).or_default() += 1;
        }
    }
    let top = section(t, "top programs by runs:");
    assert!(!top.is_empty(), "{t}");
    let mut listed = 0;
    for line in &top {
        if let Some(rest) = line.strip_prefix("  and ") {
            // The rest of the programs, counted.
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(
                words[0].parse::<usize>().ok(),
                Some(runs.len() - listed),
                "{line}"
            );
            let total: usize = runs.values().sum();
            let shown: usize = top[..listed]
                .iter()
                .map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .sum();
            assert_eq!(
                words[4].parse::<usize>().ok(),
                Some(total - shown),
                "{line}"
            );
            continue;
        }
        let mut words = line.split_whitespace();
        let (program, n) = (words.next().unwrap(), words.next().unwrap());
        assert_eq!(
            n.parse::<usize>().ok(),
            runs.get(program).copied(),
            "{line}: {runs:?}"
        );
        listed += 1;
    }

    // --files: every material and product, with its digest.
    let (out, _) = run_show(&["--files"], link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    for (title, map) in [("materials", materials), ("products", products)] {
        let lines = section(&t, &format!("{title} ({}):", map.len()));
        assert_eq!(lines.len(), map.len(), "{title}");
        for (path, entry) in map {
            let want = format!(
                "  {path}  sha256:{}",
                entry["digests"]["sha256"].as_str().unwrap()
            );
            assert!(lines.iter().any(|l| l.starts_with(&want)), "{want}");
        }
    }
    assert!(!t.contains("process tree"), "--files alone lists files");

    // --tree: every process, once.
    let (out, took) = run_show(&["--tree"], link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show --tree: {took:?}, {} lines", t.lines().count());
    assert!(
        t.contains(&format!("process tree ({} processes):", procs.len())),
        "{t}"
    );
    let shown: std::collections::BTreeSet<i64> = t
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('['))
        .filter_map(|l| l.split(']').next()?.parse().ok())
        .collect();
    let pids: std::collections::BTreeSet<i64> =
        procs.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert_eq!(shown, pids);
    (j, runs)
}

/// The default `show` of a real third-party build: GNU hello 2.10 from its
/// release tarball, configured (not recorded), then `make -j2` recorded.
#[test]
fn show_summary_of_gnu_hello_make_j2() {
    const TEST: &str = "show_summary_of_gnu_hello_make_j2";
    if common::precise_unavailable(TEST, &["make", "gcc", "tar"]) {
        return;
    }
    let Some(tarball) = common::hello_tarball(TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "key");
    let proj = tmp.path().join("hello");
    common::unpack_hello(&tarball, &proj);
    let out = output(
        Command::new("./configure")
            .current_dir(&proj)
            .env("LC_ALL", "C"),
    );
    assert!(out.status.success(), "./configure: {}", show(&out));
    let link = record_make_j2(&proj, tmp.path(), &key);

    let (out, took) = run_show(&["--verification-keys", public.to_str().unwrap()], &link);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let t = text(&out);
    println!("show (summary) of hello's make -j2: {took:?}\n{t}");
    assert!(t.lines().count() < 80, "{} lines:\n{t}", t.lines().count());
    assert!(t.contains("step:        build\n"), "{t}");
    assert!(t.contains("signature verified with"), "{t}");
    assert!(t.contains("recording:   precise, complete"), "{t}");
    let (j, runs) = summary_matches_json_files_and_tree(&t, &link);
    assert!(
        j["products"].as_object().unwrap().contains_key("hello"),
        "{t}"
    );
    assert!(
        j["materials"]
            .as_object()
            .unwrap()
            .contains_key("src/hello.c"),
        "{t}"
    );
    assert!(runs.get("gcc").is_some_and(|n| *n > 0), "{runs:?}");
}
