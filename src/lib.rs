//! tracelink: records software supply chain steps as signed in-toto link
//! metadata. The library holds the parts; `src/main.rs` wires them into the
//! command line.

pub mod account;
pub mod attest;
pub mod exclude;
pub mod hash;
pub mod keys;
pub mod link;
pub mod record;
pub mod rerun;
pub mod runner;
pub mod secrets;
pub mod snapshot;
pub mod stepname;
pub mod store;
pub mod sys;
pub mod text;
pub mod tracefile;
pub mod untrusted;
pub mod verify;
