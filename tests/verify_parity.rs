//! Differential test: `tracelink verify` against in-toto 3.1.0's
//! `in-toto-verify` on whole supply chains (issue 4, point 1).
//!
//! `scripts/gen-verify-cases.py` (run with the in-toto venv's python) writes
//! a directory per case into a temporary directory: a signed root layout,
//! the owners' public keys, a link directory and a `work/` tree, made with
//! in-toto's own Python API. Each case is verified by both programs with the
//! same absolute arguments, each in its own fresh copy of `work/` as the
//! current directory (inspections run there and record it). The test
//! checks that in-toto-verify's verdict is the one the case was written for
//! (so a broken generator is caught, not silently compared), that tracelink
//! exits 0 or 1 and never anything else, and that its verdict equals
//! in-toto-verify's.
//!
//! Without the venv the test prints `SKIP` (and fails under CI). Set
//! `TRACELINK_VERIFY_CASES=name,name` to run only some cases.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const GENERATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen-verify-cases.py");

/// At least this many cases, passing and failing (the generator has 131:
/// 57 passing, 74 failing).
const MIN_CASES: usize = 100;
const MIN_PASSING: usize = 40;
const MIN_FAILING: usize = 55;

/// A verifier that runs longer than this is killed (and the case fails).
const TIMEOUT: Duration = Duration::from_secs(60);

struct Case {
    name: String,
    description: String,
    dir: PathBuf,
    layout: PathBuf,
    keys: Vec<PathBuf>,
    link_dir: PathBuf,
    expect_pass: bool,
}

struct Outcome {
    intoto: Output,
    tracelink: Output,
    intoto_time: Duration,
    tracelink_time: Duration,
}

fn load_case(dir: &Path) -> Case {
    let path = dir.join("case.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{}: no string {k}", path.display()))
            .to_owned()
    };
    let expect_pass = match s("expect").as_str() {
        "pass" => true,
        "fail" => false,
        other => panic!("{}: expect {other:?}", path.display()),
    };
    Case {
        name: s("name"),
        description: s("description"),
        layout: dir.join(s("layout")),
        keys: v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| dir.join(k.as_str().expect("key path")))
            .collect(),
        link_dir: dir.join(s("link_dir")),
        dir: dir.to_owned(),
        expect_pass,
    }
}

/// Copies the tree `from` to `to` (regular files, directories, symlinks).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&src, &dst);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs `cmd` in `cwd` with its output in files beside `cwd`, killing it
/// after `TIMEOUT`.
fn run(mut cmd: Command, cwd: &Path) -> Output {
    let out_path = cwd.with_extension("stdout");
    let err_path = cwd.with_extension("stderr");
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = Instant::now();
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = fs::read(&err_path).unwrap();
    if start.elapsed() > TIMEOUT {
        stderr.extend_from_slice(format!("\n[killed after {TIMEOUT:?}]\n").as_bytes());
    }
    Output {
        status,
        stdout: fs::read(&out_path).unwrap(),
        stderr,
    }
}

fn verify_case(case: &Case, venv: &Path, scratch: &Path) -> Outcome {
    let run_dir = scratch.join(&case.name);
    fs::create_dir_all(&run_dir).unwrap();
    let work = case.dir.join("work");

    let cwd = run_dir.join("in-toto");
    copy_tree(&work, &cwd);
    let mut cmd = Command::new(venv.join("bin/in-toto-verify"));
    cmd.arg("--layout")
        .arg(&case.layout)
        .arg("--verification-keys")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(&case.link_dir);
    let start = Instant::now();
    let intoto = run(cmd, &cwd);
    let intoto_time = start.elapsed();

    let cwd = run_dir.join("tracelink");
    copy_tree(&work, &cwd);
    let mut cmd = common::tracelink();
    cmd.arg("verify")
        .arg("--layout")
        .arg(&case.layout)
        .arg("--verification-keys")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(&case.link_dir);
    let start = Instant::now();
    let tracelink = run(cmd, &cwd);
    let tracelink_time = start.elapsed();

    Outcome {
        intoto,
        tracelink,
        intoto_time,
        tracelink_time,
    }
}

fn verdict(status: &ExitStatus) -> &'static str {
    match status.code() {
        Some(0) => "pass",
        Some(1) => "fail",
        Some(_) => "fail (exit != 1)",
        None => "killed",
    }
}

#[test]
fn verify_parity_with_in_toto_verify() {
    let Some(venv) = common::intoto_venv("verify_parity_with_in_toto_verify") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cases_dir = tmp.path().join("cases");
    let gen_start = Instant::now();
    let gen_out = common::output(
        Command::new(venv.join("bin/python"))
            .arg(GENERATOR)
            .arg(&cases_dir),
    );
    assert!(
        gen_out.status.success(),
        "{GENERATOR} failed:\n{}",
        common::show(&gen_out)
    );
    let index: Value =
        serde_json::from_slice(&fs::read(cases_dir.join("cases.json")).unwrap()).unwrap();
    assert_eq!(
        index["in_toto_version"], "3.1.0",
        "venv has another in-toto"
    );
    let gen_time = gen_start.elapsed();
    let only: Option<Vec<String>> = std::env::var("TRACELINK_VERIFY_CASES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().to_owned()).collect());
    let cases: Vec<Case> = index["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|n| n.as_str().expect("case name"))
        .filter(|n| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .map(|n| load_case(&cases_dir.join(n)))
        .collect();

    // Verify every case, a few at a time.
    let scratch = tmp.path().join("runs");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let outcome = verify_case(case, &venv, &scratch);
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let results: Vec<Outcome> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every case ran"))
        .collect();

    // Report.
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(4);
    println!(
        "{:width$}  expect  in-toto  tracelink  (ms: in-toto, tracelink)",
        "case",
        width = width
    );
    let mut generator_errors = Vec::new();
    let mut bad_exits = Vec::new();
    let mut mismatches = Vec::new();
    for (case, out) in cases.iter().zip(&results) {
        let expect = if case.expect_pass { "pass" } else { "fail" };
        let intoto = verdict(&out.intoto.status);
        let tracelink = verdict(&out.tracelink.status);
        let intoto_pass = out.intoto.status.success();
        let tracelink_pass = out.tracelink.status.success();
        let mut flags = String::new();
        if intoto_pass != case.expect_pass {
            flags.push_str("  <- in-toto differs from expect");
            generator_errors.push(case);
        }
        if !matches!(out.tracelink.status.code(), Some(0 | 1)) {
            flags.push_str("  <- tracelink exit status");
            bad_exits.push(case);
        }
        if tracelink_pass != intoto_pass {
            flags.push_str("  <- MISMATCH");
            mismatches.push(case);
        }
        println!(
            "{:width$}  {expect:6}  {intoto:7}  {tracelink:9}  ({:4}, {:4}){flags}",
            case.name,
            out.intoto_time.as_millis(),
            out.tracelink_time.as_millis(),
        );
    }
    let passing = cases.iter().filter(|c| c.expect_pass).count();
    let failing = cases.len() - passing;
    println!(
        "{} cases ({passing} passing, {failing} failing) generated in {:.1} s, verified in \
         {:.1} s with {workers} workers; {} mismatches, {} bad tracelink exits, {} generator errors",
        cases.len(),
        gen_time.as_secs_f64(),
        elapsed.as_secs_f64(),
        mismatches.len(),
        bad_exits.len(),
        generator_errors.len()
    );

    let mut report = String::new();
    let mut detail = |title: &str, list: &[&Case]| {
        if list.is_empty() {
            return;
        }
        report.push_str(&format!("\n=== {title}: {}\n", list.len()));
        for case in list {
            let out = &results[cases.iter().position(|c| c.name == case.name).unwrap()];
            report.push_str(&format!(
                "\n--- {} (expect {}): {}\n--- in-toto-verify: {}\n--- tracelink verify: {}\n",
                case.name,
                if case.expect_pass { "pass" } else { "fail" },
                case.description,
                common::show(&out.intoto),
                common::show(&out.tracelink)
            ));
        }
    };
    detail(
        "cases where in-toto-verify contradicts the generator's expect",
        &generator_errors,
    );
    detail("cases where tracelink exits neither 0 nor 1", &bad_exits);
    detail(
        "cases where tracelink's verdict differs from in-toto-verify's",
        &mismatches,
    );
    if !report.is_empty() {
        eprintln!("{report}");
    }
    assert!(
        generator_errors.is_empty() && bad_exits.is_empty() && mismatches.is_empty(),
        "{} generator errors, {} bad tracelink exits, {} mismatches: {}",
        generator_errors.len(),
        bad_exits.len(),
        mismatches.len(),
        mismatches
            .iter()
            .chain(&bad_exits)
            .chain(&generator_errors)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if only.is_none() {
        assert!(cases.len() >= MIN_CASES, "only {} cases", cases.len());
        assert!(passing >= MIN_PASSING, "only {passing} passing cases");
        assert!(failing >= MIN_FAILING, "only {failing} failing cases");
    }
}
