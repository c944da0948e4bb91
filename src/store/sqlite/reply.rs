//! The reply pipeline's reads and its one write transaction; survey
//! reminders and expiry.
//!
//! [`ReplyStore::reply_facts`] reads on a read-only connection and writes
//! nothing. [`ReplyStore::apply_reply`] writes everything a decision
//! holds in one `IMMEDIATE` transaction, in this order: the consent
//! change (through the consent ledger's own function, so it is audited
//! alike), the messages (insert-or-skip on their keys, through the
//! outbox's insert, so segments and survey runs are right), the survey
//! update, the hits (folded by [`super::incident::record_hit`] against
//! what is open at that moment), and last the inbound row marked
//! processed. A row already processed makes it change nothing, so a
//! decision applied twice (a crash after commit, before the caller knew)
//! is harmless.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::consent;
use super::outbox::{self, get_opt_ts, get_ts, immediate, ts};
use super::{SqliteStore, incident, members, schedule};
use crate::domain::Phone;
use crate::domain::incident::Subject;
use crate::domain::member::ConsentSource;
use crate::domain::member::Member;
use crate::domain::message::{Enqueued, InboundRow, NewMessage};
use crate::store::StoreError;
use crate::store::traits::OutboxStore;
use crate::store::traits::ReplyStore;
use crate::store::traits::reply::{
    AnswerRecord, Applied, Engagement, HISTORY_PER_QUESTION, OpenSurvey, PastAnswer, ReplyEffects,
    ReplyFacts, SurveyUpdate, WaitingRun,
};
use crate::store::traits::schedule::SurveyRun;

/// How far back `replies_30d` counts.
const RECENT_DAYS: i64 = 30;

fn json_of(i: usize, s: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// The member's earlier answers: the newest [`HISTORY_PER_QUESTION`] per
/// survey and question, oldest first.
fn history(
    conn: &Connection,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<PastAnswer>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT survey, question, value, answered_at FROM (
                 SELECT survey, question, value, answered_at, id,
                        row_number() OVER (PARTITION BY survey, question
                                           ORDER BY answered_at DESC, id DESC) AS n
                 FROM survey_answers WHERE member_id = ?1 AND answered_at <= ?2)
             WHERE n <= ?3 ORDER BY answered_at, id",
        )?
        .query_map(
            params![member_id, ts(now), HISTORY_PER_QUESTION as i64],
            |r| {
                let value: String = r.get(2)?;
                Ok(PastAnswer {
                    survey: r.get(0)?,
                    question: r.get(1)?,
                    value: json_of(2, &value)?,
                    at: get_ts(r, 3)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Engagement at `now`, counting the member's texts up to and including
/// inbound row `upto` (the text being decided; `i64::MAX` for none).
fn engagement(
    conn: &Connection,
    member_id: i64,
    upto: i64,
    now: DateTime<Utc>,
) -> Result<Engagement, StoreError> {
    let previous: Option<String> = conn
        .prepare_cached(
            "SELECT max(received_at) FROM inbound WHERE member_id = ?1 AND id < ?2 AND received_at <= ?3",
        )?
        .query_row(params![member_id, upto, ts(now)], |r| r.get(0))?;
    let days_since_last_reply = previous
        .as_deref()
        .and_then(outbox::parse_ts)
        .map(|at| (now - at).num_milliseconds().max(0) as f64 / 86_400_000.0);
    let replies_30d: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM inbound WHERE member_id = ?1 AND id <= ?2
               AND received_at > ?3 AND received_at <= ?4",
        )?
        .query_row(
            params![
                member_id,
                upto,
                ts(now - chrono::Duration::days(RECENT_DAYS)),
                ts(now)
            ],
            |r| r.get(0),
        )?;
    // Runs that were asked (their first message went out), newest first:
    // how many went unanswered before the first one with an answer.
    let mut stmt = conn.prepare_cached(
        "SELECT s.state, s.close_reason, EXISTS (SELECT 1 FROM survey_answers a WHERE a.run_id = s.id)
         FROM survey_runs s JOIN outbox o ON o.id = s.outbox_id
         WHERE s.member_id = ?1 AND o.state IN ('sent', 'delivered') AND s.opened_at <= ?2
         ORDER BY s.opened_at DESC, s.id DESC",
    )?;
    let mut rows = stmt.query(params![member_id, ts(now)])?;
    let mut unanswered_in_a_row = 0;
    while let Some(r) = rows.next()? {
        let (state, reason, answered): (String, Option<String>, bool) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        if answered {
            break;
        }
        if state == "open" || matches!(reason.as_deref(), Some("expired" | "gave_up")) {
            unanswered_in_a_row += 1;
        } else if state == "expired" && reason.is_none() {
            // Expired by hand before close reasons were kept.
            unanswered_in_a_row += 1;
        }
    }
    Ok(Engagement {
        days_since_last_reply,
        unanswered_in_a_row,
        replies_30d: u32::try_from(replies_30d).unwrap_or(u32::MAX),
    })
}

fn open_survey(
    conn: &Connection,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<OpenSurvey>, StoreError> {
    let Some(run) = schedule::open_survey(conn, member_id, now)? else {
        return Ok(None);
    };
    let reprompts: i64 = conn
        .prepare_cached("SELECT reprompts FROM survey_runs WHERE id = ?1")?
        .query_row([run.id], |r| r.get(0))?;
    let answers = answers(conn, run.id)?
        .into_iter()
        .map(|a| (a.question, a.value))
        .collect::<BTreeMap<_, _>>();
    Ok(Some(OpenSurvey {
        run,
        answers,
        reprompts: u32::try_from(reprompts).unwrap_or(0),
    }))
}

fn answers(conn: &Connection, run_id: i64) -> Result<Vec<AnswerRecord>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT question, position, value FROM survey_answers WHERE run_id = ?1 ORDER BY position, id",
        )?
        .query_map([run_id], |r| {
            let value: String = r.get(2)?;
            Ok(AnswerRecord {
                question: r.get(0)?,
                position: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                value: json_of(2, &value)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn facts(
    conn: &Connection,
    row: &InboundRow,
    now: DateTime<Utc>,
) -> Result<ReplyFacts, StoreError> {
    let member = match row.member_id {
        Some(id) => members::by_id(conn, id)?,
        None => match Phone::parse(&row.sms.from) {
            Ok(p) => members::by_phone(conn, &p)?,
            // A short code or an alphanumeric sender: simply unknown.
            Err(_) => None,
        },
    };
    let Some(member) = member else {
        let number = Subject::Number(row.sms.from.clone());
        return Ok(ReplyFacts {
            open_critical: incident::open_critical(conn, &number)?,
            ..ReplyFacts::default()
        });
    };
    Ok(ReplyFacts {
        survey: open_survey(conn, member.id, now)?,
        history: history(conn, member.id, now)?,
        engagement: engagement(conn, member.id, row.id, now)?,
        open_critical: incident::open_critical(conn, &Subject::Member(member.id))?,
        member: Some(member),
        contact: None,
    })
}

/// Whether a survey update still applies to its run: the run is open and
/// has not moved past the question the update is about.
fn survey_applies(conn: &Connection, u: &SurveyUpdate) -> Result<bool, StoreError> {
    let run: Option<(String, i64)> = conn
        .prepare_cached("SELECT state, question FROM survey_runs WHERE id = ?1")?
        .query_row([u.run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((state, question)) = run else {
        return Ok(false);
    };
    if state != "open" {
        return Ok(false);
    }
    Ok(match &u.answer {
        Some(a) => i64::from(a.position) == question,
        None => i64::from(u.question) >= question,
    })
}

fn apply_survey(
    conn: &Connection,
    u: &SurveyUpdate,
    inbound_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = ts(now);
    if let Some(a) = &u.answer {
        conn.prepare_cached(
            "INSERT INTO survey_answers (run_id, member_id, survey, question, position, value, inbound_id, answered_at)
             SELECT id, member_id, survey, ?2, ?3, ?4, ?5, ?6 FROM survey_runs WHERE id = ?1",
        )?
        .execute(params![
            u.run_id,
            a.question,
            a.position,
            a.value.to_string(),
            inbound_id,
            at
        ])?;
    }
    let ask: Option<i64> = match &u.ask_key {
        Some(key) => conn
            .prepare_cached("SELECT id FROM outbox WHERE idempotency_key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let (state, reason) = match u.close {
        None => ("open", None),
        Some(c @ crate::store::traits::reply::SurveyClose::Expired) => ("expired", Some(c)),
        Some(c) => ("closed", Some(c)),
    };
    conn.prepare_cached(
        "UPDATE survey_runs SET
             reminded_at = CASE WHEN question <> ?2 THEN NULL ELSE reminded_at END,
             question = ?2, reprompts = ?3, ask_outbox_id = coalesce(?4, ask_outbox_id),
             state = ?5, close_reason = ?6,
             closed_at = CASE WHEN ?5 = 'open' THEN closed_at ELSE ?7 END,
             score = coalesce(?8, score)
         WHERE id = ?1 AND state = 'open'",
    )?
    .execute(params![
        u.run_id,
        u.question,
        u.reprompts,
        ask,
        state,
        reason.map(|r| r.as_str()),
        at,
        u.score.as_ref().map(|s| s.to_string()),
    ])?;
    Ok(())
}

pub(crate) fn apply(conn: &mut Connection, e: &ReplyEffects) -> Result<Applied, StoreError> {
    let tx = immediate(conn)?;
    let processed: Option<Option<String>> = tx
        .query_row(
            "SELECT processed_at FROM inbound WHERE id = ?1",
            [e.inbound_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(processed) = processed else {
        return Err(StoreError::NotFound(format!(
            "inbound text #{}",
            e.inbound_id
        )));
    };
    let mut applied = Applied {
        messages: Vec::new(),
        hits: Vec::new(),
        consent: None,
        follow_up: None,
    };
    if processed.is_some() {
        return Ok(applied);
    }
    if let Some(c) = &e.consent {
        match members::by_external_id(&tx, &c.external_id)? {
            Some(m) => {
                applied.consent = Some(consent::record(
                    &tx,
                    m.id,
                    c.action,
                    ConsentSource::Keyword,
                    &c.text,
                    "member",
                )?);
            }
            // Members are never deleted; if one were, the rest (a crisis
            // reply, an incident) must still go through.
            None => tracing::warn!(
                member = %c.external_id,
                inbound = e.inbound_id,
                "consent change for an unknown member skipped"
            ),
        }
    }
    let survey = match &e.survey {
        Some(u) if survey_applies(&tx, u)? => Some(u),
        _ => None,
    };
    let skipped_ask = e
        .survey
        .as_ref()
        .filter(|_| survey.is_none())
        .and_then(|u| u.ask_key.as_deref());
    for m in &e.messages {
        if Some(m.idempotency_key.as_str()) == skipped_ask {
            continue;
        }
        applied.messages.push(outbox::enqueue(&tx, m)?);
    }
    if let Some(u) = survey {
        apply_survey(&tx, u, e.inbound_id, e.now)?;
    }
    for h in &e.hits {
        applied.hits.push(incident::record_hit(&tx, h, e.now)?);
    }
    if let Some(f) = &e.follow_up {
        applied.follow_up = incident::follow_up(&tx, f, e.inbound_id, e.now)?;
    }
    super::inbound::mark_processed_at(&tx, e.inbound_id, &e.outcome, e.now)?;
    tx.commit()?;
    Ok(applied)
}

const WAITING: &str =
    "SELECT s.id, s.member_id, s.survey, s.schedule, s.outbox_id, s.question, s.opened_at,
            s.expires_at, o.sent_at, s.reminded_at IS NOT NULL
     FROM survey_runs s JOIN outbox o ON o.id = coalesce(s.ask_outbox_id, s.outbox_id)
     WHERE s.state = 'open' AND o.state IN ('sent', 'delivered') AND s.id > ?2
     ORDER BY s.id LIMIT ?1";

fn waiting(conn: &Connection, after: i64, limit: usize) -> Result<Vec<WaitingRun>, StoreError> {
    let rows = conn
        .prepare_cached(WAITING)?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX), after], |r| {
            Ok((
                SurveyRun {
                    id: r.get(0)?,
                    member_id: r.get(1)?,
                    survey: r.get(2)?,
                    schedule: r.get(3)?,
                    outbox_id: r.get(4)?,
                    question: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    opened_at: get_ts(r, 6)?,
                    expires_at: get_opt_ts(r, 7)?,
                },
                get_opt_ts(r, 8)?,
                r.get::<_, bool>(9)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (run, asked_at, reminded) in rows {
        let member: Member = members::by_id(conn, run.member_id)?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "member #{} of survey run {}",
                run.member_id, run.id
            ))
        })?;
        out.push(WaitingRun {
            run,
            member,
            asked_at,
            reminded,
        });
    }
    Ok(out)
}

fn remind(conn: &mut Connection, run_id: i64, m: &NewMessage) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let due: bool = tx
        .query_row(
            "SELECT state = 'open' AND reminded_at IS NULL FROM survey_runs WHERE id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    if !due {
        return Ok(false);
    }
    outbox::enqueue(&tx, m)?;
    tx.execute(
        "UPDATE survey_runs SET reminded_at = ?2 WHERE id = ?1",
        params![run_id, ts(Utc::now())],
    )?;
    tx.commit()?;
    Ok(true)
}

fn expire(conn: &mut Connection, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let tx = immediate(conn)?;
    let n = tx.execute(
        "UPDATE survey_runs SET state = 'expired', close_reason = 'expired', closed_at = ?1
         WHERE state = 'open' AND expires_at IS NOT NULL AND expires_at <= ?1",
        [ts(now)],
    )?;
    tx.commit()?;
    Ok(n as u64)
}

impl ReplyStore for SqliteStore {
    async fn reply_facts(
        &self,
        row: &InboundRow,
        now: DateTime<Utc>,
    ) -> Result<ReplyFacts, StoreError> {
        let row = row.clone();
        // On the writer's connection, not a reader's: the pipeline reads
        // and then writes for one text after another, and every write
        // would make a reader's page cache stale, so each read would decrypt
        // and authenticate its pages again. The writer's cache stays warm.
        // (Only the pipeline does this; staff reads keep to the readers.)
        self.call(move |c| facts(c, &row, now)).await
    }

    async fn apply_reply(&self, effects: ReplyEffects) -> Result<Applied, StoreError> {
        let applied = self.call(move |c| apply(c, &effects)).await?;
        if applied
            .messages
            .iter()
            .any(|q| matches!(q, Enqueued::New(_)))
        {
            self.enqueued().notify_one();
        }
        Ok(applied)
    }

    async fn waiting_runs(&self, after: i64, limit: usize) -> Result<Vec<WaitingRun>, StoreError> {
        self.read(move |c| waiting(c, after, limit)).await
    }

    async fn remind_run(&self, run_id: i64, message: NewMessage) -> Result<bool, StoreError> {
        let reminded = self.call(move |c| remind(c, run_id, &message)).await?;
        if reminded {
            self.enqueued().notify_one();
        }
        Ok(reminded)
    }

    async fn expire_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |c| expire(c, now)).await
    }

    async fn member_history(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PastAnswer>, Engagement), StoreError> {
        self.read(move |c| {
            Ok((
                history(c, member_id, now)?,
                engagement(c, member_id, i64::MAX, now)?,
            ))
        })
        .await
    }

    async fn run_answers(&self, run_id: i64) -> Result<Vec<AnswerRecord>, StoreError> {
        self.read(move |c| answers(c, run_id)).await
    }
}
