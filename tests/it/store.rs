//! The store on real encrypted database files in temp directories.

use std::path::{Path, PathBuf};

use hearth::domain::member::AuditVerified as Verified;
use hearth::domain::member::{ConsentAction, ConsentSource, Recorded};
use hearth::settings::SecretRef;
use hearth::store::StoreError;
use hearth::store::import::{self, ImportOptions};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};

use crate::support::*;

const ROSTER: &str = "external_id,first_name,last_name,phone,timezone,language,joined_on,groups,consent,diagnosis,progress_level
M-001,Annabelle,Quince,+15555550101,America/New_York,en,2026-01-10,tuesday-anxiety,yes,PTSD;GAD,2
M-002,Bartholomew,Ruiz,+15555550102,America/Chicago,es,2026-11-01,thursday-grief,yes,Grief,4
M-003,Cordelia,Stone,+15555550103,America/New_York,en,2025-06-01,tuesday-anxiety;thursday-grief,no,C-PTSD,1
";

fn db_path(dir: &Path) -> PathBuf {
    dir.join("state/hearth.db")
}

fn generated(dir: &Path) -> KeySource {
    KeySource::Generated(dir.join("state/hearth.db.key"))
}

fn groups() -> std::collections::BTreeSet<String> {
    ["tuesday-anxiety", "thursday-grief"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn opts(consent_text: Option<&str>) -> ImportOptions {
    ImportOptions {
        skip_invalid: false,
        consent_text: consent_text.map(str::to_owned),
        actor: "test".into(),
        source_name: "roster.csv".into(),
    }
}

async fn import_text(store: &SqliteStore, csv: &str) -> import::ImportReport {
    let (rows, invalid) =
        import::parse(csv.as_bytes(), &groups(), chrono::Utc::now().date_naive()).unwrap();
    store
        .import_members(
            rows,
            invalid,
            opts(Some("I agree to receive texts from the clinic.")),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_database_gets_a_0600_key_file_and_reopens_with_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, report) =
        SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    let key_file = dir.path().join("state/hearth.db.key");
    assert_eq!(report.generated_key.as_deref(), Some(key_file.as_path()));
    assert_eq!(
        report.migrated,
        Some((0, hearth::store::sqlite::SCHEMA_VERSION))
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let db_mode = std::fs::metadata(db_path(dir.path()))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(db_mode, 0o600);
    import_text(&store, ROSTER).await;
    drop(store);

    let (store, report) =
        SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    assert_eq!(report.generated_key, None, "the notice is said once");
    assert_eq!(report.migrated, None);
    assert_eq!(store.members(None).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_wrong_key_is_named_as_such_not_as_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    drop(store);
    std::fs::write(dir.path().join("state/hearth.db.key"), "ab".repeat(32)).unwrap();

    let err = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("the key does not decrypt it"), "{msg}");
    assert!(!msg.contains("file is not a database"), "{msg}");
}

#[tokio::test]
async fn an_existing_database_without_its_key_file_is_refused_not_rekeyed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join("state/hearth.db.key")).unwrap();
    let err = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::MissingKeyFile { .. }), "{err:?}");
    assert!(
        !dir.path().join("state/hearth.db.key").exists(),
        "must not generate a new key"
    );
}

#[tokio::test]
async fn a_key_from_an_environment_reference_works_and_a_missing_one_is_clear() {
    let dir = tempfile::tempdir().unwrap();
    // A passphrase (not 64 hex digits) goes through SQLCipher's key derivation.
    let var = "IT_DB_PASSPHRASE_FOR_ENV_TEST";
    // SAFETY: the variable name is unique to this test.
    unsafe { std::env::set_var(var, "correct horse battery staple") };
    let key = KeySource::Secret(SecretRef::Env(var.into()));
    let (store, report) = SqliteStore::open_at(&db_path(dir.path()), &key).unwrap();
    assert_eq!(report.generated_key, None);
    import_text(&store, ROSTER).await;
    drop(store);
    assert!(SqliteStore::open_at(&db_path(dir.path()), &key).is_ok());
    let missing = KeySource::Secret(SecretRef::Env("HEARTH_IT_SURELY_UNSET".into()));
    let err = SqliteStore::open_at(&db_path(dir.path()), &missing)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("variable `HEARTH_IT_SURELY_UNSET` is not set"),
        "{err}"
    );
}

#[tokio::test]
async fn the_file_on_disk_has_no_sqlite_header_and_no_phone_or_name_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    assert_eq!(store.members(None).await.unwrap().len(), 3);
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(100));

    let mut checked = 0;
    for name in ["hearth.db", "hearth.db-wal"] {
        let path = dir.path().join("state").join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        checked += 1;
        assert!(
            !bytes.starts_with(b"SQLite format 3"),
            "{name} has a plain SQLite header"
        );
        for needle in [
            "5555550101",
            "Annabelle",
            "Bartholomew",
            "Quince",
            "PTSD",
            "I agree to receive",
        ] {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{name} contains `{needle}` in plain text");
        }
    }
    assert!(checked >= 1);
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    let first = import_text(&store, ROSTER).await;
    assert_eq!((first.inserted, first.updated, first.unchanged), (3, 0, 0));
    assert_eq!((first.consent_granted, first.consent_revoked), (2, 1));
    let audit_before = store.audit_tail(1000).await.unwrap().len();

    let again = import_text(&store, ROSTER).await;
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 3));
    assert_eq!((again.consent_granted, again.consent_revoked), (0, 0));
    assert_eq!(
        store.audit_tail(1000).await.unwrap().len(),
        audit_before,
        "nothing to audit"
    );

    let changed = ROSTER.replace("Grief,4", "Grief,5");
    let third = import_text(&store, &changed).await;
    assert_eq!((third.inserted, third.updated, third.unchanged), (0, 1, 2));
    let m = store.member("M-002").await.unwrap().unwrap();
    assert_eq!(m.attributes["progress_level"], serde_json::json!(5));
}

#[tokio::test]
async fn an_invalid_row_stops_the_whole_import_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    let bad = format!("{ROSTER}M-004,Dora,Tate,+15555550104,Mars/Olympus,en,2026-01-01,,yes,,\n");
    let (rows, invalid) =
        import::parse(bad.as_bytes(), &groups(), chrono::Utc::now().date_naive()).unwrap();
    let report = store
        .import_members(rows.clone(), invalid.clone(), opts(Some("I agree.")))
        .await
        .unwrap();
    assert!(!report.applied);
    assert_eq!(report.invalid.len(), 1);
    assert_eq!(report.invalid[0].line, 5);
    assert!(
        store.members(None).await.unwrap().is_empty(),
        "all or nothing"
    );

    let mut skip = opts(Some("I agree."));
    skip.skip_invalid = true;
    let report = store.import_members(rows, invalid, skip).await.unwrap();
    assert!(report.applied);
    assert_eq!(report.inserted, 3);
}

#[tokio::test]
async fn a_phone_already_held_by_another_member_is_a_row_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    let clash = "external_id,first_name,phone,timezone\nM-009,Ezra,+15555550101,UTC\n";
    let (rows, invalid) =
        import::parse(clash.as_bytes(), &groups(), chrono::Utc::now().date_naive()).unwrap();
    let report = store
        .import_members(rows, invalid, opts(None))
        .await
        .unwrap();
    assert!(!report.applied);
    assert_eq!(
        report.invalid[0].to_string(),
        "line 2 (M-009): duplicate phone number (already member `M-001`)"
    );
}

#[tokio::test]
async fn grants_need_the_exact_consent_text() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    let (rows, invalid) = import::parse(
        ROSTER.as_bytes(),
        &groups(),
        chrono::Utc::now().date_naive(),
    )
    .unwrap();
    let err = store
        .import_members(rows, invalid, opts(None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("--consent-text"), "{err}");
}

#[tokio::test]
async fn the_consent_ledger_moves_only_forward_and_stop_is_the_members_to_undo() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    let grant =
        |src| store.record_consent("M-001", ConsentAction::Granted, src, "I agree.", "staff-1");
    let revoke = |src| store.record_consent("M-001", ConsentAction::Revoked, src, "STOP", "member");

    assert_eq!(
        grant(ConsentSource::Staff).await.unwrap(),
        Recorded::AlreadySo
    );
    assert_eq!(
        revoke(ConsentSource::Keyword).await.unwrap(),
        Recorded::Changed
    );
    assert!(
        !store
            .member("M-001")
            .await
            .unwrap()
            .unwrap()
            .consent
            .granted()
    );
    // Neither staff nor a roster import may override the member's STOP…
    assert_eq!(
        grant(ConsentSource::Staff).await.unwrap(),
        Recorded::RefusedAfterOptOut
    );
    let reimport = import_text(&store, ROSTER).await;
    assert_eq!(reimport.kept_revoked.stop, 1);
    assert!(
        !store
            .member("M-001")
            .await
            .unwrap()
            .unwrap()
            .consent
            .granted()
    );
    // …but the member's own START does.
    assert_eq!(
        grant(ConsentSource::Keyword).await.unwrap(),
        Recorded::Changed
    );
    assert!(
        store
            .member("M-001")
            .await
            .unwrap()
            .unwrap()
            .consent
            .granted()
    );

    let history = store.consent_history("M-001").await.unwrap();
    let actions: Vec<_> = history.iter().map(|e| (e.action, e.source)).collect();
    assert_eq!(
        actions,
        vec![
            (ConsentAction::Granted, ConsentSource::Import),
            (ConsentAction::Revoked, ConsentSource::Keyword),
            (ConsentAction::Granted, ConsentSource::Keyword),
        ]
    );
    assert_eq!(history[0].text, "I agree to receive texts from the clinic.");

    let err = store
        .record_consent(
            "M-001",
            ConsentAction::Revoked,
            ConsentSource::Staff,
            " ",
            "staff-1",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exact text"), "{err}");
}

#[tokio::test]
async fn only_active_members_with_current_consent_can_be_selected_for_sending() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    let id = |ext: &'static str| {
        let store = store.clone();
        async move { store.member(ext).await.unwrap().unwrap().id }
    };
    let (m1, m2) = (id("M-001").await, id("M-002").await);
    assert_eq!(
        store.sendable_member_ids().await.unwrap(),
        vec![m1, m2],
        "M-003 said no"
    );

    store.deactivate("M-002", "staff-1").await.unwrap();
    assert_eq!(store.sendable_member_ids().await.unwrap(), vec![m1]);
    store
        .record_consent(
            "M-001",
            ConsentAction::Revoked,
            ConsentSource::Keyword,
            "STOP",
            "member",
        )
        .await
        .unwrap();
    assert!(store.sendable_member_ids().await.unwrap().is_empty());
}

/// Opens the database file directly, as an attacker with the key could.
fn raw_connection(dir: &Path) -> rusqlite::Connection {
    crate::support::db::open(&db_path(dir))
}

#[tokio::test]
async fn editing_an_old_audit_row_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    store
        .audit(
            "staff-1",
            "phi.reveal",
            None,
            serde_json::json!({"members": [1]}),
        )
        .await
        .unwrap();
    store
        .audit(
            "staff-1",
            "member.deactivate",
            Some("member:2"),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    let Verified::Intact { entries, .. } = store.audit_verify().await.unwrap() else {
        panic!("a fresh chain must verify")
    };
    assert_eq!(entries, 3, "one entry for the whole import, then two");
    drop(store);

    // The append-only trigger stops a casual edit…
    let conn = raw_connection(dir.path());
    let err = conn
        .execute("UPDATE audit SET actor = 'someone-else' WHERE id = 2", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    // …and the chain catches a deliberate one.
    conn.execute_batch("DROP TRIGGER audit_append_only_update")
        .unwrap();
    conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 2", [])
        .unwrap();
    drop(conn);

    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    match store.audit_verify().await.unwrap() {
        Verified::Broken {
            entry,
            reason,
            checked,
        } => {
            assert_eq!(entry, 2);
            assert_eq!(checked, 1);
            assert!(reason.contains("does not match its hash"), "{reason}");
        }
        other => panic!("tampering not caught: {other:?}"),
    }
}

#[tokio::test]
async fn deleting_an_audit_row_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    for _ in 0..2 {
        store
            .audit("staff-1", "phi.reveal", None, serde_json::json!({}))
            .await
            .unwrap();
    }
    drop(store);
    let conn = raw_connection(dir.path());
    conn.execute_batch("DROP TRIGGER audit_append_only_delete; DELETE FROM audit WHERE id = 2;")
        .unwrap();
    drop(conn);
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verified::Broken { entry: 2, .. }
    ));
}

#[tokio::test]
async fn ten_thousand_rows_import_and_reimport_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    let mut csv =
        String::from("external_id,first_name,phone,timezone,groups,consent,progress_level\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "X{i:05},Member{i},+1555{:07},America/New_York,{},yes,{}\n",
            i,
            if i % 2 == 0 {
                "tuesday-anxiety"
            } else {
                "thursday-grief"
            },
            i % 5
        ));
    }
    let first = import_text(&store, &csv).await;
    assert_eq!((first.inserted, first.consent_granted), (10_000, 10_000));
    assert_eq!(store.sendable_member_ids().await.unwrap().len(), 10_000);
    let again = import_text(&store, &csv).await;
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, 10_000)
    );
    assert_eq!(
        store.members(Some("thursday-grief")).await.unwrap().len(),
        5_000
    );
}

#[tokio::test]
async fn the_daemon_records_each_rule_set_load_in_the_audit_trail() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("x"))]).await;
    write(&app.rules_dir().join("main.yaml"), &rules_yaml("y"));
    app.wait_for_generation(2).await;
    write(&app.rules_dir().join("broken.yaml"), BROKEN_YAML);
    app.wait_for_attempts(3).await;
    let store = app.store.clone();
    // The audit write follows the reload; give it a moment.
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = store.audit_tail(10).await.unwrap();
        if entries.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let actions: Vec<(&str, serde_json::Value)> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.detail
                    .get("generation")
                    .or(e.detail.get("serving_generation"))
                    .cloned()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rules.load", serde_json::json!(1)),
            ("rules.load", serde_json::json!(2)),
            ("rules.reject", serde_json::json!(2)),
        ]
    );
    assert!(
        entries[0].detail["files"]["main.yaml"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );
    app.stop().await;
}

#[tokio::test]
async fn reimporting_a_roster_never_reactivates_a_member_staff_deactivated_unless_its_row_says_active()
 {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    assert!(store.deactivate("M-002", "staff-1").await.unwrap());

    // The same roster again (no status column): M-002 stays inactive and
    // nothing counts as changed.
    let again = import_text(&store, ROSTER).await;
    assert_eq!((again.updated, again.unchanged), (0, 3), "{again:?}");
    let m = store.member("M-002").await.unwrap().unwrap();
    assert_eq!(m.status, hearth::domain::member::MemberStatus::Inactive);

    // An edited row with an empty status cell keeps it inactive too.
    let edited = ROSTER
        .replace("consent,diagnosis", "consent,status,diagnosis")
        .replace("yes,PTSD", "yes,,PTSD")
        .replace(
            "Ruiz,+15555550102,America/Chicago,es,2026-11-01,thursday-grief,yes,Grief",
            "Ruiz,+15555550102,America/Chicago,en,2026-11-01,thursday-grief,yes,,Grief",
        )
        .replace("no,C-PTSD", "no,,C-PTSD");
    let r = import_text(&store, &edited).await;
    assert_eq!(r.updated, 1, "{r:?}");
    let m = store.member("M-002").await.unwrap().unwrap();
    assert_eq!(m.language, "en");
    assert_eq!(m.status, hearth::domain::member::MemberStatus::Inactive);

    // Only a row that says `active` brings them back.
    let active = edited.replace(
        "en,2026-11-01,thursday-grief,yes,,Grief",
        "en,2026-11-01,thursday-grief,yes,active,Grief",
    );
    let r = import_text(&store, &active).await;
    assert_eq!(r.updated, 1, "{r:?}");
    let m = store.member("M-002").await.unwrap().unwrap();
    assert_eq!(m.status, hearth::domain::member::MemberStatus::Active);
}

#[tokio::test]
async fn startup_verifies_only_audit_entries_since_its_checkpoint_and_audit_verify_walks_them_all()
{
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    for _ in 0..3 {
        store
            .audit("staff-1", "phi.reveal", None, serde_json::json!({}))
            .await
            .unwrap();
    }
    let walked = |v: Verified| match v {
        Verified::Intact { entries, .. } => entries,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        walked(store.audit_verify_since_checkpoint().await.unwrap()),
        4
    );
    // Nothing new: nothing walked.
    assert_eq!(
        walked(store.audit_verify_since_checkpoint().await.unwrap()),
        0
    );
    store
        .audit("staff-1", "phi.reveal", None, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        walked(store.audit_verify_since_checkpoint().await.unwrap()),
        1
    );
    drop(store);

    // An edit before the checkpoint is not start-up's to find (it walks
    // only new entries), but the full walk finds it.
    let conn = raw_connection(dir.path());
    conn.execute_batch(
        "DROP TRIGGER audit_append_only_update; UPDATE audit SET actor = 'x' WHERE id = 2;",
    )
    .unwrap();
    drop(conn);
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    assert_eq!(
        walked(store.audit_verify_since_checkpoint().await.unwrap()),
        0
    );
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verified::Broken { entry: 2, .. }
    ));
    drop(store);

    // Cutting verified entries off the end is found at start-up.
    let conn = raw_connection(dir.path());
    conn.execute_batch("DROP TRIGGER audit_append_only_delete; DELETE FROM audit WHERE id = 5;")
        .unwrap();
    drop(conn);
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    match store.audit_verify_since_checkpoint().await.unwrap() {
        Verified::Broken { entry, reason, .. } => {
            assert_eq!(entry, 5);
            assert!(reason.contains("cut off the end"), "{reason}");
        }
        other => panic!("a cut-off end not caught: {other:?}"),
    }
}

/// `n` members `B000000…`, all valid, in one of the two groups.
fn big_roster(n: usize) -> String {
    let mut csv =
        String::from("external_id,first_name,phone,timezone,groups,consent,progress_level\n");
    for i in 0..n {
        csv.push_str(&format!(
            "B{i:06},Member{i},+1666{i:07},America/New_York,{},yes,{}\n",
            if i % 2 == 0 {
                "tuesday-anxiety"
            } else {
                "thursday-grief"
            },
            i % 5
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_answer_during_a_100k_member_import_and_texts_sent_meanwhile_are_all_stored() {
    use hearth::domain::message::InboundSms;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(&db_path(dir.path()), &generated(dir.path())).unwrap();
    import_text(&store, ROSTER).await;
    let csv = big_roster(100_000);
    let (rows, invalid) =
        import::parse(csv.as_bytes(), &groups(), chrono::Utc::now().date_naive()).unwrap();
    assert!(invalid.is_empty());

    let importing = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .import_members(rows, invalid, opts(Some("I agree.")))
                .await
                .unwrap()
        }
    });
    // What a webhook does: look the sender up, store the text. Count the
    // lookups that answer while the import is still running.
    let phone: hearth::domain::Phone = "+15555550101".parse().unwrap();
    let mut answered_during_import = 0;
    let mut texts = 0;
    while !importing.is_finished() {
        let m = store.member_by_phone(&phone).await.unwrap().unwrap();
        assert_eq!(m.external_id, "M-001");
        if !importing.is_finished() {
            answered_during_import += 1;
        }
        if texts < 20 {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_inbound(InboundSms {
                        provider: "test".into(),
                        provider_message_id: format!("during-import-{texts}"),
                        from: "+15555550101".into(),
                        to: "+10000000000".into(),
                        body: "hello".into(),
                        keyword: None,
                    })
                    .await
                    .unwrap()
            });
            texts += 1;
        }
    }
    let report = importing.await.unwrap();
    assert_eq!(report.inserted, 100_000);
    // Queued behind the import's write, at most one lookup could seem to
    // answer "during" it (the one that waited for its end).
    assert!(
        answered_during_import >= 10,
        "{answered_during_import} lookups answered while the import ran: reads queued behind the write"
    );
    // Every text sent during the import is stored, none lost.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stored = store.unprocessed_inbound(100).await.unwrap().len();
        if stored == texts {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of {texts} texts stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
