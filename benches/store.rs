//! Store benchmarks: roster import, segment evaluation, and the same
//! insert workload in raw rusqlite as the ratio's baseline; inbound texts
//! stored while a 100k import runs, beside the same without one; the
//! scheduler's reads and writes: a fan-out's `recipients()` over 100k
//! members (beside `members()`), and one planned fire to 100k members
//! through `enqueue_batch` beside a raw batched insert of the same rows.
//!
//! `cargo bench --bench store`; figures in docs/BENCHMARKS.md.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hearth::domain::message::InboundSms;
use hearth::domain::message::{IdempotencyKey, Kind, NewMessage, Plan};
use hearth::rules::script::{Limits, Sandbox, ScriptKind};
use hearth::rules::segment;
use hearth::rules::{Condition, Field, Op, Segment};
use hearth::store::import;
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::{OutboxStore, ScheduleStore};

mod common;

const MEMBERS: usize = 100_000;

fn roster(n: usize) -> String {
    let mut csv = String::from(
        "external_id,first_name,last_name,phone,timezone,language,joined_on,groups,consent,diagnosis,progress_level\n",
    );
    for i in 0..n {
        csv.push_str(&format!(
            "X{i:06},First{i},Last{i},+1555{i:07},America/New_York,{},2026-0{}-1{},{},yes,{},{}\n",
            if i % 7 == 0 { "es" } else { "en" },
            1 + i % 9,
            i % 10,
            if i % 2 == 0 {
                "tuesday-anxiety"
            } else {
                "thursday-grief"
            },
            if i % 3 == 0 { "PTSD;GAD" } else { "GAD" },
            i % 5
        ));
    }
    csv
}

fn groups() -> BTreeSet<String> {
    ["tuesday-anxiety", "thursday-grief"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Parse + validate + import into a fresh encrypted database.
fn import_fresh(csv: &str) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let start = Instant::now();
    let report = common::import(&runtime(), &store, csv, &groups());
    let took = start.elapsed();
    assert_eq!(report.inserted, csv.lines().count() - 1);
    took
}

/// The same rows, inserted with prepared statements and no checks, into
/// the same kind of encrypted database with the same schema.
fn raw_insert(csv: &str) -> Duration {
    // Made through the store once so the schema and key are identical.
    let (_dir, path) = common::fresh_db();
    let mut conn = common::open_raw(&path);
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut m = tx
            .prepare(
                "INSERT INTO members (external_id, first_name, last_name, phone, timezone, language, joined_on, status, attributes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, 'now', 'now')",
            )
            .unwrap();
        let mut g = tx
            .prepare("INSERT INTO group_members (member_id, group_id) VALUES (?1, ?2)")
            .unwrap();
        let mut c = tx
            .prepare("INSERT INTO consent_events (member_id, action, channel, source, text, actor, at) VALUES (?1, 'granted', 'sms', 'import', 'I agree.', 'bench', 'now')")
            .unwrap();
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let attrs = serde_json::json!({ "diagnosis": f[9].split(';').collect::<Vec<_>>(), "progress_level": f[10].parse::<i64>().unwrap() }).to_string();
            m.execute(rusqlite::params![
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], attrs
            ])
            .unwrap();
            let id = tx.last_insert_rowid();
            g.execute(rusqlite::params![id, f[7]]).unwrap();
            c.execute([id]).unwrap();
        }
    }
    tx.commit().unwrap();
    start.elapsed()
}

/// Texts stored, one after another as webhooks arrive, per benchmark
/// iteration.
const TEXTS: usize = 200;

/// The time to store `TEXTS` inbound texts, one after another as webhooks
/// arrive, in a store that holds a 100k roster. With `during_import`, a
/// second 100k import starts first and texts are stored for as long as it
/// runs; the time is the import's duration scaled to `TEXTS` at the rate
/// achieved (a text that waits for the import's commit counts its wait).
fn inbound_texts(csv: &str, second: &str, during_import: bool) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let opts = common::options;
    let (rows, invalid) = import::parse(csv.as_bytes(), &groups(), today).unwrap();
    rt.block_on(store.import_members(rows, invalid, opts()))
        .unwrap();
    let (rows, invalid) = import::parse(second.as_bytes(), &groups(), today).unwrap();
    rt.block_on(async {
        let importing = during_import.then(|| {
            let store = store.clone();
            tokio::spawn(async move { store.import_members(rows, invalid, opts()).await })
        });
        let text = |i: usize| InboundSms {
            provider: "bench".into(),
            provider_message_id: format!("t{i}"),
            from: "+15550000001".into(),
            to: "+10000000000".into(),
            body: "hello".into(),
            keyword: None,
        };
        let start = Instant::now();
        match importing {
            None => {
                for i in 0..TEXTS {
                    store.record_inbound(text(i)).await.unwrap();
                }
                start.elapsed()
            }
            Some(importing) => {
                let mut stored = 0;
                let mut longest = Duration::ZERO;
                while !importing.is_finished() {
                    let one = Instant::now();
                    store.record_inbound(text(stored)).await.unwrap();
                    longest = longest.max(one.elapsed());
                    stored += 1;
                }
                importing.await.unwrap().unwrap();
                eprintln!(
                    "  {stored} texts stored during a {:.2?} import; the longest single wait {longest:.2?}",
                    start.elapsed()
                );
                start.elapsed() * TEXTS as u32 / stored.max(1) as u32
            }
        }
    })
}

/// A store holding the 100k roster, imported as staff would.
fn store_with_roster(csv: &str) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    common::import(&runtime(), &store, csv, &groups());
    (dir, store)
}

const BODY: &str = "Your group meets tomorrow at 6:00 PM. Reply STOP to opt out.";

/// One fire of one schedule to members `1..=n`, as the scheduler plans it.
fn planned_fire(n: usize, fire: chrono::DateTime<chrono::Utc>) -> Vec<NewMessage> {
    (1..=n as i64)
        .map(|member| NewMessage {
            idempotency_key: IdempotencyKey::scheduled("reminder-day-before", fire, member),
            member_id: Some(member),
            to: None,
            body: BODY.into(),
            kind: Kind::Scheduled,
            not_before: fire,
            expires_at: Some(fire + chrono::TimeDelta::hours(20)),
            plan: Some(Plan {
                schedule: "reminder-day-before".into(),
                fire,
                generation: 1,
                version: "3f9a1c".into(),
                survey: None,
            }),
            suppressed: None,
        })
        .collect()
}

/// `enqueue_batch` of one fire to the 100k members of a fresh store's
/// roster (the roster is imported untimed); or, with `raw`, the same rows
/// in one transaction with one prepared statement and every value
/// computed beforehand, into the same schema.
fn fire_to_roster(csv: &str, raw: bool) -> Duration {
    let (dir, store) = store_with_roster(csv);
    let fire = chrono::Utc::now();
    let batch = planned_fire(MEMBERS, fire);
    if !raw {
        let start = Instant::now();
        let new = runtime().block_on(store.enqueue_batch(batch)).unwrap();
        let took = start.elapsed();
        assert_eq!(new, MEMBERS);
        return took;
    }
    drop(store);
    let mut conn = common::open_raw(&dir.path().join("h.db"));
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    let at = fire.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let expires =
        (fire + chrono::TimeDelta::hours(20)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO outbox (idempotency_key, member_id, body, kind, priority, not_before, expires_at,
                                     next_attempt_at, state, segments, created_at, updated_at,
                                     schedule_id, fire_at, generation, schedule_version)
                 VALUES (?1, ?2, ?3, 'scheduled', 5, ?4, ?5, ?4, 'queued', 1, ?4, ?4,
                         'reminder-day-before', ?4, 1, '3f9a1c')",
            )
            .unwrap();
        for m in &batch {
            stmt.execute(rusqlite::params![
                m.idempotency_key.as_str(),
                m.member_id,
                m.body,
                at,
                expires
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    start.elapsed()
}

fn member_views(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "id": i, "external_id": format!("X{i:06}"), "first_name": "F", "language": if i % 7 == 0 { "es" } else { "en" },
                "days_since_joined": i % 400, "joined_on": "2026-01-01", "status": "active",
                "groups": [if i % 2 == 0 { "tuesday-anxiety" } else { "thursday-grief" }],
                "attributes": { "diagnosis": if i % 3 == 0 { vec!["PTSD", "GAD"] } else { vec!["GAD"] }, "progress_level": i % 5 }
            })
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let csv = roster(MEMBERS);
    let mut group = c.benchmark_group("store");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function(
        "import 100k members (parse, validate, upsert, consent, audit)",
        |b| b.iter_custom(|iters| (0..iters).map(|_| import_fresh(&csv)).sum()),
    );
    group.bench_function(
        "raw rusqlite insert of the same 100k rows (baseline)",
        |b| b.iter_custom(|iters| (0..iters).map(|_| raw_insert(&csv)).sum()),
    );
    group.finish();

    // A second roster of other members, imported over the first.
    let second = roster(MEMBERS)
        .replace("\nX", "\nY")
        .replace(",+1555", ",+1556");
    let mut group = c.benchmark_group("intake");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("store 200 inbound texts (no import running)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| inbound_texts(&csv, &second, false))
                .sum()
        })
    });
    group.bench_function(
        "store 200 inbound texts at the rate achieved while a 100k-member import runs",
        |b| b.iter_custom(|iters| (0..iters).map(|_| inbound_texts(&csv, &second, true)).sum()),
    );
    group.finish();

    let mut group = c.benchmark_group("schedule");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    {
        // Reopened after the import, as a daemon's fire finds it: the
        // first reads right after a 100k import's commit (its WAL not yet
        // checkpointed) take several times longer, whichever query runs.
        let (dir, store) = store_with_roster(&csv);
        drop(store);
        let (store, _) = SqliteStore::open_at(
            &dir.path().join("h.db"),
            &KeySource::Generated(dir.path().join("h.db.key")),
        )
        .unwrap();
        let rt = runtime();
        assert_eq!(rt.block_on(store.recipients()).unwrap().len(), MEMBERS);
        group.bench_function("recipients() of 100k members (one query)", |b| {
            b.iter(|| rt.block_on(store.recipients()).unwrap().len())
        });
        group.bench_function(
            "members() of the same 100k (ordered by external id, for comparison)",
            |b| b.iter(|| rt.block_on(store.members(None)).unwrap().len()),
        );
    }
    group.bench_function("enqueue_batch of one planned fire to 100k members", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| fire_to_roster(&csv, false)).sum())
    });
    group.bench_function(
        "raw batched INSERT of the same 100k planned rows (baseline)",
        |b| b.iter_custom(|iters| (0..iters).map(|_| fire_to_roster(&csv, true)).sum()),
    );
    group.finish();

    let views = member_views(MEMBERS);
    let sandbox = Sandbox::new(Limits::default());
    let static_seg = Segment {
        id: "high-support-ptsd".into(),
        conditions: vec![
            Condition {
                field: Field::Attribute("progress_level".into()),
                op: Op::Lte(2.into()),
            },
            Condition {
                field: Field::Attribute("diagnosis".into()),
                op: Op::AnyOf(vec!["PTSD".into(), "C-PTSD".into()]),
            },
        ],
        when: None,
    };
    let rhai_seg = Segment {
        id: "new-members".into(),
        conditions: vec![],
        when: Some(
            sandbox
                .compile_expression(
                    ScriptKind::Segment,
                    "member.days_since_joined < 30 && member.attributes.progress_level <= 2",
                )
                .unwrap(),
        ),
    };
    let count = |seg: &Segment| {
        views
            .iter()
            .filter(|v| segment::matches(seg, v, &sandbox).unwrap())
            .count()
    };
    assert_eq!(
        count(&static_seg),
        (0..MEMBERS).filter(|i| i % 5 <= 2 && i % 3 == 0).count()
    );
    assert_eq!(
        count(&rhai_seg),
        (0..MEMBERS).filter(|i| i % 400 < 30 && i % 5 <= 2).count()
    );

    let mut group = c.benchmark_group("segments");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("static match over 100k members", |b| {
        b.iter(|| count(&static_seg))
    });
    group.bench_function("rhai when over 100k members", |b| {
        b.iter(|| count(&rhai_seg))
    });
    group.finish();
}

criterion_group!(store, benches);
criterion_main!(store);
