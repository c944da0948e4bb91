//! Alert evaluation: keyword/phrase alerts on word boundaries, `when:`
//! expressions and `script:` files in the Rhai sandbox, over a read-only
//! context (its shapes: `docs/RULES.md`). Critical
//! keyword alerts are matched first by the crisis check
//! ([`super::crisis`]); this stage evaluates every alert of its trigger
//! except the one that check already fired, and reports each, fired or
//! not, and why.
//!
//! A script that fails (a limit, an error, a result that is not a bool, a
//! panic) fails only its own evaluation: it is reported as not fired with
//! the error, logged by rule and member id (never the text), and counted.
//! Script notes and errors have the reply and the member's names and
//! external id blanked out before anyone sees them.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use rhai::{Dynamic, Map};

use crate::domain::normalize::{Normalized, phrase_words};
use crate::pipeline::crisis;
use crate::rules::segment::to_dynamic;
use crate::rules::{Alert, RuleSet, Severity};
use crate::store::traits::reply::{Engagement, PastAnswer};

/// What an alert may read. Everything is optional: a scheduled alert has
/// no reply; a reply outside a survey has no answers.
#[derive(Debug, Clone, Default)]
pub struct AlertContext<'a> {
    /// The member's view (`Member::view`: never the phone number).
    pub member: Option<&'a serde_json::Value>,
    /// The text, as sent and as normalised.
    pub reply: Option<&'a Normalized>,
    /// The survey the reply answered, if any.
    pub survey: Option<&'a str>,
    /// That survey's answers so far, this one included, by question id.
    pub answers: Option<&'a BTreeMap<String, serde_json::Value>>,
    /// That survey's score, once it has one (`Scored::to_json`).
    pub score: Option<&'a serde_json::Value>,
    /// Earlier answers (not the current one), oldest first.
    pub history: &'a [PastAnswer],
    pub engagement: Option<&'a Engagement>,
}

/// One alert considered: fired or not, and why. The reply pipeline's
/// decision lists one per alert; a scheduled evaluation reads one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertVerdict {
    pub id: String,
    pub(crate) severity: Severity,
    pub fired: bool,
    /// Why it fired or did not: "keyword `kill myself`", "when: true",
    /// "script note: three low moods in a row: 3, 2, 2", "no keyword",
    /// "when: false", "script failed: …".
    pub reason: String,
    /// For a fired alert, the evidence kept on the incident (the phrase,
    /// the script's note, or the expression); never a name or a number.
    pub evidence: Option<String>,
    /// A script/expression that failed: the error.
    pub error: Option<String>,
    /// What the hit does to incidents (`hearth explain` fills it from the
    /// facts it is given; the daemon's store decides it when applying).
    pub(crate) incident: Option<String>,
}

/// Which alerts a stage evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A reply arrived: every alert without `every:`.
    Reply,
    /// A scheduled evaluation: the alerts with `every:` only.
    Scheduled,
}

/// Evaluates `rules`' alerts for `trigger` in order (critical first, then
/// as the files list them), skipping `skip` (the alert the crisis check
/// already fired). `member_id` is only for logs.
///
/// An alert with several matchers (`keywords:`, `when:`, `script:`) fires
/// when any of them does; all of them run, so a failing script is reported
/// even when a keyword fired. Nothing an alert does can stop the others:
/// a failure (a limit, an error, a result that is not a bool, even a
/// panic) is that alert's `error`, logged by rule and member id, and
/// counted in [`script_failures`].
pub fn evaluate(
    rules: &RuleSet,
    cx: &AlertContext<'_>,
    trigger: Trigger,
    skip: Option<&str>,
    member_id: Option<i64>,
) -> Vec<AlertVerdict> {
    let bound = Bound::new(cx);
    rules
        .alerts
        .iter()
        .filter(|a| match trigger {
            Trigger::Reply => a.every.is_none(),
            Trigger::Scheduled => a.every.is_some(),
        })
        .filter(|a| Some(a.id.as_str()) != skip)
        .map(|alert| consider(rules, alert, cx, &bound, member_id))
        .collect()
}

/// [`evaluate`] for one alert, whatever its trigger.
pub(crate) fn evaluate_alert(
    rules: &RuleSet,
    alert: &Alert,
    cx: &AlertContext<'_>,
    member_id: Option<i64>,
) -> AlertVerdict {
    consider(rules, alert, cx, &Bound::new(cx), member_id)
}

/// Whether `alert`'s keywords match `text` on word boundaries ("kill" is
/// not in "skill"); the first that does.
pub(crate) fn keyword_match<'a>(alert: &'a Alert, text: &Normalized) -> Option<&'a str> {
    alert
        .keywords
        .iter()
        .find(|k| {
            with_phrase_words(k, |phrase| {
                !phrase.is_empty() && crisis::contains_exactly(&text.words, phrase)
            })
        })
        .map(String::as_str)
}

thread_local! {
    /// Keywords as match words: normalising a phrase costs more than
    /// matching it, and the same keywords meet every reply.
    static PHRASES: std::cell::RefCell<std::collections::HashMap<String, Vec<String>>> =
        std::cell::RefCell::default();
}

/// Calls `f` with `keyword`'s match words ([`phrase_words`]), cached.
fn with_phrase_words<T>(keyword: &str, f: impl FnOnce(&[String]) -> T) -> T {
    PHRASES.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Old rule sets' keywords pile up across reloads; start over now
        // and then rather than keep them all.
        if cache.len() > 10_000 {
            cache.clear();
        }
        if !cache.contains_key(keyword) {
            cache.insert(keyword.to_owned(), phrase_words(keyword));
        }
        f(&cache[keyword])
    })
}

static SCRIPT_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Script failures since start, for `/status` and metrics.
pub fn script_failures() -> u64 {
    SCRIPT_FAILURES.load(Ordering::Relaxed)
}

/// The context as Rhai values, built once per evaluation of all alerts.
struct Bound {
    variables: Vec<(&'static str, Dynamic)>,
    answers: Map,
    /// Text that must not appear in a log line, a reason or evidence:
    /// the reply, and the member's names and external id.
    secrets: Vec<String>,
}

impl Bound {
    fn new(cx: &AlertContext<'_>) -> Bound {
        let unit = || Dynamic::UNIT;
        let answers: Map = cx
            .answers
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
                    .collect()
            })
            .unwrap_or_default();
        let variables = vec![
            ("member", cx.member.map_or_else(unit, to_dynamic)),
            (
                "reply",
                cx.reply
                    .map_or_else(unit, |r| Dynamic::from(r.original.clone())),
            ),
            (
                "survey",
                cx.survey.map_or_else(unit, |s| Dynamic::from(s.to_owned())),
            ),
            (
                "answers",
                cx.answers
                    .map_or_else(unit, |_| Dynamic::from_map(answers.clone())),
            ),
            ("score", cx.score.map_or_else(unit, to_dynamic)),
            ("history", Dynamic::from_array(history_array(cx))),
            ("engagement", engagement_value(cx)),
        ];
        Bound {
            variables,
            answers,
            secrets: secrets(cx),
        }
    }

    /// A script's outcome with the reply and the member's names replaced
    /// in what it says.
    fn redact_outcome(&self, o: Outcome) -> Outcome {
        match o {
            Outcome::Fired { reason, evidence } => Outcome::Fired {
                reason: self.redact(&reason),
                evidence: self.redact(&evidence),
            },
            Outcome::Quiet { reason } => Outcome::Quiet { reason },
            Outcome::Failed { error } => Outcome::Failed {
                error: self.redact(&error),
            },
        }
    }

    /// `text` with the reply and the member's names replaced.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = replace_ignoring_case(&out, secret, "[redacted]");
        }
        out
    }
}

/// `history` as scripts read it: one map per earlier answer.
fn history_array(cx: &AlertContext<'_>) -> rhai::Array {
    cx.history
        .iter()
        .map(|h| {
            Dynamic::from_map(Map::from_iter([
                ("survey".into(), Dynamic::from(h.survey.clone())),
                ("question".into(), Dynamic::from(h.question.clone())),
                ("value".into(), to_dynamic(&h.value)),
                (
                    "at".into(),
                    Dynamic::from(h.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                ),
            ]))
        })
        .collect()
}

/// `engagement` as scripts read it, or `()` without one.
fn engagement_value(cx: &AlertContext<'_>) -> Dynamic {
    let unit = || Dynamic::UNIT;
    cx.engagement.map_or_else(unit, |e| {
        Dynamic::from_map(Map::from_iter([
            (
                "days_since_last_reply".into(),
                e.days_since_last_reply.map_or_else(unit, Dynamic::from),
            ),
            (
                "unanswered_in_a_row".into(),
                Dynamic::from(i64::from(e.unanswered_in_a_row)),
            ),
            (
                "replies_30d".into(),
                Dynamic::from(i64::from(e.replies_30d)),
            ),
        ]))
    })
}

/// What must not appear in a log line, a reason or evidence: the reply,
/// and the member's names and external id; longest first, so a name
/// inside the reply is not left half-hidden.
fn secrets(cx: &AlertContext<'_>) -> Vec<String> {
    let mut secrets: Vec<String> = cx
        .reply
        .map(|r| r.original.trim().to_owned())
        .into_iter()
        .collect();
    if let Some(view) = cx.member {
        for key in ["first_name", "last_name", "external_id"] {
            if let Some(s) = view.get(key).and_then(|v| v.as_str()) {
                secrets.push(s.trim().to_owned());
            }
        }
    }
    secrets.retain(|s| s.chars().count() >= 2);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// `text` with every occurrence of `needle` (ASCII case ignored) that is
/// not part of a longer word replaced: "Al" is hidden in "Al is low", not
/// in "total".
fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    let (hay, pat) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    if pat.is_empty() || !hay.contains(&pat) {
        return text.to_owned();
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    // ASCII lower-casing keeps byte offsets, so positions carry over.
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut from) = (0, 0);
    while let Some(i) = hay[from..].find(&pat) {
        let (start, end) = (from + i, from + i + pat.len());
        let inside = (word(pat.chars().next()) && word(hay[..start].chars().next_back()))
            || (word(pat.chars().next_back()) && word(hay[end..].chars().next()));
        if inside {
            from = start + pat.chars().next().map_or(1, char::len_utf8);
        } else {
            out.push_str(&text[copied..start]);
            out.push_str(with);
            (copied, from) = (end, end);
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// What one matcher of an alert found.
enum Outcome {
    Fired { reason: String, evidence: String },
    Quiet { reason: String },
    Failed { error: String },
}

fn consider(
    rules: &RuleSet,
    alert: &Alert,
    cx: &AlertContext<'_>,
    bound: &Bound,
    member_id: Option<i64>,
) -> AlertVerdict {
    let mut outcomes = Vec::new();
    if !alert.keywords.is_empty() {
        outcomes.push(keyword_outcome(alert, cx));
    }
    // What a script says (its note, its error) may quote the reply or the
    // member view: those are redacted; a keyword is the rule's own text.
    if let Some(ast) = &alert.when {
        outcomes.push(bound.redact_outcome(run(rules, ast, "when", bound)));
    }
    if let Some((path, ast)) = &alert.script {
        let what = format!("script {}", path.display());
        outcomes.push(bound.redact_outcome(run(rules, ast, &what, bound)));
    }
    verdict(alert, outcomes, member_id)
}

/// What an alert's `keywords:` say of the reply.
fn keyword_outcome(alert: &Alert, cx: &AlertContext<'_>) -> Outcome {
    match cx.reply {
        Some(text) => match keyword_match(alert, text) {
            Some(k) => Outcome::Fired {
                reason: format!("keyword `{k}`"),
                evidence: k.to_owned(),
            },
            None => Outcome::Quiet {
                reason: "no keyword".to_owned(),
            },
        },
        None => Outcome::Quiet {
            reason: "no reply to match keywords against".to_owned(),
        },
    }
}

/// The alert's verdict from what each of its matchers found: fired when
/// any fired; a failure is logged by rule and member id, counted, and
/// reported (first, when nothing fired: it is why the alert could not
/// say).
fn verdict(alert: &Alert, outcomes: Vec<Outcome>, member_id: Option<i64>) -> AlertVerdict {
    let mut fired = Vec::new();
    let mut quiet = Vec::new();
    let mut error: Option<String> = None;
    let mut evidence = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Fired {
                reason,
                evidence: e,
            } => {
                fired.push(reason);
                evidence.get_or_insert(e);
            }
            Outcome::Quiet { reason } => quiet.push(reason),
            Outcome::Failed { error: e } => {
                SCRIPT_FAILURES.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(rule = %alert.id, member_id = ?member_id, error = %e, "alert evaluation failed");
                quiet.push(format!("script failed: {e}"));
                error.get_or_insert(e);
            }
        }
    }
    let is_fired = !fired.is_empty();
    let reason = if is_fired {
        let mut r = fired.join(" and ");
        if let Some(e) = &error {
            r.push_str(&format!(" (also: script failed: {e})"));
        }
        r
    } else {
        if error.is_some() {
            quiet.sort_by_key(|r| !r.starts_with("script failed"));
        }
        quiet.join("; ")
    };
    AlertVerdict {
        id: alert.id.clone(),
        severity: alert.severity,
        fired: is_fired,
        reason,
        evidence,
        error,
        incident: None,
    }
}

/// Runs one `when:` or `script:` in the rule set's sandbox, a panic
/// included in what counts as a failure.
fn run(rules: &RuleSet, ast: &rhai::AST, what: &str, bound: &Bound) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        rules
            .sandbox
            .eval_alert(ast, bound.variables.clone(), bound.answers.clone())
    }));
    match result {
        Ok(Ok((true, note))) => Outcome::Fired {
            reason: match &note {
                Some(n) => format!("{what}: {n}"),
                None => format!("{what}: true"),
            },
            evidence: note.unwrap_or_else(|| format!("{what}: true")),
        },
        Ok(Ok((false, _))) => Outcome::Quiet {
            reason: format!("{what}: false"),
        },
        Ok(Err(e)) => Outcome::Failed {
            error: format!("{what}: {}", e.detail()),
        },
        Err(panic) => Outcome::Failed {
            error: format!(
                "{what}: the evaluation panicked ({})",
                panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("no message")
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::replace_ignoring_case as hide;

    #[test]
    fn redaction_hides_whole_words_in_any_ascii_case_and_leaves_longer_words() {
        assert_eq!(
            hide("Al is low; AL too", "al", "[x]"),
            "[x] is low; [x] too"
        );
        assert_eq!(hide("total: 3", "Al", "[x]"), "total: 3");
        assert_eq!(hide("José, hola", "José", "[x]"), "[x], hola");
        assert_eq!(
            hide("throw: I feel bad!", "I feel bad!", "[x]"),
            "throw: [x]"
        );
        assert_eq!(hide("aaa", "aa", "[x]"), "aaa");
        assert_eq!(hide("a a a", "a a", "[x]"), "[x] a");
    }
}
