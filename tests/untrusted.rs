//! Untrusted input (docs/threat-model.md), against the real binary.
//!
//! 1. Crafted names. A real precise link records files whose names hold
//!    terminal controls: ESC sequences that erase and move lines, the
//!    one-byte CSI U+009B and the bidi override U+202E. `show`, `diff`,
//!    `verify` (a layout whose rules fail on those names) and `layout draft`
//!    (whose suggested checkout command lists them) must print none of those
//!    characters to a terminal, and a name must not break a line of the
//!    text; with `--json` the output decodes to the exact names. The
//!    command `layout draft` suggests must still be a correct shell command:
//!    bash reads it back to the exact names.
//! 2. Hostile files in place of the trace beside a link (a FIFO, a symlink to
//!    a valid trace elsewhere, a symlink to /dev/zero, a 2 GiB sparse file)
//!    and in place of the link itself: `show` (and `verify`, `draft` for
//!    link files) fails within a second with an error naming the file, never
//!    hangs, never allocates the file's size. Every hostile case runs under
//!    a 1 GiB address-space limit, so a reader that allocates what the file
//!    claims dies instead of passing slowly.
//!
//! 3. Every string field of a crafted link and trace (step, command,
//!    digests, environment, the trace's paths, argv, notes, probes,
//!    stragglers) and of a layout (step name, patterns) holds a line feed and
//!    terminal controls: `show`, `diff` and `verify` print as many lines as
//!    for harmless values, and no control character.
//!
//! Recording needs root and /dev/fuse (SKIP otherwise, FAIL under CI); part
//! 3 needs neither.
//! `TRACELINK_UNDER_TEST=/path/to/tracelink` runs the checks against another
//! build (to see them fail on the code before a fix).

mod common;

use common::{output, show};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tracelink::keys::{KeyIdFormat, PrivateKey, PublicKey};
use tracelink::link::{canonical, pyjson};
use tracelink::verify::draft::escape_pattern;

/// Line-erasing ESC sequences and a carriage return: on a terminal the
/// listing would show "  README.md" where `id_rsa` was.
const ESC_NAME: &str = "id_rsa\u{1b}[2K\u{1b}[1A\u{1b}[2K\r  README.md";
/// U+009B is a one-byte CSI (C1): `CSI 2 J` clears the screen.
const CSI_NAME: &str = "csi\u{9b}2Jclear";
/// U+202E turns the rest of the line around: shows as `evilhs.txt`.
const BIDI_NAME: &str = "evil\u{202e}txt.sh";
const NAMES: [&str; 3] = [ESC_NAME, CSI_NAME, BIDI_NAME];

/// The tracelink binary under test.
fn tracelink() -> Command {
    match std::env::var_os("TRACELINK_UNDER_TEST") {
        Some(bin) => Command::new(bin),
        None => common::tracelink(),
    }
}

/// Panics if `bytes` hold ESC, U+009B (UTF-8 c2 9b) or U+202E (e2 80 ae).
fn assert_no_controls(what: &str, bytes: &[u8], out: &Output) {
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    for (needle, name) in [
        (&b"\x1b"[..], "ESC (0x1b)"),
        (&b"\xc2\x9b"[..], "U+009B (c2 9b)"),
        (&b"\xe2\x80\xae"[..], "U+202E (e2 80 ae)"),
        (&b"\r"[..], "CR (0x0d)"),
    ] {
        if let Some(at) = find(needle) {
            panic!(
                "{what} passes {name} through to the terminal at byte {at}:\n{}",
                show(out)
            );
        }
    }
}

/// Neither stdout nor stderr carries a control character.
fn assert_clean(what: &str, out: &Output) {
    assert_no_controls(&format!("{what} (stdout)"), &out.stdout, out);
    assert_no_controls(&format!("{what} (stderr)"), &out.stderr, out);
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
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

/// Two precise recordings of a step that reads the crafted names and writes
/// `<name>.out` for each; the second after one input changed.
struct Recorded {
    _dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
    /// Link directories of the first and second run.
    a: PathBuf,
    b: PathBuf,
}

const SCRIPT: &str = r#"for f in "$@"; do cat -- "$f" > "$f.out"; done"#;

fn record(tree: &Path, key: &Path, links: &Path) -> PathBuf {
    fs::create_dir_all(links).unwrap();
    let out = output(
        tracelink()
            .current_dir(tree)
            .args(["run", "-n", "build", "-k"])
            .arg(key)
            .arg("-d")
            .arg(links)
            .args(["--", "sh", "-c", SCRIPT, "sh"])
            .args(NAMES),
    );
    assert!(out.status.success(), "tracelink run: {}", show(&out));
    link_in(links, "build")
}

/// The shared recordings, made once (None: SKIP).
fn recorded() -> Option<&'static Recorded> {
    static RECORDED: OnceLock<Option<Recorded>> = OnceLock::new();
    RECORDED
        .get_or_init(|| {
            if common::precise_unavailable("untrusted", &["sh", "cat"]) {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let tree = dir.path().join("tree");
            fs::create_dir_all(&tree).unwrap();
            for (i, name) in NAMES.iter().enumerate() {
                fs::write(tree.join(name), format!("file {i}\n")).unwrap();
            }
            let key = dir.path().join("key");
            let out = output(tracelink().arg("keygen").arg(&key));
            assert!(out.status.success(), "keygen: {}", show(&out));
            let a = dir.path().join("a");
            record(&tree, &key, &a);
            fs::write(tree.join(CSI_NAME), "changed\n").unwrap();
            let b = dir.path().join("b");
            record(&tree, &key, &b);
            Some(Recorded {
                public: dir.path().join("key.pub"),
                key,
                a,
                b,
                _dir: dir,
            })
        })
        .as_ref()
}

fn run(cmd: &mut Command) -> Output {
    output(cmd.stdin(Stdio::null()))
}

#[test]
fn show_escapes_crafted_names_and_json_keeps_them_exact() {
    let Some(r) = recorded() else { return };
    let link = link_in(&r.a, "build");
    let out = run(tracelink().arg("show").arg(&link));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_clean("show (summary)", &out);
    for pattern in ["*", "*id_rsa*"] {
        let out = run(tracelink()
            .arg("show")
            .arg(&link)
            .args(["--process", pattern]));
        assert_eq!(code(&out), 0, "{}", show(&out));
        assert_clean("show --process", &out);
    }
    let out = run(tracelink()
        .arg("show")
        .arg(&link)
        .args(["--files", "--tree"])
        .arg("--verification-keys")
        .arg(&r.public));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_clean("show", &out);
    let text = stdout(&out);
    // Each name escaped on its own line, as Python's str.isprintable() has it.
    for escaped in [
        r"id_rsa\x1b[2K\x1b[1A\x1b[2K\x0d  README.md",
        r"csi\x9b2Jclear",
        r"evil\u202etxt.sh",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {escaped}  sha256:"))),
            "no material line for {escaped}:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {escaped}.out  sha256:"))),
            "no product line for {escaped}.out:\n{text}"
        );
    }
    assert!(text.contains("materials (3):"), "{text}");

    let out = run(tracelink().arg("show").arg(&link).arg("--json"));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_no_controls("show --json (stderr)", &out.stderr, &out);
    let v = json_of(&out);
    for name in NAMES {
        assert!(v["materials"].get(name).is_some(), "{name:?} in {v}");
        assert!(
            v["products"].get(format!("{name}.out")).is_some(),
            "{name:?}.out in {v}"
        );
    }
    let command: Vec<&str> = v["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(command[4..], NAMES);
}

#[test]
fn diff_escapes_crafted_names_and_json_keeps_them_exact() {
    let Some(r) = recorded() else { return };
    let (a, b) = (link_in(&r.a, "build"), link_in(&r.b, "build"));
    let out = run(tracelink().arg("diff").arg(&a).arg(&b));
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_clean("diff", &out);
    let text = stdout(&out);
    assert!(text.contains(r"  ~ csi\x9b2Jclear"), "{text}");
    assert!(text.contains(r"  ~ csi\x9b2Jclear.out"), "{text}");

    let out = run(tracelink().arg("diff").arg(&a).arg(&b).arg("--json"));
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_no_controls("diff --json (stderr)", &out.stderr, &out);
    let v = json_of(&out);
    assert_eq!(v["materials"]["changed"][0]["path"], json!(CSI_NAME), "{v}");
    assert_eq!(
        v["products"]["changed"][0]["path"],
        json!(format!("{CSI_NAME}.out")),
        "{v}"
    );
}

/// A layout for step `build` (threshold 1, the recorded key) with these
/// material rules, signed by a fixed owner key; returns the owner's public key file.
fn layout(dir: &Path, public: &Path, materials: Value) -> PathBuf {
    layout_for(dir, public, "build", materials)
}

fn layout_for(dir: &Path, public: &Path, step: &str, materials: Value) -> PathBuf {
    let owner = PrivateKey::from_seed(&[7; 32]);
    let functionary = PublicKey::load(public).unwrap();
    let keyid = functionary.keyid(KeyIdFormat::Python);
    let mut key = functionary.key_dict(KeyIdFormat::Python);
    key["keyid"] = json!(keyid);
    let signed = json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": {keyid.clone(): key},
        "steps": [{"_type": "step", "name": step, "pubkeys": [keyid], "expected_command": [step],
                   "threshold": 1, "expected_materials": materials, "expected_products": []}],
        "inspect": [],
    });
    let sig = hex::encode(owner.sign(&canonical::encode(&signed).unwrap()));
    let doc = json!({
        "signatures": [{"keyid": owner.keyid(KeyIdFormat::Python), "sig": sig}],
        "signed": signed,
    });
    fs::write(dir.join("root.layout"), pyjson::dumps(&doc, Some(1))).unwrap();
    let owner_pub = dir.join("owner.pub");
    fs::write(&owner_pub, owner.public().to_spki_pem()).unwrap();
    owner_pub
}

fn verify(dir: &Path, link_dir: &Path, json: bool) -> Output {
    let mut cmd = tracelink();
    cmd.current_dir(dir)
        .args(["verify", "--layout", "root.layout", "--verification-keys"])
        .arg("owner.pub")
        .arg("--link-dir")
        .arg(link_dir);
    if json {
        cmd.arg("--json");
    }
    run(&mut cmd)
}

#[test]
fn verify_escapes_crafted_names_in_rules_and_failures() {
    let Some(r) = recorded() else { return };
    let dir = tempfile::tempdir().unwrap();
    // ALLOW consumes the ESC name (listed in the report), DISALLOW fails on
    // the two others (listed in the failure, as Python's repr).
    layout(
        dir.path(),
        &r.public,
        json!([["ALLOW", "id_rsa*"], ["DISALLOW", "*"]]),
    );
    let out = verify(dir.path(), &r.a, false);
    println!("verify:\n{}", show(&out));
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_clean("verify", &out);
    let text = stdout(&out);
    assert!(
        text.contains(r"ALLOW id_rsa*: consumed 1 (id_rsa\x1b[2K\x1b[1A\x1b[2K\x0d  README.md)"),
        "{text}"
    );
    // in-toto 3.1.0 prints the list with Python's repr, which escapes
    // non-printables the same way.
    let failure =
        r"'DISALLOW *' matched the following artifacts: ['csi\x9b2Jclear', 'evil\u202etxt.sh']";
    assert!(text.contains(failure), "{text}");
    assert!(stderr(&out).contains(failure), "{}", show(&out));

    let out = verify(dir.path(), &r.a, true);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_no_controls("verify --json (stderr)", &out.stderr, &out);
    let v = json_of(&out);
    let rules = &v["steps"][0]["rules"][0];
    assert_eq!(rules["applied"][0]["consumed"], json!([ESC_NAME]), "{v}");
    assert_eq!(
        rules["queue"],
        json!([CSI_NAME, BIDI_NAME, ESC_NAME]),
        "{v}"
    );
}

/// Runs `line` (a command line as printed) with bash, the program replaced
/// by `printf '%s\0'`: the words bash reads.
fn words_bash_reads(line: &str) -> Vec<String> {
    let out = output(
        Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}")),
    );
    assert!(out.status.success(), "bash: {}", show(&out));
    out.stdout
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .collect()
}

#[test]
fn draft_escapes_crafted_names_and_its_command_reads_back_exactly() {
    let Some(r) = recorded() else { return };
    if !common::have("bash") && common::skip("draft", "bash is not installed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(tracelink()
        .current_dir(dir.path())
        .args(["layout", "draft", "--link-dir"])
        .arg(&r.a)
        .arg("--functionary-key")
        .arg(&r.public)
        .arg("-o")
        .arg(dir.path().join("draft.layout")));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_clean("layout draft", &out);
    let err = stderr(&out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("  tracelink run "))
        .unwrap_or_else(|| panic!("no suggested command in:\n{err}"));
    let words = words_bash_reads(line);
    let p = words.iter().position(|w| w == "-p").expect("-p");
    let mut files: Vec<&str> = words[p + 1..].iter().map(String::as_str).collect();
    files.sort_unstable();
    let mut want = NAMES.to_vec();
    want.sort_unstable();
    assert_eq!(files, want, "{line}");
    // The drafted layout (JSON with ensure_ascii) names them exactly (as
    // fnmatch patterns).
    let layout: Value =
        serde_json::from_slice(&fs::read(dir.path().join("draft.layout")).unwrap()).unwrap();
    let checkout = &layout["signed"]["steps"][0];
    for name in NAMES {
        let rule = json!(["CREATE", escape_pattern(name)]);
        assert!(
            checkout["expected_products"]
                .as_array()
                .unwrap()
                .contains(&rule),
            "{name:?} in {checkout}"
        );
    }
    // The key given to the suggested command is the recorded key.
    assert!(
        words.contains(&fs::canonicalize(&r.key).unwrap().display().to_string()),
        "{words:?}"
    );
}

// ---------------------------------------------------------------------------
// Hostile files in place of the trace and of the link.

/// Runs `args` with a 1 GiB address-space limit, killed after 10 s if it
/// hangs. Returns the output and how long it ran.
fn run_bounded(cwd: &Path, args: &[&std::ffi::OsStr]) -> (Output, Duration) {
    let bin = match std::env::var_os("TRACELINK_UNDER_TEST") {
        Some(bin) => PathBuf::from(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_tracelink")),
    };
    let started = Instant::now();
    let mut child = Command::new("sh")
        .current_dir(cwd)
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$@\"")
        .arg("sh")
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "tracelink {args:?} hangs (killed after 10 s):\n{}",
                show(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (out, started.elapsed())
}

/// A copy of the first recording's link (and trace, unless `with_trace`
/// is false) in a new directory; returns (dir, link, trace path).
fn copy_link(with_trace: bool) -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let r = recorded()?;
    let link = link_in(&r.a, "build");
    let trace_name = format!(
        "{}.trace.json.gz",
        link.file_name().unwrap().to_str().unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let new_link = dir.path().join(link.file_name().unwrap());
    fs::copy(&link, &new_link).unwrap();
    let trace = dir.path().join(&trace_name);
    if with_trace {
        fs::copy(r.a.join(&trace_name), &trace).unwrap();
    }
    Some((dir, new_link, trace))
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

fn sparse(path: &Path, size: u64) {
    fs::File::create(path).unwrap().set_len(size).unwrap();
}

/// `show LINK` fails fast (exit `want`), with a message on stderr that
/// names `file` and contains `problem`.
fn assert_show_refuses(link: &Path, file: &Path, want: i32, problem: &str) {
    let (out, took) = run_bounded(link.parent().unwrap(), &["show".as_ref(), link.as_os_str()]);
    let err = stderr(&out);
    assert_eq!(code(&out), want, "{}", show(&out));
    assert!(
        err.contains(&file.display().to_string()) && err.contains(problem),
        "the error names {} and says {problem:?}:\n{}",
        file.display(),
        show(&out)
    );
    assert!(
        took < Duration::from_secs(1),
        "show took {took:?}:\n{}",
        show(&out)
    );
}

#[test]
fn show_reads_the_real_trace() {
    let Some((_dir, link, trace)) = copy_link(true) else {
        return;
    };
    let (out, _) = run_bounded(link.parent().unwrap(), &["show".as_ref(), link.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!("trace:       {}", trace.display())),
        "{}",
        show(&out)
    );
}

#[test]
fn a_fifo_in_place_of_the_trace_is_refused_without_blocking() {
    let Some((_dir, link, trace)) = copy_link(false) else {
        return;
    };
    mkfifo(&trace);
    assert_show_refuses(&link, &trace, 1, "not a regular file");
}

#[test]
fn a_symlink_in_place_of_the_trace_is_not_followed() {
    let Some((dir, link, trace)) = copy_link(true) else {
        return;
    };
    // To the genuine trace elsewhere: still refused (files beside a link are
    // never read through a symlink).
    let elsewhere = dir.path().join("elsewhere.json");
    fs::rename(&trace, &elsewhere).unwrap();
    symlink(&elsewhere, &trace).unwrap();
    assert_show_refuses(&link, &trace, 1, "symbolic link");
    // To /dev/zero: refused, not read forever.
    fs::remove_file(&trace).unwrap();
    symlink("/dev/zero", &trace).unwrap();
    assert_show_refuses(&link, &trace, 1, "symbolic link");
}

#[test]
fn a_2gib_sparse_trace_is_refused_without_reading_it() {
    let Some((_dir, link, trace)) = copy_link(false) else {
        return;
    };
    sparse(&trace, 2 << 30);
    assert_show_refuses(
        &link,
        &trace,
        1,
        "larger than a runtime trace may be (1 GiB)",
    );
}

#[test]
fn hostile_files_in_place_of_the_link_are_refused_fast() {
    let Some((dir, link, _trace)) = copy_link(true) else {
        return;
    };
    let genuine = dir.path().join("genuine.link.bak");
    fs::rename(&link, &genuine).unwrap();

    mkfifo(&link);
    assert_show_refuses(&link, &link, 2, "not a regular file");
    fs::remove_file(&link).unwrap();

    symlink("/dev/zero", &link).unwrap();
    assert_show_refuses(&link, &link, 2, "not a regular file");
    fs::remove_file(&link).unwrap();

    sparse(&link, 2 << 30);
    assert_show_refuses(
        &link,
        &link,
        2,
        "larger than a link or layout file may be (256 MiB)",
    );
    fs::remove_file(&link).unwrap();

    fs::create_dir(&link).unwrap();
    assert_show_refuses(&link, &link, 2, "directory");
    fs::remove_dir(&link).unwrap();

    // A link a person names may be a symlink to a regular file (in-toto
    // reads links through symlinks too); the trace beside it is still read
    // only as the regular file there.
    symlink(&genuine, &link).unwrap();
    let (out, took) = run_bounded(dir.path(), &["show".as_ref(), link.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(took < Duration::from_secs(1), "show took {took:?}");
}

#[test]
fn verify_and_draft_refuse_hostile_link_files_fast() {
    let Some(r) = recorded() else { return };
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("links");
    fs::create_dir(&links).unwrap();
    let name = link_in(&r.a, "build");
    let link = links.join(name.file_name().unwrap());
    layout(dir.path(), &r.public, json!([["ALLOW", "*"]]));
    for hostile in ["fifo", "sparse"] {
        match hostile {
            "fifo" => mkfifo(&link),
            _ => sparse(&link, 2 << 30),
        }
        let (out, took) = run_bounded(
            dir.path(),
            &[
                "verify".as_ref(),
                "--layout".as_ref(),
                "root.layout".as_ref(),
                "--verification-keys".as_ref(),
                "owner.pub".as_ref(),
                "--link-dir".as_ref(),
                links.as_os_str(),
            ],
        );
        assert_eq!(code(&out), 1, "verify, {hostile} link: {}", show(&out));
        assert!(
            stderr(&out).contains(&link.display().to_string()),
            "verify names the {hostile} link: {}",
            show(&out)
        );
        assert!(took < Duration::from_secs(1), "verify took {took:?}");

        let (out, took) = run_bounded(
            dir.path(),
            &[
                "layout".as_ref(),
                "draft".as_ref(),
                "--link-dir".as_ref(),
                links.as_os_str(),
                "--functionary-key".as_ref(),
                r.public.as_os_str(),
            ],
        );
        assert_ne!(code(&out), 0, "draft, {hostile} link: {}", show(&out));
        assert!(
            stderr(&out).contains(&link.display().to_string()),
            "draft names the {hostile} link: {}",
            show(&out)
        );
        assert!(took < Duration::from_secs(1), "draft took {took:?}");
        fs::remove_file(&link).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Every field, not only artifact names.

/// A crafted name for every string field: a line feed (a name must not start
/// a line of its own), terminal controls, C1 and a bidi override.
const EVIL: &str = "x\n\u{1b}[2K\r\u{9b}2J\u{202e}\u{7}y";
/// The same shape, harmless.
const CLEAN: &str = "x_y";

/// Writes a classic link signed under `keyid` whose every string is `s`
/// (step, command, artifacts and digests, environment, recorder version),
/// and the trace it names, whose every string is `s` too. Returns the link.
fn crafted(dir: &Path, s: &str) -> PathBuf {
    use tracelink::link::{self, Byproducts, Link, Wrapper};
    fs::create_dir_all(dir).unwrap();
    let trace = json!({
        "_type": "tracelink-trace",
        "version": s, "root": s, "cwd": s, "backing_root": s, "store": s,
        "command": [s], "environment": {s: s},
        "exit": {"code": 1},
        "inherited": [{"fd": 3, "path": s, "read": true, "write": false}],
        "stragglers": [{"pid": 9, "name": s}],
        "complete": false, "incomplete": [s],
        "artifacts": {s: {"read_by": [2], "written_by": [], "material": {"size": 1, "mode": 420}}},
        "notes": [s],
        "probes": {"missing": [{"path": s, "by": [2]}], "stat_only": [s]},
        "ptrace": true,
        "process_tree": [
            {"pid": 2, "ppid": 1, "execs": [{"argv": [s, s], "executable": s, "cwd": s, "sha256": s}],
             "exit_code": 0, "read": [s], "wrote": [s]},
            {"pid": 3, "ppid": 2, "execs": [{"argv": [s], "executable": s, "cwd": s}],
             "exit_code": 0, "read": [s], "wrote": [s]},
        ],
    });
    let trace_bytes = serde_json::to_vec_pretty(&trace).unwrap();
    let sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&trace_bytes))
    };
    let key = PrivateKey::from_seed(&[3; 32]);
    let keyid = key.keyid(KeyIdFormat::Python);
    let digests = |s: &str| [(s.to_string(), s.to_string())].into();
    let mut environment = serde_json::Map::new();
    environment.insert(s.into(), json!(s));
    let file = link::file_name(s, &keyid);
    environment.insert(
        "tracelink".into(),
        json!({"mode": "precise", "complete": false, "version": s,
               "trace": {"name": format!("{file}.trace.json"), "sha256": sha256}}),
    );
    let l = Link {
        name: s.into(),
        command: vec![s.into(), s.into()],
        materials: [(s.to_string(), digests(s))].into(),
        products: [(s.to_string(), digests(s))].into(),
        byproducts: Byproducts {
            return_value: Some(1),
            stdout: Some(s.into()),
            stderr: None,
        },
        environment,
    };
    let bytes = link::sign(l, &key, &keyid, Wrapper::Classic).unwrap();
    fs::write(dir.join(format!("{file}.trace.json")), trace_bytes).unwrap();
    let path = dir.join(file);
    fs::write(&path, bytes).unwrap();
    path
}

/// The number of lines of `out`'s stdout and stderr.
fn lines(out: &Output) -> (usize, usize) {
    (
        out.stdout.split(|b| *b == b'\n').count(),
        out.stderr.split(|b| *b == b'\n').count(),
    )
}

#[test]
fn every_crafted_field_is_escaped_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let [evil, evil2, clean, clean2] = [
        ("evil", EVIL.to_string()),
        ("evil2", format!("{EVIL}2")),
        ("clean", CLEAN.to_string()),
        ("clean2", format!("{CLEAN}2")),
    ]
    .map(|(sub, s)| crafted(&dir.path().join(sub), &s));

    // The summary (the default) names crafted fields too.
    let summary_of = |link: &Path| run(tracelink().arg("show").arg(link));
    let (e, c) = (summary_of(&evil), summary_of(&clean));
    assert_eq!(code(&e), 0, "{}", show(&e));
    assert_clean("show (summary)", &e);
    assert_eq!(lines(&e), lines(&c), "{}\n\nclean:\n{}", show(&e), show(&c));
    let show_of = |link: &Path| {
        run(tracelink()
            .arg("show")
            .arg(link)
            .args(["--files", "--tree"]))
    };
    let (e, c) = (show_of(&evil), show_of(&clean));
    println!("show of the crafted link:\n{}", show(&e));
    assert_eq!(code(&e), 0, "{}", show(&e));
    assert_clean("show", &e);
    assert_eq!(
        lines(&e),
        lines(&c),
        "a crafted field starts a line of its own:\n{}\n\nclean:\n{}",
        show(&e),
        show(&c)
    );
    // The whole trace is shown: its notes, probes, processes.
    assert!(
        stdout(&e).contains(r"note:        x\x0a\x1b[2K\x0d\x9b2J\u202e\x07y"),
        "{}",
        show(&e)
    );

    let diff_of = |a: &Path, b: &Path| run(tracelink().arg("diff").arg(a).arg(b));
    let (e, c) = (diff_of(&evil, &evil2), diff_of(&clean, &clean2));
    println!("diff of crafted links:\n{}", show(&e));
    assert_eq!(code(&e), 1, "{}", show(&e));
    assert_clean("diff", &e);
    assert_eq!(
        lines(&e),
        lines(&c),
        "a crafted field starts a line of its own:\n{}\n\nclean:\n{}",
        show(&e),
        show(&c)
    );

    // A crafted trace beside a link: the warning names it escaped.
    let tampered = dir.path().join("evil").join(format!(
        "{}.trace.json",
        evil.file_name().unwrap().to_str().unwrap()
    ));
    fs::write(&tampered, b"{}").unwrap();
    let e = show_of(&evil);
    assert_eq!(code(&e), 1, "{}", show(&e));
    assert_clean("show, tampered trace", &e);
    let e = diff_of(&evil, &evil2);
    assert_eq!(code(&e), 2, "{}", show(&e));
    assert_clean("diff, tampered trace", &e);

    // verify: a crafted step name, patterns and paths in the report.
    let public = dir.path().join("functionary.pub");
    fs::write(
        &public,
        PrivateKey::from_seed(&[3; 32]).public().to_spki_pem(),
    )
    .unwrap();
    let verify_of = |s: &str, link: &Path| {
        let vdir = dir.path().join(format!("verify-{}", s.len()));
        fs::create_dir_all(&vdir).unwrap();
        layout_for(
            &vdir,
            &public,
            s,
            json!([["ALLOW", s], ["REQUIRE", format!("{s}zz")]]),
        );
        verify(&vdir, link.parent().unwrap(), false)
    };
    let (e, c) = (verify_of(EVIL, &evil), verify_of(CLEAN, &clean));
    println!("verify of a crafted chain:\n{}", show(&e));
    assert_eq!(code(&e), 1, "{}", show(&e));
    assert_clean("verify", &e);
    assert_eq!(
        lines(&e),
        lines(&c),
        "a crafted field starts a line of its own:\n{}\n\nclean:\n{}",
        show(&e),
        show(&c)
    );
    assert!(
        stdout(&e).contains(r"did not find x\x0a\x1b[2K\x0d\x9b2J\u202e\x07yzz in: []"),
        "{}",
        show(&e)
    );
}
