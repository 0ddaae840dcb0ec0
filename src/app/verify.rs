//! `tracelink verify`.

use crate::cli::VerifyArgs;

pub fn verify(args: VerifyArgs) -> i32 {
    let _ = args;
    eprintln!("tracelink: error: verify is not built yet");
    1
}
