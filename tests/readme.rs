//! The README's walk through a supply chain and its other ways to record run
//! as written: the commands are taken from the README itself (the indented
//! blocks from "A walk through a whole supply chain" to "The flags keep
//! in-toto-run's names"), run by bash with `set -e` in an empty directory,
//! with the tracelink under test first on PATH.

mod common;

use std::path::Path;
use std::process::Command;

/// The walkthrough's shell commands, as the README prints them.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find("A walk through a whole supply chain")
        .expect("README has the walkthrough");
    let end = start
        + readme[start..]
            .find("The flags keep in-toto-run's names")
            .expect("the walkthrough and the other ways to record end before 'The flags keep in-toto-run's names'");
    let script: Vec<&str> = readme[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .collect();
    assert!(
        script.len() > 10,
        "the walkthrough has only {} command lines",
        script.len()
    );
    script.join("\n") + "\n"
}

#[test]
fn readme_walkthrough_runs_as_written() {
    let test = "readme_walkthrough_runs_as_written";
    if common::precise_unavailable(test, &["cc", "make", "bash"]) {
        return;
    }
    let script = walkthrough();
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tracelink")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = common::output(
        Command::new("bash")
            .args(["-e", "-x", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            // rerun's default work directory goes here, not into /tmp.
            .env("TMPDIR", &tmp),
    );
    let shown = common::show(&out);
    assert!(out.status.success(), "the walkthrough failed:\n{shown}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tracelink: verified: root.layout"),
        "verify did not say verified:\n{shown}"
    );
    assert!(
        stdout.contains("REPRODUCED: 1 identical, 0 different"),
        "the rerun did not reproduce the build:\n{shown}"
    );
    let links = dir.path().join("tl-try/links");
    let names: Vec<String> = std::fs::read_dir(&links)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("build.") && n.ends_with(".link"))
            && names
                .iter()
                .any(|n| n.starts_with("checkout.") && n.ends_with(".link")),
        "links written: {names:?}"
    );
    for kind in ["link", "provenance", "runtime-trace"] {
        let suffix = format!(".link.attest-{kind}.json");
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("build.") && n.ends_with(&suffix)),
            "no build attestation *{suffix} among {names:?}"
        );
    }
    for name in ["build-snapshot", "review"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("{name}.")) && n.ends_with(".link")),
            "no {name} link among {names:?}"
        );
    }
    assert!(
        dir.path()
            .join("tl-try/rebuilt")
            .read_dir()
            .unwrap()
            .count()
            > 0,
        "the second recording wrote nothing"
    );
    assert!(
        dir.path().join("tl-try/hello.vsa.json").is_file(),
        "verify --vsa wrote no summary:\n{shown}"
    );
}
