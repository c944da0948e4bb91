//! Message templates: minijinja in strict mode, no auto-escaping.
//!
//! Strict means a variable that is not there is an error, never an empty
//! string in a patient's text. `hearth check` renders every template against
//! [`sample_context`], which has exactly the variables a real send provides,
//! so a misspelt variable fails the check rather than a send.
//!
//! Templates are bounded: a body's source is at most [`MAX_SOURCE_BYTES`],
//! what it renders to at most [`MAX_RENDERED_CHARS`] (checked while it
//! renders, so a runaway loop stops there), `range()` gives at most
//! [`MAX_RANGE`] numbers, and one render runs at most [`MAX_FUEL`]
//! instructions, so nested loops that print nothing still end.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// The longest template source, in bytes: a text message's body with room
/// for template syntax.
pub(crate) const MAX_SOURCE_BYTES: usize = 2_048;

/// The longest rendered message, in characters: ten GSM-7 SMS segments.
pub(crate) const MAX_RENDERED_CHARS: usize = 1_600;

/// The most numbers `range()` gives in a template.
pub(crate) const MAX_RANGE: u32 = 1_000;

/// The most template instructions one render may run (minijinja's fuel):
/// far above any real message (a loop over a thousand items costs a few
/// thousand), far below nested loops that would run for minutes.
pub(crate) const MAX_FUEL: u64 = 200_000;

/// Every template of a rule set, compiled once.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

/// A template that failed to compile or to render, with the place inside
/// the template body (1-based) when minijinja knows it.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub(crate) message: String,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) hint: Option<String>,
}

impl TemplateError {
    fn from_minijinja(e: &Error, source: Option<&str>) -> TemplateError {
        let snippet = source
            .zip(e.range())
            .and_then(|(src, r)| src.get(r.clone()).map(|s| (src, r, s)));
        let (line, column) = match &snippet {
            Some((src, r, _)) => {
                let before = &src[..r.start];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (Some(line), Some(column))
            }
            None => (e.line(), None),
        };
        let (message, hint) = match (e.kind(), &snippet) {
            (ErrorKind::UndefinedError, Some((_, _, expr))) => (
                format!("undefined variable `{}`", expr.trim()),
                variable_hint(expr.trim()),
            ),
            (ErrorKind::UndefinedError, None) => ("undefined variable".to_owned(), None),
            (ErrorKind::UnknownFilter, _) => {
                let name = snippet
                    .as_ref()
                    .map(|(_, _, s)| s.trim().to_owned())
                    .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
                    .or_else(|| {
                        e.detail()
                            .and_then(|d| d.strip_prefix("filter "))
                            .and_then(|d| d.strip_suffix(" is unknown"))
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                (
                    format!("unknown filter `{name}`"),
                    crate::text::did_you_mean(&name, FILTERS.iter().copied())
                        .or_else(|| Some(format!("filters: {}", FILTERS.join(", ")))),
                )
            }
            (kind, _) => match e.detail() {
                Some(detail) => (format!("{}: {detail}", kind_text(kind)), None),
                None => (kind_text(kind).to_owned(), None),
            },
        };
        TemplateError {
            message,
            line,
            column,
            hint,
        }
    }
}

/// The variables templates may use, for "did you mean" hints.
const VARIABLES: &[&str] = &[
    "member.id",
    "member.first_name",
    "member.last_name",
    "member.language",
    "member.timezone",
    "member.days_since_joined",
    "member.attributes",
    "group.id",
    "group.name",
    "group.timezone",
    "session.starts_at",
    "session.ends_at",
    "session.when",
];

/// Filters templates commonly use, for hints.
const FILTERS: &[&str] = &[
    "time",
    "date",
    "weekday",
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "default",
    "length",
    "replace",
    "round",
    "join",
    "first",
    "last",
    "abs",
];

fn variable_hint(expr: &str) -> Option<String> {
    let name: String = expr
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    crate::text::did_you_mean(&name, VARIABLES.iter().copied())
        .or_else(|| {
            // `first_name` alone: the writer forgot the `member.` in front.
            VARIABLES
                .iter()
                .find(|v| v.rsplit('.').next() == Some(name.as_str()))
                .map(|v| format!("did you mean `{v}`?"))
        })
        .or_else(|| Some(format!("templates can use {}", VARIABLES.join(", "))))
}

fn kind_text(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::SyntaxError => "template syntax error",
        ErrorKind::UnknownFilter => "unknown template filter",
        ErrorKind::UnknownFunction => "unknown template function",
        ErrorKind::InvalidOperation => "invalid operation in template",
        ErrorKind::BadSerialization => "bad template value",
        ErrorKind::OutOfFuel => {
            "template ran out of fuel: it runs past the instruction limit (nested loops?)"
        }
        _ => "template error",
    }
}

/// Builds the environment every template compiles into.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("time", time_filter);
    env.add_filter("date", date_filter);
    env.add_filter("weekday", weekday_filter);
    env.add_function("range", bounded_range);
    env.set_fuel(Some(MAX_FUEL));
    env
}

/// minijinja's `range`, capped at [`MAX_RANGE`] numbers: no text message
/// needs more, and a bound keeps nested loops from running for minutes.
fn bounded_range(lower: u32, upper: Option<u32>, step: Option<u32>) -> Result<Vec<u32>, Error> {
    let (start, end) = match upper {
        Some(upper) => (lower, upper),
        None => (0, lower),
    };
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "range's step must not be 0",
        ));
    }
    let count = end.saturating_sub(start).div_ceil(step);
    if count > MAX_RANGE {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("range of {count} numbers is above the template limit of {MAX_RANGE}"),
        ));
    }
    Ok((start..end).step_by(step as usize).collect())
}

/// A writer that refuses to grow past the rendered-length cap, so a
/// template stops as soon as it is too long instead of after.
struct Capped {
    out: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Four bytes is the longest UTF-8 character; the exact count in
        // characters is taken once rendering is done.
        if self.out.len() + buf.len() > MAX_RENDERED_CHARS * 4 {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too long"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_long(chars: Option<usize>) -> TemplateError {
    let size = match chars {
        Some(n) => format!("{n} characters"),
        None => format!("more than {} characters", MAX_RENDERED_CHARS * 4),
    };
    TemplateError {
        message: format!(
            "renders to {size}, above the limit of {MAX_RENDERED_CHARS} (10 SMS segments)"
        ),
        line: None,
        column: None,
        hint: Some("shorten the text, or bound the loop that repeats it".to_owned()),
    }
}

/// For a template that does not compile: the body with its `{{ ... }}`
/// and `{% ... %}` delimiters balanced, when one half-closed or half-opened
/// delimiter was the fault (`{{ x }` → `{{ x }}`) and the fixed body
/// compiles. Returns the fixed line.
fn balanced_delimiters(body: &str) -> Option<(String, usize, usize)> {
    let fixed = balance(body)?;
    let mut env = environment();
    env.add_template_owned("fixed".to_owned(), fixed.clone())
        .ok()?;
    body.lines()
        .zip(fixed.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| {
            let column = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
            (b.trim().to_owned(), i + 1, column + 1)
        })
}

fn balance(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len() + 2);
    let mut rest = body;
    let mut changed = false;
    while !rest.is_empty() {
        let opener = ["{{", "{%"]
            .iter()
            .filter_map(|o| rest.find(o).map(|i| (i, *o)))
            .min();
        let stray_close = rest
            .find("}}")
            .filter(|c| opener.is_none_or(|(i, _)| *c < i));
        if let Some(close) = stray_close {
            // `{ x }}`: a close with no opener; the `{` before it wants doubling.
            let open = rest[..close].rfind('{')?;
            if changed {
                return None;
            }
            changed = true;
            out.push_str(&rest[..open]);
            out.push_str("{{");
            out.push_str(&rest[open + 1..close + 2]);
            rest = &rest[close + 2..];
            continue;
        }
        let Some((start, open)) = opener else {
            out.push_str(rest);
            break;
        };
        let close = if open == "{{" { "}}" } else { "%}" };
        let inner_start = start + 2;
        let next_open = ["{{", "{%"]
            .iter()
            .filter_map(|o| rest[inner_start..].find(o))
            .min()
            .map_or(rest.len(), |i| inner_start + i);
        match rest[inner_start..next_open].find(close) {
            Some(i) => {
                let end = inner_start + i + 2;
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            None => {
                // `{{ x }` or `{% if x }`: a single `}` was meant to close it.
                let i = rest[inner_start..next_open].find('}')?;
                if changed {
                    return None;
                }
                changed = true;
                let at = inner_start + i;
                out.push_str(&rest[..at]);
                out.push_str(close);
                rest = &rest[at + 1..];
            }
        }
    }
    changed.then_some(out)
}

fn parse_instant(value: &str) -> Result<DateTime<FixedOffset>, Error> {
    DateTime::parse_from_rfc3339(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("expected an instant like 2026-01-06T18:00:00-05:00, got `{value}`"),
        )
    })
}

/// `6:00 PM`, in the offset the instant carries (the group's local time).
fn time_filter(value: String) -> Result<String, Error> {
    Ok(parse_instant(&value)?.format("%-I:%M %p").to_string())
}

/// `Tuesday, January 6`.
fn date_filter(value: String) -> Result<String, Error> {
    Ok(parse_instant(&value)?.format("%A, %B %-d").to_string())
}

/// `Tuesday`.
fn weekday_filter(value: String) -> Result<String, Error> {
    Ok(parse_instant(&value)?.format("%A").to_string())
}

impl Templates {
    /// Compiles one template into the environment being built. The error's
    /// line is within `body`.
    pub(crate) fn add(
        env: &mut Environment<'static>,
        name: &str,
        body: &str,
    ) -> Result<(), TemplateError> {
        if body.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError {
                message: format!(
                    "source is {} bytes long, above the limit of {MAX_SOURCE_BYTES}",
                    body.len()
                ),
                line: None,
                column: None,
                hint: Some(
                    "a text message is read on a phone; shorten it or split it into two messages"
                        .to_owned(),
                ),
            });
        }
        env.add_template_owned(name.to_owned(), body.to_owned())
            .map_err(|e| {
                let mut err = TemplateError::from_minijinja(&e, Some(body));
                if e.kind() == ErrorKind::SyntaxError
                    && let Some((fixed, _, _)) = balanced_delimiters(body)
                {
                    err.hint = Some(format!("balance the delimiters: `{fixed}`"));
                }
                err
            })?;
        // `{ x }}` compiles, as text: the member would get the braces.
        if let Some((fixed, line, column)) = balanced_delimiters(body) {
            return Err(TemplateError {
                message: "`}}` with no `{{` before it would be sent as typed".to_owned(),
                line: Some(line),
                column: Some(column),
                hint: Some(format!("balance the delimiters: `{fixed}`")),
            });
        }
        Ok(())
    }

    pub(crate) fn new(env: Environment<'static>) -> Templates {
        Templates { env: Arc::new(env) }
    }

    /// Renders a compiled template. Trailing and leading white space is
    /// trimmed, since YAML block scalars leave a newline behind.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError::from_minijinja(&e, None))?;
        let mut out = Capped {
            out: Vec::new(),
            overflowed: false,
        };
        if let Err(e) = template.render_captured_to(context, &mut out) {
            return Err(if out.overflowed {
                too_long(None)
            } else {
                TemplateError::from_minijinja(&e, Some(template.source()))
            });
        }
        let text = String::from_utf8_lossy(&out.out).trim().to_owned();
        let chars = text.chars().count();
        if chars > MAX_RENDERED_CHARS {
            return Err(too_long(Some(chars)));
        }
        Ok(text)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// Free-form roster attributes in the sample context: any name resolves,
/// since the roster decides which exist, not the rules.
#[derive(Debug)]
struct AnyAttributes;

impl Object for AnyAttributes {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().map(|_| Value::from("sample"))
    }
}

/// The variables a message template may use, with sample values. Real sends
/// build the same shape from the store (member, group, next session).
pub fn sample_context() -> Value {
    let member: BTreeMap<&str, Value> = BTreeMap::from([
        ("id", Value::from("m-0001")),
        ("first_name", Value::from("Alex")),
        ("last_name", Value::from("Rivera")),
        ("language", Value::from("en")),
        ("timezone", Value::from("America/New_York")),
        ("days_since_joined", Value::from(12)),
        ("attributes", Value::from_object(AnyAttributes)),
    ]);
    let group: BTreeMap<&str, Value> = BTreeMap::from([
        ("id", Value::from("tuesday-anxiety")),
        ("name", Value::from("Tuesday Anxiety Support")),
        ("timezone", Value::from("America/New_York")),
    ]);
    let session = session_value(
        &crate::domain::session::sample_session(),
        crate::domain::session::sample_now(),
    );
    Value::from(BTreeMap::from([
        ("member", Value::from(member)),
        ("group", Value::from(group)),
        ("session", session),
    ]))
}

/// A session as templates see it, for a message sent at `now`: its start
/// and end in the group's local time, and `when` (`today`, `tomorrow`,
/// `on Thursday`, ...; see [`crate::domain::session::Session::when`]).
pub(crate) fn session_value(
    session: &crate::domain::session::Session,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    Value::from(BTreeMap::from([
        (
            "starts_at",
            Value::from(session.local_starts_at.to_rfc3339()),
        ),
        ("ends_at", Value::from(session.local_ends_at.to_rfc3339())),
        ("when", Value::from(session.when(now))),
    ]))
}

/// The context a real send renders with: the member's view (no phone),
/// and, when the message concerns a group, the group and its next session
/// (in the group's local time, named as seen at `now`). Same shape as
/// [`sample_context`].
pub fn member_context(
    member: &serde_json::Value,
    group: Option<&super::model::Group>,
    session: Option<&crate::domain::session::Session>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
    ctx.insert("member", json_value(member));
    if let Some(g) = group {
        ctx.insert(
            "group",
            Value::from(BTreeMap::from([
                ("id", Value::from(g.id.clone())),
                ("name", Value::from(g.name.clone())),
                ("timezone", Value::from(g.timezone.name())),
            ])),
        );
        if let Some(session) = session {
            ctx.insert("session", session_value(session, now));
        }
    }
    Value::from(ctx)
}

/// JSON → template value.
fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// What a reply to an unknown sender has: nothing about a member, group
/// or session. Crisis replies must render with it.
pub(crate) fn unknown_sender_context() -> Value {
    Value::from(BTreeMap::<&str, Value>::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(body: &str) -> Result<Templates, TemplateError> {
        let mut env = environment();
        Templates::add(&mut env, "t", body)?;
        Ok(Templates::new(env))
    }

    #[test]
    fn renders_the_sample_context_with_filters() {
        let t = compile("Hi {{ member.first_name }}, {{ group.name }} meets {{ session.starts_at | weekday }} at {{ session.starts_at | time }}.").unwrap();
        assert_eq!(
            t.render("t", &sample_context()).unwrap(),
            "Hi Alex, Tuesday Anxiety Support meets Tuesday at 6:00 PM."
        );
    }

    #[test]
    fn a_misspelt_variable_is_an_error_not_a_blank() {
        let t = compile("Hi {{ member.frist_name }}").unwrap();
        let err = t.render("t", &sample_context()).unwrap_err();
        assert_eq!(err.message, "undefined variable `member.frist_name`");
        assert_eq!(
            err.hint.as_deref(),
            Some("did you mean `member.first_name`?")
        );
        assert_eq!((err.line, err.column), (Some(1), Some(7)));
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let err = compile("line one\nHi {{ member.first_name }").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("syntax error"), "{}", err.message);
    }

    #[test]
    fn an_unbalanced_delimiter_gets_the_fixed_text_as_a_hint() {
        for (body, fixed) in [
            (
                "Hi {{ member.first_name }, see you soon.",
                "Hi {{ member.first_name }}, see you soon.",
            ),
            (
                "line one\nHi { member.first_name }}!",
                "Hi {{ member.first_name }}!",
            ),
            (
                "{% if member.language == \"es\" }Hola{% else %}Hi{% endif %}",
                "{% if member.language == \"es\" %}Hola{% else %}Hi{% endif %}",
            ),
        ] {
            let err = compile(body).unwrap_err();
            assert!(
                err.message.contains("syntax error") || err.message.contains("no `{{`"),
                "{body}: {}",
                err.message
            );
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("balance the delimiters: `{fixed}`").as_str()),
                "{body}: {}",
                err.message
            );
            assert!(compile(fixed).is_ok(), "{fixed}");
        }
        // Two faults: no single fix to show.
        assert_eq!(compile("{{ a } and {{ b }").unwrap_err().hint, None);
    }

    #[test]
    fn delimiter_repair_never_panics_and_its_fixed_line_compiles() {
        const PIECES: &[&str] = &[
            "{{",
            "}}",
            "{",
            "}",
            "{%",
            "%}",
            "%",
            " ",
            "x",
            "member.first_name",
            "if x",
            "endif",
            "é",
            "🙂",
            "\"",
            "'",
            "|",
            "-",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut hinted = 0;
        for _ in 0..10_000 {
            let n = next() % 10;
            let body: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let Err(err) = compile(&body) else { continue };
            if let Some(fixed) = err
                .hint
                .as_deref()
                .and_then(|h| h.strip_prefix("balance the delimiters: `"))
                .and_then(|h| h.strip_suffix('`'))
            {
                assert!(compile(fixed).is_ok(), "`{body}` -> `{fixed}`");
                hinted += 1;
            }
        }
        assert!(hinted >= 20, "only {hinted} repairs were tried");
    }

    #[test]
    fn a_template_source_above_the_cap_is_refused() {
        let body = "a".repeat(MAX_SOURCE_BYTES + 1);
        let err = compile(&body).unwrap_err();
        assert_eq!(
            err.message,
            "source is 2049 bytes long, above the limit of 2048"
        );
        assert!(compile(&"a".repeat(MAX_SOURCE_BYTES)).is_ok());
    }

    #[test]
    fn rendering_stops_at_the_cap_even_inside_a_loop() {
        let t = compile(
            "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = t.render("t", &sample_context()).unwrap_err();
        assert!(
            err.message.starts_with("renders to more than"),
            "{}",
            err.message
        );
        let t = compile("{% for i in range(161) %}0123456789{% endfor %}").unwrap();
        let err = t.render("t", &sample_context()).unwrap_err();
        assert_eq!(
            err.message,
            "renders to 1610 characters, above the limit of 1600 (10 SMS segments)"
        );
        let t = compile("{% for i in range(160) %}0123456789{% endfor %}").unwrap();
        assert_eq!(t.render("t", &sample_context()).unwrap().len(), 1_600);
    }

    #[test]
    fn range_is_bounded_so_nested_loops_end() {
        let t = compile("{% for i in range(100000) %}{% endfor %}").unwrap();
        let err = t.render("t", &sample_context()).unwrap_err();
        assert!(
            err.message.contains("above the template limit of 1000"),
            "{}",
            err.message
        );
        // Loops within the range cap that print nothing still end: the
        // render runs out of fuel long before a billion iterations.
        let t = compile(
            "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = t.render("t", &sample_context()).unwrap_err();
        assert!(err.message.contains("fuel"), "{}", err.message);
        let t = compile("{{ range(3) | join(\",\") }} {{ range(2, 8, 3) | join(\",\") }}").unwrap();
        assert_eq!(t.render("t", &sample_context()).unwrap(), "0,1,2 2,5");
    }

    #[test]
    fn attributes_resolve_any_name_in_the_sample() {
        let t = compile("{{ member.attributes.diagnosis }}").unwrap();
        assert_eq!(t.render("t", &sample_context()).unwrap(), "sample");
    }
}
