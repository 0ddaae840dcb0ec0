//! `tracelink run --store` and `tracelink rerun` on real recorded builds:
//! a deterministic make build reruns with every product identical; a build
//! that embeds the time is reported with the differing product and offset;
//! a material changed in the tree refuses the rerun (no store) naming the
//! file, and reruns from the store; an input the rerun looks for that the
//! recording never did is reported as hidden.
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
        let mut cmd = tracelink();
        cmd.current_dir(self.proj())
            .args(["run", "-n", "build", "-k"])
            .arg(self.path("key.pem"))
            .arg("-d")
            .arg(self.dir.path());
        if store {
            cmd.arg("--store").arg(self.path("store"));
        }
        let out = output(cmd.args(["--", "make"]));
        assert!(out.status.success(), "{}", show(&out));
        fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "link"))
            .expect("a link was written")
    }

    fn rerun(&self, link: &Path, extra: &[&str]) -> Output {
        output(
            tracelink()
                .arg("rerun")
                .arg(link)
                .arg("--workdir")
                .arg(self.path("rerun"))
                .args(extra),
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
    let out = p.rerun(&link, &[]);
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
