//! `tracelink sign`.

use crate::cli::SignArgs;

pub fn sign(args: SignArgs) -> anyhow::Result<i32> {
    let _ = args;
    anyhow::bail!("sign is not built yet")
}
