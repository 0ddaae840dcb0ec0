//! in-toto layout verification, to agree with in-toto 3.1.0's verdicts.
//!
//! This module knows links only as artifact maps (path → digest set) per
//! step or inspection; it knows nothing of FUSE, recording or signing.
//!
//! - [`fnmatch`]: Python's `fnmatch.fnmatchcase`, which in-toto applies to
//!   artifact rule patterns.
//! - [`rules`]: parsing artifact rules (`unpack_rule`) and applying the rules
//!   of one step or inspection to its materials or products
//!   (`verify_item_rules`).

pub mod draft;
pub mod fnmatch;
pub mod rules;
