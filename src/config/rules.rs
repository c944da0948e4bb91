//! The compiled rule set, as `config` builds it.
//!
//! The types live in [`crate::engine::rules`], where the engine that
//! evaluates them can name them without depending on `config`; they are
//! re-exported here for callers that think of them as configuration.

pub use crate::engine::rules::*;
