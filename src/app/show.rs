//! `tracelink show`.

use crate::cli::ShowArgs;

pub fn show(args: ShowArgs) -> anyhow::Result<i32> {
    let _ = args;
    anyhow::bail!("show is not built yet")
}
