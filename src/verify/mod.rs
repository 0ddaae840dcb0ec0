//! in-toto layout verification, to agree with in-toto 3.1.0's verdicts.
//!
//! This module knows signed metadata, layouts, links as artifact maps and
//! the rules between them; it knows nothing of FUSE, recording or
//! terminals (inspections are run by the caller's [`chain::Inspector`]).
//!
//! - [`metadata`]: signed documents (classic or DSSE) and their signatures.
//! - [`layout`]: the layout model, checked as in-toto reads it.
//! - [`chain`]: the verification procedure, step by step.
//! - [`report`]: what verification found, as text and JSON.
//! - [`fnmatch`]: Python's `fnmatch.fnmatchcase`, which in-toto applies to
//!   artifact rule patterns.
//! - [`rules`]: parsing artifact rules (`unpack_rule`) and applying the rules
//!   of one step or inspection to its materials or products
//!   (`verify_item_rules`).
//! - [`draft`]: drafting a layout from recorded links.

pub mod chain;
pub mod draft;
pub mod fnmatch;
pub mod layout;
pub mod metadata;
pub mod report;
pub mod rules;
