//! `tracelink show FILE` for an in-toto Statement that is not a link
//! attestation: SLSA Provenance v1, the runtime trace, or any other
//! predicate (a verification summary, another tool's): a summary of the
//! statement, its signature checked with --verification-keys as a DSSE
//! link's is; --json prints the statement with the signature verdicts.
//!
//! Provenance names the runtime trace file in `runDetails.byproducts` with
//! its sha256: a file of that name beside the statement is checked against
//! it, as a link's trace is. A byproduct that is not there is only said
//! (statements travel without their traces); one that is there and does
//! not match, or cannot be read, is a warning and exit status 1.
//!
//! Everything shown comes from the file: every value goes through
//! `text::printable`, long values and lists are cut.

use super::{checks_json, quote_argv, write_signed_by, write_stdout};
use crate::cli::ShowArgs;
use serde_json::{Value, json};
use std::fmt::Write as _;
use tracelink::account::{StatementRecord, TraceState};
use tracelink::attest::{self, Kind};
use tracelink::text::{printable as esc, printable_lines};

/// How many subjects the text names.
const SUBJECTS: usize = 10;
/// How many toolchain entries the text lists.
const TOOLCHAIN: usize = 20;
/// How many other fields (unknown predicates) the text lists.
const FIELDS: usize = 20;
/// Longest value the text shows before cutting it.
const VALUE_CAP: usize = 200;

/// What a byproduct beside the statement turned out to be.
struct Beside {
    name: String,
    sha256: String,
    state: TraceState,
}

impl Beside {
    /// A problem with it that counts (missing is not one).
    fn problem(&self) -> Option<String> {
        match &self.state {
            TraceState::None | TraceState::Trusted { .. } | TraceState::Missing { .. } => None,
            TraceState::Mismatch {
                path,
                signed,
                actual,
            } => Some(format!(
                "the byproduct {} does NOT match the sha256 signed in the statement (signed {signed}, file {actual}): it was changed or replaced",
                path.display()
            )),
            state => state.problem(),
        }
    }

    fn status(&self) -> &'static str {
        match &self.state {
            TraceState::None => "none",
            TraceState::Trusted { .. } => "verified",
            TraceState::Missing { .. } => "missing",
            TraceState::Refused { .. } => "refused",
            TraceState::Mismatch { .. } => "mismatch",
            TraceState::Malformed { .. } => "malformed",
        }
    }
}

pub fn show(args: &ShowArgs, record: &StatementRecord) -> anyhow::Result<i32> {
    let Some(checks) = super::check_keys(&args.verification_keys, |path, key| {
        record.check_key(path, key)
    }) else {
        return Ok(2);
    };
    let besides = byproducts_beside(record);
    let problems: Vec<String> = besides.iter().filter_map(Beside::problem).collect();
    for problem in &problems {
        eprintln!("tracelink: WARNING: {}", esc(problem));
    }
    let text = if args.json {
        let mut out = serde_json::to_string_pretty(&to_json(record, &checks, &besides))?;
        out.push('\n');
        out
    } else {
        printable_lines(&render(
            record,
            &checks,
            args.verification_keys.is_empty(),
            &besides,
        ))
        .into_owned()
    };
    write_stdout(&text)?;
    let failed = checks.iter().any(|c| !c.verified) || !problems.is_empty();
    Ok(i32::from(failed))
}

/// The predicate's name for a person.
fn predicate_name(record: &StatementRecord) -> &'static str {
    match record.kind() {
        Some(Kind::Link) => "link predicate",
        Some(Kind::Provenance) => "SLSA Provenance v1",
        Some(Kind::RuntimeTrace) => "runtime trace predicate v0.1",
        None if record.statement.predicate_type == attest::VSA_PREDICATE => {
            "SLSA Verification Summary v1"
        }
        None => "predicate not known to tracelink",
    }
}

/// The value at `path` under `v`.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// A value for the text: a string as it is, anything else as JSON; cut
/// when long; printable.
fn shown(v: &Value) -> String {
    let full = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = match full.char_indices().nth(VALUE_CAP) {
        Some((i, _)) => format!("{}... ({} bytes)", &full[..i], full.len()),
        None => full,
    };
    out = esc(&out).into_owned();
    out
}

fn shown_at(v: &Value, path: &[&str]) -> String {
    at(v, path).map_or_else(|| "(not given)".into(), shown)
}

/// The first `cap` names, then "and K more".
fn names(items: &[String], cap: usize) -> String {
    let mut out = items
        .iter()
        .take(cap)
        .map(|s| esc(s).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > cap {
        let _ = write!(out, ", and {} more", items.len() - cap);
    }
    out
}

/// Provenance's byproducts with a name and a sha256 digest, each checked
/// beside the statement.
fn byproducts_beside(record: &StatementRecord) -> Vec<Beside> {
    if record.kind() != Some(Kind::Provenance) {
        return Vec::new();
    }
    let predicate = Value::Object(record.statement.predicate.clone());
    at(&predicate, &["runDetails", "byproducts"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rd| {
            let name = rd.get("name")?.as_str()?;
            let sha256 = at(rd, &["digest", "sha256"])?.as_str()?;
            Some(Beside {
                name: name.to_string(),
                sha256: sha256.to_string(),
                state: record.check_beside(name, sha256),
            })
        })
        .collect()
}

fn render(
    record: &StatementRecord,
    checks: &[tracelink::account::KeyCheck],
    no_keys: bool,
    besides: &[Beside],
) -> String {
    let st = &record.statement;
    let predicate = Value::Object(st.predicate.clone());
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "statement:   {} (in-toto Statement v1, {}, DSSE)",
        esc(&record.path.display().to_string()),
        predicate_name(record)
    );
    let _ = writeln!(w, "predicate:   {}", esc(&st.predicate_type));
    let subjects: Vec<String> = st
        .subject
        .iter()
        .map(|s| {
            s.name
                .clone()
                .or_else(|| s.uri.clone())
                .unwrap_or_else(|| "(unnamed)".into())
        })
        .collect();
    let _ = writeln!(
        w,
        "subjects:    {}: {}",
        subjects.len(),
        names(&subjects, SUBJECTS)
    );
    write_signed_by(w, &record.signatures, checks, no_keys);
    match record.kind() {
        Some(Kind::Provenance) => render_provenance(w, &predicate, besides),
        Some(Kind::RuntimeTrace) => render_runtime_trace(w, &predicate),
        _ => {
            let keys: Vec<String> = st.predicate.keys().cloned().collect();
            let _ = writeln!(w, "predicate fields: {}", names(&keys, FIELDS));
            for (key, value) in st.predicate.iter().take(FIELDS) {
                let _ = writeln!(w, "  {}: {}", esc(key), shown(value));
            }
        }
    }
    let _ = writeln!(w, "\ndetails: --json (the whole statement)");
    out
}

fn render_provenance(w: &mut String, p: &Value, besides: &[Beside]) {
    let _ = writeln!(
        w,
        "buildType:   {}",
        shown_at(p, &["buildDefinition", "buildType"])
    );
    let _ = writeln!(w, "external parameters:");
    match at(p, &["buildDefinition", "externalParameters"]).and_then(Value::as_object) {
        Some(external) => {
            for (key, value) in external.iter().take(FIELDS) {
                let text = match (key.as_str(), value.as_array()) {
                    ("command", Some(items)) if items.iter().all(Value::is_string) => {
                        let argv: Vec<String> = items
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect();
                        if argv.is_empty() {
                            "(none)".into()
                        } else {
                            quote_argv(&argv)
                        }
                    }
                    _ => shown(value),
                };
                let _ = writeln!(w, "  {}: {text}", esc(key));
            }
            if external.len() > FIELDS {
                let _ = writeln!(w, "  and {} more", external.len() - FIELDS);
            }
        }
        None => {
            let _ = writeln!(w, "  (not given)");
        }
    }
    let deps: &[Value] = at(p, &["buildDefinition", "resolvedDependencies"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let toolchain: Vec<&Value> = deps
        .iter()
        .filter(|d| {
            at(
                d,
                &["annotations", attest::provenance::TOOLCHAIN_ANNOTATION],
            ) == Some(&Value::Bool(true))
        })
        .collect();
    let _ = writeln!(
        w,
        "resolved dependencies: {} ({} toolchain {})",
        deps.len(),
        toolchain.len(),
        if toolchain.len() == 1 {
            "entry"
        } else {
            "entries"
        }
    );
    for dep in toolchain.iter().take(TOOLCHAIN) {
        let _ = writeln!(
            w,
            "  toolchain: {}  sha256:{}",
            shown_at(dep, &["name"]),
            shown_at(dep, &["digest", "sha256"])
        );
    }
    if toolchain.len() > TOOLCHAIN {
        let _ = writeln!(w, "  and {} more (--json)", toolchain.len() - TOOLCHAIN);
    }
    let _ = writeln!(
        w,
        "builder:     {}",
        shown_at(p, &["runDetails", "builder", "id"])
    );
    for (title, key) in [
        ("invocation:", "invocationId"),
        ("started:", "startedOn"),
        ("finished:", "finishedOn"),
    ] {
        let _ = writeln!(
            w,
            "{title:<13}{}",
            shown_at(p, &["runDetails", "metadata", key])
        );
    }
    let listed = at(p, &["runDetails", "byproducts"])
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let _ = writeln!(w, "byproducts:  {listed}");
    for b in besides {
        let status = match &b.state {
            TraceState::Trusted { .. } => {
                "beside the statement, matches the signed digest".to_string()
            }
            TraceState::Missing { .. } => "not found beside the statement (not checked)".into(),
            _ => format!(
                "WARNING: {}",
                b.problem().unwrap_or_else(|| "not checked".into())
            ),
        };
        let _ = writeln!(
            w,
            "  {}  sha256:{}  {}",
            esc(&b.name),
            esc(&b.sha256),
            esc(&status)
        );
    }
}

fn render_runtime_trace(w: &mut String, p: &Value) {
    let count = |path: &[&str]| {
        at(p, path)
            .and_then(Value::as_array)
            .map_or_else(|| "(not given)".to_string(), |a| a.len().to_string())
    };
    let _ = writeln!(w, "monitor:     {}", shown_at(p, &["monitor", "type"]));
    let _ = writeln!(
        w,
        "policy:      mode {}, process tracer {}",
        shown_at(p, &["monitor", "tracePolicy", "mode"]),
        shown_at(p, &["monitor", "tracePolicy", "processTracer"])
    );
    let _ = writeln!(
        w,
        "monitored:   {}",
        shown_at(p, &["monitoredProcess", "type"])
    );
    let _ = writeln!(
        w,
        "event:       {}",
        shown_at(p, &["monitoredProcess", "event"])
    );
    let _ = writeln!(
        w,
        "host:        {}",
        shown_at(p, &["monitoredProcess", "hostID"])
    );
    let _ = writeln!(w, "processes:   {}", count(&["monitorLog", "process"]));
    let _ = writeln!(w, "file access: {}", count(&["monitorLog", "fileAccess"]));
    let _ = writeln!(
        w,
        "started:     {}",
        shown_at(p, &["metadata", "buildStartedOn"])
    );
    let _ = writeln!(
        w,
        "finished:    {}",
        shown_at(p, &["metadata", "buildFinishedOn"])
    );
}

fn to_json(
    record: &StatementRecord,
    checks: &[tracelink::account::KeyCheck],
    besides: &[Beside],
) -> Value {
    json!({
        "file": record.path,
        "wrapper": "dsse",
        "predicateType": record.statement.predicate_type,
        "signatures": record.signatures,
        "signature_check": checks_json(checks),
        "byproducts_beside": besides.iter().map(|b| json!({
            "name": b.name,
            "sha256": b.sha256,
            "status": b.status(),
            "warning": b.problem(),
        })).collect::<Vec<_>>(),
        "statement": record.statement.to_value(),
    })
}
