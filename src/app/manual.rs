//! `tracelink completions` and `tracelink man`: shell completion scripts and
//! man pages generated from the clap definitions (`cli::documented`, which
//! leaves out the hidden internal subcommands).

use crate::cli::{self, CompletionsArgs, ManArgs};
use anyhow::Context as _;
use clap::Command;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = cli::documented();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tracelink", &mut out);
    write_stdout(&out)?;
    Ok(0)
}

/// Prints tracelink.1, or writes every page into `args.dir`.
pub fn man(args: ManArgs) -> anyhow::Result<i32> {
    let mut cmd = without_help_subcommand(cli::documented());
    // Sets every subcommand's display name (tracelink-record-start).
    cmd.build();
    match args.dir {
        None => {
            let mut out = Vec::new();
            page(cmd).render(&mut out)?;
            write_stdout(&out)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            let mut written = Vec::new();
            write_pages(&cmd, &dir, &mut written)?;
            for path in written {
                println!("{}", path.display());
            }
        }
    }
    Ok(0)
}

/// The generated `help` subcommand has no page of its own: leave it out of
/// every SUBCOMMANDS section (`tracelink help CMD` is `tracelink CMD --help`).
fn without_help_subcommand(cmd: Command) -> Command {
    cmd.disable_help_subcommand(true)
        .mut_subcommands(without_help_subcommand)
}

/// Writes the page of `cmd` and of each of its visible subcommands, depth
/// first, into `dir`.
fn write_pages(cmd: &Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = page(cmd.clone());
    let path = dir.join(man.get_filename());
    written.push(
        man.generate_to(dir)
            .with_context(|| format!("cannot write {}", path.display()))?,
    );
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// The page of `cmd`, every one with the version in its footer (only the
/// top command has a version of its own).
fn page(cmd: Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("tracelink {}", env!("CARGO_PKG_VERSION")))
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}
