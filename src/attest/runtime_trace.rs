//! The runtime trace predicate
//! (`https://in-toto.io/attestation/runtime-trace/v0.1`) of a precise
//! recording, made from the trace document:
//!
//! - monitor.type: tracelink's monitor; monitor.tracePolicy: mode, whether
//!   the process tracer ran, the excludes;
//! - monitoredProcess: hostID (`urn:tracelink:host:<hostname>`), type (the
//!   buildType), event (the step's name and the command as the trace has it,
//!   that is redacted);
//! - monitorLog.process: the trace's process tree (pid, ppid, times, every
//!   exec with argv, executable, cwd and the sha256 of programs outside the
//!   root, how it ended); without the tracer, the processes as they first
//!   touched the root;
//! - monitorLog.fileAccess: per artifact the trace lists, one
//!   ResourceDescriptor for its state before the run when it is a material
//!   and one for after when it is a product (with the link's digests), else
//!   one without digest; `annotations` say which (`tracelink.state`) and how
//!   the tree used it (`tracelink.access`: read, written) and by which pids;
//! - metadata.buildStartedOn / buildFinishedOn.
//!
//! The trace was redacted when it was made (docs/secrets.md); the
//! predicate is scrubbed again with the caller's redaction when given and
//! always with the value-shape rules (tokens, JWTs, PEM keys, URL passwords).

use super::{
    AttestError, RUNTIME_TRACE_PREDICATE, ResourceDescriptor, Statement, StepRecord, build_type,
    monitor_type, rfc3339, subjects,
};
use crate::link::DigestSet;
use crate::secrets::{Policy, Redaction};
use serde_json::{Map, Value, json};

/// The runtime-trace statement of a precise recording.
pub fn statement(step: &StepRecord) -> Result<Statement, AttestError> {
    let trace = step.trace.ok_or(AttestError::Build {
        what: "runtime trace",
        reason: "the step has no runtime trace (snapshot mode)".into(),
    })?;
    let doc = trace.document;
    let link = step.link;
    let ptrace = doc.get("ptrace").and_then(Value::as_bool).unwrap_or(false);

    let command: Vec<String> = doc
        .get("command")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let event = format!("tracelink step {:?}: {}", link.name, shell_words(&command));

    let mut processes = Vec::new();
    match doc.get("process_tree").and_then(Value::as_array) {
        Some(tree) => {
            for proc in tree {
                let Some(obj) = proc.as_object() else {
                    continue;
                };
                // The trace's per-process read/wrote lists repeat fileAccess.
                let mut obj = obj.clone();
                obj.remove("read");
                obj.remove("wrote");
                processes.push(Value::Object(obj));
            }
        }
        None => {
            if let Some(seen) = doc
                .get("processes_seen")
                .and_then(|s| s.get("processes"))
                .and_then(Value::as_array)
            {
                processes.extend(seen.iter().cloned());
            }
        }
    }

    let mut file_access = Vec::new();
    if let Some(artifacts) = doc.get("artifacts").and_then(Value::as_object) {
        for (path, entry) in artifacts {
            let pids = |key: &str| entry.get(key).cloned().unwrap_or(json!([]));
            let read_by = pids("read_by");
            let written_by = pids("written_by");
            let mut access = Vec::new();
            if read_by.as_array().is_some_and(|a| !a.is_empty()) {
                access.push("read");
            }
            if written_by.as_array().is_some_and(|a| !a.is_empty()) {
                access.push("written");
            }
            let rd = |state: &str, digest: Option<&DigestSet>| {
                let mut annotations = Map::new();
                annotations.insert("tracelink.state".into(), json!(state));
                annotations.insert("tracelink.access".into(), json!(access));
                annotations.insert("tracelink.readBy".into(), read_by.clone());
                annotations.insert("tracelink.writtenBy".into(), written_by.clone());
                ResourceDescriptor {
                    name: Some(path.clone()),
                    digest: digest.cloned().unwrap_or_default(),
                    annotations,
                    ..ResourceDescriptor::default()
                }
                .to_value()
            };
            let material = link.materials.get(path);
            let product = link.products.get(path);
            if material.is_some() {
                file_access.push(rd("material", material));
            }
            if product.is_some() {
                file_access.push(rd("product", product));
            }
            if material.is_none() && product.is_none() {
                // Transient, excluded, or not an artifact: used, no digest.
                file_access.push(rd("other", None));
            }
        }
    }

    let mut policy = Map::new();
    policy.insert("mode".into(), json!(step.mode.as_str()));
    policy.insert("processTracer".into(), json!(ptrace));
    policy.insert("excludes".into(), json!(step.excludes));
    if let Some(redacted) = doc.get("redacted") {
        policy.insert("redactedVariables".into(), redacted.clone());
    }

    let mut predicate = json!({
        "monitor": {
            "type": monitor_type(),
            "tracePolicy": policy,
        },
        "monitoredProcess": {
            "hostID": host_id(),
            "type": build_type(step.mode),
            "event": event,
        },
        "monitorLog": {
            "process": processes,
            "fileAccess": file_access,
        },
        "metadata": {
            "buildStartedOn": rfc3339(step.started),
            "buildFinishedOn": rfc3339(step.finished),
        },
    });
    // Same rules as the trace: the caller's redaction (the environment's
    // secrets), and the shapes that look secret whatever holds them.
    if let Some(redaction) = step.redaction {
        redaction.scrub_json(&mut predicate);
    }
    Redaction::new(std::iter::empty(), &Policy::default()).scrub_json(&mut predicate);
    let Value::Object(predicate) = predicate else {
        unreachable!()
    };
    Ok(Statement {
        subject: subjects(link),
        predicate_type: RUNTIME_TRACE_PREDICATE.into(),
        predicate,
    })
}

/// `urn:tracelink:host:<hostname>` (percent-encoded), or
/// `urn:tracelink:host:unknown`.
pub fn host_id() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let name = if name.is_empty() {
        "unknown".into()
    } else {
        name
    };
    let mut out = String::from("urn:tracelink:host:");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// argv as one line, each word quoted when it needs it (for reading only).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sample_link, sample_trace, step};
    use super::*;

    #[test]
    fn runtime_trace_has_every_required_field() {
        let link = sample_link();
        let trace = sample_trace();
        let ex = vec!["*.link*".to_string()];
        let st = statement(&step(&link, &trace, &ex)).unwrap();
        assert_eq!(st.predicate_type, RUNTIME_TRACE_PREDICATE);
        let p = Value::Object(st.predicate.clone());
        assert_eq!(
            p["monitor"]["type"],
            "https://tracelink.example/monitor/fuse-ptrace/v1"
        );
        assert!(
            p["monitoredProcess"]["hostID"]
                .as_str()
                .unwrap()
                .starts_with("urn:tracelink:host:")
        );
        assert_eq!(
            p["monitoredProcess"]["type"],
            "https://tracelink.example/buildtypes/precise/v1"
        );
        let event = p["monitoredProcess"]["event"].as_str().unwrap();
        assert!(
            event.starts_with("tracelink step \"build\": make -j2"),
            "{event}"
        );
        let procs = p["monitorLog"]["process"].as_array().unwrap();
        assert_eq!(procs.len(), 3);
        assert_eq!(procs[1]["execs"][1]["executable"], "/usr/bin/gcc-12");
        assert!(procs[1].get("read").is_none());
        let fa = p["monitorLog"]["fileAccess"].as_array().unwrap();
        assert_eq!(fa.len(), 4);
        let main_o = fa.iter().find(|e| e["name"] == "main.o").unwrap();
        assert_eq!(main_o["digest"]["sha256"], "c3".repeat(32));
        assert_eq!(main_o["annotations"]["tracelink.state"], "product");
        assert_eq!(
            main_o["annotations"]["tracelink.access"],
            json!(["read", "written"])
        );
        let makefile = fa.iter().find(|e| e["name"] == "Makefile").unwrap();
        assert_eq!(makefile["annotations"]["tracelink.access"], json!(["read"]));
        assert_eq!(makefile["annotations"]["tracelink.state"], "material");
        assert_eq!(p["metadata"]["buildStartedOn"], "2025-12-06T05:46:40Z");
    }

    #[test]
    fn secrets_that_look_secret_are_redacted() {
        let link = sample_link();
        let trace = sample_trace();
        let ex = vec![];
        let st = statement(&step(&link, &trace, &ex)).unwrap();
        let text = serde_json::to_string(&st.predicate).unwrap();
        assert!(
            !text.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{text}"
        );
        assert!(text.contains("<redacted"), "{text}");
        // And a secret of the environment, through the caller's redaction.
        let mut trace = sample_trace();
        trace["process_tree"][0]["execs"][0]["argv"] = json!(["make", "PASSWORD=hunter2hunter2"]);
        let redaction = Redaction::new(
            [("DB_PASSWORD".to_string(), "hunter2hunter2".to_string())],
            &Policy::default(),
        );
        let rec = StepRecord {
            redaction: Some(&redaction),
            ..step(&link, &trace, &ex)
        };
        let text = serde_json::to_string(&statement(&rec).unwrap().predicate).unwrap();
        assert!(!text.contains("hunter2hunter2"), "{text}");
    }

    #[test]
    fn without_the_tracer_processes_come_from_processes_seen() {
        let link = sample_link();
        let mut trace = sample_trace();
        trace["process_tree"] = Value::Null;
        trace["ptrace"] = json!(false);
        trace["processes_seen"] =
            json!({"note": "n", "processes": [{"pid": 5, "name": "cc", "parent_global_pid": 1}]});
        let ex = vec![];
        let st = statement(&step(&link, &trace, &ex)).unwrap();
        assert_eq!(
            st.predicate["monitorLog"]["process"],
            json!([{"pid": 5, "name": "cc", "parent_global_pid": 1}])
        );
        assert_eq!(
            st.predicate["monitor"]["tracePolicy"]["processTracer"],
            false
        );
    }
}
