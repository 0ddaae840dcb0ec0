//! Argument errors are found before anything runs (README, "exit status"):
//! exit status 2, a message naming the problem, the command not run (it
//! would create a marker file) and nothing written to the metadata
//! directory. Also the warning for -P with an unencrypted key, and the
//! message for a FUSE device this user may not open.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How a step is recorded by the invocation under test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Writer {
    /// `run` without -m/-p.
    Precise,
    /// `run -p .`.
    Snapshot,
    /// `record start -m .`.
    RecordStart,
    /// `record stop -p .`.
    RecordStop,
}

const WRITERS: [Writer; 4] = [
    Writer::Precise,
    Writer::Snapshot,
    Writer::RecordStart,
    Writer::RecordStop,
];

struct Case {
    tmp: tempfile::TempDir,
    tree: PathBuf,
    meta: PathBuf,
    key: PathBuf,
    marker: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        let meta = tmp.path().join("meta");
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(&meta).unwrap();
        std::fs::write(tree.join("f"), b"content\n").unwrap();
        let key = common::rfc8032_key(tmp.path());
        let marker = tmp.path().join("marker");
        Case {
            tmp,
            tree,
            meta,
            key,
            marker,
        }
    }

    /// The command every run is given: it would create the marker.
    fn touch(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("touch '{}'", self.marker.display()),
        ]
    }

    fn tracelink(&self) -> Command {
        let mut cmd = common::tracelink();
        cmd.current_dir(&self.tree).stdin(Stdio::null());
        cmd
    }

    /// `run -n STEP -k KEY -d META [-p .] FLAGS -- sh -c 'touch MARKER'`
    fn run(&self, step: &str, meta: &Path, snapshot: bool, flags: &[&str]) -> Output {
        let mut cmd = self.tracelink();
        cmd.args(["run", "-n", step, "-k"])
            .arg(&self.key)
            .arg("-d")
            .arg(meta);
        if snapshot {
            cmd.args(["-p", "."]);
        }
        cmd.args(flags).arg("--").args(self.touch());
        common::output(&mut cmd)
    }

    /// The invocation `writer` records step `step` with (metadata to `meta`).
    fn write(&self, writer: Writer, step: &str, meta: &Path) -> Output {
        match writer {
            Writer::Precise => self.run(step, meta, false, &[]),
            Writer::Snapshot => self.run(step, meta, true, &[]),
            Writer::RecordStart | Writer::RecordStop => {
                let mut cmd = self.tracelink();
                if writer == Writer::RecordStart {
                    cmd.args(["record", "start", "-m", "."]);
                } else {
                    cmd.args(["record", "stop", "-p", "."]).arg("-d").arg(meta);
                }
                cmd.args(["-n", step, "-k"]).arg(&self.key);
                common::output(&mut cmd)
            }
        }
    }

    /// Exit status 2 with `needle` in the message, the command did not run,
    /// and neither the metadata directory nor the tree got a file.
    fn assert_refused(&self, out: &Output, needle: &str) {
        assert_eq!(out.status.code(), Some(2), "{}", common::show(out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "the message names the problem ({needle:?})\n{}",
            common::show(out)
        );
        // Ours, or clap's for flag syntax.
        assert!(
            err.starts_with("tracelink: error: ") || err.starts_with("error: "),
            "{}",
            common::show(out)
        );
        assert!(
            !self.marker.exists(),
            "the command ran\n{}",
            common::show(out)
        );
        self.assert_nothing_written(out);
    }

    fn assert_nothing_written(&self, out: &Output) {
        assert_eq!(
            entries(&self.meta),
            Vec::<String>::new(),
            "metadata directory\n{}",
            common::show(out)
        );
        assert_eq!(
            entries(&self.tree),
            vec!["f".to_string()],
            "tree\n{}",
            common::show(out)
        );
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every writer refuses `step` up front with `needle` in its message.
fn refused_by_every_writer(step: &str, needle: &str) {
    for writer in WRITERS {
        let case = Case::new();
        let out = case.write(writer, step, &case.meta);
        eprintln!("{writer:?}");
        case.assert_refused(&out, needle);
    }
}

#[test]
fn empty_step_name_is_refused_before_running() {
    refused_by_every_writer("", "the step name (-n/--step-name) is empty");
}

#[test]
fn dot_step_name_is_refused_before_running() {
    refused_by_every_writer(".", "the step name (-n/--step-name) \".\" is not a name");
}

#[test]
fn dot_dot_step_name_is_refused_before_running() {
    refused_by_every_writer("..", "the step name (-n/--step-name) \"..\" is not a name");
}

#[test]
fn step_name_with_a_slash_is_refused_before_running_not_after_the_build() {
    // With `meta/a` present, the old check-after-the-run wrote there.
    refused_by_every_writer("a/b", "\"a/b\" contains `/`");
    let case = Case::new();
    std::fs::create_dir(case.meta.join("a")).unwrap();
    let out = case.run("a/b", &case.meta, true, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    assert!(!case.marker.exists(), "{}", common::show(&out));
    assert_eq!(entries(&case.meta.join("a")), Vec::<String>::new());
}

/// The longest step name: 255 bytes less the longest file name written for
/// it, `.<step>.<keyid8>.link.attest-runtime-trace.json.<16 hex>.tmp`.
const MAX_STEP: usize = 255 - 1 - ".01234567.link.attest-runtime-trace.json".len() - 21;

#[test]
fn step_name_too_long_for_its_longest_file_name_is_refused_naming_limit_and_length() {
    assert_eq!(tracelink::stepname::max_len(), MAX_STEP);
    for len in [300, MAX_STEP + 1] {
        let step = "s".repeat(len);
        refused_by_every_writer(
            &step,
            &format!("is {len} bytes long; at most {MAX_STEP} bytes fit"),
        );
        let case = Case::new();
        let out = case.run(&step, &case.meta, true, &[]);
        assert!(stderr(&out).contains("255"), "{}", common::show(&out));
        assert!(
            stderr(&out).contains("attest-runtime-trace"),
            "names the longest file\n{}",
            common::show(&out)
        );
    }
    // Bytes, not characters: 2-byte characters reach the limit at half.
    refused_by_every_writer(&"é".repeat(MAX_STEP / 2 + 1), "bytes long");
}

#[test]
fn step_name_of_the_longest_allowed_length_is_recorded() {
    let step = "s".repeat(MAX_STEP);
    let case = Case::new();
    let out = case.run(&step, &case.meta, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(entries(&case.meta), vec![format!("{step}.74c181c7.link")]);
    assert!(case.marker.exists());
    // record start/stop (the preliminary link is `.<step>.<keyid8>.link-unfinished`)
    let case = Case::new();
    let out = case.write(Writer::RecordStart, &step, &case.meta);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let out = case.write(Writer::RecordStop, &step, &case.meta);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(entries(&case.meta), vec![format!("{step}.74c181c7.link")]);
    // Precise mode writes the trace beside the link.
    if common::precise_unavailable("step_name_of_the_longest_allowed_length_is_recorded", &[]) {
        return;
    }
    let case = Case::new();
    let out = case.run(&step, &case.meta, false, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        entries(&case.meta),
        vec![
            format!("{step}.74c181c7.link"),
            format!("{step}.74c181c7.link.trace.json.gz"),
        ]
    );
}

#[test]
fn every_file_written_for_a_step_is_in_the_one_suffix_list() {
    // The attestation files `--attest` will write are counted already.
    for suffix in [
        "",
        ".trace.json.gz",
        ".attest-link.json",
        ".attest-provenance.json",
        ".attest-runtime-trace.json",
    ] {
        assert!(
            tracelink::link::STEP_FILE_SUFFIXES.contains(&suffix),
            "{suffix:?}"
        );
    }
    let names = tracelink::link::step_file_names("s", "0123456789abcdef");
    assert!(names.contains(&".s.01234567.link-unfinished".to_string()));
    assert!(names.iter().any(
        |n| n.starts_with(".s.01234567.link.attest-runtime-trace.json.") && n.ends_with(".tmp")
    ));
}

#[test]
fn missing_metadata_directory_is_refused_before_running() {
    let case = Case::new();
    let missing = case.tmp.path().join("missing");
    for snapshot in [false, true] {
        let out = case.run("step", &missing, snapshot, &[]);
        case.assert_refused(&out, "does not exist or is not a directory");
    }
    let out = case.write(Writer::RecordStop, "step", &missing);
    assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
}

#[test]
fn metadata_directory_that_is_a_file_is_refused_before_running() {
    let case = Case::new();
    let file = case.tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    for snapshot in [false, true] {
        let out = case.run("step", &file, snapshot, &[]);
        case.assert_refused(&out, "does not exist or is not a directory");
    }
}

/// A read-only bind mount of a directory, unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path) -> Option<ReadOnlyMount> {
        use nix::mount::{MsFlags, mount};
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).ok()?;
        let guard = ReadOnlyMount(dir.to_path_buf());
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ok()?;
        Some(guard)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn read_only_metadata_directory_is_refused_before_running_even_for_root() {
    let test = "read_only_metadata_directory_is_refused_before_running_even_for_root";
    if !nix::unistd::geteuid().is_root() {
        common::skip(test, "needs root for a read-only bind mount");
        return;
    }
    let case = Case::new();
    let Some(_ro) = ReadOnlyMount::new(&case.meta) else {
        common::skip(test, "cannot make a read-only bind mount here");
        return;
    };
    for writer in WRITERS.into_iter().filter(|w| *w != Writer::RecordStart) {
        let out = case.write(writer, "step", &case.meta);
        case.assert_refused(&out, "is not writable");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            common::show(&out)
        );
    }
    // record start writes to the current directory: a read-only one too.
    let _tree_ro = ReadOnlyMount::new(&case.tree).unwrap();
    let out = case.write(Writer::RecordStart, "step", &case.meta);
    case.assert_refused(&out, "is not writable");
}

/// The test user's (uid, gid), or None after a SKIP line.
fn test_user(test: &str) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        common::skip(test, "needs root to switch to the test user");
        return None;
    }
    let Some(name) = std::env::var_os("TRACELINK_TEST_USER") else {
        common::skip(
            test,
            "TRACELINK_TEST_USER is not set (scripts/test.sh sets it up)",
        );
        return None;
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(Some(user)) = nix::unistd::User::from_name(&name) else {
        common::skip(test, &format!("no user {name}"));
        return None;
    };
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// A case the test user owns, with a copy of the binary it can run.
struct UserCase {
    case: Case,
    bin: PathBuf,
    uid: u32,
    gid: u32,
}

impl UserCase {
    fn new(uid: u32, gid: u32) -> UserCase {
        let case = Case::new();
        let top = case.tmp.path();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = top.join("tracelink");
        common::copy_binary(&bin);
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        for p in [&case.tree, &case.meta, &case.key, &case.tree.join("f")] {
            nix::unistd::chown(p.as_path(), Some(uid.into()), Some(gid.into())).unwrap();
        }
        // The marker's directory: the user could create it if the command ran.
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o777)).unwrap();
        UserCase {
            case,
            bin,
            uid,
            gid,
        }
    }

    /// `run -n step -k KEY -d META [-p .] -- sh -c 'touch MARKER'` as the user.
    fn run(&self, snapshot: bool, env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(&self.bin)
        .args(["run", "-n", "step", "-k"])
        .arg(&self.case.key)
        .arg("-d")
        .arg(&self.case.meta);
        if snapshot {
            cmd.args(["-p", "."]);
        }
        cmd.arg("--")
            .args(self.case.touch())
            .current_dir(&self.case.tree)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        common::output(&mut cmd)
    }
}

#[test]
fn unwritable_metadata_directory_is_refused_before_running_for_a_user() {
    let test = "unwritable_metadata_directory_is_refused_before_running_for_a_user";
    let Some((uid, gid)) = test_user(test) else {
        return;
    };
    let user = UserCase::new(uid, gid);
    std::fs::set_permissions(&user.case.meta, std::fs::Permissions::from_mode(0o555)).unwrap();
    for snapshot in [false, true] {
        let out = user.run(snapshot, &[]);
        user.case.assert_refused(&out, "is not writable");
        assert!(
            stderr(&out).contains("Permission denied"),
            "{}",
            common::show(&out)
        );
    }
}

#[test]
fn password_for_an_unencrypted_key_warns_and_records() {
    let case = Case::new();
    let out = case.run("step", &case.meta, true, &["-P", "secret"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        stderr(&out).contains(&format!(
            "tracelink: warning: -P/--password was given, but the key {} is not encrypted",
            case.key.display()
        )),
        "{}",
        common::show(&out)
    );
    assert_eq!(entries(&case.meta), vec!["step.74c181c7.link".to_string()]);
    assert!(case.marker.exists());
    // A bare -P (prompt for the password) does not prompt for a key that
    // needs none: no terminal here (setsid), and the link is written.
    let case = Case::new();
    let mut cmd = case.tracelink();
    cmd.args(["run", "-n", "step", "-P", "-k"])
        .arg(&case.key)
        .arg("-d")
        .arg(&case.meta)
        .args(["-p", ".", "--"])
        .args(case.touch());
    // SAFETY: setsid is async-signal-safe and allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let out = common::output(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        stderr(&out).contains("-P/--password was given, but the key"),
        "{}",
        common::show(&out)
    );
    assert!(
        !stderr(&out).contains("Password for"),
        "{}",
        common::show(&out)
    );
    assert_eq!(entries(&case.meta), vec!["step.74c181c7.link".to_string()]);
    // Without -P: no such warning.
    let case = Case::new();
    let out = case.run("step", &case.meta, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(
        !stderr(&out).contains("--password"),
        "{}",
        common::show(&out)
    );
}

#[test]
fn no_command_is_a_usage_error() {
    let case = Case::new();
    for mode in [&[][..], &["-p", "."][..]] {
        let mut cmd = case.tracelink();
        cmd.args(["run", "-n", "step", "-k"])
            .arg(&case.key)
            .arg("-d")
            .arg(&case.meta)
            .args(mode);
        let out = common::output(&mut cmd);
        case.assert_refused(&out, "no command given");
    }
}

#[test]
fn no_command_flag_together_with_a_command_is_a_usage_error() {
    let case = Case::new();
    let out = case.run("step", &case.meta, true, &["-x"]);
    case.assert_refused(&out, "-x/--no-command was given together with a command");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let case = Case::new();
    let out = case.run("step", &case.meta, true, &["--no-such-flag"]);
    case.assert_refused(&out, "--no-such-flag");
}

#[test]
fn missing_step_name_is_a_usage_error() {
    let case = Case::new();
    let mut cmd = case.tracelink();
    cmd.args(["run", "-k"])
        .arg(&case.key)
        .arg("-d")
        .arg(&case.meta)
        .args(["-p", ".", "--"])
        .args(case.touch());
    let out = common::output(&mut cmd);
    case.assert_refused(&out, "--step-name");
}

#[test]
fn snapshot_flags_in_precise_mode_are_usage_errors() {
    let case = Case::new();
    let out = case.run("step", &case.meta, false, &["--base-path", "."]);
    case.assert_refused(&out, "--base-path is for snapshot mode");
    let out = case.run("step", &case.meta, false, &["--lstrip-paths", "x"]);
    case.assert_refused(&out, "--lstrip-paths is for snapshot mode");
}

#[test]
fn unknown_hash_algorithm_is_a_usage_error() {
    let case = Case::new();
    for snapshot in [false, true] {
        let out = case.run("step", &case.meta, snapshot, &["--hash", "md5"]);
        case.assert_refused(&out, "--hash: unknown digest algorithm \"md5\"");
    }
}

#[test]
fn base_path_that_is_not_a_directory_is_a_usage_error() {
    let case = Case::new();
    let out = case.run("step", &case.meta, true, &["--base-path", "nowhere"]);
    case.assert_refused(&out, "--base-path nowhere: not a directory");
}

/// The message's parts that must not regress: the device's mode and owner,
/// what distributions ship, and both ways out.
fn assert_fuse_message(text: &str, device: &Path) {
    for needle in [
        &format!("cannot open the FUSE device {}", device.display()),
        "mode 0600",
        "owned by root:root",
        "Distributions ship it mode 0666",
        &format!("`chmod 0666 {}`", device.display()),
        "snapshot mode with -m/--materials and -p/--products",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

/// A root-owned file of mode 0600 standing in for a locked-down /dev/fuse.
fn locked_device(dir: &Path) -> PathBuf {
    let device = dir.join("fuse");
    std::fs::write(&device, b"").unwrap();
    std::fs::set_permissions(&device, std::fs::Permissions::from_mode(0o600)).unwrap();
    device
}

#[test]
fn fuse_denied_message_names_mode_owner_and_the_ways_out() {
    if !nix::unistd::geteuid().is_root() {
        common::skip(
            "fuse_denied_message_names_mode_owner_and_the_ways_out",
            "needs root to own the stand-in device",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let device = locked_device(tmp.path());
    let text = tracelink::record::session::fuse_denied_message(&device, nix::errno::Errno::EACCES);
    assert_fuse_message(&text, &device);
}

#[test]
fn unusable_fuse_device_for_a_user_says_how_to_fix_it() {
    let test = "unusable_fuse_device_for_a_user_says_how_to_fix_it";
    let Some((uid, gid)) = test_user(test) else {
        return;
    };
    let user = UserCase::new(uid, gid);
    // Not the real /dev/fuse: other tests use it meanwhile.
    let device = locked_device(user.case.tmp.path());
    let out = user.run(false, &[("TRACELINK_TEST_FUSE_DEVICE", &device)]);
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert_fuse_message(&stderr(&out), &device);
    assert!(!user.case.marker.exists(), "{}", common::show(&out));
    user.case.assert_nothing_written(&out);
}
