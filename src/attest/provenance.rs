//! SLSA Provenance v1 (`https://slsa.dev/provenance/v1`) of a recorded step.
//!
//! resolvedDependencies: every material (name, digest), then every program
//! the tree executed from outside the monitored root, as the trace records
//! it (absolute path and sha256; `uri` `file://...`, annotation
//! `tracelink.toolchain: true`). Files outside the root the toolchain only
//! read (headers, libraries, crt files) are not observed and not listed;
//! internalParameters.notObserved says so. runDetails.byproducts: the
//! runtime trace file (name, sha256), not the intermediate files.

use super::{
    AttestError, Mode, PROVENANCE_PREDICATE, ResourceDescriptor, Statement, StepRecord, build_type,
    builder_id, rfc3339, subjects,
};
use crate::link::DigestSet;
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use std::collections::BTreeSet;

/// What internalParameters.notObserved says in precise mode.
pub const NOT_OBSERVED_PRECISE: &str = "Only files under the monitored root are observed (the materials). Files outside the root that the step's programs read (system headers, libraries, the C runtime's crt files, compiler plugins, configuration under /etc) are not observed and are not in resolvedDependencies. Programs the process tree executed from outside the root are listed with their sha256 (annotation tracelink.toolchain); without the process tracer (--no-ptrace) they are not.";

/// What internalParameters.notObserved says in snapshot mode.
pub const NOT_OBSERVED_SNAPSHOT: &str = "Snapshot mode: the materials are the paths given, hashed before the command ran; what the command actually read or executed, inside or outside them, is not observed. The toolchain is not recorded.";

/// The annotation that marks a toolchain entry of resolvedDependencies.
pub const TOOLCHAIN_ANNOTATION: &str = "tracelink.toolchain";

/// The provenance statement of a step.
pub fn statement(step: &StepRecord) -> Result<Statement, AttestError> {
    let link = step.link;
    let mut external = Map::new();
    external.insert("step".into(), json!(link.name));
    external.insert("command".into(), json!(link.command));
    external.insert("workingDirectory".into(), json!(step.working_directory()));

    let ptrace = step
        .trace
        .and_then(|t| t.document.get("ptrace"))
        .and_then(Value::as_bool);
    let mut internal = Map::new();
    internal.insert("mode".into(), json!(step.mode.as_str()));
    internal.insert("excludes".into(), json!(step.excludes));
    internal.insert("tracelinkVersion".into(), json!(env!("CARGO_PKG_VERSION")));
    if let Some(ptrace) = ptrace {
        internal.insert("processTracer".into(), json!(ptrace));
    }
    if let Some(complete) = link
        .environment
        .get("tracelink")
        .and_then(|t| t.get("complete"))
        .and_then(Value::as_bool)
    {
        internal.insert("complete".into(), json!(complete));
    }
    internal.insert(
        "notObserved".into(),
        json!(match step.mode {
            Mode::Precise => NOT_OBSERVED_PRECISE,
            Mode::Snapshot => NOT_OBSERVED_SNAPSHOT,
        }),
    );

    let mut resolved: Vec<Value> = link
        .materials
        .iter()
        .map(|(name, digest)| ResourceDescriptor::artifact(name, digest).to_value())
        .collect();
    if let Some(trace) = step.trace {
        resolved.extend(
            toolchain(trace.document)
                .iter()
                .map(ResourceDescriptor::to_value),
        );
    }

    let mut builder = Map::new();
    builder.insert("id".into(), json!(builder_id()));
    builder.insert(
        "version".into(),
        json!({"tracelink": env!("CARGO_PKG_VERSION")}),
    );
    let started = rfc3339(step.started);
    let mut metadata = Map::new();
    metadata.insert("invocationId".into(), json!(invocation_id(step, &started)?));
    metadata.insert("startedOn".into(), json!(started));
    metadata.insert("finishedOn".into(), json!(rfc3339(step.finished)));
    let mut run = Map::new();
    run.insert("builder".into(), Value::Object(builder));
    run.insert("metadata".into(), Value::Object(metadata));
    if let Some(trace) = step.trace {
        let rd = ResourceDescriptor {
            name: Some(trace.name.to_string()),
            digest: DigestSet::from([("sha256".to_string(), trace.sha256.to_string())]),
            media_type: Some("application/gzip".into()),
            ..ResourceDescriptor::default()
        };
        run.insert("byproducts".into(), json!([rd.to_value()]));
    }

    let predicate = json!({
        "buildDefinition": {
            "buildType": build_type(step.mode),
            "externalParameters": external,
            "internalParameters": internal,
            "resolvedDependencies": resolved,
        },
        "runDetails": run,
    });
    let Value::Object(predicate) = predicate else {
        unreachable!()
    };
    Ok(Statement {
        subject: subjects(link),
        predicate_type: PROVENANCE_PREDICATE.into(),
        predicate,
    })
}

/// The programs the trace's process tree executed from outside the root
/// (those the tracer hashed), one entry per (path, sha256), sorted.
pub fn toolchain(trace: &Value) -> Vec<ResourceDescriptor> {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for proc in trace
        .get("process_tree")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for exec in proc
            .get("execs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(path), Some(sha)) = (
                exec.get("executable").and_then(Value::as_str),
                exec.get("sha256").and_then(Value::as_str),
            ) && !path.is_empty()
            {
                seen.insert((path.to_string(), sha.to_string()));
            }
        }
    }
    seen.into_iter()
        .map(|(path, sha)| {
            let mut annotations = Map::new();
            annotations.insert(TOOLCHAIN_ANNOTATION.into(), json!(true));
            ResourceDescriptor {
                uri: Some(file_uri(&path)),
                name: Some(path),
                digest: DigestSet::from([("sha256".to_string(), sha)]),
                annotations,
                ..ResourceDescriptor::default()
            }
        })
        .collect()
}

/// `file://` URI of an absolute path, bytes outside RFC 3986's unreserved
/// set and `/` percent-encoded.
pub fn file_uri(path: &str) -> String {
    let mut out = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Derived, not random: `urn:tracelink:invocation:sha256:` and the sha256 of
/// the link's canonical JSON (which, in precise mode, holds the trace's
/// digest) followed by a newline and the start time. The same recording
/// gives the same id; two runs give two.
fn invocation_id(step: &StepRecord, started: &str) -> Result<String, AttestError> {
    let canonical =
        crate::link::canonical::encode(&step.link.to_value()).map_err(|e| AttestError::Build {
            what: "provenance",
            reason: e.to_string(),
        })?;
    let mut h = sha2::Sha256::new();
    h.update(&canonical);
    h.update(b"\n");
    h.update(started.as_bytes());
    Ok(format!(
        "urn:tracelink:invocation:sha256:{}",
        hex::encode(h.finalize())
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sample_link, sample_trace, step};
    use super::*;

    #[test]
    fn provenance_has_the_slsa_v1_shape() {
        let link = sample_link();
        let trace = sample_trace();
        let excludes = vec!["*.link*".to_string(), ".git".to_string()];
        let st = statement(&step(&link, &trace, &excludes)).unwrap();
        assert_eq!(st.predicate_type, "https://slsa.dev/provenance/v1");
        let p = Value::Object(st.predicate.clone());
        let keys: Vec<&String> = st.predicate.keys().collect();
        assert_eq!(keys, ["buildDefinition", "runDetails"]);
        let bd = &p["buildDefinition"];
        assert_eq!(
            bd["buildType"],
            "https://tracelink.example/buildtypes/precise/v1"
        );
        assert_eq!(
            bd["externalParameters"],
            json!({"step": "build", "command": ["make", "-j2"], "workingDirectory": "sub"})
        );
        assert_eq!(bd["internalParameters"]["mode"], "precise");
        assert_eq!(
            bd["internalParameters"]["excludes"],
            json!(["*.link*", ".git"])
        );
        assert_eq!(bd["internalParameters"]["processTracer"], true);
        assert_eq!(bd["internalParameters"]["complete"], true);
        assert!(
            bd["internalParameters"]["notObserved"]
                .as_str()
                .unwrap()
                .contains("system headers")
        );
        // Materials, then each outside program once; /srv/project/tool
        // (under the root, no digest: a material) is not a toolchain entry.
        let deps = bd["resolvedDependencies"].as_array().unwrap();
        let names: Vec<&str> = deps.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Makefile",
                "src/main.c",
                "/usr/bin/dash",
                "/usr/bin/gcc-12",
                "/usr/bin/make"
            ]
        );
        assert_eq!(
            deps[3],
            json!({"name": "/usr/bin/gcc-12", "uri": "file:///usr/bin/gcc-12",
                   "digest": {"sha256": "33".repeat(32)},
                   "annotations": {"tracelink.toolchain": true}})
        );
        assert_eq!(
            deps[0],
            json!({"name": "Makefile", "digest": {"sha256": "a1".repeat(32)}})
        );
        let rd = &p["runDetails"];
        assert_eq!(rd["builder"]["id"], "https://tracelink.example/builder/v1");
        assert_eq!(rd["metadata"]["startedOn"], "2025-12-06T05:46:40Z");
        assert_eq!(rd["metadata"]["finishedOn"], "2025-12-06T05:46:52.345Z");
        let id = rd["metadata"]["invocationId"].as_str().unwrap();
        assert!(id.starts_with("urn:tracelink:invocation:sha256:"), "{id}");
        assert_eq!(
            rd["byproducts"],
            json!([{"name": "build.0123abcd.link.trace.json.gz",
                    "digest": {"sha256": "ab".repeat(32)}, "mediaType": "application/gzip"}])
        );
        // Deterministic.
        assert_eq!(statement(&step(&link, &trace, &excludes)).unwrap(), st);
    }

    #[test]
    fn snapshot_provenance_has_materials_only() {
        let link = sample_link();
        let trace = sample_trace();
        let ex = vec![];
        let snap = StepRecord {
            mode: Mode::Snapshot,
            trace: None,
            ..step(&link, &trace, &ex)
        };
        let st = statement(&snap).unwrap();
        let bd = &st.predicate["buildDefinition"];
        assert_eq!(
            bd["buildType"],
            "https://tracelink.example/buildtypes/snapshot/v1"
        );
        assert_eq!(bd["resolvedDependencies"].as_array().unwrap().len(), 2);
        assert_eq!(bd["externalParameters"]["workingDirectory"], ".");
        assert!(st.predicate["runDetails"].get("byproducts").is_none());
    }

    #[test]
    fn file_uris_are_percent_encoded() {
        assert_eq!(file_uri("/usr/bin/g++"), "file:///usr/bin/g%2B%2B");
        assert_eq!(file_uri("/opt/a b/cc"), "file:///opt/a%20b/cc");
    }
}
