//! The FUSE daemon reaches backing files by identity, never by a name it
//! saw earlier (docs/monitoring.md): after hard-link, unlink and rename
//! games, every request on an inode the kernel names by number reaches that
//! inode, and the link names it by a name that still refers to it, with the
//! digest of the bytes the command was served.
//!
//! Each test is named for a bug of the daemon that kept, for a non-directory
//! inode, only (parent directory, the last name the kernel looked it up
//! under): the test failed with it (wrong bytes served, a write or chmod
//! landing on another file, ENOENT for a file that exists).
//!
//! Every test runs `tracelink run` as root in its own temporary directory:
//! `root/` (the monitored tree and the command's current directory),
//! `meta/` (the metadata directory) and the key beside them. Without root or
//! /dev/fuse each test prints `SKIP: reason` and passes (fails under CI).

mod common;

use serde_json::{Value, json};
use sha2::Digest as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Output, Stdio};

const A: &[u8] = b"alpha: the content of a\n";
const V: &[u8] = b"victim: the content of v\n";

struct Case {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    meta: PathBuf,
    key: PathBuf,
}

impl Case {
    /// `root/a` and its hard link `root/b` (content A), `root/v` (content
    /// V), all mode 0644; `None` after a SKIP line where precise recording
    /// cannot run.
    fn new(test: &str) -> Option<Case> {
        if !nix::unistd::geteuid().is_root() {
            common::skip(test, "precise recording needs root");
            return None;
        }
        if !std::path::Path::new("/dev/fuse").exists() {
            common::skip(test, "precise recording needs /dev/fuse");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let (root, meta) = (base.join("root"), base.join("meta"));
        fs::create_dir(&root).unwrap();
        fs::create_dir(&meta).unwrap();
        let key = common::rfc8032_key(&base);
        fs::write(root.join("a"), A).unwrap();
        fs::hard_link(root.join("a"), root.join("b")).unwrap();
        fs::write(root.join("v"), V).unwrap();
        for f in ["a", "v"] {
            fs::set_permissions(root.join(f), fs::Permissions::from_mode(0o644)).unwrap();
        }
        Some(Case {
            _tmp: tmp,
            root,
            meta,
            key,
        })
    }

    /// `tracelink run -- sh -c SCRIPT` in the root.
    fn run(&self, script: &str) -> Output {
        common::output(
            common::tracelink()
                .current_dir(&self.root)
                .stdin(Stdio::null())
                .args(["run", "-n", "step", "-k"])
                .arg(&self.key)
                .arg("-d")
                .arg(&self.meta)
                .args(["--", "sh", "-c", script]),
        )
    }

    /// The signed part of the link, after checking that the run succeeded
    /// and the link claims completeness.
    fn link(&self, out: &Output) -> Value {
        assert_eq!(out.status.code(), Some(0), "{}", common::show(out));
        let path = fs::read_dir(&self.meta)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "link"))
            .unwrap_or_else(|| panic!("no link in {:?}\n{}", self.meta, common::show(out)));
        let link: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        let signed = link["signed"].clone();
        assert_eq!(
            signed["environment"]["tracelink"]["complete"], true,
            "{signed:#}"
        );
        signed
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.root.join(name)).unwrap()
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.root.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }
}

fn sha(content: &[u8]) -> Value {
    json!({ "sha256": hex::encode(sha2::Sha256::digest(content)) })
}

/// `{path: {"sha256": digest of content}}`.
fn artifacts(list: &[(&str, &[u8])]) -> Value {
    Value::Object(
        list.iter()
            .map(|(path, content)| ((*path).to_owned(), sha(content)))
            .collect(),
    )
}

/// `stat a; stat b` gives the kernel two names of one inode; `mv v b` then
/// takes `b` from it. The daemon used to reach that inode as `b`, so `cat a`
/// printed v's bytes while the link recorded that `a` was read, with a's digest.
#[test]
fn a_hard_link_renamed_over_after_both_names_were_looked_up_still_serves_the_inode_asked_for() {
    let Some(case) = Case::new(
        "a_hard_link_renamed_over_after_both_names_were_looked_up_still_serves_the_inode_asked_for",
    ) else {
        return;
    };
    let out = case.run("stat a >/dev/null; stat b >/dev/null; mv v b; cat a");
    let signed = case.link(&out);
    assert_eq!(
        out.stdout,
        A,
        "cat a printed a's bytes\n{}",
        common::show(&out)
    );
    assert_eq!(
        signed["materials"],
        artifacts(&[("a", A), ("b", A), ("v", V)]),
        "{signed:#}"
    );
    assert_eq!(signed["products"], artifacts(&[("b", V)]), "{signed:#}");
}

/// The same game, then an append through `a`: it used to land on v's file
/// (now `b`), and the link recorded neither the right material nor product.
#[test]
fn an_append_through_a_name_whose_hard_link_was_renamed_over_changes_that_file() {
    let Some(case) =
        Case::new("an_append_through_a_name_whose_hard_link_was_renamed_over_changes_that_file")
    else {
        return;
    };
    let out = case.run("stat a >/dev/null; stat b >/dev/null; mv v b; echo x >> a");
    let signed = case.link(&out);
    let appended = [A, b"x\n"].concat();
    assert_eq!(case.read("a"), appended);
    assert_eq!(case.read("b"), V);
    assert_eq!(
        signed["materials"],
        artifacts(&[("a", A), ("b", A), ("v", V)]),
        "{signed:#}"
    );
    assert_eq!(
        signed["products"],
        artifacts(&[("a", &appended), ("b", V)]),
        "{signed:#}"
    );
}

/// SETATTR reaches the inode too: `chmod 600 a` used to change v's file.
#[test]
fn a_chmod_through_a_name_whose_hard_link_was_renamed_over_changes_that_file() {
    let Some(case) =
        Case::new("a_chmod_through_a_name_whose_hard_link_was_renamed_over_changes_that_file")
    else {
        return;
    };
    let out = case.run("stat a >/dev/null; stat b >/dev/null; mv v b; chmod 600 a");
    let signed = case.link(&out);
    assert_eq!(case.mode("a"), 0o600);
    assert_eq!(case.mode("b"), 0o644, "v's file (now b) keeps its mode");
    assert_eq!(
        signed["materials"],
        artifacts(&[("b", A), ("v", V)]),
        "{signed:#}"
    );
    assert_eq!(signed["products"], artifacts(&[("b", V)]), "{signed:#}");
}

/// `ln a c; rm c`: the daemon used to reach a's inode as `c`, gone, so
/// `cat a` failed with ENOENT (it works natively).
#[test]
fn a_file_stays_readable_after_a_new_hard_link_to_it_is_removed() {
    let Some(case) = Case::new("a_file_stays_readable_after_a_new_hard_link_to_it_is_removed")
    else {
        return;
    };
    let out = case.run("ln a c; rm c; cat a");
    let signed = case.link(&out);
    assert_eq!(out.stdout, A, "{}", common::show(&out));
    assert_eq!(signed["materials"], artifacts(&[("a", A)]), "{signed:#}");
    assert_eq!(signed["products"], json!({}), "{signed:#}");
    assert!(!case.root.join("c").exists());
}

/// `stat a; stat b; rm b`: the inode was last looked up as `b`, so `cat a`
/// failed with ENOENT.
#[test]
fn a_file_stays_readable_after_its_last_looked_up_hard_link_is_removed() {
    let Some(case) =
        Case::new("a_file_stays_readable_after_its_last_looked_up_hard_link_is_removed")
    else {
        return;
    };
    let out = case.run("stat a >/dev/null; stat b >/dev/null; rm b; cat a");
    let signed = case.link(&out);
    assert_eq!(out.stdout, A, "{}", common::show(&out));
    assert_eq!(
        signed["materials"],
        artifacts(&[("a", A), ("b", A)]),
        "{signed:#}"
    );
    assert_eq!(signed["products"], json!({}), "{signed:#}");
}

/// A file unlinked while open is still that inode: reopening it through
/// /proc used to fail with ENOENT (the daemon looked for its old name).
#[test]
fn an_unlinked_open_file_can_be_reopened_through_proc() {
    let Some(case) = Case::new("an_unlinked_open_file_can_be_reopened_through_proc") else {
        return;
    };
    fs::remove_file(case.root.join("b")).unwrap();
    let out = case.run("exec 3<a; rm a; cat /proc/self/fd/3");
    let signed = case.link(&out);
    assert_eq!(out.stdout, A, "{}", common::show(&out));
    assert_eq!(signed["materials"], artifacts(&[("a", A)]), "{signed:#}");
    assert_eq!(signed["products"], json!({}), "{signed:#}");
}

/// One descriptor per inode the kernel references can run out (the session
/// raises RLIMIT_NOFILE to its hard limit; here the hard limit is 256 and the
/// command reads 1000 files). The requests that find no descriptor fail with
/// EMFILE, as docs/monitoring.md says, and nothing is served or recorded wrongly: every
/// material the link lists has the digest of its file. (The daemon also tells
/// the observer, `Observer::failure`, so that the run is incomplete.)
#[test]
fn running_out_of_descriptors_fails_requests_with_emfile_and_records_nothing_wrong() {
    let test = "running_out_of_descriptors_fails_requests_with_emfile_and_records_nothing_wrong";
    let Some(case) = Case::new(test) else {
        return;
    };
    if !common::have("prlimit") {
        common::skip(test, "prlimit is not installed");
        return;
    }
    for i in 0..1000 {
        fs::write(case.root.join(format!("f{i:04}")), format!("file {i}\n")).unwrap();
    }
    let out = common::output(
        std::process::Command::new("prlimit")
            .arg("--nofile=256:256")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_tracelink"))
            .current_dir(&case.root)
            .stdin(Stdio::null())
            .args(["run", "-n", "step", "-k"])
            .arg(&case.key)
            .arg("-d")
            .arg(&case.meta)
            .args(["--", "sh", "-c", "cat f* >/dev/null"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The daemon could not serve every open as the real filesystem would
    // have: the run is incomplete, so nothing is signed.
    assert_eq!(out.status.code(), Some(125), "{}", common::show(&out));
    assert!(
        stderr.contains("Too many open files") && stderr.contains("incomplete"),
        "{}",
        common::show(&out)
    );
    let links: Vec<_> = fs::read_dir(&case.meta)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "link"))
        .collect();
    assert!(links.is_empty(), "no link may be signed: {links:?}");
}
