//! The Rhai sandbox: segment `when:` expressions and alert scripts.
//!
//! One engine per rule set, shared by `Arc`; every script is compiled once
//! per reload. Limits bound what one evaluation can do (operations, call
//! depth, expression depth, string/array/map sizes); `eval`, `import` and
//! printing are switched off, and Rhai has no I/O of its own. A script that
//! hits a limit fails that one evaluation with an error; the daemon goes on.
//!
//! Variables are strict: a script may only name the variables of its kind
//! ([`ScriptKind`]), so `membr.progress_level` fails `hearth check`. What
//! compiles but cannot work is refused too, from the source: `answer()` in
//! a segment, a `member.NAME` that is not a field, a member field compared
//! with a literal of another type (Rhai answers `false` across types).
//! [`Sandbox::probe`] then runs each script on sample values under the
//! same limits the daemon uses: an unknown function, an endless loop,
//! runaway recursion or a doubling string is an error at check.
//!
//! The work is split by job: `sandbox` builds the engine under its
//! [`Limits`] and compiles; `eval` runs a compiled script against one
//! context; `probe` runs it on sample values at check; `checks` finds
//! what compiles but cannot work, on the tokens of `tokens`.

mod checks;
mod eval;
mod probe;
mod sandbox;
mod tokens;

pub(crate) use checks::answer_calls;
pub use eval::EvalError;
pub use sandbox::{Limits, Sandbox};

/// What a script sees, by where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// A segment's `when:`: `member` only.
    Segment,
    /// An alert's `when:` or `script:`: `member`, `reply`, `survey`,
    /// `answers`, `score`, `history`, `engagement`, and the function
    /// `answer(id)`. `docs/RULES.md` gives their shapes.
    Alert,
}

impl ScriptKind {
    pub(crate) fn variables(self) -> &'static [&'static str] {
        match self {
            ScriptKind::Segment => &["member"],
            ScriptKind::Alert => &[
                "member",
                "reply",
                "survey",
                "answers",
                "score",
                "history",
                "engagement",
            ],
        }
    }
}

/// The keys of the map-valued context variables, for "not a field" checks.
const CONTEXT_FIELDS: &[(&str, &[&str])] = &[
    ("score", &["total", "band", "complete"]),
    (
        "engagement",
        &[
            "days_since_last_reply",
            "unanswered_in_a_row",
            "replies_30d",
        ],
    ),
];

/// A compile error, with its 1-based place inside the script text.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
}

/// The one sandbox every test of this module evaluates in.
#[cfg(test)]
mod testing {
    use super::{Limits, Sandbox};

    /// A sandbox under the daemon's limits.
    pub(super) fn sandbox() -> Sandbox {
        Sandbox::new(Limits::default())
    }
}
