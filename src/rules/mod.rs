//! The rule model and its evaluation: the compiled, immutable rule set
//! that `config` builds from the rules directory, and what evaluates it.
//!
//! - [`model`] (re-exported here): the rule set's types — groups,
//!   segments, templates, schedules, surveys, alerts, escalations,
//!   contacts, rotations, limits — immutable once compiled.
//! - [`script`]: the sandboxed Rhai engine for `when:` and `script:`.
//! - [`template`]: strict minijinja templates and their context.
//! - [`segment`]: which members a segment selects.

mod model;
pub mod script;
pub mod segment;
pub mod template;

pub use model::*;
