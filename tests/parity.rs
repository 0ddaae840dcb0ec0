//! Parity of `tracelink run` snapshot mode with in-toto-run 3.1.0.
//!
//! Both tools record the same tricky tree with the same flags, each into its
//! own metadata directory outside the tree, and the results are compared:
//! first `signed.materials` and `signed.products` (with a readable list of
//! the paths that differ), then the whole link files byte for byte (tracelink
//! writes in-toto-run's exact file layout, so without `-s` they are identical;
//! on a difference the failure shows `diff -u` of the two files).
//!
//! Known deliberate differences are asserted separately at the end: tracelink
//! refuses (exit 125, an error naming the path, no link) non-UTF-8 file names,
//! symlink loops and unreadable directories, where in-toto-run crashes, loops
//! or skips.
//!
//! Needs the in-toto 3.1.0 venv (`TRACELINK_INTOTO_VENV`, see tests/common).

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const STEP: &str = "parity";
/// in-toto-run's default of 10 s is too short on a loaded test machine.
const INTOTO_TIMEOUT: &str = "120";

// ---------------------------------------------------------------------------
// The tree

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
}

fn mkfifo(path: &Path) {
    let out = common::output(Command::new("mkfifo").arg(path));
    assert!(
        out.status.success(),
        "mkfifo {path:?}: {}",
        common::show(&out)
    );
}

/// Builds the tricky tree under `root` (which must exist). Everything is
/// relative to `root`, so two calls build identical trees.
fn build_tree(root: &Path) {
    // Plain files and awkward names.
    write(root, "a.txt", b"alpha\n");
    write(root, "keep.txt", b"keep at the root\n");
    write(root, "with space.txt", b"space\n");
    write(root, "dq\"uote.txt", b"double quote\n");
    write(root, "sq'uote.txt", b"single quote\n");
    write(root, "new\nline.txt", b"newline in the name\n");
    write(root, "tab\there.txt", b"tab in the name\n");
    write(root, "ctl\u{1}.txt", b"control character in the name\n");
    write(root, "del\u{7f}.txt", b"DEL in the name\n");
    write(root, "cafe\u{301}.txt", b"NFD name\n");
    write(root, "caf\u{e9}.txt", b"NFC name\n");
    write(root, "\u{1F600}.txt", b"astral plane name\n");
    write(
        root,
        "\u{65e5}\u{672c}/\u{30d5}\u{30a1}\u{30a4}\u{30eb}.txt",
        b"cjk\n",
    );
    write(root, "back\\slash.txt", b"backslash in the name\n");
    write(root, "empty", b"");
    write(root, "notalink.lin", b"not excluded\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(root, "big.bin", &big);
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::create_dir_all(root.join("nested/empty-sub")).unwrap();

    // Hidden files and directories.
    write(root, ".hidden", b"hidden file\n");
    write(root, ".hdir/inside.txt", b"in a hidden dir\n");
    write(root, ".hdir/.deeper/x", b"deeper\n");
    write(root, ".gitignore", b"*.o\n");

    // What the default excludes (`*.link*`, `.git`, `*.pyc`, `*~`) drop.
    write(root, ".git/HEAD", b"ref: refs/heads/main\n");
    write(root, ".git/objects/ab/cdef0123", b"object\n");
    write(root, "nested/.git/config", b"[core]\n");
    write(root, "mod.pyc", b"bytecode\n");
    write(root, "nested/deep/mod.pyc", b"bytecode\n");
    write(root, "foo~", b"backup\n");
    write(root, "x.link", b"{}\n");
    write(root, "y.link-unfinished", b"{}\n");
    write(root, "dir.link/inner.txt", b"under a dir named *.link\n");

    // Nested directories.
    write(root, "nested/n1.txt", b"n1\n");
    write(root, "nested/keep.txt", b"keep in nested\n");
    write(root, "nested/deep/d.txt", b"d\n");
    write(root, "nested/deep/e/f.txt", b"f\n");
    write(root, "nested/deep/e/g h.txt", b"g h\n");
    write(root, "sub/keep.txt", b"keep in sub\n");
    write(root, "sub/s.txt", b"s\n");
    write(root, "sub/s.dat", b"s dat\n");
    write(root, "sub/inner/s2.txt", b"s2\n");

    // A hard link is simply a second file.
    fs::hard_link(root.join("a.txt"), root.join("hard-link")).unwrap();

    // Symlinks: to files, to directories (followed by in-toto-run), chains,
    // relative ones from a subdirectory, dangling ones, one to a fifo.
    symlink("a.txt", root.join("link-to-file")).unwrap();
    symlink("link-to-file", root.join("link-chain")).unwrap();
    symlink("nested", root.join("link-to-dir")).unwrap();
    symlink("nested/deep", root.join("link-to-deep")).unwrap();
    symlink("empty-dir", root.join("link-to-empty-dir")).unwrap();
    symlink("../a.txt", root.join("nested/up-link")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    symlink("nested/nowhere", root.join("nested-dangling")).unwrap();

    // Special files: never artifacts.
    mkfifo(&root.join("fifo"));
    mkfifo(&root.join("nested/fifo2"));
    symlink("fifo", root.join("link-to-fifo")).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    drop(sock);
}

// ---------------------------------------------------------------------------
// Running both tools

/// One tool's run: its output and the link file it wrote (name, bytes).
struct Recorded {
    out: Output,
    link: Option<(String, Vec<u8>)>,
    other_files: Vec<String>,
}

fn collect(out: Output, md: &Path) -> Recorded {
    let mut link = None;
    let mut other_files = Vec::new();
    for entry in fs::read_dir(md).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{STEP}.")) && name.ends_with(".link") && link.is_none() {
            link = Some((name, fs::read(entry.path()).unwrap()));
        } else {
            other_files.push(name);
        }
    }
    Recorded {
        out,
        link,
        other_files,
    }
}

/// Runs in-toto-run in `cwd` with `args` (placed before `--`) and `command`
/// (after `--`; empty for `-x`), writing to a fresh metadata directory.
fn run_intoto(venv: &Path, key: &Path, cwd: &Path, args: &[String], command: &[&str]) -> Recorded {
    let md = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(venv.join("bin/in-toto-run"));
    cmd.current_dir(cwd)
        .args(["-n", STEP, "--signing-key"])
        .arg(key)
        .arg("-d")
        .arg(md.path())
        .args(["--run-timeout", INTOTO_TIMEOUT])
        .args(args);
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    let out = common::output(&mut cmd);
    collect(out, md.path())
}

fn run_tracelink(key: &Path, cwd: &Path, args: &[String], command: &[&str]) -> Recorded {
    let md = tempfile::tempdir().unwrap();
    let mut cmd = common::tracelink();
    cmd.current_dir(cwd)
        .args(["run", "-n", STEP, "--signing-key"])
        .arg(key)
        .arg("-d")
        .arg(md.path())
        .args(args);
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    let out = common::output(&mut cmd);
    collect(out, md.path())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn link_json(bytes: &[u8], who: &str) -> Value {
    let v: Value =
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{who}'s link is not JSON: {e}"));
    if v.get("payload").is_some() {
        // DSSE: the link object is the base64 payload.
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(v["payload"].as_str().expect("payload string"))
            .expect("payload base64");
        let link: Value = serde_json::from_slice(&payload).expect("payload JSON");
        serde_json::json!({ "signed": link })
    } else {
        v
    }
}

/// Path-by-path differences of two artifact maps.
fn map_diff(what: &str, intoto: &Value, ours: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let a = intoto.as_object().unwrap_or(&empty);
    let b = ours.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    for (path, digest) in a {
        match b.get(path) {
            None => out.push(format!("{what}: {path:?} only in in-toto-run ({digest})")),
            Some(d) if d != digest => out.push(format!(
                "{what}: {path:?} digest differs: in-toto-run {digest}, tracelink {d}"
            )),
            _ => {}
        }
    }
    for (path, digest) in b {
        if !a.contains_key(path) {
            out.push(format!("{what}: {path:?} only in tracelink ({digest})"));
        }
    }
    out
}

fn unified_diff(a: &[u8], b: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (
        dir.path().join("in-toto-run.link"),
        dir.path().join("tracelink.link"),
    );
    fs::write(&pa, a).unwrap();
    fs::write(&pb, b).unwrap();
    let out = Command::new("diff").arg("-u").arg(&pa).arg(&pb).output();
    match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => format!(
            "--- in-toto-run\n{}\n--- tracelink\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        ),
    }
}

/// Compares a pair of runs; returns the link (parsed) when they agree.
fn compare(case: &str, intoto: &Recorded, ours: &Recorded) -> Value {
    let mut problems = Vec::new();
    if intoto.out.status.code() != ours.out.status.code() {
        problems.push(format!(
            "exit status: in-toto-run {:?}, tracelink {:?}",
            intoto.out.status.code(),
            ours.out.status.code()
        ));
    }
    if !ours.other_files.is_empty() || !intoto.other_files.is_empty() {
        problems.push(format!(
            "unexpected files in the metadata directories: in-toto-run {:?}, tracelink {:?}",
            intoto.other_files, ours.other_files
        ));
    }
    let (Some((iname, ibytes)), Some((oname, obytes))) = (&intoto.link, &ours.link) else {
        panic!(
            "[{case}] a link is missing (in-toto-run wrote {:?}, tracelink wrote {:?})\n\
             {}\n=== in-toto-run\n{}\n=== tracelink\n{}",
            intoto.link.as_ref().map(|l| &l.0),
            ours.link.as_ref().map(|l| &l.0),
            problems.join("\n"),
            common::show(&intoto.out),
            common::show(&ours.out)
        );
    };
    if iname != oname {
        problems.push(format!("file name: in-toto-run {iname}, tracelink {oname}"));
    }
    let ij = link_json(ibytes, "in-toto-run");
    let oj = link_json(obytes, "tracelink");
    for what in ["materials", "products"] {
        problems.extend(map_diff(what, &ij["signed"][what], &oj["signed"][what]));
    }
    for what in ["_type", "name", "command", "byproducts", "environment"] {
        if ij["signed"][what] != oj["signed"][what] {
            problems.push(format!(
                "signed.{what}: in-toto-run {}, tracelink {}",
                ij["signed"][what], oj["signed"][what]
            ));
        }
    }
    if ibytes != obytes {
        problems.push(format!(
            "link files differ byte for byte:\n{}",
            unified_diff(ibytes, obytes)
        ));
    }
    assert!(
        problems.is_empty(),
        "[{case}] tracelink disagrees with in-toto-run:\n{}\n=== in-toto-run\n{}\n=== tracelink\n{}",
        problems.join("\n"),
        common::show(&intoto.out),
        common::show(&ours.out)
    );
    ij
}

/// Both tools on the same tree in the same directory (commands that do not
/// change the tree).
fn same_tree(
    case: &str,
    venv: &Path,
    key: &Path,
    cwd: &Path,
    args: &[String],
    command: &[&str],
) -> Value {
    let intoto = run_intoto(venv, key, cwd, args, command);
    let ours = run_tracelink(key, cwd, args, command);
    compare(case, &intoto, &ours)
}

struct Setup {
    _dir: tempfile::TempDir,
    base: PathBuf,
    tree: PathBuf,
    key: PathBuf,
}

/// A temporary directory holding the key and `tree/`, the tricky tree.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let tree = base.join("tree");
    fs::create_dir(&tree).unwrap();
    build_tree(&tree);
    let key = common::rfc8032_key(&base);
    Setup {
        _dir: dir,
        base,
        tree,
        key,
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------
// Variants compared against in-toto-run

#[test]
fn parity_default_excludes() {
    let Some(venv) = common::intoto_venv("parity_default_excludes") else {
        return;
    };
    let s = setup();
    let link = same_tree(
        "default excludes, -m . -p .",
        &venv,
        &s.key,
        &s.tree,
        &strings(&["-m", ".", "-p", "."]),
        &["true"],
    );
    // Sanity checks on what in-toto-run recorded, so the tree really
    // exercises the cases it is meant to.
    let products = keys(&link["signed"]["products"]);
    for expected in [
        "a.txt",
        "back/slash.txt",
        "cafe\u{301}.txt",
        "caf\u{e9}.txt",
        "new\nline.txt",
        "link-to-file",
        "link-chain",
        "link-to-dir/deep/e/f.txt",
        "nested/up-link",
        "hard-link",
        "empty",
        ".hidden",
        ".hdir/.deeper/x",
        ".gitignore",
    ] {
        assert!(
            products.contains(&expected.to_string()),
            "{expected:?} not in {products:?}"
        );
    }
    for absent in [
        ".git/HEAD",
        "nested/.git/config",
        "mod.pyc",
        "foo~",
        "x.link",
        "dir.link/inner.txt",
        "fifo",
        "sock",
        "dangling",
        "link-to-fifo",
    ] {
        assert!(
            !products.contains(&absent.to_string()),
            "{absent:?} in {products:?}"
        );
    }
    assert_eq!(link["signed"]["materials"], link["signed"]["products"]);
}

#[test]
fn parity_custom_excludes() {
    let Some(venv) = common::intoto_venv("parity_custom_excludes") else {
        return;
    };
    let s = setup();
    let link = same_tree(
        "--exclude sub/ *.txt !keep.txt",
        &venv,
        &s.key,
        &s.tree,
        &strings(&[
            "--exclude",
            "sub/",
            "*.txt",
            "!keep.txt",
            "-m",
            ".",
            "-p",
            ".",
        ]),
        &["true"],
    );
    // The defaults are replaced: .git and *.pyc are recorded now.
    let products = keys(&link["signed"]["products"]);
    assert!(products.contains(&".git/HEAD".to_string()), "{products:?}");
    assert!(products.contains(&"mod.pyc".to_string()), "{products:?}");
    assert!(!products.contains(&"a.txt".to_string()), "{products:?}");
}

#[test]
fn parity_excluded_dir_is_pruned() {
    let Some(venv) = common::intoto_venv("parity_excluded_dir_is_pruned") else {
        return;
    };
    let s = setup();
    // `nested` excludes the directory itself, so in-toto-run never walks into
    // it and `!nested/keep.txt` cannot bring the file back; link-to-dir (a
    // symlink to nested) is walked under its own name.
    same_tree(
        "--exclude nested !nested/keep.txt link-to-deep/e .h*",
        &venv,
        &s.key,
        &s.tree,
        &strings(&[
            "--exclude",
            "nested",
            "!nested/keep.txt",
            "link-to-deep/e",
            ".h*",
            "-m",
            ".",
            "-p",
            ".",
        ]),
        &["true"],
    );
}

#[test]
fn parity_exclude_patterns_on_symlinked_dirs() {
    let Some(venv) = common::intoto_venv("parity_exclude_patterns_on_symlinked_dirs") else {
        return;
    };
    let s = setup();
    same_tree(
        "--exclude link-to-dir/*.txt **/e/ *.bin",
        &venv,
        &s.key,
        &s.tree,
        &strings(&[
            "--exclude",
            "link-to-dir/*.txt",
            "**/e/",
            "*.bin",
            "-m",
            ".",
            "-p",
            ".",
        ]),
        &["true"],
    );
}

#[test]
fn parity_base_path_and_lstrip_paths() {
    let Some(venv) = common::intoto_venv("parity_base_path_and_lstrip_paths") else {
        return;
    };
    let s = setup();
    // From the parent directory, with the tree as --base-path.
    same_tree(
        "--base-path tree --lstrip-paths nested/deep/ with -m . -p nested a.txt",
        &venv,
        &s.key,
        &s.base,
        &strings(&[
            "--base-path",
            "tree",
            "--lstrip-paths",
            "nested/deep/",
            "with",
            "-m",
            ".",
            "-p",
            "nested",
            "a.txt",
        ]),
        &["true"],
    );
    // Absolute --base-path, from an unrelated directory.
    let elsewhere = tempfile::tempdir().unwrap();
    same_tree(
        "--base-path ABS/tree/nested --lstrip-paths deep/e/ -m . -p deep",
        &venv,
        &s.key,
        elsewhere.path(),
        &strings(&[
            "--base-path",
            s.tree.join("nested").to_str().unwrap(),
            "--lstrip-paths",
            "deep/e/",
            "-m",
            ".",
            "-p",
            "deep",
        ]),
        &["true"],
    );
}

#[test]
fn parity_lstrip_collision_fails_in_both() {
    let Some(venv) = common::intoto_venv("parity_lstrip_collision_fails_in_both") else {
        return;
    };
    let s = setup();
    // nested/keep.txt stripped to keep.txt collides with the root keep.txt:
    // in-toto-run raises PrefixError and writes no link.
    let args = strings(&["--lstrip-paths", "nested/", "-m", ".", "-x"]);
    let intoto = run_intoto(&venv, &s.key, &s.tree, &args, &[]);
    let ours = run_tracelink(&s.key, &s.tree, &args, &[]);
    assert!(
        !intoto.out.status.success() && intoto.link.is_none(),
        "in-toto-run was expected to fail with PrefixError:\n{}",
        common::show(&intoto.out)
    );
    assert!(
        String::from_utf8_lossy(&intoto.out.stderr).contains("PrefixError"),
        "{}",
        common::show(&intoto.out)
    );
    assert_eq!(
        ours.out.status.code(),
        Some(125),
        "tracelink must refuse the colliding --lstrip-paths:\n{}",
        common::show(&ours.out)
    );
    assert!(ours.link.is_none(), "tracelink wrote a link");
    assert!(
        String::from_utf8_lossy(&ours.out.stderr).contains("keep.txt"),
        "tracelink's error should name the colliding path:\n{}",
        common::show(&ours.out)
    );
}

#[test]
fn parity_path_mixtures() {
    let Some(venv) = common::intoto_venv("parity_path_mixtures") else {
        return;
    };
    let s = setup();
    // Files and directories mixed, duplicates and overlaps, ./ and trailing
    // slashes, `..` (normalized lexically by in-toto-run: link-to-deep/../a.txt
    // is a.txt of the root), paths that do not exist, special files and
    // excluded paths given explicitly.
    same_tree(
        "-m mixture -p . nested",
        &venv,
        &s.key,
        &s.tree,
        &strings(&[
            "-m",
            "a.txt",
            "nested",
            "./sub/",
            "sub/inner/../s.dat",
            "link-to-file",
            "link-to-dir",
            "link-to-deep/../a.txt",
            "does-not-exist",
            "fifo",
            "dangling",
            "x.link",
            "mod.pyc",
            ".git",
            "nested/deep/e/g h.txt",
            "-p",
            ".",
            "nested",
        ]),
        &["true"],
    );
    same_tree(
        "-m . -p link-to-dir/ nested/deep//e empty-dir",
        &venv,
        &s.key,
        &s.tree,
        &strings(&[
            "-m",
            ".",
            "-p",
            "link-to-dir/",
            "nested/deep//e",
            "empty-dir",
        ]),
        &["true"],
    );
}

#[test]
fn parity_absolute_paths() {
    let Some(venv) = common::intoto_venv("parity_absolute_paths") else {
        return;
    };
    let s = setup();
    let abs = |rel: &str| s.tree.join(rel).to_str().unwrap().to_owned();
    let tree = s.tree.to_str().unwrap().to_owned();
    same_tree(
        "absolute -m/-p",
        &venv,
        &s.key,
        &s.tree,
        &[
            "-m".to_string(),
            tree.clone(),
            "-p".to_string(),
            abs("a.txt"),
            abs("nested"),
            abs("link-to-dir"),
        ],
        &["true"],
    );
    same_tree(
        "absolute -m/-p with --lstrip-paths ABS/tree/",
        &venv,
        &s.key,
        &s.base,
        &[
            "--lstrip-paths".to_string(),
            format!("{tree}/"),
            "-m".to_string(),
            tree.clone(),
            "-p".to_string(),
            abs("nested"),
            "tree/sub".to_string(),
        ],
        &["true"],
    );
    same_tree(
        "absolute paths with --exclude",
        &venv,
        &s.key,
        &s.base,
        &[
            "--exclude".to_string(),
            "nested/".to_string(),
            "*.txt".to_string(),
            "-m".to_string(),
            tree.clone(),
            "-p".to_string(),
            tree,
        ],
        &["true"],
    );
}

#[test]
fn parity_symlinks_leaving_the_tree() {
    let Some(venv) = common::intoto_venv("parity_symlinks_leaving_the_tree") else {
        return;
    };
    let s = setup();
    let outside = s.base.join("outside");
    write(&outside, "o.txt", b"outside file\n");
    write(&outside, "odir/p.txt", b"outside dir\n");
    symlink(outside.join("o.txt"), s.tree.join("to-outside-file")).unwrap();
    symlink(outside.join("odir"), s.tree.join("to-outside-dir")).unwrap();
    symlink("../outside/o.txt", s.tree.join("relative-outside")).unwrap();
    same_tree(
        "symlinks to a file and a dir outside the tree",
        &venv,
        &s.key,
        &s.tree,
        &strings(&["-m", ".", "-p", "."]),
        &["true"],
    );
}

#[test]
fn parity_command_changes_the_tree() {
    let Some(venv) = common::intoto_venv("parity_command_changes_the_tree") else {
        return;
    };
    // The command changes the tree, so each tool gets its own identical copy
    // (same relative paths, same contents).
    let a = setup();
    let b = setup();
    let script = "echo new > new.txt && echo more >> a.txt && rm 'with space.txt' \
                  && mkdir -p made/deeper && printf 'x' > made/deeper/y && ln -s made made-link \
                  && rm link-to-file && exit 3";
    let args = strings(&["-m", ".", "-p", "."]);
    let intoto = run_intoto(&venv, &a.key, &a.tree, &args, &["sh", "-c", script]);
    let ours = run_tracelink(&b.key, &b.tree, &args, &["sh", "-c", script]);
    let link = compare("command changes the tree, exits 3", &intoto, &ours);
    assert_eq!(ours.out.status.code(), Some(3));
    assert_eq!(link["signed"]["byproducts"]["return-value"], 3);
    let products = keys(&link["signed"]["products"]);
    assert!(
        products.contains(&"made-link/deeper/y".to_string()),
        "{products:?}"
    );
}

#[test]
fn parity_no_command() {
    let Some(venv) = common::intoto_venv("parity_no_command") else {
        return;
    };
    let s = setup();
    let link = same_tree(
        "-x -p .",
        &venv,
        &s.key,
        &s.tree,
        &strings(&["-x", "-p", "."]),
        &[],
    );
    assert_eq!(link["signed"]["command"], serde_json::json!([]));
    assert_eq!(link["signed"]["byproducts"], serde_json::json!({}));
}

#[test]
fn parity_dsse() {
    let Some(venv) = common::intoto_venv("parity_dsse") else {
        return;
    };
    let s = setup();
    same_tree(
        "--use-dsse -m . -p .",
        &venv,
        &s.key,
        &s.tree,
        &strings(&["--use-dsse", "-m", ".", "-p", "."]),
        &["true"],
    );
}

#[test]
fn parity_backslash_collides_with_slash() {
    let Some(venv) = common::intoto_venv("parity_backslash_collides_with_slash") else {
        return;
    };
    // in-toto-run turns `\` into `/` in recorded names, so the file `a\b`
    // and the file `b` in directory `a` get the same name; the later one in
    // os.walk's top-down order (a/b) wins.
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write(&tree, "a\\b", b"backslash\n");
    write(&tree, "a/b", b"slash\n");
    write(&tree, "c/d\\e", b"backslash below\n");
    let key = common::rfc8032_key(dir.path());
    let link = same_tree(
        "a\\b and a/b",
        &venv,
        &key,
        &tree,
        &strings(&["-m", ".", "-p", "."]),
        &["true"],
    );
    assert_eq!(
        keys(&link["signed"]["products"]),
        ["a/b".to_string(), "c/d/e".to_string()]
    );
}

// ---------------------------------------------------------------------------
// Deliberate differences: tracelink refuses, in-toto-run does something else.

fn assert_refused(out: &Output, md_link: &Option<(String, Vec<u8>)>, culprit: &str) {
    assert_eq!(
        out.status.code(),
        Some(125),
        "tracelink must refuse with exit 125:\n{}",
        common::show(out)
    );
    assert!(
        md_link.is_none(),
        "tracelink wrote a link although it refused"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(culprit),
        "tracelink's error must name {culprit:?}:\n{}",
        common::show(out)
    );
}

#[test]
fn tracelink_refuses_non_utf8_names() {
    use std::os::unix::ffi::OsStrExt;
    let Some(venv) = common::intoto_venv("tracelink_refuses_non_utf8_names") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write(&tree, "ok.txt", b"ok\n");
    fs::create_dir_all(tree.join("sub")).unwrap();
    let bad = tree
        .join("sub")
        .join(std::ffi::OsStr::from_bytes(b"bad\xff.txt"));
    fs::write(&bad, b"latin-1 name\n").unwrap();
    let key = common::rfc8032_key(dir.path());
    let args = strings(&["-m", ".", "-p", "."]);

    let ours = run_tracelink(&key, &tree, &args, &["true"]);
    // The path is named with its bytes escaped somehow; "sub/bad" is in it
    // whatever the escape convention.
    assert_refused(&ours.out, &ours.link, "sub/bad");

    // in-toto-run crashes on the surrogate-escaped name (no link).
    let intoto = run_intoto(&venv, &key, &tree, &args, &["true"]);
    assert!(
        !intoto.out.status.success() && intoto.link.is_none(),
        "in-toto-run was expected to fail on a non-UTF-8 name:\n{}",
        common::show(&intoto.out)
    );
}

#[test]
fn tracelink_refuses_symlink_loops() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write(&tree, "ok.txt", b"ok\n");
    write(&tree, "sub/x.txt", b"x\n");
    // in-toto-run follows directory symlinks: sub/back/sub/back/... until the
    // kernel gives up (ELOOP), recording every level. tracelink refuses.
    symlink("..", tree.join("sub/back")).unwrap();
    let key = common::rfc8032_key(dir.path());
    let ours = run_tracelink(&key, &tree, &strings(&["-m", ".", "-p", "."]), &["true"]);
    assert_refused(&ours.out, &ours.link, "sub/back");

    // A loop of two directory symlinks.
    let tree2 = dir.path().join("tree2");
    write(&tree2, "p/q/z.txt", b"z\n");
    symlink("../../p", tree2.join("p/q/again")).unwrap();
    let ours = run_tracelink(&key, &tree2, &strings(&["-x", "-p", "."]), &[]);
    assert_refused(&ours.out, &ours.link, "p/q/again");
}

#[test]
fn tracelink_refuses_unreadable_dirs() {
    use std::os::unix::fs::PermissionsExt;
    // As root, permissions do not apply: then tracelink runs as the
    // unprivileged test user.
    let test = "tracelink_refuses_unreadable_dirs";
    let Some(runner) = common::unprivileged_runner(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let md = dir.path().join("md");
    write(&tree, "ok.txt", b"ok\n");
    write(&tree, "locked/secret.txt", b"secret\n");
    fs::create_dir(&md).unwrap();
    let key = common::rfc8032_key(dir.path());
    let bin = runner.prepare(dir.path());
    fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = runner.command(&bin);
    cmd.current_dir(&tree)
        .args(["run", "-n", STEP, "--signing-key"])
        .arg(&key)
        .arg("-d")
        .arg(&md)
        .args(["-m", ".", "-p", ".", "--", "true"]);
    let out = common::output(&mut cmd);
    fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    let ours = collect(out, &md);
    assert_refused(&ours.out, &ours.link, "locked");
}

#[test]
fn parity_odd_path_spellings() {
    let Some(venv) = common::intoto_venv("parity_odd_path_spellings") else {
        return;
    };
    let s = setup();
    let tree = s.tree.to_str().unwrap().to_owned();
    // in-toto-run normalizes each -m/-p path with os.path.normpath, which is
    // lexical: "" and "./" are ".", "../tree/x" stays as it is, and POSIX
    // keeps exactly two leading slashes ("//abs/x").
    same_tree(
        "odd spellings: '' ./ ../tree/... //ABS",
        &venv,
        &s.key,
        &s.tree,
        &[
            "-m".to_string(),
            String::new(),
            "../tree/nested/deep".to_string(),
            format!("/{tree}/sub"),
            format!("///{tree}/a.txt"),
            "-p".to_string(),
            "./".to_string(),
            format!("{tree}/./nested/../sub/"),
            "nested/./deep/../n1.txt".to_string(),
        ],
        &["true"],
    );
}
