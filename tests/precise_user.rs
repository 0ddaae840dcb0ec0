//! Precise recording as an unprivileged user (docs/monitoring.md): through a
//! user namespace that maps the user to itself, with plain FUSE (no
//! passthrough). Runs as the user named by `TRACELINK_TEST_USER`
//! (`scripts/test.sh` creates it and makes /dev/fuse usable, as CI does).

mod common;

use serde_json::{Value, json};
use sha2::Digest as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test user's (name, uid, gid), or None after printing SKIP (under CI:
/// a failure, since CI sets the user up).
fn test_user(test: &str) -> Option<(String, u32, u32)> {
    let skip = |why: String| {
        let msg = format!("SKIP: {test}: {why}");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}; CI must run this test");
        }
        println!("{msg}");
        None
    };
    if !nix::unistd::geteuid().is_root() {
        return skip("needs root to switch to the test user".into());
    }
    let Some(name) = std::env::var_os("TRACELINK_TEST_USER") else {
        return skip("TRACELINK_TEST_USER is not set (scripts/test.sh sets it up)".into());
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(Some(user)) = nix::unistd::User::from_name(&name) else {
        return skip(format!("no user {name}"));
    };
    let fuse_mode = std::fs::metadata("/dev/fuse").map(|m| m.permissions().mode() & 0o777);
    if fuse_mode.ok() != Some(0o666) {
        return skip("/dev/fuse is not usable by other users (mode 0666 needed)".into());
    }
    Some((name, user.uid.as_raw(), user.gid.as_raw()))
}

/// A work area owned by the test user: a copy of the binary (the checkout
/// may not be readable by it), a key, the tree and a metadata directory.
struct Area {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    key: PathBuf,
    tree: PathBuf,
    meta: PathBuf,
    uid: u32,
    gid: u32,
}

impl Area {
    fn new(uid: u32, gid: u32) -> Area {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = top.join("tracelink");
        common::copy_binary(&bin);
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (tree, meta) = (top.join("tree"), top.join("meta"));
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(&meta).unwrap();
        let key = common::rfc8032_key(top);
        for p in [&tree, &meta, &key] {
            nix::unistd::chown(p.as_path(), Some(uid.into()), Some(gid.into())).unwrap();
        }
        Area {
            _tmp: tmp,
            bin,
            key,
            tree,
            meta,
            uid,
            gid,
        }
    }

    fn put(&self, name: &str, content: &[u8]) {
        let path = self.tree.join(name);
        std::fs::write(&path, content).unwrap();
        nix::unistd::chown(&path, Some(self.uid.into()), Some(self.gid.into())).unwrap();
    }

    /// `tracelink run -n step -k KEY -d META EXTRA -- ARGV` in the tree, as
    /// the test user, not yet started.
    fn command(&self, extra: &[&str], argv: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(&self.bin)
        .args(["run", "-n", "step", "-k"])
        .arg(&self.key)
        .arg("-d")
        .arg(&self.meta)
        .args(extra)
        .arg("--")
        .args(argv)
        .current_dir(&self.tree)
        .stdin(std::process::Stdio::null());
        cmd
    }

    /// `tracelink run ... -- ARGV` as the test user, with `PATH=path`.
    fn run_argv(&self, argv: &[&str], path: &str) -> Output {
        common::output(self.command(&[], argv).env("PATH", path))
    }

    /// `tracelink run ... EXTRA -- sh -c SCRIPT` as the test user.
    fn run(&self, extra: &[&str], script: &str) -> Output {
        common::output(&mut self.command(extra, &["sh", "-c", script]))
    }

    fn json(&self, name: &str) -> Value {
        // Links are JSON; traces compact and compressed (format 3).
        tracelink::tracefile::read_json(&std::fs::read(self.meta.join(name)).unwrap(), 1 << 30)
            .unwrap()
    }
}

fn sha(bytes: &[u8]) -> Value {
    json!({"sha256": hex::encode(sha2::Sha256::digest(bytes))})
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unprivileged_precise_run_records_exact_materials_and_products() {
    let Some((_, uid, gid)) = test_user("unprivileged_precise_run") else {
        return;
    };
    let area = Area::new(uid, gid);
    area.put("read.txt", b"read me\n");
    area.put("append.txt", b"old\n");
    area.put("gone.txt", b"bye\n");
    area.put("move.txt", b"moving\n");
    area.put("untouched.txt", b"never read\n");
    let out = area.run(
        &[],
        "cat read.txt > copy.txt && echo new >> append.txt && rm gone.txt && mv move.txt moved.txt && ls -l > /dev/null",
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert_eq!(
        entries(&area.meta),
        ["step.74c181c7.link", "step.74c181c7.link.trace.json.gz"]
    );
    let link = area.json("step.74c181c7.link");
    let signed = &link["signed"];
    assert_eq!(
        signed["materials"],
        json!({
            "append.txt": sha(b"old\n"),
            "gone.txt": sha(b"bye\n"),
            "move.txt": sha(b"moving\n"),
            "read.txt": sha(b"read me\n"),
        })
    );
    assert_eq!(
        signed["products"],
        json!({
            "append.txt": sha(b"old\nnew\n"),
            "copy.txt": sha(b"read me\n"),
            "moved.txt": sha(b"moving\n"),
        })
    );
    assert_eq!(signed["environment"]["tracelink"]["complete"], json!(true));
    let trace = area.json("step.74c181c7.link.trace.json.gz");
    assert_eq!(
        trace["passthrough"],
        json!(false),
        "no passthrough without CAP_SYS_ADMIN"
    );
    assert_eq!(trace["uid"], json!(uid));
    // Files the command created belong to the user.
    let meta = std::fs::metadata(area.tree.join("copy.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
}

#[test]
fn unprivileged_straggler_makes_the_run_incomplete() {
    let Some((_, uid, gid)) = test_user("unprivileged_straggler") else {
        return;
    };
    let area = Area::new(uid, gid);
    area.put("a.txt", b"a\n");
    let started = std::time::Instant::now();
    let out = area.run(&[], "sleep 60 & cat a.txt");
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the straggler must be killed, not waited for"
    );
    assert_eq!(entries(&area.meta), ["step.74c181c7.link.trace.json.gz"]);
    let trace = area.json("step.74c181c7.link.trace.json.gz");
    assert_eq!(trace["complete"], json!(false));
    assert_eq!(
        trace["stragglers"].as_array().map(Vec::len),
        Some(1),
        "{trace}"
    );
}

/// As root every file is readable, so the refusals of unreadable files and
/// directories (snapshot mode) are checked here, as the test user.
#[test]
fn unprivileged_snapshot_refuses_unreadable_file_and_directory() {
    let Some((_, uid, gid)) = test_user("unprivileged_snapshot_refuses_unreadable") else {
        return;
    };
    for (what, setup) in [("file", "locked.txt"), ("directory", "locked")] {
        let area = Area::new(uid, gid);
        area.put("ok.txt", b"ok\n");
        let locked = area.tree.join(setup);
        if what == "directory" {
            std::fs::create_dir(&locked).unwrap();
            std::fs::write(locked.join("secret.txt"), b"secret\n").unwrap();
        } else {
            std::fs::write(&locked, b"secret\n").unwrap();
        }
        nix::unistd::chown(&locked, Some(uid.into()), Some(gid.into())).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = area.run(&["-m", ".", "-p", "."], "true");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            out.status.code(),
            Some(125),
            "{what}: {}",
            common::show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(setup),
            "{what}: the error names {setup}: {stderr}"
        );
        assert_eq!(entries(&area.meta), Vec::<String>::new(), "{what}: no link");
    }
}

/// Regression: in the user namespace other owners are unmapped, and the
/// kernel refused to create entries in the user's own directory when its
/// group was root (seen in the overhead benchmark). Permission outcomes must
/// be those of a native run: allowed where the user may write, refused where
/// it may not.
#[test]
fn unprivileged_writes_follow_the_real_permissions_of_foreign_owned_entries() {
    let Some((_, uid, gid)) = test_user("unprivileged_foreign_owners") else {
        return;
    };
    let area = Area::new(uid, gid);
    let shared = area.tree.join("shared");
    std::fs::create_dir(&shared).unwrap();
    nix::unistd::chown(&shared, Some(uid.into()), Some(0.into())).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
    let rootdir = area.tree.join("rootdir");
    std::fs::create_dir(&rootdir).unwrap();
    std::fs::set_permissions(&rootdir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(rootdir.join("root.txt"), b"root\n").unwrap();
    let out = area.run(
        &[],
        "mkdir shared/made && echo x > shared/made/f && cat rootdir/root.txt > copy && \
         if touch rootdir/nope 2>/dev/null; then echo WRONG; exit 9; fi",
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(area.tree.join("shared/made/f").exists());
    assert!(!rootdir.join("nope").exists());
    let link = area.json("step.74c181c7.link");
    assert_eq!(
        link["signed"]["products"],
        json!({"copy": sha(b"root\n"), "shared/made/f": sha(b"x\n")})
    );
    assert_eq!(
        link["signed"]["materials"],
        json!({"rootdir/root.txt": sha(b"root\n")})
    );
}

/// Regression: with a `$PATH` directory the user may not search, execvp
/// reports a missing command as EACCES, and tracelink said 126 "Permission
/// denied" where a shell says 127 "command not found".
#[test]
fn missing_command_with_an_unsearchable_path_directory_is_not_found() {
    let Some((_, uid, gid)) = test_user("missing_command_unsearchable_path") else {
        return;
    };
    let area = Area::new(uid, gid);
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = format!("{}:/usr/bin:/bin", private.path().display());
    let out = area.run_argv(&["tracelink-no-such-command"], &path);
    assert_eq!(out.status.code(), Some(127), "{}", common::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        common::show(&out)
    );
    // A command found further down the PATH still runs.
    let out = area.run_argv(&["true"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
}

/// A directory rename is recorded with everything below the directory (the
/// daemon lists it after the move). A subdirectory the daemon cannot list
/// (mode 000, as the user) used to be passed over silently: the files in it
/// were missing from the link of a complete run. It makes the run
/// incomplete now.
#[test]
fn rename_of_a_directory_with_an_unlistable_subdirectory_makes_the_run_incomplete() {
    let Some((_, uid, gid)) = test_user("rename_unlistable_subdirectory") else {
        return;
    };
    let area = Area::new(uid, gid);
    let sub = area.tree.join("d/sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("f"), b"hidden\n").unwrap();
    for p in [area.tree.join("d"), sub.clone(), sub.join("f")] {
        nix::unistd::chown(&p, Some(uid.into()), Some(gid.into())).unwrap();
    }
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = area.run(&[], "mv d e");
    // Let the tempdir's cleanup into e/sub.
    let _ = std::fs::set_permissions(
        area.tree.join("e/sub"),
        std::fs::Permissions::from_mode(0o755),
    );
    assert!(area.tree.join("e").is_dir(), "{}", common::show(&out));
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert_eq!(entries(&area.meta), ["step.74c181c7.link.trace.json.gz"]);
    let trace = area.json("step.74c181c7.link.trace.json.gz");
    assert_eq!(trace["complete"], json!(false));
    assert!(
        trace
            .to_string()
            .contains("cannot list what a rename moved from d/sub"),
        "{trace}"
    );
}
