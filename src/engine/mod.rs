//! Rule evaluation: the Rhai sandbox, message templates, segments.
//!
//! - [`script`]: the sandboxed Rhai engine for `when:` and `script:`.
//! - [`template`]: strict minijinja templates and their context.
//! - [`segment`]: which members a segment selects.
//! - [`rules`]: the compiled, immutable rule set (built by `config`).

pub mod rules;
pub mod script;
pub mod segment;
pub mod template;
