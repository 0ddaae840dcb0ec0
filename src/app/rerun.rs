//! `tracelink rerun`: replays a precisely recorded step in a fresh work tree
//! mounted at the original root's path, and reports what it reproduced.

use super::show::quote_argv;
use super::{Signer, artifact_map};
use crate::cli::RerunArgs;
use crate::progress::HashProgress;
use anyhow::{Context as _, bail};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracelink::account::{Account, Mode, Trace, TraceState};
use tracelink::exclude::ExcludeSet;
use tracelink::hash::Algorithm;
use tracelink::keys::PublicKey;
use tracelink::link::{self, Byproducts, Link, OutputDir, pyjson};
use tracelink::record::{precise, session};
use tracelink::rerun::{self, Beneath, EnvNote, Recreated, Start, Verdict};
use tracelink::runner::{self, Interrupts};
use tracelink::store::Store;
use tracelink::text::printable;

const REPRODUCED: i32 = 0;
const DIFFERENT: i32 = 1;
const CANNOT_RERUN: i32 = 2;

/// Up to this many products, identical ones are listed too.
const IDENTICAL_LISTED: usize = 10;

/// Lines of a text diff shown per differing product.
const DIFF_LINES: usize = 30;

pub fn rerun(args: RerunArgs) -> i32 {
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            // Messages name paths and names from the link and trace.
            let message = format!("tracelink: cannot rerun {}: {err}", args.link.display());
            eprintln!("{}", printable(&message));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", printable(&cause.to_string()));
            }
            CANNOT_RERUN
        }
    }
}

/// Whose signature the replayed link carries.
enum Trust {
    /// Verified with this key file, under this keyid.
    Verified { key: PathBuf, keyid: String },
    /// Not checked (--unverified).
    Unverified,
}

/// Checks the link's signature (classic or DSSE) with the given keys: one
/// must verify it (docs/threat-model.md: a crafted link chooses the command
/// that runs). `--unverified` skips the check.
fn check_signature(args: &RerunArgs, account: &Account) -> anyhow::Result<Trust> {
    if args.unverified {
        return Ok(Trust::Unverified);
    }
    let mut failures = Vec::new();
    for path in &args.verification_keys {
        let key = PublicKey::load(path)
            .with_context(|| format!("--verification-keys {}", path.display()))?;
        let check = account.check_key(path, &key);
        if check.verified {
            return Ok(Trust::Verified {
                key: path.clone(),
                keyid: check.keyids.into_iter().next().unwrap_or_default(),
            });
        }
        failures.push(format!(
            "{}: {}",
            path.display(),
            check.reason.as_deref().unwrap_or("does not verify")
        ));
    }
    bail!(
        "its signature does not verify with any of the given keys ({}); it may have been changed after signing or signed by another key. Nothing was replayed (--unverified replays it unchecked)",
        failures.join("; ")
    )
}

fn run(args: &RerunArgs) -> anyhow::Result<i32> {
    if args.verification_keys.is_empty() && !args.unverified {
        bail!(
            "rerun replays a link only after checking its signature: pass --verification-keys PUB (the public key of the functionary who recorded it), or --unverified to replay it unchecked"
        );
    }
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
    let account = Account::load(&args.link)?;
    let trust = check_signature(args, &account)?;
    if let Trust::Unverified = trust {
        eprintln!(
            "tracelink: WARNING: replaying {} without checking its signature (--unverified)",
            args.link.display()
        );
    }
    if account.complete == Some(false) {
        eprintln!(
            "tracelink: WARNING: {} was recorded with --allow-incomplete: the original recording was incomplete (the report's verdict says why)",
            args.link.display()
        );
    }
    if account.mode != Mode::Precise {
        bail!(
            "it was recorded in {} mode; only precise links (with a runtime trace) can be rerun",
            account.mode.name()
        );
    }
    let trace = match &account.trace {
        TraceState::Trusted { trace, .. } => trace.as_ref(),
        other => bail!(
            "{}",
            other
                .problem()
                .unwrap_or_else(|| "the link has no trace".into())
        ),
    };
    let signer = args
        .signing_key
        .as_deref()
        .map(|key| Signer::from_key_file(key, args.password.as_deref(), None, false))
        .transpose()?;
    // The rerun's link is named after the (untrusted) step name: it must be
    // a file name in the metadata directory, checked before anything runs.
    let name = match &signer {
        Some(signer) => link::file_name(&account.link.name, &signer.keyid),
        None => format!("{}.rerun.link", account.link.name),
    };
    if name.contains('/') || name.contains('\0') {
        bail!(
            "the step name {:?} cannot name the rerun's link file {name:?} in the work directory",
            account.link.name
        );
    }
    let store = match (&args.store, trace.raw.get("store").and_then(|s| s.as_str())) {
        (Some(dir), _) => {
            Some(Store::open(dir).with_context(|| format!("--store {}", dir.display()))?)
        }
        // The trace may be crafted: read from a store there, create nothing.
        (None, Some(dir)) => Store::open_existing(Path::new(dir)).ok(),
        _ => None,
    };
    // Every place the trace names is checked before anything is created.
    let places = rerun::places(trace)?;
    let root = places.root.clone();
    if std::fs::canonicalize(&root).is_ok_and(|r| r == Path::new("/")) {
        bail!(
            "the trace names {} as the root, which is /: a work tree mounted over / would leave nothing the rerun could monitor",
            root.display()
        );
    }
    if !root.is_dir() {
        bail!(
            "the original root {} does not exist here; the rerun mounts its work tree there (create an empty directory at that path)",
            root.display()
        );
    }
    if let Start::Outside(dir) = &places.start
        && !dir.is_dir()
    {
        bail!(
            "the step started in {}, outside its root, and that directory does not exist here",
            dir.display()
        );
    }
    let plan = rerun::plan_inputs(&account.link, trace, store.as_ref())?;

    let workdir = make_workdir(args.workdir.as_deref())?;
    // Everything the rerun creates is created beneath this descriptor.
    let work = Beneath::open(&workdir)?;
    let tree = work.create_dir("tree")?;
    work.create_dir("metadata")?;
    let metadata = workdir.join("metadata");
    // Opened before the command runs: its outputs are created beneath this
    // descriptor, whatever the replayed tree does to the path.
    let out_dir = OutputDir::open(&metadata)?;
    eprintln!("tracelink: rerun in {}", workdir.display());
    {
        let mut progress = HashProgress::new("restoring");
        let total: u64 = plan
            .inputs
            .iter()
            .map(|i| {
                trace
                    .artifacts
                    .get(&i.path)
                    .and_then(|a| a.material.as_ref())
                    .map_or(0, |m| m.size)
            })
            .sum();
        let files = plan.inputs.len();
        let mut count = 0;
        plan.populate(&tree, store.as_ref(), &mut |bytes| {
            count += 1;
            progress.update(&tracelink::hash::Progress {
                files_done: count,
                files_total: files,
                bytes_done: bytes,
                bytes_total: total.max(bytes),
            });
        })?;
    }
    // The recorded starting directory must exist in the work tree.
    if let Start::InRoot(rel) = &places.start {
        tree.create_path(rel)?;
    }
    // What the recording only probed (configure's `test -f install-sh`),
    // recreated after the materials, symlinks last: the rerun creates
    // nothing after them.
    let probed = rerun::probed(trace, &account.link);
    let recreated = plan.recreate_probes(&tree, &probed, store.as_ref());
    let cwd = places.cwd();
    let current: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let (env, env_notes) = rerun::environment(trace, &current);

    let algs: Vec<Algorithm> = {
        let names: std::collections::BTreeSet<&String> = account
            .link
            .materials
            .values()
            .chain(account.link.products.values())
            .flat_map(|d| d.keys())
            .collect();
        let mut algs = Vec::new();
        for name in names {
            algs.extend(Algorithm::parse_list(name)?);
        }
        if algs.is_empty() {
            algs.push(Algorithm::Sha256);
        }
        algs
    };
    let tree = tree.path().to_path_buf();
    let excludes = ExcludeSet::defaults();
    let spec = precise::RecordSpec {
        session: session::SessionSpec {
            mount_at: Some(root.clone()),
            env: Some(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect()),
            ptrace: trace.ptrace.unwrap_or(true),
            timeout: args.run_timeout.map(Duration::from_secs),
            protect: signer.as_ref().and_then(Signer::protected),
            ..session::SessionSpec::recording(
                tree.clone(),
                cwd,
                account.link.command.iter().map(Into::into).collect(),
            )
        },
        algs,
        not_inherited: Vec::new(),
        exclude: std::sync::Arc::new(move |path: &str| excludes.is_excluded(path)),
        store: None,
    };
    // The command's output goes to files, so the report stays readable;
    // they are read back through our own descriptors.
    let stdout_log = out_dir.create("stdout.txt")?;
    let stderr_log = out_dir.create("stderr.txt")?;
    // The rerun's own trace hides at least what the recording's did.
    let secrets = tracelink::secrets::Policy::redacting(rerun::redacted(trace));
    let recording = precise::record_with(
        &spec,
        &secrets,
        session::SessionIo {
            stdout: Some(stdout_log.try_clone()?.into()),
            stderr: Some(stderr_log.try_clone()?.into()),
            on_spawn: &|pid| interrupts.forward_to(pid),
        },
    );
    interrupts.forward_to(0);
    let recording = recording.context("cannot record the rerun")?;
    let stdout_text = read_from_start(&stdout_log);
    let stderr_text = read_from_start(&stderr_log);
    if let Some(sig) = interrupts.received() {
        eprintln!(
            "tracelink: interrupted by signal {sig}; the rerun in {} is partial",
            workdir.display()
        );
        return Ok(128 + sig);
    }
    if recording.timed_out {
        bail!("the rerun timed out (--run-timeout)");
    }
    if let Some((_, message)) = &recording.status.spawn_error {
        bail!("cannot run {:?}: {message}", account.link.command.first());
    }
    let return_value = match (recording.status.code, recording.status.signal) {
        (Some(code), _) => Some(i64::from(code)),
        (None, Some(sig)) => Some(-i64::from(sig)),
        (None, None) => None,
    };

    // The rerun's own link and trace, never over the original.
    let materials = artifact_map(recording.materials.iter().map(|(p, f)| (p, &f.digests)));
    let products = artifact_map(recording.products.iter().map(|(p, f)| (p, &f.digests)));
    let trace_name = format!("{name}{}", tracelink::tracefile::COMPRESSED_SUFFIX);
    let trace_bytes = tracelink::tracefile::encode(&recording.trace)?;
    out_dir.write_atomically(&trace_name, &trace_bytes)?;
    use sha2::Digest as _;
    let mut environment = serde_json::Map::new();
    environment.insert(
        "tracelink".into(),
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "mode": "precise",
            "complete": recording.incomplete.is_empty(),
            "trace": {"name": trace_name, "sha256": hex::encode(sha2::Sha256::digest(&trace_bytes))},
            "rerun_of": args.link.display().to_string(),
        }),
    );
    let rerun_link = Link {
        name: account.link.name.clone(),
        command: account.link.command.clone(),
        materials: materials.clone(),
        products: products.clone(),
        byproducts: Byproducts {
            return_value,
            stdout: Some(String::from_utf8_lossy(&stdout_text).into_owned()),
            stderr: Some(String::from_utf8_lossy(&stderr_text).into_owned()),
        },
        environment,
    };
    match &signer {
        Some(signer) => signer.write(rerun_link, &out_dir, &name, &interrupts)?,
        None => {
            let doc = json!({"signatures": [], "signed": rerun_link.into_value()});
            let path = out_dir.write_atomically(&name, pyjson::dumps(&doc, Some(1)).as_bytes())?;
            eprintln!(
                "tracelink: wrote {} (unsigned; give --signing-key to sign)",
                printable(&path.display().to_string())
            );
        }
    }
    // The trace as written is compact and compressed; compare the document.
    let rerun_trace = serde_json::to_vec(&recording.trace)
        .ok()
        .and_then(|json| Trace::parse(&json).ok());

    let comparison = rerun::compare(
        &account.link,
        trace,
        &products,
        &materials,
        rerun_trace.as_ref(),
        &tree,
        store.as_ref(),
    );
    let reproduced = comparison.reproduced();
    // docs/recording.md#incomplete-runs: a link recorded with --allow-incomplete says so
    // loudly; what it lists may not be everything the step used.
    let incomplete = (account.complete == Some(false)).then(|| {
        let reasons = account.incomplete_reasons();
        if reasons.is_empty() {
            "the trace gives no reason".to_owned()
        } else {
            printable(&reasons.join("; ")).into_owned()
        }
    });
    let placeholders: Vec<&String> = recreated
        .iter()
        .filter(|(_, r)| *r == Recreated::Placeholder)
        .map(|(p, _)| p)
        .collect();
    let skipped: Vec<(&String, &String)> = recreated
        .iter()
        .filter_map(|(p, r)| match r {
            Recreated::Skipped(why) => Some((p, why)),
            _ => None,
        })
        .collect();
    let mut counts = [0usize; 4];
    for verdict in comparison.products.values() {
        counts[match verdict {
            Verdict::Identical => 0,
            Verdict::Different { .. } => 1,
            Verdict::Missing => 2,
            Verdict::Extra => 3,
        }] += 1;
    }
    let exit_recorded = account.link.byproducts.return_value;
    let plain = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());

    if args.json {
        let doc = json!({
            "verdict": if reproduced { "reproduced" } else { "not reproduced" },
            "signature": match &trust {
                Trust::Unverified => json!(null),
                Trust::Verified { key, keyid } => json!({"keyid": keyid, "key": key.display().to_string()}),
            },
            "step": account.link.name,
            "command": account.link.command,
            "exit": {"recorded": exit_recorded, "rerun": return_value},
            "counts": {"identical": counts[0], "different": counts[1], "missing": counts[2], "extra": counts[3]},
            "products": comparison.products.iter().map(|(p, v)| (p.clone(), match v {
                Verdict::Identical => json!("identical"),
                Verdict::Different { first_difference, .. } => json!({"different": {"first_difference": first_difference}}),
                Verdict::Missing => json!("missing"),
                Verdict::Extra => json!("extra"),
            })).collect::<serde_json::Map<_, _>>(),
            "first_divergence": comparison.first_divergence.as_ref().map(|(p, w)| json!({"product": p, "written_by": w})),
            "hidden_inputs": comparison.hidden_inputs,
            "probed_only_read": comparison.read_probed,
            "unused_inputs": comparison.unused_inputs,
            "probes_changed": comparison.probes_changed.iter().map(|(p, a, b)| json!({"path": p, "missing_in_recording": a, "missing_in_rerun": b})).collect::<Vec<_>>(),
            "placeholders": placeholders,
            "probes_not_recreated": skipped.iter().map(|(p, why)| json!({"path": p, "why": why})).collect::<Vec<_>>(),
            "processes": {
                "recorded": comparison.processes.recorded,
                "rerun": comparison.processes.rerun,
                "differing": comparison.processes.differing.iter().map(|(c, a, x, y)| json!({"chain": c, "argv": a, "recorded": x, "rerun": y})).collect::<Vec<_>>(),
            },
            "environment_notes": env_notes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>(),
            "rerun_incomplete": recording.incomplete,
            "original_incomplete": incomplete,
            "work_directory": workdir.display().to_string(),
        });
        let text = serde_json::to_string_pretty(&doc)?;
        println!("{text}");
        out_dir.write_atomically("report.json", text.as_bytes())?;
        return Ok(if reproduced { REPRODUCED } else { DIFFERENT });
    }

    let limit = if args.full { usize::MAX } else { 10 };
    let verdict = format!(
        "{}: {} identical, {} different, {} missing, {} extra product(s); {} hidden input(s); {} changed probe(s)",
        if reproduced {
            "REPRODUCED"
        } else {
            "NOT REPRODUCED"
        },
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        comparison.hidden_inputs.len(),
        comparison.probes_changed.len(),
    );
    let but = match &incomplete {
        Some(reasons) => format!(
            "; BUT the original recording was incomplete (recorded with --allow-incomplete): {reasons}; its materials and products may not be everything the step used"
        ),
        None => String::new(),
    };
    let mut out = String::new();
    // Whose link this is (a warning first when unchecked), then the
    // verdict and its causes; details after, bounded unless --full.
    match &trust {
        Trust::Unverified => {
            let _ = writeln!(
                out,
                "UNVERIFIED: the signature of {} was not checked (--unverified): anyone could have written this link and chosen its command",
                args.link.display()
            );
        }
        Trust::Verified { key, keyid } => {
            let _ = writeln!(
                out,
                "signature verified: {} is signed by {} ({})",
                args.link.display(),
                &keyid[..keyid.len().min(8)],
                key.display()
            );
        }
    }
    let _ = writeln!(out, "{verdict}{but}");
    if return_value != exit_recorded {
        let _ = writeln!(
            out,
            "exit status: recorded {}, rerun {}",
            plain(exit_recorded),
            plain(return_value)
        );
    }
    if let Some((path, writer)) = &comparison.first_divergence {
        let _ = writeln!(
            out,
            "first divergence: {} {}",
            printable(path),
            match writer {
                Some(w) => format!("(written by {})", printable(w)),
                None => "(no process of either run wrote it)".into(),
            }
        );
    }
    let procs = &comparison.processes;
    match procs.differing.first() {
        None => {
            let _ = writeln!(
                out,
                "processes: the same tree ({} programs run in the recording, {} in the rerun)",
                procs.recorded, procs.rerun
            );
        }
        Some((chain, argv, x, y)) => {
            let _ = writeln!(
                out,
                "processes: {} recorded, {} in the rerun; {} kind(s) differ; first: {} [{}]: {x} recorded, {y} in the rerun",
                procs.recorded,
                procs.rerun,
                procs.differing.len(),
                printable(chain),
                printable(argv)
            );
        }
    }
    let list = |out: &mut String, items: Vec<String>| {
        let n = items.len();
        for item in items.into_iter().take(limit) {
            let _ = writeln!(out, "{item}");
        }
        if n > limit {
            let _ = writeln!(out, "  ... {} more (--full lists them)", n - limit);
        }
    };
    list(
        &mut out,
        comparison
            .hidden_inputs
            .iter()
            .map(|p| format!(
                "HIDDEN INPUT {}: the rerun read or looked for it, the recording neither lists it nor looked for it",
                printable(p)
            ))
            .collect(),
    );
    list(
        &mut out,
        comparison
            .read_probed
            .iter()
            .map(|p| {
                let placeholder = placeholders.contains(&p);
                format!(
                    "PROBED, NOW READ {}: the recording only probed it, the rerun read it{}",
                    printable(p),
                    if placeholder {
                        " (a placeholder without the recorded content)"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
    );
    list(
        &mut out,
        comparison
            .probes_changed
            .iter()
            .map(|(path, before, after)| {
                format!(
                    "probe changed: {}: {} in the recording, {} in the rerun",
                    printable(path),
                    if *before { "missing" } else { "present" },
                    if *after { "missing" } else { "present" }
                )
            })
            .collect(),
    );
    // A few products are listed all; many only when they differ (--full
    // lists the identical ones too).
    let list_identical = args.full || comparison.products.len() <= IDENTICAL_LISTED;
    for (name, verdict) in &comparison.products {
        let path = printable(name);
        match verdict {
            Verdict::Identical => {
                if list_identical {
                    let _ = writeln!(out, "identical  {path}");
                }
            }
            Verdict::Different {
                original,
                first_difference,
            } => {
                match first_difference {
                    Some(offset) => {
                        let _ =
                            writeln!(out, "DIFFERENT  {path}: first difference at byte {offset}");
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "DIFFERENT  {path}: the original content is not available to compare (record with --store)"
                        );
                    }
                }
                if let Some(original) = original
                    && (args.full || counts[1] <= 3)
                {
                    explain_difference(&mut out, name, original, &tree.join(name), &out_dir);
                }
            }
            Verdict::Missing => {
                let _ = writeln!(
                    out,
                    "MISSING    {path}: recorded as a product, not produced by the rerun"
                );
            }
            Verdict::Extra => {
                let _ = writeln!(
                    out,
                    "EXTRA      {path}: produced by the rerun, not in the recording"
                );
            }
        }
    }
    list(
        &mut out,
        procs
            .differing
            .iter()
            .map(|(chain, argv, x, y)| {
                format!(
                    "process {} [{}]: {x} recorded, {y} in the rerun",
                    printable(chain),
                    printable(argv)
                )
            })
            .collect(),
    );
    if !placeholders.is_empty() {
        let _ = writeln!(
            out,
            "{} probed file(s) recreated as placeholders (recorded kind, mode and size; content not in the store nor at the original root):",
            placeholders.len()
        );
        list(
            &mut out,
            placeholders
                .iter()
                .map(|p| format!("  placeholder {}", printable(p)))
                .collect(),
        );
    }
    list(
        &mut out,
        skipped
            .iter()
            .map(|(p, why)| format!("probe not recreated: {}: {}", printable(p), printable(why)))
            .collect(),
    );
    list(
        &mut out,
        comparison
            .unused_inputs
            .iter()
            .map(|p| {
                format!(
                    "unused input {}: recorded as a material, not used by the rerun",
                    printable(p)
                )
            })
            .collect(),
    );
    // With -s the recording kept the output: compare it too.
    for (name, recorded, now) in [
        ("stdout", &account.link.byproducts.stdout, &stdout_text),
        ("stderr", &account.link.byproducts.stderr, &stderr_text),
    ] {
        if let Some(recorded) = recorded.as_deref().filter(|r| !r.is_empty())
            && recorded.as_bytes() != now.as_slice()
        {
            let _ = writeln!(out, "{name} differs from the recorded one");
        }
    }
    for reason in &recording.incomplete {
        let _ = writeln!(
            out,
            "warning: the rerun's monitoring was incomplete: {}",
            printable(reason)
        );
    }
    for note in &env_notes {
        let _ = match note {
            EnvNote::RedactedMissing { name } => writeln!(
                out,
                "environment: {name}: redacted in the trace and not set now; left out"
            ),
            EnvNote::RedactedNotCompared { name } => writeln!(
                out,
                "environment: {name}: redacted: not compared (the current value is used)"
            ),
            EnvNote::RedactedDiffers { name } => writeln!(
                out,
                "environment: {name}: redacted (an old trace kept its sha256); its current value differs from the recorded one"
            ),
        };
    }
    let _ = writeln!(
        out,
        "rerun of step \"{}\": {}",
        printable(&account.link.name),
        printable(&quote_argv(&account.link.command))
    );
    let _ = writeln!(
        out,
        "command output: {} ({} bytes), {} ({} bytes)",
        metadata.join("stdout.txt").display(),
        stdout_text.len(),
        metadata.join("stderr.txt").display(),
        stderr_text.len()
    );
    // The verdict again, last, for whoever reads the tail.
    let _ = writeln!(out, "{verdict}; work directory {}{but}", workdir.display());
    print!("{out}");
    out_dir.write_atomically("report.txt", out.as_bytes())?;
    Ok(if reproduced { REPRODUCED } else { DIFFERENT })
}

/// The whole content of `file` from its start, whatever its offset (empty
/// if it cannot be read).
fn read_from_start(file: &std::fs::File) -> Vec<u8> {
    use std::os::unix::fs::FileExt as _;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read_at(&mut buf, bytes.len() as u64) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    bytes
}

/// The work directory: `dir` (which must not exist or be empty) or a new
/// temporary one, kept after the rerun.
fn make_workdir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(dir) => {
            if dir.exists() {
                let empty = std::fs::read_dir(dir)
                    .with_context(|| format!("--workdir {}", dir.display()))?
                    .next()
                    .is_none();
                if !empty {
                    bail!("--workdir {} is not empty", dir.display());
                }
            } else {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create --workdir {}", dir.display()))?;
            }
            Ok(std::fs::canonicalize(dir)?)
        }
        None => Ok(tempfile::Builder::new()
            .prefix("tracelink-rerun-")
            .tempdir()
            .context("cannot create a temporary work directory")?
            .keep()),
    }
}

/// For a text product, a short unified diff (escaped: the bytes are the
/// replayed command's); with diffoscope installed, its report in the
/// metadata directory, written through its descriptor (the replayed command
/// could have put a symlink at the directory's path).
fn explain_difference(
    out: &mut String,
    path: &str,
    original: &Path,
    rerun: &Path,
    metadata: &OutputDir,
) {
    // Bounded, regular files only: the paths come from a crafted trace's
    // tree as much as from ours.
    let policy = tracelink::untrusted::Policy {
        what: "file to compare",
        follow: false,
        max: 1 << 20,
    };
    let is_text = |p: &Path| {
        tracelink::untrusted::read(p, policy)
            .ok()
            .filter(|b| !b.contains(&0) && std::str::from_utf8(b).is_ok())
            .is_some()
    };
    if is_text(original) && is_text(rerun) {
        let diff = std::process::Command::new("diff")
            .arg("-u")
            .arg("--label")
            .arg(format!("recorded/{path}"))
            .arg("--label")
            .arg(format!("rerun/{path}"))
            .arg(original)
            .arg(rerun)
            .output();
        if let Ok(diff) = diff {
            let text = String::from_utf8_lossy(&diff.stdout);
            let lines: Vec<&str> = text.lines().collect();
            for line in lines.iter().take(DIFF_LINES) {
                let _ = writeln!(out, "    {}", printable(line));
            }
            if lines.len() > DIFF_LINES {
                let _ = writeln!(out, "    ... {} more diff lines", lines.len() - DIFF_LINES);
            }
        }
    }
    if runner::resolve_program("diffoscope".as_ref()).is_ok() {
        let name = format!("diffoscope-{}.txt", path.replace('/', "_"));
        let Ok(report) = metadata.create(&name) else {
            let _ = writeln!(
                out,
                "    (no diffoscope report: cannot create {} in {})",
                printable(&name),
                metadata.path().display()
            );
            return;
        };
        let ran = std::process::Command::new("diffoscope")
            .arg("--text")
            .arg("-")
            .arg(original)
            .arg(rerun)
            .stdout(report)
            .stderr(std::process::Stdio::null())
            .status();
        if ran.is_ok() {
            let _ = writeln!(
                out,
                "    diffoscope report: {}",
                printable(&metadata.path().join(&name).display().to_string())
            );
        }
    } else {
        let _ = writeln!(out, "    (install diffoscope for a structural comparison)");
    }
}
