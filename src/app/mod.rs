//! One function per subcommand: the only place that wires the library's
//! modules together, prints to the user and decides exit statuses.

mod attest;
mod diff;
mod draft;
mod manual;
mod rerun;
mod show;
mod sign;
mod verify;

use crate::cli::{self, Cli, Commands, KeyIdFormatArg, LayoutCommand, RecordCommand};
use crate::progress::HashProgress;
use anyhow::{Context, bail};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracelink::exclude::ExcludeSet;
use tracelink::hash::Algorithm;
use tracelink::keys::{KeyError, KeyFile, KeyIdFormat, PrivateKey};
use tracelink::link::{self, ArtifactMap, Byproducts, DigestSet, Link, OutputDir, Wrapper};
use tracelink::record::{sandbox, session};
use tracelink::runner::{self, Interrupts, RunError};
use tracelink::snapshot::{self, Recorded};

/// Exit status when tracelink itself fails.
const EXIT_FAILURE: i32 = 125;
/// Exit status for command-line errors found before anything ran.
const EXIT_USAGE: i32 = 2;

/// A command-line error found before the command ran (a flag that does not
/// fit the mode, an unusable metadata directory or root): exit 2, as
/// docs/recording.md (exit statuses) says, and the command does not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Runs the parsed command line and returns the exit status.
pub fn main(cli: Cli) -> i32 {
    let result = match cli.command {
        Commands::Run(args) => run(args),
        Commands::Record(RecordCommand::Start(args)) => record_start(args),
        Commands::Record(RecordCommand::Stop(args)) => record_stop(args),
        Commands::Keygen(args) => keygen(args).map(|()| 0),
        Commands::Verify(args) => Ok(verify::verify(args)),
        Commands::Sign(args) => sign::sign(args),
        Commands::Layout(LayoutCommand::Draft(args)) => draft::draft(args),
        Commands::Show(args) => show::show(args),
        Commands::Diff(args) => diff::diff(args),
        Commands::Rerun(args) => Ok(rerun::rerun(args)),
        Commands::Completions(args) => manual::completions(args),
        Commands::Man(args) => manual::man(args),
        Commands::Sandbox(args) => Ok(sandbox::sandbox_main(sandbox::SandboxSpec {
            fuse_sock: args.fuse_sock,
            status_fd: args.status_fd,
            root: args.root,
            cwd: args.cwd,
            argv: args.command,
            ptrace: args.ptrace,
            isolate: args.isolate,
            hide: args.hide,
            backing: args.backing,
            reopen: args
                .reopen
                .iter()
                .filter_map(|r| sandbox::Reopen::from_arg(r))
                .collect(),
        })),
        Commands::MountRun(args) => mount_run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            if err.downcast_ref::<UsageError>().is_some() {
                return EXIT_USAGE;
            }
            match err.downcast_ref::<RunError>() {
                Some(run_err) => run_err.exit_code(),
                None => EXIT_FAILURE,
            }
        }
    }
}

/// Prints an error with its whole cause chain, escaped for a terminal
/// (messages quote names from links and layouts others made).
fn report(err: &anyhow::Error) {
    use tracelink::text::printable;
    eprintln!("tracelink: error: {}", printable(&err.to_string()));
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {}", printable(&cause.to_string()));
    }
}

fn run(args: cli::RunArgs) -> anyhow::Result<i32> {
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
    check_step_name(&args.signing.step_name)?;
    if args.materials.is_empty() && args.products.is_empty() && !args.no_command {
        return run_precise(args, &interrupts);
    }
    if args.root.is_some()
        || args.allow_incomplete
        || args.store.is_some()
        || args.isolate
        || !args.redact_env.is_empty()
        || !args.keep_env.is_empty()
    {
        return Err(usage(
            "--root, --store, --isolate, --allow-incomplete, --redact-env and --keep-env belong to precise recording; snapshot mode (-m/-p, -x) records the paths it is given and runs the command without a sandbox (and writes no trace)",
        ));
    }
    if args.no_command && !args.command.is_empty() {
        return Err(usage(
            "-x/--no-command was given together with a command to run",
        ));
    }
    if !args.no_command && args.command.is_empty() {
        return Err(usage(
            "no command given: put it after `--`, or pass -x/--no-command to record without one",
        ));
    }
    let algs = hash_algorithms(&args.artifacts)?;
    let opts = snapshot_options(&args.artifacts)?;
    let out_dir = output_dir(&args.metadata_directory)?;
    let signer = Signer::load(&args.signing)?;

    let t_materials = std::time::Instant::now();
    let materials = record_artifacts(
        &args.materials,
        &opts,
        &algs,
        None,
        "materials",
        &interrupts,
    )?;
    timing("materials", t_materials);
    if let Some(code) = interrupted(&interrupts) {
        return Ok(code);
    }
    let started = std::time::SystemTime::now();
    let (byproducts, exit_code) = if args.no_command {
        (Byproducts::default(), 0)
    } else {
        let timeout = args.run_timeout.map(Duration::from_secs);
        let outcome = runner::run(&args.command, args.record_streams, timeout, &interrupts)?;
        let byproducts = Byproducts {
            return_value: Some(outcome.return_value),
            stdout: Some(outcome.stdout.unwrap_or_default()),
            stderr: Some(outcome.stderr.unwrap_or_default()),
        };
        (byproducts, outcome.exit_code)
    };
    let finished = std::time::SystemTime::now();
    if let Some(code) = interrupted(&interrupts) {
        return Ok(code);
    }
    let reuse = (!args.rehash).then_some(&materials);
    let t_products = std::time::Instant::now();
    let products = record_artifacts(&args.products, &opts, &algs, reuse, "products", &interrupts)?;
    timing("products", t_products);
    if let Some(code) = interrupted(&interrupts) {
        return Ok(code);
    }
    let link = Link {
        name: args.signing.step_name.clone(),
        command: args.command.clone(),
        materials: artifact_map(materials.iter().map(|(n, h)| (n, &h.digests))),
        products: artifact_map(products.iter().map(|(n, h)| (n, &h.digests))),
        byproducts,
        environment: Default::default(),
    };
    let name = link::file_name(&link.name, &signer.keyid);
    let t_write = std::time::Instant::now();
    let attest = attest::snapshot(&args, started, finished);
    attest::write(&signer, link, attest, &out_dir, &name, &interrupts)?;
    timing("sign and write", t_write);
    Ok(interrupted(&interrupts).unwrap_or(exit_code))
}

/// `tracelink run` without -m/-p: precise recording (docs/recording.md, docs/monitoring.md).
fn run_precise(args: cli::RunArgs, interrupts: &Interrupts) -> anyhow::Result<i32> {
    if args.command.is_empty() {
        return Err(usage(
            "no command given: put it after `--` (or record in snapshot mode with -m/-p, or -x -p for a step without a command)",
        ));
    }
    if args.artifacts.base_path.is_some() {
        return Err(usage(
            "--base-path is for snapshot mode (-m/-p); in precise mode artifact paths are relative to --root",
        ));
    }
    if !args.artifacts.lstrip_paths.is_empty() {
        return Err(usage(
            "--lstrip-paths is for snapshot mode (-m/-p); in precise mode artifact paths are relative to --root",
        ));
    }
    let secrets = tracelink::secrets::Policy::new(&args.redact_env, &args.keep_env)
        .map_err(|e| usage(e.to_string()))?;
    let root = monitored_root(args.root.as_deref())?;
    let algs = hash_algorithms(&args.artifacts)?;
    let excludes = excludes(&args.artifacts)?;
    // Opened before the command runs: the tree may rename the directory and
    // put a symlink in its place, the trace and link still land here.
    let out_dir = output_dir(&args.metadata_directory)?;
    let signer = Signer::load(&args.signing)?;
    let protect = signer.protected();
    let spec = tracelink::record::precise::RecordSpec {
        session: session::SessionSpec {
            ptrace: !args.no_ptrace,
            timeout: args.run_timeout.map(Duration::from_secs),
            isolate: args.isolate,
            protect,
            ..session::SessionSpec::recording(
                root,
                std::env::current_dir().context("cannot read the current directory")?,
                args.command.iter().map(Into::into).collect(),
            )
        },
        algs,
        not_inherited: if args.record_streams {
            vec![1, 2]
        } else {
            Vec::new()
        },
        exclude: std::sync::Arc::new(move |path: &str| excludes.is_excluded(path)),
        store: match &args.store {
            Some(dir) => Some(
                tracelink::store::Store::open(dir)
                    .with_context(|| format!("--store {}", dir.display()))?,
            ),
            None => None,
        },
    };
    let streams = args.record_streams.then(runner::Streams::new).transpose()?;
    let (stdout, stderr) = match &streams {
        Some(s) => {
            let (out, err) = s.stdio()?;
            (Some(out), Some(err))
        }
        None => (None, None),
    };
    let shown = streams.map(runner::Streams::show);
    let recording = tracelink::record::precise::record_with(
        &spec,
        &secrets,
        session::SessionIo {
            stdout,
            stderr,
            on_spawn: &|pid| interrupts.forward_to(pid),
        },
    );
    interrupts.forward_to(0);
    let captured = shown.map(runner::Shown::finish).transpose()?;
    let recording = recording?;
    if recording.timed_out {
        return Err(RunError::TimedOut(args.run_timeout.unwrap_or_default()).into());
    }
    if let Some(code) = interrupted(interrupts) {
        return Ok(code);
    }
    let status = &recording.status;
    if let Some((errno, message)) = &status.spawn_error {
        let code = if *errno == libc::ENOENT { 127 } else { 126 };
        eprintln!(
            "tracelink: error: cannot run {:?}: {message}",
            args.command[0]
        );
        return Ok(code);
    }
    let (return_value, exit_code) = match (status.code, status.signal) {
        (Some(code), _) => (i64::from(code), code),
        (None, Some(sig)) => (-i64::from(sig), 128 + sig),
        (None, None) => bail!("the sandbox ended without reporting the command's status"),
    };
    if exit_code != 0 && nix::unistd::geteuid().is_root() {
        // A step that worked as plain root may have tried what the contained
        // tree can no longer do; say so once, next to its own error.
        eprintln!(
            "tracelink: note: the command failed ({exit_code}). In precise mode it runs as root of a user namespace of its own: creating device nodes, mounting filesystem images or proc, raw block devices and trusted.* xattrs are refused (EPERM). Record such a step in snapshot mode (-m/-p)."
        );
    }

    let name = link::file_name(&args.signing.step_name, &signer.keyid);
    // Compact and compressed (tracelink::tracefile); the link signs these
    // bytes, as written.
    let trace_name = format!("{name}{}", tracelink::tracefile::COMPRESSED_SUFFIX);
    let trace_bytes = tracelink::tracefile::encode(&recording.trace)?;
    let trace_path = out_dir.write_atomically(&trace_name, &trace_bytes)?;
    warn_if_moved(&out_dir);
    let complete = recording.incomplete.is_empty();
    if !complete {
        for reason in &recording.incomplete {
            eprintln!("tracelink: incomplete: {reason}");
        }
        if !args.allow_incomplete {
            eprintln!(
                "tracelink: the recording is incomplete, so no link was signed (trace: {}); --allow-incomplete signs it marked incomplete",
                trace_path.display()
            );
            return Ok(EXIT_FAILURE);
        }
    }
    let trace_sha256 = tracelink::hash::sha256_hex(&trace_bytes);
    let mut environment = serde_json::Map::new();
    environment.insert(
        "tracelink".into(),
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "mode": "precise",
            "complete": complete,
            "trace": {"name": trace_name, "sha256": trace_sha256},
        }),
    );
    let link = Link {
        name: args.signing.step_name.clone(),
        command: args.command.clone(),
        materials: artifact_map(recording.materials.iter().map(|(p, f)| (p, &f.digests))),
        products: artifact_map(recording.products.iter().map(|(p, f)| (p, &f.digests))),
        byproducts: {
            let (stdout, stderr) = captured.unwrap_or_default();
            Byproducts {
                return_value: Some(return_value),
                stdout: Some(stdout),
                stderr: Some(stderr),
            }
        },
        environment,
    };
    let attest = attest::precise(&args, &recording, &trace_name, &trace_sha256);
    attest::write(&signer, link, attest, &out_dir, &name, interrupts)?;
    Ok(interrupted(interrupts).unwrap_or(exit_code))
}

/// The monitored root R of precise recording: `--root` or the current
/// directory, canonical. Refused (exit 2, before anything runs) when it is
/// not a directory or when it is `/`: the FUSE mount would be stacked on
/// the root directory itself, and nothing could be monitored.
fn monitored_root(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let shown = match arg {
        Some(dir) => format!("--root {}", dir.display()),
        None => "the monitored root (the current directory; --root not given)".to_string(),
    };
    let root = std::fs::canonicalize(arg.unwrap_or(Path::new(".")))
        .map_err(|e| usage(format!("{shown}: {e}")))?;
    if !root.is_dir() {
        return Err(usage(format!(
            "{shown}: {} is not a directory",
            root.display()
        )));
    }
    if root == Path::new("/") {
        return Err(usage(format!(
            "{shown} is / (the whole system): precise recording mounts its monitor over the root, and a FUSE mount stacked on / would leave nothing it could monitor; give a narrower --root, or record in snapshot mode with -m/--materials and -p/--products"
        )));
    }
    Ok(root)
}

/// Says so when the metadata directory was moved or replaced while the
/// command ran: the outputs went to the directory that was opened.
fn warn_if_moved(dir: &OutputDir) {
    if let Some(now) = dir.moved_to() {
        eprintln!(
            "tracelink: warning: the metadata directory {} was moved or replaced while the command ran; the outputs are written to the directory opened before the run, now at {}",
            dir.path().display(),
            now.display()
        );
    }
}

fn record_start(args: cli::RecordStartArgs) -> anyhow::Result<i32> {
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
    check_step_name(&args.signing.step_name)?;
    let algs = hash_algorithms(&args.artifacts)?;
    let opts = snapshot_options(&args.artifacts)?;
    // The preliminary link goes to the current directory, as in-toto-record's.
    let out_dir = output_dir(Path::new("."))?;
    let signer = Signer::load(&args.signing)?;
    let materials = record_artifacts(
        &args.materials,
        &opts,
        &algs,
        None,
        "materials",
        &interrupts,
    )?;
    let link = Link {
        name: args.signing.step_name.clone(),
        materials: artifact_map(materials.iter().map(|(n, h)| (n, &h.digests))),
        ..Link::default()
    };
    let name = link::unfinished_file_name(&link.name, &signer.keyid);
    signer.write(link, &out_dir, &name, &interrupts)?;
    Ok(interrupted(&interrupts).unwrap_or(0))
}

fn record_stop(args: cli::RecordStopArgs) -> anyhow::Result<i32> {
    let interrupts = Interrupts::install().context("cannot set up signal handling")?;
    check_step_name(&args.signing.step_name)?;
    let algs = hash_algorithms(&args.artifacts)?;
    let opts = snapshot_options(&args.artifacts)?;
    let out_dir = output_dir(&args.metadata_directory)?;
    let signer = Signer::load(&args.signing)?;
    let unfinished = Path::new(".").join(link::unfinished_file_name(
        &args.signing.step_name,
        &signer.keyid,
    ));
    if !unfinished.exists() {
        bail!(
            "no preliminary link {} for step {:?} signed by key {}: run `tracelink record start` first (with the same key and --keyid-format)",
            unfinished.display(),
            args.signing.step_name,
            signer.keyid
        );
    }
    let (mut link, _) = link::read_verified(&unfinished, &signer.key.public(), &signer.keyid)
        .context("the preliminary link cannot be trusted")?;
    if link.name != args.signing.step_name {
        bail!(
            "{} records step {:?}, not {:?}",
            unfinished.display(),
            link.name,
            args.signing.step_name
        );
    }
    let products = record_artifacts(&args.products, &opts, &algs, None, "products", &interrupts)?;
    link.products = artifact_map(products.iter().map(|(n, h)| (n, &h.digests)));
    let name = link::file_name(&link.name, &signer.keyid);
    // No statements (record has no --attest); an earlier run's are removed.
    attest::write(&signer, link, None, &out_dir, &name, &interrupts)?;
    if let Some(code) = interrupted(&interrupts) {
        return Ok(code);
    }
    std::fs::remove_file(&unfinished)
        .with_context(|| format!("cannot remove {}", unfinished.display()))?;
    Ok(0)
}

fn mount_run(args: cli::MountRunArgs) -> anyhow::Result<i32> {
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("--root {}", args.root.display()))?;
    let spec = session::SessionSpec {
        root,
        cwd: std::env::current_dir()?,
        argv: args.command,
        ttl: Duration::from_millis(args.ttl_ms),
        passthrough: !args.no_passthrough,
        threads: tracelink::hash::default_threads(),
        ptrace: false,
        timeout: None,
        mount_at: None,
        env: None,
        isolate: false,
        protect: None,
        reopen: Vec::new(),
    };
    let outcome = session::run(
        &spec,
        std::sync::Arc::new(tracelink::record::fs::NoObserver),
        session::SessionIo {
            stdout: None,
            stderr: None,
            on_spawn: &|_| {},
        },
    )?;
    let status = outcome.status;
    eprintln!(
        "tracelink: served through FUSE {}",
        if outcome.passthrough {
            "with passthrough"
        } else {
            "without passthrough"
        }
    );
    for (pid, name) in &status.stragglers {
        eprintln!(
            "tracelink: straggler still running when the command ended, killed: pid {pid} ({name})"
        );
    }
    if let Some((_, msg)) = &status.spawn_error {
        bail!("cannot run the command: {msg}");
    }
    Ok(match (status.code, status.signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_FAILURE,
    })
}

fn keygen(args: cli::KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = PrivateKey::generate()?;
    let mut public_path = args.file.clone().into_os_string();
    public_path.push(".pub");
    let public_path = std::path::PathBuf::from(public_path);
    let write = |path: &Path, mode: u32, bytes: &[u8]| -> anyhow::Result<()> {
        let mut options = std::fs::File::options();
        options.write(true).mode(mode);
        if args.force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(path).with_context(|| {
            if path.exists() && !args.force {
                format!("{} exists (pass --force to replace it)", path.display())
            } else {
                format!("cannot create {}", path.display())
            }
        })?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    for path in [&args.file, &public_path] {
        if path.exists() && !args.force {
            bail!("{} exists (pass --force to replace it)", path.display());
        }
    }
    write(&args.file, 0o600, key.to_pkcs8_pem().as_bytes())?;
    // An existing file keeps its mode through create/truncate: make sure it is private.
    std::fs::set_permissions(
        &args.file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    write(&public_path, 0o644, key.public().to_spki_pem().as_bytes())?;
    println!("{}", key.keyid(keyid_format(args.keyid_format)));
    Ok(())
}

/// The signing key with the keyid it signs under.
struct Signer {
    key: PrivateKey,
    keyid: String,
    wrapper: Wrapper,
    /// The file the key was read from.
    file: KeyFile,
}

impl Signer {
    fn load(args: &cli::SigningArgs) -> anyhow::Result<Signer> {
        Signer::from_key_file(
            &args.signing_key,
            args.password.as_deref(),
            args.keyid_format,
            args.use_dsse,
        )
    }

    /// Loads a private key (prompting for its password when it is
    /// encrypted and none was given), warning if others can read the file.
    fn from_key_file(
        path: &Path,
        password: Option<&str>,
        keyid_format_arg: Option<KeyIdFormatArg>,
        use_dsse: bool,
    ) -> anyhow::Result<Signer> {
        let prompt = || {
            rpassword::prompt_password(format!("Password for {}: ", path.display()))
                .map(zeroize::Zeroizing::new)
                .map_err(|source| KeyError::Prompt {
                    path: path.into(),
                    source,
                })
        };
        // The file is read once (it may be a pipe); a bare -P prompts only
        // for a key that is encrypted.
        let (key, file) = PrivateKey::load_file_with(path, |file| match password {
            Some("") if file.encrypted => prompt().map(Some),
            Some("") => Ok(None),
            Some(password) => Ok(Some(zeroize::Zeroizing::new(password.to_string()))),
            None if file.encrypted && std::io::stdin().is_terminal() => prompt().map(Some),
            None => Ok(None),
        })?;
        if password.is_some() && !file.encrypted {
            eprintln!(
                "tracelink: warning: -P/--password was given, but the key {} is not encrypted: the password is not used",
                path.display()
            );
        }
        if file.regular && file.mode & 0o077 != 0 {
            eprintln!(
                "tracelink: warning: private key {} can be accessed by other users (mode {:04o}); `chmod 600` it",
                path.display(),
                file.mode & 0o777
            );
        }
        let format = keyid_format_arg
            .map(keyid_format)
            .unwrap_or_else(|| key.default_keyid_format());
        Ok(Signer {
            keyid: key.keyid(format),
            key,
            wrapper: if use_dsse {
                Wrapper::Dsse
            } else {
                Wrapper::Classic
            },
            file,
        })
    }

    /// The key file as precise recording must keep it from the recorded
    /// tree (docs/threat-model.md: by identity under the root, covered outside it),
    /// warning when it has other names than the one we know.
    fn protected(&self) -> Option<session::Protected> {
        if !self.file.regular {
            // A pipe (`-k <(...)`) was consumed when we read it.
            return None;
        }
        if self.file.nlink > 1 {
            eprintln!(
                "tracelink: warning: private key {} has {} hard links: the recorded command is kept from this file by its identity under the root and by its path outside it, but another name outside the root can still reach it; give the key a single name",
                self.file.path.display(),
                self.file.nlink
            );
        }
        Some(session::Protected {
            path: self.file.path.clone(),
            node: self.file.node,
        })
    }

    /// Signs `link` (checking the signature) and writes it atomically to `dir/name`,
    /// unless a stop signal arrived meanwhile.
    fn write(
        &self,
        link: Link,
        dir: &OutputDir,
        name: &str,
        interrupts: &Interrupts,
    ) -> anyhow::Result<()> {
        let (materials, products) = (link.materials.len(), link.products.len());
        let bytes = link::sign(link, &self.key, &self.keyid, self.wrapper)?;
        if interrupts.received().is_some() {
            return Ok(());
        }
        let path = dir.write_atomically(name, &bytes)?;
        eprintln!(
            "tracelink: wrote {} ({materials} materials, {products} products)",
            path.display(),
        );
        Ok(())
    }
}

fn keyid_format(arg: KeyIdFormatArg) -> KeyIdFormat {
    match arg {
        KeyIdFormatArg::Python => KeyIdFormat::Python,
        KeyIdFormatArg::Legacy => KeyIdFormat::Legacy,
    }
}

fn snapshot_options(args: &cli::ArtifactArgs) -> anyhow::Result<snapshot::Options> {
    let excludes = excludes(args)?;
    if let Some(base) = &args.base_path
        && !base.is_dir()
    {
        return Err(usage(format!(
            "--base-path {}: not a directory",
            base.display()
        )));
    }
    Ok(snapshot::Options {
        base_path: args.base_path.clone(),
        excludes,
        lstrip: args.lstrip_paths.clone(),
    })
}

/// The step name checked before anything runs (`tracelink::stepname`):
/// a name no file could take is a command-line error, exit 2.
fn check_step_name(step: &str) -> anyhow::Result<()> {
    tracelink::stepname::check(step).map_err(usage)
}

/// `--hash`, parsed before anything runs (exit 2 when unknown).
fn hash_algorithms(args: &cli::ArtifactArgs) -> anyhow::Result<Vec<Algorithm>> {
    Algorithm::parse_list(&args.hash).map_err(|e| usage(format!("--hash: {e}")))
}

/// Opens the metadata directory, once: outputs are created beneath this
/// descriptor. A directory that is missing, not a directory, or in which
/// no file can be created is a command-line error (exit 2), found before
/// the command runs.
fn output_dir(dir: &Path) -> anyhow::Result<OutputDir> {
    if !dir.is_dir() {
        return Err(usage(format!(
            "metadata directory {} does not exist or is not a directory",
            dir.display()
        )));
    }
    // access(W_OK) is no proof: for root it only looks at a read-only
    // mount, not at what the filesystem or its server refuses (NFS with
    // root squashing, FUSE). Creating a file is: an unnamed one
    // (O_TMPFILE, or a created and at once removed name where the
    // filesystem lacks it), closed again here.
    if let Err(e) = tempfile::tempfile_in(dir) {
        return Err(usage(format!(
            "metadata directory {} is not writable: a file cannot be created in it ({e}); give a writable directory with -d/--metadata-directory",
            dir.display()
        )));
    }
    Ok(OutputDir::open(dir)?)
}

fn record_artifacts(
    paths: &[String],
    opts: &snapshot::Options,
    algs: &[Algorithm],
    reuse: Option<&Recorded>,
    what: &'static str,
    interrupts: &Interrupts,
) -> anyhow::Result<Recorded> {
    let mut progress = HashProgress::new(what);
    let recorded = snapshot::record(paths, opts, algs, reuse, &mut |p| {
        progress.update(p);
        interrupts.received().is_none()
    });
    match recorded {
        Err(snapshot::SnapshotError::Hash(tracelink::hash::HashError::Interrupted)) => {
            Ok(Recorded::new())
        }
        other => other.with_context(|| format!("cannot record {what}")),
    }
}

/// The link's view of recorded artifacts: name -> {algorithm name: hex}.
fn artifact_map<'a>(
    recorded: impl Iterator<Item = (&'a String, &'a Vec<(Algorithm, String)>)>,
) -> ArtifactMap {
    recorded
        .map(|(name, digests)| {
            let digests: DigestSet = digests
                .iter()
                .map(|(alg, hex)| (alg.name().to_string(), hex.clone()))
                .collect();
            (name.clone(), digests)
        })
        .collect()
}

/// `--exclude` patterns, or in-toto-run's defaults (a malformed pattern is
/// a command-line error, exit 2).
fn excludes(args: &cli::ArtifactArgs) -> anyhow::Result<ExcludeSet> {
    Ok(match &args.exclude {
        Some(patterns) => {
            ExcludeSet::new(patterns).map_err(|e| usage(format!("--exclude: {e}")))?
        }
        None => ExcludeSet::defaults(),
    })
}

/// The exit status for a stop signal, after saying that no link was written.
fn interrupted(interrupts: &Interrupts) -> Option<i32> {
    let sig = interrupts.received()?;
    eprintln!("tracelink: interrupted by signal {sig}; no link was written");
    Some(128 + sig)
}

/// With TRACELINK_TIMINGS set, says on stderr how long a phase took.
fn timing(phase: &str, since: std::time::Instant) {
    if std::env::var_os("TRACELINK_TIMINGS").is_some() {
        eprintln!(
            "tracelink: timing: {phase}: {:.3} s",
            since.elapsed().as_secs_f64()
        );
    }
}
