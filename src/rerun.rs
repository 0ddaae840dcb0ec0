//! Replaying a recorded step (`tracelink rerun`): the inputs a replay needs
//! (every recorded material with its mode, taken from a content-addressed
//! store or from the original root, each checked against its recorded
//! digest), the environment to run it in, and the comparison of what the
//! replay did with what the recording says: products identical, different
//! (with the first differing byte), missing or extra; inputs the replay read
//! that the recording does not list (hidden inputs); probes whose answer
//! changed.
//!
//! This module knows links, traces, the store and files. It knows nothing of
//! FUSE, of how the replay runs, or of printing.

use crate::account::Trace;
use crate::hash::{self, Algorithm};
use crate::link::{ArtifactMap, Link};
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    #[error(
        "material {path} has no sha256 digest in the link; only sha256 content can be restored"
    )]
    NoSha256 { path: String },
    #[error(
        "material {path} changed since the recording: {file} now has sha256 {now}, the link records {recorded}; give the recording's --store to rerun"
    )]
    Changed {
        path: String,
        file: PathBuf,
        recorded: String,
        now: String,
    },
    #[error(
        "material {path} is neither in the store nor readable at {file} ({reason}); give the recording's --store to rerun"
    )]
    Unavailable {
        path: String,
        file: PathBuf,
        reason: String,
    },
    #[error("the trace does not say which root the step was recorded in")]
    NoRoot,
    #[error("material {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("material name {path:?} does not stay inside the root")]
    BadName { path: String },
}

/// Where a material's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The store holds an object with its sha256.
    Store,
    /// The original root still holds it unchanged (checked by hashing).
    Root(PathBuf),
}

/// One material to put into the work tree.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: String,
    pub sha256: String,
    /// Permission bits as recorded (0o644 when the trace does not say).
    pub mode: u32,
    pub source: Source,
}

/// Finds every material's content: in `store` if it holds the digest, else
/// at the original root (the trace's `root`), where it must still hash to the
/// recorded digest. The first material that cannot be had is the error.
pub fn plan_inputs(
    link: &Link,
    trace: &Trace,
    store: Option<&Store>,
) -> Result<Vec<Input>, RerunError> {
    let root = trace.root.as_deref().ok_or(RerunError::NoRoot)?;
    let mut inputs = Vec::new();
    for (path, digests) in &link.materials {
        check_name(path)?;
        let sha256 = digests
            .get("sha256")
            .ok_or_else(|| RerunError::NoSha256 { path: path.clone() })?
            .clone();
        let mode = trace
            .artifacts
            .get(path)
            .and_then(|a| a.material.as_ref())
            .and_then(|m| m.mode)
            .unwrap_or(0o644);
        let source = if store.is_some_and(|s| s.contains(&sha256)) {
            Source::Store
        } else {
            let file = Path::new(root).join(path);
            match sha256_of(&file) {
                Ok(now) if now == sha256 => Source::Root(file),
                Ok(now) => {
                    return Err(RerunError::Changed {
                        path: path.clone(),
                        file,
                        recorded: sha256,
                        now,
                    });
                }
                Err(e) => {
                    return Err(RerunError::Unavailable {
                        path: path.clone(),
                        file,
                        reason: e.to_string(),
                    });
                }
            }
        };
        inputs.push(Input {
            path: path.clone(),
            sha256,
            mode,
            source,
        });
    }
    Ok(inputs)
}

/// Artifact names are relative paths without `..`; anything else would
/// write outside the work tree.
fn check_name(path: &str) -> Result<(), RerunError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(RerunError::BadName { path: path.into() })
    }
}

/// Writes every input into `tree` (which must exist), creating directories
/// (0755) as needed, and checks each written file's digest. `done` is told
/// the bytes written so far.
pub fn populate(
    inputs: &[Input],
    tree: &Path,
    store: Option<&Store>,
    done: &mut dyn FnMut(u64),
) -> Result<(), RerunError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let mut bytes = 0u64;
    for input in inputs {
        let dest = tree.join(&input.path);
        if let Some(parent) = dest.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|source| RerunError::Create {
                    path: parent.into(),
                    source,
                })?;
        }
        match &input.source {
            Source::Store => store
                .expect("planned from the store")
                .restore(&input.sha256, &dest, input.mode)
                .map_err(|source| RerunError::Store {
                    path: input.path.clone(),
                    source,
                })?,
            Source::Root(file) => {
                let create = |source| RerunError::Create {
                    path: dest.clone(),
                    source,
                };
                std::fs::copy(file, &dest).map_err(create)?;
                let now = sha256_of(&dest).map_err(create)?;
                if now != input.sha256 {
                    return Err(RerunError::Changed {
                        path: input.path.clone(),
                        file: file.clone(),
                        recorded: input.sha256.clone(),
                        now,
                    });
                }
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(input.mode))
                    .map_err(create)?;
            }
        }
        bytes += std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        done(bytes);
    }
    Ok(())
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut buf = vec![0u8; 256 * 1024];
    let digests = hash::digest_reader(&mut File::open(path)?, &[Algorithm::Sha256], &mut buf)?;
    Ok(digests
        .into_iter()
        .next()
        .expect("one algorithm asked for")
        .1)
}

/// A value a trace of format 1 kept only as its sha256 (`sha256:<hex>`).
fn digest_only(value: &str) -> bool {
    value.starts_with("sha256:") && value.len() == 7 + 64
}

/// The variables whose recorded values are not their values: the trace's
/// `redacted` list (format 2, where they hold `<redacted:NAME>` markers),
/// or in older traces those kept only as `sha256:<hex>`.
pub fn redacted(trace: &Trace) -> BTreeSet<String> {
    match trace.raw.get("redacted") {
        Some(list) => list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect(),
        None => trace
            .environment
            .iter()
            .filter(|(_, value)| digest_only(value))
            .map(|(name, _)| name.clone())
            .collect(),
    }
}

/// A variable of the recorded environment the rerun could not restore as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvNote {
    /// Redacted in the trace and absent now: left out.
    RedactedMissing { name: String },
    /// Redacted in the trace: the current value is used, and there is
    /// nothing to compare it with.
    RedactedNotCompared { name: String },
    /// Redacted in an old trace that kept its sha256; the current value has
    /// another digest.
    RedactedDiffers { name: String },
}

/// The recorded environment, with each redacted value taken from `current`,
/// and notes on what could not be restored as recorded. Old traces (format
/// 1) published a digest, which is checked.
pub fn environment(
    trace: &Trace,
    current: &BTreeMap<String, String>,
) -> (Vec<(String, String)>, Vec<EnvNote>) {
    let redacted = redacted(trace);
    let mut env = Vec::new();
    let mut notes = Vec::new();
    for (name, value) in &trace.environment {
        if !redacted.contains(name) {
            env.push((name.clone(), value.clone()));
            continue;
        }
        match current.get(name) {
            None => notes.push(EnvNote::RedactedMissing { name: name.clone() }),
            Some(now) => {
                if !digest_only(value) {
                    notes.push(EnvNote::RedactedNotCompared { name: name.clone() });
                } else if *value
                    != format!("sha256:{}", hex::encode(Sha256::digest(now.as_bytes())))
                {
                    notes.push(EnvNote::RedactedDiffers { name: name.clone() });
                }
                env.push((name.clone(), now.clone()));
            }
        }
    }
    (env, notes)
}

/// How one product of the recording compares with the replay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Identical,
    /// Different content; `first_difference` is the offset of the first
    /// differing byte when the original content was available to compare.
    Different {
        original: Option<PathBuf>,
        first_difference: Option<u64>,
    },
    /// The recording has it, the replay did not produce it.
    Missing,
    /// The replay produced it, the recording does not have it.
    Extra,
}

/// The comparison of a replay with its recording.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Every product of either run (path → verdict).
    pub products: BTreeMap<String, Verdict>,
    /// Inputs the replay read, or looked for and did not find, that the
    /// recording neither lists nor looked for.
    pub hidden_inputs: Vec<String>,
    /// Recorded materials the replay did not use.
    pub unused_inputs: Vec<String>,
    /// Paths looked up in both runs and found in one only:
    /// (path, missing in the original, missing in the rerun).
    pub probes_changed: Vec<(String, bool, bool)>,
}

impl Comparison {
    /// Every product identical and none missing or extra.
    pub fn reproduced(&self) -> bool {
        self.products.values().all(|v| *v == Verdict::Identical)
    }
}

/// Compares the replay (`rerun` link and trace, its files under `rerun_tree`)
/// with the recording. Original bytes of a differing product come from the
/// store or from the original root, when either still has them.
pub fn compare(
    original: &Link,
    original_trace: &Trace,
    rerun: &ArtifactMap,
    rerun_materials: &ArtifactMap,
    rerun_trace: Option<&Trace>,
    rerun_tree: &Path,
    store: Option<&Store>,
) -> Comparison {
    let mut out = Comparison::default();
    for (path, digests) in &original.products {
        let verdict = match rerun.get(path) {
            None => Verdict::Missing,
            Some(now) if now == digests => Verdict::Identical,
            Some(_) => {
                let original_file =
                    original_content(path, digests.get("sha256"), original_trace, store);
                let first_difference = original_file
                    .as_deref()
                    .and_then(|a| first_difference(a, &rerun_tree.join(path)));
                Verdict::Different {
                    original: original_file,
                    first_difference,
                }
            }
        };
        out.products.insert(path.clone(), verdict);
    }
    for path in rerun.keys() {
        if !original.products.contains_key(path) {
            out.products.insert(path.clone(), Verdict::Extra);
        }
    }
    out.hidden_inputs = rerun_materials
        .keys()
        .filter(|p| !original.materials.contains_key(*p))
        .cloned()
        .collect();
    out.unused_inputs = original
        .materials
        .keys()
        .filter(|p| !rerun_materials.contains_key(*p))
        .cloned()
        .collect();
    if let Some(rerun_trace) = rerun_trace {
        // A path the rerun looked for and did not find, which the original
        // never looked for: an input the recording does not have (the work
        // tree holds only recorded materials, so reading it failed).
        for path in missing(rerun_trace) {
            match answer(original_trace, &path) {
                Answer::NotAsked => out.hidden_inputs.push(path),
                Answer::Found => out.probes_changed.push((path, false, true)),
                Answer::Missing => {}
            }
        }
        for path in missing(original_trace) {
            if answer(rerun_trace, &path) == Answer::Found {
                out.probes_changed.push((path, true, false));
            }
        }
        out.hidden_inputs.sort();
        out.hidden_inputs.dedup();
        out.probes_changed.sort();
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Missing,
    Found,
    NotAsked,
}

fn missing(trace: &Trace) -> BTreeSet<String> {
    trace
        .probes
        .missing
        .iter()
        .map(|m| m.path.clone())
        .collect()
}

/// What a run learnt when it looked up `path`.
fn answer(trace: &Trace, path: &str) -> Answer {
    if trace.probes.missing.iter().any(|m| m.path == path) {
        Answer::Missing
    } else if trace.artifacts.contains_key(path) || trace.probes.stat_only.iter().any(|p| p == path)
    {
        Answer::Found
    } else {
        Answer::NotAsked
    }
}

/// A file holding the original content of product `path`: the store's
/// object, or the file at the original root if it still has that digest.
fn original_content(
    path: &str,
    sha256: Option<&String>,
    trace: &Trace,
    store: Option<&Store>,
) -> Option<PathBuf> {
    let sha256 = sha256?;
    if let Some(store) = store
        && store.contains(sha256)
    {
        return Some(store.object_path(sha256));
    }
    let file = Path::new(trace.root.as_deref()?).join(path);
    (sha256_of(&file).ok()? == *sha256).then_some(file)
}

/// The offset of the first byte where `a` and `b` differ (the shorter
/// length when one is a prefix of the other), or `None` if they are equal
/// or cannot be read.
pub fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let mut fa = File::open(a).ok()?;
    let mut fb = File::open(b).ok()?;
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba).ok()?;
        let nb = read_full(&mut fb, &mut bb).ok()?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Some(offset + i as u64);
        }
        if na != nb {
            return Some(offset + n as u64);
        }
        if na == 0 {
            return None;
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_finds_the_offset_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = big.clone();
        changed[150_001] ^= 1;
        let a = write("a", &big);
        let b = write("b", &changed);
        let c = write("c", &big[..1000]);
        assert_eq!(first_difference(&a, &b), Some(150_001));
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(first_difference(&a, &c), Some(1000));
    }

    #[test]
    fn artifact_names_must_stay_inside_the_tree() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["a", "dir/b.c", ".hidden/x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn redacted_values_come_from_the_current_environment() {
        let token = "s3cret";
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())));
        let mut trace = Trace::parse(b"{}").unwrap();
        trace.environment = [
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("API_TOKEN".to_string(), digest.clone()),
            ("GONE_KEY".to_string(), digest.clone()),
            ("OTHER_SECRET".to_string(), digest),
        ]
        .into();
        let current: BTreeMap<String, String> = [
            ("API_TOKEN".to_string(), token.to_string()),
            ("OTHER_SECRET".to_string(), "changed".to_string()),
            ("PATH".to_string(), "/ignored".to_string()),
        ]
        .into();
        let (env, notes) = environment(&trace, &current);
        assert_eq!(
            env,
            [
                ("API_TOKEN".to_string(), token.to_string()),
                ("OTHER_SECRET".to_string(), "changed".to_string()),
                ("PATH".to_string(), "/usr/bin".to_string()),
            ]
        );
        assert_eq!(
            notes,
            [
                EnvNote::RedactedMissing {
                    name: "GONE_KEY".into()
                },
                EnvNote::RedactedDiffers {
                    name: "OTHER_SECRET".into()
                },
            ]
        );
    }

    #[test]
    fn redacted_values_of_a_format_2_trace_are_taken_and_not_compared() {
        let trace = Trace::parse(
            br#"{"format": 2,
                 "environment": {"API_TOKEN": "<redacted:API_TOKEN>",
                                 "DATABASE_URL": "postgres://u:<redacted:DATABASE_URL>@h/db",
                                 "GONE_KEY": "<redacted:GONE_KEY>",
                                 "LOOKS_LIKE": "<redacted:X>",
                                 "OLD_STYLE": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                                 "PATH": "/usr/bin"},
                 "redacted": ["API_TOKEN", "DATABASE_URL", "GONE_KEY"]}"#,
        )
        .unwrap();
        let current: BTreeMap<String, String> = [
            ("API_TOKEN", "tok"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
            ("LOOKS_LIKE", "now"),
            ("OLD_STYLE", "now"),
            ("PATH", "/ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (env, notes) = environment(&trace, &current);
        // Only the listed names come from the current environment; a value
        // that merely looks like a marker or a digest is restored as recorded.
        assert_eq!(
            env,
            [
                ("API_TOKEN", "tok"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
                ("LOOKS_LIKE", "<redacted:X>"),
                (
                    "OLD_STYLE",
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                ),
                ("PATH", "/usr/bin"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(
            notes,
            [
                EnvNote::RedactedNotCompared {
                    name: "API_TOKEN".into()
                },
                EnvNote::RedactedNotCompared {
                    name: "DATABASE_URL".into()
                },
                EnvNote::RedactedMissing {
                    name: "GONE_KEY".into()
                },
            ]
        );
    }
}
