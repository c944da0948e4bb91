//! One schedule fire to 100,000 members into the outbox, beside a batched
//! insert of the very same rows (no fan-out work) as the baseline.
//!
//! Every sample starts from a copy of one database holding the roster and
//! an empty outbox, so no sample inserts into a table the last one grew.
//!
//! `cargo bench --bench scheduler`; figures in docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use hearth::config::reload::LiveRules;
use hearth::domain::clock::ManualClock;
use hearth::domain::message::NewMessage;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::OutboxStore;
use hearth::timers::schedules::BATCH;
use hearth::timers::schedules::Scheduler;

mod common;

const MEMBERS: usize = 100_000;

const RULES: &str = r#"groups:
  - id: tuesday-anxiety
    name: Tuesday Anxiety Support
    timezone: America/New_York
    sessions: { cron: "0 18 * * TUE", duration: 90m }
templates:
  reminder:
    body: "Hi {{ member.first_name }}, {{ group.name }} meets {{ session.when }} at {{ session.starts_at | time }}. Reply STOP to opt out."
schedules:
  - id: reminder
    template: reminder
    groups: [tuesday-anxiety]
    before_session: 1d
    at: "17:00"
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The roster database every sample copies: 100k members, all in the
/// group, all with consent.
struct Template {
    dir: tempfile::TempDir,
}

impl Template {
    fn build(rt: &tokio::runtime::Runtime) -> Template {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/rules.yaml"), RULES).unwrap();
        let (store, _) = SqliteStore::open_at(&dir.path().join("h.db"), &key(dir.path())).unwrap();
        let mut csv = String::from("external_id,first_name,phone,timezone,groups,consent\n");
        for i in 0..MEMBERS {
            csv.push_str(&format!(
                "X{i:06},First{i},+1555{i:07},America/New_York,tuesday-anxiety,yes\n"
            ));
        }
        let groups = std::collections::BTreeSet::from(["tuesday-anxiety".to_owned()]);
        let report = common::import(rt, &store, &csv, &groups);
        assert!(report.applied);
        drop(store);
        Template { dir }
    }

    /// A fresh copy of the database in its own directory.
    fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        let to = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
            }
        }
        let db = to.path().join("h.db");
        (to, db)
    }
}

fn key(dir: &Path) -> KeySource {
    KeySource::Generated(dir.join("h.db.key"))
}

/// The fire for Tuesday 2026-01-06's session: 17:00 the day before,
/// Monday 2026-01-05 17:00 EST (22:00 UTC).
const FIRE: &str = "2026-01-05T22:00:00Z";

/// One fire, timed from the scheduler's pass to the last row committed.
/// Returns the time and the rows it wrote (for the baseline).
fn fire_once(rt: &tokio::runtime::Runtime, template: &Template) -> (Duration, Vec<NewMessage>) {
    let (dir, db) = template.copy();
    let store = SqliteStore::open_at(&db, &key(dir.path())).unwrap().0;
    let rules = Arc::new(LiveRules::load(&template.dir.path().join("rules")).unwrap());
    let scheduler = Scheduler::new(
        store.clone(),
        rules.clone(),
        Arc::new(ManualClock::new(t(FIRE))),
    );
    // Sets the schedule's mark just before the fire (untimed).
    rt.block_on(scheduler.tick(t("2026-01-05T21:00:00Z")))
        .unwrap();
    let start = Instant::now();
    let report = rt.block_on(scheduler.tick(t(FIRE))).unwrap();
    let took = start.elapsed();
    assert_eq!(report.fires.len(), 1);
    assert_eq!(report.fires[0].enqueued, MEMBERS as u64);
    // The rows it wrote, rebuilt from the same pure fan-out for the baseline.
    let members = rt
        .block_on(hearth::store::traits::ScheduleStore::recipients(&store))
        .unwrap();
    let live = rules.current();
    let schedule = &live.schedules["reminder"];
    let fire =
        hearth::schedule::plan::fires(&live, schedule, t("2026-01-05T21:00:00Z"), t(FIRE), &[])
            .remove(0);
    let cx = hearth::timers::schedules::fanout::Context {
        rules: &live,
        generation: 1,
        version: "bench",
    };
    let rows = hearth::timers::schedules::fanout::fan_out(
        &cx,
        schedule,
        &fire,
        &members,
        &mut Default::default(),
    )
    .messages;
    drop(dir);
    (took, rows)
}

/// The same rows through a batched insert alone, in batches of the same
/// size, into a fresh copy of the same database.
fn insert_once(rt: &tokio::runtime::Runtime, template: &Template, rows: &[NewMessage]) -> Duration {
    let (dir, db) = template.copy();
    let store = SqliteStore::open_at(&db, &key(dir.path())).unwrap().0;
    let batches: Vec<Vec<NewMessage>> = rows.chunks(BATCH).map(<[_]>::to_vec).collect();
    let start = Instant::now();
    let mut n = 0;
    for b in batches {
        n += rt.block_on(store.enqueue_batch(b)).unwrap();
    }
    let took = start.elapsed();
    assert_eq!(n, MEMBERS);
    took
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let template = Template::build(&rt);
    let (_, rows) = fire_once(&rt, &template);
    let mut g = c.benchmark_group("fire");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    let mut fire_times = Vec::new();
    g.bench_function("fan_out_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (took, _) = fire_once(&rt, &template);
                fire_times.push(took);
                total += took;
            }
            total
        })
    });
    let mut insert_times = Vec::new();
    g.bench_function("batched_insert_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let took = insert_once(&rt, &template, &rows);
                insert_times.push(took);
                total += took;
            }
            total
        })
    });
    g.finish();
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let (fire, insert) = (median(&mut fire_times), median(&mut insert_times));
    println!(
        "fire to {MEMBERS} members: median {fire:?}; batched insert of the same rows: median {insert:?}; ratio insert/fire = {:.2} (goal ≥ 0.5); goal under 3 s: {}",
        insert.as_secs_f64() / fire.as_secs_f64().max(f64::EPSILON),
        if fire < Duration::from_secs(3) {
            "met"
        } else {
            "NOT met"
        }
    );
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
