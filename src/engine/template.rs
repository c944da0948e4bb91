//! Message templates: minijinja in strict mode, no auto-escaping.
//!
//! Strict means a variable that is not there is an error, never an empty
//! string in a patient's text. `hearth check` renders every template against
//! [`sample_context`], which has exactly the variables a real send provides,
//! so a misspelt variable fails the check rather than a send.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// Every template of a rule set, compiled once.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

/// A template that failed to compile or to render, with the place inside
/// the template body (1-based) when minijinja knows it.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub hint: Option<String>,
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
        _ => "template error",
    }
}

/// Builds the environment every template compiles into.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("time", time_filter);
    env.add_filter("date", date_filter);
    env.add_filter("weekday", weekday_filter);
    env
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
    pub fn add(
        env: &mut Environment<'static>,
        name: &str,
        body: &str,
    ) -> Result<(), TemplateError> {
        env.add_template_owned(name.to_owned(), body.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, Some(body)))
    }

    pub fn new(env: Environment<'static>) -> Templates {
        Templates { env: Arc::new(env) }
    }

    /// Renders a compiled template. Trailing and leading white space is
    /// trimmed, since YAML block scalars leave a newline behind.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError::from_minijinja(&e, None))?;
        template
            .render(context)
            .map(|s| s.trim().to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, Some(template.source())))
    }

    pub fn contains(&self, name: &str) -> bool {
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
        &crate::schedule::calendar::sample_session(),
        crate::schedule::calendar::sample_now(),
    );
    Value::from(BTreeMap::from([
        ("member", Value::from(member)),
        ("group", Value::from(group)),
        ("session", session),
    ]))
}

/// A session as templates see it, for a message sent at `now`: its start
/// and end in the group's local time, and `when` (`today`, `tomorrow`,
/// `on Thursday`, ...; see [`crate::schedule::Session::when`]).
pub fn session_value(
    session: &crate::schedule::Session,
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
    group: Option<&super::rules::Group>,
    session: Option<&crate::schedule::Session>,
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
pub fn unknown_sender_context() -> Value {
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
    fn attributes_resolve_any_name_in_the_sample() {
        let t = compile("{{ member.attributes.diagnosis }}").unwrap();
        assert_eq!(t.render("t", &sample_context()).unwrap(), "sample");
    }
}
