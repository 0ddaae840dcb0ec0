//! `tracelink diff`.

use crate::cli::DiffArgs;

pub fn diff(args: DiffArgs) -> anyhow::Result<i32> {
    let _ = args;
    anyhow::bail!("diff is not built yet")
}
