//! `tracelink layout draft`: reads the links and keys, drafts the layout
//! (`tracelink::verify::draft`), writes it and tells the owner what to do next.
//!
//! The links come from functionaries and their names (steps, files) may be
//! crafted: what is printed for the owner goes through
//! `tracelink::text::printable`, and the suggested command quotes each word
//! with `text::shell_word`, so it stays printable and still gives the shell
//! the exact names (ANSI-C `$'...'` quoting for a name with non-printable
//! characters). The draft itself is JSON with `ensure_ascii`.

use crate::cli::LayoutDraftArgs;
use anyhow::{Context, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tracelink::keys::{KeyIdFormat, PublicKey};
use tracelink::link;
use tracelink::text::{printable as esc, shell_word};
use tracelink::untrusted;
use tracelink::verify::draft::{self, DraftOptions};

pub fn draft(args: LayoutDraftArgs) -> anyhow::Result<i32> {
    let keys = args
        .functionary_keys
        .iter()
        .map(|path| PublicKey::load(path).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dir = &args.link_dir;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the link directory {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the link directory {}", dir.display()))?;
    // Every *.link but directories is read, so that a FIFO, a device or a
    // giant in the directory is named, not skipped or waited on.
    paths.retain(|p| p.extension().is_some_and(|e| e == "link") && !p.is_dir());
    paths.sort();
    if paths.is_empty() {
        bail!("no links (*.link) in {}", dir.display());
    }
    let mut links = Vec::new();
    for path in &paths {
        let bytes = untrusted::read(path, untrusted::METADATA)?;
        links.push(draft::read_link(
            &path.display().to_string(),
            &bytes,
            &keys,
        )?);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let drafted = draft::draft(
        &links,
        &keys,
        &DraftOptions {
            now: i64::try_from(now).context("the system clock is too far ahead")?,
            expires_days: args.expires,
            origin: dir.display().to_string(),
            allow_incomplete: args.allow_incomplete,
            exact: args.exact,
        },
    )?;

    let text = drafted.to_text();
    let written = match &args.output {
        Some(path) => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("-o {}: not a file name", path.display()))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            link::write_atomically(parent, name, text.as_bytes())?;
            path.display().to_string()
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .context("cannot write the draft to stdout")?;
            "stdout".to_owned()
        }
    };

    let keyid_label = |keyid: &str| keyid[..keyid.len().min(8)].to_owned();
    eprintln!(
        "tracelink: drafted a layout with {} step(s) from {} link(s) in {} (expires {}), written to {}:",
        drafted.steps.len(),
        links.len(),
        esc(&dir.display().to_string()),
        drafted.expires,
        esc(&written)
    );
    for step in &drafted.steps {
        let keys: Vec<String> = step.pubkeys.iter().map(|k| keyid_label(k)).collect();
        let origin = if step.links.is_empty() {
            "suggested, not recorded".to_owned()
        } else {
            format!("{} link(s)", step.links.len())
        };
        eprintln!(
            "  {:<16} {origin:<24} keys {:<20} {} material rule(s), {} product rule(s)",
            esc(&step.name),
            keys.join(","),
            step.material_rules,
            step.product_rules
        );
    }
    for note in &drafted.notes {
        eprintln!("tracelink: warning: {}", esc(note));
    }
    if let Some(checkout) = &drafted.checkout {
        let key = args
            .functionary_keys
            .iter()
            .zip(&keys)
            .find(|(_, k)| {
                k.keyid(KeyIdFormat::Python) == checkout.keyid
                    || k.keyid(KeyIdFormat::Legacy) == checkout.keyid
            })
            .map(|(path, _)| private_key_guess(path));
        let key_arg = key
            .clone()
            .flatten()
            .and_then(|p| shell_word(&p.display().to_string()).map(|w| w.into_owned()))
            .unwrap_or_else(|| "KEY".to_owned());
        // shell_word refuses only a word holding NUL, which no file name
        // holds; a crafted link may still name one.
        let words: Option<Vec<String>> = std::iter::once(checkout.step.as_str())
            .chain(checkout.paths.iter().map(String::as_str))
            .map(|w| shell_word(w).map(|w| w.into_owned()))
            .collect();
        eprintln!(
            "tracelink: no recorded step produced {} file(s) the steps read; the draft adds a step {} \
             that creates them ({} path(s){}). Record it before the first step, in the tree the steps run in \
             (their --root), with:",
            checkout.files.len(),
            esc(&format!("{:?}", checkout.step)),
            checkout.paths.len(),
            if checkout.paths == checkout.files {
                ""
            } else {
                ", directories recorded whole"
            },
        );
        match words {
            Some(words) => {
                let mut command = format!("tracelink run -n {} -x -k {key_arg}", words[0]);
                if checkout.keyid_format == KeyIdFormat::Legacy {
                    command.push_str(" --keyid-format legacy");
                }
                command.push_str(" -p");
                for file in &words[1..] {
                    command.push(' ');
                    command.push_str(file);
                }
                eprintln!("  {command}");
                if command.contains("$'") {
                    eprintln!(
                        "tracelink: names with non-printable characters are in $'...' quotes, as bash, zsh and ksh read them"
                    );
                }
            }
            None => eprintln!(
                "  tracelink run -n STEP -x -k {key_arg} -p FILES (a name holds NUL and cannot be written \
                 on a command line: the files are the draft's CREATE rules of that step)"
            ),
        }
        if key_arg == "KEY" {
            eprintln!(
                "where KEY is the private key of functionary {} (no private key found beside its public key)",
                keyid_label(&checkout.keyid)
            );
        }
        eprintln!(
            "tracelink: the draft verifies only once that link is in the link directory with the others."
        );
    }
    let file = args
        .output
        .as_ref()
        .and_then(|p| shell_word(&p.display().to_string()).map(|w| w.into_owned()))
        .unwrap_or_else(|| "FILE".to_owned());
    eprintln!(
        "tracelink: review and edit the draft, then sign it: tracelink sign {file} -k OWNER_KEY \
         (or in-toto-sign -f {file} -k OWNER_KEY)"
    );
    Ok(0)
}

/// The private key beside a public key written by `tracelink keygen`
/// (`FILE` for `FILE.pub`), if it is there.
fn private_key_guess(public: &Path) -> Option<PathBuf> {
    let text = public.to_str()?;
    let private = PathBuf::from(text.strip_suffix(".pub")?);
    if !private.is_file() {
        return None;
    }
    // Absolute: the command runs in the steps' tree, not here.
    Some(std::fs::canonicalize(&private).unwrap_or(private))
}
