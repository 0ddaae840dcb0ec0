//! `tracelink verify`: in-toto layout verification with in-toto-verify's
//! verdicts, a readable report, and inspections recorded as in-toto-verify
//! records them (a snapshot of the current directory) or precisely.

use super::artifact_map;
use crate::cli::VerifyArgs;
use anyhow::Context as _;
use std::time::Duration;
use tracelink::exclude::ExcludeSet;
use tracelink::hash::Algorithm;
use tracelink::keys::{KeyIdFormat, PublicKey};
use tracelink::record::{precise, session};
use tracelink::runner::{self, Interrupts};
use tracelink::snapshot;
use tracelink::text::{printable, printable_lines};
use tracelink::verify::chain::{self, Inspected, Inspector};
use tracelink::verify::layout::Inspection;
use tracelink::verify::metadata::Metadata;
use tracelink::verify::report::Report;

const VERIFIED: i32 = 0;
const NOT_VERIFIED: i32 = 1;

/// Runs the verification; the exit status is 0 verified, 1 not verified
/// (whatever the reason, as in-toto-verify).
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
            VERIFIED
        }
        Some(reason) => {
            eprintln!("tracelink: not verified: {}", printable(reason));
            NOT_VERIFIED
        }
    }
}

fn run(args: &VerifyArgs, report: &mut Report) -> anyhow::Result<()> {
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
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
    let _ = chain::verify(&meta, &owner_keys, &args.link_dir, now, inspector, report);
    Ok(())
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
