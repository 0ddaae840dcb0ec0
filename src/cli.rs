//! The command line: clap definitions only. What the flags do lives in `app`.

use clap::{
    ArgMatches, Args, Command, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};
use std::path::PathBuf;
use std::sync::LazyLock;
use tracelink::hash::Algorithm;
use tracelink::keys::KeyType;

/// The command line. `C` is the set of subcommands: [`Commands`] when
/// parsing, [`Documented`] for completions and man pages (the same command
/// line without the internal subcommands).
#[derive(Debug, Parser)]
#[command(
    name = "tracelink",
    version,
    long_version = LONG_VERSION.as_str(),
    about = "Record software supply chain steps as signed in-toto link metadata",
    long_about = "Record software supply chain steps as signed in-toto link metadata.\n\n\
        tracelink runs a functionary's command and writes the in-toto link that \
        in-toto's verifiers (in-toto-verify, in-toto-golang) check against a layout: \
        the command, the files it consumed (materials) and produced (products) with \
        their digests, signed with the functionary's key.",
    after_help = "Exit status of `run` and `record`: the command's own status (128+S when \
        killed by signal S); 124 when --run-timeout killed it; 126/127 when it cannot be \
        executed / is not found; 130/143 when tracelink was interrupted (no link is \
        written); 125 when tracelink itself fails (bad key, unreadable file, ...); 2 for \
        command-line errors."
)]
pub struct Cli<C: Subcommand = Commands> {
    #[command(subcommand)]
    pub command: C,
}

/// What `--version` prints after the name (`-V` prints the version only):
/// the version and what this build supports, from the library's own lists.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let digests: Vec<&str> = ALGORITHMS.iter().map(|a| a.name()).collect();
    let schemes: Vec<&str> = KEY_TYPES.iter().map(|k| k.scheme()).collect();
    format!(
        "{version}\n\
        \n\
        features:\n\
        \x20 FUSE passthrough: {FUSE_PASSTHROUGH}\n\
        \x20 digest algorithms: {digests} (--hash)\n\
        \x20 signature schemes: {schemes}\n\
        \x20 link formats: classic signed JSON, DSSE envelope (--use-dsse)\n\
        \x20 attestations: in-toto Statement v1 with the link, SLSA Provenance v1 and runtime trace predicates (--attest), SLSA Verification Summary v1 (verify --vsa)",
        version = env!("CARGO_PKG_VERSION"),
        digests = digests.join(", "),
        schemes = schemes.join(", "),
    )
});

/// FUSE passthrough (reads and writes of the monitored tree go straight to
/// the backing files) is part of every build: fuser 0.18 has it without a
/// cargo feature, and `record::fs` asks for it. Whether a run gets it is
/// decided at run time by the kernel.
const FUSE_PASSTHROUGH: &str = "compiled in (used where the kernel allows: Linux >= 6.9, as root)";

/// Every digest algorithm of [`Algorithm`]. A new variant fails to compile
/// in the match below until it is listed here too.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Blake3];
const _: () = {
    const fn listed(alg: Algorithm) {
        match alg {
            Algorithm::Sha256 | Algorithm::Blake3 => {}
        }
    }
    listed(ALGORITHMS[0]);
};

/// Every key type of [`KeyType`], one signature scheme each. A new variant
/// fails to compile in the match below until it is listed here too.
const KEY_TYPES: [KeyType; 3] = [KeyType::Ed25519, KeyType::Rsa, KeyType::Ecdsa];
const _: () = {
    const fn listed(key: KeyType) {
        match key {
            KeyType::Ed25519 | KeyType::Rsa | KeyType::Ecdsa => {}
        }
    }
    listed(KEY_TYPES[0]);
};

/// The command line as completions and man pages show it: [`Cli`] with the
/// subcommands of [`Commands`] that are not hidden (clap_mangen leaves
/// hidden subcommands out by itself, clap_complete does not).
pub fn documented() -> Command {
    Cli::<Documented>::command()
}

/// The visible subcommands of [`Commands`]: only for building [`documented`],
/// never parsed (it has no values).
#[derive(Debug)]
pub enum Documented {}

impl FromArgMatches for Documented {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidSubcommand,
            "the documented command line is not for parsing",
        ))
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl Subcommand for Documented {
    fn augment_subcommands(cmd: Command) -> Command {
        let all = Commands::augment_subcommands(Command::new("all"));
        cmd.subcommands(all.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        Self::augment_subcommands(Command::new("all"))
            .find_subcommand(name)
            .is_some()
    }
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run a command and record it as a signed link
    #[command(long_about = "Run a command and record it as a signed link \
        (<step>.<keyid8>.link in the metadata directory).\n\n\
        Snapshot mode (-m/--materials, -p/--products): everything under the given \
        paths is hashed before and after the command, exactly as in-toto-run 3.1.0 \
        does it (same paths, excludes, symlink rules and digests), in parallel on \
        all cores. A material's digest is reused for the product pass only when the \
        file's device, inode, size, mtime and ctime are all unchanged and it was last \
        changed more than a second before it was hashed (--rehash reads everything \
        again).\n\n\
        Precise mode (no -m/-p, the default): the command runs with --root served \
        through a monitored FUSE mount in private mount and PID namespaces; \
        materials are the files under the root it read, changed or removed (with \
        their content from before the run), products the files it created or \
        changed. The runtime trace is written beside the link \
        (<step>.<keyid8>.link.trace.json.gz) and its digest is signed in \
        environment.tracelink. A run whose monitoring is incomplete (a process \
        still running when the command ended, a file that could not be hashed, a \
        name that is not UTF-8) is not signed unless --allow-incomplete. The trace \
        is published with the link, so the environment's secrets are replaced by \
        markers wherever they appear in it (--redact-env, --keep-env); the link's own \
        command and -s output are the user's and are not redacted. Needs \
        /dev/fuse; without root also unprivileged user namespaces.")]
    Run(RunArgs),
    /// Record a step in two parts, for work that cannot be wrapped in one command
    #[command(subcommand)]
    Record(RecordCommand),
    /// Generate an ed25519 key pair: FILE (PKCS#8 PEM, mode 0600) and FILE.pub
    Keygen(KeygenArgs),
    /// Verify a supply chain's links against a signed in-toto layout
    #[command(
        long_about = "Verify a supply chain's links against a signed in-toto layout, \
        with the verdicts of in-toto 3.1.0's in-toto-verify.\n\n\
        Checks, in this order: every --verification-keys key signed the layout; the \
        layout has not expired; each step has links (<step>.<keyid8>.link in --link-dir) \
        signed by `threshold` distinct authorized functionaries, agreeing on their \
        artifacts; sublayouts, recursively; every step's artifact rules; then each \
        inspection is run in the current directory and its rules are applied.\n\n\
        A link attestation (<step>.<keyid8>.link.attest-link.json: an in-toto \
        Statement v1 with the link predicate, in a DSSE envelope) stands in for a \
        missing link of the same step and key and counts exactly as that link would \
        (signed by the step's authorized functionary, towards its threshold); the \
        report marks it. Beside a link it must say the same (name, command, materials, \
        products, byproducts, environment) and verify with the same key, or \
        verification fails naming both files.\n\n\
        With --vsa FILE --signing-key KEY a passed verification writes a signed SLSA \
        Verification Summary v1 to FILE (atomically, after checking its signature): \
        subject the products of the layout's last steps (those no other step or \
        inspection consumes), policy the layout file's name and sha256, \
        inputAttestations every counted link file with its sha256, verifiedLevels \
        SLSA_BUILD_LEVEL_1. A failed verification writes nothing and leaves an \
        existing FILE alone. See docs/attestations.md.\n\n\
        Exit status: 0 verified, 1 not verified (malformed layouts and links included) \
        or the verification summary could not be written, 2 command-line errors."
    )]
    Verify(VerifyArgs),
    /// Add a signature to an in-toto layout or link, or check its signatures
    Sign(SignArgs),
    /// Layout tooling: draft a layout from recorded links
    #[command(subcommand)]
    Layout(LayoutCommand),
    /// Show a recorded step: a summary for a person (--files, --tree, --process
    /// for the details), or all of it as JSON
    #[command(after_help = "Exit status: 0 shown; 1 a given key did not verify the \
        signature, or the trace is missing, malformed or does not match the digest signed \
        in the link (its content is then not shown); 2 the link or a key file cannot be read.")]
    Show(ShowArgs),
    /// Compare two links (and their traces) of the same step
    #[command(
        after_help = "Exit status: 0 when name, command, materials, products and \
        return-value are equal, 1 when they differ, 2 on errors."
    )]
    Diff(DiffArgs),
    /// Replay a precisely recorded step and report whether it produces the same bytes
    #[command(
        long_about = "Replay a precisely recorded step and report whether it \
        produces the same bytes.\n\n\
        Links and traces may be crafted: the link's signature (classic or DSSE) is \
        checked first and must verify with one of the --verification-keys (the \
        functionary's public key); --unverified replays it unchecked, and the report's \
        first line says so. One of the two is required. Every path the link and trace \
        name is checked, and the rerun writes only beneath its work directory, \
        following no symlink there.\n\n\
        A fresh work directory (--workdir, default a new temporary one) gets exactly the \
        recorded materials with their modes, from the store (--store, default the one \
        the trace names) or from the original root, each checked against its recorded \
        digest. It is mounted at the original root's path in the rerun's own namespace \
        (so absolute paths match), the recorded environment is restored (values the \
        trace redacted come from the current environment), and the recorded command runs \
        from the recorded directory under precise recording. The report says for every \
        product: identical, different (with the first differing byte and, for text, a \
        short diff; diffoscope's report when it is installed), missing or extra; and \
        inputs the rerun read that the recording does not list (hidden inputs), probes \
        whose answer changed and process-tree differences. The rerun's own link and \
        trace go into WORKDIR/metadata.",
        after_help = "Exit status: 0 every product identical, 1 some differ, 2 cannot rerun \
        (the reason is named)."
    )]
    Rerun(RerunArgs),
    /// Print a completion script for a shell
    #[command(after_help = "The script goes to stdout. Where it goes:\n  \
        bash        /usr/share/bash-completion/completions/tracelink\n  \
        zsh         /usr/share/zsh/vendor-completions/_tracelink\n  \
        fish        /usr/share/fish/vendor_completions.d/tracelink.fish\n  \
        elvish      in rc.elv: eval (tracelink completions elvish | slurp)\n  \
        powershell  in $PROFILE: tracelink completions powershell | Out-String | Invoke-Expression")]
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory
    #[command(long_about = "Print the man page tracelink(1) in roff, or write one \
        page per subcommand into a directory.\n\n\
        Without --dir, tracelink.1 goes to stdout: the command, its options and a \
        SUBCOMMANDS section naming each subcommand's page (`tracelink man | man -l -` \
        reads it). With --dir DIR, the pages a package installs (into \
        /usr/share/man/man1) are written there: tracelink.1 and one page per \
        subcommand, tracelink-run.1, tracelink-record.1, tracelink-record-start.1, \
        tracelink-record-stop.1, ..., tracelink-man.1; their names are printed.")]
    Man(ManArgs),
    /// Internal: the namespace helper of precise recording
    #[command(name = "__sandbox", hide = true)]
    Sandbox(SandboxArgs),
    /// Internal: run a command with the root served through the monitored
    /// FUSE mount, recording nothing (for testing the mount itself)
    #[command(name = "__mount-run", hide = true)]
    MountRun(MountRunArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tracelink.1 and a page per subcommand (tracelink-run.1, ...) into
    /// DIR (made if missing) instead of printing tracelink.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[arg(long)]
    pub fuse_sock: i32,
    #[arg(long)]
    pub status_fd: i32,
    #[arg(long)]
    pub root: PathBuf,
    #[arg(long)]
    pub cwd: PathBuf,
    #[arg(long, action = clap::ArgAction::Set)]
    pub ptrace: bool,
    #[arg(long, action = clap::ArgAction::Set)]
    pub isolate: bool,
    #[arg(long)]
    pub hide: Option<PathBuf>,
    #[arg(long)]
    pub backing: Option<PathBuf>,
    #[arg(long, value_parser = clap::value_parser!(std::ffi::OsString))]
    pub reopen: Vec<std::ffi::OsString>,
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct MountRunArgs {
    /// The tree to serve (default: the current directory)
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Attribute and entry cache timeout in milliseconds
    #[arg(long, default_value = "1000")]
    pub ttl_ms: u64,
    /// Do not use FUSE passthrough
    #[arg(long)]
    pub no_passthrough: bool,
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Hash the materials and write a signed preliminary link
    /// (.<step>.<keyid8>.link-unfinished in the current directory)
    Start(RecordStartArgs),
    /// Hash the products, finish the preliminary link and write <step>.<keyid8>.link
    Stop(RecordStopArgs),
}

/// Options every recording subcommand shares.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// Step name; the link is written to <NAME>.<keyid prefix>.link
    #[arg(short = 'n', long = "step-name", value_name = "NAME")]
    pub step_name: String,

    /// Private key: PKCS#8 PEM (as `openssl genpkey` or `tracelink keygen` writes
    /// it; encrypted PKCS#8 with -P) or traditional RSA/EC PEM, for ed25519, RSA
    /// (rsassa-pss-sha256) and ECDSA P-256; or a legacy securesystemslib JSON
    /// ed25519 key
    #[arg(short = 'k', long = "signing-key", value_name = "FILE")]
    pub signing_key: PathBuf,

    /// Password of an encrypted signing key; -P alone prompts for it
    #[arg(short = 'P', long = "password", value_name = "PASSWORD", num_args = 0..=1,
          default_missing_value = "", hide_default_value = true)]
    pub password: Option<String>,

    /// Keyid convention: `python` (in-toto 3.x) or `legacy` (in-toto-golang, old JSON
    /// keys). Default: legacy for a legacy JSON key, python otherwise. A layout must
    /// list the keyid the link carries
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub keyid_format: Option<KeyIdFormatArg>,

    /// Write a DSSE envelope instead of the classic signed link (same file name)
    #[arg(long)]
    pub use_dsse: bool,
}

/// Options that choose and name artifacts, as in-toto-run has them.
#[derive(Debug, Args)]
pub struct ArtifactArgs {
    /// Gitignore-style patterns of paths not to record. Replaces the defaults
    /// `*.link*`, `.git`, `*.pyc`, `*~` (those of in-toto-run)
    #[arg(long, value_name = "PATTERN", num_args = 1..)]
    pub exclude: Option<Vec<String>>,

    /// Look up -m/-p paths relative to DIR; recorded names do not include it
    #[arg(long, value_name = "DIR")]
    pub base_path: Option<PathBuf>,

    /// Remove the first matching prefix from recorded artifact names
    #[arg(long, value_name = "PREFIX", num_args = 1..)]
    pub lstrip_paths: Vec<String>,

    /// Digest algorithms, comma-separated: sha256 (default), blake3. Verifiers compare
    /// whole digest sets, so use the same choice in every step of a supply chain
    #[arg(long = "hash", value_name = "ALGS", default_value = "sha256")]
    pub hash: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Snapshot mode: hash everything under these paths before the command
    #[arg(short = 'm', long = "materials", value_name = "PATH", num_args = 1..)]
    pub materials: Vec<String>,

    /// Snapshot mode: hash everything under these paths after the command
    #[arg(short = 'p', long = "products", value_name = "PATH", num_args = 1..)]
    pub products: Vec<String>,

    /// Record without running a command (a sign-off or checkout step, e.g. `-x -p .`)
    #[arg(short = 'x', long = "no-command")]
    pub no_command: bool,

    #[command(flatten)]
    pub artifacts: ArtifactArgs,

    /// Directory to write the link to
    #[arg(
        short = 'd',
        long = "metadata-directory",
        value_name = "DIR",
        default_value = "."
    )]
    pub metadata_directory: PathBuf,

    /// Capture the command's stdout and stderr into the link while still showing
    /// them. Bytes that are not UTF-8 become U+FFFD; line endings are kept. The
    /// captured output is the user's and is NOT redacted: a secret the command
    /// prints ends up in the link
    #[arg(short = 's', long = "record-streams")]
    pub record_streams: bool,

    /// Kill the command after SECS seconds (exit 124, no link). Unlike in-toto-run,
    /// which kills after 10 s by default, there is no timeout unless given
    #[arg(long, value_name = "SECS")]
    pub run_timeout: Option<u64>,

    /// Hash every product again instead of reusing unchanged materials' digests
    #[arg(long)]
    pub rehash: bool,

    /// Precise mode: the monitored tree (default: the current directory).
    /// Artifact paths are relative to it; the command still starts in the
    /// current directory
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Precise mode: do not follow the process tree with ptrace, for commands
    /// that use ptrace themselves (gdb, strace, sanitizers). The trace then
    /// has no process tree; files are still attributed to the processes that
    /// touched them
    #[arg(long)]
    pub no_ptrace: bool,

    /// Precise mode: keep a copy of every material (as it was before the run)
    /// and every product in DIR, named by sha256 and kept once, so that
    /// `tracelink rerun` can rebuild the step's inputs after the tree moved on
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Precise mode: sign the link even if the monitoring was incomplete
    /// (marked incomplete in environment.tracelink)
    #[arg(long)]
    pub allow_incomplete: bool,

    /// Precise mode: keep the recorded command from processes outside its
    /// tree that it could reach through sockets. The tree gets its own
    /// network namespace with loopback only (no network, no abstract sockets
    /// of the host) and empty tmpfs over /run, /var/run, /tmp/.X11-unix and
    /// $XDG_RUNTIME_DIR. Pathname sockets elsewhere remain reachable
    #[arg(long)]
    pub isolate: bool,

    /// Precise mode: also treat variable NAME as a secret in the runtime trace
    /// (repeatable). The trace is published beside the link, so secrets in it
    /// are replaced by `<redacted:NAME>` wherever they appear (environment,
    /// every process's argv, paths): variables whose name has a component such
    /// as TOKEN, SECRET, PASSWORD, KEY, AUTH, PAT, JWT, values that look secret
    /// (URL passwords, ghp_/glpat-/xoxb-/AKIA tokens, JWTs, PEM private keys),
    /// and these. The link's own `command` and -s output are never redacted.
    /// See docs/secrets.md
    #[arg(long = "redact-env", value_name = "NAME")]
    pub redact_env: Vec<String>,

    /// Precise mode: publish variable NAME's value in the runtime trace as it
    /// is, although its name or value looks secret (repeatable). Another
    /// variable's secret inside it is still redacted. A NAME may not be given
    /// to both --keep-env and --redact-env
    #[arg(long = "keep-env", value_name = "NAME")]
    pub keep_env: Vec<String>,

    /// Also write in-toto Statement v1 attestations beside the link, each a
    /// DSSE envelope signed with the link's key and keyid: `<link>.attest-link.json`
    /// (in-toto link predicate), `<link>.attest-provenance.json` (SLSA
    /// Provenance v1) and, in precise mode, `<link>.attest-runtime-trace.json`
    /// (runtime trace predicate). Their subjects are the step's products: a
    /// step without products gets no statements (a warning says so; the link
    /// is still written). Snapshot mode (-m/-p, -x) writes the link and
    /// provenance statements only. See docs/attestations.md
    #[arg(long)]
    pub attest: bool,

    /// The command and its arguments, after `--`
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RecordStartArgs {
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Hash everything under these paths as materials
    #[arg(short = 'm', long = "materials", value_name = "PATH", num_args = 1..)]
    pub materials: Vec<String>,

    #[command(flatten)]
    pub artifacts: ArtifactArgs,
}

#[derive(Debug, Args)]
pub struct RecordStopArgs {
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Hash everything under these paths as products
    #[arg(short = 'p', long = "products", value_name = "PATH", num_args = 1..)]
    pub products: Vec<String>,

    #[command(flatten)]
    pub artifacts: ArtifactArgs,

    /// Directory to write the link to
    #[arg(
        short = 'd',
        long = "metadata-directory",
        value_name = "DIR",
        default_value = "."
    )]
    pub metadata_directory: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key; the public key goes to FILE.pub
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Which keyid to print
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "python")]
    pub keyid_format: KeyIdFormatArg,

    /// Replace existing key files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyIdFormatArg {
    Python,
    Legacy,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The root layout (classic signed JSON or DSSE envelope)
    #[arg(short = 'l', long, value_name = "FILE")]
    pub layout: PathBuf,

    /// Public keys (SPKI PEM: ed25519, RSA, ECDSA P-256) of the layout's owners;
    /// each must have signed the layout
    #[arg(long = "verification-keys", visible_alias = "layout-key", alias = "layout-keys",
          value_name = "PUB", num_args = 1.., required = true)]
    pub verification_keys: Vec<PathBuf>,

    /// Directory holding the links (<step>.<keyid8>.link) and sublayout directories
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub link_dir: PathBuf,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Record inspections precisely (what the command touched) instead of as
    /// in-toto-verify does (a snapshot of the whole current directory)
    #[arg(long)]
    pub precise_inspections: bool,

    /// Kill an inspection command after SECS seconds (in-toto-verify's default is 10)
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub inspection_timeout: u64,

    /// After a successful verification, write a signed SLSA Verification
    /// Summary v1 (a DSSE envelope holding an in-toto Statement v1) to FILE;
    /// nothing is written when verification fails. Needs --signing-key
    #[arg(long, value_name = "FILE", requires = "signing_key")]
    pub vsa: Option<PathBuf>,

    /// Private key that signs the --vsa summary (the formats `run -k` takes,
    /// unencrypted; the keyid convention `sign` defaults to for it)
    #[arg(long, value_name = "KEY", requires = "vsa")]
    pub signing_key: Option<PathBuf>,

    /// The summary's resourceUri: the artifact as the verifier was asked about
    /// it (default: `file:` and the first subject's name, percent-encoded)
    #[arg(long, value_name = "URI", requires = "vsa")]
    pub vsa_resource_uri: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
A layout is written in place (or to -o), its signatures replaced unless \
--append. A link takes exactly one key and is written to \
<step>.<keyid8>.link in the current directory (or to -o), as in-toto-sign \
does. The file keeps its form (classic {signatures, signed} or DSSE \
envelope) and is laid out as in-toto writes it; every new signature is \
checked before the file is written, atomically.

Examples:
  tracelink sign root.layout -k alice.pem bob.pem
  tracelink sign root.layout -a -k carol.pem -o root.signed.layout
  tracelink sign unsigned.link -k build.pem
  tracelink sign root.layout --verify --verification-keys alice.pub bob.pub

Exit status: 0 signed, or every key verified; 1 the file is not in-toto \
metadata, a signature does not verify, or the result cannot be written; \
2 usage errors (flags, unusable key files, several keys or --append for a \
link).")]
pub struct SignArgs {
    /// The layout or link to sign or check (classic or DSSE)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Private keys to sign with: PKCS#8 PEM (also encrypted) or traditional
    /// RSA/EC PEM; ed25519, RSA (rsassa-pss-sha256), ECDSA P-256. A link
    /// takes exactly one. Give FILE first, or end the list with --
    #[arg(short = 'k', long = "signing-key", value_name = "KEY", num_args = 1..,
          required_unless_present = "verify", conflicts_with = "verify")]
    pub signing_keys: Vec<PathBuf>,

    /// Password of encrypted signing keys (one for all); -P alone prompts for it
    #[arg(short = 'P', long = "password", value_name = "PASSWORD", num_args = 0..=1,
          default_missing_value = "", hide_default_value = true)]
    pub password: Option<String>,

    /// Keep the existing signatures and add ours (layouts only; the default
    /// replaces them). A key that signed before gets its signature replaced
    #[arg(short = 'a', long, conflicts_with = "verify")]
    pub append: bool,

    /// Where to write the signed file (default: a layout in place, a link as
    /// <step>.<keyid8>.link in the current directory)
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "verify")]
    pub output: Option<PathBuf>,

    /// Keyid convention for the new signatures (default: python, legacy for a
    /// legacy JSON key)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub keyid_format: Option<KeyIdFormatArg>,

    /// Check the file's signatures instead of signing: every key given must
    /// have a valid signature on it (found by its keyid in either convention)
    #[arg(long, requires = "verification_keys")]
    pub verify: bool,

    /// Public keys (SPKI PEM) for --verify
    #[arg(long = "verification-keys", value_name = "PUB", num_args = 1.., requires = "verify")]
    pub verification_keys: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Draft an (unsigned) layout from recorded links, for the owner to review,
    /// edit and sign
    #[command(
        long_about = "Draft an (unsigned) layout from recorded links, for the \
        owner to review, edit and sign.\n\n\
        Every material is MATCHed WITH PRODUCTS FROM the step that last produced it, \
        products are CREATEd (new files) or MODIFYd, and each list ends in DISALLOW *; \
        no DELETE rules (a precise link cannot tell a removed material from one only \
        read). Materials no recorded step produced come from a suggested checkout step, \
        whose tracelink run -x -p command is printed.\n\n\
        Files are grouped into patterns where it is safe, so that the layout lasts \
        (one more source file next week still verifies): a group of at least two files \
        gets, of `dir/*` (fnmatch's `*` matches `/` too: the whole tree under dir), \
        `*.ext` (that extension at any depth), `dir/*.ext` and `*/name`, the one \
        covering the most files (for a step that reads nothing, like a checkout, the \
        broadest, directories first) such that every recorded path the pattern matches \
        fits it. CREATE P: no path P matches \
        was produced by an earlier step. MATCH P FROM T: every path P matches was \
        produced by T and by no step between T and this one, and every material of \
        this step it matches comes from T. The suggested checkout then records whole \
        directories. A generalized draft catches the same tampering as an exact one \
        except an extra file inside a generalized pattern (an unexpected new object \
        under CREATE *.o, say); --exact drafts one rule per file and catches that \
        too."
    )]
    Draft(LayoutDraftArgs),
}

#[derive(Debug, Args)]
pub struct LayoutDraftArgs {
    /// Directory holding the recorded links
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub link_dir: PathBuf,

    /// Public keys of the functionaries; each link's signature decides which key
    /// is authorized for its step
    #[arg(long = "functionary-key", value_name = "PUB", num_args = 1.., required = true)]
    pub functionary_keys: Vec<PathBuf>,

    /// Where to write the draft (default: stdout)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The drafted layout expires this many days from now
    #[arg(long, value_name = "DAYS", default_value = "30")]
    pub expires: u32,

    /// Draft from links recorded with --allow-incomplete too (each is named
    /// in a warning); without it such a link is refused, naming it
    #[arg(long)]
    pub allow_incomplete: bool,

    /// One rule per recorded file (as tracelink 0.1 drafted), and a
    /// suggested checkout that lists files. Without it, files are grouped
    /// into directory and extension patterns where that is safe (`CREATE
    /// build/*`, `CREATE *.o`, `MATCH src/* WITH PRODUCTS FROM checkout`);
    /// in in-toto's fnmatch `*` matches `/` too, so `src/*` covers the whole
    /// tree under src. Such a draft keeps working when a source file is
    /// added and catches the same tampering as an exact one, except an
    /// extra file inside a generalized pattern, which --exact catches too
    #[arg(long)]
    pub exact: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The link file (its trace, if any, is read from beside it)
    #[arg(value_name = "LINK")]
    pub link: PathBuf,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,

    /// Check the link's signature with these public keys and say whether it verified
    #[arg(long = "verification-keys", value_name = "PUB", num_args = 1..)]
    pub verification_keys: Vec<PathBuf>,

    /// List every material and product with its digests (instead of counts by directory)
    #[arg(long)]
    pub files: bool,

    /// Show the whole trace: every process with its arguments and what it read
    /// and wrote, probes, notes (instead of counts)
    #[arg(long)]
    pub tree: bool,

    /// With --tree: only processes at most N levels below the top
    #[arg(long, value_name = "N", requires = "tree")]
    pub depth: Option<usize>,

    /// Show the processes that ran a program matching PATTERN, a shell-style glob
    /// (* ? [...]) tried on the program's name, its executable path and its whole
    /// command line: `--process ld`, `--process '*foo.c*'`
    #[arg(long, value_name = "PATTERN")]
    pub process: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first link
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The second link
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The precise link to replay (its trace is read from beside it)
    #[arg(value_name = "LINK")]
    pub link: PathBuf,

    /// Public keys (SPKI PEM) of the functionary who recorded the step: the
    /// link's signature must verify with one of them, or nothing is replayed.
    /// Give LINK first, or end the list with --
    #[arg(long = "verification-keys", value_name = "PUB", num_args = 1..,
          conflicts_with = "unverified")]
    pub verification_keys: Vec<PathBuf>,

    /// Replay the link without checking its signature (whoever wrote it
    /// chooses the command that runs); the report's first line says so
    #[arg(long)]
    pub unverified: bool,

    /// The content-addressed store the step was recorded with (`run --store`)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Where to build the replay: DIR/tree holds the materials, DIR/metadata the
    /// rerun's link, trace, the command's output and the report. Must not exist
    /// or be empty
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Sign the rerun's link with this key (otherwise it is written unsigned)
    #[arg(short = 'k', long = "signing-key", value_name = "KEY")]
    pub signing_key: Option<PathBuf>,

    /// Password of an encrypted signing key; -P alone prompts for it
    #[arg(short = 'P', long = "password", value_name = "PASSWORD", num_args = 0..=1,
          default_missing_value = "", hide_default_value = true)]
    pub password: Option<String>,

    /// Kill the replay after SECS seconds
    #[arg(long, value_name = "SECS")]
    pub run_timeout: Option<u64>,

    /// Print every detail of the report (by default each list is cut short
    /// after its first entries; the summary always comes first)
    #[arg(long)]
    pub full: bool,

    /// Print the whole comparison as JSON instead of the text report
    #[arg(long)]
    pub json: bool,
}
