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

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Scope};

/// The limits one evaluation runs under. [`Limits::default`] is the one
/// definition: the compiler builds the rule set's [`Sandbox`] with it,
/// `hearth check` probes every script in that sandbox, and the daemon
/// evaluates in the same sandbox, so check and daemon stop a script at
/// the same point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// An alert's `when:` or `script:`: `member`, `reply`, `survey`,
    /// `answers`, `score`, `history`, `engagement`, and the function
    /// `answer(id)`. The shapes are [`ALERT_CONTEXT`]'s.
    Alert,
}

impl ScriptKind {
    pub fn variables(self) -> &'static [&'static str] {
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

/// What an alert's `when:` or `script:` reads, one line per name; the
/// documentation (`rules/alerts.yaml`, `rules/scripts/*.rhai`,
/// `docs/RULES.md`) says the same. Every name is read-only.
pub const ALERT_CONTEXT: &[(&str, &str)] = &[
    (
        "member",
        "map: the member's roster fields (id, external_id, first_name, last_name, language, timezone, status, joined_on, days_since_joined, groups, attributes); never the phone number",
    ),
    (
        "reply",
        "string: the text as the member sent it; () for a scheduled (`every:`) alert",
    ),
    (
        "survey",
        "string: the id of the survey this reply answered; () outside a survey",
    ),
    (
        "answers",
        "map: this survey's answers so far by question id (numbers, choice labels, true/false, text); () outside a survey",
    ),
    (
        "score",
        "map #{total, band, complete}: this survey's score when it has `score:`; () otherwise",
    ),
    (
        "history",
        "array of maps #{survey, question, value, at}: earlier answers (not this one), oldest first, at most 10 per question; `at` is an RFC 3339 string",
    ),
    (
        "engagement",
        "map #{days_since_last_reply, unanswered_in_a_row, replies_30d}: days as a float, () before a first text",
    ),
    (
        "answer(id)",
        "this survey's answer to question `id`, or () when it has none",
    ),
];

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
    pub message: String,
    pub hint: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// The shared, sandboxed engine.
#[derive(Clone)]
pub struct Sandbox {
    engine: Arc<Engine>,
    limits: Limits,
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
struct AnswersFor(Option<Map>);

impl AnswersFor {
    fn bind(answers: Map) -> AnswersFor {
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
        // when it has none. Reads the evaluation's answers (see `eval_bool`).
        engine.register_fn("answer", |id: &str| -> Dynamic {
            ANSWERS.with(|a| a.borrow().get(id).cloned().unwrap_or(Dynamic::UNIT))
        });
        Sandbox {
            engine: Arc::new(engine),
            limits,
        }
    }

    /// The limits every evaluation in this sandbox runs under.
    pub fn limits(&self) -> Limits {
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
    pub fn compile_script(&self, kind: ScriptKind, source: &str) -> Result<AST, ScriptError> {
        let ast = self
            .engine
            .compile_with_scope(&Self::scope_for(kind), source)
            .map_err(|e| parse_error(e, kind))?;
        static_check(kind, source).map_or(Ok(ast), Err)
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
        self.eval_alert(ast, variables, answers).map(|(b, _)| b)
    }

    /// Evaluates an alert's `when:` or `script:`: its result is `true` or
    /// `false`, or a map `#{ alert: bool, note: "..." }` whose non-empty
    /// `note` comes back as the second value (the incident's evidence).
    ///
    /// The variables are bound as constants for this run only: the AST was
    /// compiled against plain variables, so nothing was folded into it, and
    /// a script that assigns to one fails here.
    pub fn eval_alert(
        &self,
        ast: &AST,
        variables: Vec<(&str, Dynamic)>,
        answers: Map,
    ) -> Result<(bool, Option<String>), String> {
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
                return Err(
                    "script returned a map without `alert: true` or `alert: false`".to_owned(),
                );
            };
            let note = map
                .get("note")
                .filter(|n| !n.is_unit())
                .map(|n| n.to_string())
                .filter(|n| !n.trim().is_empty());
            return Ok((b, note));
        }
        Err(format!(
            "script returned {} where true or false was expected",
            value.type_name()
        ))
    }
}

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
    pub fn probe(
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
        let member = crate::engine::segment::to_dynamic(&sample_member());
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
        let previous = ANSWERS.with(|a| std::mem::replace(&mut *a.borrow_mut(), answers));
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
        ANSWERS.with(|a| *a.borrow_mut() = previous);
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

/// Functions that exist only where their context does: `answer(id)` reads
/// the survey answers an alert is evaluated with.
const ALERT_ONLY_FUNCTIONS: &[&str] = &["answer"];

/// What compiles but cannot work, found in the source (outside strings
/// and comments) so it is caught however the script branches: a call to a
/// function the kind's context does not define (`answer("mood")` in a
/// segment, which has no survey), and a member field that does not exist.
fn static_check(kind: ScriptKind, source: &str) -> Option<ScriptError> {
    if kind != ScriptKind::Alert
        && let Some((name, line, column)) = calls(source)
            .into_iter()
            .find(|(name, _, _)| ALERT_ONLY_FUNCTIONS.contains(&name.as_str()))
    {
        return Some(ScriptError {
            message: format!("`{name}()` reads survey answers, and a segment's `when:` has none"),
            hint: Some(
                "survey answers reach alerts only; select members here by roster fields and attributes, like `member.attributes.progress_level`"
                    .to_owned(),
            ),
            line: Some(line),
            column: Some(column),
        });
    }
    if let Some(found) = mismatched_comparison(source) {
        return Some(found);
    }
    if kind == ScriptKind::Alert
        && let Some((var, name, line, column)) = unknown_context_fields(source).into_iter().next()
    {
        let fields = CONTEXT_FIELDS
            .iter()
            .find(|(v, _)| *v == var)
            .map_or(&[][..], |(_, f)| *f);
        return Some(ScriptError {
            message: format!(
                "`{var}.{name}` is not a field of `{var}`, so it would always be `()`"
            ),
            hint: crate::text::did_you_mean(&name, fields.iter().copied())
                .or_else(|| Some(format!("`{var}` has: {}", fields.join(", ")))),
            line: Some(line),
            column: Some(column),
        });
    }
    let (name, line, column) = unknown_member_fields(source).into_iter().next()?;
    Some(ScriptError {
        message: format!("`member.{name}` is not a member field, so it would always be `()`"),
        hint: crate::text::did_you_mean(&name, member_view_fields()).or_else(|| {
            Some(format!(
                "for a roster attribute write `member.attributes.{name}`"
            ))
        }),
        line: Some(line),
        column: Some(column),
    })
}

/// A word or punctuation character of Rhai source, with its 1-based place.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
    column: usize,
}

/// The words and punctuation of Rhai source, skipping comments and white
/// space; a string or character literal is one token, `"` and its text.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut found = Vec::new();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut column);
            }
        } else if c == '/' && next == Some('*') {
            advance(&mut i, &mut line, &mut column);
            advance(&mut i, &mut line, &mut column);
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                advance(&mut i, &mut line, &mut column);
            }
            for _ in 0..2 {
                if i < chars.len() {
                    advance(&mut i, &mut line, &mut column);
                }
            }
        } else if matches!(c, '"' | '\'' | '`') {
            // A string stands as one token: `"` and its raw text.
            let (start_line, start_column) = (line, column);
            let mut text = String::from('"');
            advance(&mut i, &mut line, &mut column);
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    advance(&mut i, &mut line, &mut column);
                }
                text.push(chars[i]);
                advance(&mut i, &mut line, &mut column);
            }
            if i < chars.len() {
                advance(&mut i, &mut line, &mut column);
            }
            found.push(Token {
                text,
                line: start_line,
                column: start_column,
            });
        } else if c.is_alphanumeric() || c == '_' {
            let (start_line, start_column) = (line, column);
            let mut word = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                word.push(chars[i]);
                advance(&mut i, &mut line, &mut column);
            }
            found.push(Token {
                text: word,
                line: start_line,
                column: start_column,
            });
        } else {
            if !c.is_whitespace() {
                found.push(Token {
                    text: c.to_string(),
                    line,
                    column,
                });
            }
            advance(&mut i, &mut line, &mut column);
        }
    }
    found
}

fn is_word(t: &Token) -> bool {
    t.text.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// Every plain function call in Rhai source (`name(`, not `.name(` and not
/// `fn name(`), with its 1-based line and column, outside strings and
/// comments.
fn calls(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            let before = i.checked_sub(1).and_then(|b| tokens.get(b));
            is_word(t)
                && tokens.get(i + 1).is_some_and(|n| n.text == "(")
                && !before.is_some_and(|b| b.text == "." || b.text == "fn")
        })
        .map(|(_, t)| (t.text.clone(), t.line, t.column))
        .collect()
}

/// The questions named by `answer("id")` calls in Rhai source, outside
/// strings and comments, each with the 1-based line and column of its
/// `answer`.
pub(crate) fn answer_calls(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            t.text == "answer"
                && (*i == 0 || !matches!(text(i - 1), "." | "fn"))
                && text(i + 1) == "("
                && text(i + 2).starts_with('"')
                && text(i + 3) == ")"
        })
        .map(|(i, t)| (text(i + 2)[1..].to_owned(), t.line, t.column))
        .collect()
}

/// `member.NAME` where NAME is not a field of the member view: Rhai reads
/// it as `()`, so the script would quietly compare nothing. With the name
/// and the place of NAME.
fn unknown_member_fields(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    tokens
        .windows(3)
        .enumerate()
        .filter(|(i, w)| {
            let before = i.checked_sub(1).and_then(|b| tokens.get(b));
            w[0].text == "member"
                && before.is_none_or(|b| b.text != ".")
                && w[1].text == "."
                && is_word(&w[2])
                && !is_member_view_field(&w[2].text)
                // `member.x(` is a method call, like `member.keys()`.
                && tokens.get(i + 3).is_none_or(|n| n.text != "(")
        })
        .map(|(_, w)| (w[2].text.clone(), w[2].line, w[2].column))
        .collect()
}

/// `score.NAME` or `engagement.NAME` where NAME is not one of the map's
/// keys ([`CONTEXT_FIELDS`]): `(variable, NAME, line, column)`.
fn unknown_context_fields(source: &str) -> Vec<(&'static str, String, usize, usize)> {
    let tokens = tokens(source);
    let mut found = Vec::new();
    for (i, w) in tokens.windows(3).enumerate() {
        let before = i.checked_sub(1).and_then(|b| tokens.get(b));
        let Some((var, fields)) = CONTEXT_FIELDS.iter().find(|(v, _)| *v == w[0].text) else {
            continue;
        };
        if before.is_some_and(|b| b.text == ".")
            || w[1].text != "."
            || !is_word(&w[2])
            || fields.contains(&w[2].text.as_str())
            || tokens.get(i + 3).is_some_and(|n| n.text == "(")
        {
            continue;
        }
        found.push((*var, w[2].text.clone(), w[2].line, w[2].column));
    }
    found
}

/// `member.FIELD OP LITERAL` where the literal's type cannot compare with
/// the field's: Rhai answers `false` to a comparison across types (`"2026-01-05"
/// < 30`), so the script would quietly never hold.
fn mismatched_comparison(source: &str) -> Option<ScriptError> {
    use super::segment::{FieldType, field_type};
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    for (i, t) in tokens.iter().enumerate() {
        if t.text != "member" || (i > 0 && text(i - 1) == ".") || text(i + 1) != "." {
            continue;
        }
        let field = text(i + 2);
        if field == "attributes" || !is_member_view_field(field) {
            continue;
        }
        // `member.FIELD OP LITERAL`, or `LITERAL OP member.FIELD`.
        let after = match (text(i + 3), text(i + 4)) {
            ("<" | ">", "=") | ("=" | "!", "=") => {
                Some((format!("{}{}", text(i + 3), text(i + 4)), i + 5))
            }
            ("<" | ">", _) => Some((text(i + 3).to_owned(), i + 4)),
            _ => None,
        };
        let before = || {
            if matches!(text(i + 3), "." | "(" | "[") {
                return None;
            }
            let j = i.checked_sub(1)?;
            match (text(j.checked_sub(1)?), text(j)) {
                ("<" | ">" | "=" | "!", "=") => {
                    Some((format!("{}=", text(j - 1)), j.checked_sub(2)?))
                }
                (_, "<" | ">") => Some((text(j).to_owned(), j.checked_sub(1)?)),
                _ => None,
            }
        };
        let (fragment, op, rhs) = match after
            .map(|a| (true, a))
            .or_else(|| before().map(|b| (false, b)))
        {
            Some((true, (op, rhs))) => (format!("member.{field} {op} ..."), op, rhs),
            Some((false, (op, rhs))) => (format!("... {op} member.{field}"), op, rhs),
            None => continue,
        };
        let literal = match text(rhs) {
            t if t.starts_with('"') => "text",
            "true" | "false" => "a boolean",
            t if t.starts_with(|c: char| c.is_ascii_digit()) => "a number",
            _ => continue,
        };
        let ordering = op.starts_with(['<', '>']);
        let Some(ty) = field_type(&crate::engine::rules::Field::Member(field.to_owned())) else {
            continue;
        };
        let (noun, hint) = match (ty, literal) {
            (FieldType::Number, "a number") | (FieldType::Date | FieldType::Text, "text") => continue,
            (FieldType::Date, _) => (
                "a date",
                "for a number of days compare `member.days_since_joined`; for a date write it in quotes, like `\"2026-01-31\"`".to_owned(),
            ),
            (FieldType::Number, _) => ("a number", "write the number without quotes, like `30`".to_owned()),
            (FieldType::Text, _) => ("text", "write the text in quotes, like `\"en\"`".to_owned()),
            (FieldType::TextList, _) => (
                "a list",
                format!("to test membership write `member.{field}.contains(\"...\")`"),
            ),
        };
        // A list compares with nothing, and equals no text; `==` with a
        // number or boolean is left to the other checks.
        if ty == FieldType::TextList && !ordering && literal != "text" {
            continue;
        }
        return Some(ScriptError {
            message: format!(
                "`{fragment}` compares {noun} with {literal}, which Rhai answers `false` every time"
            ),
            hint: Some(hint),
            line: Some(t.line),
            column: Some(t.column),
        });
    }
    None
}

/// `answer("id") OP LITERAL` where the question's answers (as the samples
/// give them: a number, the text of a choice or free text, `true`/`false`
/// for yes/no) cannot compare with the literal.
fn mismatched_answer(source: &str, answer_samples: &[Map]) -> Option<ScriptError> {
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    for (i, t) in tokens.iter().enumerate() {
        if t.text != "answer" || (i > 0 && text(i - 1) == ".") || text(i + 1) != "(" {
            continue;
        }
        let Some(id) = text(i + 2).strip_prefix('"') else {
            continue;
        };
        if text(i + 3) != ")" {
            continue;
        }
        let (op, rhs) = match (text(i + 4), text(i + 5)) {
            ("<" | ">", "=") | ("=" | "!", "=") => {
                (format!("{}{}", text(i + 4), text(i + 5)), i + 6)
            }
            ("<" | ">", _) => (text(i + 4).to_owned(), i + 5),
            _ => continue,
        };
        let literal = match text(rhs) {
            r if r.starts_with('"') => "text",
            "true" | "false" => "a boolean",
            r if r.starts_with(|c: char| c.is_ascii_digit()) => "a number",
            _ => continue,
        };
        let Some(sample) = answer_samples.iter().find_map(|m| m.get(id)) else {
            continue;
        };
        let (answer, hint) = if sample.is_int() || sample.is_float() {
            ("a number", "compare it with a number, like `3`")
        } else if sample.is_bool() {
            ("a boolean", "a yes/no answer is `true` or `false`")
        } else if sample.is_string() {
            (
                "text",
                "compare it with text in quotes, like one of the question's choices",
            )
        } else {
            continue;
        };
        if answer == literal {
            continue;
        }
        return Some(ScriptError {
            message: format!(
                "`answer(\"{id}\") {op} ...` compares {answer} (how question `{id}` is answered) with {literal}, which Rhai answers `false` every time"
            ),
            hint: Some(hint.to_owned()),
            line: Some(t.line),
            column: Some(t.column),
        });
    }
    None
}

/// The fields of the member a script sees: the member fields segments
/// match on ([`MEMBER_FIELDS`](super::rules::MEMBER_FIELDS)), and
/// `attributes`.
fn member_view_fields() -> impl Iterator<Item = &'static str> {
    super::rules::MEMBER_FIELDS
        .iter()
        .copied()
        .chain(["attributes"])
}

fn is_member_view_field(name: &str) -> bool {
    member_view_fields().any(|f| f == name)
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
/// ([`ALERT_CONTEXT`]): a reply inside a survey whose answers are
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

    #[test]
    fn answer_in_a_segment_is_an_error_however_the_script_branches() {
        let s = sandbox();
        let err = s
            .compile_expression(
                ScriptKind::Segment,
                "member.days_since_joined > 9999 && answer(\"mood\") <= 3",
            )
            .unwrap_err();
        assert_eq!(
            err.message,
            "`answer()` reads survey answers, and a segment's `when:` has none"
        );
        assert_eq!((err.line, err.column), (Some(1), Some(36)));
        assert!(
            s.compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3")
                .is_ok()
        );
        // Strings, comments and methods named `answer` are not calls of it.
        for ok in [
            "member.first_name == \"answer(x)\"",
            "member.attributes.answer == 1 // answer(\"mood\")",
            "member.groups.contains(\"answer\")",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_member_field_that_does_not_exist_is_an_error() {
        let s = sandbox();
        for kind in [ScriptKind::Segment, ScriptKind::Alert] {
            let err = s
                .compile_expression(
                    kind,
                    "member.language == \"es\" || member.days_since_join < 30",
                )
                .unwrap_err();
            assert_eq!(
                err.message,
                "`member.days_since_join` is not a member field, so it would always be `()`"
            );
            assert_eq!(
                err.hint.as_deref(),
                Some("did you mean `days_since_joined`?")
            );
            assert_eq!((err.line, err.column), (Some(1), Some(35)));
        }
        let err = s
            .compile_expression(ScriptKind::Segment, "member.progress_level < 3")
            .unwrap_err();
        assert_eq!(
            err.hint.as_deref(),
            Some("for a roster attribute write `member.attributes.progress_level`")
        );
        for ok in [
            "member.attributes.anything > 2",
            "member.groups.contains(\"tuesday\")",
            "member.keys().len() > 0",
            "\"member.nope\" != member.first_name",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_comparison_across_types_with_a_member_field_is_an_error() {
        let s = sandbox();
        for (source, message) in [
            (
                "member.joined_on < 30",
                "`member.joined_on < ...` compares a date with a number, which Rhai answers `false` every time",
            ),
            (
                "member.language == \"es\" && member.days_since_joined >= \"30\"",
                "`member.days_since_joined >= ...` compares a number with text, which Rhai answers `false` every time",
            ),
            (
                "member.external_id == 1001",
                "`member.external_id == ...` compares text with a number, which Rhai answers `false` every time",
            ),
            (
                "member.groups == \"tuesday\"",
                "`member.groups == ...` compares a list with text, which Rhai answers `false` every time",
            ),
            (
                "30 >= member.joined_on",
                "`... >= member.joined_on` compares a date with a number, which Rhai answers `false` every time",
            ),
            (
                "member.language == \"es\" && \"30\" < member.days_since_joined",
                "`... < member.days_since_joined` compares a number with text, which Rhai answers `false` every time",
            ),
        ] {
            let err = s
                .compile_expression(ScriptKind::Segment, source)
                .unwrap_err();
            assert_eq!(err.message, message, "{source}");
        }
        // The premise: plain Rhai answers such a comparison `false`, no error.
        let plain = rhai::Engine::new();
        assert!(!plain.eval::<bool>("\"2026-01-05\" < 30").unwrap());
        assert!(!plain.eval::<bool>("12 >= \"30\"").unwrap());
        for ok in [
            "member.joined_on < \"2026-01-31\"",
            "member.days_since_joined < 30",
            "member.language != \"en\"",
            "member.groups.contains(\"tuesday\")",
            "member.attributes.level < 3",
            "30 > member.days_since_joined",
            "3 < member.groups.len()",
            "\"2026-01-01\" <= member.joined_on",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn an_answer_compared_with_a_literal_of_another_type_is_an_error() {
        let s = sandbox();
        let samples = [Map::from_iter([
            ("mood".into(), Dynamic::from(1_i64)),
            ("feeling".into(), Dynamic::from("good".to_owned())),
            ("ok".into(), Dynamic::from(true)),
        ])];
        for (source, message) in [
            (
                "answer(\"feeling\") <= 3",
                "`answer(\"feeling\") <= ...` compares text (how question `feeling` is answered) with a number, which Rhai answers `false` every time",
            ),
            (
                "member.days_since_joined < 30 && answer(\"mood\") == \"3\"",
                "`answer(\"mood\") == ...` compares a number (how question `mood` is answered) with text, which Rhai answers `false` every time",
            ),
            (
                "answer(\"ok\") == \"yes\"",
                "`answer(\"ok\") == ...` compares a boolean (how question `ok` is answered) with text, which Rhai answers `false` every time",
            ),
        ] {
            let ast = s.compile_expression(ScriptKind::Alert, source).unwrap();
            let err = s
                .probe(ScriptKind::Alert, &ast, source, &samples)
                .unwrap_or_else(|| panic!("not caught: {source}"));
            assert_eq!(err.message, message);
        }
        for ok in [
            "answer(\"mood\") <= 3",
            "answer(\"feeling\") == \"good\"",
            "answer(\"ok\") == false",
            "answer(\"unasked\") == 3",
        ] {
            let ast = s.compile_expression(ScriptKind::Alert, ok).unwrap();
            assert!(
                s.probe(ScriptKind::Alert, &ast, ok, &samples).is_none(),
                "{ok}"
            );
        }
    }

    #[test]
    fn the_source_checks_never_panic_on_arbitrary_text() {
        const PIECES: &[&str] = &[
            "member",
            ".",
            "answer",
            "(",
            ")",
            "\"",
            "'",
            "`",
            "\\",
            "<",
            ">",
            "=",
            "!",
            "30",
            "joined_on",
            "groups",
            "fn",
            " ",
            "\n",
            "/",
            "*",
            "é",
            "🙂",
            "x",
            "\"mood\"",
        ];
        let samples = [Map::from_iter([("mood".into(), Dynamic::from(1_i64))])];
        let mut state: u64 = 0xD1B5_4A32_D192_ED03;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut found = 0;
        for _ in 0..5_000 {
            let n = next() % 12;
            let source: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            for kind in [ScriptKind::Segment, ScriptKind::Alert] {
                found += usize::from(static_check(kind, &source).is_some());
            }
            found += usize::from(mismatched_answer(&source, &samples).is_some());
        }
        assert!(found > 0, "no input was flagged at all");
    }

    #[test]
    fn calls_are_found_outside_strings_comments_and_definitions() {
        let found: Vec<(String, usize, usize)> =
            calls("fn helper(x) { x }\n/* answer(1) */ let a = 'a';\nhelper (\"f(\") + x.len()");
        assert_eq!(found, vec![("helper".to_owned(), 3, 1)]);
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
            eval("#{ note: \"x\" }"),
            Err("script returned a map without `alert: true` or `alert: false`".to_owned())
        );
    }

    #[test]
    fn a_score_or_engagement_field_that_does_not_exist_is_an_error() {
        let s = sandbox();
        let err = s
            .compile_expression(ScriptKind::Alert, "engagement.replies_30 > 2")
            .unwrap_err();
        assert_eq!(
            err.message,
            "`engagement.replies_30` is not a field of `engagement`, so it would always be `()`"
        );
        assert_eq!(err.hint.as_deref(), Some("did you mean `replies_30d`?"));
        assert_eq!((err.line, err.column), (Some(1), Some(12)));
        let err = s
            .compile_expression(ScriptKind::Alert, "score.sum > 9")
            .unwrap_err();
        assert_eq!(
            err.hint.as_deref(),
            Some("`score` has: total, band, complete")
        );
        for ok in [
            "score.total >= 10 && score.band == \"severe\" && score.complete",
            "engagement.days_since_last_reply > 14.0",
            "score.keys().len() == 3",
        ] {
            assert!(s.compile_expression(ScriptKind::Alert, ok).is_ok(), "{ok}");
        }
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
