//! The sandboxed engine: its [`Limits`], its construction (no `eval`,
//! `import` or printing; strict variables; the function `answer(id)`),
//! and compiling a script against its kind's variables, with the source
//! checks run on every compile.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Map, Scope};

use super::checks::static_check;
use super::{ScriptError, ScriptKind};

/// The limits one evaluation runs under. [`Limits::default`] is the one
/// definition: the compiler builds the rule set's [`Sandbox`] with it,
/// `hearth check` probes every script in that sandbox, and the daemon
/// evaluates in the same sandbox, so check and daemon stop a script at
/// the same point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_operations: u64,
    pub(crate) max_call_levels: usize,
    pub(crate) max_expr_depth: usize,
    pub(crate) max_string_size: usize,
    pub(crate) max_array_size: usize,
    pub(crate) max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_operations: 50_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_string_size: 4_096,
            max_array_size: 1_000,
            max_map_size: 256,
        }
    }
}

/// The shared, sandboxed engine.
#[derive(Clone)]
pub struct Sandbox {
    pub(super) engine: Arc<Engine>,
    pub(super) limits: Limits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

thread_local! {
    static ANSWERS: RefCell<Map> = const { RefCell::new(Map::new()) };
}

/// Binds the answers `answer(id)` reads for one evaluation and puts the
/// previous ones back when dropped, even if the evaluation unwinds.
pub(super) struct AnswersFor(Option<Map>);

impl AnswersFor {
    pub(super) fn bind(answers: Map) -> AnswersFor {
        AnswersFor(Some(
            ANSWERS.with(|a| std::mem::replace(&mut *a.borrow_mut(), answers)),
        ))
    }
}

impl Drop for AnswersFor {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            ANSWERS.with(|a| *a.borrow_mut() = previous);
        }
    }
}

impl Sandbox {
    pub fn new(limits: Limits) -> Sandbox {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_modules(0)
            .set_strict_variables(true)
            .disable_symbol("eval")
            .disable_symbol("import")
            .disable_symbol("export")
            .on_print(|_| {})
            .on_debug(|_, _, _| {});
        engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        // `answer("mood")`: the current survey's answer to a question, or ()
        // when it has none. Reads the evaluation's answers (see `Sandbox::eval_bool`).
        engine.register_fn("answer", |id: &str| -> Dynamic {
            ANSWERS.with(|a| a.borrow().get(id).cloned().unwrap_or(Dynamic::UNIT))
        });
        Sandbox {
            engine: Arc::new(engine),
            limits,
        }
    }

    /// The limits every evaluation in this sandbox runs under.
    #[cfg(test)]
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Declares a kind's variables for strict compilation. They must be
    /// plain variables, not constants: Rhai's optimizer folds a constant's
    /// value into the script, which would freeze `reply == "hi"` to false.
    fn scope_for(kind: ScriptKind) -> Scope<'static> {
        let mut scope = Scope::new();
        for name in kind.variables() {
            scope.push_dynamic(*name, Dynamic::UNIT);
        }
        scope
    }

    /// Compiles a single expression (`when:`).
    pub fn compile_expression(&self, kind: ScriptKind, source: &str) -> Result<AST, ScriptError> {
        let ast = self
            .engine
            .compile_expression_with_scope(&Self::scope_for(kind), source)
            .map_err(|e| parse_error(e, kind))?;
        static_check(kind, source).map_or(Ok(ast), Err)
    }

    /// Compiles a whole script file (`script:`); its last value is the result.
    pub(crate) fn compile_script(
        &self,
        kind: ScriptKind,
        source: &str,
    ) -> Result<AST, ScriptError> {
        let ast = self
            .engine
            .compile_with_scope(&Self::scope_for(kind), source)
            .map_err(|e| parse_error(e, kind))?;
        static_check(kind, source).map_or(Ok(ast), Err)
    }
}

fn parse_error(e: rhai::ParseError, kind: ScriptKind) -> ScriptError {
    let pos = e.position();
    let (message, hint) = match e.err_type() {
        rhai::ParseErrorType::VariableUndefined(name) => (
            format!("undefined variable `{name}` in script"),
            Some(
                crate::text::did_you_mean(name, kind.variables().iter().copied()).unwrap_or_else(
                    || format!("scripts here can use: {}", kind.variables().join(", ")),
                ),
            ),
        ),
        other => {
            let text = other.to_string();
            let hint = ["'and'", "'or'", "'not'"]
                .iter()
                .any(|w| text.contains(w))
                .then(|| "Rhai writes `and`, `or` and `not` as `&&`, `||` and `!`".to_owned());
            (format!("script syntax error: {other}"), hint)
        }
    };
    ScriptError {
        message,
        hint,
        line: pos.line(),
        column: pos.position(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::script::testing::sandbox;

    #[test]
    fn eval_and_import_are_not_available() {
        let s = sandbox();
        assert!(s.compile_script(ScriptKind::Alert, "eval(\"1\")").is_err());
        assert!(
            s.compile_script(ScriptKind::Alert, "import \"x\" as y; true")
                .is_err()
        );
    }

    #[test]
    fn unknown_variables_fail_at_compile_time_with_a_place() {
        let s = sandbox();
        let err = s
            .compile_expression(ScriptKind::Segment, "membr.days_since_joined < 30")
            .unwrap_err();
        assert_eq!(err.message, "undefined variable `membr` in script");
        assert_eq!((err.line, err.column), (Some(1), Some(1)));
        // `reply` exists for alerts, not for segments.
        assert!(
            s.compile_expression(ScriptKind::Segment, "reply == \"x\"")
                .is_err()
        );
        assert!(
            s.compile_expression(ScriptKind::Alert, "reply == \"x\"")
                .is_ok()
        );
    }
}
