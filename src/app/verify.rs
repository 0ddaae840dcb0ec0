//! `tracelink verify`: in-toto layout verification with in-toto-verify's
//! verdicts, a readable report, and inspections recorded as in-toto-verify
//! records them (a snapshot of the current directory) or precisely; with
//! `--vsa`, a signed SLSA Verification Summary of a passed verification.

use super::artifact_map;
use crate::cli::VerifyArgs;
use anyhow::Context as _;
use std::path::Path;
use std::time::Duration;
use tracelink::attest::{self, ResourceDescriptor, vsa};
use tracelink::exclude::ExcludeSet;
use tracelink::hash::Algorithm;
use tracelink::keys::{KeyIdFormat, PrivateKey, PublicKey};
use tracelink::link::DigestSet;
use tracelink::record::{precise, session};
use tracelink::runner::{self, Interrupts};
use tracelink::snapshot;
use tracelink::text::{printable, printable_lines};
use tracelink::verify::chain::{self, Inspected, Inspector};
use tracelink::verify::layout::{Inspection, Layout};
use tracelink::verify::metadata::Metadata;
use tracelink::verify::report::{LinkStatus, Report};

const VERIFIED: i32 = 0;
const NOT_VERIFIED: i32 = 1;

/// Runs the verification; the exit status is 0 verified, 1 not verified
/// (whatever the reason, as in-toto-verify) or the verification summary
/// (`--vsa`) could not be written.
pub fn verify(args: VerifyArgs) -> i32 {
    let mut report = Report::new(args.layout.clone());
    let result = run(&args, &mut report);
    if let Err(err) = &result
        && report.failure.is_none()
    {
        // Failures before the layout could be read (keys, files).
        let mut reason = err.to_string();
        for cause in err.chain().skip(1) {
            reason.push_str(&format!(": {cause}"));
        }
        report.failure = Some(reason);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).expect("JSON values always encode")
        );
    } else {
        // Every name in the report is escaped; printable_lines makes sure.
        print!("{}", printable_lines(&report.to_text()));
    }
    match &report.failure {
        None => {
            eprintln!(
                "tracelink: verified: {}",
                printable(&args.layout.display().to_string())
            );
            let Ok(Some(passed)) = &result else {
                return VERIFIED;
            };
            match write_vsa(&args, passed, &report) {
                Ok(()) => {
                    let path = args.vsa.as_deref().unwrap_or(Path::new(""));
                    eprintln!(
                        "tracelink: wrote the verification summary {}",
                        printable(&path.display().to_string())
                    );
                    VERIFIED
                }
                Err(e) => {
                    eprintln!(
                        "tracelink: error: the chain verified, but no verification summary was written: {}",
                        printable(&format!("{e:#}"))
                    );
                    NOT_VERIFIED
                }
            }
        }
        Some(reason) => {
            eprintln!("tracelink: not verified: {}", printable(reason));
            NOT_VERIFIED
        }
    }
}

/// What a passed verification hands to the summary writer (`--vsa` only).
struct Passed {
    layout: Metadata,
    summary: chain::Summary,
    signing_key: PrivateKey,
}

/// Verifies; `Some` when verification passed and a summary is wanted.
fn run(args: &VerifyArgs, report: &mut Report) -> anyhow::Result<Option<Passed>> {
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
    // The summary's key is read first: a key that cannot sign fails before
    // anything runs.
    let signing_key = match (&args.vsa, &args.signing_key) {
        (Some(_), Some(path)) => Some(PrivateKey::load(path, None)?),
        _ => None,
    };
    let mut owner_keys = Vec::new();
    for path in &args.verification_keys {
        let key = PublicKey::load(path)?;
        // in-toto-verify names command-line keys by the Python keyid.
        owner_keys.push((key.keyid(KeyIdFormat::Python), key));
    }
    let meta = Metadata::load(&args.layout)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64;
    let timeout = Duration::from_secs(args.inspection_timeout);
    let mut snapshot_inspector = SnapshotInspector {
        timeout,
        interrupts: &interrupts,
    };
    let mut precise_inspector = PreciseInspector { timeout };
    let inspector: &mut dyn Inspector = if args.precise_inspections {
        &mut precise_inspector
    } else {
        &mut snapshot_inspector
    };
    // The reason is in the report; the error only stops here.
    let verified = chain::verify(&meta, &owner_keys, &args.link_dir, now, inspector, report);
    Ok(match (verified, signing_key) {
        (Ok(summary), Some(signing_key)) => Some(Passed {
            layout: meta,
            summary,
            signing_key,
        }),
        _ => None,
    })
}

/// Makes, signs (the signature checked against the key's public half) and
/// writes atomically the verification summary of a passed verification
/// (docs/attestations.md#verification-summary-tracelink-verify---vsa).
fn write_vsa(args: &VerifyArgs, passed: &Passed, report: &Report) -> anyhow::Result<()> {
    let Some(out) = &args.vsa else {
        anyhow::bail!("no --vsa file");
    };
    let layout = Layout::from_value(&passed.layout.payload).map_err(anyhow::Error::msg)?;
    let products = vsa::last_steps(&layout)
        .into_iter()
        .filter_map(|step| passed.summary.step_products.get(step));
    let subject = vsa::subject_from_products(products)?;
    let resource_uri = match &args.vsa_resource_uri {
        Some(uri) => uri.clone(),
        None => subject
            .first()
            .and_then(|s| s.name.as_deref())
            .map(default_resource_uri)
            .unwrap_or_default(),
    };
    let incomplete = incomplete_links(report);
    if !incomplete.is_empty() {
        anyhow::bail!(
            "{} recorded with --allow-incomplete: its materials and products may not be everything the step used, and a PASSED summary would vouch for more than the links do",
            incomplete.join(", ")
        );
    }
    let mut input_attestations = Vec::new();
    counted_files(report, &args.link_dir, &mut input_attestations);
    let summary = vsa::Summary {
        subject,
        time_verified: std::time::SystemTime::now(),
        resource_uri,
        policy_uri: tracelink::verify::chain::file_name(&args.layout),
        policy_digest: sha256_set(&passed.layout.sha256),
        input_attestations,
    };
    let statement = vsa::statement(&summary)?;
    let key = &passed.signing_key;
    let keyid = key.keyid(key.default_keyid_format());
    // attest::sign reads the envelope back and checks the signature with
    // the key's public half before returning it.
    let bytes = attest::sign(&statement, key, &keyid)?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", out.display()))?;
    tracelink::link::write_atomically(dir, name, &bytes)?;
    Ok(())
}

/// Every counted file of `report` and its sublayouts' reports: name (the
/// path relative to `link_dir`) and sha256 of the bytes verified.
fn counted_files(report: &Report, link_dir: &Path, out: &mut Vec<ResourceDescriptor>) {
    for item in &report.items {
        for link in &item.links {
            if link.status != LinkStatus::Counted {
                continue;
            }
            if let Some(sha256) = &link.sha256 {
                let name = match link.file.strip_prefix(link_dir) {
                    Ok(rel) => rel.to_string_lossy().into_owned(),
                    Err(_) => tracelink::verify::chain::file_name(&link.file),
                };
                out.push(ResourceDescriptor::artifact(&name, &sha256_set(sha256)));
            }
            if let Some(sub) = &link.sublayout {
                counted_files(sub, link_dir, out);
            }
        }
    }
}

/// The counted links (sublayouts' too) recorded with `--allow-incomplete`.
fn incomplete_links(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for item in &report.items {
        for link in &item.links {
            if link.status == LinkStatus::Counted && link.incomplete {
                out.push(link.file.display().to_string());
            }
            if let Some(sub) = &link.sublayout {
                out.extend(incomplete_links(sub));
            }
        }
    }
    out
}

fn sha256_set(hex: &str) -> DigestSet {
    DigestSet::from([("sha256".to_string(), hex.to_string())])
}

/// `file:` and the artifact's name (a relative reference), bytes outside
/// RFC 3986's unreserved set and `/` percent-encoded.
fn default_resource_uri(name: &str) -> String {
    let mut out = String::from("file:");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Records an inspection as in-toto-verify does: `in-toto-run -m . -p .`
/// with the default excludes, the command's output shown, not captured.
struct SnapshotInspector<'a> {
    timeout: Duration,
    interrupts: &'a Interrupts,
}

impl Inspector for SnapshotInspector<'_> {
    fn inspect(&mut self, inspection: &Inspection) -> Result<Inspected, String> {
        if inspection.run.is_empty() {
            return Err("`run` is empty: there is no command to run".into());
        }
        let opts = snapshot::Options {
            base_path: None,
            excludes: ExcludeSet::defaults(),
            lstrip: Vec::new(),
        };
        let algs = [Algorithm::Sha256];
        let dot = [".".to_owned()];
        let before = snapshot::record(&dot, &opts, &algs, None, &mut |_| true)
            .map_err(|e| format!("cannot record the materials: {e}"))?;
        let outcome = runner::run(&inspection.run, false, Some(self.timeout), self.interrupts)
            .map_err(|e| e.to_string())?;
        if let Some(sig) = self.interrupts.received() {
            return Err(format!("interrupted by signal {sig}"));
        }
        let after = snapshot::record(&dot, &opts, &algs, Some(&before), &mut |_| true)
            .map_err(|e| format!("cannot record the products: {e}"))?;
        Ok(Inspected {
            materials: artifact_map(before.iter().map(|(n, h)| (n, &h.digests))),
            products: artifact_map(after.iter().map(|(n, h)| (n, &h.digests))),
            return_value: outcome.return_value,
        })
    }
}

/// Records an inspection the way `tracelink run` records precisely: the
/// current directory is the monitored root; materials are what the command
/// read, products what it wrote.
struct PreciseInspector {
    timeout: Duration,
}

impl Inspector for PreciseInspector {
    fn inspect(&mut self, inspection: &Inspection) -> Result<Inspected, String> {
        if inspection.run.is_empty() {
            return Err("`run` is empty: there is no command to run".into());
        }
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        let excludes = ExcludeSet::defaults();
        let spec = precise::RecordSpec {
            session: session::SessionSpec {
                timeout: Some(self.timeout),
                ..session::SessionSpec::recording(
                    cwd.clone(),
                    cwd,
                    inspection.run.iter().map(Into::into).collect(),
                )
            },
            algs: vec![Algorithm::Sha256],
            not_inherited: Vec::new(),
            exclude: std::sync::Arc::new(move |path: &str| excludes.is_excluded(path)),
            store: None,
        };
        let recording = precise::record(
            &spec,
            session::SessionIo {
                stdout: None,
                stderr: None,
                on_spawn: &|_| {},
            },
        )
        .map_err(|e| format!("cannot record precisely: {e:#}"))?;
        if recording.timed_out {
            return Err(format!("timed out after {} s", self.timeout.as_secs()));
        }
        if !recording.incomplete.is_empty() {
            return Err(format!(
                "the precise recording is incomplete: {}",
                recording.incomplete.join("; ")
            ));
        }
        let status = &recording.status;
        if let Some((_, message)) = &status.spawn_error {
            return Err(format!("cannot run {:?}: {message}", inspection.run[0]));
        }
        let return_value = match (status.code, status.signal) {
            (Some(code), _) => i64::from(code),
            (None, Some(sig)) => -i64::from(sig),
            (None, None) => return Err("the sandbox ended without the command's status".into()),
        };
        Ok(Inspected {
            materials: artifact_map(recording.materials.iter().map(|(p, f)| (p, &f.digests))),
            products: artifact_map(recording.products.iter().map(|(p, f)| (p, &f.digests))),
            return_value,
        })
    }
}
