//! Probing at `hearth check`: running a compiled script on sample values,
//! under the sandbox's own limits, to find what Rhai only finds at run
//! time (a misspelt function, a limit broken on every evaluation).

use rhai::{AST, Dynamic, EvalAltResult, Map, Scope};

use super::checks::mismatched_answer;
use super::sandbox::AnswersFor;
use super::{Sandbox, ScriptError, ScriptKind};

impl Sandbox {
    /// Runs a compiled script on sample values, under this sandbox's own
    /// limits, and reports what Rhai only finds at run time: a call to a
    /// function that does not exist (`answr("mood")`), and a script that
    /// breaks a limit on every evaluation (an endless loop, runaway
    /// recursion, a string that doubles), and an `answer("id")` compared
    /// with a literal of another type than the question's answers (Rhai
    /// answers `false` to that, every time). `source` is the text `ast` was
    /// compiled from. Other run-time errors are not reported: sample values
    /// cannot stand for every real one.
    pub(crate) fn probe(
        &self,
        kind: ScriptKind,
        ast: &AST,
        source: &str,
        answer_samples: &[Map],
    ) -> Option<ScriptError> {
        if let Some(found) = mismatched_answer(source, answer_samples) {
            return Some(found);
        }
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
        let member = crate::rules::segment::to_dynamic(&sample_member());
        let vars: Vec<(&str, Dynamic)> = match kind {
            ScriptKind::Segment => vec![("member", member)],
            ScriptKind::Alert => {
                let mut vars = vec![("member", member)];
                vars.extend(sample_alert_context(&answers));
                vars
            }
        };
        let mut scope = Scope::new();
        for (name, value) in vars {
            scope.push_constant_dynamic(name.to_owned(), value);
        }
        let result = {
            let _answers = AnswersFor::bind(answers);
            self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast)
        };
        let err = result.err()?;
        if let Some(found) = self.limit_breach(&err) {
            return Some(found);
        }
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

    /// A limit the script broke, named with the limit's value.
    fn limit_breach(&self, e: &EvalAltResult) -> Option<ScriptError> {
        let l = self.limits;
        let (message, hint, pos) = match innermost(e) {
            EvalAltResult::ErrorTooManyOperations(pos) => (
                format!(
                    "script runs past the sandbox's limit of {} operations on sample values, so it would be stopped on every evaluation",
                    l.max_operations
                ),
                "a loop that never ends? give every `loop` and `while` a way out",
                *pos,
            ),
            EvalAltResult::ErrorStackOverflow(pos) => (
                format!(
                    "script nests calls deeper than the sandbox's limit of {} on sample values, so it would be stopped on every evaluation",
                    l.max_call_levels
                ),
                "a function that calls itself needs a case where it stops",
                *pos,
            ),
            EvalAltResult::ErrorDataTooLarge(what, pos) => (
                format!(
                    "script builds a {} larger than the sandbox allows (strings {} characters, arrays {} items, maps {} keys) on sample values",
                    ["string", "array", "map"]
                        .into_iter()
                        .find(|k| what.to_lowercase().contains(k))
                        .unwrap_or("value"),
                    l.max_string_size,
                    l.max_array_size,
                    l.max_map_size
                ),
                "a string or array that doubles in a loop outgrows any limit; build only what the script needs",
                *pos,
            ),
            _ => return None,
        };
        Some(ScriptError {
            message,
            hint: Some(hint.to_owned()),
            line: pos.line(),
            column: pos.position(),
        })
    }
}

/// The error inside any function-call wrappers.
fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => innermost(inner),
        other => other,
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

/// The alert context on sample values, shaped as the daemon binds it
/// (`docs/RULES.md`): a reply inside a survey whose answers are
/// `answers`, those answers again in `history`, a score and engagement.
fn sample_alert_context(answers: &Map) -> Vec<(&'static str, Dynamic)> {
    let history: rhai::Array = answers
        .iter()
        .map(|(question, value)| {
            Dynamic::from_map(Map::from_iter([
                ("survey".into(), Dynamic::from("sample-survey".to_owned())),
                ("question".into(), Dynamic::from(question.to_string())),
                ("value".into(), value.clone()),
                (
                    "at".into(),
                    Dynamic::from("2026-01-05T12:00:00Z".to_owned()),
                ),
            ]))
        })
        .collect();
    let score = Map::from_iter([
        ("total".into(), Dynamic::from(0_i64)),
        ("band".into(), Dynamic::from("sample".to_owned())),
        ("complete".into(), Dynamic::from(true)),
    ]);
    let engagement = Map::from_iter([
        ("days_since_last_reply".into(), Dynamic::from(1.5_f64)),
        ("unanswered_in_a_row".into(), Dynamic::from(0_i64)),
        ("replies_30d".into(), Dynamic::from(1_i64)),
    ]);
    vec![
        ("reply", Dynamic::from("sample reply".to_owned())),
        ("survey", Dynamic::from("sample-survey".to_owned())),
        ("answers", Dynamic::from_map(answers.clone())),
        ("score", Dynamic::from_map(score)),
        ("history", Dynamic::from_array(history)),
        ("engagement", Dynamic::from_map(engagement)),
    ]
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

#[cfg(test)]
mod tests {
    use rhai::{Dynamic, Map};

    use super::*;
    use crate::rules::script::Limits;
    use crate::rules::script::testing::sandbox;

    #[test]
    fn probing_finds_misspelt_functions_but_not_operators_on_samples() {
        let s = sandbox();
        let ast = s
            .compile_expression(ScriptKind::Alert, "answr(\"mood\") <= 3")
            .unwrap();
        let err = s.probe(ScriptKind::Alert, &ast, "", &[]).unwrap();
        assert_eq!(err.message, "unknown function `answr` in script");
        assert_eq!(err.hint.as_deref(), Some("did you mean `answer`?"));
        let ok = s
            .compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3")
            .unwrap();
        assert!(s.probe(ScriptKind::Alert, &ok, "", &[]).is_none());
        // Hidden behind a short-circuit on one sample, found on the other.
        let hidden = s
            .compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3 && answr(\"x\")")
            .unwrap();
        let low = Map::from_iter([("mood".into(), Dynamic::from(1_i64))]);
        let high = Map::from_iter([("mood".into(), Dynamic::from(10_i64))]);
        assert!(
            s.probe(ScriptKind::Alert, &hidden, "", std::slice::from_ref(&high))
                .is_none()
        );
        assert!(
            s.probe(ScriptKind::Alert, &hidden, "", &[high, low])
                .is_some()
        );
    }

    #[test]
    fn probing_stops_an_endless_loop_runaway_recursion_and_string_doubling() {
        let s = sandbox();
        for (source, wanted, line) in [
            (
                "let x = 0;\nloop { x += 1; }\ntrue",
                "limit of 50000 operations",
                2,
            ),
            (
                "let n = member.days_since_joined;\nwhile n > 0 { n += 1; }\nn > 3",
                "limit of 50000 operations",
                2,
            ),
            (
                "fn f(n) { f(n + 1) }\nf(0)",
                "deeper than the sandbox's limit of 16",
                2,
            ),
            (
                "let s = \"x\";\nfor i in 0..20 { s += s; }\ntrue",
                "builds a string larger than the sandbox allows",
                2,
            ),
        ] {
            let ast = s.compile_script(ScriptKind::Alert, source).unwrap();
            let err = s
                .probe(ScriptKind::Alert, &ast, "", &[])
                .unwrap_or_else(|| panic!("not caught: {source}"));
            assert!(err.message.contains(wanted), "{source}: {}", err.message);
            assert!(err.message.contains("sample values"), "{}", err.message);
            assert_eq!(err.line, Some(line), "{source}");
            assert!(err.hint.is_some());
        }
        // A bounded loop within the limits is fine.
        let ast = s
            .compile_script(
                ScriptKind::Alert,
                "let n = 0; for i in 0..100 { n += i; } n > 3",
            )
            .unwrap();
        assert!(s.probe(ScriptKind::Alert, &ast, "", &[]).is_none());
    }

    #[test]
    fn the_probe_runs_under_the_sandboxs_own_limits() {
        let tight = Sandbox::new(Limits {
            max_operations: 100,
            ..Limits::default()
        });
        assert_eq!(tight.limits().max_operations, 100);
        let ast = tight
            .compile_script(
                ScriptKind::Alert,
                "let n = 0; for i in 0..200 { n += i; } n > 3",
            )
            .unwrap();
        let err = tight.probe(ScriptKind::Alert, &ast, "", &[]).unwrap();
        assert!(
            err.message.contains("limit of 100 operations"),
            "{}",
            err.message
        );
        assert!(sandbox().probe(ScriptKind::Alert, &ast, "", &[]).is_none());
    }
}
