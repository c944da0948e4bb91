//! Reply pipeline benchmarks (issue 9).
//!
//! (a) Replies processed per second in-process: stored member texts handed
//!     by the inbound worker to the `ReplyPipeline` (facts read, crisis
//!     check, keywords, 200 alerts of which 20 are Rhai `script:` alerts,
//!     one write transaction each), beside raw SQLite inserts of the same
//!     rows, processed, into the same kind of encrypted database.
//! (b) Crisis latency: from an HTTP POST of a crisis text to the daemon's
//!     Kannel MO endpoint (in-process `App` on loopback) until its crisis
//!     reply is in the outbox, while 1,000 routine texts are queued ahead
//!     of it. p50/p99 are printed.
//!
//! `CARGO_TARGET_DIR=/work/bench-target cargo bench --bench replies`;
//! `cargo test --benches` runs each once, small. Figures in
//! docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hearth::config::reload::LiveRules;
use hearth::domain::message::{InboundSms, Kind};
use hearth::pipeline::InboundWorker;
use hearth::pipeline::handler::ReplyPipeline;
use hearth::settings::{ReplySettings, Settings};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::ListFilter;
use tokio_util::sync::CancellationToken;

mod common;

/// Alerts in the generated rule set, and how many of them are scripts.
const ALERTS: usize = 200;
const SCRIPTS: usize = 20;
/// Keyword alerts (the rest, after the crisis alert and the `when:` ones).
const WHENS: usize = 9;
const KEYWORDS: usize = ALERTS - 1 - WHENS - SCRIPTS;

/// Which alerts a generated rule set has besides the crisis alert.
#[derive(Clone, Copy)]
struct Mix {
    keywords: usize,
    whens: usize,
    scripts: usize,
}

impl Mix {
    fn alerts(self) -> usize {
        1 + self.keywords + self.whens + self.scripts
    }
}

/// The issue's rule set: 200 alerts, 20 of them Rhai scripts.
const FULL: Mix = Mix {
    keywords: KEYWORDS,
    whens: WHENS,
    scripts: SCRIPTS,
};
/// The crisis alert alone: the store's share.
const CRISIS_ONLY: Mix = Mix {
    keywords: 0,
    whens: 0,
    scripts: 0,
};
/// 200 alerts, the scripts replaced by keyword alerts: the scripts' share.
const NO_SCRIPTS: Mix = Mix {
    keywords: KEYWORDS + SCRIPTS,
    whens: WHENS,
    scripts: 0,
};

/// `cargo bench` passes `--bench`; a test run of the benches does not.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Writes the generated rule set into `dir` (`main.yaml`, `scripts/`):
/// the crisis alert, keyword alerts, `when:` alerts over a mood answer,
/// and Rhai scripts that read the reply and the history.
fn write_rules(dir: &std::path::Path, mix: Mix) {
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    let mut y = String::from(
        r#"templates:
  crisis-resources:
    body: "If you are in danger call 911. Call or text 988 any time (Suicide & Crisis Lifeline)."
surveys:
  mood-checkin:
    questions:
      - id: mood
        ask: "How is your mood today, 1 to 10?"
        expect: { number: { min: 1, max: 10, integer: true } }
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all", "kill myself", "want to die"]
    reply: crisis-resources
"#,
    );
    let Mix {
        keywords,
        whens,
        scripts,
    } = mix;
    for i in 0..keywords {
        y.push_str(&format!(
            "  - id: kw-{i:03}\n    severity: warning\n    keywords: [\"topic{i} alpha\", \"marker{i}\"]\n    realert: 24h\n"
        ));
    }
    for i in 0..whens {
        y.push_str(&format!(
            "  - id: when-{i}\n    severity: info\n    when: 'answer(\"mood\") <= {}'\n",
            i + 1
        ));
    }
    for i in 0..scripts {
        y.push_str(&format!(
            "  - id: script-{i:02}\n    severity: warning\n    script: scripts/s{i:02}.rhai\n"
        ));
        std::fs::write(
            dir.join(format!("scripts/s{i:02}.rhai")),
            format!(
                r#"// Bench script {i}: reads the reply and the history.
let hit = false;
if reply.type_of() == "string" {{
    hit = reply.contains("signal{i}");
}}
if history.type_of() == "array" && history.len() > 3 {{
    hit = hit || history.len() > 1000;
}}
hit
"#
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join("main.yaml"), y).unwrap();
}

/// A roster of `n` members with consent, in a daytime-agnostic zone.
fn roster(n: usize) -> String {
    let mut csv = String::from("external_id,first_name,phone,timezone,consent\n");
    for i in 0..n {
        csv.push_str(&format!("B{i:05},Sam,{},UTC,yes\n", phone(i)));
    }
    csv
}

fn phone(i: usize) -> String {
    format!("+1555{:07}", 1_000_000 + i)
}

/// What member `i` texts: mostly routine; one in 50 trips a keyword alert
/// and one in 100 a script alert.
fn routine_body(i: usize) -> String {
    match i % 100 {
        0 => format!("today I kept thinking about topic{} alpha", i % KEYWORDS),
        50 => format!("signal{} again this week", i % SCRIPTS),
        25 | 75 => format!("marker{} came up in group", i % KEYWORDS),
        _ => "I am doing a bit better this week, thanks for asking.".into(),
    }
}

fn inbound(i: usize, tag: &str, members: usize, body: String) -> InboundSms {
    InboundSms {
        provider: "kannel".into(),
        provider_message_id: format!("{tag}-{i:08}"),
        from: phone(i % members),
        to: "+15555550999".into(),
        body,
        keyword: None,
    }
}

/// A fresh encrypted store with `members` imported and the rule set
/// (`mix`).
fn setup(
    rt: &tokio::runtime::Runtime,
    members: usize,
    mix: Mix,
) -> (tempfile::TempDir, SqliteStore, Arc<LiveRules>) {
    let dir = tempfile::tempdir().unwrap();
    write_rules(&dir.path().join("rules"), mix);
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    common::import(rt, &store, &roster(members), &Default::default());
    let rules = Arc::new(LiveRules::load(&dir.path().join("rules")).unwrap());
    assert_eq!(rules.current().alerts.len(), mix.alerts());
    (dir, store, rules)
}

/// (a) `n` stored texts through the pipeline; the drain's wall time.
fn pipeline_run(rt: &tokio::runtime::Runtime, n: usize, mix: Mix) -> Duration {
    let members = n.min(2_000);
    let (_dir, store, rules) = setup(rt, members, mix);
    rt.block_on(async {
        for i in 0..n {
            store
                .record_inbound(inbound(i, "r", members, routine_body(i)))
                .await
                .unwrap();
        }
        let handler = Arc::new(ReplyPipeline::new(
            store.clone(),
            rules,
            ReplySettings::default(),
        ));
        let worker = InboundWorker::new(store.clone(), handler, Default::default());
        let start = Instant::now();
        let done = worker.drain().await.unwrap();
        let took = start.elapsed();
        assert_eq!(done, n, "every text processed");
        took
    })
}

/// (a) baseline: the same rows inserted already processed, one
/// transaction each, with prepared statements into the same schema.
fn raw_run(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    let members = n.min(2_000);
    let (dir, store, _) = setup(rt, members, CRISIS_ONLY);
    drop(store);
    let conn = common::open_raw(&dir.path().join("h.db"));
    let mut stmt = conn
        .prepare(
            "INSERT INTO inbound (provider, provider_message_id, from_phone, to_phone, body, received_at, processed_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'routine')",
        )
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let s = inbound(i, "r", members, routine_body(i));
        stmt.execute(rusqlite::params![
            s.provider,
            s.provider_message_id,
            s.from,
            s.to,
            s.body,
            chrono::Utc::now().to_rfc3339()
        ])
        .unwrap();
    }
    start.elapsed()
}

const SECRET: &str = "bench-callback-secret-0123";

/// (b) The daemon in-process: Kannel provider (its sendsms on a loopback
/// stub that accepts everything), intake on a free loopback port.
async fn daemon(
    dir: &std::path::Path,
    members: usize,
) -> (
    std::net::SocketAddr,
    SqliteStore,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    write_rules(&dir.join("rules"), FULL);
    std::fs::write(dir.join("kannel-password"), "pw\n").unwrap();
    std::fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
    let sendsms = kannel_stub().await;
    // Kannel's delivery reports need `public_url`, so the port is chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        r#"listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
rules_dir: rules
database: {{ path: h.db }}
provider:
  kind: kannel
  sendsms_url: http://{sendsms}/cgi-bin/sendsms
  username: hearth
  password: file:kannel-password
  from: "+15555550999"
  callback_secret: file:secret
intake:
  kannel_allow: ["127.0.0.1"]
"#
    );
    let path = dir.join("hearth.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let settings = Settings::load(&path, std::iter::empty()).unwrap();
    {
        let (store, _) = SqliteStore::open(&settings.database).unwrap();
        let (rows, invalid) = hearth::store::import::parse(
            roster(members).as_bytes(),
            &Default::default(),
            chrono::Utc::now().date_naive(),
        )
        .unwrap();
        store
            .import_members(rows, invalid, common::options())
            .await
            .unwrap();
    }
    let app = hearth::daemon::App::build(settings).await.unwrap();
    let addr = app.local_addr();
    let store = app.store();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    (addr, store, shutdown, handle)
}

/// A loopback HTTP server that answers every sendsms as Kannel does.
async fn kannel_stub() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::ACCEPTED, "0: Accepted for delivery") });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn crisis_replies(store: &SqliteStore) -> usize {
    store
        .list_messages(ListFilter {
            state: None,
            kind: Some(Kind::Crisis),
            limit: 100_000,
        })
        .await
        .unwrap()
        .len()
}

/// (b) `samples` crisis texts, each POSTed with `backlog` routine texts
/// stored ahead of it; the latencies, sorted, and the queue lengths seen
/// when each crisis reply appeared.
/// With `busy`, each crisis text is sent once the worker has started on
/// the backlog (it is between routine rows); otherwise while the worker
/// waits for its next wake-up with the backlog untouched.
fn crisis_latencies(samples: usize, backlog: usize, busy: bool) -> (Vec<Duration>, Vec<usize>) {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let members = 1_000;
        let (addr, store, shutdown, handle) = daemon(dir.path(), members).await;
        let client = reqwest::Client::new();
        let mut latencies = Vec::new();
        let mut queued_at_reply = Vec::new();
        for s in 0..samples {
            for i in 0..backlog {
                store
                    .record_inbound(inbound(
                        s * backlog + i,
                        "backlog",
                        members,
                        routine_body(i),
                    ))
                    .await
                    .unwrap();
            }
            if busy {
                // The worker polls every 2 s; wait until it is under way.
                let deadline = Instant::now() + Duration::from_secs(10);
                while store.unprocessed_inbound(backlog + 10).await.unwrap().len() + 20 > backlog {
                    assert!(Instant::now() < deadline, "the worker never started");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let before = crisis_replies(&store).await;
            let url = format!("http://{addr}/webhooks/kannel/mo");
            let start = Instant::now();
            let resp = client
                .get(&url)
                .query(&[
                    ("secret", SECRET),
                    ("id", &format!("crisis-{s:06}")),
                    ("from", &phone(s % members)),
                    ("to", "+15555550999"),
                    ("text", "I can't anymore, I want to end it all"),
                    ("coding", "0"),
                    ("charset", "UTF-8"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let deadline = start + Duration::from_secs(30);
            while crisis_replies(&store).await == before {
                assert!(Instant::now() < deadline, "no crisis reply for sample {s}");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            latencies.push(start.elapsed());
            queued_at_reply.push(store.unprocessed_inbound(backlog + 10).await.unwrap().len());
            // Let the backlog drain before the next sample, so each
            // sample starts with exactly `backlog` routine texts queued.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !store.unprocessed_inbound(1).await.unwrap().is_empty() {
                assert!(Instant::now() < deadline, "backlog never drained");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        shutdown.cancel();
        handle.await.unwrap().unwrap();
        latencies.sort();
        (latencies, queued_at_reply)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

const REPLIES: usize = 2_000;
const CRISIS_SAMPLES: usize = 60;
const BACKLOG: usize = 1_000;

fn benches(c: &mut Criterion) {
    let rt = runtime();
    if !bench_mode() {
        // `cargo test --benches`: each path once, small.
        pipeline_run(&rt, 50, FULL);
        pipeline_run(&rt, 50, CRISIS_ONLY);
        pipeline_run(&rt, 50, NO_SCRIPTS);
        raw_run(&rt, 50);
        let (lat, _) = crisis_latencies(2, 20, false);
        assert_eq!(lat.len(), 2);
        let (lat, _) = crisis_latencies(2, 40, true);
        assert_eq!(lat.len(), 2);
        return;
    }
    let mut group = c.benchmark_group("replies");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(criterion::Throughput::Elements(REPLIES as u64));
    group.bench_function(
        "2000 member texts through the reply pipeline (200 alerts, 20 Rhai scripts)",
        |b| b.iter_custom(|iters| (0..iters).map(|_| pipeline_run(&rt, REPLIES, FULL)).sum()),
    );
    group.bench_function(
        "the same 2000 texts, 200 alerts without scripts (the scripts' share)",
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| pipeline_run(&rt, REPLIES, NO_SCRIPTS))
                    .sum()
            })
        },
    );
    group.bench_function(
        "the same 2000 texts, the crisis alert alone (the store's share)",
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| pipeline_run(&rt, REPLIES, CRISIS_ONLY))
                    .sum()
            })
        },
    );
    group.bench_function(
        "raw SQLite inserts of the same 2000 rows, processed (baseline)",
        |b| b.iter_custom(|iters| (0..iters).map(|_| raw_run(&rt, REPLIES)).sum()),
    );
    group.finish();

    for busy in [false, true] {
        let (lat, mut queued) = crisis_latencies(CRISIS_SAMPLES, BACKLOG, busy);
        queued.sort();
        println!(
            "crisis reply latency (Kannel MO request -> crisis reply in the outbox), {} samples, {BACKLOG} routine texts queued ahead, worker {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; routine texts still queued when the reply appeared: median {}, min {}",
            lat.len(),
            if busy {
                "busy on them"
            } else {
                "idle until woken"
            },
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().unwrap().as_secs_f64() * 1e3,
            queued[queued.len() / 2],
            queued[0],
        );
    }
}

criterion_group!(replies, benches);
criterion_main!(replies);
