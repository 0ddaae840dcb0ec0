//! Verifying a supply chain against a layout, in the order and with the
//! verdicts of in-toto 3.1.0's `in_toto_verify` (in_toto/verifylib.py):
//! layout signatures, expiry, links per step, link signatures and
//! thresholds, sublayouts, command alignment, threshold agreement, step
//! rules, inspections, inspection rules.
//!
//! A link attestation (`<step>.<keyid8>.link.attest-link.json`, the in-toto
//! link predicate in a DSSE envelope) stands in for a missing link of the
//! same step and keyid and counts exactly as that link would; beside a link
//! it must say the same ([`link_differences`]) and verify with the same key
//! (docs/attestations.md#verifying). in-toto-verify ignores these files.
//!
//! Every counted link recorded with `--allow-incomplete`
//! (`environment.tracelink.complete` false) gets a warning naming it; as
//! in-toto ignores `environment`, the verdict does not change.
//!
//! Running an inspection's command is the caller's business (an
//! [`Inspector`]); this module knows nothing of processes, FUSE or terminals.

use super::layout::{Inspection, Layout, Step};
use super::metadata::Metadata;
use super::report::{ItemKind, ItemReport, LinkReport, LinkStatus, Report};
use super::rules::{ArtifactsKind, Rule, apply_rules};
use crate::attest::{self, Envelope, Kind};
use crate::keys::PublicKey;
use crate::link::{self, ArtifactMap, Link};
use crate::text::printable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The last component of `path` (for messages about files in one directory).
/// A path's last component (the path itself when it has none), for reports.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What an inspection's command did.
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    pub materials: ArtifactMap,
    pub products: ArtifactMap,
    pub return_value: i64,
}

/// Runs inspection commands and records their artifacts.
pub trait Inspector {
    /// Runs `inspection.run` and records what it consumed and produced. An
    /// `Err` (the command cannot run, timed out, ...) fails verification.
    fn inspect(&mut self, inspection: &Inspection) -> Result<Inspected, String>;
}

/// A verified layout's summary, standing in for a sublayout's link: the
/// materials of its first step and the products and command of its last.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub materials: ArtifactMap,
    pub products: ArtifactMap,
    pub command: Vec<String>,
    /// Every step's products, as its first counted link has them (for the
    /// verification summary's subject).
    pub step_products: BTreeMap<String, ArtifactMap>,
}

/// Verifies the layout in `meta` with the owner keys (keyid, key): every one
/// must have signed it. Links come from `link_dir`. `now` is Unix seconds.
/// Findings go into `report`; the `Err` is the first reason verification
/// failed (also stored in `report.failure`).
pub fn verify(
    meta: &Metadata,
    owner_keys: &[(String, PublicKey)],
    link_dir: &Path,
    now: i64,
    inspector: &mut dyn Inspector,
    report: &mut Report,
) -> Result<Summary, String> {
    let result = verify_inner(meta, owner_keys, link_dir, now, inspector, report);
    if let Err(reason) = &result {
        report.failure = Some(reason.clone());
    }
    result
}

/// A step's counted evidence: the link, or a sublayout's summary.
struct Evidence {
    keyid: String,
    /// The file that counted (a link, a link attestation or a sublayout).
    file: PathBuf,
    materials: ArtifactMap,
    products: ArtifactMap,
    command: Vec<String>,
}

fn verify_inner(
    meta: &Metadata,
    owner_keys: &[(String, PublicKey)],
    link_dir: &Path,
    now: i64,
    inspector: &mut dyn Inspector,
    report: &mut Report,
) -> Result<Summary, String> {
    let path = meta.path.display().to_string();
    if meta.payload_type() != "layout" {
        return Err(format!("{path}: this is a link, not a layout"));
    }
    let layout = Layout::from_value(&meta.payload).map_err(|e| format!("{path}: {e}"))?;

    // 1. Every owner key must have signed the layout.
    if owner_keys.is_empty() {
        return Err("layout signature verification needs at least one key".into());
    }
    for (keyid, key) in owner_keys {
        let result = meta.verify_signature(key, keyid);
        report.signatures.push((keyid.clone(), result.clone()));
        if let Err(e) = result {
            return Err(format!("{path}: {e}"));
        }
    }

    // 2. Expiry.
    report.expires = Some(layout.expires.clone());
    if layout.expires_unix <= now {
        return Err(format!("{path}: the layout expired at {}", layout.expires));
    }

    // 3-5. Links per step, their signatures and thresholds; sublayouts.
    let mut chain: Vec<Vec<Evidence>> = Vec::new();
    for step in &layout.steps {
        let mut item = ItemReport::new(ItemKind::Step, &step.name);
        item.threshold = step.threshold;
        let result = step_evidence(
            &layout,
            step,
            link_dir,
            now,
            inspector,
            &mut item,
            &mut report.warnings,
        );
        report.items.push(item);
        chain.push(result?);
    }

    // in-toto counts functionaries by keyid: one key listed under two keyids
    // (Python and legacy conventions) counts twice. Same verdict, but say so.
    for (step, evidence) in layout.steps.iter().zip(&chain) {
        for (i, a) in evidence.iter().enumerate() {
            for b in &evidence[i + 1..] {
                if let (Some(ka), Some(kb)) = (layout.keys.get(&a.keyid), layout.keys.get(&b.keyid))
                    && ka.key == kb.key
                {
                    report.warnings.push(format!(
                        "step {:?}: keyids {} and {} are the same public key, yet count as two functionaries towards the threshold (as in in-toto 3.1.0)",
                        step.name,
                        &a.keyid[..a.keyid.len().min(8)],
                        &b.keyid[..b.keyid.len().min(8)]
                    ));
                }
            }
        }
    }

    // 7. Command alignment: a warning only.
    for (step, evidence) in layout.steps.iter().zip(&chain) {
        for e in evidence {
            if e.command != step.expected_command {
                report.warnings.push(format!(
                    "step {:?}: the link by {} ran {:?}, the layout expects {:?}",
                    step.name,
                    &e.keyid[..e.keyid.len().min(8)],
                    e.command,
                    step.expected_command
                ));
            }
        }
    }

    // 8. With threshold > 1 the counted links must agree on their artifacts.
    for (step, evidence) in layout.steps.iter().zip(&chain) {
        if step.threshold <= 1 {
            continue;
        }
        if (evidence.len() as i64) < step.threshold {
            return Err(format!(
                "step {:?} was not performed by enough functionaries",
                step.name
            ));
        }
        let first = &evidence[0];
        if let Some(other) = evidence
            .iter()
            .find(|e| e.materials != first.materials || e.products != first.products)
        {
            return Err(format!(
                "step {:?}: links {} and {} have different artifacts",
                step.name,
                file_name(&first.file),
                file_name(&other.file)
            ));
        }
    }

    // The first counted link stands for its step.
    let mut links: BTreeMap<String, (ArtifactMap, ArtifactMap)> = BTreeMap::new();
    let mut last_command = Vec::new();
    for (step, evidence) in layout.steps.iter().zip(chain) {
        let Some(first) = evidence.into_iter().next() else {
            return Err(format!(
                "step {:?} has no counted link (threshold {})",
                step.name, step.threshold
            ));
        };
        last_command = first.command;
        links.insert(step.name.clone(), (first.materials, first.products));
    }

    // 9. Step rules, in order, materials then products.
    for (i, step) in layout.steps.iter().enumerate() {
        let item = &mut report.items[i];
        let (materials, products) = &links[&step.name];
        item.materials = materials.len();
        item.products = products.len();
        check_rules(
            item,
            &step.expected_materials,
            &step.expected_products,
            &links,
        )?;
    }

    // 10. Inspections run, then their rules (which may refer to each other).
    let first_inspection = report.items.len();
    for inspection in &layout.inspect {
        let mut item = ItemReport::new(ItemKind::Inspection, &inspection.name);
        item.run = inspection.run.clone();
        let result = inspector.inspect(inspection);
        if let Ok(done) = &result {
            item.return_value = Some(done.return_value);
            item.materials = done.materials.len();
            item.products = done.products.len();
        }
        report.items.push(item);
        let done = result.map_err(|e| format!("inspection {:?}: {e}", inspection.name))?;
        if done.return_value != 0 {
            return Err(format!(
                "inspection {:?}: {:?} exited with {}",
                inspection.name,
                inspection.run.join(" "),
                done.return_value
            ));
        }
        links.insert(inspection.name.clone(), (done.materials, done.products));
    }
    for (i, inspection) in layout.inspect.iter().enumerate() {
        check_rules(
            &mut report.items[first_inspection + i],
            &inspection.expected_materials,
            &inspection.expected_products,
            &links,
        )?;
    }

    let step_products = layout
        .steps
        .iter()
        .map(|s| (s.name.clone(), links[&s.name].1.clone()))
        .collect();
    Ok(match (layout.steps.first(), layout.steps.last()) {
        (Some(first), Some(last)) => Summary {
            materials: links[&first.name].0.clone(),
            products: links[&last.name].1.clone(),
            command: last_command,
            step_products,
        },
        _ => Summary::default(),
    })
}

/// Whether `link` says it was recorded with `--allow-incomplete`: its
/// `environment.tracelink.complete` is false (docs/recording.md#incomplete-runs).
pub fn recorded_incomplete(link: &Link) -> bool {
    link.environment
        .get("tracelink")
        .and_then(|t| t.get("complete"))
        .and_then(serde_json::Value::as_bool)
        == Some(false)
}

/// Applies an item's material rules, then its product rules.
fn check_rules(
    item: &mut ItemReport,
    material_rules: &[Rule],
    product_rules: &[Rule],
    links: &BTreeMap<String, (ArtifactMap, ArtifactMap)>,
) -> Result<(), String> {
    let (materials, products) = &links[&item.name];
    for (kind, rules) in [
        (ArtifactsKind::Materials, material_rules),
        (ArtifactsKind::Products, product_rules),
    ] {
        let outcome = apply_rules(&item.name, rules, kind, materials, products, links);
        let failure = outcome.result.clone().err();
        item.rules.push(outcome);
        if let Some(failure) = failure {
            let what = match item.kind {
                ItemKind::Step => "step",
                ItemKind::Inspection => "inspection",
            };
            return Err(format!("{what} {:?}, {kind}: {failure}", item.name));
        }
    }
    Ok(())
}

/// A step's file for one authorized keyid, loaded and checked for form.
enum Loaded {
    /// The classic or DSSE link (or a sublayout), `<step>.<keyid8>.link`.
    /// A link attestation beside it has been checked to say the same and
    /// its envelope is kept for the signature check.
    Metadata {
        meta: Metadata,
        beside: Option<(PathBuf, Envelope)>,
    },
    /// A link attestation standing in for a missing link.
    Attestation {
        path: PathBuf,
        envelope: Envelope,
        link: Link,
        sha256: String,
    },
}

impl Loaded {
    fn path(&self) -> &Path {
        match self {
            Loaded::Metadata { meta, .. } => &meta.path,
            Loaded::Attestation { path, .. } => path,
        }
    }
}

/// A link attestation file: `None` when there is none (a file that cannot
/// be opened is skipped, as a link is), else the parsed envelope, the link
/// it stands for and the sha256 of its bytes. A malformed file is an error
/// naming it and the field.
fn load_attestation(path: &Path) -> Result<Option<(Envelope, Link, String)>, String> {
    use crate::untrusted::{self, UntrustedError};
    let bytes = match untrusted::read(path, untrusted::METADATA) {
        Ok(bytes) => bytes,
        Err(UntrustedError::Io { .. }) => return Ok(None),
        Err(refused) => return Err(refused.to_string()),
    };
    let envelope = Envelope::parse(path, &bytes).map_err(|e| e.to_string())?;
    let link = envelope.link(path).map_err(|e| e.to_string())?;
    Ok(Some((envelope, link, crate::hash::sha256_hex(&bytes))))
}

/// Which parts of a link and the link its attestation stands for differ
/// (docs/attestations.md#verifying): name, command, materials and products
/// (names and every digest), byproducts, environment (JSON values, numbers
/// compared by value).
pub fn link_differences(classic: &Link, attested: &Link) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if classic.name != attested.name {
        fields.push("name");
    }
    if classic.command != attested.command {
        fields.push("command");
    }
    if classic.materials != attested.materials {
        fields.push("materials");
    }
    if classic.products != attested.products {
        fields.push("products");
    }
    if classic.byproducts != attested.byproducts {
        fields.push("byproducts");
    }
    let environment = |link: &Link| serde_json::Value::Object(link.environment.clone());
    if !same_json(&environment(classic), &environment(attested)) {
        fields.push("environment");
    }
    fields
}

/// JSON equality with numbers compared by value (a protobuf Struct holds
/// every number as a double: `1` and `1.0` are the same).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        // An integer and a float (a protobuf Struct holds numbers as
        // doubles): equal when the float is that integer exactly; otherwise
        // exactly. Integers beyond 2^53 do not all convert to f64 exactly,
        // so the float goes to the integer, not the other way round.
        (Value::Number(x), Value::Number(y)) if x.is_f64() != y.is_f64() => {
            let (int, float) = if x.is_f64() { (y, x) } else { (x, y) };
            let Some(f) = float.as_f64() else {
                return false;
            };
            let whole = f.fract() == 0.0 && f.abs() < 9.3e18;
            whole
                && match (int.as_i64(), int.as_u64()) {
                    (Some(i), _) => f as i64 == i && i as f64 == f,
                    (None, Some(u)) => f >= 0.0 && f as u64 == u && u as f64 == f,
                    (None, None) => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Checks that `keyid` signed the attestation with `key`, with the verdicts
/// and messages of a DSSE link ([`Metadata::verify_signature`]): any
/// signature carrying the keyid may verify.
fn attestation_signature(envelope: &Envelope, key: &PublicKey, keyid: &str) -> Result<(), String> {
    if !envelope.signatures.iter().any(|(k, _)| k == keyid) {
        Err(format!("no signature by key {keyid}"))
    } else if envelope.verifies(keyid, key) {
        Ok(())
    } else {
        Err(format!("the signature by key {keyid} does not verify"))
    }
}

/// Loads a step's link files, keeps those validly signed by an authorized
/// functionary, verifies sublayouts, and checks the threshold of distinct
/// functionaries. A link attestation (`<step>.<keyid8>.link.attest-link.json`)
/// stands in for a missing link of the same keyid and counts exactly as the
/// link would; beside a link it must say the same.
fn step_evidence(
    layout: &Layout,
    step: &Step,
    link_dir: &Path,
    now: i64,
    inspector: &mut dyn Inspector,
    item: &mut ItemReport,
    warnings: &mut Vec<String>,
) -> Result<Vec<Evidence>, String> {
    // in-toto loads one file per authorized keyid (a keyid listed twice is
    // looked for once) and skips files that are not there.
    let mut loaded: Vec<(String, Loaded)> = Vec::new();
    for keyid in &step.pubkeys {
        if loaded.iter().any(|(k, _)| k == keyid) {
            continue;
        }
        let file = link_dir.join(link::file_name(&step.name, keyid));
        let attestation_file = link_dir.join(attest::file_name(&step.name, keyid, Kind::Link));
        let attestation = load_attestation(&attestation_file)?;
        match Metadata::load(&file) {
            // in-toto validates what it loads, counted or not.
            Ok(meta) => {
                let valid = match meta.payload_type() {
                    "link" => Link::from_value(&meta.payload).map(Some),
                    _ => Layout::from_value(&meta.payload).map(|_| None),
                };
                let classic = valid.map_err(|e| format!("{}: {e}", file.display()))?;
                let beside = match attestation {
                    None => None,
                    Some((envelope, attested, _)) => {
                        let differs = match &classic {
                            None => "it stands for a link, the other file is a sublayout".into(),
                            Some(classic) => link_differences(classic, &attested).join(", "),
                        };
                        if !differs.is_empty() {
                            return Err(format!(
                                "step {:?}: the link {} and the link attestation {} of the same key differ ({differs}); a link attestation beside a link must say the same",
                                step.name,
                                file.display(),
                                attestation_file.display()
                            ));
                        }
                        Some((attestation_file, envelope))
                    }
                };
                loaded.push((keyid.clone(), Loaded::Metadata { meta, beside }));
            }
            Err(super::metadata::MetadataError::Read { .. }) => match attestation {
                Some((envelope, link, sha256)) => loaded.push((
                    keyid.clone(),
                    Loaded::Attestation {
                        path: attestation_file,
                        envelope,
                        link,
                        sha256,
                    },
                )),
                None => item.links.push(LinkReport {
                    keyid: keyid.clone(),
                    file,
                    status: LinkStatus::Missing,
                    sublayout: None,
                    attestation: false,
                    sha256: None,
                    incomplete: false,
                }),
            },
            Err(e) => return Err(e.to_string()),
        }
    }
    if (loaded.len() as i64) < step.threshold {
        return Err(format!(
            "step {:?} requires {} link file(s), found {} in {}",
            step.name,
            step.threshold,
            loaded.len(),
            link_dir.display()
        ));
    }

    let mut evidence = Vec::new();
    for (keyid, loaded) in loaded {
        let file = loaded.path().to_path_buf();
        let is_attestation = matches!(loaded, Loaded::Attestation { .. });
        let not_counted = |keyid: String, reason: String| LinkReport {
            keyid,
            file: file.clone(),
            status: LinkStatus::BadSignature(reason),
            sublayout: None,
            attestation: is_attestation,
            sha256: None,
            incomplete: false,
        };
        // Only keys the layout lists can authorize (loaded keyids come
        // from the step's pubkeys).
        let Some(key) = layout.keys.get(&keyid) else {
            item.links.push(not_counted(
                keyid,
                "the layout does not list this key".into(),
            ));
            continue;
        };
        let (link, sha256) = match loaded {
            Loaded::Attestation {
                envelope,
                link,
                sha256,
                ..
            } => {
                if let Err(e) = attestation_signature(&envelope, &key.key, &key.keyid) {
                    item.links.push(not_counted(keyid, e));
                    continue;
                }
                (link, sha256)
            }
            Loaded::Metadata { meta, beside } => {
                if let Err(e) = meta.verify_signature(&key.key, &key.keyid) {
                    item.links.push(not_counted(keyid, e));
                    continue;
                }
                // The attestation beside the link says the same; it must be
                // the same functionary's too.
                if let Some((path, envelope)) = &beside
                    && let Err(e) = attestation_signature(envelope, &key.key, &key.keyid)
                {
                    return Err(format!(
                        "step {:?}: the link attestation {} beside the link {}: {e}",
                        step.name,
                        path.display(),
                        file.display()
                    ));
                }
                if meta.payload_type() == "layout" {
                    let sub_dir =
                        link_dir.join(format!("{}.{}", step.name, &keyid[..keyid.len().min(8)]));
                    let mut sub_report = Report::new(file.clone());
                    let owner = [(key.keyid.clone(), key.key.clone())];
                    let result = verify(&meta, &owner, &sub_dir, now, inspector, &mut sub_report);
                    item.links.push(LinkReport {
                        keyid: keyid.clone(),
                        file: file.clone(),
                        status: LinkStatus::Counted,
                        sublayout: Some(Box::new(sub_report)),
                        attestation: false,
                        sha256: Some(meta.sha256.clone()),
                        incomplete: false,
                    });
                    let summary = result.map_err(|e| {
                        format!("sublayout {} of step {:?}: {e}", file.display(), step.name)
                    })?;
                    evidence.push(Evidence {
                        keyid,
                        file,
                        materials: summary.materials,
                        products: summary.products,
                        command: summary.command,
                    });
                    continue;
                }
                let link = Link::from_value(&meta.payload)
                    .map_err(|e| format!("{}: not a valid link: {e}", file.display()))?;
                (link, meta.sha256.clone())
            }
        };
        if is_attestation {
            warnings.push(format!(
                "{}: a link attestation counted for step {:?} in place of a missing link: in-toto-verify, which reads only links, would not count it",
                printable(&file.display().to_string()),
                step.name
            ));
        }
        let incomplete = recorded_incomplete(&link);
        if incomplete {
            warnings.push(format!(
                "{}: step {:?} was recorded with --allow-incomplete (environment.tracelink.complete is false): its materials and products may not be everything the step used",
                printable(&file.display().to_string()),
                step.name
            ));
        }
        item.links.push(LinkReport {
            keyid: keyid.clone(),
            file: file.clone(),
            status: LinkStatus::Counted,
            sublayout: None,
            attestation: is_attestation,
            sha256: Some(sha256),
            incomplete,
        });
        evidence.push(Evidence {
            keyid,
            file,
            materials: link.materials,
            products: link.products,
            command: link.command,
        });
    }
    // Distinct functionaries: keyids are distinct by construction.
    if (evidence.len() as i64) < step.threshold {
        return Err(format!(
            "step {:?} requires at least {} link(s) validly signed by different authorized functionaries, found {}",
            step.name,
            step.threshold,
            evidence.len()
        ));
    }
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn link() -> Link {
        Link {
            name: "build".into(),
            command: vec!["make".into()],
            materials: ArtifactMap::from([(
                "a.c".into(),
                [("sha256".to_string(), "aa".repeat(32))].into(),
            )]),
            environment: json!({"n": 1, "list": [2, {"x": 3}]})
                .as_object()
                .unwrap()
                .clone(),
            ..Link::default()
        }
    }

    #[test]
    fn differences_name_the_parts_that_differ() {
        let a = link();
        assert!(link_differences(&a, &a.clone()).is_empty());
        // A protobuf Struct's doubles are the same numbers.
        let mut b = a.clone();
        b.environment = json!({"n": 1.0, "list": [2.0, {"x": 3.0}]})
            .as_object()
            .unwrap()
            .clone();
        assert!(link_differences(&a, &b).is_empty());
        b.environment["n"] = json!(1.5);
        b.command.push("-j2".into());
        b.materials
            .get_mut("a.c")
            .unwrap()
            .insert("sha512".into(), "bb".repeat(64));
        b.byproducts.return_value = Some(0);
        assert_eq!(
            link_differences(&a, &b),
            ["command", "materials", "byproducts", "environment"]
        );
        let mut c = a.clone();
        c.name = "other".into();
        c.products.insert("x".into(), Default::default());
        assert_eq!(link_differences(&a, &c), ["name", "products"]);
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same_json(&json!("1"), &json!(1)));
        // An integer and a float: equal only when the float is exactly it
        // (2^53 + 1 is no f64; it was taken for 2^53 before).
        assert!(same_json(&json!(1), &json!(1.0)));
        assert!(same_json(&json!(-7), &json!(-7.0)));
        assert!(!same_json(&json!(1), &json!(1.5)));
        assert!(same_json(
            &json!(9007199254740992u64),
            &json!(9007199254740992.0)
        ));
        assert!(!same_json(
            &json!(9007199254740993u64),
            &json!(9007199254740992.0)
        ));
        assert!(!same_json(&json!(i64::MAX), &json!(9.3e18)));
    }
}
