//! Evaluating a compiled script against one context: the variables bound
//! as constants for this run, `answer(id)` backed by this run's answers,
//! and the result read as `true`/`false` or `#{ alert, note }`. A limit
//! breach or runtime error fails this evaluation only.

use rhai::{AST, Dynamic, EvalAltResult, Map, Scope};

use super::Sandbox;
use super::sandbox::AnswersFor;

impl Sandbox {
    /// Evaluates a compiled script to a boolean. `variables` binds the
    /// names of its kind; `answers` backs `answer(id)`. A limit breach, a
    /// runtime error or a non-boolean result is an error for this
    /// evaluation only.
    pub(crate) fn eval_bool(
        &self,
        ast: &AST,
        variables: Vec<(&str, Dynamic)>,
        answers: Map,
    ) -> Result<bool, EvalError> {
        self.eval_alert(ast, variables, answers).map(|(b, _)| b)
    }

    /// Evaluates an alert's `when:` or `script:`: its result is `true` or
    /// `false`, or a map `#{ alert: bool, note: "..." }` whose non-empty
    /// `note` comes back as the second value (the incident's evidence).
    ///
    /// The variables are bound as constants for this run only: the AST was
    /// compiled against plain variables, so nothing was folded into it, and
    /// a script that assigns to one fails here.
    pub(crate) fn eval_alert(
        &self,
        ast: &AST,
        variables: Vec<(&str, Dynamic)>,
        answers: Map,
    ) -> Result<(bool, Option<String>), EvalError> {
        let mut scope = Scope::new();
        for (name, value) in variables {
            scope.push_constant_dynamic(name.to_owned(), value);
        }
        let result = {
            let _answers = AnswersFor::bind(answers);
            self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast)
        };
        let value = result.map_err(|e| runtime_error(&e))?;
        if let Some(b) = value.clone().try_cast::<bool>() {
            return Ok((b, None));
        }
        if let Some(map) = value.clone().try_cast::<Map>() {
            let Some(b) = map.get("alert").and_then(|v| v.clone().try_cast::<bool>()) else {
                return Err(EvalError::MapWithoutAlert);
            };
            let note = map
                .get("note")
                .filter(|n| !n.is_unit())
                .map(|n| n.to_string())
                .filter(|n| !n.trim().is_empty());
            return Ok((b, note));
        }
        Err(EvalError::NotBoolean(value.type_name().to_owned()))
    }
}

/// Why one evaluation failed. It fails that evaluation only; the text is
/// what people read (rhai's own message for a runtime error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("script stopped: it ran more operations than the sandbox allows")]
    TooManyOperations,
    #[error("script stopped: calls nested too deep")]
    TooDeep,
    /// A string, array or map past the sandbox's size limit.
    #[error("script stopped: {0} too large")]
    TooLarge(String),
    /// A runtime error, in rhai's words.
    #[error("script failed: {0}")]
    Failed(String),
    #[error("script returned a map without `alert: true` or `alert: false`")]
    MapWithoutAlert,
    /// The result's type name.
    #[error("script returned {0} where true or false was expected")]
    NotBoolean(String),
}

impl EvalError {
    /// The message without the `script failed: ` lead, for a caller that
    /// names the script itself (`when: Array index -1 out of bounds`).
    pub(crate) fn detail(&self) -> String {
        match self {
            EvalError::Failed(what) => what.clone(),
            other => other.to_string(),
        }
    }
}

fn runtime_error(e: &EvalAltResult) -> EvalError {
    match e {
        EvalAltResult::ErrorTooManyOperations(_) => EvalError::TooManyOperations,
        EvalAltResult::ErrorStackOverflow(_) => EvalError::TooDeep,
        EvalAltResult::ErrorDataTooLarge(what, _) => EvalError::TooLarge(what.clone()),
        other => EvalError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use rhai::{Dynamic, Map};

    use crate::rules::script::ScriptKind;
    use crate::rules::script::testing::sandbox;

    #[test]
    fn a_runaway_loop_fails_its_evaluation_instead_of_hanging() {
        let s = sandbox();
        let ast = s
            .compile_script(ScriptKind::Alert, "let x = 0; loop { x += 1; }")
            .unwrap();
        let err = s.eval_bool(&ast, vec![], Map::new()).unwrap_err();
        assert_eq!(err, super::EvalError::TooManyOperations, "{err}");
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
            matches!(
                err,
                super::EvalError::TooLarge(_) | super::EvalError::TooManyOperations
            ),
            "{err}"
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
    fn a_map_result_gives_its_note_and_a_map_without_alert_is_an_error() {
        let s = sandbox();
        let eval = |src: &str| {
            let ast = s.compile_script(ScriptKind::Alert, src).unwrap();
            s.eval_alert(&ast, vec![], Map::new())
        };
        assert_eq!(
            eval("#{ alert: true, note: \"three low\" }"),
            Ok((true, Some("three low".to_owned())))
        );
        assert_eq!(eval("#{ alert: false, note: \"\" }"), Ok((false, None)));
        assert_eq!(eval("true"), Ok((true, None)));
        assert_eq!(
            eval("#{ note: \"x\" }").map_err(|e| e.to_string()),
            Err("script returned a map without `alert: true` or `alert: false`".to_owned())
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
