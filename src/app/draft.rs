//! `tracelink draft`.

use crate::cli::LayoutDraftArgs;

pub fn draft(args: LayoutDraftArgs) -> anyhow::Result<i32> {
    let _ = args;
    anyhow::bail!("layout draft is not built yet")
}
