//! `tracelink layout draft`: reads the links and keys, drafts the layout
//! (`tracelink::verify::draft`), writes it and tells the owner what to do next.

use crate::cli::LayoutDraftArgs;
use anyhow::{Context, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tracelink::keys::{KeyIdFormat, PublicKey};
use tracelink::link;
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
    paths.retain(|p| p.extension().is_some_and(|e| e == "link") && p.is_file());
    paths.sort();
    if paths.is_empty() {
        bail!("no links (*.link) in {}", dir.display());
    }
    let mut links = Vec::new();
    for path in &paths {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
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
        "tracelink: drafted a layout with {} step(s) from {} link(s) in {} (expires {}), written to {written}:",
        drafted.steps.len(),
        links.len(),
        dir.display(),
        drafted.expires
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
            step.name,
            keys.join(","),
            step.material_rules,
            step.product_rules
        );
    }
    for note in &drafted.notes {
        eprintln!("tracelink: warning: {note}");
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
            .map(|p| shell_quote(&p.display().to_string()))
            .unwrap_or_else(|| "KEY".to_owned());
        let mut command = format!(
            "tracelink run -n {} -x -k {key_arg}",
            shell_quote(&checkout.step)
        );
        if checkout.keyid_format == KeyIdFormat::Legacy {
            command.push_str(" --keyid-format legacy");
        }
        command.push_str(" -p");
        for file in &checkout.files {
            command.push(' ');
            command.push_str(&shell_quote(file));
        }
        eprintln!(
            "tracelink: no recorded step produced {} file(s) the steps read; the draft adds a step {:?} \
             that creates them. Record it before the first step, in the tree the steps run in (their --root), with:",
            checkout.files.len(),
            checkout.step
        );
        eprintln!("  {command}");
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
    let file = args.output.as_ref().map_or_else(
        || "FILE".to_owned(),
        |p| shell_quote(&p.display().to_string()),
    );
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

/// A word as a POSIX shell reads it back.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,+@%-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
