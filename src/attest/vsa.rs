//! SLSA Verification Summary v1 (`https://slsa.dev/verification_summary/v1`)
//! that `tracelink verify --vsa` writes after a successful verification.
//!
//! subject: the products of the layout's last steps (the steps no other
//! step's materials or inspections consume: the caller decides which, see
//! docs/attestations.md), merged by name; verifiedLevels is always
//! `["SLSA_BUILD_LEVEL_1"]`: a recording signed by a functionary's key on
//! its own machine cannot claim more.

use super::{AttestError, ResourceDescriptor, Statement, VSA_PREDICATE, rfc3339, verifier_id};
use crate::link::{ArtifactMap, DigestSet};
use crate::verify::layout::Layout;
use crate::verify::rules::{ArtifactsKind, Rule};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The only level a functionary-signed recording can support.
pub const LEVEL: &str = "SLSA_BUILD_LEVEL_1";

/// What a verification summary says.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The products of the layout's last steps ([`subject_from_products`]).
    pub subject: Vec<ResourceDescriptor>,
    pub time_verified: SystemTime,
    /// resourceUri: the artifact's URI as the verifier was asked about it
    /// (e.g. where it is published, or `file:` of the first subject).
    pub resource_uri: String,
    /// policy.uri: where the layout is (its file name, or a URI).
    pub policy_uri: String,
    /// policy.digest: the layout file's digests.
    pub policy_digest: DigestSet,
    /// The links (classic, DSSE or link attestations) verification used:
    /// name (file name) and digest of each file.
    pub input_attestations: Vec<ResourceDescriptor>,
}

/// The subject of a summary: the union of the products of `steps` (the
/// layout's last steps). One name with two different digests is an error.
pub fn subject_from_products<'a>(
    steps: impl IntoIterator<Item = &'a ArtifactMap>,
) -> Result<Vec<ResourceDescriptor>, AttestError> {
    let mut merged: BTreeMap<&str, &DigestSet> = BTreeMap::new();
    for products in steps {
        for (name, digest) in products {
            match merged.get(name.as_str()) {
                Some(prev) if *prev != digest => {
                    return Err(AttestError::Build {
                        what: "verification summary",
                        reason: format!(
                            "the last steps' products disagree on {name:?}: two different digests"
                        ),
                    });
                }
                _ => {
                    merged.insert(name, digest);
                }
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|(name, digest)| ResourceDescriptor::artifact(name, digest))
        .collect())
}

/// The layout's last steps: the steps whose products no other step or
/// inspection consumes (no `MATCH ... WITH PRODUCTS FROM <step>` in another
/// one's expected materials or products), in the layout's order; when every
/// step is consumed (a cycle), the last step of the list.
pub fn last_steps(layout: &Layout) -> Vec<&str> {
    let consumed_by_others = |name: &str| {
        let uses = |owner: &str, rules: &[&[Rule]]| {
            owner != name
                && rules.iter().flat_map(|r| r.iter()).any(|rule| {
                    matches!(rule, Rule::Match { dest_type: ArtifactsKind::Products, dest_name, .. }
                        if dest_name == name)
                })
        };
        layout
            .steps
            .iter()
            .any(|s| uses(&s.name, &[&s.expected_materials, &s.expected_products]))
            || layout
                .inspect
                .iter()
                .any(|i| uses(&i.name, &[&i.expected_materials, &i.expected_products]))
    };
    let last: Vec<&str> = layout
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| !consumed_by_others(name))
        .collect();
    if last.is_empty() {
        layout
            .steps
            .last()
            .map(|s| s.name.as_str())
            .into_iter()
            .collect()
    } else {
        last
    }
}

/// The summary statement (sign it with [`super::sign`]).
pub fn statement(summary: &Summary) -> Result<Statement, AttestError> {
    let fail = |reason: &str| AttestError::Build {
        what: "verification summary",
        reason: reason.into(),
    };
    if summary.subject.is_empty() {
        return Err(fail(
            "the layout's last steps have no products: Statement v1 requires a subject",
        ));
    }
    if summary.resource_uri.is_empty() {
        return Err(fail("resourceUri is empty"));
    }
    if summary.policy_uri.is_empty() {
        return Err(fail("policy.uri is empty"));
    }
    if summary
        .input_attestations
        .iter()
        .any(|a| a.digest.is_empty())
    {
        return Err(fail("an input attestation has no digest"));
    }
    let predicate = json!({
        "verifier": {
            "id": verifier_id(),
            "version": {"tracelink": env!("CARGO_PKG_VERSION")},
        },
        "timeVerified": rfc3339(summary.time_verified),
        "resourceUri": summary.resource_uri,
        "policy": {
            "uri": summary.policy_uri,
            "digest": summary.policy_digest,
        },
        "inputAttestations": summary.input_attestations.iter().map(ResourceDescriptor::to_value).collect::<Vec<_>>(),
        "verificationResult": "PASSED",
        "verifiedLevels": [LEVEL],
        "slsaVersion": "1.0",
    });
    let Value::Object(predicate) = predicate else {
        unreachable!()
    };
    Ok(Statement {
        subject: summary.subject.clone(),
        predicate_type: VSA_PREDICATE.into(),
        predicate,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{digest, key, sample_link};
    use super::super::*;
    use super::*;
    use crate::keys::KeyIdFormat;
    use std::time::Duration;

    pub fn sample() -> Summary {
        let link = sample_link();
        Summary {
            subject: subject_from_products([&link.products]).unwrap(),
            time_verified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
            resource_uri: "file:prog".into(),
            policy_uri: "root.layout".into(),
            policy_digest: digest("f0"),
            input_attestations: vec![ResourceDescriptor::artifact(
                "build.0123abcd.link",
                &digest("0f"),
            )],
        }
    }

    #[test]
    fn vsa_has_the_required_fields() {
        let st = statement(&sample()).unwrap();
        assert_eq!(
            st.predicate_type,
            "https://slsa.dev/verification_summary/v1"
        );
        let p = Value::Object(st.predicate.clone());
        assert_eq!(p["verifier"]["id"], "https://tracelink.example/verifier/v1");
        assert_eq!(p["timeVerified"], "2025-12-06T05:46:40Z");
        assert_eq!(p["resourceUri"], "file:prog");
        assert_eq!(
            p["policy"],
            json!({"uri": "root.layout", "digest": {"sha256": "f0".repeat(32)}})
        );
        assert_eq!(
            p["inputAttestations"],
            json!([{"name": "build.0123abcd.link", "digest": {"sha256": "0f".repeat(32)}}])
        );
        assert_eq!(p["verificationResult"], "PASSED");
        assert_eq!(p["verifiedLevels"], json!(["SLSA_BUILD_LEVEL_1"]));
        let names: Vec<_> = st
            .subject
            .iter()
            .map(|s| s.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["main.o", "prog"]);
        let key = key();
        let keyid = key.keyid(KeyIdFormat::Python);
        let bytes = sign(&st, &key, &keyid).unwrap();
        let v = parse_envelope(
            std::path::Path::new("x.vsa.json"),
            &bytes,
            &[(&keyid, &key.public())],
        )
        .unwrap();
        assert_eq!(v.statement, st);
    }

    #[test]
    fn last_steps_are_those_no_other_step_consumes() {
        let key = crate::keys::PrivateKey::from_seed(&[7; 32]).public();
        let mut dict = key.key_dict(crate::keys::KeyIdFormat::Python);
        let keyid = key.keyid(crate::keys::KeyIdFormat::Python);
        dict["keyid"] = json!(keyid);
        let layout = |steps: Value, inspect: Value| {
            Layout::from_value(&json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z",
                "readme": "", "keys": {keyid.clone(): dict.clone()}, "steps": steps, "inspect": inspect}))
            .unwrap()
        };
        let from = |x: &str| json!([["MATCH", "*", "WITH", "PRODUCTS", "FROM", x]]);
        let l = layout(
            json!([{"name": "clone"}, {"name": "build", "expected_materials": from("clone")},
                   {"name": "docs", "expected_materials": from("clone")}]),
            json!([{"name": "check", "run": ["true"], "expected_materials": from("docs")}]),
        );
        assert_eq!(last_steps(&l), ["build"]);
        let cycle = layout(
            json!([{"name": "a", "expected_materials": from("b")},
                   {"name": "b", "expected_materials": from("a")}]),
            json!([]),
        );
        assert_eq!(last_steps(&cycle), ["b"]);
    }

    #[test]
    fn subject_merges_last_steps_and_refuses_disagreement() {
        let a = ArtifactMap::from([("x".into(), digest("01")), ("y".into(), digest("02"))]);
        let b = ArtifactMap::from([("y".into(), digest("02")), ("z".into(), digest("03"))]);
        let s = subject_from_products([&a, &b]).unwrap();
        assert_eq!(s.len(), 3);
        let c = ArtifactMap::from([("y".into(), digest("09"))]);
        assert!(subject_from_products([&a, &c]).is_err());
        let empty = Summary {
            subject: vec![],
            ..sample()
        };
        assert!(statement(&empty).is_err());
    }
}
