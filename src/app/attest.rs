//! `tracelink run --attest`: the step's in-toto Statements
//! (docs/attestations.md), signed with the link's key under the link's
//! keyid and written beside the link.
//!
//! Order: the statements are made and signed, and the link signed, before
//! anything is written; a statement that cannot be made fails the run
//! (exit 125) with nothing written. The statements are then written (each
//! atomically, through the directory opened before the run) and the link
//! last, so that this run's link is never on disk without its statements.
//! If writing fails midway, the statements of this run already written are
//! removed again and no link is written (one exception: a failure to sync
//! the directory after the link's rename leaves the new link in place,
//! reported as a failure, without statements). Statements of an earlier run
//! of the step (same name and key) that this run does not replace are
//! removed, with or without `--attest` (without it, after the link is
//! written): they would describe another run.

use super::Signer;
use crate::cli;
use anyhow::Context as _;
use std::time::SystemTime;
use tracelink::attest::{self, Envelopes, Kind, Mode, StepRecord, TraceFile};
use tracelink::exclude::ExcludeSet;
use tracelink::link::{self, Link, OutputDir};
use tracelink::record::precise::Recording;
use tracelink::runner::Interrupts;
use tracelink::text::printable;

/// What the statements are made from, besides the link.
pub(super) struct Inputs<'a> {
    pub mode: Mode,
    /// The exclude patterns in force.
    pub excludes: Vec<String>,
    /// When the command started and ended.
    pub started: SystemTime,
    pub finished: SystemTime,
    /// Precise mode: the trace written beside the link.
    pub trace: Option<TraceFile<'a>>,
    /// Precise mode: the secrets the trace was redacted with.
    pub redaction: Option<&'a tracelink::secrets::Redaction>,
}

/// `--exclude` patterns, or in-toto-run's defaults, as given.
fn exclude_patterns(args: &cli::ArtifactArgs) -> Vec<String> {
    match &args.exclude {
        Some(patterns) => patterns.clone(),
        None => ExcludeSet::DEFAULT_PATTERNS.map(String::from).to_vec(),
    }
}

/// With `--attest`, the inputs of a precise recording's statements.
pub(super) fn precise<'a>(
    args: &cli::RunArgs,
    recording: &'a Recording,
    trace_name: &'a str,
    trace_sha256: &'a str,
) -> Option<Inputs<'a>> {
    args.attest.then(|| Inputs {
        mode: Mode::Precise,
        excludes: exclude_patterns(&args.artifacts),
        started: recording.started,
        finished: recording.finished,
        trace: Some(TraceFile {
            name: trace_name,
            sha256: trace_sha256,
            document: &recording.trace,
        }),
        redaction: Some(&recording.redaction),
    })
}

/// With `--attest`, the inputs of a snapshot recording's statements (link
/// and provenance; no trace).
pub(super) fn snapshot(
    args: &cli::RunArgs,
    started: SystemTime,
    finished: SystemTime,
) -> Option<Inputs<'static>> {
    args.attest.then(|| Inputs {
        mode: Mode::Snapshot,
        excludes: exclude_patterns(&args.artifacts),
        started,
        finished,
        trace: None,
        redaction: None,
    })
}

/// Signs `link` and writes it to `dir/name`, with its statements first when
/// `inputs` is given (without: [`Signer::write`]). Nothing is written when
/// a stop signal arrived meanwhile (the caller says so).
pub(super) fn write(
    signer: &Signer,
    link: Link,
    inputs: Option<Inputs>,
    dir: &OutputDir,
    name: &str,
    interrupts: &Interrupts,
) -> anyhow::Result<()> {
    let Some(inputs) = inputs else {
        // The link first: a run that is interrupted or fails before writing
        // it leaves the earlier run's link and statements as they were.
        let step = link.name.clone();
        signer.write(link, dir, name, interrupts)?;
        if interrupts.received().is_none() {
            remove_stale(dir, &step, &signer.keyid, &[]).context(
                "the link was written, but an earlier run's attestation beside it could not be removed",
            )?;
        }
        return Ok(());
    };
    let t_make = std::time::Instant::now();
    let step = StepRecord {
        link: &link,
        mode: inputs.mode,
        excludes: &inputs.excludes,
        started: inputs.started,
        finished: inputs.finished,
        working_directory: None,
        trace: inputs.trace,
        redaction: inputs.redaction,
    };
    let envelopes = attest::envelopes(&step, &signer.key, &signer.keyid)
        .context("cannot make the attestations (--attest); no link was written")?;
    super::timing("attestations: make and sign", t_make);
    let step_name = link.name.clone();
    let (materials, products) = (link.materials.len(), link.products.len());
    let bytes = link::sign(link, &signer.key, &signer.keyid, signer.wrapper)?;
    if interrupts.received().is_some() {
        return Ok(());
    }
    let files = match envelopes {
        Envelopes::Files(files) => files,
        Envelopes::NoSubject => {
            eprintln!(
                "tracelink: warning: step {} has no products: no attestations written (an in-toto Statement needs a subject)",
                printable(&step_name)
            );
            Vec::new()
        }
    };
    remove_stale(dir, &step_name, &signer.keyid, &files)
        .context("cannot remove an earlier run's attestation; no link was written")?;
    let t_write = std::time::Instant::now();
    let mut written: Vec<&str> = Vec::new();
    for (file, envelope) in &files {
        if let Err(e) = dir.write_atomically(file, envelope) {
            // The failure may come after the rename (syncing the directory):
            // the file itself goes too.
            written.push(file);
            remove_written(dir, &written);
            return Err(anyhow::Error::new(e)
                .context("cannot write the attestations (--attest); no link was written"));
        }
        written.push(file);
    }
    super::timing("attestations: write", t_write);
    let path = match dir.write_atomically(name, &bytes) {
        Ok(path) => path,
        Err(e) => {
            remove_written(dir, &written);
            return Err(e.into());
        }
    };
    let attestations = if written.is_empty() {
        String::new()
    } else {
        format!(" and {}", written.join(", "))
    };
    eprintln!(
        "tracelink: wrote {} ({materials} materials, {products} products){attestations}",
        path.display(),
    );
    Ok(())
}

/// Removes this run's statements after a failed write, saying which could
/// not be removed.
fn remove_written(dir: &OutputDir, written: &[&str]) {
    for file in written {
        if let Err(e) = dir.remove(file) {
            eprintln!(
                "tracelink: warning: {}: an attestation of this failed run is left behind",
                printable(&format!("{:#}", anyhow::Error::new(e)))
            );
        }
    }
}

/// Removes the statements of an earlier run of this step (same name, same
/// key) that this run does not replace: they would stand beside a link they
/// do not describe, and `verify` fails a link whose attestation differs. Runs
/// without `--attest` remove them all.
fn remove_stale(
    dir: &OutputDir,
    step: &str,
    keyid: &str,
    replaced: &[(String, Vec<u8>)],
) -> Result<(), tracelink::link::LinkError> {
    for kind in Kind::ALL {
        let stale = attest::file_name(step, keyid, kind);
        if !replaced.iter().any(|(file, _)| *file == stale) {
            dir.remove(&stale)?;
        }
    }
    Ok(())
}
