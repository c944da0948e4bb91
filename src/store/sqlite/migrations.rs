//! The schema, one migration per version, tracked in `user_version`.
//!
//! Never edit a migration that has shipped: add the next one.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

const MIGRATIONS: &[M<'static>] = &[
    // 1: members, groups, consent ledger.
    M::up(
        r#"
CREATE TABLE members (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    first_name  TEXT NOT NULL,
    last_name   TEXT,
    phone       TEXT NOT NULL UNIQUE,
    timezone    TEXT NOT NULL,
    language    TEXT NOT NULL DEFAULT 'en',
    joined_on   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    attributes  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE group_members (
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL,
    PRIMARY KEY (member_id, group_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_by_group ON group_members(group_id);

CREATE TABLE consent_events (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    action    TEXT NOT NULL CHECK (action IN ('granted', 'revoked')),
    channel   TEXT NOT NULL CHECK (channel IN ('sms')),
    source    TEXT NOT NULL CHECK (source IN ('import', 'keyword', 'staff')),
    text      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL
) STRICT;
CREATE INDEX consent_events_by_member ON consent_events(member_id, channel, id);
CREATE TRIGGER consent_events_append_only_update BEFORE UPDATE ON consent_events
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;
CREATE TRIGGER consent_events_append_only_delete BEFORE DELETE ON consent_events
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;
"#,
    ),
    // 2: the hash-chained audit trail.
    M::up(
        r#"
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT,
    detail    TEXT NOT NULL CHECK (json_valid(detail)),
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"#,
    ),
    // 3: the outbox, the inbound queue, delivery reports.
    M::up(
        r#"
CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY,
    idempotency_key     TEXT NOT NULL UNIQUE,
    member_id           INTEGER REFERENCES members(id),
    to_phone            TEXT,
    body                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('crisis', 'compliance', 'escalation', 'reply', 'scheduled', 'staff')),
    priority            INTEGER NOT NULL,
    not_before          TEXT NOT NULL,
    expires_at          TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'expired', 'suppressed')),
    reason              TEXT,
    provider            TEXT,
    provider_message_id TEXT,
    segments            INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK (member_id IS NOT NULL OR to_phone IS NOT NULL)
) STRICT;
CREATE INDEX outbox_due ON outbox(state, priority, next_attempt_at);
CREATE INDEX outbox_by_provider_id ON outbox(provider, provider_message_id);

CREATE TABLE delivery_events (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id),
    report    TEXT NOT NULL,
    detail    TEXT,
    at        TEXT NOT NULL
) STRICT;

CREATE TABLE inbound (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    from_phone          TEXT NOT NULL,
    to_phone            TEXT NOT NULL,
    body                TEXT NOT NULL,
    member_id           INTEGER REFERENCES members(id),
    received_at         TEXT NOT NULL,
    processed_at        TEXT,
    outcome             TEXT,
    UNIQUE (provider, provider_message_id)
) STRICT;
CREATE INDEX inbound_unprocessed ON inbound(processed_at, id);

-- Reports that arrived before the send they describe was recorded
-- (a provider can call back faster than we commit its answer).
CREATE TABLE pending_reports (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    report              TEXT NOT NULL,
    detail              TEXT,
    at                  TEXT NOT NULL
) STRICT;
CREATE INDEX pending_reports_by_id ON pending_reports(provider, provider_message_id);
"#,
    ),
    // 4: where start-up's audit check last stopped, so the next start
    // verifies only the entries written since.
    M::up(
        r#"
CREATE TABLE audit_checkpoint (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    entry INTEGER NOT NULL,
    hash  TEXT NOT NULL,
    at    TEXT NOT NULL
) STRICT;
"#,
    ),
    // 5: claims are leases (who holds one, until when, which claim), and a
    // row whose lease lapsed mid-send is marked possibly sent. Rows left
    // `sending` by an earlier version have no lease: the first claim after
    // the upgrade returns them to the queue, possibly sent.
    M::up(
        r#"
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN possibly_sent INTEGER NOT NULL DEFAULT 0 CHECK (possibly_sent IN (0, 1));
CREATE INDEX outbox_by_state_changed ON outbox(state, updated_at);
"#,
    ),
    // 6: scheduling. Each planned message names the schedule, fire,
    // rule-set generation and schedule version that planned it, and when
    // it first went out (for frequency caps). Schedule marks (the last
    // processed fire), a record of every fire, and the surveys a fire
    // opened.
    M::up(
        r#"
ALTER TABLE outbox ADD COLUMN schedule_id TEXT;
ALTER TABLE outbox ADD COLUMN fire_at TEXT;
ALTER TABLE outbox ADD COLUMN generation INTEGER;
ALTER TABLE outbox ADD COLUMN schedule_version TEXT;
ALTER TABLE outbox ADD COLUMN sent_at TEXT;
-- cancel_planned and planned_versions: one schedule's queued rows.
CREATE INDEX outbox_by_schedule ON outbox(schedule_id, state) WHERE schedule_id IS NOT NULL;
-- Frequency caps: one member's routine messages by state.
CREATE INDEX outbox_caps ON outbox(member_id, kind, state);

CREATE TABLE schedule_marks (
    schedule   TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    last_fire  TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE schedule_fires (
    schedule   TEXT NOT NULL,
    fire       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('started', 'done', 'missed')),
    enqueued   INTEGER NOT NULL DEFAULT 0,
    suppressed INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL,
    version    TEXT NOT NULL,
    note       TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (schedule, fire, scope)
) STRICT;
CREATE INDEX schedule_fires_by_fire ON schedule_fires(fire);

CREATE TABLE survey_runs (
    id         INTEGER PRIMARY KEY,
    member_id  INTEGER NOT NULL REFERENCES members(id),
    survey     TEXT NOT NULL,
    schedule   TEXT,
    outbox_id  INTEGER NOT NULL UNIQUE REFERENCES outbox(id),
    question   INTEGER NOT NULL DEFAULT 0 CHECK (question >= 0),
    opened_at  TEXT NOT NULL,
    expires_at TEXT,
    state      TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'expired')),
    closed_at  TEXT
) STRICT;
CREATE INDEX survey_runs_by_member ON survey_runs(member_id, state, opened_at);
"#,
    ),
    // 7: replies. Incidents (one open per subject and alert) with every
    // hit kept as evidence; survey answers; a survey run's progress
    // (re-prompts, reminder, the message asking the current question, why
    // it closed, its score); the provider's own keyword reading of a text.
    M::up(
        r#"
CREATE TABLE incidents (
    id         INTEGER PRIMARY KEY,
    subject    TEXT NOT NULL,
    member_id  INTEGER REFERENCES members(id),
    alert      TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state      TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    escalate   TEXT,
    opened_at  TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
-- At most one open incident per subject and alert.
CREATE UNIQUE INDEX incidents_open_once ON incidents(subject, alert) WHERE state = 'open';
-- The last one opened per subject and alert (realert), and listings.
CREATE INDEX incidents_by_subject ON incidents(subject, alert, opened_at);
CREATE INDEX incidents_by_member ON incidents(member_id, id);
CREATE INDEX incidents_by_state ON incidents(state, id);

CREATE TABLE incident_evidence (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at          TEXT NOT NULL,
    alert       TEXT NOT NULL,
    inbound_id  INTEGER REFERENCES inbound(id),
    text        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'joined', 'realert', 'inhibited', 'not_texted')),
    reply_key   TEXT
) STRICT;
CREATE INDEX incident_evidence_by_incident ON incident_evidence(incident_id, id);
CREATE INDEX incident_evidence_by_reply ON incident_evidence(reply_key) WHERE reply_key IS NOT NULL;

CREATE TABLE survey_answers (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES survey_runs(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    survey      TEXT NOT NULL,
    question    TEXT NOT NULL,
    position    INTEGER NOT NULL CHECK (position >= 0),
    value       TEXT NOT NULL CHECK (json_valid(value)),
    inbound_id  INTEGER REFERENCES inbound(id),
    answered_at TEXT NOT NULL
) STRICT;
CREATE INDEX survey_answers_by_member ON survey_answers(member_id, survey, question, answered_at);
CREATE INDEX survey_answers_by_run ON survey_answers(run_id, position);

ALTER TABLE survey_runs ADD COLUMN reprompts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE survey_runs ADD COLUMN reminded_at TEXT;
ALTER TABLE survey_runs ADD COLUMN ask_outbox_id INTEGER REFERENCES outbox(id);
ALTER TABLE survey_runs ADD COLUMN close_reason TEXT
    CHECK (close_reason IS NULL OR close_reason IN ('completed', 'gave_up', 'stopped', 'expired'));
ALTER TABLE survey_runs ADD COLUMN score TEXT CHECK (score IS NULL OR json_valid(score));
CREATE INDEX survey_runs_open ON survey_runs(state, id);

ALTER TABLE inbound ADD COLUMN keyword TEXT;
CREATE INDEX inbound_by_member ON inbound(member_id, received_at);
"#,
    ),
    // 8: escalations. One row per incident that follows a policy (the
    // policy pinned as it started, where its sequence stands, its timers,
    // a revision guarding every write) and one per notice sent to a
    // contact on one channel. Incidents record who acknowledged and who
    // resolved them, and how; at most one unresolved (open or
    // acknowledged) incident per subject and alert.
    M::up(
        r#"
CREATE TABLE escalations (
    incident_id   INTEGER PRIMARY KEY REFERENCES incidents(id),
    policy        TEXT NOT NULL,
    version       TEXT NOT NULL,
    pinned        TEXT NOT NULL CHECK (json_valid(pinned)),
    next_position INTEGER NOT NULL CHECK (next_position >= 0),
    next_due      TEXT,
    seq           INTEGER NOT NULL DEFAULT 0 CHECK (seq >= 0),
    lapse_due     TEXT,
    exhausted     INTEGER NOT NULL DEFAULT 0 CHECK (exhausted IN (0, 1)),
    rev           INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX escalations_next_due ON escalations(next_due) WHERE next_due IS NOT NULL;
CREATE INDEX escalations_lapse_due ON escalations(lapse_due) WHERE lapse_due IS NOT NULL;

CREATE TABLE escalation_notices (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    purpose      TEXT NOT NULL CHECK (purpose IN ('page', 'acknowledged', 'reminder', 'confirm')),
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    step         INTEGER,
    round        INTEGER,
    contact      TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'pending', 'sent', 'failed')),
    outbox_id    INTEGER REFERENCES outbox(id),
    address      TEXT NOT NULL,
    subject      TEXT,
    body         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (incident_id, seq, contact, channel, purpose)
) STRICT;
CREATE INDEX escalation_notices_pending ON escalation_notices(next_attempt) WHERE state = 'pending';
CREATE INDEX escalation_notices_by_incident ON escalation_notices(incident_id, id);

ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
ALTER TABLE incidents ADD COLUMN acknowledged_how TEXT;
ALTER TABLE incidents ADD COLUMN acknowledged_at TEXT;
ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
ALTER TABLE incidents ADD COLUMN resolved_how TEXT;
ALTER TABLE incidents ADD COLUMN resolved_at TEXT;

-- At most one unresolved (open or acknowledged) incident per subject and
-- alert: an acknowledged one still takes that alert's hits.
DROP INDEX incidents_open_once;
CREATE UNIQUE INDEX incidents_open_once ON incidents(subject, alert)
    WHERE state IN ('open', 'acknowledged');
"#,
    ),
    // 9: no crisis conversation left in silence (issue 17). Evidence of
    // kind `follow_up` (a further text while the incident is unresolved)
    // and its `quote` (a survey item alert's item and answer as they
    // read, for pages); notices of purpose `follow_up`. SQLite cannot
    // change a CHECK, so both tables are rebuilt with their rows. A
    // critical incident whose escalation ran out unacknowledged before
    // this version pages again at once (critical incidents now repeat).
    M::up(
        r#"
CREATE TABLE incident_evidence_9 (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at          TEXT NOT NULL,
    alert       TEXT NOT NULL,
    inbound_id  INTEGER REFERENCES inbound(id),
    text        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'joined', 'realert', 'inhibited', 'not_texted', 'follow_up')),
    reply_key   TEXT,
    quote       TEXT
) STRICT;
INSERT INTO incident_evidence_9 (id, incident_id, at, alert, inbound_id, text, kind, reply_key)
    SELECT id, incident_id, at, alert, inbound_id, text, kind, reply_key FROM incident_evidence;
DROP TABLE incident_evidence;
ALTER TABLE incident_evidence_9 RENAME TO incident_evidence;
CREATE INDEX incident_evidence_by_incident ON incident_evidence(incident_id, id);
CREATE INDEX incident_evidence_by_reply ON incident_evidence(reply_key) WHERE reply_key IS NOT NULL;
CREATE INDEX incident_evidence_follow_up ON incident_evidence(incident_id, at) WHERE kind = 'follow_up';

CREATE TABLE escalation_notices_9 (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    purpose      TEXT NOT NULL CHECK (purpose IN ('page', 'acknowledged', 'reminder', 'confirm', 'follow_up')),
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    step         INTEGER,
    round        INTEGER,
    contact      TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'pending', 'sent', 'failed')),
    outbox_id    INTEGER REFERENCES outbox(id),
    address      TEXT NOT NULL,
    subject      TEXT,
    body         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (incident_id, seq, contact, channel, purpose)
) STRICT;
INSERT INTO escalation_notices_9 SELECT * FROM escalation_notices;
DROP TABLE escalation_notices;
ALTER TABLE escalation_notices_9 RENAME TO escalation_notices;
CREATE INDEX escalation_notices_pending ON escalation_notices(next_attempt) WHERE state = 'pending';
CREATE INDEX escalation_notices_by_incident ON escalation_notices(incident_id, id);

UPDATE escalations SET exhausted = 0, next_due = updated_at, rev = rev + 1
 WHERE exhausted = 1 AND policy <> '' AND next_due IS NULL
   AND incident_id IN (SELECT id FROM incidents WHERE severity = 'critical' AND state = 'open');
"#,
    ),
];

/// The schema version a fully migrated database has.
pub(crate) const LATEST: usize = MIGRATIONS.len();

fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

pub(crate) fn version(conn: &Connection) -> Result<usize, rusqlite_migration::Error> {
    Ok(match migrations().current_version(conn)? {
        rusqlite_migration::SchemaVersion::NoneSet => 0,
        rusqlite_migration::SchemaVersion::Inside(v)
        | rusqlite_migration::SchemaVersion::Outside(v) => v.get(),
    })
}

pub(crate) fn to_latest(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(conn)
}

/// Migrates to an older version; tests use it to build a previous-version
/// database.
#[cfg(test)]
pub(crate) fn to_version(conn: &mut Connection, v: usize) -> Result<(), rusqlite_migration::Error> {
    migrations().to_version(conn, v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    #[test]
    fn a_version_6_database_with_a_survey_run_and_a_text_migrates_to_7_and_keeps_them() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::to_version(&mut conn, 6).unwrap();
        conn.execute_batch(
            "INSERT INTO members (external_id, first_name, phone, timezone, joined_on, created_at, updated_at)
             VALUES ('M1', 'Ann', '+15555550101', 'UTC', '2026-01-01', 'now', 'now');
             INSERT INTO outbox (idempotency_key, member_id, body, kind, priority, not_before, next_attempt_at,
                                 state, segments, created_at, updated_at)
             VALUES ('a', 1, 'mood?', 'scheduled', 5, 't', 't', 'sent', 1, 't', 't');
             INSERT INTO survey_runs (member_id, survey, outbox_id, opened_at, state)
             VALUES (1, 'mood-checkin', 1, 't', 'expired');
             INSERT INTO inbound (provider, provider_message_id, from_phone, to_phone, body, received_at)
             VALUES ('twilio', 'SM1', '+15555550101', '+15555550199', 'hi', 't');",
        )
        .unwrap();
        super::to_version(&mut conn, 7).unwrap();
        assert_eq!(super::version(&conn).unwrap(), 7);
        let run: (String, i64, Option<String>, Option<i64>, Option<String>) = conn
            .query_row(
                "SELECT state, reprompts, reminded_at, ask_outbox_id, close_reason FROM survey_runs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(run, ("expired".into(), 0, None, None, None));
        let keyword: Option<String> = conn
            .query_row("SELECT keyword FROM inbound", [], |r| r.get(0))
            .unwrap();
        assert_eq!(keyword, None);
        // One open incident per subject and alert; a resolved one does not count.
        let open = "INSERT INTO incidents (subject, member_id, alert, severity, state, opened_at, updated_at)
                    VALUES ('member:1', 1, 'crisis', 'critical', 'open', 't', 't')";
        conn.execute(open, []).unwrap();
        assert!(conn.execute(open, []).is_err(), "a second open incident");
        conn.execute("UPDATE incidents SET state = 'resolved'", [])
            .unwrap();
        conn.execute(open, []).unwrap();
        // Close reasons are the four the pipeline writes.
        assert!(
            conn.execute("UPDATE survey_runs SET close_reason = 'bored'", [])
                .is_err()
        );
    }

    #[test]
    fn a_version_7_database_with_incidents_migrates_to_8_and_keeps_them_with_no_one_acknowledging()
    {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::to_version(&mut conn, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO incidents (subject, member_id, alert, severity, state, escalate, opened_at, updated_at)
             VALUES ('number:+15555550101', NULL, 'crisis', 'critical', 'open', 'crisis', 't1', 't1'),
                    ('number:+15555550101', NULL, 'crisis', 'critical', 'resolved', NULL, 't0', 't0');
             INSERT INTO incident_evidence (incident_id, at, alert, text, kind)
             VALUES (1, 't1', 'crisis', 'matched', 'opened'),
                    (1, 't1', 'low-mood', 'answer 2', 'inhibited');",
        )
        .unwrap();
        super::to_version(&mut conn, 8).unwrap();
        assert_eq!(super::version(&conn).unwrap(), 8);
        type Row = (i64, String, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT id, state, escalate, acknowledged_by, resolved_at FROM incidents ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "open".into(), Some("crisis".into()), None, None),
                (2, "resolved".into(), None, None, None),
            ]
        );
        let evidence: i64 = conn
            .query_row(
                "SELECT count(*) FROM incident_evidence WHERE incident_id = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(evidence, 2);
        // One unresolved incident per subject and alert, acknowledged ones too.
        conn.execute(
            "UPDATE incidents SET state = 'acknowledged' WHERE id = 1",
            [],
        )
        .unwrap();
        let another =
            "INSERT INTO incidents (subject, alert, severity, state, opened_at, updated_at)
                       VALUES ('number:+15555550101', 'crisis', 'critical', 'open', 't2', 't2')";
        assert!(
            conn.execute(another, []).is_err(),
            "beside an acknowledged one"
        );
        conn.execute("UPDATE incidents SET state = 'resolved' WHERE id = 1", [])
            .unwrap();
        conn.execute(another, []).unwrap();
        // The new tables refuse what the store never writes.
        conn.execute(
            "INSERT INTO escalations (incident_id, policy, version, pinned, next_position, started_at, updated_at)
             VALUES (1, 'crisis', 'v1', '{}', 0, 't', 't')",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO escalations (incident_id, policy, version, pinned, next_position, started_at, updated_at)
                 VALUES (2, 'crisis', 'v1', 'not json', 0, 't', 't')",
                [],
            )
            .is_err()
        );
        assert!(
            conn.execute(
                "INSERT INTO escalation_notices (incident_id, purpose, seq, contact, channel, state, address, body,
                                                 created_at, updated_at)
                 VALUES (1, 'page', 0, 'dana', 'pager', 'pending', 'x', 'y', 't', 't')",
                [],
            )
            .is_err(),
            "an unknown channel"
        );
    }

    #[test]
    fn a_version_8_database_migrates_to_9_keeping_evidence_and_notices_and_wakes_a_silent_critical_incident()
     {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::to_version(&mut conn, 8).unwrap();
        conn.execute_batch(
            "INSERT INTO incidents (subject, member_id, alert, severity, state, escalate, opened_at, updated_at)
             VALUES ('number:+15555550101', NULL, 'crisis', 'critical', 'open', 'crisis', 't1', 't1'),
                    ('number:+15555550102', NULL, 'low-mood', 'warning', 'open', 'f', 't1', 't1');
             INSERT INTO incident_evidence (incident_id, at, alert, text, kind, reply_key)
             VALUES (1, 't1', 'crisis', 'matched', 'opened', 'reply:1:crisis');
             INSERT INTO escalations (incident_id, policy, version, pinned, next_position, exhausted, started_at, updated_at)
             VALUES (1, 'crisis', 'v1', '{}', 4, 1, 't1', 't2'), (2, 'f', 'v1', '{}', 1, 1, 't1', 't2');
             INSERT INTO escalation_notices (incident_id, purpose, seq, contact, channel, state, address, body,
                                             created_at, updated_at)
             VALUES (1, 'page', 1, 'dana', 'email', 'sent', 'd@x', 'y', 't', 't');",
        )
        .unwrap();
        super::to_latest(&mut conn).unwrap();
        assert_eq!(super::version(&conn).unwrap(), 9);
        let kept: (String, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT text, reply_key, quote FROM incident_evidence",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            kept,
            ("matched".into(), Some("reply:1:crisis".into()), None)
        );
        let notice: String = conn
            .query_row("SELECT contact FROM escalation_notices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(notice, "dana");
        conn.execute(
            "INSERT INTO incident_evidence (incident_id, at, alert, text, kind) VALUES (1, 't3', 'crisis', 'again', 'follow_up')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO escalation_notices (incident_id, purpose, seq, contact, channel, state, address, body, created_at, updated_at)
             VALUES (1, 'follow_up', 9, 'dana', 'email', 'pending', 'd@x', 'y', 't', 't')",
            [],
        )
        .unwrap();
        // The critical incident that went quiet pages again; the warning stays as it was.
        let rows: Vec<(i64, bool, Option<String>)> = conn
            .prepare(
                "SELECT incident_id, exhausted, next_due FROM escalations ORDER BY incident_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![(1, false, Some("t2".into())), (2, true, None)]);
    }
}
