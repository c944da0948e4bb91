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
    static ANSWERS: RefCell<Map> = const { RefCell::new(Map::new()) };
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

impl Sandbox {
    /// Runs a compiled script once on sample values and reports a call to
    /// a function that does not exist (`answr("mood")`), which Rhai only
    /// finds at run time. Other run-time errors are not reported: sample
    /// values cannot stand for every real one.
    pub fn probe_unknown_functions(
        &self,
        kind: ScriptKind,
        ast: &AST,
        answer_samples: &[Map],
    ) -> Option<ScriptError> {
        // Each sample set once, so `&&`/`||` short-circuits take both ways.
        let none = [Map::new()];
        let samples = if answer_samples.is_empty() {
            &none[..]
        } else {
            answer_samples
        };
        samples
            .iter()
            .find_map(|answers| self.probe_once(kind, ast, answers.clone()))
    }

    fn probe_once(&self, kind: ScriptKind, ast: &AST, answers: Map) -> Option<ScriptError> {
        let member = crate::engine::segment::to_dynamic(&sample_member());
        let vars: Vec<(&str, Dynamic)> = match kind {
            ScriptKind::Segment => vec![("member", member)],
            ScriptKind::Alert => vec![
                ("member", member),
                ("reply", Dynamic::from("sample reply".to_owned())),
                ("answers", Dynamic::from_map(Map::new())),
                ("history", Dynamic::from_array(Vec::new())),
                ("engagement", Dynamic::from_map(Map::new())),
            ],
        };
        let mut scope = Scope::new();
        for (name, value) in vars {
            scope.push_constant_dynamic(name.to_owned(), value);
        }
        let previous = ANSWERS.with(|a| std::mem::replace(&mut *a.borrow_mut(), answers));
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
        ANSWERS.with(|a| *a.borrow_mut() = previous);
        let err = result.err()?;
        let (signature, pos) = innermost_missing_function(&err)?;
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            // An operator on sample values (`() <= 3`), not a misspelling.
            return None;
        }
        Some(ScriptError {
            message: format!("unknown function `{name}` in script"),
            hint: crate::text::did_you_mean(&name, KNOWN_FUNCTIONS.iter().copied()),
            line: pos.line(),
            column: pos.position(),
        })
    }
}

/// Functions scripts commonly call, for "did you mean" hints.
const KNOWN_FUNCTIONS: &[&str] = &[
    "answer",
    "contains",
    "len",
    "type_of",
    "to_lower",
    "to_upper",
    "trim",
    "starts_with",
    "ends_with",
    "index_of",
    "sub_string",
    "split",
    "to_int",
    "to_float",
    "parse_int",
    "parse_float",
    "abs",
    "min",
    "max",
    "filter",
    "map",
    "reduce",
    "some",
    "all",
    "keys",
    "values",
    "is_empty",
    "push",
];

fn innermost_missing_function(e: &EvalAltResult) -> Option<(String, rhai::Position)> {
    match e {
        EvalAltResult::ErrorFunctionNotFound(sig, pos) => Some((sig.clone(), *pos)),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => innermost_missing_function(inner),
        _ => None,
    }
}

/// A member view with every field, for probing scripts.
fn sample_member() -> serde_json::Value {
    serde_json::json!({
        "id": 1, "external_id": "M-0001", "first_name": "Alex", "last_name": "Rivera",
        "timezone": "America/New_York", "language": "en", "joined_on": "2026-01-05",
        "days_since_joined": 12, "status": "active", "groups": ["sample-group"],
        "attributes": {}
    })
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
    fn variables_are_not_folded_to_their_compile_time_placeholders() {
        // Regression: compiled against constant `()`, these were optimised
        // into `false`, `"()"` and an error before they ever saw real values.
        let s = sandbox();
        let eval = |src: &str, reply: &str| {
            let ast = s.compile_script(ScriptKind::Alert, src).unwrap();
            let history = Dynamic::from_array(vec![Dynamic::from(3_i64)]);
            s.eval_bool(
                &ast,
                vec![
                    ("reply", Dynamic::from(reply.to_owned())),
                    ("history", history),
                ],
                Map::new(),
            )
        };
        assert_eq!(eval("reply == \"hi\"", "hi"), Ok(true));
        assert_eq!(eval("reply == \"hi\"", "no"), Ok(false));
        assert_eq!(eval("type_of(history) == \"array\"", ""), Ok(true));
        assert_eq!(
            eval("let n = 0; for x in history { n += x; } n == 3", ""),
            Ok(true)
        );
    }

    #[test]
    fn probing_finds_misspelt_functions_but_not_operators_on_samples() {
        let s = sandbox();
        let ast = s
            .compile_expression(ScriptKind::Alert, "answr(\"mood\") <= 3")
            .unwrap();
        let err = s
            .probe_unknown_functions(ScriptKind::Alert, &ast, &[])
            .unwrap();
        assert_eq!(err.message, "unknown function `answr` in script");
        assert_eq!(err.hint.as_deref(), Some("did you mean `answer`?"));
        let ok = s
            .compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3")
            .unwrap();
        assert!(
            s.probe_unknown_functions(ScriptKind::Alert, &ok, &[])
                .is_none()
        );
        // Hidden behind a short-circuit on one sample, found on the other.
        let hidden = s
            .compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3 && answr(\"x\")")
            .unwrap();
        let low = Map::from_iter([("mood".into(), Dynamic::from(1_i64))]);
        let high = Map::from_iter([("mood".into(), Dynamic::from(10_i64))]);
        assert!(
            s.probe_unknown_functions(ScriptKind::Alert, &hidden, std::slice::from_ref(&high))
                .is_none()
        );
        assert!(
            s.probe_unknown_functions(ScriptKind::Alert, &hidden, &[high, low])
                .is_some()
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
