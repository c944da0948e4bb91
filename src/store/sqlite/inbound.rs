//! The inbound queue, in SQLite.
//!
//! Every inbound text is a row before the webhook answers, unique on the
//! provider's message id; rows not yet processed are the pipeline's queue
//! and survive restarts. The pipeline reads them in pages by id (a cursor),
//! so rows it holds back never hide newer ones.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::{get_ts, ts};
use super::{SqliteStore, audit};
use crate::domain::Phone;
use crate::domain::message::{InboundRow, InboundSms, Received};
use crate::store::StoreError;
use crate::store::traits::inbound::InboundStore;

pub(crate) fn record(conn: &mut Connection, m: &InboundSms) -> Result<Received, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let member: Option<(i64, String)> = match m.from.parse::<Phone>() {
        Ok(p) => tx
            .query_row(
                "SELECT id, external_id FROM members WHERE phone = ?1",
                [p.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
        Err(_) => None,
    };
    let n = tx.execute(
        "INSERT INTO inbound (provider, provider_message_id, from_phone, to_phone, body, member_id, received_at, keyword)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (provider, provider_message_id) DO NOTHING",
        params![
            m.provider,
            m.provider_message_id,
            m.from,
            m.to,
            m.body,
            member.as_ref().map(|m| m.0),
            ts(Utc::now()),
            m.keyword,
        ],
    )?;
    let id: i64 = tx.query_row(
        "SELECT id FROM inbound WHERE provider = ?1 AND provider_message_id = ?2",
        params![m.provider, m.provider_message_id],
        |r| r.get(0),
    )?;
    let received = if n == 1 {
        audit::append(
            &tx,
            "hearth",
            "sms.receive",
            member.map(|(_, ext)| format!("member:{ext}")).as_deref(),
            serde_json::json!({ "inbound": id, "provider": m.provider }),
        )?;
        Received::New(id)
    } else {
        Received::Duplicate(id)
    };
    tx.commit()?;
    Ok(received)
}

pub(crate) fn unprocessed_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<InboundRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, provider, provider_message_id, from_phone, to_phone, body, member_id, received_at, keyword
         FROM inbound WHERE processed_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    Ok(stmt
        .query_map(params![after, limit as i64], row)?
        .collect::<Result<Vec<_>, _>>()?)
}

/// A row as read by [`unprocessed_after`] and [`get`].
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboundRow> {
    Ok(InboundRow {
        id: r.get(0)?,
        sms: InboundSms {
            provider: r.get(1)?,
            provider_message_id: r.get(2)?,
            from: r.get(3)?,
            to: r.get(4)?,
            body: r.get(5)?,
            keyword: r.get(8)?,
        },
        member_id: r.get(6)?,
        received_at: get_ts(r, 7)?,
    })
}

/// One stored text by id, processed or not.
pub(crate) fn get(conn: &Connection, id: i64) -> Result<Option<InboundRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, provider, provider_message_id, from_phone, to_phone, body, member_id, received_at, keyword
             FROM inbound WHERE id = ?1",
        )?
        .query_row([id], row)
        .optional()?)
}

pub(crate) fn mark_processed(conn: &Connection, id: i64, outcome: &str) -> Result<(), StoreError> {
    mark_processed_at(conn, id, outcome, Utc::now())
}

/// Marks a text processed at `at`; a second call changes nothing.
pub(crate) fn mark_processed_at(
    conn: &Connection,
    id: i64,
    outcome: &str,
    at: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE inbound SET processed_at = ?2, outcome = ?3 WHERE id = ?1 AND processed_at IS NULL",
    )?
    .execute(params![id, ts(at), outcome])?;
    Ok(())
}

impl InboundStore for SqliteStore {
    async fn record_inbound(&self, sms: InboundSms) -> Result<Received, StoreError> {
        self.call(move |c| record(c, &sms)).await
    }

    async fn unprocessed_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboundRow>, StoreError> {
        self.call(move |c| unprocessed_after(c, after, limit)).await
    }

    async fn mark_inbound_processed(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        let outcome = outcome.to_owned();
        self.call(move |c| mark_processed(c, id, &outcome)).await
    }

    /// One stored text by id, processed or not.
    async fn inbound(&self, id: i64) -> Result<Option<InboundRow>, StoreError> {
        self.read(move |c| get(c, id)).await
    }

    /// Every stored text, processed or not, oldest first, with its
    /// outcome (`None` while queued): staff's view and tests'.
    async fn inbound_texts(
        &self,
        limit: usize,
    ) -> Result<Vec<(InboundRow, Option<String>)>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, provider, provider_message_id, from_phone, to_phone, body, member_id, received_at, keyword, outcome
                 FROM inbound ORDER BY id LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit as i64], |r| Ok((row(r)?, r.get::<_, Option<String>>(9)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
