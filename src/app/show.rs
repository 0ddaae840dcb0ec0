//! `tracelink show LINK`: an account of one recorded step for a person (or,
//! with --json, one JSON document for machines, everything in it).
//!
//! The text is a summary by default, under 80 lines for any build: the link
//! (step, command, signatures and whether they verify with the given keys,
//! return-value, how it was recorded and whether completely), materials and
//! products counted by directory (the largest directories), and from the
//! runtime trace its root, starting directory, how many processes ran which
//! programs (the most run first), stragglers, inherited descriptors, probes
//! and notes, counted. The details are asked for: --files lists every
//! material and product with its digests, --tree every process (--depth N:
//! only the top N levels) with what it read and wrote, probes and notes
//! (long per-process lists cut to the first few, then "and K more"),
//! --process PATTERN the processes running a matching program.
//!
//! LINK may also be an attestation (`tracelink::attest`): a link
//! attestation (in-toto Statement v1, link predicate) is shown as the link
//! it stands for, its signatures checked as a DSSE link's and its trace
//! found the same way; a provenance, runtime-trace or other statement gets
//! a summary of its own (`statement`).
//!
//! Everything in the text output and in messages comes from files someone
//! else made, so every name, argument, path and message goes through
//! `tracelink::text::printable` (command lines through `text::shell_word`,
//! so they stay correct shell); --json is exact JSON.
//!
//! A trace is shown only when its sha256 equals the digest signed in the
//! link. Otherwise (changed, missing or malformed) a warning says so on
//! stderr and in the output, its content is not shown, and the link part
//! still is.
//!
//! Exit status: 0 shown; 1 shown, but the record does not check out: a given
//! key did not verify, or the trace the link names is missing, does not
//! match its signed digest or is malformed; 2 the link or a key file is
//! unreadable or malformed (a message names the file).
//!
//! Reading the files and checking signatures and the trace digest is
//! `tracelink::account`'s; this module only presents the result and decides
//! the exit status. It knows nothing of how links are recorded.

mod statement;

use crate::cli::ShowArgs;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::io::Write as _;
use tracelink::account::{Account, KeyCheck, Mode, Record, Trace, TraceState, Tree, load_record};
use tracelink::keys::PublicKey;
use tracelink::link::DigestSet;
use tracelink::text::{printable as esc, printable_lines, shell_word};
use tracelink::verify::metadata::Form;

/// How many entries of a per-process list (read, wrote) the text shows.
const LIST_CAP: usize = 8;
/// How many probes of each kind the text shows.
const PROBE_CAP: usize = 10;

pub fn show(args: ShowArgs) -> anyhow::Result<i32> {
    let account = match load_record(&args.link) {
        Ok(Record::Link(account)) => account,
        Ok(Record::Statement(record)) => return statement::show(&args, &record),
        Err(e) => {
            eprintln!("tracelink: error: {}", chain(&e));
            return Ok(2);
        }
    };
    let Some(checks) = check_keys(&args.verification_keys, |path, key| {
        account.check_key(path, key)
    }) else {
        return Ok(2);
    };
    let trace_problem = account.trace.problem();
    if let Some(problem) = &trace_problem {
        eprintln!("tracelink: WARNING: {}", esc(problem));
    }
    let text = if args.json {
        let mut out = serde_json::to_string_pretty(&to_json(&account, &checks))?;
        out.push('\n');
        out
    } else {
        // Every field is escaped; printable_lines makes sure nothing a
        // field missed reaches the terminal. (JSON stays exact.)
        printable_lines(&render(
            &account,
            &checks,
            args.verification_keys.is_empty(),
            &View::of(&args),
        ))
        .into_owned()
    };
    write_stdout(&text)?;
    let failed = checks.iter().any(|c| !c.verified) || trace_problem.is_some();
    Ok(i32::from(failed))
}

/// The signature checked with each key file; None (after a message) when a
/// key file is unreadable or malformed.
pub fn check_keys(
    paths: &[std::path::PathBuf],
    check: impl Fn(&std::path::Path, &PublicKey) -> KeyCheck,
) -> Option<Vec<KeyCheck>> {
    let mut checks = Vec::new();
    for path in paths {
        match PublicKey::load(path) {
            Ok(key) => checks.push(check(path, &key)),
            Err(e) => {
                eprintln!("tracelink: error: {}", chain(&e));
                return None;
            }
        }
    }
    Some(checks)
}

/// Writes the output; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            anyhow::bail!("cannot write to stdout: {e}")
        }
        _ => Ok(()),
    }
}

/// An error with its causes, on one line, escaped for a terminal (messages
/// quote names from the files).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    esc(&out).into_owned()
}

/// A command line as a shell would read it back, printable.
pub fn quote_argv(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn quote(arg: &str) -> String {
    match shell_word(arg) {
        Some(word) => word.into_owned(),
        // NUL: no command line holds it; shown, not quoted.
        None => esc(arg).into_owned(),
    }
}

pub fn wrapper_name(form: Form) -> &'static str {
    match form {
        Form::Classic => "classic signed link",
        Form::Dsse => "DSSE envelope",
    }
}

/// How a link attestation is described.
pub const LINK_ATTESTATION: &str = "in-toto Statement v1, link predicate v0.3, DSSE";

/// What the file holding the link is.
fn account_wrapper(account: &Account) -> &'static str {
    if account.attestation {
        LINK_ATTESTATION
    } else {
        wrapper_name(account.form)
    }
}

/// `sha256:hex` (all algorithms, comma separated), printable.
pub fn digests(set: &DigestSet) -> String {
    set.iter()
        .map(|(alg, hex)| format!("{}:{}", esc(alg), esc(hex)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn recording(account: &Account) -> String {
    let mut out = esc(account.mode.name()).into_owned();
    match account.mode {
        Mode::Snapshot if account.link.environment.get("tracelink").is_none() => {
            out.push_str(
                " (no environment.tracelink: recorded with -m/-p or another in-toto tool; no trace)",
            );
        }
        _ => {}
    }
    match account.complete {
        Some(true) => out.push_str(", complete"),
        Some(false) => out.push_str(", INCOMPLETE (signed with --allow-incomplete)"),
        None => {}
    }
    if let Some(v) = &account.recorder_version {
        let _ = write!(out, ", tracelink {}", esc(v));
    }
    out
}

/// The `signed by:` line (the keyids of the signatures) and the lines saying
/// what checking them found.
pub fn write_signed_by(w: &mut String, signatures: &[String], checks: &[KeyCheck], no_keys: bool) {
    let keyids = if signatures.is_empty() {
        "(no signatures)".to_string()
    } else {
        signatures
            .iter()
            .map(|k| esc(k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(w, "signed by:   {keyids}");
    for line in signature_lines(checks, no_keys) {
        let _ = writeln!(w, "             {line}");
    }
}

pub fn signature_lines(checks: &[KeyCheck], no_keys: bool) -> Vec<String> {
    if no_keys {
        return vec!["signature not checked (give --verification-keys to check it)".into()];
    }
    checks
        .iter()
        .map(|c| {
            if c.verified {
                format!(
                    "signature verified with {} (keyid {})",
                    esc(&c.key.display().to_string()),
                    c.keyids[0]
                )
            } else {
                format!(
                    "signature NOT verified with {} (keyid {}): {}",
                    esc(&c.key.display().to_string()),
                    c.keyids.join(" or "),
                    esc(c.reason.as_deref().unwrap_or("no signature by this key"))
                )
            }
        })
        .collect()
}

fn size_text(account: &Account, path: &str, product: bool) -> String {
    match account.file_meta(path, product) {
        Some(meta) => match meta.mode {
            Some(mode) => format!("  {} bytes, mode {mode:04o}", meta.size),
            None => format!("  {} bytes", meta.size),
        },
        None => String::new(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first `cap` items (printable), then "and K more".
fn capped(items: &[String], cap: usize) -> String {
    let mut out = items
        .iter()
        .take(cap)
        .map(|s| esc(s))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > cap {
        let _ = write!(out, ", and {} more", items.len() - cap);
    }
    out
}

/// What the text shows beyond the link's header.
struct View {
    files: bool,
    tree: bool,
    depth: Option<usize>,
    process: Option<String>,
}

impl View {
    fn of(args: &ShowArgs) -> View {
        View {
            files: args.files,
            tree: args.tree,
            depth: args.depth,
            process: args.process.clone(),
        }
    }

    /// No detail asked for: the summary.
    fn summary(&self) -> bool {
        !self.files && !self.tree && self.process.is_none()
    }
}

/// How many reasons for incompleteness, directories and programs the
/// summary names (it stays under 80 lines for any build).
const SUMMARY_REASONS: usize = 5;
const SUMMARY_DIRS: usize = 8;
const SUMMARY_PROGRAMS: usize = 10;
const SUMMARY_NOTES: usize = 3;

fn render(account: &Account, checks: &[KeyCheck], no_keys: bool, view: &View) -> String {
    let link = &account.link;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "link:        {} ({})",
        esc(&account.path.display().to_string()),
        account_wrapper(account)
    );
    let _ = writeln!(w, "step:        {}", esc(&link.name));
    let _ = writeln!(
        w,
        "command:     {}",
        if link.command.is_empty() {
            "(none)".to_string()
        } else {
            quote_argv(&link.command)
        }
    );
    write_signed_by(w, &account.signatures, checks, no_keys);
    let _ = writeln!(
        w,
        "exit:        {}",
        match link.byproducts.return_value {
            Some(rv) => format!("{rv} (return-value)"),
            None => "(no return-value: no command ran)".into(),
        }
    );
    let _ = writeln!(w, "recording:   {}", recording(account));
    let reasons = account.incomplete_reasons();
    let shown = if view.summary() {
        SUMMARY_REASONS
    } else {
        usize::MAX
    };
    for reason in reasons.iter().take(shown) {
        let _ = writeln!(w, "             incomplete: {}", esc(reason));
    }
    if reasons.len() > shown {
        let _ = writeln!(
            w,
            "             incomplete: and {} more reasons (--tree lists them)",
            reasons.len() - shown
        );
    }
    match &account.trace {
        TraceState::None => {}
        TraceState::Trusted { path, sha256, .. } => {
            let _ = writeln!(
                w,
                "trace:       {} (sha256 {sha256}, matches the signed digest)",
                esc(&path.display().to_string())
            );
        }
        state => {
            let _ = writeln!(
                w,
                "trace:       WARNING: {}; the trace is not shown",
                esc(&state.problem().unwrap_or_default())
            );
        }
    }
    for (what, key) in [
        ("stdout", &link.byproducts.stdout),
        ("stderr", &link.byproducts.stderr),
    ] {
        if let Some(text) = key.as_deref().filter(|t| !t.is_empty()) {
            let _ = writeln!(
                w,
                "{what}:      {} bytes recorded (--json shows them)",
                text.len()
            );
        }
    }
    let other_env: Vec<&String> = link
        .environment
        .keys()
        .filter(|k| *k != "tracelink")
        .collect();
    if !other_env.is_empty() {
        let _ = writeln!(
            w,
            "environment: {}",
            other_env
                .iter()
                .map(|k| esc(&format!("{k}={}", link.environment[*k])).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if view.summary() {
        for (title, map) in [("materials", &link.materials), ("products", &link.products)] {
            render_dirs(w, title, map);
        }
        if let Some(trace) = account.trace.trace() {
            render_trace_summary(w, trace);
        }
        let _ = writeln!(
            w,
            "\ndetails: --files (every file), --tree [--depth N] (every process), --process PATTERN, --json (everything)"
        );
        return out;
    }
    if view.files {
        for (title, map, product) in [
            ("materials", &link.materials, false),
            ("products", &link.products, true),
        ] {
            let _ = writeln!(w, "\n{title} ({}):", map.len());
            for (path, set) in map {
                let _ = writeln!(
                    w,
                    "  {}  {}{}",
                    esc(path),
                    digests(set),
                    size_text(account, path, product)
                );
            }
        }
    }
    match account.trace.trace() {
        Some(trace) => {
            if view.tree {
                render_trace(w, trace, view.depth);
            }
            if let Some(pattern) = &view.process {
                render_matching(w, trace, pattern);
            }
        }
        None if view.tree || view.process.is_some() => {
            let _ = writeln!(w, "\nno trace to show processes from");
        }
        None => {}
    }
    out
}

/// The directory of a path in a link (`.` for the top).
fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => ".",
    }
}

/// Materials or products counted by directory: the largest directories.
fn render_dirs(w: &mut String, title: &str, map: &tracelink::link::ArtifactMap) {
    let mut dirs: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for path in map.keys() {
        *dirs.entry(dir_of(path)).or_default() += 1;
    }
    let _ = writeln!(
        w,
        "\n{title} ({}) in {}:",
        map.len(),
        plural(dirs.len(), "directory", "directories")
    );
    let mut by_count: Vec<(&str, usize)> = dirs.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (dir, n) in by_count.iter().take(SUMMARY_DIRS) {
        let _ = writeln!(
            w,
            "  {:<40} {}",
            format!("{}/", esc(dir)),
            plural(*n, "file", "files")
        );
    }
    if by_count.len() > SUMMARY_DIRS {
        let rest: usize = by_count[SUMMARY_DIRS..].iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            w,
            "  and {} more {} with {} (--files lists every file)",
            by_count.len() - SUMMARY_DIRS,
            if by_count.len() - SUMMARY_DIRS == 1 {
                "directory"
            } else {
                "directories"
            },
            plural(rest, "file", "files")
        );
    }
}

/// The base name of an exec's program (argv[0], else the executable).
fn exec_program(exec: &tracelink::account::Exec) -> &str {
    let name = exec
        .argv
        .first()
        .filter(|a| !a.is_empty())
        .unwrap_or(&exec.executable);
    name.rsplit('/').next().unwrap_or(name)
}

/// Programs by number of runs (execs), most first.
pub fn program_runs(procs: &[tracelink::account::Proc]) -> Vec<(String, usize)> {
    let mut runs: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for proc in procs {
        for exec in &proc.execs {
            *runs.entry(exec_program(exec)).or_default() += 1;
        }
    }
    let mut runs: Vec<(String, usize)> =
        runs.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
    runs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    runs
}

/// The first lines of the trace's part, in the summary and the details alike.
fn render_trace_header(w: &mut String, trace: &Trace) {
    let none = || "(not recorded)".to_string();
    let _ = writeln!(w, "\nfrom the trace:");
    let _ = writeln!(
        w,
        "root:        {}",
        trace
            .root
            .as_deref()
            .map_or_else(none, |r| esc(r).into_owned())
    );
    let _ = writeln!(
        w,
        "cwd:         {}",
        trace
            .cwd
            .as_deref()
            .map_or_else(none, |c| esc(c).into_owned())
    );
}

fn render_trace_summary(w: &mut String, trace: &Trace) {
    render_trace_header(w, trace);
    match &trace.process_tree {
        Some(procs) => {
            let runs = program_runs(procs);
            let execs: usize = runs.iter().map(|(_, n)| n).sum();
            let _ = writeln!(
                w,
                "processes:   {}, {} of {}",
                procs.len(),
                plural(execs, "exec", "execs"),
                plural(runs.len(), "program", "programs")
            );
            if !runs.is_empty() {
                let _ = writeln!(w, "top programs by runs:");
            }
            for (program, n) in runs.iter().take(SUMMARY_PROGRAMS) {
                let _ = writeln!(w, "  {:<24} {n}", esc(program));
            }
            if runs.len() > SUMMARY_PROGRAMS {
                let rest: usize = runs[SUMMARY_PROGRAMS..].iter().map(|(_, n)| n).sum();
                let _ = writeln!(
                    w,
                    "  and {} more {} with {} (--tree, --process PATTERN)",
                    runs.len() - SUMMARY_PROGRAMS,
                    if runs.len() - SUMMARY_PROGRAMS == 1 {
                        "program"
                    } else {
                        "programs"
                    },
                    plural(rest, "run", "runs")
                );
            }
        }
        None => {
            let seen = trace
                .processes_seen
                .as_ref()
                .and_then(|s| s.get("processes"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let _ = writeln!(
                w,
                "processes:   not recorded (--no-ptrace); {seen} touched the root"
            );
        }
    }
    let _ = writeln!(
        w,
        "stragglers:  {}",
        if trace.stragglers.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<String> = trace
                .stragglers
                .iter()
                .map(|s| format!("{} ({})", s.pid, s.name))
                .collect();
            format!(
                "{} still running at the end (killed): {}",
                trace.stragglers.len(),
                capped(&names, 3)
            )
        }
    );
    let _ = writeln!(
        w,
        "inherited:   {}",
        plural(
            trace.inherited.len(),
            "descriptor to a file under the root",
            "descriptors to files under the root"
        )
    );
    let _ = writeln!(
        w,
        "probes:      {} found nothing, {} only looked at (stat)",
        plural(trace.probes.missing.len(), "lookup", "lookups"),
        plural(trace.probes.stat_only.len(), "file was", "files were")
    );
    let _ = writeln!(w, "notes:       {}", trace.notes.len());
    for note in trace.notes.iter().take(SUMMARY_NOTES) {
        let _ = writeln!(w, "  {}", esc(note));
    }
    if trace.notes.len() > SUMMARY_NOTES {
        let _ = writeln!(
            w,
            "  and {} more (--tree lists them)",
            trace.notes.len() - SUMMARY_NOTES
        );
    }
}

/// The processes one of whose programs matches `pattern` (a shell-style
/// glob) by name, executable path or whole command line (arguments joined
/// by spaces), each with where it sits in the tree.
fn render_matching(w: &mut String, trace: &Trace, pattern: &str) {
    let Some(procs) = &trace.process_tree else {
        let _ = writeln!(w, "\nno process tree (recorded with --no-ptrace)");
        return;
    };
    let tree = Tree::new(procs);
    let chains = tree.chains();
    let glob = tracelink::verify::fnmatch::Pattern::new(pattern);
    let matching: Vec<usize> = (0..procs.len())
        .filter(|&i| {
            procs[i].execs.iter().any(|e| {
                glob.matches(exec_program(e))
                    || glob.matches(&e.executable)
                    || glob.matches(&e.argv.join(" "))
            })
        })
        .collect();
    let _ = writeln!(
        w,
        "\nprocesses matching {} ({} of {}):",
        quote(pattern),
        matching.len(),
        procs.len()
    );
    for i in matching {
        let _ = writeln!(w, "  under {}", esc(&chains[i]));
        render_proc(w, &procs[i], 0);
    }
}

fn render_trace(w: &mut String, trace: &Trace, max_depth: Option<usize>) {
    render_trace_header(w, trace);
    if let Some(backing) = &trace.backing_root {
        let _ = writeln!(
            w,
            "backing:     {} (the root was served at the path above)",
            esc(backing)
        );
    }
    if let Some(store) = &trace.store {
        let _ = writeln!(
            w,
            "store:       {} (materials' before-states and products copied)",
            esc(store)
        );
    }
    let _ = writeln!(
        w,
        "exit:        {}",
        match (trace.exit.code, trace.exit.signal) {
            (Some(code), _) => format!("code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "(not recorded)".into(),
        }
    );
    let _ = writeln!(
        w,
        "environment: {} variables (secret-looking values redacted; --json lists them)",
        trace.environment.len()
    );
    match &trace.process_tree {
        Some(procs) => {
            let _ = writeln!(w, "\nprocess tree ({} processes):", procs.len());
            let tree = Tree::new(procs);
            let mut deeper = 0;
            for (i, depth) in tree.walk() {
                if max_depth.is_some_and(|max| depth > max) {
                    deeper += 1;
                    continue;
                }
                render_proc(w, &procs[i], depth);
            }
            if deeper > 0 {
                let _ = writeln!(
                    w,
                    "  ({} below depth {} not shown)",
                    plural(deeper, "process", "processes"),
                    max_depth.unwrap_or_default()
                );
            }
        }
        None => {
            let seen = trace
                .processes_seen
                .as_ref()
                .and_then(|s| s.get("processes"))
                .and_then(Value::as_array);
            let _ = writeln!(
                w,
                "\nprocess tree: not recorded (--no-ptrace); {} processes touched the root:",
                seen.map_or(0, Vec::len)
            );
            for proc in seen.into_iter().flatten() {
                let _ = writeln!(
                    w,
                    "  [{}] {}",
                    esc(&proc.get("pid").unwrap_or(&Value::Null).to_string()),
                    esc(proc.get("name").and_then(Value::as_str).unwrap_or("?"))
                );
            }
        }
    }
    let _ = writeln!(w);
    if trace.stragglers.is_empty() {
        let _ = writeln!(w, "stragglers:  none");
    } else {
        for s in &trace.stragglers {
            let _ = writeln!(
                w,
                "straggler:   pid {} ({}) was still running when the command ended (killed)",
                s.pid,
                esc(&s.name)
            );
        }
    }
    if trace.inherited.is_empty() {
        let _ = writeln!(w, "inherited:   no descriptors to files under the root");
    } else {
        for f in &trace.inherited {
            let how = match (f.read, f.write) {
                (true, true) => "read-write",
                (true, false) => "read",
                (false, true) => "write",
                (false, false) => "-",
            };
            let _ = writeln!(w, "inherited:   fd {} {} ({how})", f.fd, esc(&f.path));
        }
    }
    let missing: Vec<String> = trace
        .probes
        .missing
        .iter()
        .map(|m| m.path.clone())
        .collect();
    let _ = writeln!(
        w,
        "probes:      {} found nothing, {} only looked at (stat)",
        plural(missing.len(), "lookup", "lookups"),
        plural(trace.probes.stat_only.len(), "file was", "files were")
    );
    if !missing.is_empty() {
        let _ = writeln!(w, "  missing:   {}", capped(&missing, PROBE_CAP));
    }
    if !trace.probes.stat_only.is_empty() {
        let _ = writeln!(
            w,
            "  stat only: {}",
            capped(&trace.probes.stat_only, PROBE_CAP)
        );
    }
    if trace.notes.is_empty() {
        let _ = writeln!(w, "notes:       none");
    } else {
        for note in &trace.notes {
            let _ = writeln!(w, "note:        {}", esc(note));
        }
    }
}

/// Longest argv the text shows on one line before cutting it.
const ARGV_CAP: usize = 400;

fn argv_line(argv: &[String]) -> String {
    let full = quote_argv(argv);
    if full.len() <= ARGV_CAP {
        return full;
    }
    let mut shown = String::new();
    let mut n = 0;
    for arg in argv {
        let q = quote(arg);
        if shown.len() + q.len() + 1 > ARGV_CAP && n > 0 {
            break;
        }
        if n > 0 {
            shown.push(' ');
        }
        shown.push_str(&q);
        n += 1;
    }
    let _ = write!(shown, " ... and {} more arguments", argv.len() - n);
    shown
}

fn render_proc(w: &mut String, proc: &tracelink::account::Proc, depth: usize) {
    let indent = "  ".repeat(depth + 1);
    let status = match (proc.exit_code, proc.signal) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "no exit seen".into(),
    };
    let mut execs = proc.execs.iter();
    match execs.next() {
        Some(first) => {
            let _ = writeln!(
                w,
                "{indent}[{}] {}  ({status})",
                proc.pid,
                argv_line(&first.argv)
            );
            if first.argv.first().is_none_or(|a0| *a0 != first.executable) {
                let _ = writeln!(w, "{indent}    exe {}", esc(&first.executable));
            }
        }
        None => {
            let _ = writeln!(w, "{indent}[{}] (fork, no exec)  ({status})", proc.pid);
        }
    }
    for exec in execs {
        let _ = writeln!(w, "{indent}    then exec: {}", argv_line(&exec.argv));
    }
    if !proc.read.is_empty() {
        let _ = writeln!(
            w,
            "{indent}    read ({}): {}",
            proc.read.len(),
            capped(&proc.read, LIST_CAP)
        );
    }
    if !proc.wrote.is_empty() {
        let _ = writeln!(
            w,
            "{indent}    wrote ({}): {}",
            proc.wrote.len(),
            capped(&proc.wrote, LIST_CAP)
        );
    }
}

fn to_json(account: &Account, checks: &[KeyCheck]) -> Value {
    let link = &account.link;
    let artifacts = |map: &tracelink::link::ArtifactMap, product: bool| -> Value {
        Value::Object(
            map.iter()
                .map(|(path, set)| {
                    let mut entry = Map::new();
                    entry.insert("digests".into(), json!(set));
                    if let Some(meta) = account.file_meta(path, product) {
                        entry.insert("size".into(), json!(meta.size));
                        if let Some(mode) = meta.mode {
                            entry.insert("mode".into(), json!(mode));
                        }
                    }
                    (path.clone(), Value::Object(entry))
                })
                .collect(),
        )
    };
    let trace = match &account.trace {
        TraceState::None => json!({"status": "none"}),
        TraceState::Missing { path, reason } => {
            json!({"status": "missing", "path": path, "error": reason})
        }
        TraceState::Refused { path, reason } => {
            json!({"status": "refused", "path": path, "error": reason})
        }
        TraceState::Mismatch {
            path,
            signed,
            actual,
        } => json!({
            "status": "mismatch", "path": path, "signed_sha256": signed, "actual_sha256": actual,
            "warning": account.trace.problem(),
        }),
        TraceState::Malformed { path, reason } => {
            json!({"status": "malformed", "path": path, "error": reason})
        }
        TraceState::Trusted {
            path,
            sha256,
            trace,
        } => json!({
            "status": "verified", "path": path, "sha256": sha256, "content": trace.raw,
        }),
    };
    json!({
        "link": account.path,
        "wrapper": match account.form { Form::Classic => "classic", Form::Dsse => "dsse" },
        "attestation": account.attestation.then(|| json!({
            "_type": tracelink::attest::STATEMENT_TYPE,
            "predicateType": tracelink::attest::LINK_PREDICATE,
        })),
        "step": link.name,
        "command": link.command,
        "signatures": account.signatures,
        "signature_check": checks_json(checks),
        "return_value": link.byproducts.return_value,
        "byproducts": {
            "return-value": link.byproducts.return_value,
            "stdout": link.byproducts.stdout,
            "stderr": link.byproducts.stderr,
        },
        "environment": link.environment,
        "recording": {
            "mode": account.mode.name(),
            "complete": account.complete,
            "version": account.recorder_version,
            "incomplete": account.incomplete_reasons(),
        },
        "materials": artifacts(&link.materials, false),
        "products": artifacts(&link.products, true),
        "trace": trace,
    })
}

/// The signature checks, for --json.
pub fn checks_json(checks: &[KeyCheck]) -> Value {
    json!({
        "checked": !checks.is_empty(),
        "results": checks.iter().map(|c| json!({
            "key": c.key, "keyids": c.keyids, "verified": c.verified, "error": c.reason,
        })).collect::<Vec<_>>(),
    })
}
