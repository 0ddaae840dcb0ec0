//! `tracelink diff A B`: what differs between two links of a step, and
//! between their runtime traces when both have one: materials and products
//! added, removed or changed; name, command, return-value, whether stdout
//! and stderr changed; the link's `environment`; from the traces, the
//! command's environment variables, root, starting directory, exit, and the
//! process tree (processes that appeared, vanished, or changed argv or
//! executable, matched by their chain of program names as
//! `tracelink::account` explains). A one-line summary ends the output.
//!
//! A link attestation (an in-toto Statement v1 with the link predicate, in
//! a DSSE envelope) is compared as the link it stands for, with a classic
//! or DSSE link or another attestation; its trace is found as a link's. Other
//! statements (provenance, runtime trace) are not compared: exit 2, naming
//! the file.
//!
//! Traces are compared only when both links name one and both match their
//! signed digests; signatures are not checked (that is `show
//! --verification-keys` and `verify`).
//!
//! Exit status: 0 when name, command, materials, products and return-value
//! are equal (other differences are reported but do not count), 1 when they
//! differ, 2 on errors: a link unreadable or malformed, or a trace it names
//! missing, malformed or not matching its signed digest.
//!
//! Names, arguments and values come from files others made: the text goes
//! through `tracelink::text::printable` field by field (as `show`); --json
//! is exact JSON.
//!
//! The comparison is `tracelink::account`'s; this module presents it.

use super::show::{chain, digests, quote_argv, write_stdout};
use crate::cli::DiffArgs;
use serde_json::{Value, json};
use std::fmt::Write as _;
use tracelink::account::{self, Account, Diff, MapDiff, ProcRef, Record, load_record};
use tracelink::text::{printable as esc, printable_lines};

pub fn diff(args: DiffArgs) -> anyhow::Result<i32> {
    let mut accounts = Vec::new();
    for path in [&args.a, &args.b] {
        match load_record(path) {
            Ok(Record::Link(account)) => {
                if let Some(problem) = account.trace.problem() {
                    eprintln!("tracelink: error: {}", esc(&problem));
                    return Ok(2);
                }
                accounts.push(*account);
            }
            Ok(Record::Statement(record)) => {
                eprintln!(
                    "tracelink: error: {}: holds an in-toto Statement with predicateType {}, which diff does not compare; diff compares links: classic or DSSE links and link attestations (*.attest-link.json, predicateType {})",
                    esc(&path.display().to_string()),
                    esc(&format!("{:?}", record.statement.predicate_type)),
                    tracelink::attest::LINK_PREDICATE
                );
                return Ok(2);
            }
            Err(e) => {
                eprintln!("tracelink: error: {}", chain(&e));
                return Ok(2);
            }
        }
    }
    let (a, b) = (&accounts[0], &accounts[1]);
    let d = account::diff(a, b);
    let text = if args.json {
        let mut out = serde_json::to_string_pretty(&to_json(a, b, &d))?;
        out.push('\n');
        out
    } else {
        printable_lines(&render(a, b, &d)).into_owned()
    };
    write_stdout(&text)?;
    Ok(if d.equal() { 0 } else { 1 })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line summary: "equal", or "differ: ...", with the differences
/// that do not count for the exit status in parentheses.
fn summary(d: &Diff) -> String {
    let mut counted = Vec::new();
    if d.name.is_some() {
        counted.push("name".to_string());
    }
    if d.command.is_some() {
        counted.push("command".to_string());
    }
    if d.return_value.is_some() {
        counted.push("return-value".to_string());
    }
    for (what, one, many) in [
        (&d.materials, "material", "materials"),
        (&d.products, "product", "products"),
    ] {
        for (n, how) in [
            (what.added.len(), "added"),
            (what.removed.len(), "removed"),
            (what.changed.len(), "changed"),
        ] {
            if n > 0 {
                counted.push(format!("{} {how}", plural(n, one, many)));
            }
        }
    }
    let mut other = Vec::new();
    if d.stdout_changed {
        other.push("stdout".to_string());
    }
    if d.stderr_changed {
        other.push("stderr".to_string());
    }
    let env = d.link_environment.added.len()
        + d.link_environment.removed.len()
        + d.link_environment.changed.len();
    if env > 0 {
        other.push(plural(
            env,
            "link environment entry",
            "link environment entries",
        ));
    }
    let vars =
        d.environment.added.len() + d.environment.removed.len() + d.environment.changed.len();
    if vars > 0 {
        other.push(plural(
            vars,
            "environment variable",
            "environment variables",
        ));
    }
    if !d.trace_fields.is_empty() {
        other.push(
            d.trace_fields
                .iter()
                .map(|(w, _, _)| w.clone())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let p = &d.processes;
    for (n, one, many) in [
        (p.appeared.len(), "process appeared", "processes appeared"),
        (p.vanished.len(), "process vanished", "processes vanished"),
        (p.changed.len(), "process changed", "processes changed"),
    ] {
        if n > 0 {
            other.push(plural(n, one, many));
        }
    }
    let mut out = if counted.is_empty() {
        "equal".to_string()
    } else {
        format!("differ: {}", counted.join(", "))
    };
    if !other.is_empty() {
        let _ = write!(out, " (also differing: {})", other.join(", "));
    }
    out
}

fn render_artifacts(
    w: &mut String,
    title: &str,
    m: &MapDiff<tracelink::link::DigestSet>,
    a: &Account,
    b: &Account,
    product: bool,
) {
    if m.is_empty() {
        let _ = writeln!(w, "{title}: same");
        return;
    }
    let _ = writeln!(
        w,
        "{title}: {} added, {} removed, {} changed",
        m.added.len(),
        m.removed.len(),
        m.changed.len()
    );
    let size = |acc: &Account, path: &str| {
        acc.file_meta(path, product)
            .map(|meta| format!(" ({} bytes)", meta.size))
            .unwrap_or_default()
    };
    for (path, set) in &m.added {
        let _ = writeln!(w, "  + {}  {}{}", esc(path), digests(set), size(b, path));
    }
    for (path, set) in &m.removed {
        let _ = writeln!(w, "  - {}  {}{}", esc(path), digests(set), size(a, path));
    }
    for (path, x, y) in &m.changed {
        let _ = writeln!(w, "  ~ {}", esc(path));
        let _ = writeln!(w, "      A {}{}", digests(x), size(a, path));
        let _ = writeln!(w, "      B {}{}", digests(y), size(b, path));
    }
}

fn command(argv: &[String]) -> String {
    if argv.is_empty() {
        "(none)".into()
    } else {
        quote_argv(argv)
    }
}

fn proc_line(proc: &ProcRef) -> String {
    let argv = proc
        .argv
        .iter()
        .map(|argv| quote_argv(argv))
        .collect::<Vec<_>>()
        .join(" ; then exec: ");
    format!(
        "[{}] {}: {}",
        proc.pid,
        esc(&proc.chain),
        if argv.is_empty() {
            "(no exec)".into()
        } else {
            argv
        }
    )
}

fn render(a: &Account, b: &Account, d: &Diff) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "A: {}", esc(&a.path.display().to_string()));
    let _ = writeln!(w, "B: {}", esc(&b.path.display().to_string()));
    match &d.name {
        Some((x, y)) => {
            let _ = writeln!(
                w,
                "name: {} -> {}",
                esc(&format!("{x:?}")),
                esc(&format!("{y:?}"))
            );
        }
        None => {
            let _ = writeln!(w, "name: same ({})", esc(&a.link.name));
        }
    }
    match &d.command {
        Some((x, y)) => {
            let _ = writeln!(
                w,
                "command: changed\n  A {}\n  B {}",
                command(x),
                command(y)
            );
        }
        None => {
            let _ = writeln!(w, "command: same ({})", command(&a.link.command));
        }
    }
    let rv = |v: Option<i64>| v.map_or("(none)".to_string(), |v| v.to_string());
    match &d.return_value {
        Some((x, y)) => {
            let _ = writeln!(w, "return-value: {} -> {}", rv(*x), rv(*y));
        }
        None => {
            let _ = writeln!(
                w,
                "return-value: same ({})",
                rv(a.link.byproducts.return_value)
            );
        }
    }
    render_artifacts(w, "materials", &d.materials, a, b, false);
    render_artifacts(w, "products", &d.products, a, b, true);
    let _ = writeln!(
        w,
        "stdout: {}; stderr: {}",
        if d.stdout_changed { "changed" } else { "same" },
        if d.stderr_changed { "changed" } else { "same" }
    );
    let e = &d.link_environment;
    if e.is_empty() {
        let _ = writeln!(w, "link environment: same");
    } else {
        let _ = writeln!(w, "link environment:");
        for (k, v) in &e.added {
            let _ = writeln!(w, "  + {} = {}", esc(k), esc(&v.to_string()));
        }
        for (k, v) in &e.removed {
            let _ = writeln!(w, "  - {} = {}", esc(k), esc(&v.to_string()));
        }
        for (k, x, y) in &e.changed {
            let _ = writeln!(
                w,
                "  ~ {}: {} -> {}",
                esc(k),
                esc(&x.to_string()),
                esc(&y.to_string())
            );
        }
    }
    if d.traces_compared {
        render_traces(w, d);
    } else {
        let has = |acc: &Account| acc.trace.trace().is_some();
        let why = match (has(a), has(b)) {
            (false, false) => "neither link has a trace (snapshot mode)",
            (true, false) => "only A has a trace",
            _ => "only B has a trace",
        };
        let _ = writeln!(w, "traces: not compared: {why}");
    }
    let _ = writeln!(w, "summary: {}", summary(d));
    out
}

fn render_traces(w: &mut String, d: &Diff) {
    for (what, x, y) in &d.trace_fields {
        let _ = writeln!(w, "trace {what}: {} -> {}", esc(x), esc(y));
    }
    let e = &d.environment;
    if e.is_empty() {
        let _ = writeln!(w, "environment variables: same");
    } else {
        let _ = writeln!(
            w,
            "environment variables: {} added, {} removed, {} changed",
            e.added.len(),
            e.removed.len(),
            e.changed.len()
        );
        for (k, v) in &e.added {
            let _ = writeln!(w, "  + {}={}", esc(k), esc(v));
        }
        for (k, v) in &e.removed {
            let _ = writeln!(w, "  - {}={}", esc(k), esc(v));
        }
        for (k, x, y) in &e.changed {
            let _ = writeln!(w, "  ~ {}: {} -> {}", esc(k), esc(x), esc(y));
        }
    }
    if let Some(why) = &d.processes_not_compared {
        let _ = writeln!(w, "processes: not compared: {why}");
        return;
    }
    let p = &d.processes;
    if p.is_empty() {
        let _ = writeln!(w, "processes: same commands");
        return;
    }
    let _ = writeln!(
        w,
        "processes: {} appeared, {} vanished, {} changed",
        p.appeared.len(),
        p.vanished.len(),
        p.changed.len()
    );
    for proc in &p.appeared {
        let _ = writeln!(w, "  + {}", proc_line(proc));
    }
    for proc in &p.vanished {
        let _ = writeln!(w, "  - {}", proc_line(proc));
    }
    for c in &p.changed {
        let _ = writeln!(w, "  ~ {}", esc(&c.a.chain));
        if c.argv_changed {
            let _ = writeln!(w, "      A {}", proc_line(&c.a));
            let _ = writeln!(w, "      B {}", proc_line(&c.b));
        }
        for (n, x, y) in &c.executables {
            let _ = writeln!(w, "      exec {n} executable: {} -> {}", esc(x), esc(y));
        }
    }
}

fn map_json<V: serde::Serialize>(m: &MapDiff<V>) -> Value {
    json!({
        "added": m.added.iter().map(|(k, v)| json!({"path": k, "value": v})).collect::<Vec<_>>(),
        "removed": m.removed.iter().map(|(k, v)| json!({"path": k, "value": v})).collect::<Vec<_>>(),
        "changed": m.changed.iter().map(|(k, x, y)| json!({"path": k, "a": x, "b": y})).collect::<Vec<_>>(),
    })
}

fn proc_json(p: &ProcRef) -> Value {
    json!({"pid": p.pid, "chain": p.chain, "argv": p.argv})
}

fn to_json(a: &Account, b: &Account, d: &Diff) -> Value {
    let p = &d.processes;
    json!({
        "a": a.path,
        "b": b.path,
        "equal": d.equal(),
        "summary": summary(d),
        "name": d.name.as_ref().map(|(x, y)| json!({"a": x, "b": y})),
        "command": d.command.as_ref().map(|(x, y)| json!({"a": x, "b": y})),
        "return_value": d.return_value.map(|(x, y)| json!({"a": x, "b": y})),
        "materials": map_json(&d.materials),
        "products": map_json(&d.products),
        "stdout_changed": d.stdout_changed,
        "stderr_changed": d.stderr_changed,
        "link_environment": map_json(&d.link_environment),
        "traces_compared": d.traces_compared,
        "environment": map_json(&d.environment),
        "trace_fields": d.trace_fields.iter().map(|(w, x, y)| json!({"field": w, "a": x, "b": y})).collect::<Vec<_>>(),
        "processes": {
            "not_compared": d.processes_not_compared,
            "appeared": p.appeared.iter().map(proc_json).collect::<Vec<_>>(),
            "vanished": p.vanished.iter().map(proc_json).collect::<Vec<_>>(),
            "changed": p.changed.iter().map(|c| json!({
                "a": proc_json(&c.a),
                "b": proc_json(&c.b),
                "argv_changed": c.argv_changed,
                "executables": c.executables.iter().map(|(n, x, y)| json!({"exec": n, "a": x, "b": y})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
    })
}
