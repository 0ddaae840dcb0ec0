//! Precise recording: which files under the monitored root a process tree
//! read and wrote. This module knows files, processes and digests; it knows
//! nothing of in-toto links or keys.

pub mod contain;
pub mod fs;
pub mod inherit;
pub mod precise;
pub mod sandbox;
pub mod semantics;
pub mod session;
pub mod tracer;
