//! Drafting an in-toto layout from recorded precise links, for the owner to
//! review, edit and sign (`tracelink layout draft`).
//!
//! This module is pure: it takes the bytes of link files (with a label that
//! names them in messages), the functionaries' public keys and the current
//! time, and returns the unsigned layout as JSON plus a summary and notes. It
//! knows nothing of files, directories or the terminal; the caller reads the
//! links and writes the draft.
//!
//! What the draft says, step by step (docs/recording.md gives the meaning
//! of a precise link):
//!
//! - Only links with a valid signature by one of the given keys count; a link
//!   signed by none of them is an error naming it (dropping it would silently
//!   turn its step's products into "sources nobody produced").
//! - A link recorded with `--allow-incomplete` (`environment.tracelink.complete`
//!   false) is an error naming it unless the owner allows such links, which
//!   are then each named in a note (docs/recording.md#incomplete-runs).
//! - Steps are ordered by artifact flow: a step whose material equals (path
//!   and whole digest set) another step's product comes after that step; ties
//!   are broken by name; a cycle is an error that names the files closing it.
//! - `expected_materials`: every material is `MATCH`ed `WITH PRODUCTS FROM`
//!   the latest earlier step that produced it with the same digests (one
//!   `MATCH * ... FROM step` when the step's materials from that producer are
//!   exactly all of its products, per-file rules otherwise), then
//!   `DISALLOW *`. No `DELETE` rules: in a precise link a material that is no
//!   product was either only read or removed, and the link cannot tell which.
//!   A `DELETE` would consume every such material that its `MATCH` rejected,
//!   so a tampered input file would pass; the `MATCH` already accepts a
//!   removed file whose content came from its producer.
//! - `expected_products`: `CREATE` for products that are no materials,
//!   `MODIFY` for products whose digests changed, and, for a file the step
//!   rewrote with the same bytes, `MATCH file WITH MATERIALS FROM <itself>`
//!   (exactly "unchanged", which neither `CREATE` nor `MODIFY` accepts, and
//!   tighter than `ALLOW`), then `DISALLOW *`.
//! - Materials that no step produced (the sources) come from a suggested
//!   `checkout` step, first in order, whose products `CREATE` those files
//!   (one rule each with `exact`, by directory otherwise); the draft
//!   verifies once a functionary records that step (`tracelink run -n
//!   checkout -x -p PATHS...`) before the first step.
//! - Unless `exact`, rules are generalized so that the draft lasts (one more
//!   source file next week still verifies). A group of at least two files
//!   (two are the evidence of a group; a lone file keeps its own rule) gets,
//!   among `dir/*` for each directory above a file, `*.ext`, `dir/*.ext` and
//!   `*/name` (and `*` for materials), the pattern covering the most of the
//!   step's files that is safe against every recorded path (any link's
//!   materials and products) it matches; for a step that reads nothing (a
//!   checkout) the broadest safe one, directories first, since it is
//!   recorded by directory. In in-toto's fnmatch `*` matches `/` too, so
//!   `src/*` covers the whole tree under `src` and `*.o` every `.o` at any
//!   depth; `CREATE *` is never drafted.
//!   - `CREATE P` is safe when no path P matches was produced by an earlier
//!     step (nor is a material nobody produced): it never lets the step
//!     replace an input. It may match files a later step produces (a
//!     checkout's `CREATE src/*` with objects built beside the sources): a
//!     file made ahead of that step is caught where it is read, because
//!     readers' `MATCH` patterns never cover files their producer did not
//!     make.
//!   - `MATCH P WITH PRODUCTS FROM T` is safe when every path P matches was
//!     produced by T and by no step ordered between T and this one (P never
//!     takes T's version of a file a later step rewrote, nor a file another
//!     step makes), and every material of this step that P matches comes
//!     from T.
//!   - `MODIFY P` is safe when every material and product of this step
//!     that P matches is either a file this step modified or one it only
//!     read (no product) that comes from the same step as a modified file P
//!     covers: automake's `MODIFY *.Po` for the `.deps/*.Po` configure writes
//!     and make rewrites, though make only reads those of sources it does not
//!     compile. P never covers a file the step created or rewrote unchanged,
//!     nor a source read from another step. A file it only read and may now
//!     change is still caught where it is read later: no reader's `MATCH
//!     ... FROM` this step covers a file this step did not produce.
//!   - Unchanged products keep one rule per file.
//!
//!   Besides directories and the last extension, the candidates are every
//!   dotted suffix (`*.in.h`, `lib/*.in.h`) and, inside the file's
//!   directory, prefixes of its name: its first letter and up to each `-`,
//!   `_` or `.` of its stem, with and without its extension (`lib/x*.h`,
//!   `lib/c-*`). They group sources that sit beside generated files of the
//!   same extension (gnulib's `lib/*.h` from the checkout beside the
//!   `lib/stdio.h` make writes from `lib/stdio.in.h`), where `lib/*.h` would
//!   be unsafe; they only win where a broader candidate is unsafe or covers
//!   fewer files.
//!
//!   A generalized draft catches the same tampering as an exact one except
//!   an extra file inside a generalized pattern (a new object under `CREATE
//!   *.o`, another checkout product of T read under `MATCH src/* ... FROM
//!   T`, a `.Po` make only read but now rewrites under `MODIFY *.Po`). The suggested checkout then records whole directories: those of
//!   its `CREATE dir/*` rules, plus the other files.
//! - Each step's `pubkeys` are the keyids that signed its links (threshold 1);
//!   `keys` holds their key dictionaries with `keyid` and
//!   `keyid_hash_algorithms`, so in-toto Python and in-toto-golang read them.
//!
//! Finally the drafted rules are applied to the recorded links (and the
//! suggested checkout) with [`crate::verify::rules`]; any rule that would
//! reject them is reported as a note, since it points at links that do not
//! fit together (a file changed between steps outside any recorded step).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::keys::{KeyIdFormat, PublicKey};
use crate::link::{self, ArtifactMap, DigestSet, Link};
use crate::verify::chain::recorded_incomplete;
use crate::verify::fnmatch::Pattern;
use crate::verify::rules::{ArtifactsKind, Rule, apply_rules};

/// Why no draft can be made.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("{source_name}: not in-toto link metadata: {reason}")]
    Malformed { source_name: String, reason: String },
    #[error(
        "{source_name}: signed by {keyids}, none of which is a given functionary key; \
         add its functionary's public key (--functionary-key) or move the file out of the link directory"
    )]
    UnknownSigner { source_name: String, keyids: String },
    #[error(
        "{source_name}: the signature by key {keyid} does not verify (was the link changed after signing?)"
    )]
    BadSignature { source_name: String, keyid: String },
    #[error("no links to draft a layout from")]
    NoLinks,
    #[error(
        "step {step:?}: {first} and {second} record different {what}; with threshold 1 in-toto \
         checks only one of them, with a higher threshold it rejects both: record the step from \
         clean trees or keep one link"
    )]
    DifferingLinks {
        step: String,
        first: String,
        second: String,
        what: &'static str,
    },
    #[error("the links' artifact flow has a cycle, so the steps have no order: {0}")]
    Cycle(String),
    #[error(
        "{source_name}: step {step:?} was recorded with --allow-incomplete (environment.tracelink.complete \
         is false): its materials and products may not be everything the step used, so rules drafted \
         from it could accept what they should not. Record the step again, or pass --allow-incomplete \
         to draft from it anyway"
    )]
    Incomplete { source_name: String, step: String },
}

/// A link whose signature was checked, with the keyids that signed it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedLink {
    /// Names the link in messages (its path).
    pub source: String,
    pub link: Link,
    /// Keyids of the given keys whose signatures on the link verified (sorted).
    pub signers: Vec<String>,
}

/// Parses a link file's bytes (classic signed JSON or DSSE) and checks its
/// signatures against `keys`, under either keyid convention.
pub fn read_link(
    source: &str,
    bytes: &[u8],
    keys: &[PublicKey],
) -> Result<RecordedLink, DraftError> {
    let malformed = |reason: String| DraftError::Malformed {
        source_name: source.to_owned(),
        reason,
    };
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let keyids: BTreeSet<String> = doc
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`signatures` is missing".into()))?
        .iter()
        .filter_map(|s| s.get("keyid").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let known = key_index(keys);
    let mut signers = Vec::new();
    let mut parsed = None;
    for keyid in &keyids {
        let Some((key, _)) = known.get(keyid) else {
            continue;
        };
        match link::parse_and_verify(bytes, key, keyid) {
            Ok((link, _)) => {
                signers.push(keyid.clone());
                parsed = Some(link);
            }
            Err(reason) if reason.starts_with("no valid signature") => {
                return Err(DraftError::BadSignature {
                    source_name: source.to_owned(),
                    keyid: keyid.clone(),
                });
            }
            Err(reason) => return Err(malformed(reason)),
        }
    }
    let Some(link) = parsed else {
        let keyids = if keyids.is_empty() {
            "no key (it has no signatures)".to_owned()
        } else {
            keyids.into_iter().collect::<Vec<_>>().join(", ")
        };
        return Err(DraftError::UnknownSigner {
            source_name: source.to_owned(),
            keyids,
        });
    };
    Ok(RecordedLink {
        source: source.to_owned(),
        link,
        signers,
    })
}

/// keyid (both conventions) -> the key and the convention that names it.
fn key_index(keys: &[PublicKey]) -> BTreeMap<String, (&PublicKey, KeyIdFormat)> {
    let mut index = BTreeMap::new();
    for key in keys {
        for format in [KeyIdFormat::Python, KeyIdFormat::Legacy] {
            index.entry(key.keyid(format)).or_insert((key, format));
        }
    }
    index
}

/// Escapes fnmatch's metacharacters so that the pattern matches exactly `path`.
pub fn escape_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Settings of a draft.
#[derive(Debug, Clone)]
pub struct DraftOptions {
    /// The current time, seconds since the Unix epoch (UTC).
    pub now: i64,
    /// The layout expires this many days after `now`.
    pub expires_days: u32,
    /// Where the links came from, for the readme (e.g. the link directory).
    pub origin: String,
    /// Draft from links recorded with `--allow-incomplete` too (each named
    /// in a note); otherwise such a link is an error naming it.
    pub allow_incomplete: bool,
    /// One rule per file, as recorded (`--exact`); otherwise files are
    /// grouped into directory and extension patterns where that is safe
    /// (see the module documentation).
    pub exact: bool,
}

/// One step of the draft, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSummary {
    pub name: String,
    /// The links it was drafted from (empty for the suggested checkout).
    pub links: Vec<String>,
    pub pubkeys: Vec<String>,
    pub material_rules: usize,
    pub product_rules: usize,
}

/// The suggested step that records the files no recorded step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSuggestion {
    /// The step name (`checkout`, unless a recorded step has that name).
    pub step: String,
    /// The files it must record as products, sorted.
    pub files: Vec<String>,
    /// What to pass to `tracelink run -x -p`, sorted: the directories its
    /// `CREATE dir/*` rules cover (recorded whole) and the other files.
    /// With `exact`, the files.
    pub paths: Vec<String>,
    /// The keyid the functionary should sign it under: a signer of the first
    /// step that reads these files.
    pub keyid: String,
    /// The convention of that keyid (`--keyid-format`).
    pub keyid_format: KeyIdFormat,
}

/// A drafted layout.
#[derive(Debug, Clone)]
pub struct Draft {
    /// `{"signatures": [], "signed": {...}}`.
    pub layout: Value,
    /// The `expires` field.
    pub expires: String,
    /// In layout order.
    pub steps: Vec<StepSummary>,
    pub checkout: Option<CheckoutSuggestion>,
    /// Things the owner must look at (each one line).
    pub notes: Vec<String>,
}

impl Draft {
    /// The draft as in-toto writes metadata: `json.dumps(indent=1,
    /// sort_keys=True)`, no final newline.
    pub fn to_text(&self) -> String {
        link::pyjson::dumps(&self.layout, Some(1))
    }
}

/// One step's artifacts as the draft sees them.
struct StepData {
    links: Vec<String>,
    command: Vec<String>,
    materials: ArtifactMap,
    products: ArtifactMap,
    pubkeys: BTreeSet<String>,
}

/// Drafts a layout from checked links (see the module documentation).
pub fn draft(
    links: &[RecordedLink],
    keys: &[PublicKey],
    opts: &DraftOptions,
) -> Result<Draft, DraftError> {
    if links.is_empty() {
        return Err(DraftError::NoLinks);
    }
    let mut notes = Vec::new();
    for recorded in links {
        if !recorded_incomplete(&recorded.link) {
            continue;
        }
        if !opts.allow_incomplete {
            return Err(DraftError::Incomplete {
                source_name: recorded.source.clone(),
                step: recorded.link.name.clone(),
            });
        }
        notes.push(format!(
            "{}: step {:?} was recorded with --allow-incomplete: its materials and products may not be \
             everything the step used; the draft's rules for it rest on an incomplete record",
            recorded.source, recorded.link.name
        ));
    }
    let mut steps = group_steps(links, &mut notes)?;

    // Materials that no other step produced with the same digests.
    let mut producers: BTreeMap<(&str, &DigestSet), BTreeSet<&str>> = BTreeMap::new();
    for (name, data) in &steps {
        for (path, digests) in &data.products {
            producers
                .entry((path.as_str(), digests))
                .or_default()
                .insert(name.as_str());
        }
    }
    let mut sources: ArtifactMap = ArtifactMap::new();
    let mut source_readers: BTreeSet<String> = BTreeSet::new();
    for (name, data) in &steps {
        for (path, digests) in &data.materials {
            let produced = producers
                .get(&(path.as_str(), digests))
                .is_some_and(|p| p.iter().any(|t| t != name));
            if produced {
                continue;
            }
            let writers: Vec<&str> = steps
                .iter()
                .filter(|(t, other)| *t != name && other.products.contains_key(path))
                .map(|(t, _)| t.as_str())
                .collect();
            if !writers.is_empty() {
                notes.push(format!(
                    "{path}: step {name:?} read contents that no recorded step produced, though \
                     {writers:?} wrote other contents to it; the draft treats it as a source"
                ));
            }
            source_readers.insert(name.clone());
            match sources.get(path) {
                Some(seen) if seen != digests => notes.push(format!(
                    "{path}: the steps read different contents of it and no recorded step \
                     produced either; it changed between steps outside any recorded step"
                )),
                Some(_) => {}
                None => {
                    sources.insert(path.clone(), digests.clone());
                }
            }
        }
    }
    let checkout_name = (!sources.is_empty()).then(|| {
        ["checkout", "sources"]
            .into_iter()
            .map(str::to_owned)
            .chain((2..).map(|n| format!("checkout-{n}")))
            .find(|n| !steps.contains_key(n))
            .expect("an unused name")
    });
    if let Some(name) = &checkout_name {
        let pubkeys = source_readers
            .iter()
            .flat_map(|s| steps[s].pubkeys.iter().cloned())
            .collect();
        steps.insert(
            name.clone(),
            StepData {
                links: Vec::new(),
                command: Vec::new(),
                materials: ArtifactMap::new(),
                products: sources.clone(),
                pubkeys,
            },
        );
    }

    let order = order_steps(&steps, checkout_name.as_deref())?;
    let mut step_values = Vec::new();
    let mut summaries = Vec::new();
    let mut all_rules = BTreeMap::new();
    let flow = Flow::new(&steps, &order);
    let mut checkout_dirs = BTreeSet::new();
    for (i, name) in order.iter().enumerate() {
        let data = &steps[name];
        let materials = material_rules(name, data, &order[..i], &steps, &flow, opts, &mut notes);
        let products = product_rules(name, data, &flow, opts);
        if Some(name) == checkout_name.as_ref() {
            checkout_dirs = products
                .iter()
                .filter_map(|r| match r {
                    Rule::Create(p) => p.strip_suffix("/*").map(str::to_owned),
                    _ => None,
                })
                .collect();
        }
        step_values.push(json!({
            "_type": "step",
            "name": name,
            "threshold": 1,
            "pubkeys": data.pubkeys,
            "expected_command": data.command,
            "expected_materials": materials.iter().map(Rule::to_list).collect::<Vec<_>>(),
            "expected_products": products.iter().map(Rule::to_list).collect::<Vec<_>>(),
        }));
        summaries.push(StepSummary {
            name: name.clone(),
            links: data.links.clone(),
            pubkeys: data.pubkeys.iter().cloned().collect(),
            material_rules: materials.len(),
            product_rules: products.len(),
        });
        all_rules.insert(name.clone(), (materials, products));
    }
    // Apply the draft to the links it came from.
    let world: BTreeMap<String, (ArtifactMap, ArtifactMap)> = steps
        .iter()
        .map(|(n, d)| (n.clone(), (d.materials.clone(), d.products.clone())))
        .collect();
    for name in &order {
        let (m_rules, p_rules) = &all_rules[name];
        let (materials, products) = &world[name];
        for (rules, kind) in [
            (m_rules, ArtifactsKind::Materials),
            (p_rules, ArtifactsKind::Products),
        ] {
            let outcome = apply_rules(name, rules, kind, materials, products, &world);
            if let Err(failure) = outcome.result {
                notes.push(format!(
                    "the recorded links do not pass this draft: expected_{kind} of step \
                     {name:?}: {failure}"
                ));
            }
        }
    }

    let known = key_index(keys);
    let mut key_dicts = Map::new();
    for keyid in steps.values().flat_map(|d| d.pubkeys.iter()) {
        if let Some((key, format)) = known.get(keyid) {
            let mut dict = key.key_dict(*format);
            dict["keyid"] = json!(keyid);
            dict["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
            key_dicts.insert(keyid.clone(), dict);
        }
    }

    let checkout = checkout_name.as_ref().map(|name| {
        let first_reader = order
            .iter()
            .find(|s| source_readers.contains(*s))
            .expect("a checkout exists only for files some step read");
        let keyid = steps[first_reader]
            .pubkeys
            .iter()
            .next()
            .expect("every recorded step has a signer")
            .clone();
        let keyid_format = known.get(&keyid).map_or(KeyIdFormat::Python, |(_, f)| *f);
        // A file under a `CREATE dir/*` rule is recorded with its
        // directory: the top-most such directory (the patterns are
        // escaped, so compare with escaped names).
        let paths: BTreeSet<String> = sources
            .keys()
            .map(|file| {
                let mut dir = String::new();
                for part in file.split('/').take(file.split('/').count() - 1) {
                    if !dir.is_empty() {
                        dir.push('/');
                    }
                    dir.push_str(part);
                    if checkout_dirs.contains(&escape_pattern(&dir)) {
                        return dir;
                    }
                }
                file.clone()
            })
            .collect();
        CheckoutSuggestion {
            step: name.clone(),
            files: sources.keys().cloned().collect(),
            paths: paths.into_iter().collect(),
            keyid,
            keyid_format,
        }
    });

    let expires = format_utc(opts.now + i64::from(opts.expires_days) * 86_400);
    let readme = readme(opts, links.len(), checkout.as_ref());
    let layout = json!({
        "signatures": [],
        "signed": {
            "_type": "layout",
            "expires": expires,
            "readme": readme,
            "keys": key_dicts,
            "steps": step_values,
            "inspect": [],
        },
    });
    Ok(Draft {
        layout,
        expires,
        steps: summaries,
        checkout,
        notes,
    })
}

/// Groups links by step name; the links of one step must agree.
fn group_steps(
    links: &[RecordedLink],
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, StepData>, DraftError> {
    let mut steps: BTreeMap<String, (&RecordedLink, StepData)> = BTreeMap::new();
    for recorded in links {
        let link = &recorded.link;
        let Some(signer) = recorded.signers.first() else {
            return Err(DraftError::UnknownSigner {
                source_name: recorded.source.clone(),
                keyids: "no key whose signature was checked".into(),
            });
        };
        let file = recorded.source.rsplit('/').next().unwrap_or_default();
        if !recorded
            .signers
            .iter()
            .any(|k| link::file_name(&link.name, k) == file)
        {
            notes.push(format!(
                "{}: verifiers look for this link of step {:?} as {}; rename the file",
                recorded.source,
                link.name,
                link::file_name(&link.name, signer)
            ));
        }
        if link.byproducts.return_value.is_some_and(|rv| rv != 0) {
            notes.push(format!(
                "{}: step {:?} exited with status {}; the draft does not check return values",
                recorded.source,
                link.name,
                link.byproducts.return_value.unwrap_or_default()
            ));
        }
        match steps.get_mut(&link.name) {
            Some((first, data)) => {
                let differ = if first.link.materials != link.materials {
                    Some("materials")
                } else if first.link.products != link.products {
                    Some("products")
                } else {
                    None
                };
                if let Some(what) = differ {
                    return Err(DraftError::DifferingLinks {
                        step: link.name.clone(),
                        first: first.source.clone(),
                        second: recorded.source.clone(),
                        what,
                    });
                }
                data.links.push(recorded.source.clone());
                data.pubkeys.extend(recorded.signers.iter().cloned());
            }
            None => {
                let data = StepData {
                    links: vec![recorded.source.clone()],
                    command: link.command.clone(),
                    materials: link.materials.clone(),
                    products: link.products.clone(),
                    pubkeys: recorded.signers.iter().cloned().collect(),
                };
                steps.insert(link.name.clone(), (recorded, data));
            }
        }
    }
    Ok(steps.into_iter().map(|(n, (_, d))| (n, d)).collect())
}

/// Orders steps by artifact flow (a topological order, ties by name, the
/// checkout first), or names a cycle.
fn order_steps(
    steps: &BTreeMap<String, StepData>,
    checkout: Option<&str>,
) -> Result<Vec<String>, DraftError> {
    // edges[t][s] = a file s read that t produced with the same digests.
    let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let mut indegree: BTreeMap<&str, usize> = steps.keys().map(|n| (n.as_str(), 0)).collect();
    for (s, data) in steps {
        for (t, other) in steps {
            if s == t {
                continue;
            }
            let shared = data
                .materials
                .iter()
                .find(|(path, digests)| other.products.get(*path) == Some(digests));
            if let Some((path, _)) = shared {
                edges
                    .entry(t.as_str())
                    .or_default()
                    .insert(s.as_str(), path.as_str());
                *indegree.get_mut(s.as_str()).expect("every step") += 1;
            }
        }
    }
    let rank = |n: &str| (Some(n) != checkout, n.to_owned());
    let mut ready: BTreeSet<(bool, String)> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| rank(n))
        .collect();
    let mut order = Vec::new();
    while let Some(next) = ready.pop_first() {
        let name = next.1;
        for (s, _) in edges.get(name.as_str()).into_iter().flatten() {
            let d = indegree.get_mut(s).expect("every step");
            *d -= 1;
            if *d == 0 {
                ready.insert(rank(s));
            }
        }
        order.push(name);
    }
    if order.len() == steps.len() {
        return Ok(order);
    }
    // Every step left has a predecessor among those left: walk back to a repeat.
    let done: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    let left: Vec<&str> = steps
        .keys()
        .map(String::as_str)
        .filter(|n| !done.contains(n))
        .collect();
    let predecessor = |s: &str| -> &str {
        left.iter()
            .copied()
            .find(|t| edges.get(t).is_some_and(|e| e.contains_key(s)))
            .expect("a step in a cycle has a predecessor in it")
    };
    let mut walk = vec![left[0]];
    let start = loop {
        let p = predecessor(walk.last().expect("non-empty"));
        if let Some(i) = walk.iter().position(|w| *w == p) {
            break i;
        }
        walk.push(p);
    };
    // walk[start..] goes backwards along edges; print it forwards.
    let mut cycle: Vec<&str> = walk[start..].to_vec();
    cycle.reverse();
    let mut text = cycle[0].to_owned();
    for (i, t) in cycle.iter().enumerate() {
        let s = cycle[(i + 1) % cycle.len()];
        text.push_str(&format!(
            " -> {s} ({s} read {:?} as {t} wrote it)",
            edges[t][s]
        ));
    }
    Err(DraftError::Cycle(text))
}

/// Every recorded path (any link's materials or products, the suggested
/// checkout's products) with the positions, in the layout order, of the
/// steps that produced it: what a generalized pattern is checked against.
struct Flow {
    position: BTreeMap<String, usize>,
    producers: BTreeMap<String, BTreeSet<usize>>,
}

impl Flow {
    fn new(steps: &BTreeMap<String, StepData>, order: &[String]) -> Flow {
        let position: BTreeMap<String, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut producers: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (name, data) in steps {
            for path in data.materials.keys() {
                producers.entry(path.clone()).or_default();
            }
            for path in data.products.keys() {
                producers
                    .entry(path.clone())
                    .or_default()
                    .insert(position[name]);
            }
        }
        Flow {
            position,
            producers,
        }
    }

    /// The recorded paths `pattern` matches, with their producers.
    fn matching<'a>(
        &'a self,
        pattern: &'a Pattern,
    ) -> impl Iterator<Item = (&'a str, &'a BTreeSet<usize>)> + 'a {
        self.producers
            .iter()
            .filter(|(path, _)| pattern.matches(path))
            .map(|(path, p)| (path.as_str(), p))
    }
}

/// The patterns tried for `file`, broadest first: `*` (only if `star`), each
/// directory above it from the top (`src/*`, `src/core/*`), each dotted
/// suffix, shortest first, anywhere (`*.h`, `*.in.h`) and in each directory
/// above it (`lib/*.in.h`), its name in any directory (`*/Makefile`), then
/// prefixes of its name in its own directory (`lib/x*`, `lib/x*.h`). In in-toto's
/// fnmatch `*` matches `/` too, so `src/*` covers the whole tree under `src`
/// and `*.o` every `.o` file at any depth.
fn candidates(file: &str, star: bool) -> Vec<String> {
    let parts: Vec<&str> = file.split('/').collect();
    let dirs: Vec<String> = (1..parts.len())
        .map(|i| escape_pattern(&parts[..i].join("/")))
        .collect();
    let mut out = Vec::new();
    if star {
        out.push("*".to_owned());
    }
    out.extend(dirs.iter().map(|d| format!("{d}/*")));
    let base = parts[parts.len() - 1];
    // Every dotted suffix, shortest first: `*.h`, then `*.in.h` (a name
    // with several dots, such as gnulib's `lib/stdio.in.h` templates beside
    // the `lib/*.h` headers a build generates from them).
    let dots: Vec<usize> = base
        .match_indices('.')
        .map(|(i, _)| i)
        .filter(|&i| i > 0 && i + 1 < base.len())
        .collect();
    for &dot in dots.iter().rev() {
        let ext = escape_pattern(&base[dot + 1..]);
        out.push(format!("*.{ext}"));
        out.extend(dirs.iter().map(|d| format!("{d}/*.{ext}")));
    }
    if !dirs.is_empty() {
        out.push(format!("*/{}", escape_pattern(base)));
    }
    // Names sharing a prefix in the file's directory (not at the top, where
    // `c*` would say little), narrowest last: its first letter, then up to
    // each `-`, `_` or `.` in its stem (`lib/x*.h`, `lib/c-*.h`, and
    // without the extension `lib/c-*`), for sources beside files of the
    // same extension that another step generates.
    let Some(dir) = dirs.last().map(|d| format!("{d}/")) else {
        return out;
    };
    let stem_end = dots.first().copied().unwrap_or(base.len());
    let ext = dots
        .last()
        .map(|&d| escape_pattern(&base[d..]))
        .unwrap_or_default();
    let mut ends: Vec<usize> = base[..stem_end]
        .char_indices()
        .filter(|&(i, c)| i > 0 && matches!(c, '-' | '_' | '.'))
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    if let Some(first) = base.chars().next().filter(|_| stem_end > 1) {
        ends.insert(0, first.len_utf8());
    }
    for end in ends.into_iter().filter(|&e| e < stem_end) {
        let prefix = escape_pattern(&base[..end]);
        out.push(format!("{dir}{prefix}*"));
        if !ext.is_empty() {
            out.push(format!("{dir}{prefix}*{ext}"));
        }
    }
    out
}

/// Patterns for `files` (one rule each): for each file not yet covered, among
/// the candidates that cover at least two of `files` (two recorded files are
/// the evidence of a group; a lone file keeps its own rule) and that `safe`
/// accepts, the one covering the most files (the first of them in
/// [`candidates`]' order), or with `by_directory` the first; the file's own
/// escaped name when there is none. Covering the most keeps an in-tree
/// libtool build at one `*.o` rule rather than one `dir/.libs/*` per
/// directory; `by_directory` is for a checkout, recorded by directory. Every
/// file is covered by the patterns returned; the patterns may also match
/// paths outside `files`, which is what `safe` judges.
fn generalize(
    files: &BTreeSet<&str>,
    star: bool,
    by_directory: bool,
    mut safe: impl FnMut(&Pattern) -> bool,
) -> Vec<String> {
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    // candidate -> the files it covers, if it is a usable pattern (each
    // candidate is judged once: a tree has few directories and extensions).
    let mut usable: BTreeMap<String, Option<Vec<&str>>> = BTreeMap::new();
    let mut out = Vec::new();
    'files: for file in files {
        if covered.contains(file) {
            continue;
        }
        let mut best: Option<(String, usize)> = None;
        for candidate in candidates(file, star) {
            let cover = usable.entry(candidate.clone()).or_insert_with(|| {
                let pattern = Pattern::new(&candidate);
                let cover: Vec<&str> = files
                    .iter()
                    .copied()
                    .filter(|f| pattern.matches(f))
                    .collect();
                (cover.len() >= 2 && safe(&pattern)).then_some(cover)
            });
            let Some(cover) = cover else { continue };
            if best.as_ref().is_none_or(|(_, n)| cover.len() > *n) {
                best = Some((candidate, cover.len()));
                if by_directory {
                    break;
                }
            }
        }
        if let Some((candidate, _)) = best {
            let cover = usable[&candidate].as_ref().expect("usable");
            covered.extend(cover.iter().copied());
            out.push(candidate);
            continue 'files;
        }
        covered.insert(file);
        out.push(escape_pattern(file));
    }
    out
}

/// `expected_materials` of the step at `earlier.len()` in the order.
fn material_rules(
    name: &str,
    data: &StepData,
    earlier: &[String],
    steps: &BTreeMap<String, StepData>,
    flow: &Flow,
    opts: &DraftOptions,
    notes: &mut Vec<String>,
) -> Vec<Rule> {
    // producer -> files matched from it
    let mut from: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (path, digests) in &data.materials {
        let same = earlier
            .iter()
            .rev()
            .find(|t| steps[*t].products.get(path) == Some(digests));
        let producer = match same {
            Some(t) => t,
            None => match earlier
                .iter()
                .rev()
                .find(|t| steps[*t].products.contains_key(path))
            {
                Some(t) => {
                    notes.push(format!(
                        "{path}: step {name:?} read it with other contents than step {t:?} \
                         wrote; the draft MATCHes it FROM {t:?} (which these links fail)"
                    ));
                    t
                }
                None => {
                    notes.push(format!(
                        "{path}: step {name:?} read it but no step produced it; no rule lets it pass"
                    ));
                    continue;
                }
            },
        };
        if let Some(later) = earlier
            .iter()
            .skip_while(|t| *t != producer)
            .skip(1)
            .find(|t| steps[*t].products.contains_key(path))
        {
            notes.push(format!(
                "{path}: step {name:?} reads it as {producer:?} wrote it, but {later:?}, ordered \
                 in between, wrote other contents; check the step order"
            ));
        }
        from.entry(producer.as_str())
            .or_default()
            .insert(path.as_str());
    }
    let mut rules = Vec::new();
    for producer in earlier {
        let Some(files) = from.get(producer.as_str()) else {
            continue;
        };
        let patterns: Vec<String> = if opts.exact {
            let all: BTreeSet<&str> = steps[producer]
                .products
                .keys()
                .map(String::as_str)
                .collect();
            if files.len() > 1 && *files == all {
                vec!["*".to_owned()]
            } else {
                files.iter().map(|f| escape_pattern(f)).collect()
            }
        } else {
            // MATCH P FROM T is safe when every recorded path P matches
            // was produced by T, and by no step ordered between T and this
            // one (so P never takes T's version of a file a later step
            // rewrote, nor a file only another step makes, such as an
            // object pre-built into a checkout), and every material of
            // this step that P matches comes from T.
            let (t, s) = (flow.position[producer.as_str()], earlier.len());
            generalize(files, true, false, |pattern| {
                flow.matching(pattern).all(|(path, producers)| {
                    producers.contains(&t)
                        && producers.iter().all(|&p| p <= t || p >= s)
                        && (!data.materials.contains_key(path) || files.contains(path))
                })
            })
        };
        rules.extend(patterns.into_iter().map(|pattern| Rule::Match {
            pattern,
            source_prefix: None,
            dest_type: ArtifactsKind::Products,
            dest_prefix: None,
            dest_name: producer.clone(),
        }));
    }
    rules.push(Rule::Disallow("*".into()));
    rules
}

/// `expected_products` of a step.
fn product_rules(name: &str, data: &StepData, flow: &Flow, opts: &DraftOptions) -> Vec<Rule> {
    let (mut created, mut modified, mut unchanged) = (BTreeSet::new(), Vec::new(), Vec::new());
    for (path, digests) in &data.products {
        let pattern = escape_pattern(path);
        match data.materials.get(path) {
            None => {
                created.insert(path.as_str());
            }
            Some(before) if before != digests => modified.push(path.as_str()),
            Some(_) => unchanged.push(Rule::Match {
                pattern,
                source_prefix: None,
                dest_type: ArtifactsKind::Materials,
                dest_prefix: None,
                dest_name: name.to_owned(),
            }),
        }
    }
    let mut rules: Vec<Rule> = if opts.exact {
        created
            .iter()
            .map(|f| Rule::Create(escape_pattern(f)))
            .collect()
    } else {
        // CREATE P is safe when no recorded path P matches was produced
        // by an earlier step (or by no step): it then never lets this step
        // replace an input, and a file it makes ahead of a later step that
        // produces it is caught where it is read, by the readers' MATCH
        // patterns, which never cover such files. `CREATE *` is never
        // drafted.
        let s = flow.position[name];
        generalize(&created, false, data.materials.is_empty(), |pattern| {
            flow.matching(pattern)
                .all(|(_, producers)| !producers.is_empty() && producers.iter().all(|&p| p >= s))
        })
        .into_iter()
        .map(Rule::Create)
        .collect()
    };
    // MODIFY P is safe when every material and product of this step that P
    // matches is one this step modified: P then accepts no change to a file
    // the step only read, created or left unchanged. (A file of an earlier
    // step that this step did not touch stays out of its readers' MATCH
    // patterns FROM this step, which cover only what this step produced.)
    let modified_set: BTreeSet<&str> = modified.iter().copied().collect();
    let modify_patterns: Vec<String> = if opts.exact {
        modified.iter().map(|f| escape_pattern(f)).collect()
    } else {
        let s = flow.position[name];
        // The latest earlier step that produced a path (what this step's
        // materials are MATCHed FROM).
        let producer = |path: &str| {
            flow.producers
                .get(path)
                .and_then(|p| p.range(..s).next_back().copied())
        };
        generalize(&modified_set, false, false, |pattern| {
            let from: BTreeSet<Option<usize>> = modified_set
                .iter()
                .filter(|f| pattern.matches(f))
                .map(|f| producer(f))
                .collect();
            data.materials
                .keys()
                .chain(data.products.keys())
                .filter(|path| pattern.matches(path))
                .all(|path| {
                    modified_set.contains(path.as_str())
                        || (!data.products.contains_key(path)
                            && producer(path).is_some()
                            && from.contains(&producer(path)))
                })
        })
    };
    rules.extend(modify_patterns.into_iter().map(Rule::Modify));
    rules.append(&mut unchanged);
    rules.push(Rule::Disallow("*".into()));
    rules
}

fn readme(opts: &DraftOptions, links: usize, checkout: Option<&CheckoutSuggestion>) -> String {
    let mut text = format!(
        "DRAFT by tracelink layout draft on {} from {links} recorded link(s) in {}: review \
         and edit every step and rule, then sign it. Materials are MATCHed to the step that \
         last produced them; products are CREATEd or MODIFYd as recorded; all else is \
         DISALLOWed.{}",
        format_utc(opts.now),
        opts.origin,
        if opts.exact {
            " One rule per recorded file (--exact)."
        } else {
            " Files are grouped into patterns where that is safe (in fnmatch `*` matches `/` \
             too: dir/* covers the whole tree under dir); an extra file inside such a pattern \
             passes (tracelink layout draft --exact drafts one rule per file)."
        }
    );
    if let Some(c) = checkout {
        text.push_str(&format!(
            " The step {:?} was not recorded: it stands for the {} source file(s) no recorded \
             step produced. This layout verifies only once a functionary records it before the \
             first step, in the tree the steps run in: tracelink run -n {} -x -p {}.",
            c.step,
            c.files.len(),
            c.step,
            if c.paths.len() > 20 {
                "PATHS (what its expected_products CREATE: the directories of its dir/* rules, \
                 the other files)"
                    .to_owned()
            } else {
                c.paths.join(" ")
            }
        ));
    }
    text
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::link::Wrapper;
    use crate::verify::fnmatch::fnmatch;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_seed(&[n; 32])
    }

    fn arts(entries: &[(&str, &str)]) -> ArtifactMap {
        entries
            .iter()
            .map(|(p, d)| {
                (
                    p.to_string(),
                    DigestSet::from([("sha256".to_string(), d.to_string())]),
                )
            })
            .collect()
    }

    fn link(name: &str, materials: &[(&str, &str)], products: &[(&str, &str)]) -> Link {
        Link {
            name: name.into(),
            command: vec!["do".into(), name.into()],
            materials: arts(materials),
            products: arts(products),
            ..Link::default()
        }
    }

    /// Signs `link` with `key` under `format` and reads it back as the draft does.
    fn recorded(link: Link, key: &PrivateKey, format: KeyIdFormat) -> RecordedLink {
        let keyid = key.keyid(format);
        let source = format!("links/{}", link::file_name(&link.name, &keyid));
        let bytes = link::sign(link, key, &keyid, Wrapper::Classic).unwrap();
        read_link(&source, &bytes, &[key.public()]).unwrap()
    }

    fn opts() -> DraftOptions {
        DraftOptions {
            now: 0,
            expires_days: 30,
            origin: "links".into(),
            allow_incomplete: false,
            exact: true,
        }
    }

    fn draft_of(links: &[Link]) -> Draft {
        let k = key(1);
        let recorded: Vec<_> = links
            .iter()
            .map(|l| recorded(l.clone(), &k, KeyIdFormat::Python))
            .collect();
        draft(&recorded, &[k.public()], &opts()).unwrap()
    }

    fn step<'a>(draft: &'a Draft, name: &str) -> &'a Value {
        draft.layout["signed"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}"))
    }

    fn rules(draft: &Draft, name: &str, which: &str) -> Vec<String> {
        step(draft, name)[which]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn order(draft: &Draft) -> Vec<&str> {
        draft.steps.iter().map(|s| s.name.as_str()).collect()
    }

    /// The draft's rules of every step applied to `links` (by name) with
    /// the rule engine; the first failure.
    fn check(draft: &Draft, links: &[Link]) -> Result<(), String> {
        let world: BTreeMap<String, (ArtifactMap, ArtifactMap)> = links
            .iter()
            .map(|l| (l.name.clone(), (l.materials.clone(), l.products.clone())))
            .collect();
        for s in draft.layout["signed"]["steps"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            let Some((m, p)) = world.get(name) else {
                continue;
            };
            for (key, kind) in [
                ("expected_materials", ArtifactsKind::Materials),
                ("expected_products", ArtifactsKind::Products),
            ] {
                let rules: Vec<Rule> = s[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let words: Vec<String> = serde_json::from_value(r.clone()).unwrap();
                        crate::verify::rules::parse_rule(&words).unwrap()
                    })
                    .collect();
                if let Err(f) = apply_rules(name, &rules, kind, m, p, &world).result {
                    return Err(format!("{name} {key}: {f}"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn escaped_patterns_match_only_their_file() {
        for (name, other) in [
            ("a*b", "aXb"),
            ("what?.c", "whatX.c"),
            ("x[1].txt", "x1.txt"),
            ("[!a]", "b"),
            ("odd]name", "odd"),
            ("dir/*/f", "dir/x/f"),
        ] {
            let pattern = escape_pattern(name);
            assert!(fnmatch(name, &pattern), "{pattern} must match {name}");
            assert!(
                !fnmatch(other, &pattern),
                "{pattern} must not match {other}"
            );
        }
        assert_eq!(escape_pattern("a*b?[c]"), "a[*]b[?][[]c]");
        assert_eq!(escape_pattern("plain/file.c"), "plain/file.c");
    }

    #[test]
    fn chain_is_ordered_by_flow_with_a_suggested_checkout() {
        // Names sort against the flow: "a-package" consumes "z-build".
        let build = link(
            "z-build",
            &[("src/a.c", "a0"), ("src/b.c", "b0"), ("Makefile", "m0")],
            &[("out/app", "app1"), ("out/a.o", "ao1")],
        );
        let package = link("a-package", &[("out/app", "app1")], &[("app.tgz", "t1")]);
        let d = draft_of(&[package.clone(), build.clone()]);
        assert_eq!(order(&d), ["checkout", "z-build", "a-package"]);
        assert_eq!(
            rules(&d, "checkout", "expected_products"),
            [
                "CREATE Makefile",
                "CREATE src/a.c",
                "CREATE src/b.c",
                "DISALLOW *"
            ]
        );
        assert_eq!(rules(&d, "checkout", "expected_materials"), ["DISALLOW *"]);
        // All of the checkout's products: one rule.
        assert_eq!(
            rules(&d, "z-build", "expected_materials"),
            ["MATCH * WITH PRODUCTS FROM checkout", "DISALLOW *"]
        );
        assert_eq!(
            rules(&d, "z-build", "expected_products"),
            ["CREATE out/a.o", "CREATE out/app", "DISALLOW *"]
        );
        // Only some of the build's products: per file.
        assert_eq!(
            rules(&d, "a-package", "expected_materials"),
            ["MATCH out/app WITH PRODUCTS FROM z-build", "DISALLOW *"]
        );
        let c = d.checkout.as_ref().expect("a checkout suggestion");
        assert_eq!(c.files, ["Makefile", "src/a.c", "src/b.c"]);
        assert_eq!(c.keyid, key(1).keyid(KeyIdFormat::Python));
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        assert_eq!(
            step(&d, "z-build")["expected_command"],
            json!(["do", "z-build"])
        );
        assert_eq!(step(&d, "checkout")["expected_command"], json!([]));
        assert!(
            d.layout["signed"]["readme"]
                .as_str()
                .unwrap()
                .contains("tracelink run -n checkout -x -p")
        );

        // The draft passes the links plus the checkout recorded as suggested,
        // and rejects a tampered product of the build.
        let checkout = link(
            "checkout",
            &[],
            &[("src/a.c", "a0"), ("src/b.c", "b0"), ("Makefile", "m0")],
        );
        check(&d, &[checkout.clone(), build.clone(), package.clone()]).unwrap();
        let mut tampered = package.clone();
        tampered.materials = arts(&[("out/app", "evil")]);
        let err = check(&d, &[checkout, build, tampered]).unwrap_err();
        assert!(
            err.contains("a-package expected_materials")
                && err.contains("'DISALLOW *' matched the following artifacts: ['out/app']"),
            "{err}"
        );
    }

    #[test]
    fn read_or_deleted_materials_are_matched_never_deleted() {
        // "clean" reads notes.txt and deletes obj.o, both produced by "gen"
        // (the link cannot tell which was only read); it also deletes a
        // source nobody produced.
        let gen_ = link("gen", &[], &[("obj.o", "o1"), ("notes.txt", "n1")]);
        let clean = link(
            "clean",
            &[("obj.o", "o1"), ("notes.txt", "n1"), ("old.log", "l0")],
            &[],
        );
        let d = draft_of(&[gen_.clone(), clean.clone()]);
        assert_eq!(order(&d), ["checkout", "gen", "clean"]);
        let m = rules(&d, "clean", "expected_materials");
        assert_eq!(
            m,
            [
                "MATCH old.log WITH PRODUCTS FROM checkout",
                "MATCH * WITH PRODUCTS FROM gen",
                "DISALLOW *"
            ]
        );
        let all: Vec<String> = ["checkout", "gen", "clean"]
            .iter()
            .flat_map(|s| {
                let mut r = rules(&d, s, "expected_materials");
                r.extend(rules(&d, s, "expected_products"));
                r
            })
            .collect();
        assert!(all.iter().all(|r| !r.starts_with("DELETE")), "{all:?}");
        // A tampered input that was only read must fail, which a DELETE
        // after the MATCH would have let through.
        let checkout = link("checkout", &[], &[("old.log", "l0")]);
        check(&d, &[checkout.clone(), gen_.clone(), clean.clone()]).unwrap();
        let mut tampered = clean;
        tampered.materials = arts(&[("obj.o", "o1"), ("notes.txt", "EVIL"), ("old.log", "l0")]);
        let err = check(&d, &[checkout, gen_, tampered]).unwrap_err();
        assert!(
            err.contains("['notes.txt']") || err.contains("[\"notes.txt\"]"),
            "{err}"
        );
    }

    #[test]
    fn products_are_created_modified_or_matched_unchanged() {
        let checkout = link(
            "checkout",
            &[],
            &[("VERSION", "v0"), ("gen.h", "g0"), ("we*rd", "w0")],
        );
        let build = link(
            "build",
            &[("VERSION", "v0"), ("gen.h", "g0"), ("we*rd", "w0")],
            &[
                ("VERSION", "v1"),
                ("gen.h", "g0"),
                ("we*rd", "w1"),
                ("new[1]", "n1"),
            ],
        );
        let d = draft_of(&[checkout.clone(), build.clone()]);
        assert!(d.checkout.is_none());
        assert_eq!(order(&d), ["checkout", "build"]);
        assert_eq!(
            rules(&d, "build", "expected_products"),
            [
                "CREATE new[[]1]",
                "MODIFY VERSION",
                "MODIFY we[*]rd",
                "MATCH gen.h WITH MATERIALS FROM build",
                "DISALLOW *"
            ]
        );
        check(&d, &[checkout.clone(), build.clone()]).unwrap();
        // A product the step was not seen to write fails.
        let mut more = build;
        more.products
            .insert("extra".into(), arts(&[("x", "x")])["x"].clone());
        let err = check(&d, &[checkout, more]).unwrap_err();
        assert!(err.contains("build expected_products"), "{err}");
    }

    #[test]
    fn most_recent_producer_with_the_same_digest() {
        let checkout = link("checkout", &[], &[("VERSION", "v0")]);
        let bump = link("bump", &[("VERSION", "v0")], &[("VERSION", "v1")]);
        let tag = link("tag", &[("VERSION", "v1")], &[("TAG", "t")]);
        let d = draft_of(&[tag.clone(), checkout.clone(), bump.clone()]);
        assert_eq!(order(&d), ["checkout", "bump", "tag"]);
        assert_eq!(
            rules(&d, "tag", "expected_materials"),
            ["MATCH VERSION WITH PRODUCTS FROM bump", "DISALLOW *"]
        );
        assert_eq!(
            rules(&d, "bump", "expected_materials"),
            ["MATCH VERSION WITH PRODUCTS FROM checkout", "DISALLOW *"]
        );
        check(&d, &[checkout, bump, tag]).unwrap();
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn inconsistent_links_are_noted() {
        // "b" read x with contents "a" never wrote: x counts as a source,
        // but "a", unrelated by flow and ordered before "b", overwrote it.
        let a = link("a", &[], &[("x", "x1")]);
        let b = link("b", &[("x", "x2")], &[]);
        let d = draft_of(&[a, b]);
        assert_eq!(order(&d), ["checkout", "a", "b"]);
        assert!(
            d.notes.iter().any(|n| n.starts_with(
                "x: step \"b\" read contents that no recorded step produced, though [\"a\"]"
            )),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("x: step \"b\" reads it as \"checkout\"")
                    && n.contains("\"a\", ordered in between")),
            "{:?}",
            d.notes
        );
        // Two steps read different contents of a file nobody produced: the
        // checkout can create only one of them, and the draft says the links
        // fail it.
        let b = link("b", &[("y", "y1")], &[("b.out", "1")]);
        let c = link("c", &[("y", "y2"), ("b.out", "1")], &[]);
        let d = draft_of(&[b, c]);
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("y: the steps read different contents")),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes.iter().any(|n| n.contains("do not pass this draft")
                && n.contains("step \"c\"")
                && n.contains("'DISALLOW *' matched the following artifacts: ['y']")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn a_cycle_is_reported_with_its_files() {
        let a = link("a", &[("y", "y1")], &[("x", "x1")]);
        let b = link("b", &[("x", "x1")], &[("y", "y1")]);
        let k = key(1);
        let links: Vec<_> = [a, b]
            .into_iter()
            .map(|l| recorded(l, &k, KeyIdFormat::Python))
            .collect();
        let err = draft(&links, &[k.public()], &opts()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DraftError::Cycle(_)), "{text}");
        assert!(text.contains("b read \"x\" as a wrote it"), "{text}");
        assert!(text.contains("a read \"y\" as b wrote it"), "{text}");
    }

    #[test]
    fn keys_follow_the_signatures() {
        let (alice, bob, eve) = (key(1), key(2), key(3));
        let build = recorded(
            link("build", &[], &[("out", "o")]),
            &alice,
            KeyIdFormat::Python,
        );
        let test = recorded(
            link("test", &[("out", "o")], &[]),
            &bob,
            KeyIdFormat::Legacy,
        );
        let keys = [alice.public(), bob.public()];
        let d = draft(&[build.clone(), test.clone()], &keys, &opts()).unwrap();
        let alice_id = alice.keyid(KeyIdFormat::Python);
        let bob_id = bob.keyid(KeyIdFormat::Legacy);
        assert_eq!(step(&d, "build")["pubkeys"], json!([alice_id]));
        assert_eq!(step(&d, "test")["pubkeys"], json!([bob_id]));
        assert_eq!(step(&d, "test")["threshold"], json!(1));
        let layout_keys = d.layout["signed"]["keys"].as_object().unwrap();
        assert_eq!(layout_keys.len(), 2);
        for (keyid, k) in [(&alice_id, &alice), (&bob_id, &bob)] {
            let dict = &layout_keys[keyid.as_str()];
            assert_eq!(dict["keyid"], json!(keyid));
            assert_eq!(dict["keyid_hash_algorithms"], json!(["sha256", "sha512"]));
            assert_eq!(PublicKey::from_key_dict(dict).unwrap(), k.public());
        }
        assert_eq!(d.layout["signatures"], json!([]));
        assert_eq!(d.layout["signed"]["expires"], json!("1970-01-31T00:00:00Z"));

        // Signed by no given key: an error naming the file.
        let keyid = eve.keyid(KeyIdFormat::Python);
        let bytes = link::sign(link("evil", &[], &[]), &eve, &keyid, Wrapper::Dsse).unwrap();
        let err = read_link("links/evil.link", &bytes, &keys).unwrap_err();
        assert!(matches!(err, DraftError::UnknownSigner { .. }), "{err}");
        assert!(
            err.to_string().starts_with("links/evil.link: signed by "),
            "{err}"
        );
        // A DSSE link by a known key reads.
        let keyid = alice.keyid(KeyIdFormat::Python);
        let bytes = link::sign(link("dsse", &[], &[]), &alice, &keyid, Wrapper::Dsse).unwrap();
        assert_eq!(
            read_link("d", &bytes, &keys).unwrap().signers,
            [keyid.as_str()]
        );
        // A changed link: bad signature.
        let bytes = link::sign(
            link("x", &[], &[("f", "1")]),
            &alice,
            &keyid,
            Wrapper::Classic,
        )
        .unwrap();
        let changed = String::from_utf8(bytes).unwrap().replace("\"1\"", "\"2\"");
        let err = read_link("x.link", changed.as_bytes(), &keys).unwrap_err();
        assert!(matches!(err, DraftError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn a_link_recorded_with_allow_incomplete_is_refused_unless_allowed() {
        let k = key(1);
        let mut incomplete = link("build", &[("src", "s")], &[("out", "o")]);
        incomplete.environment.insert(
            "tracelink".into(),
            json!({"mode": "precise", "complete": false}),
        );
        let links = [
            recorded(incomplete, &k, KeyIdFormat::Python),
            recorded(link("test", &[("out", "o")], &[]), &k, KeyIdFormat::Python),
        ];
        let err = draft(&links, &[k.public()], &opts()).unwrap_err();
        assert!(matches!(err, DraftError::Incomplete { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&format!(
                "{}: step \"build\" was recorded with --allow-incomplete",
                links[0].source
            )),
            "{err}"
        );
        let allowed = DraftOptions {
            allow_incomplete: true,
            ..opts()
        };
        let d = draft(&links, &[k.public()], &allowed).unwrap();
        assert_eq!(d.steps.len(), 3, "checkout, build, test");
        let named: Vec<&String> = d
            .notes
            .iter()
            .filter(|n| n.contains("--allow-incomplete"))
            .collect();
        assert_eq!(named.len(), 1, "{:?}", d.notes);
        assert!(named[0].starts_with(&links[0].source), "{named:?}");
    }

    #[test]
    fn links_of_one_step_must_agree() {
        let (alice, bob) = (key(1), key(2));
        let a = recorded(
            link("build", &[], &[("out", "o1")]),
            &alice,
            KeyIdFormat::Python,
        );
        let b = recorded(
            link("build", &[], &[("out", "o1")]),
            &bob,
            KeyIdFormat::Python,
        );
        let keys = [alice.public(), bob.public()];
        let d = draft(&[a.clone(), b], &keys, &opts()).unwrap();
        assert_eq!(step(&d, "build")["pubkeys"].as_array().unwrap().len(), 2);
        let c = recorded(
            link("build", &[], &[("out", "o2")]),
            &bob,
            KeyIdFormat::Python,
        );
        let err = draft(&[a, c], &keys, &opts()).unwrap_err();
        assert!(
            matches!(
                err,
                DraftError::DifferingLinks {
                    what: "products",
                    ..
                }
            ),
            "{err}"
        );
    }

    fn generalized(links: &[Link]) -> Draft {
        let k = key(1);
        let recorded: Vec<_> = links
            .iter()
            .map(|l| recorded(l.clone(), &k, KeyIdFormat::Python))
            .collect();
        let opts = DraftOptions {
            exact: false,
            ..opts()
        };
        draft(&recorded, &[k.public()], &opts).unwrap()
    }

    /// An in-tree configure + make build: objects beside their sources.
    fn in_tree_build(extra_source: bool) -> Vec<Link> {
        let mut sources = vec![
            ("configure", "cf"),
            ("Makefile.in", "mi"),
            ("include/x.h", "x"),
            ("include/y.h", "y"),
            ("src/core/a.c", "a"),
            ("src/core/b.c", "b"),
            ("src/util/c.c", "c"),
            ("src/util/d.c", "d"),
        ];
        let mut objects = vec![
            ("src/core/a.o", "ao"),
            ("src/core/b.o", "bo"),
            ("src/util/c.o", "co"),
            ("src/util/d.o", "do"),
            ("app", "app"),
        ];
        if extra_source {
            sources.push(("src/core/n.c", "n"));
            objects.push(("src/core/n.o", "no"));
        }
        let checkout = link("checkout", &[], &sources);
        let configure = link(
            "configure",
            &[("configure", "cf"), ("Makefile.in", "mi")],
            &[("Makefile", "mk"), ("config.h", "ch")],
        );
        let mut read = sources[2..].to_vec();
        read.extend([("Makefile", "mk"), ("config.h", "ch")]);
        let make = link("make", &read, &objects);
        let package = link(
            "package",
            &[("app", "app"), ("config.h", "ch")],
            &[("app.tgz", "t")],
        );
        vec![checkout, configure, make, package]
    }

    #[test]
    fn generalized_rules_group_directories_and_extensions_where_safe() {
        let links = in_tree_build(false);
        // Drafted without the checkout: the suggestion lists directories.
        let d = generalized(&links[1..]);
        assert_eq!(order(&d), ["checkout", "configure", "make", "package"]);
        assert_eq!(
            rules(&d, "checkout", "expected_products"),
            [
                "CREATE Makefile.in",
                "CREATE configure",
                "CREATE include/*",
                "CREATE src/*",
                "DISALLOW *"
            ]
        );
        let c = d.checkout.as_ref().unwrap();
        assert_eq!(c.paths, ["Makefile.in", "configure", "include", "src"]);
        assert_eq!(c.files.len(), 8);
        // src/* would also cover the objects make writes beside the
        // sources: the sources are matched by extension.
        assert_eq!(
            rules(&d, "make", "expected_materials"),
            [
                "MATCH include/* WITH PRODUCTS FROM checkout",
                "MATCH *.c WITH PRODUCTS FROM checkout",
                "MATCH Makefile WITH PRODUCTS FROM configure",
                "MATCH config.h WITH PRODUCTS FROM configure",
                "DISALLOW *"
            ]
        );
        assert_eq!(
            rules(&d, "make", "expected_products"),
            ["CREATE app", "CREATE *.o", "DISALLOW *"]
        );
        assert_eq!(
            rules(&d, "package", "expected_materials"),
            [
                "MATCH config.h WITH PRODUCTS FROM configure",
                "MATCH app WITH PRODUCTS FROM make",
                "DISALLOW *"
            ]
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        check(&d, &links).unwrap();

        // One more source file (and object) still passes.
        check(&d, &in_tree_build(true)).unwrap();
        // So does an extra object: the documented price of CREATE *.o.
        let mut extra = links.clone();
        extra[2].products.extend(arts(&[("src/core/extra.o", "e")]));
        check(&d, &extra).unwrap();
        // An extra product no pattern covers fails.
        let mut evil = links.clone();
        evil[2]
            .products
            .extend(arts(&[("src/core/backdoor.sh", "e")]));
        let err = check(&d, &evil).unwrap_err();
        assert!(
            err.starts_with("make expected_products") && err.contains("backdoor.sh"),
            "{err}"
        );
        // An object pre-built into the checkout (CREATE src/* lets it in)
        // that make then links instead of compiling fails at make.
        let mut seeded = links.clone();
        seeded[0].products.extend(arts(&[("src/core/a.o", "evil")]));
        seeded[2]
            .materials
            .extend(arts(&[("src/core/a.o", "evil")]));
        seeded[2].products.remove("src/core/a.o");
        let err = check(&d, &seeded).unwrap_err();
        assert!(
            err.starts_with("make expected_materials") && err.contains("src/core/a.o"),
            "{err}"
        );
        // A changed product fails.
        let mut changed = links.clone();
        changed[3].materials.extend(arts(&[("app", "evil")]));
        let err = check(&d, &changed).unwrap_err();
        assert!(err.starts_with("package expected_materials"), "{err}");

        // --exact: one rule per file, files in the suggestion.
        let k = key(1);
        let recorded: Vec<_> = links[1..]
            .iter()
            .map(|l| recorded(l.clone(), &k, KeyIdFormat::Python))
            .collect();
        let exact = draft(&recorded, &[k.public()], &opts()).unwrap();
        assert_eq!(rules(&exact, "make", "expected_products").len(), 6);
        assert_eq!(exact.checkout.as_ref().unwrap().paths.len(), 8);
    }

    fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    /// A libsodium-sized in-tree libtool build: 40 directories of 20 C
    /// files, a Makefile and `.deps/*.Plo` per directory from configure,
    /// `.lo`, `.o` and `.libs/*.o` per source from make.
    #[test]
    fn a_libtool_sized_build_stays_within_thirty_rules_per_step() {
        let (mut sources, mut conf, mut objects) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..40 {
            let dir = format!("src/libx/crypto_{d}/ref");
            sources.push((format!("{dir}/api.h"), "h".to_owned()));
            sources.push((format!("src/libx/crypto_{d}/Makefile.am"), "am".into()));
            conf.push((format!("src/libx/crypto_{d}/Makefile"), "mk".to_owned()));
            for f in 0..20 {
                sources.push((format!("{dir}/f{f}.c"), format!("c{d}.{f}")));
                conf.push((format!("{dir}/.deps/libx_la-f{f}.Plo"), "dep".into()));
                for obj in [
                    format!("{dir}/libx_la-f{f}.lo"),
                    format!("{dir}/libx_la-f{f}.o"),
                    format!("{dir}/.libs/libx_la-f{f}.o"),
                ] {
                    objects.push((obj.clone(), obj));
                }
            }
        }
        sources.extend([
            ("configure".into(), "cf".into()),
            ("Makefile.in".into(), "mi".into()),
        ]);
        conf.extend([
            ("libtool".into(), "lt".into()),
            ("config.log".into(), "cl".into()),
        ]);
        objects.extend([
            ("src/libx/libx.la".into(), "la".into()),
            ("src/libx/.libs/libx.so.26".into(), "so".into()),
            ("src/libx/.libs/libx.a".into(), "a".into()),
        ]);
        let pairs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };
        let configure = link(
            "configure",
            &[("configure", "cf"), ("Makefile.in", "mi")],
            &as_refs(&conf),
        );
        let mut read: Vec<(String, String)> = pairs(&sources)
            .into_iter()
            .filter(|(p, _)| !p.ends_with(".am") && p != "configure" && p != "Makefile.in")
            .collect();
        read.extend(conf.iter().filter(|(p, _)| p != "config.log").cloned());
        let make = link("make", &as_refs(&read), &as_refs(&objects));
        let started = std::time::Instant::now();
        let d = generalized(&[configure.clone(), make.clone()]);
        let took = started.elapsed();
        let counts: Vec<(String, usize, usize)> = d
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.material_rules, s.product_rules))
            .collect();
        for (name, m, p) in &counts {
            assert!(*m <= 30 && *p <= 30, "{name}: {counts:?}\n{:#}", d.layout);
        }
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        assert!(took.as_secs() < 20, "drafting took {took:?}");
        assert_eq!(
            rules(&d, "make", "expected_products"),
            [
                "CREATE src/libx/.libs/*",
                "CREATE *.o",
                "CREATE *.lo",
                "CREATE src/libx/libx.la",
                "DISALLOW *"
            ]
        );
        // The checkout: the directory, not 880 files.
        assert_eq!(
            d.checkout.as_ref().unwrap().paths,
            ["Makefile.in", "configure", "src"]
        );
    }

    #[test]
    fn a_generalized_match_never_takes_a_version_a_later_step_rewrote() {
        // "bump" rewrites v/a; "tag" reads v/a as bump wrote it and v/b,
        // v/c as checkout did: MATCH v/* FROM checkout would accept the
        // checkout's (stale) v/a.
        let checkout = link(
            "checkout",
            &[],
            &[("v/a", "a0"), ("v/b", "b0"), ("v/c", "c0")],
        );
        let bump = link("bump", &[("v/a", "a0")], &[("v/a", "a1")]);
        let tag = link(
            "tag",
            &[("v/a", "a1"), ("v/b", "b0"), ("v/c", "c0")],
            &[("t/1", "1"), ("t/2", "2")],
        );
        let d = generalized(&[checkout.clone(), bump.clone(), tag.clone()]);
        assert_eq!(
            rules(&d, "tag", "expected_materials"),
            [
                "MATCH v/b WITH PRODUCTS FROM checkout",
                "MATCH v/c WITH PRODUCTS FROM checkout",
                "MATCH v/a WITH PRODUCTS FROM bump",
                "DISALLOW *"
            ]
        );
        assert_eq!(
            rules(&d, "tag", "expected_products"),
            ["CREATE t/*", "DISALLOW *"]
        );
        // Its own directory: CREATE v/* is the checkout's, but bump may
        // not CREATE there (checkout, earlier, produced those paths).
        assert_eq!(
            rules(&d, "checkout", "expected_products"),
            ["CREATE v/*", "DISALLOW *"]
        );
        check(&d, &[checkout.clone(), bump, tag.clone()]).unwrap();
        let mut stale = tag;
        stale.materials.extend(arts(&[("v/a", "a0")]));
        let bump = link("bump", &[("v/a", "a0")], &[("v/a", "a1")]);
        assert!(check(&d, &[checkout, bump, stale]).is_err());
    }

    /// An automake build: configure writes a `.deps/*.Po` per source, make
    /// rewrites those of the sources it compiles (and only reads the one of
    /// a source it skips) and generates `lib/*.h` from `lib/*.in.h` beside
    /// the headers of the checkout.
    fn automake_build(extra_source: bool) -> Vec<Link> {
        let mut sources = vec![
            ("configure", "cf"),
            ("Makefile.in", "mi"),
            ("lib/a.c", "a"),
            ("lib/b.c", "b"),
            ("lib/skipped.c", "s"),
            ("lib/stdio.in.h", "si"),
            ("lib/wchar.in.h", "wi"),
            ("lib/xalloc.h", "xa"),
            ("lib/xstrndup.h", "xs"),
            ("src/main.c", "m"),
        ];
        let mut deps = vec![
            ("lib/.deps/a.Po", "a0"),
            ("lib/.deps/b.Po", "b0"),
            ("lib/.deps/skipped.Po", "s0"),
            ("src/.deps/main.Po", "m0"),
        ];
        let mut rewritten = vec![
            ("lib/.deps/a.Po", "a1"),
            ("lib/.deps/b.Po", "b1"),
            ("src/.deps/main.Po", "m1"),
        ];
        let mut objects = vec![
            ("lib/a.o", "ao"),
            ("lib/b.o", "bo"),
            ("src/main.o", "mo"),
            ("lib/stdio.h", "sh"),
            ("lib/wchar.h", "wh"),
            ("app", "app"),
        ];
        if extra_source {
            sources.push(("src/extra.c", "e"));
            deps.push(("src/.deps/extra.Po", "e0"));
            rewritten.push(("src/.deps/extra.Po", "e1"));
            objects.push(("src/extra.o", "eo"));
        }
        let checkout = link("checkout", &[], &sources);
        let mut configured = deps.clone();
        configured.push(("Makefile", "mk"));
        let configure = link(
            "configure",
            &[("configure", "cf"), ("Makefile.in", "mi")],
            &configured,
        );
        let mut read = sources[2..].to_vec();
        read.extend(configured);
        let mut made = objects;
        made.extend(rewritten);
        let make = link("make", &read, &made);
        vec![checkout, configure, make]
    }

    fn matching_rules(draft: &Draft, name: &str, which: &str, word: &str) -> Vec<String> {
        rules(draft, name, which)
            .into_iter()
            .filter(|r| r.contains(word))
            .collect()
    }

    #[test]
    fn modify_rules_group_the_files_a_step_rewrites_where_safe() {
        let links = automake_build(false);
        let d = generalized(&links);
        // skipped.Po is only read, as configure wrote it, like the others
        // were before make rewrote them: *.Po covers it too.
        assert_eq!(
            matching_rules(&d, "make", "expected_products", "MODIFY"),
            ["MODIFY *.Po"]
        );
        assert_eq!(
            matching_rules(&d, "make", "expected_materials", ".Po"),
            ["MATCH *.Po WITH PRODUCTS FROM configure"]
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        check(&d, &links).unwrap();
        // Next week: a new source, whose .Po configure writes and make
        // rewrites, still passes.
        check(&d, &automake_build(true)).unwrap();
        // A source make rewrites fails: MODIFY *.Po does not cover it.
        let mut evil = links.clone();
        evil[2].products.extend(arts(&[("lib/xalloc.h", "evil")]));
        let err = check(&d, &evil).unwrap_err();
        assert!(
            err.starts_with("make expected_products") && err.contains("lib/xalloc.h"),
            "{err}"
        );
        // A .Po that make did not get from configure fails where it is read.
        let mut seeded = links.clone();
        seeded[2]
            .materials
            .extend(arts(&[("lib/.deps/a.Po", "evil")]));
        let err = check(&d, &seeded).unwrap_err();
        assert!(
            err.starts_with("make expected_materials") && err.contains("lib/.deps/a.Po"),
            "{err}"
        );

        // Unsafe: a .Po make creates (no material) is no modified file, so
        // *.Po would also let make modify one it should only create.
        let mut created = automake_build(false);
        created[2]
            .products
            .extend(arts(&[("lib/.deps/new.Po", "n")]));
        let d = generalized(&created);
        let modify = matching_rules(&d, "make", "expected_products", "MODIFY");
        assert!(!modify.iter().any(|r| r == "MODIFY *.Po"), "{modify:?}");
        assert_eq!(modify.len(), 3, "{modify:?}");
        check(&d, &created).unwrap();

        // Unsafe: a file make reads as another step (the checkout) wrote it.
        let mut vendored = automake_build(false);
        vendored[0]
            .products
            .extend(arts(&[("lib/.deps/v.Po", "v")]));
        vendored[2]
            .materials
            .extend(arts(&[("lib/.deps/v.Po", "v")]));
        let d = generalized(&vendored);
        let modify = matching_rules(&d, "make", "expected_products", "MODIFY");
        assert!(
            modify
                .iter()
                .all(|r| !r.contains('*') || r == "MODIFY src/.deps/*"),
            "{modify:?}"
        );
        check(&d, &vendored).unwrap();
        let mut changed = vendored.clone();
        changed[2]
            .products
            .extend(arts(&[("lib/.deps/v.Po", "evil")]));
        assert!(check(&d, &changed).is_err());

        // --exact: one MODIFY per file.
        let exact = draft_of(&links);
        assert_eq!(
            matching_rules(&exact, "make", "expected_products", "MODIFY").len(),
            3
        );
    }

    #[test]
    fn sources_beside_generated_files_are_matched_by_suffix_and_prefix() {
        let links = automake_build(false);
        let d = generalized(&links);
        // lib/*.h would take make's own lib/stdio.h for a checkout file.
        assert_eq!(
            matching_rules(&d, "make", "expected_materials", "FROM checkout"),
            [
                "MATCH *.c WITH PRODUCTS FROM checkout",
                "MATCH *.in.h WITH PRODUCTS FROM checkout",
                "MATCH lib/x* WITH PRODUCTS FROM checkout"
            ]
        );
        check(&d, &links).unwrap();
        // A header pre-built into the checkout that make then reads instead
        // of generating fails at make.
        let mut seeded = links.clone();
        seeded[0].products.extend(arts(&[("lib/stdio.h", "evil")]));
        seeded[2].materials.extend(arts(&[("lib/stdio.h", "evil")]));
        seeded[2].products.remove("lib/stdio.h");
        let err = check(&d, &seeded).unwrap_err();
        assert!(
            err.starts_with("make expected_materials") && err.contains("lib/stdio.h"),
            "{err}"
        );
        // The candidates: every dotted suffix, prefixes only inside a
        // directory.
        let c = candidates("lib/c-ctype.in.h", false);
        for p in [
            "*.h",
            "*.in.h",
            "lib/*.in.h",
            "lib/c*.h",
            "lib/c-*",
            "lib/c-*.h",
        ] {
            assert!(c.contains(&p.to_owned()), "{p}: {c:?}");
        }
        assert!(!candidates("configure", false).iter().any(|p| p == "c*"));
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_634_096), "2026-11-25T19:14:56Z");
        assert_eq!(format_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
