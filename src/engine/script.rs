//! The Rhai sandbox: segment `when:` expressions and alert scripts.
//!
//! One engine per rule set, shared by `Arc`; every script is compiled once
//! per reload. Limits bound what one evaluation can do (operations, call
//! depth, expression depth, string/array/map sizes); `eval`, `import` and
//! printing are switched off, and Rhai has no I/O of its own. A script that
//! hits a limit fails that one evaluation with an error; the daemon goes on.
//!
//! Variables are strict: a script may only name the variables of its kind
//! ([`ScriptKind`]), so `membr.progress_level` fails `hearth check`.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Scope};

/// The limits one evaluation runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
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

/// What a script sees, by where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// A segment's `when:`: `member` only.
    Segment,
    /// An alert's `when:` or `script:`: `member`, `reply`, `answers`,
    /// `history`, `engagement`, and the function `answer(id)`.
    Alert,
}

impl ScriptKind {
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            ScriptKind::Segment => &["member"],
            ScriptKind::Alert => &["member", "reply", "answers", "history", "engagement"],
        }
    }
}

/// A compile error, with its 1-based place inside the script text.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub message: String,
    pub hint: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// The shared, sandboxed engine.
#[derive(Clone)]
pub struct Sandbox {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

thread_local! {
    static ANSWERS: RefCell<Map> = RefCell::new(Map::new());
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
        // when it has none. Reads the evaluation's answers (see `eval_bool`).
        engine.register_fn("answer", |id: &str| -> Dynamic {
            ANSWERS.with(|a| a.borrow().get(id).cloned().unwrap_or(Dynamic::UNIT))
        });
        Sandbox {
            engine: Arc::new(engine),
        }
    }

    fn scope_for(kind: ScriptKind) -> Scope<'static> {
        let mut scope = Scope::new();
        for name in kind.variables() {
            scope.push_constant_dynamic(*name, Dynamic::UNIT);
        }
        scope
    }

    /// Compiles a single expression (`when:`).
    pub fn compile_expression(&self, kind: ScriptKind, source: &str) -> Result<AST, ScriptError> {
        self.engine
            .compile_expression_with_scope(&Self::scope_for(kind), source)
            .map_err(|e| parse_error(e, kind))
    }

    /// Compiles a whole script file (`script:`); its last value is the result.
    pub fn compile_script(&self, kind: ScriptKind, source: &str) -> Result<AST, ScriptError> {
        self.engine
            .compile_with_scope(&Self::scope_for(kind), source)
            .map_err(|e| parse_error(e, kind))
    }

    /// Evaluates a compiled script to a boolean. `variables` binds the
    /// names of its kind; `answers` backs `answer(id)`. A limit breach, a
    /// runtime error or a non-boolean result is an error for this
    /// evaluation only.
    pub fn eval_bool(
        &self,
        ast: &AST,
        variables: Vec<(&str, Dynamic)>,
        answers: Map,
    ) -> Result<bool, String> {
        let mut scope = Scope::new();
        for (name, value) in variables {
            scope.push_constant_dynamic(name.to_owned(), value);
        }
        let previous = ANSWERS.with(|a| std::mem::replace(&mut *a.borrow_mut(), answers));
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
        ANSWERS.with(|a| *a.borrow_mut() = previous);
        let value = result.map_err(|e| runtime_error(&e))?;
        // A script may return a bool, or a map `#{ alert: bool, note: ".." }`.
        if let Some(b) = value.clone().try_cast::<bool>() {
            return Ok(b);
        }
        if let Some(map) = value.clone().try_cast::<Map>()
            && let Some(b) = map.get("alert").and_then(|v| v.clone().try_cast::<bool>())
        {
            return Ok(b);
        }
        Err(format!(
            "script returned {} where true or false was expected",
            value.type_name()
        ))
    }
}

fn parse_error(e: rhai::ParseError, kind: ScriptKind) -> ScriptError {
    let pos = e.position();
    let (message, hint) = match e.err_type() {
        rhai::ParseErrorType::VariableUndefined(name) => (
            format!("undefined variable `{name}` in script"),
            Some(
                crate::config::diag::did_you_mean(name, kind.variables().iter().copied())
                    .unwrap_or_else(|| {
                        format!("scripts here can use: {}", kind.variables().join(", "))
                    }),
            ),
        ),
        other => (format!("script syntax error: {other}"), None),
    };
    ScriptError {
        message,
        hint,
        line: pos.line(),
        column: pos.position(),
    }
}

fn runtime_error(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorTooManyOperations(_) => {
            "script stopped: it ran more operations than the sandbox allows".to_owned()
        }
        EvalAltResult::ErrorStackOverflow(_) => "script stopped: calls nested too deep".to_owned(),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!("script stopped: {what} too large"),
        other => format!("script failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox::new(Limits::default())
    }

    #[test]
    fn a_runaway_loop_fails_its_evaluation_instead_of_hanging() {
        let s = sandbox();
        let ast = s
            .compile_script(ScriptKind::Alert, "let x = 0; loop { x += 1; }")
            .unwrap();
        let err = s.eval_bool(&ast, vec![], Map::new()).unwrap_err();
        assert!(err.contains("more operations"), "{err}");
    }

    #[test]
    fn unbounded_recursion_and_huge_strings_are_stopped() {
        let s = sandbox();
        let ast = s
            .compile_script(ScriptKind::Alert, "fn f(n) { f(n + 1) } f(0)")
            .unwrap();
        assert!(s.eval_bool(&ast, vec![], Map::new()).is_err());
        let ast = s
            .compile_script(
                ScriptKind::Alert,
                "let s = \"x\"; for i in 0..20 { s += s; } true",
            )
            .unwrap();
        let err = s.eval_bool(&ast, vec![], Map::new()).unwrap_err();
        assert!(
            err.contains("too large") || err.contains("operations"),
            "{err}"
        );
    }

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

    #[test]
    fn answer_reads_the_evaluations_answers() {
        let s = sandbox();
        let ast = s
            .compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3")
            .unwrap();
        let mut answers = Map::new();
        answers.insert("mood".into(), Dynamic::from(2_i64));
        assert!(s.eval_bool(&ast, vec![], answers).unwrap());
        let mut answers = Map::new();
        answers.insert("mood".into(), Dynamic::from(7_i64));
        assert!(!s.eval_bool(&ast, vec![], answers).unwrap());
    }
}
