//! What a verification found, step by step: which signatures and links
//! counted, what each artifact rule consumed or rejected, what each
//! inspection ran; and its renderings for a person (text) and for machines
//! (JSON).
//!
//! The text is for a terminal and every name in it may be crafted (link
//! artifact names, layout patterns, step names, file names): each goes
//! through [`crate::text::printable`], so no control character, C1 code or
//! bidi override reaches the terminal and no name breaks a line. The JSON
//! keeps every string exact.
//!
//! This module knows nothing of how the findings were made.

use super::rules::{RuleOutcome, RuleStep};
use crate::text::printable as esc;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Why a link file did or did not count for its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    /// Validly signed by an authorized functionary; counted.
    Counted,
    /// No such file (in-toto skips it).
    Missing,
    /// Loaded but its signature did not verify with the authorized key.
    BadSignature(String),
}

#[derive(Debug, Clone)]
pub struct LinkReport {
    pub keyid: String,
    pub file: PathBuf,
    pub status: LinkStatus,
    /// When the "link" is a sublayout: its own verification.
    pub sublayout: Option<Box<Report>>,
    /// The file is a link attestation (`<step>.<keyid8>.link.attest-link.json`)
    /// standing in for the link.
    pub attestation: bool,
    /// sha256 of the file's bytes as read, for counted files.
    pub sha256: Option<String>,
    /// A counted link recorded with `--allow-incomplete`
    /// (`environment.tracelink.complete` false).
    pub incomplete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Step,
    Inspection,
}

/// A step or an inspection.
#[derive(Debug, Clone)]
pub struct ItemReport {
    pub kind: ItemKind,
    pub name: String,
    /// Steps: the threshold; inspections: 0.
    pub threshold: i64,
    /// Steps: the link files looked for.
    pub links: Vec<LinkReport>,
    /// Inspections: the command run and its exit status.
    pub run: Vec<String>,
    pub return_value: Option<i64>,
    pub materials: usize,
    pub products: usize,
    pub rules: Vec<RuleOutcome>,
}

impl ItemReport {
    pub fn new(kind: ItemKind, name: &str) -> ItemReport {
        ItemReport {
            kind,
            name: name.to_owned(),
            threshold: 0,
            links: Vec::new(),
            run: Vec::new(),
            return_value: None,
            materials: 0,
            products: 0,
            rules: Vec::new(),
        }
    }
}

/// The verification of one layout (the root, or a sublayout).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub layout: PathBuf,
    /// Owner keyid → whether its signature verified (and why not).
    pub signatures: Vec<(String, Result<(), String>)>,
    pub expires: Option<String>,
    pub items: Vec<ItemReport>,
    pub warnings: Vec<String>,
    /// The first reason verification failed, if it did.
    pub failure: Option<String>,
}

/// At most this many paths are listed per rule in the text report.
const SHOWN_PATHS: usize = 5;

impl Report {
    pub fn new(layout: PathBuf) -> Report {
        Report {
            layout,
            ..Report::default()
        }
    }

    /// The report for a person; `indent` nests sublayouts.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, "");
        out
    }

    fn write_text(&self, out: &mut String, pad: &str) {
        let _ = writeln!(
            out,
            "{pad}layout {}",
            esc(&self.layout.display().to_string())
        );
        for (keyid, result) in &self.signatures {
            match result {
                Ok(()) => {
                    let _ = writeln!(out, "{pad}  signed by {}: ok", esc(keyid));
                }
                Err(e) => {
                    let _ = writeln!(out, "{pad}  signed by {}: FAILED ({})", esc(keyid), esc(e));
                }
            }
        }
        if let Some(expires) = &self.expires {
            let _ = writeln!(out, "{pad}  expires {}", esc(expires));
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "{pad}  warning: {}", esc(warning));
        }
        for item in &self.items {
            let kind = match item.kind {
                ItemKind::Step => "step",
                ItemKind::Inspection => "inspection",
            };
            let _ = write!(out, "{pad}{kind} {}", esc(&item.name));
            match item.kind {
                ItemKind::Step => {
                    let counted = item
                        .links
                        .iter()
                        .filter(|l| l.status == LinkStatus::Counted)
                        .count();
                    let _ = writeln!(
                        out,
                        ": {counted} link(s) counted, threshold {}",
                        item.threshold
                    );
                }
                ItemKind::Inspection => {
                    let _ = write!(out, ": ran {}", esc(&format!("{:?}", item.run.join(" "))));
                    match item.return_value {
                        Some(rv) => {
                            let _ = writeln!(out, ", exit {rv}");
                        }
                        None => out.push('\n'),
                    }
                }
            }
            for link in &item.links {
                let status = match &link.status {
                    LinkStatus::Counted => "counted".to_owned(),
                    LinkStatus::Missing => "missing".to_owned(),
                    LinkStatus::BadSignature(e) => format!("not counted: {}", esc(e)),
                };
                let _ = writeln!(
                    out,
                    "{pad}  {} (key {}{}): {status}",
                    esc(&link.file.display().to_string()),
                    esc(short(&link.keyid)),
                    if link.attestation {
                        ", link attestation"
                    } else {
                        ""
                    }
                );
                if let Some(sub) = &link.sublayout {
                    sub.write_text(out, &format!("{pad}    "));
                }
            }
            if !item.rules.is_empty() || item.materials + item.products > 0 {
                let _ = writeln!(
                    out,
                    "{pad}  {} material(s), {} product(s)",
                    item.materials, item.products
                );
            }
            for outcome in &item.rules {
                write_rules(out, outcome, &format!("{pad}  "));
            }
        }
        if let Some(failure) = &self.failure {
            let _ = writeln!(out, "{pad}FAILED: {}", esc(failure));
        }
    }

    /// The report for machines.
    pub fn to_json(&self) -> Value {
        json!({
            "layout": self.layout.display().to_string(),
            "verified": self.failure.is_none(),
            "failure": self.failure,
            "signatures": self.signatures.iter().map(|(keyid, r)| json!({
                "keyid": keyid,
                "verified": r.is_ok(),
                "error": r.as_ref().err(),
            })).collect::<Vec<_>>(),
            "expires": self.expires,
            "warnings": self.warnings,
            "steps": self.items.iter().filter(|i| i.kind == ItemKind::Step)
                .map(item_json).collect::<Vec<_>>(),
            "inspections": self.items.iter().filter(|i| i.kind == ItemKind::Inspection)
                .map(item_json).collect::<Vec<_>>(),
        })
    }
}

fn item_json(item: &ItemReport) -> Value {
    let mut v = json!({
        "name": item.name,
        "materials": item.materials,
        "products": item.products,
        "rules": item.rules.iter().map(|o| json!({
            "artifacts": o.artifacts_kind.as_str(),
            "queue": o.queue_before,
            "applied": o.trace.iter().map(|s| json!({
                "rule": s.rule.to_list(),
                "consumed": s.consumed,
            })).collect::<Vec<_>>(),
            "failure": o.result.as_ref().err().map(|f| json!({
                "rule": f.rule.to_list(),
                "reason": f.reason,
            })),
        })).collect::<Vec<_>>(),
    });
    match item.kind {
        ItemKind::Step => {
            v["threshold"] = json!(item.threshold);
            v["links"] = item
                .links
                .iter()
                .map(|l| {
                    let (status, error) = match &l.status {
                        LinkStatus::Counted => ("counted", None),
                        LinkStatus::Missing => ("missing", None),
                        LinkStatus::BadSignature(e) => ("bad-signature", Some(e)),
                    };
                    json!({
                        "keyid": l.keyid,
                        "file": l.file.display().to_string(),
                        "status": status,
                        "error": error,
                        "attestation": l.attestation,
                        "sha256": l.sha256,
                        "sublayout": l.sublayout.as_ref().map(|s| s.to_json()),
                    })
                })
                .collect();
        }
        ItemKind::Inspection => {
            v["run"] = json!(item.run);
            v["return_value"] = json!(item.return_value);
        }
    }
    v
}

fn write_rules(out: &mut String, outcome: &RuleOutcome, pad: &str) {
    let _ = writeln!(
        out,
        "{pad}{} rules ({} queued):",
        outcome.artifacts_kind,
        outcome.queue_before.len()
    );
    for RuleStep { rule, consumed, .. } in &outcome.trace {
        let _ = writeln!(
            out,
            "{pad}  {}: consumed {}{}",
            esc(&rule.to_string()),
            consumed.len(),
            paths(consumed)
        );
    }
    if let Err(failure) = &outcome.result {
        let _ = writeln!(
            out,
            "{pad}  {}: FAILED: {}",
            esc(&failure.rule.to_string()),
            esc(&failure.reason)
        );
    }
}

fn paths(list: &[String]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let shown: Vec<_> = list.iter().take(SHOWN_PATHS).map(|s| esc(s)).collect();
    let more = list.len().saturating_sub(SHOWN_PATHS);
    if more > 0 {
        format!(" ({} and {more} more)", shown.join(", "))
    } else {
        format!(" ({})", shown.join(", "))
    }
}

/// The first 8 characters (a keyid is hex, but the report does not rely on it).
fn short(keyid: &str) -> &str {
    keyid
        .char_indices()
        .nth(8)
        .map_or(keyid, |(i, _)| &keyid[..i])
}
