//! Messaging benchmarks: dispatcher throughput to a loopback provider,
//! accuracy of the configured rate limit, inbound webhook throughput with
//! storage beside raw SQLite inserts of the same rows; the outbox's
//! `enqueue_batch` of 100k rows beside a raw batched insert of the same
//! rows, and claim latency with 1k vs 100k rows queued for tomorrow.
//!
//! `cargo bench --bench messaging` (only the outbox: `-- outbox`); figures
//! in docs/BENCHMARKS.md. Under `cargo test --benches` each runs once on
//! small inputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use hearth::dispatch::provider::AnyProvider;
use hearth::dispatch::providers::webhook::WebhookProvider;
use hearth::dispatch::worker::{Dispatcher, ExecutionOutcome};
use hearth::domain::message::IdempotencyKey;
use hearth::domain::message::{Kind, NewMessage};
use hearth::settings::DispatchSettings;
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::{InstanceId, Outcome};

mod common;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A provider endpoint that accepts everything at once.
async fn gateway() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                let n = h.fetch_add(1, Ordering::Relaxed);
                axum::Json(serde_json::json!({ "id": n }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

struct Setup {
    _dir: tempfile::TempDir,
    dispatcher: Dispatcher<SqliteStore>,
    hits: Arc<AtomicU64>,
}

/// A fresh database with `n` single-segment messages to non-member
/// numbers (escalation kind: no consent lookup, no quiet hours), and a
/// dispatcher at `rate` segments per second.
async fn setup(n: usize, rate: u32) -> Setup {
    let (addr, hits) = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    for i in 0..n {
        store
            .enqueue(NewMessage {
                idempotency_key: format!("bench:{i}").into(),
                member_id: None,
                to: Some(format!("+1555{i:07}").parse().unwrap()),
                body: "Your group meets tomorrow at 6:00 PM. Reply STOP to opt out.".into(),
                kind: Kind::Escalation,
                not_before: Utc::now(),
                expires_at: None,
                plan: None,
                suppressed: None,
            })
            .await
            .unwrap();
    }
    let settings = DispatchSettings {
        segments_per_second: rate,
        burst: 1,
        ..DispatchSettings::default()
    };
    let provider = WebhookProvider::new(
        &format!("http://{addr}/send"),
        "k".to_owned().into(),
        settings.timeout,
    )
    .unwrap();
    Setup {
        _dir: dir,
        dispatcher: Dispatcher::new(store, Arc::new(AnyProvider::Webhook(provider)), settings),
        hits,
    }
}

/// Sends everything queued; returns the wall time.
async fn drain(s: &Setup, n: usize) -> Duration {
    let start = Instant::now();
    let mut sent = 0;
    loop {
        match s.dispatcher.try_execute_task().await.unwrap() {
            ExecutionOutcome::Sent { .. } => sent += 1,
            ExecutionOutcome::EmptyQueue => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = start.elapsed();
    assert_eq!(sent, n);
    assert_eq!(s.hits.load(Ordering::Relaxed), n as u64);
    took
}

const INBOUND: usize = 2_000;
const TOKEN: &str = "bench-auth-token";

/// The real intake (Twilio endpoint, signature check, storage) on loopback.
async fn intake(dir: &std::path::Path) -> (std::net::SocketAddr, SqliteStore) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    // An empty rules directory is refused at start; one template suffices.
    std::fs::write(
        dir.join("rules/messages.yaml"),
        "templates:\n  hello:\n    body: \"Hello\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let yaml = format!(
        "public_url: http://{addr}\nrules_dir: rules\nprovider: {{ kind: twilio, account_sid: AC00000000000000000000000000000000, auth_token: file:token, from: \"+15555550000\" }}\n"
    );
    let settings =
        hearth::settings::Settings::parse(&yaml, &dir.join("hearth.yaml"), dir, std::iter::empty())
            .unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.join("h.db"),
        &KeySource::Generated(dir.join("h.db.key")),
    )
    .unwrap();
    let state = hearth::intake::IntakeState {
        store: store.clone(),
        rules: Arc::new(hearth::config::reload::LiveRules::load(&dir.join("rules")).unwrap()),
        settings: Arc::new(settings),
        inbound_wake: Default::default(),
        arrivals: None,
        admin_tokens: Default::default(),
        dispatch: Default::default(),
        escalation_wake: Default::default(),
    };
    let router = hearth::intake::router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (addr, store)
}

fn inbound_params(i: usize) -> Vec<(String, String)> {
    vec![
        ("MessageSid".into(), format!("SM{i:032}")),
        ("From".into(), format!("+1555{:07}", i % 5000)),
        ("To".into(), "+15555550000".into()),
        (
            "Body".into(),
            "I am doing a bit better this week, thanks for asking.".into(),
        ),
    ]
}

/// `n` signed webhooks, eight at a time over keep-alive connections.
async fn post_inbound(addr: std::net::SocketAddr, n: usize) -> Duration {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/webhooks/twilio/sms");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for i in (worker..n).step_by(8) {
                let params = inbound_params(i);
                let sig =
                    hearth::intake::twilio::expected_signature(TOKEN.as_bytes(), &url, &params);
                let resp = client
                    .post(&url)
                    .header("x-twilio-signature", sig)
                    .form(&params)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    start.elapsed()
}

/// The same rows straight into the same kind of encrypted database, one
/// transaction each (the webhook commits each before answering).
fn raw_inbound(n: usize) -> Duration {
    let (_dir, path) = common::fresh_db();
    let conn = common::open_raw(&path);
    let mut stmt = conn
        .prepare(
            "INSERT INTO inbound (provider, provider_message_id, from_phone, to_phone, body, received_at)
             VALUES ('twilio', ?1, ?2, ?3, ?4, 'now')",
        )
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let p = inbound_params(i);
        stmt.execute(rusqlite::params![p[0].1, p[1].1, p[2].1, p[3].1])
            .unwrap();
    }
    start.elapsed()
}

/// `cargo bench` passes `--bench`; a test run of the benches does not.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `n` scheduled messages of one fan-out, to non-member numbers.
fn fan_out(n: usize, fire: chrono::DateTime<Utc>) -> Vec<NewMessage> {
    (0..n)
        .map(|i| NewMessage {
            idempotency_key: IdempotencyKey::scheduled("reminder-day-before", fire, i as i64),
            member_id: None,
            to: Some(format!("+1555{i:07}").parse().unwrap()),
            body: "Your group meets tomorrow at 6:00 PM. Reply STOP to opt out.".into(),
            kind: Kind::Scheduled,
            not_before: fire,
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .collect()
}

/// The same rows as [`fan_out`], inserted raw: one transaction, one
/// prepared statement, values computed beforehand.
fn raw_outbox_insert(n: usize, fire: chrono::DateTime<Utc>) -> Duration {
    let (_dir, path) = common::fresh_db();
    let mut conn = common::open_raw(&path);
    let at = fire.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let rows: Vec<NewMessage> = fan_out(n, fire);
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO outbox (idempotency_key, to_phone, body, kind, priority, not_before, next_attempt_at,
                                     state, segments, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'scheduled', 5, ?4, ?4, 'queued', 1, ?4, ?4)",
            )
            .unwrap();
        for m in &rows {
            stmt.execute(rusqlite::params![
                m.idempotency_key.as_str(),
                m.to.as_ref().unwrap().as_str(),
                m.body,
                at
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    start.elapsed()
}

/// A store with `waiting` messages queued for tomorrow.
async fn store_with_tomorrow(waiting: usize) -> (tempfile::TempDir, SqliteStore) {
    let (dir, path) = common::fresh_db();
    let (store, _) =
        SqliteStore::open_at(&path, &KeySource::Generated(common::key_file(&path))).unwrap();
    let tomorrow = Utc::now() + chrono::TimeDelta::days(1);
    store
        .enqueue_batch(fan_out(waiting, tomorrow))
        .await
        .unwrap();
    (dir, store)
}

fn outbox(c: &mut Criterion) {
    let rt = runtime();
    let rows = if bench_mode() { 100_000 } else { 1_000 };
    let mut group = c.benchmark_group("outbox enqueue");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(criterion::Throughput::Elements(rows as u64));
    group.bench_function(format!("enqueue_batch of {rows} rows"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(async {
                        let (_dir, path) = common::fresh_db();
                        let (store, _) = SqliteStore::open_at(
                            &path,
                            &KeySource::Generated(common::key_file(&path)),
                        )
                        .unwrap();
                        let batch = fan_out(rows, Utc::now());
                        let start = Instant::now();
                        let new = store.enqueue_batch(batch).await.unwrap();
                        let took = start.elapsed();
                        assert_eq!(new, rows);
                        took
                    })
                })
                .sum()
        })
    });
    group.bench_function(
        format!("raw batched INSERT of the same {rows} rows (baseline)"),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| raw_outbox_insert(rows, Utc::now()))
                    .sum()
            })
        },
    );
    group.finish();

    let mut group = c.benchmark_group("outbox claim");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let holder = InstanceId::new("bench").unwrap();
    let lease = chrono::TimeDelta::seconds(60);
    let sizes: &[usize] = if bench_mode() {
        &[1_000, 100_000]
    } else {
        &[10, 1_000]
    };
    for &waiting in sizes {
        let (_dir, store) = rt.block_on(store_with_tomorrow(waiting));
        // A due message is queued (not timed), claimed (timed) and settled
        // (not timed), so every claim finds exactly one due row.
        let mut seq = 0i64;
        group.bench_function(
            format!("claim the one due message, {waiting} queued for tomorrow"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            // Keys that sort together, so the untimed
                            // inserts dirty the same few index pages at
                            // either size (random keys dirty one page
                            // each, and the WAL checkpoint that causes
                            // lands in whichever commit comes next).
                            seq += 1;
                            let key = IdempotencyKey::reply(seq, "bench-claim");
                            store
                                .enqueue(NewMessage {
                                    idempotency_key: key,
                                    member_id: None,
                                    to: Some("+15550000001".parse().unwrap()),
                                    body: format!("due {i}"),
                                    kind: Kind::Scheduled,
                                    not_before: Utc::now() - chrono::TimeDelta::seconds(1),
                                    expires_at: None,
                                    plan: None,
                                    suppressed: None,
                                })
                                .await
                                .unwrap();
                            let start = Instant::now();
                            let c = store.claim(&holder, Utc::now(), lease).await.unwrap();
                            total += start.elapsed();
                            let c = c.expect("one due message");
                            store
                                .settle_claim(
                                    &c.lease,
                                    Outcome::Sent {
                                        provider: "bench".into(),
                                        provider_message_id: None,
                                    },
                                )
                                .await
                                .unwrap();
                        }
                        total
                    })
                })
            },
        );
        group.bench_function(
            format!("claim with nothing due, {waiting} queued for tomorrow"),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        assert!(
                            store
                                .claim(&holder, Utc::now(), lease)
                                .await
                                .unwrap()
                                .is_none()
                        );
                    })
                })
            },
        );
    }
    group.finish();
}

const THROUGHPUT_MESSAGES: usize = 2_000;
const RATE: u32 = 50;
const RATE_MESSAGES: usize = 100;

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("dispatch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(criterion::Throughput::Elements(THROUGHPUT_MESSAGES as u64));
    group.bench_function("2000 messages to a loopback provider, no rate limit", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(async {
                        let s = setup(THROUGHPUT_MESSAGES, 1_000_000).await;
                        drain(&s, THROUGHPUT_MESSAGES).await
                    })
                })
                .sum()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("inbound");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(criterion::Throughput::Elements(INBOUND as u64));
    group.bench_function("2000 signed Twilio webhooks, stored (8 concurrent)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(async {
                        let dir = tempfile::tempdir().unwrap();
                        let (addr, store) = intake(dir.path()).await;
                        let took = post_inbound(addr, INBOUND).await;
                        assert_eq!(
                            store.unprocessed_inbound(INBOUND + 1).await.unwrap().len(),
                            INBOUND
                        );
                        took
                    })
                })
                .sum()
        })
    });
    group.bench_function("raw SQLite inserts of the same 2000 rows (baseline)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_inbound(INBOUND)).sum())
    });
    group.finish();

    // Rate accuracy: 100 one-segment messages at 50/s should take 99/50 s
    // (the first goes at once). Printed as measured / expected.
    let expected = Duration::from_secs_f64((RATE_MESSAGES - 1) as f64 / f64::from(RATE));
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let took = rt.block_on(async {
            let s = setup(RATE_MESSAGES, RATE).await;
            drain(&s, RATE_MESSAGES).await
        });
        ratios.push(took.as_secs_f64() / expected.as_secs_f64());
    }
    println!(
        "rate limit {RATE}/s over {RATE_MESSAGES} messages: expected {:.3}s, measured/expected {:?}",
        expected.as_secs_f64(),
        ratios.iter().map(|r| format!("{r:.4}")).collect::<Vec<_>>()
    );
}

criterion_group!(messaging, benches, outbox);
criterion_main!(messaging);
