//! End-to-end tests of the `tracelink` command line (snapshot mode): exit
//! statuses and what is (not) written, signal handling, captured streams,
//! keys, keygen, file names, digest reuse, `-x`, and `record start|stop`.
//! Contract: docs/recording.md (exit statuses, formats) and docs/trace-format.md.
//!
//! Every test works in its own temporary directory: `work/` is the current
//! directory of the run (the recorded tree), `keys/` holds keys outside the
//! tree, `meta/` is the metadata directory (`-d`).

mod common;

use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// RFC 8032 section 7.1 test 1 (tests/vectors/keys.txt).
const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const PYTHON_KEYID: &str = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";
const LEGACY_KEYID: &str = "01e8764eedab63b3593451765fc337b2cc6d2c66923845da255f448c19e2afc5";
/// The base64 body of tests/vectors/rfc8032.pem (it holds the seed).
const RFC8032_PEM_BODY: &str = "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g";

// ---------------------------------------------------------------- helpers

struct Case {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    keys: PathBuf,
    meta: PathBuf,
    /// A private (0600) copy of the RFC 8032 key, outside the recorded tree.
    key: String,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let keys = tmp.path().join("keys");
        let meta = tmp.path().join("meta");
        for d in [&work, &keys, &meta] {
            fs::create_dir(d).unwrap();
        }
        let key = s(&common::rfc8032_key(&keys));
        Case {
            _tmp: tmp,
            work,
            keys,
            meta,
            key,
        }
    }

    /// `tracelink` in `work/`, stdin closed.
    fn cmd(&self) -> Command {
        let mut cmd = common::tracelink();
        cmd.current_dir(&self.work).stdin(Stdio::null());
        cmd
    }

    /// `tracelink ARGS` in `work/`.
    fn tl(&self, args: &[&str]) -> Output {
        common::output(self.cmd().args(args))
    }

    /// The arguments of `tracelink run -n step -k KEY -d META FLAGS [-- COMMAND]`
    /// (FLAGS split at whitespace).
    fn run_args(&self, key: &str, flags: &str, command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "-n", "step", "-k", key, "-d", &s(&self.meta)]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(flags.split_whitespace().map(str::to_string));
        if !command.is_empty() {
            args.push("--".into());
            args.extend(command.iter().map(|a| a.to_string()));
        }
        args
    }

    /// `tracelink run` with the RFC 8032 key.
    fn run(&self, flags: &str, command: &[&str]) -> Output {
        self.run_key(&self.key, flags, command)
    }

    fn run_key(&self, key: &str, flags: &str, command: &[&str]) -> Output {
        common::output(self.cmd().args(self.run_args(key, flags, command)))
    }

    /// `tracelink record start|stop -n pkg -k KEY FLAGS`
    fn record(&self, what: &str, flags: &str) -> Output {
        let mut cmd = self.cmd();
        cmd.args(["record", what, "-n", "pkg", "-k", &self.key])
            .args(flags.split_whitespace());
        common::output(&mut cmd)
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        fs::write(self.work.join(name), bytes).unwrap();
    }

    /// The single file in `meta/`, which must be `name`, parsed.
    fn only_link(&self, name: &str, out: &Output) -> Value {
        assert_eq!(
            entries(&self.meta),
            vec![name.to_string()],
            "metadata directory should hold exactly {name}\n{}",
            common::show(out)
        );
        read_json(&self.meta.join(name))
    }

    /// The RFC 8032 key's link `step.74c181c7.link`, the only file in
    /// `meta/`, with its signature checked; returns `signed`.
    fn signed(&self, out: &Output) -> Value {
        let doc = self.only_link("step.74c181c7.link", out);
        check_signed(&doc, PUBLIC_HEX, PYTHON_KEYID)
    }

    /// Nothing was written: no link, no temporary file, in `meta/`, and
    /// `work/` holds exactly `work_files`.
    fn assert_nothing_written(&self, work_files: &[&str], out: &Output) {
        assert_eq!(
            entries(&self.meta),
            Vec::<String>::new(),
            "no link and no temporary file may be left in the metadata directory\n{}",
            common::show(out)
        );
        assert_eq!(
            entries(&self.work),
            work_files.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "the working directory must not gain files\n{}",
            common::show(out)
        );
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_string()
}

/// Sorted names in `dir` (lossy), hidden files included.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// in-toto's canonical JSON: keys sorted by code point, no whitespace,
/// integers only, only `\` and `"` escaped.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            assert!(
                n.is_i64() || n.is_u64(),
                "canonical JSON has no floats: {n}"
            );
            out.push_str(&n.to_string());
        }
        Value::String(text) => quote(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote(k, out);
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
    }
}

fn quote(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The keyid of an ed25519 public key (hex) in the Python or legacy convention.
fn keyid_of(public_hex: &str, legacy: bool) -> String {
    let extra = if legacy {
        r#""keyid_hash_algorithms":["sha256","sha512"],"#
    } else {
        ""
    };
    sha256_hex(
        format!(
            r#"{{{extra}"keytype":"ed25519","keyval":{{"public":"{public_hex}"}},"scheme":"ed25519"}}"#
        )
        .as_bytes(),
    )
}

/// Checks that `doc` is a classic in-toto link carrying exactly one
/// signature, by `keyid`, that verifies with `public_hex` over the canonical
/// JSON of `signed`, and that `signed` has exactly in-toto's seven keys.
/// Returns `signed`.
fn check_signed(doc: &Value, public_hex: &str, keyid: &str) -> Value {
    let top: Vec<&String> = doc.as_object().expect("link is an object").keys().collect();
    assert_eq!(top, ["signatures", "signed"], "top-level keys of {doc}");
    let sigs = doc["signatures"].as_array().expect("signatures array");
    assert_eq!(sigs.len(), 1, "one signature: {doc}");
    assert_eq!(sigs[0]["keyid"], keyid, "signature keyid");
    let signed = doc["signed"].clone();
    let mut keys: Vec<&String> = signed.as_object().expect("signed object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "_type",
            "byproducts",
            "command",
            "environment",
            "materials",
            "name",
            "products"
        ],
        "signed has exactly in-toto's keys"
    );
    assert_eq!(signed["_type"], "link");
    assert!(
        signed["environment"].is_object(),
        "environment is an object"
    );
    let mut message = String::new();
    canonical(&signed, &mut message);
    let sig = hex::decode(sigs[0]["sig"].as_str().expect("sig is a string")).expect("sig is hex");
    let public: [u8; 32] = hex::decode(public_hex).unwrap().try_into().unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).expect("64-byte signature");
    public
        .verify_strict(message.as_bytes(), &sig)
        .expect("the link's signature verifies over the canonical JSON of `signed`");
    signed
}

fn sha256_set(content: &[u8]) -> Value {
    json!({ "sha256": sha256_hex(content) })
}

/// Panics if any secret string shows up in the output.
fn assert_no_secret(out: &Output, secrets: &[&str]) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in secrets {
        assert!(
            !all.contains(secret),
            "private key material {secret:?} was printed\n{}",
            common::show(out)
        );
    }
}

fn openssl(args: &[&str]) -> Output {
    let out = common::output(Command::new("openssl").args(args));
    assert!(
        out.status.success(),
        "openssl {args:?} failed\n{}",
        common::show(&out)
    );
    out
}

/// The raw 32-byte ed25519 public key (hex) of an SPKI PEM.
fn spki_pem_public_hex(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap();
    assert_eq!(
        hex::encode(&der[..12]),
        "302a300506032b6570032100",
        "SPKI prefix of an ed25519 public key"
    );
    hex::encode(&der[12..])
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Umask:"))
        .expect("Umask line in /proc/self/status");
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (comm, state, ppid) of a process, from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(String, String, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let mut rest = stat[close + 2..].split(' ');
    let state = rest.next()?.to_string();
    let ppid = rest.next()?.parse().ok()?;
    Some((stat[open + 1..close].to_string(), state, ppid))
}

fn alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((_, state, _)) if state != "Z" && state != "X")
}

/// Waits for a live child of `ppid` whose command name is `comm`.
fn wait_for_child(ppid: i32, comm: &str, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Some((name, state, parent)) = proc_stat(pid)
                && parent == ppid
                && name == comm
                && state != "Z"
            {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

// ---------------------------------------------------- 1. exit status table

#[test]
fn command_exit_status_is_passed_on_and_recorded_as_return_value() {
    let case = Case::new();
    case.put("a", b"a\n");
    let out = case.run("-m . -p .", &["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed,
        json!({
            "_type": "link",
            "name": "step",
            "command": ["sh", "-c", "exit 3"],
            "materials": {"a": sha256_set(b"a\n")},
            "products": {"a": sha256_set(b"a\n")},
            "byproducts": {"return-value": 3, "stdout": "", "stderr": ""},
            "environment": {},
        })
    );
    assert_eq!(entries(&case.work), ["a"], "no stray files in the tree");
}

#[test]
fn command_killed_by_signal_exits_128_plus_signal_and_records_minus_signal() {
    let case = Case::new();
    let out = case.run("-m .", &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed["byproducts"],
        json!({"return-value": -15, "stdout": "", "stderr": ""})
    );
}

#[test]
fn command_starts_with_no_signals_blocked() {
    // Root cause of a command that cannot be stopped by SIGTERM/SIGINT/SIGHUP:
    // tracelink blocks them for its own signal thread and must not pass that
    // mask on to the command.
    let case = Case::new();
    let out = case.run("-m .", &["grep", "^SigBlk:", "/proc/self/status"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SigBlk:\t0000000000000000\n",
        "the command inherits blocked signals"
    );
}

#[test]
fn command_not_found_exits_127_without_link() {
    let case = Case::new();
    let out = case.run("-m . -p .", &["tracelink-no-such-command-42"]);
    assert_eq!(out.status.code(), Some(127), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("tracelink-no-such-command-42"),
        "stderr names the command\n{}",
        common::show(&out)
    );
    case.assert_nothing_written(&[], &out);
}

#[test]
fn command_not_executable_exits_126_without_link() {
    let case = Case::new();
    case.put("script.sh", b"#!/bin/sh\necho hi\n");
    let script = case.work.join("script.sh");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = case.run("-m . -p .", &["./script.sh"]);
    assert_eq!(out.status.code(), Some(126), "{}", common::show(&out));
    assert!(stderr(&out).contains("script.sh"), "{}", common::show(&out));
    case.assert_nothing_written(&["script.sh"], &out);
}

#[test]
fn run_timeout_kills_command_exits_124_without_link() {
    let case = Case::new();
    let started = Instant::now();
    let out = case.run("-m . -p . --run-timeout 1", &["sleep", "30"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(124), "{}", common::show(&out));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    case.assert_nothing_written(&[], &out);
}

#[test]
fn unknown_flag_and_missing_step_name_exit_2() {
    let case = Case::new();
    let out = case.run("--no-such-flag -m .", &["true"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("--no-such-flag"),
        "{}",
        common::show(&out)
    );
    case.assert_nothing_written(&[], &out);
    let meta = s(&case.meta);
    let out = case.tl(&["run", "-k", &case.key, "-d", &meta, "-m", ".", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    case.assert_nothing_written(&[], &out);
}

#[test]
fn missing_key_file_exits_125_naming_the_path() {
    let case = Case::new();
    let missing = s(&case.keys.join("nope.pem"));
    let out = case.run_key(&missing, "-m . -p .", &["true"]);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(stderr(&out).contains(&missing), "{}", common::show(&out));
    case.assert_nothing_written(&[], &out);
}

// ------------------------------------------------------------- 2. signals

fn stop_signal_case(signal: Signal, want: i32) {
    let case = Case::new();
    let err_path = case.keys.join("stderr");
    let mut child = common::tracelink_default_signals()
        .current_dir(&case.work)
        .stdin(Stdio::null())
        .args(case.run_args(&case.key, "-m . -p .", &["sleep", "30"]))
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let tl = child.id() as i32;
    let Some(sleeper) = wait_for_child(tl, "sleep", Duration::from_secs(10)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("tracelink did not start `sleep 30` within 10 s");
    };
    // To tracelink alone, not to its process group.
    kill(Pid::from_raw(tl), signal).unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    let sleeper_alive = alive(sleeper);
    if sleeper_alive {
        let _ = kill(Pid::from_raw(sleeper), Signal::SIGKILL);
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "tracelink did not exit within 5 s of {signal:?} (`sleep` {})",
            if sleeper_alive {
                "still running: the signal did not stop it"
            } else {
                "gone"
            }
        );
    };
    let err = fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(want), "{signal:?}: stderr:\n{err}");
    assert!(
        !sleeper_alive,
        "{signal:?} was not forwarded: `sleep` (pid {sleeper}) still runs"
    );
    assert_eq!(
        entries(&case.meta),
        Vec::<String>::new(),
        "no link, no temp file"
    );
    assert_eq!(entries(&case.work), Vec::<String>::new());
}

#[test]
fn sigterm_to_tracelink_is_forwarded_exits_143_without_link() {
    stop_signal_case(Signal::SIGTERM, 143);
}

#[test]
fn sigint_to_tracelink_is_forwarded_exits_130_without_link() {
    stop_signal_case(Signal::SIGINT, 130);
}

// ------------------------------------------------------ 3. record streams

#[test]
fn record_streams_keeps_crlf_replaces_invalid_utf8_and_passes_output_through() {
    let case = Case::new();
    let script = r"printf 'out\r\nline2\377end\n'; printf 'caf\303\251 \342\202\254\n'; printf 'err\r\n\376' >&2";
    let out = case.run("-s -m .", &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        out.stdout, b"out\r\nline2\xffend\ncaf\xc3\xa9 \xe2\x82\xac\n",
        "stdout passes through byte for byte"
    );
    assert!(
        out.stderr.windows(6).any(|w| w == b"err\r\n\xfe"),
        "stderr passes through byte for byte\n{}",
        common::show(&out)
    );
    let signed = case.signed(&out);
    assert_eq!(
        signed["byproducts"],
        json!({
            "return-value": 0,
            "stdout": "out\r\nline2\u{FFFD}end\ncafé €\n",
            "stderr": "err\r\n\u{FFFD}",
        })
    );
}

#[test]
fn record_streams_captures_output_written_after_a_delay() {
    // The capture reader must not share its file offset with the command's
    // descriptor: output the command writes after the reader started (here
    // after 0.3 s) must be neither lost nor hidden.
    let case = Case::new();
    let out = case.run(
        "-s -m .",
        &["sh", "-c", "sleep 0.3; echo late; echo err >&2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(out.stdout, b"late\n", "passed through");
    assert!(stderr(&out).starts_with("err\n"), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed["byproducts"],
        json!({"return-value": 0, "stdout": "late\n", "stderr": "err\n"})
    );
}

#[test]
fn without_record_streams_link_has_empty_streams_and_output_passes_through() {
    let case = Case::new();
    let out = case.run(
        "-m .",
        &["sh", "-c", r"printf 'plain\r\n'; printf 'oops\n' >&2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(out.stdout, b"plain\r\n");
    assert!(stderr(&out).starts_with("oops\n"), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed["byproducts"],
        json!({"return-value": 0, "stdout": "", "stderr": ""})
    );
}

#[test]
fn record_streams_captures_large_output_exactly() {
    let case = Case::new();
    let out = case.run("-s -m .", &["seq", "1", "200000"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let want: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    let signed = case.signed(&out);
    let captured = signed["byproducts"]["stdout"].as_str().unwrap_or_default();
    assert!(
        captured == want,
        "captured stdout differs: {} bytes, want {}",
        captured.len(),
        want.len()
    );
    assert!(
        out.stdout == want.as_bytes(),
        "passed-through stdout differs: {} bytes, want {}",
        out.stdout.len(),
        want.len()
    );
}

#[test]
fn background_process_keeping_stdout_open_does_not_hang_record_streams() {
    let case = Case::new();
    let started = Instant::now();
    let out = case.run("-s -m .", &["sh", "-c", "(sleep 5 &) ; echo hi"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(took < Duration::from_secs(3), "tracelink took {took:?}");
    let signed = case.signed(&out);
    assert_eq!(
        signed["byproducts"],
        json!({"return-value": 0, "stdout": "hi\n", "stderr": ""})
    );
    assert_eq!(out.stdout, b"hi\n", "passed through");
}

#[test]
fn background_process_keeping_stdout_open_does_not_hang_plain_run() {
    let case = Case::new();
    let out_path = case.keys.join("stdout");
    let started = Instant::now();
    let mut child = case
        .cmd()
        .args(case.run_args(&case.key, "-m .", &["sh", "-c", "(sleep 5 &) ; echo hi"]))
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("tracelink exits");
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "tracelink took {took:?}");
    assert_eq!(fs::read(&out_path).unwrap(), b"hi\n");
    assert_eq!(entries(&case.meta), ["step.74c181c7.link"]);
}

// ------------------------------------------------------------------ 4. keys

/// `tracelink run -k KEY FLAGS -x -p .` in a tree holding the file `f`.
fn sign_off(case: &Case, key: &str, flags: &str) -> Output {
    if !case.work.join("f").exists() {
        case.put("f", b"content\n");
    }
    case.run_key(key, &format!("{flags} -x -p ."), &[])
}

/// An encrypted PKCS#8 ed25519 key (password "secret") and its public key (hex).
fn gen_encrypted_key(case: &Case) -> (String, String) {
    let path = s(&case.keys.join("enc.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-aes-256-cbc",
        "-pass",
        "pass:secret",
        "-out",
        &path,
    ]);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let pubpem = openssl(&["pkey", "-in", &path, "-passin", "pass:secret", "-pubout"]);
    let public = spki_pem_public_hex(&String::from_utf8(pubpem.stdout).unwrap());
    (path, public)
}

fn pem_body_lines(path: &str) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn encrypted_pkcs8_key_with_password_signs_under_its_python_keyid() {
    let case = Case::new();
    let (key, public) = gen_encrypted_key(&case);
    let keyid = keyid_of(&public, false);
    let out = sign_off(&case, &key, "-P secret");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let doc = case.only_link(&format!("step.{}.link", &keyid[..8]), &out);
    let signed = check_signed(&doc, &public, &keyid);
    assert_eq!(signed["products"], json!({"f": sha256_set(b"content\n")}));
    let body = pem_body_lines(&key);
    assert_no_secret(&out, &body.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!stderr(&out).contains("secret"), "{}", common::show(&out));
}

#[test]
fn encrypted_key_wrong_password_exits_125_with_clear_message() {
    let case = Case::new();
    let (key, _) = gen_encrypted_key(&case);
    let out = sign_off(&case, &key, "--password wrongpw");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = stderr(&out);
    assert!(err.contains(&key), "names the key file\n{err}");
    assert!(err.contains("password"), "mentions the password\n{err}");
    assert!(!err.contains("wrongpw"), "echoes the password\n{err}");
    case.assert_nothing_written(&["f"], &out);
}

#[test]
fn encrypted_key_without_password_and_no_terminal_exits_125_mentioning_p() {
    let case = Case::new();
    let (key, _) = gen_encrypted_key(&case);
    let out = sign_off(&case, &key, "");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(stderr(&out).contains("-P"), "{}", common::show(&out));
    assert!(stderr(&out).contains(&key), "{}", common::show(&out));
    case.assert_nothing_written(&["f"], &out);
}

#[test]
fn password_prompt_without_controlling_terminal_fails_instead_of_hanging() {
    let case = Case::new();
    let (key, _) = gen_encrypted_key(&case);
    case.put("f", b"content\n");
    let mut cmd = case.cmd();
    cmd.args(case.run_args(&key, "-x -p . -P", &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        status.is_some(),
        "tracelink hangs on a prompt with no terminal"
    );
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    case.assert_nothing_written(&["f"], &out);
}

/// RFC 8410 OneAsymmetricKey (PKCS#8 v2) of the RFC 8032 seed, with `public`.
fn pkcs8_v2_pem(public_hex: &str) -> String {
    let mut der = hex::decode("3051020101300506032b657004220420").unwrap();
    der.extend(hex::decode(SEED_HEX).unwrap());
    der.extend([0x81, 0x21, 0x00]);
    der.extend(hex::decode(public_hex).unwrap());
    pem("PRIVATE KEY", &der)
}

#[test]
fn pkcs8_v2_key_gives_the_same_link_as_v1() {
    let v1 = Case::new();
    let out1 = sign_off(&v1, &v1.key, "");
    assert_eq!(out1.status.code(), Some(0), "{}", common::show(&out1));

    let v2 = Case::new();
    let key = v2.keys.join("v2.pem");
    write_private(&key, pkcs8_v2_pem(PUBLIC_HEX).as_bytes());
    let out2 = sign_off(&v2, &s(&key), "");
    assert_eq!(out2.status.code(), Some(0), "{}", common::show(&out2));
    v1.signed(&out1);
    v2.signed(&out2);
    let name = "step.74c181c7.link";
    assert_eq!(
        fs::read(v1.meta.join(name)).unwrap(),
        fs::read(v2.meta.join(name)).unwrap(),
        "v1 and v2 encodings of one key sign identical links"
    );
    let v2_body = pem_body_lines(&s(&key));
    let mut secrets = vec![SEED_HEX, RFC8032_PEM_BODY];
    secrets.extend(v2_body.iter().map(String::as_str));
    assert_no_secret(&out2, &secrets);
}

#[test]
fn pkcs8_v2_key_with_mismatched_public_key_is_refused() {
    let case = Case::new();
    let key = case.keys.join("v2bad.pem");
    // A valid public key, but not the seed's: the all-zero seed's.
    let other = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    write_private(&key, pkcs8_v2_pem(other).as_bytes());
    let out = sign_off(&case, &s(&key), "");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(stderr(&out).contains(&s(&key)), "{}", common::show(&out));
    case.assert_nothing_written(&["f"], &out);
}

#[test]
fn legacy_json_key_names_link_with_legacy_keyid() {
    let case = Case::new();
    let key = s(&case.keys.join("legacy.json"));
    write_private(
        Path::new(&key),
        &fs::read(common::vector("legacy-sslib-key.json")).unwrap(),
    );
    let out = sign_off(&case, &key, "");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let doc = case.only_link("step.01e8764e.link", &out);
    let signed = check_signed(&doc, PUBLIC_HEX, LEGACY_KEYID);
    assert_eq!(signed["products"], json!({"f": sha256_set(b"content\n")}));
    assert_no_secret(&out, &[SEED_HEX]);

    // --keyid-format python overrides the default.
    let case = Case::new();
    let out = sign_off(&case, &key, "--keyid-format python");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    case.signed(&out);
}

/// The in-toto (Python convention) keyid of an RSA or ECDSA public key
/// given as SPKI PEM, as securesystemslib forms it.
fn pem_keyid(keytype: &str, scheme: &str, spki_pem: &str) -> String {
    let mut text = String::new();
    canonical(
        &json!({"keytype": keytype, "keyval": {"public": spki_pem}, "scheme": scheme}),
        &mut text,
    );
    sha256_hex(text.as_bytes())
}

/// Signs off `f` with the RSA or ECDSA private `key` and checks the link:
/// named by the in-toto keyid of openssl's idea of the public key, one
/// signature by that keyid that verifies over the canonical JSON of `signed`.
fn assert_signs_as(case: &Case, key: &str, keytype: &str, scheme: &str) {
    fs::set_permissions(key, fs::Permissions::from_mode(0o600)).unwrap();
    let pubpem = openssl(&["pkey", "-in", key, "-pubout"]);
    let pubpem = String::from_utf8(pubpem.stdout).unwrap();
    let keyid = pem_keyid(keytype, scheme, &pubpem);
    let out = sign_off(case, key, "");
    assert_eq!(out.status.code(), Some(0), "{key}: {}", common::show(&out));
    let doc = case.only_link(&format!("step.{}.link", &keyid[..8]), &out);
    let sigs = doc["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1, "{doc}");
    assert_eq!(sigs[0]["keyid"], keyid.as_str());
    let mut message = String::new();
    canonical(&doc["signed"], &mut message);
    let sig = hex::decode(sigs[0]["sig"].as_str().unwrap()).unwrap();
    let public = case.keys.join("check.pub");
    fs::write(&public, &pubpem).unwrap();
    let public = tracelink::keys::PublicKey::load(&public).unwrap();
    assert!(
        public.verify(message.as_bytes(), &sig),
        "{key}: the {scheme} signature verifies"
    );
    assert_eq!(
        doc["signed"]["products"],
        json!({"f": sha256_set(b"content\n")})
    );
    let secrets = pem_body_lines(key);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secret(&out, &secrets);
    fs::remove_file(case.meta.join(format!("step.{}.link", &keyid[..8]))).unwrap();
}

#[test]
fn rsa_keys_sign_with_rsassa_pss_sha256() {
    let case = Case::new();
    let pkcs8 = s(&case.keys.join("rsa.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &pkcs8,
    ]);
    assert_signs_as(&case, &pkcs8, "rsa", "rsassa-pss-sha256");
    let traditional = s(&case.keys.join("rsa-trad.pem"));
    openssl(&["pkey", "-in", &pkcs8, "-traditional", "-out", &traditional]);
    let text = fs::read_to_string(&traditional).unwrap();
    assert!(text.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_signs_as(&case, &traditional, "rsa", "rsassa-pss-sha256");
}

#[test]
fn ecdsa_keys_sign_with_ecdsa_sha2_nistp256() {
    let case = Case::new();
    let pkcs8 = s(&case.keys.join("ec.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &pkcs8,
    ]);
    assert_signs_as(&case, &pkcs8, "ecdsa", "ecdsa-sha2-nistp256");
    let traditional = s(&case.keys.join("ec-trad.pem"));
    openssl(&["pkey", "-in", &pkcs8, "-traditional", "-out", &traditional]);
    let text = fs::read_to_string(&traditional).unwrap();
    assert!(text.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_signs_as(&case, &traditional, "ecdsa", "ecdsa-sha2-nistp256");
}

#[test]
fn ecdsa_key_from_ecparam_genkey_with_parameters_block_signs() {
    // `openssl ecparam -genkey -name prime256v1 -out key.pem` writes an
    // "EC PARAMETERS" block before the "EC PRIVATE KEY" block.
    let case = Case::new();
    let key = s(&case.keys.join("ecparam.pem"));
    openssl(&["ecparam", "-genkey", "-name", "prime256v1", "-out", &key]);
    let text = fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("-----BEGIN EC PARAMETERS-----"));
    assert_signs_as(&case, &key, "ecdsa", "ecdsa-sha2-nistp256");
}

#[test]
fn p384_key_is_not_supported_and_names_the_curve() {
    let case = Case::new();
    let key = s(&case.keys.join("p384.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &key,
    ]);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let out = sign_off(&case, &key, "");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not supported") && err.contains("P-384"),
        "{err}"
    );
    assert!(err.contains(&key), "names the key file: {err}");
    case.assert_nothing_written(&["f"], &out);
}

#[test]
fn public_key_as_signing_key_exits_125() {
    let case = Case::new();
    let key = s(&case.keys.join("rfc8032.pub"));
    fs::copy(common::vector("rfc8032.pub"), &key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let out = sign_off(&case, &key, "");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = stderr(&out);
    assert!(err.contains("public key"), "{err}");
    assert!(err.contains(&key), "{err}");
    case.assert_nothing_written(&["f"], &out);
    assert!(
        !err.contains("warning"),
        "a public key may be world-readable; no `private key ... chmod 600` warning: {err}"
    );
}

#[test]
fn private_key_readable_by_others_warns_naming_path_and_0600_does_not() {
    let case = Case::new();
    fs::set_permissions(&case.key, fs::Permissions::from_mode(0o644)).unwrap();
    let out = sign_off(&case, &case.key, "");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains(&case.key),
        "a 0644 private key gives a warning naming it\n{err}"
    );
    assert_no_secret(&out, &[SEED_HEX, RFC8032_PEM_BODY]);
    case.signed(&out);

    let case = Case::new();
    fs::set_permissions(&case.key, fs::Permissions::from_mode(0o640)).unwrap();
    let out = sign_off(&case, &case.key, "");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("warning"),
        "0640 warns too\n{}",
        common::show(&out)
    );

    let case = Case::new();
    assert_eq!(mode(Path::new(&case.key)), 0o600);
    let out = sign_off(&case, &case.key, "");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        !stderr(&out).contains("warning"),
        "no warning for a 0600 key\n{}",
        common::show(&out)
    );
    assert_no_secret(&out, &[SEED_HEX, RFC8032_PEM_BODY]);
}

#[test]
fn private_key_material_never_printed_in_any_key_run() {
    let case = Case::new();
    let legacy = s(&case.keys.join("legacy.json"));
    write_private(
        Path::new(&legacy),
        &fs::read(common::vector("legacy-sslib-key.json")).unwrap(),
    );
    // Malformed variants of the real key: errors must not quote the file.
    let truncated = s(&case.keys.join("truncated.pem"));
    write_private(
        Path::new(&truncated),
        format!("-----BEGIN PRIVATE KEY-----\n{RFC8032_PEM_BODY}\n").as_bytes(),
    );
    let bad_json = s(&case.keys.join("bad.json"));
    write_private(
        Path::new(&bad_json),
        format!(r#"{{"keytype": "ed25519", "keyval": {{"private": "{SEED_HEX}"}}"#).as_bytes(),
    );
    let wrong_public = s(&case.keys.join("wrong-public.json"));
    write_private(
        Path::new(&wrong_public),
        format!(
            r#"{{"keytype": "ed25519", "scheme": "ed25519", "keyval": {{"public": "{}", "private": "{SEED_HEX}"}}}}"#,
            "00".repeat(32)
        )
        .as_bytes(),
    );
    let short_seed = s(&case.keys.join("short-seed.json"));
    write_private(
        Path::new(&short_seed),
        format!(
            r#"{{"keytype": "ed25519", "scheme": "ed25519", "keyval": {{"public": "{PUBLIC_HEX}", "private": "{}"}}}}"#,
            &SEED_HEX[..62]
        )
        .as_bytes(),
    );
    for (key, flags, ok) in [
        (case.key.as_str(), "", true),
        (case.key.as_str(), "--use-dsse", true),
        (legacy.as_str(), "", true),
        (truncated.as_str(), "", false),
        (bad_json.as_str(), "", false),
        (wrong_public.as_str(), "", false),
        (short_seed.as_str(), "", false),
    ] {
        let run = Case::new();
        let out = sign_off(&run, key, flags);
        assert_eq!(
            out.status.code(),
            Some(if ok { 0 } else { 125 }),
            "{key} {flags}\n{}",
            common::show(&out)
        );
        assert_no_secret(
            &out,
            &[
                SEED_HEX,
                &SEED_HEX[..8],
                &SEED_HEX[..62],
                RFC8032_PEM_BODY,
                "nWGxne",
            ],
        );
    }
}

// ---------------------------------------------------------------- 5. keygen

#[test]
fn keygen_writes_0600_key_and_pub_and_prints_keyid_the_link_uses() {
    let case = Case::new();
    let key = s(&case.keys.join("alice"));
    let pubkey = s(&case.keys.join("alice.pub"));
    let out = case.tl(&["keygen", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let printed = String::from_utf8(out.stdout.clone()).unwrap();
    let keyid = printed.trim_end_matches('\n');
    assert_eq!(printed, format!("{keyid}\n"), "one line");
    assert!(
        keyid.len() == 64
            && keyid
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "64 lowercase hex: {printed:?}"
    );
    assert_eq!(mode(Path::new(&key)), 0o600, "private key mode");
    assert_eq!(
        mode(Path::new(&pubkey)),
        0o644 & !umask(),
        "public key mode"
    );

    let pem_text = fs::read_to_string(&key).unwrap();
    assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let pub_text = fs::read_to_string(&pubkey).unwrap();
    let public = spki_pem_public_hex(&pub_text);
    assert_eq!(
        keyid,
        keyid_of(&public, false),
        "printed keyid is the Python keyid"
    );

    // openssl accepts both files and agrees on the public key.
    openssl(&["pkey", "-in", &key, "-noout"]);
    let pubout = openssl(&["pkey", "-in", &key, "-pubout"]);
    assert_eq!(String::from_utf8(pubout.stdout).unwrap(), pub_text);
    openssl(&["pkey", "-pubin", "-in", &pubkey, "-noout"]);

    // A link signed with it carries that keyid.
    let out = sign_off(&case, &key, "");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(!stderr(&out).contains("warning"), "{}", common::show(&out));
    let doc = case.only_link(&format!("step.{}.link", &keyid[..8]), &out);
    check_signed(&doc, &public, keyid);
    let body = pem_body_lines(&key);
    assert_no_secret(&out, &body.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn keygen_legacy_keyid_format_prints_legacy_keyid() {
    let case = Case::new();
    let key = s(&case.keys.join("k"));
    let out = case.tl(&["keygen", "--keyid-format", "legacy", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let public = spki_pem_public_hex(&fs::read_to_string(format!("{key}.pub")).unwrap());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", keyid_of(&public, true))
    );
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let case = Case::new();
    let key = case.keys.join("k");
    let pubkey = case.keys.join("k.pub");
    let out = case.tl(&["keygen", &s(&key)]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let (priv1, pub1) = (fs::read(&key).unwrap(), fs::read(&pubkey).unwrap());

    let out = case.tl(&["keygen", &s(&key)]);
    assert_ne!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        out.stdout.is_empty(),
        "no keyid printed\n{}",
        common::show(&out)
    );
    assert!(stderr(&out).contains("--force"), "{}", common::show(&out));
    assert_eq!(fs::read(&key).unwrap(), priv1, "private key unchanged");
    assert_eq!(fs::read(&pubkey).unwrap(), pub1, "public key unchanged");

    // Only the .pub exists: still refused, nothing created.
    fs::remove_file(&key).unwrap();
    let out = case.tl(&["keygen", &s(&key)]);
    assert_ne!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(!key.exists(), "no private key created next to a kept .pub");
    assert_eq!(fs::read(&pubkey).unwrap(), pub1);

    // --force replaces both, and the private key is 0600 again.
    fs::write(&key, &priv1).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let out = case.tl(&["keygen", "--force", &s(&key)]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_ne!(fs::read(&key).unwrap(), priv1, "--force writes a new key");
    assert_ne!(fs::read(&pubkey).unwrap(), pub1);
    assert_eq!(mode(&key), 0o600);
    let public = spki_pem_public_hex(&fs::read_to_string(&pubkey).unwrap());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", keyid_of(&public, false))
    );
}

// -------------------------------------------------------------- 6. file names

#[test]
fn non_utf8_file_name_exits_125_naming_escaped_path() {
    let case = Case::new();
    case.put("ok", b"ok\n");
    fs::write(case.work.join(OsStr::from_bytes(b"bad\xff")), b"x").unwrap();
    let out = case.run("-m .", &["true"]);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("bad\\xff"),
        "stderr names the escaped path\n{err}"
    );
    case.assert_nothing_written(&["bad\u{FFFD}", "ok"], &out);

    // Excluded: fine, and not recorded.
    let out = case.run("--exclude bad* -m .", &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(signed["materials"], json!({"ok": sha256_set(b"ok\n")}));
}

#[test]
fn non_utf8_directory_name_is_refused_not_recorded_under_a_lossy_name() {
    let case = Case::new();
    let dir = case.work.join(OsStr::from_bytes(b"d\xfe"));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inner"), b"inner\n").unwrap();
    let out = case.run("-m .", &["true"]);
    let link = case.meta.join("step.74c181c7.link");
    let recorded = link
        .exists()
        .then(|| read_json(&link)["signed"]["materials"].to_string());
    assert_eq!(
        out.status.code(),
        Some(125),
        "materials recorded: {recorded:?}\n{}",
        common::show(&out)
    );
    let err = stderr(&out).to_lowercase();
    assert!(err.contains("d\\xfe"), "{}", common::show(&out));
    assert_eq!(entries(&case.meta), Vec::<String>::new());
}

#[test]
fn non_utf8_product_name_exits_125_without_link() {
    let case = Case::new();
    let out = case.run("-p .", &["sh", "-c", r"printf x > $(printf 'new\377')"]);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    let err = stderr(&out).to_lowercase();
    assert!(err.contains("new\\xff"), "{}", common::show(&out));
    assert_eq!(entries(&case.meta), Vec::<String>::new());
}

/// `tracelink run` with the RFC 8032 key, as `runner` (see
/// common::unprivileged_runner: as root, the unprivileged test user, since
/// root reads everything); `bin` is from `runner.prepare`.
fn run_as(
    case: &Case,
    runner: &common::Runner,
    bin: &Path,
    flags: &str,
    command: &[&str],
) -> Output {
    let mut cmd = runner.command(bin);
    cmd.current_dir(&case.work)
        .stdin(Stdio::null())
        .args(case.run_args(&case.key, flags, command));
    common::output(&mut cmd)
}

#[test]
fn unreadable_file_exits_125_naming_it() {
    let test = "unreadable_file_exits_125_naming_it";
    let Some(runner) = common::unprivileged_runner(test) else {
        return;
    };
    let case = Case::new();
    case.put("secret.txt", b"s");
    let bin = runner.prepare(case._tmp.path());
    let file = case.work.join("secret.txt");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    let out = run_as(&case, &runner, &bin, "-m . -p .", &["true"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "as {}: {}",
        runner.name(),
        common::show(&out)
    );
    assert!(
        stderr(&out).contains("secret.txt"),
        "{}",
        common::show(&out)
    );
    case.assert_nothing_written(&["secret.txt"], &out);
}

#[test]
fn unreadable_directory_exits_125_naming_it() {
    let test = "unreadable_directory_exits_125_naming_it";
    let Some(runner) = common::unprivileged_runner(test) else {
        return;
    };
    let case = Case::new();
    let closed = case.work.join("closed");
    fs::create_dir(&closed).unwrap();
    fs::write(closed.join("f"), b"f").unwrap();
    let bin = runner.prepare(case._tmp.path());
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o000)).unwrap();
    let out = run_as(&case, &runner, &bin, "-m .", &["true"]);
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "as {}: {}",
        runner.name(),
        common::show(&out)
    );
    assert!(stderr(&out).contains("closed"), "{}", common::show(&out));
    assert_eq!(entries(&case.meta), Vec::<String>::new());
}

// ----------------------------------------------------------- 7. digests

#[test]
fn same_size_rewrite_in_the_same_second_gets_the_new_digest() {
    let case = Case::new();
    case.put("f", b"xyz");
    case.put("keep", b"keep me\n");
    let out = case.run("-m . -p .", &["sh", "-c", "printf abc > f"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(fs::read(case.work.join("f")).unwrap(), b"abc");
    let signed = case.signed(&out);
    assert_eq!(
        signed["materials"],
        json!({"f": sha256_set(b"xyz"), "keep": sha256_set(b"keep me\n")})
    );
    assert_eq!(
        signed["products"],
        json!({"f": sha256_set(b"abc"), "keep": sha256_set(b"keep me\n")})
    );
}

#[test]
fn rewrite_with_restored_mtime_of_an_old_file_gets_the_new_digest() {
    // f is old enough for its digest to be reused, and the command puts its
    // mtime back: only the ctime tells that the content changed.
    let case = Case::new();
    case.put("f", b"xyz");
    case.put("keep", b"keep me\n");
    std::thread::sleep(Duration::from_millis(1500));
    let before = fs::metadata(case.work.join("f")).unwrap();
    let reference = s(&case.keys.join("ref"));
    let script = format!("touch -r f {reference} && printf abc > f && touch -r {reference} f");
    let out = case.run("-m . -p .", &["sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let after = fs::metadata(case.work.join("f")).unwrap();
    assert_eq!(
        after.modified().unwrap(),
        before.modified().unwrap(),
        "the test needs the mtime restored"
    );
    let signed = case.signed(&out);
    assert_eq!(
        signed["materials"],
        json!({"f": sha256_set(b"xyz"), "keep": sha256_set(b"keep me\n")})
    );
    assert_eq!(
        signed["products"],
        json!({"f": sha256_set(b"abc"), "keep": sha256_set(b"keep me\n")})
    );
}

#[test]
fn reused_digests_equal_rehashed_digests() {
    let case = Case::new();
    fs::create_dir(case.work.join("sub")).unwrap();
    let big = vec![7u8; 3 << 20];
    case.put("a", b"alpha\n");
    case.put("sub/b", &big);
    std::thread::sleep(Duration::from_millis(1500));
    let want = json!({"a": sha256_set(b"alpha\n"), "sub/b": sha256_set(&big)});
    let mut links = Vec::new();
    for flags in ["-m . -p .", "-m . -p . --rehash"] {
        let out = case.run(flags, &["true"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags}\n{}",
            common::show(&out)
        );
        let signed = case.signed(&out);
        assert_eq!(signed["materials"], want, "{flags}");
        assert_eq!(signed["products"], want, "{flags}");
        let link = case.meta.join("step.74c181c7.link");
        links.push(fs::read(&link).unwrap());
        fs::remove_file(&link).unwrap();
    }
    assert_eq!(
        links[0], links[1],
        "--rehash changes nothing for an untouched tree"
    );
}

#[test]
fn hash_sha256_blake3_records_both_correct_digests() {
    let content = b"some bytes to hash\n";
    let both = |c: &[u8]| {
        json!({
            "blake3": blake3::hash(c).to_hex().to_string(),
            "sha256": sha256_hex(c),
        })
    };
    let case = Case::new();
    case.put("a", content);
    let out = case.run(
        "--hash sha256,blake3 -m . -p .",
        &["sh", "-c", "printf new > b"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(signed["materials"], json!({"a": both(content)}));
    assert_eq!(
        signed["products"],
        json!({"a": both(content), "b": both(b"new")})
    );

    let case = Case::new();
    case.put("a", content);
    let out = case.run("--hash blake3 -x -p .", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed["products"],
        json!({"a": {"blake3": blake3::hash(content).to_hex().to_string()}})
    );
}

#[test]
fn hash_md5_is_refused_naming_md5() {
    let case = Case::new();
    case.put("a", b"a");
    let out = case.run("--hash md5 -m . -p .", &["true"]);
    let code = out.status.code();
    assert!(
        code == Some(2) || code == Some(125),
        "{}",
        common::show(&out)
    );
    assert!(stderr(&out).contains("md5"), "{}", common::show(&out));
    case.assert_nothing_written(&["a"], &out);
}

// ---------------------------------------------------------------- 8. -x

#[test]
fn no_command_records_products_only_with_empty_byproducts_and_command() {
    let case = Case::new();
    fs::create_dir(case.work.join("src")).unwrap();
    case.put("src/main.c", b"int main(void) { return 0; }\n");
    case.put("README", b"readme\n");
    let out = case.run("-x -p .", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let signed = case.signed(&out);
    assert_eq!(
        signed,
        json!({
            "_type": "link",
            "name": "step",
            "command": [],
            "materials": {},
            "products": {
                "README": sha256_set(b"readme\n"),
                "src/main.c": sha256_set(b"int main(void) { return 0; }\n"),
            },
            "byproducts": {},
            "environment": {},
        })
    );
}

#[test]
fn no_command_together_with_a_command_is_an_error() {
    let case = Case::new();
    let out = case.run("-x -p .", &["touch", "made"]);
    let code = out.status.code();
    assert!(
        code == Some(2) || code == Some(125),
        "{}",
        common::show(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("-x") || err.contains("--no-command"), "{err}");
    case.assert_nothing_written(&[], &out);
}

#[test]
fn neither_command_nor_no_command_is_an_error() {
    let case = Case::new();
    let out = case.run("-m . -p .", &[]);
    let code = out.status.code();
    assert!(
        code == Some(2) || code == Some(125),
        "{}",
        common::show(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("--") && err.contains("-x"),
        "says how to give a command: {err}"
    );
    case.assert_nothing_written(&[], &out);
}

#[test]
fn no_materials_or_products_means_precise_mode() {
    let case = Case::new();
    if !nix::unistd::geteuid().is_root() || !Path::new("/dev/fuse").exists() {
        let out = case.run("", &["touch", "made"]);
        assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
        assert!(
            stderr(&out).contains("snapshot mode"),
            "{}",
            common::show(&out)
        );
        common::skip(
            "no_materials_or_products_means_precise_mode",
            "precise mode needs root and /dev/fuse; checked the refusal instead",
        );
        return;
    }
    let out = case.run("", &["touch", "made"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        entries(&case.meta),
        ["step.74c181c7.link", "step.74c181c7.link.trace.json.gz"]
    );
    let doc = read_json(&case.meta.join("step.74c181c7.link"));
    let signed = check_signed(&doc, PUBLIC_HEX, PYTHON_KEYID);
    assert_eq!(signed["materials"], json!({}));
    assert_eq!(signed["products"], json!({"made": sha256_set(b"")}));
    assert_eq!(signed["environment"]["tracelink"]["mode"], json!("precise"));
    assert_eq!(signed["environment"]["tracelink"]["complete"], json!(true));
}

// ------------------------------------------------------ 9. record start|stop

#[test]
fn record_start_then_stop_writes_link_and_removes_unfinished_file() {
    let case = Case::new();
    case.put("a.txt", b"aaa\n");
    let out = case.record("start", "-m .");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let unfinished = ".pkg.74c181c7.link-unfinished";
    assert_eq!(entries(&case.work), [unfinished, "a.txt"]);
    assert_eq!(entries(&case.meta), Vec::<String>::new());
    let doc = read_json(&case.work.join(unfinished));
    let signed = check_signed(&doc, PUBLIC_HEX, PYTHON_KEYID);
    assert_eq!(signed["materials"], json!({"a.txt": sha256_set(b"aaa\n")}));
    assert_eq!(signed["products"], json!({}));

    case.put("b.txt", b"bbb\n");
    let out = case.record("stop", &format!("-p . -d {}", s(&case.meta)));
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        entries(&case.work),
        ["a.txt", "b.txt"],
        "unfinished file removed"
    );
    let doc = case.only_link("pkg.74c181c7.link", &out);
    let signed = check_signed(&doc, PUBLIC_HEX, PYTHON_KEYID);
    assert_eq!(
        signed,
        json!({
            "_type": "link",
            "name": "pkg",
            "command": [],
            "materials": {"a.txt": sha256_set(b"aaa\n")},
            "products": {"a.txt": sha256_set(b"aaa\n"), "b.txt": sha256_set(b"bbb\n")},
            "byproducts": {},
            "environment": {},
        })
    );
}

#[test]
fn record_stop_without_start_exits_125_saying_to_run_start() {
    let case = Case::new();
    case.put("a.txt", b"aaa\n");
    let out = case.record("stop", &format!("-p . -d {}", s(&case.meta)));
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("record start"),
        "{}",
        common::show(&out)
    );
    case.assert_nothing_written(&["a.txt"], &out);
}

#[test]
fn record_stop_refuses_tampered_unfinished_link() {
    let case = Case::new();
    case.put("a.txt", b"aaa\n");
    let out = case.record("start", "-m .");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let unfinished = case.work.join(".pkg.74c181c7.link-unfinished");
    let text = fs::read_to_string(&unfinished).unwrap();
    let good = sha256_hex(b"aaa\n");
    assert!(text.contains(&good));
    let tampered = text.replace(&good, &sha256_hex(b"evil\n"));
    fs::write(&unfinished, &tampered).unwrap();

    let out = case.record("stop", &format!("-p . -d {}", s(&case.meta)));
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        stderr(&out).contains(".pkg.74c181c7.link-unfinished"),
        "names the preliminary link\n{}",
        common::show(&out)
    );
    assert_eq!(
        entries(&case.meta),
        Vec::<String>::new(),
        "no link from a tampered start"
    );
    assert_eq!(
        fs::read_to_string(&unfinished).unwrap(),
        tampered,
        "the evidence is left in place"
    );
}

// ------------------------------------- argument errors before running

/// Bug pinned: `--root /` (or a root that is `/` once canonical, or the
/// default root when the current directory is `/`) was accepted, and the
/// FUSE mount would have been stacked on `/` with nothing to monitor. It is
/// refused before the command runs, exit 2, saying why and pointing to
/// snapshot mode.
#[test]
fn root_slash_is_refused_with_exit_2_before_the_command_runs() {
    let case = Case::new();
    let marker = case.keys.join("command-ran");
    let touch = ["touch", marker.to_str().unwrap()];
    let slash_link = case.keys.join("slash");
    std::os::unix::fs::symlink("/", &slash_link).unwrap();
    let via_link = format!("--root {}", s(&slash_link));
    for flags in ["--root /", "--root /tmp/..", via_link.as_str()] {
        let out = case.run(flags, &touch);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flags}: {}",
            common::show(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("is / (the whole system)")
                && err.contains("stacked on /")
                && err.contains("snapshot mode"),
            "{flags}: says why and what to do instead: {err}"
        );
        assert!(!marker.exists(), "{flags}: the command ran");
        case.assert_nothing_written(&[], &out);
    }
    // No --root: the current directory is the root.
    let mut cmd = common::tracelink();
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .args(case.run_args(&case.key, "", &touch));
    let out = common::output(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("current directory") && err.contains("is / (the whole system)"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran from /");
    case.assert_nothing_written(&[], &out);
}

/// `--isolate` has no sandbox to act on in snapshot mode: refused as an
/// argument error (exit 2) naming the flag, before the command runs.
#[test]
fn isolate_in_snapshot_mode_is_refused_with_exit_2() {
    let case = Case::new();
    let out = case.run("--isolate -m . -p .", &["touch", "made"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(stderr(&out).contains("--isolate"), "{}", common::show(&out));
    case.assert_nothing_written(&[], &out);
}

/// A metadata directory that does not exist is an argument error found
/// before running (docs/recording.md, exit statuses): exit 2, the command does not run.
#[test]
fn missing_metadata_directory_exits_2_without_running_the_command() {
    let case = Case::new();
    let missing = case.meta.join("nope");
    let mut args = case.run_args(&case.key, "-m . -p .", &["touch", "made"]);
    let d = args.iter().position(|a| a == "-d").unwrap();
    args[d + 1] = s(&missing);
    let out = common::output(case.cmd().args(&args));
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(
        stderr(&out).contains(&s(&missing)),
        "{}",
        common::show(&out)
    );
    case.assert_nothing_written(&[], &out);
}

#[test]
fn version_names_the_features_it_was_built_with() {
    let out = common::output(common::tracelink().arg("--version"));
    assert!(out.status.success(), "{}", common::show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = format!("tracelink {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(text.lines().next(), Some(first.as_str()), "{text}");
    for feature in [
        "FUSE passthrough",
        "sha256",
        "blake3",
        "ed25519",
        "rsassa-pss-sha256",
        "ecdsa-sha2-nistp256",
        "--use-dsse",
        "--attest",
        "verify --vsa",
    ] {
        assert!(text.contains(feature), "--version lacks {feature}: {text}");
    }
    let short = common::output(common::tracelink().arg("-V"));
    assert_eq!(String::from_utf8_lossy(&short.stdout).trim(), first);
}
