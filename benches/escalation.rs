//! Escalation benchmarks (issue 10).
//!
//! (1) Crisis text → first facilitator page: from an HTTP request of a
//!     crisis text to the daemon's Kannel MO endpoint (in-process `App` on
//!     loopback) until the first step's SMS page (outbox kind
//!     `escalation`) for the incident it opened is in the outbox. Every
//!     sample comes from a different member, since a second crisis text
//!     from the same member joins their open incident and pages nobody
//!     new. Measured with nothing else queued and with 1,000 routine texts
//!     queued ahead.
//! (2) 1,000 open incidents, each with a started escalation whose next
//!     step is an hour away:
//!     - timer rebuild at start: `Escalator::new`, its first `tick()` and
//!       `next_escalation_due()` on the freshly opened database, all a
//!       restart has to do; and the catch-up after a 2-hour downtime, when
//!       every one of them is due (a `ManualClock` moved on);
//!     - idle CPU: the daemon running on that database with nothing due,
//!       process CPU time over wall time, beside the same daemon on the
//!       same roster without incidents.
//!
//! `CARGO_TARGET_DIR=/work/bench-target cargo bench --bench escalation`;
//! `cargo test --benches` runs each path once, small. Figures in
//! docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use hearth::config::reload::LiveRules;
use hearth::domain::clock::ManualClock;
use hearth::domain::message::{InboundSms, Kind, OutState};
use hearth::pipeline::InboundWorker;
use hearth::pipeline::handler::ReplyPipeline;
use hearth::settings::{NotifySettings, ReplySettings, Settings};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::outbox::ListFilter;
use hearth::store::traits::{EscalationStore, OutboxStore};
use hearth::timers::escalations::{Escalator, Tick};
use tokio_util::sync::CancellationToken;

mod common;

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

const GROUP: &str = "bench-group";
const SECRET: &str = "bench-callback-secret-0123";
const CRISIS_TEXT: &str = "I can't anymore, I want to end it all";

/// The rules: a crisis keyword alert that escalates under `crisis`, whose
/// first step texts the member's group's facilitator and second the
/// clinical lead, an hour each, until someone acknowledges.
const RULES: &str = r#"groups:
  - id: bench-group
    name: Bench Support Group
    timezone: UTC
    sessions:
      cron: "0 17 * * TUE"
      duration: 90m
    facilitators: [fran]
templates:
  crisis-resources:
    body: "If you are in danger call 911. Call or text 988 any time (Suicide & Crisis Lifeline). A facilitator has been notified."
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all", "kill myself", "want to die"]
    reply: crisis-resources
    escalate: crisis
escalations:
  crisis:
    steps:
      - notify: [group.facilitators]
        via: [sms]
        ack_within: 1h
      - notify: [clinical-lead]
        via: [sms]
        ack_within: 1h
    repeat: until_acknowledged
contacts:
  fran: { name: Fran Fields, sms: "+15555550100" }
  clinical-lead: { name: Lee Lead, sms: "+15555550101" }
"#;

fn write_rules(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("main.yaml"), RULES).unwrap();
}

/// A roster of `n` members of the bench group, with consent.
fn roster(n: usize) -> String {
    let mut csv = String::from("external_id,first_name,last_name,phone,timezone,groups,consent\n");
    for i in 0..n {
        csv.push_str(&format!("E{i:05},Sam,Lee,{},UTC,{GROUP},yes\n", phone(i)));
    }
    csv
}

fn phone(i: usize) -> String {
    format!("+1555{:07}", 1_000_000 + i)
}

async fn import(store: &SqliteStore, members: usize) {
    let groups = [GROUP.to_string()].into_iter().collect();
    let (rows, invalid) =
        hearth::store::import::parse(roster(members).as_bytes(), &groups, Utc::now().date_naive())
            .unwrap();
    assert!(invalid.is_empty(), "{invalid:?}");
    store
        .import_members(rows, invalid, common::options())
        .await
        .unwrap();
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("h.db")
}

fn open(dir: &Path) -> SqliteStore {
    let db = db_path(dir);
    SqliteStore::open_at(
        &db,
        &KeySource::Generated(hearth::store::sqlite::default_key_file(&db)),
    )
    .unwrap()
    .0
}

/// Copies the closed database (with its key and any WAL) of `from` into
/// `to`.
fn copy_db(from: &Path, to: &Path) {
    for suffix in ["", ".key", "-wal"] {
        let src = from.join(format!("h.db{suffix}"));
        if src.exists() {
            std::fs::copy(&src, to.join(format!("h.db{suffix}"))).unwrap();
        }
    }
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

struct Daemon {
    addr: std::net::SocketAddr,
    store: SqliteStore,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// The daemon in-process on the database in `dir` (created if absent),
/// rules from `rules`: Kannel provider with its sendsms on a loopback stub
/// that accepts everything, intake on a free loopback port. The send rate
/// is raised so a database's queued pages drain in seconds.
async fn daemon(dir: &Path, rules: &Path) -> Daemon {
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
rules_dir: {rules}
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
dispatch:
  segments_per_second: 1000
  burst: 100
"#,
        rules = rules.display()
    );
    let path = dir.join("hearth.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let settings = Settings::load(&path, std::iter::empty()).unwrap();
    let app = hearth::daemon::App::build(settings).await.unwrap();
    let addr = app.local_addr();
    let store = app.store();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Daemon {
        addr,
        store,
        shutdown,
        handle,
    }
}

async fn count(store: &SqliteStore, kind: Kind) -> usize {
    store
        .list_messages(ListFilter {
            state: None,
            kind: Some(kind),
            limit: 100_000,
        })
        .await
        .unwrap()
        .len()
}

// ---------------------------------------------------------------------
// (1) Crisis text → first facilitator page in the outbox.

/// `samples` crisis texts, each from a member who has not texted one
/// before, each with `backlog` routine texts stored ahead of it; the
/// latencies to the crisis reply and to the first page, each sorted.
fn page_latencies(
    samples: usize,
    backlog: usize,
    members: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    assert!(samples <= members, "each sample needs a member of its own");
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        write_rules(&rules);
        {
            let store = open(dir.path());
            import(&store, members).await;
        }
        let d = daemon(dir.path(), &rules).await;
        let client = reqwest::Client::new();
        let url = format!("http://{}/webhooks/kannel/mo", d.addr);
        let mut to_reply = Vec::new();
        let mut to_page = Vec::new();
        for s in 0..samples {
            for i in 0..backlog {
                d.store
                    .record_inbound(InboundSms {
                        provider: "kannel".into(),
                        provider_message_id: format!("backlog-{s:04}-{i:06}"),
                        from: phone((s * backlog + i) % members),
                        to: "+15555550999".into(),
                        body: "I am doing a bit better this week, thanks for asking.".into(),
                        keyword: None,
                    })
                    .await
                    .unwrap();
            }
            let replies = count(&d.store, Kind::Crisis).await;
            let pages = count(&d.store, Kind::Escalation).await;
            let start = Instant::now();
            let resp = client
                .get(&url)
                .query(&[
                    ("secret", SECRET),
                    ("id", &format!("crisis-{s:06}")),
                    ("from", &phone(s)),
                    ("to", "+15555550999"),
                    ("text", CRISIS_TEXT),
                    ("coding", "0"),
                    ("charset", "UTF-8"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let deadline = start + Duration::from_secs(30);
            let mut reply_at = None;
            loop {
                if reply_at.is_none() && count(&d.store, Kind::Crisis).await > replies {
                    reply_at = Some(start.elapsed());
                }
                let paged = count(&d.store, Kind::Escalation).await;
                if paged > pages {
                    // One facilitator, one channel: exactly one page.
                    assert_eq!(paged, pages + 1, "sample {s} paged more than once");
                    to_page.push(start.elapsed());
                    break;
                }
                assert!(Instant::now() < deadline, "no page for sample {s}");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            let reply_at = match reply_at {
                Some(t) => t,
                None => {
                    assert!(count(&d.store, Kind::Crisis).await > replies);
                    *to_page.last().unwrap()
                }
            };
            to_reply.push(reply_at);
            // Let the backlog drain before the next sample, so each
            // sample starts with exactly `backlog` routine texts queued.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !d.store.unprocessed_inbound(1).await.unwrap().is_empty() {
                assert!(Instant::now() < deadline, "backlog never drained");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(
            d.store.open_escalations().await.unwrap().len(),
            samples,
            "one incident, one escalation per sample"
        );
        d.stop().await;
        to_reply.sort();
        to_page.sort();
        (to_reply, to_page)
    })
}

// ---------------------------------------------------------------------
// (2) 1,000 open incidents with timers.

/// A database in `dir` (rules in `dir/rules`) with `n` members, each of
/// whom texted crisis language through the reply pipeline, and each
/// incident's escalation started and its first page made: the next page
/// of every one is an hour after the instant returned. Closed when this
/// returns.
fn build_incidents(rt: &tokio::runtime::Runtime, dir: &Path, n: usize) -> DateTime<Utc> {
    let rules = dir.join("rules");
    write_rules(&rules);
    rt.block_on(async {
        let store = open(dir);
        import(&store, n).await;
        for i in 0..n {
            store
                .record_inbound(InboundSms {
                    provider: "kannel".into(),
                    provider_message_id: format!("crisis-{i:06}"),
                    from: phone(i),
                    to: "+15555550999".into(),
                    body: CRISIS_TEXT.into(),
                    keyword: None,
                })
                .await
                .unwrap();
        }
        let live = Arc::new(LiveRules::load(&rules).unwrap());
        let handler = Arc::new(ReplyPipeline::new(
            store.clone(),
            live.clone(),
            ReplySettings::default(),
        ));
        let done = InboundWorker::new(store.clone(), handler, Default::default())
            .drain()
            .await
            .unwrap();
        assert_eq!(done, n);
        let escalator = Escalator::new(store.clone(), live, &NotifySettings::default()).unwrap();
        let (mut started, mut paged) = (0, 0);
        loop {
            let t = escalator.tick().await.unwrap();
            if t == Tick::default() {
                break;
            }
            started += t.started;
            paged += t.paged;
        }
        let at = Utc::now();
        assert_eq!(
            (started, paged),
            (n, n),
            "every escalation started and paged once"
        );
        assert_eq!(store.open_escalations().await.unwrap().len(), n);
        let next = store.next_escalation_due().await.unwrap().unwrap();
        assert!(
            next > at + TimeDelta::minutes(55),
            "nothing due for an hour"
        );
        at
    })
}

/// Timer rebuild at start, on a fresh copy of `template`: `open` the
/// store, then `Escalator::new` + first `tick()` + `next_escalation_due()`.
/// Returns (open, rebuild).
fn rebuild_run(rt: &tokio::runtime::Runtime, template: &Path) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    copy_db(template, dir.path());
    let live = Arc::new(LiveRules::load(&template.join("rules")).unwrap());
    let t = Instant::now();
    let store = open(dir.path());
    let opened = t.elapsed();
    rt.block_on(async {
        let start = Instant::now();
        let escalator = Escalator::new(store.clone(), live, &NotifySettings::default()).unwrap();
        let tick = escalator.tick().await.unwrap();
        let next = store.next_escalation_due().await.unwrap();
        let took = start.elapsed();
        assert_eq!(tick, Tick::default(), "nothing was due");
        assert!(next.unwrap() > Utc::now(), "the next page is in the future");
        (opened, took)
    })
}

/// Catch-up after a 2-hour downtime, on a fresh copy of `template`: the
/// first `tick()` with the clock two hours past the template's build,
/// when every escalation owes two pages (step 2 at +1 h, step 1 of the
/// next round at +2 h). Returns the tick's time and what it did.
fn catch_up_run(
    rt: &tokio::runtime::Runtime,
    template: &Path,
    built_at: DateTime<Utc>,
) -> (Duration, Tick) {
    let dir = tempfile::tempdir().unwrap();
    copy_db(template, dir.path());
    let live = Arc::new(LiveRules::load(&template.join("rules")).unwrap());
    let store = open(dir.path());
    rt.block_on(async {
        let clock = Arc::new(ManualClock::new(built_at + TimeDelta::hours(2)));
        let start = Instant::now();
        let escalator = Escalator::new(store.clone(), live, &NotifySettings::default())
            .unwrap()
            .with_clock(clock);
        let tick = escalator.tick().await.unwrap();
        let took = start.elapsed();
        (took, tick)
    })
}

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The daemon on the database in `dir` (rules from `rules`) once its
/// outbox has drained: CPU time over `window` of wall time, as a share of
/// one core, and the pages made during the window (must be none).
fn idle_cpu(dir: &Path, rules: &Path, window: Duration) -> (f64, usize) {
    let rt = runtime();
    rt.block_on(async {
        let d = daemon(dir, rules).await;
        // Send what the database has queued (crisis replies, first pages)
        // before measuring.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let mut busy = 0;
            for state in [OutState::Queued, OutState::Sending] {
                busy += d
                    .store
                    .list_messages(ListFilter {
                        state: Some(state),
                        kind: None,
                        limit: 1,
                    })
                    .await
                    .unwrap()
                    .len();
            }
            if busy == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the outbox never drained");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the start-up work (first passes, the drain's tail) settle.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pages = count(&d.store, Kind::Escalation).await;
        let cpu0 = cpu_time();
        let wall0 = Instant::now();
        tokio::time::sleep(window).await;
        let cpu = cpu_time() - cpu0;
        let wall = wall0.elapsed();
        let paged = count(&d.store, Kind::Escalation).await - pages;
        d.stop().await;
        (cpu.as_secs_f64() / wall.as_secs_f64() * 100.0, paged)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const MEMBERS: usize = 1_000;
const SAMPLES: usize = 60;
const BACKLOG: usize = 1_000;
const INCIDENTS: usize = 1_000;
const REBUILD_RUNS: usize = 10;
const CATCH_UP_RUNS: usize = 5;

fn benches(_c: &mut Criterion) {
    let bench = bench_mode();
    // `cargo test --benches`: each path once, small.
    let (members, samples, backlog, incidents, rebuilds, catch_ups, window) = if bench {
        (
            MEMBERS,
            SAMPLES,
            BACKLOG,
            INCIDENTS,
            REBUILD_RUNS,
            CATCH_UP_RUNS,
            Duration::from_secs(30),
        )
    } else {
        (100, 2, 20, 20, 1, 1, Duration::from_secs(2))
    };

    // (1)
    for backlog in [0, backlog] {
        let (reply, page) = page_latencies(samples, backlog, members);
        println!(
            "crisis text -> first facilitator page in the outbox (Kannel MO request -> escalation SMS queued), {} samples, each from a different member of {members}, {backlog} routine texts queued ahead: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (crisis reply: p50 {:.1} ms, p99 {:.1} ms)",
            page.len(),
            ms(percentile(&page, 0.50)),
            ms(percentile(&page, 0.99)),
            ms(*page.last().unwrap()),
            ms(percentile(&reply, 0.50)),
            ms(percentile(&reply, 0.99)),
        );
    }

    // (2)
    let rt = runtime();
    let template = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let built_at = build_incidents(&rt, template.path(), incidents);
    println!(
        "built {incidents} open incidents (crisis texts through the pipeline, escalations started, first pages made) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut opens = Vec::new();
    let mut rebuild = Vec::new();
    for _ in 0..rebuilds {
        let (o, r) = rebuild_run(&rt, template.path());
        opens.push(o);
        rebuild.push(r);
    }
    opens.sort();
    rebuild.sort();
    println!(
        "timer rebuild at start, {incidents} open incidents, nothing due (Escalator::new + first tick + next_escalation_due on a freshly opened store), {} runs: p50 {:.2} ms, max {:.2} ms (opening the store before it: p50 {:.1} ms)",
        rebuild.len(),
        ms(percentile(&rebuild, 0.50)),
        ms(*rebuild.last().unwrap()),
        ms(percentile(&opens, 0.50)),
    );

    let mut catch_up = Vec::new();
    for _ in 0..catch_ups {
        let (took, tick) = catch_up_run(&rt, template.path(), built_at);
        assert_eq!(tick.paged, 2 * incidents, "two pages owed per incident");
        catch_up.push(took);
    }
    catch_up.sort();
    println!(
        "catch-up after a 2-hour downtime, all {incidents} due ({} pages, step 2 then step 1 again): first tick p50 {:.0} ms, max {:.0} ms over {} runs ({:.0} us a page)",
        2 * incidents,
        ms(percentile(&catch_up, 0.50)),
        ms(*catch_up.last().unwrap()),
        catch_up.len(),
        percentile(&catch_up, 0.50).as_secs_f64() * 1e6 / (2 * incidents) as f64,
    );
    drop(rt);

    let with = tempfile::tempdir().unwrap();
    copy_db(template.path(), with.path());
    let (busy_with, paged) = idle_cpu(with.path(), &template.path().join("rules"), window);
    assert_eq!(paged, 0, "nothing was due while idle");
    let without = tempfile::tempdir().unwrap();
    {
        let rt = runtime();
        let store = open(without.path());
        rt.block_on(import(&store, incidents));
    }
    let (busy_without, _) = idle_cpu(without.path(), &template.path().join("rules"), window);
    println!(
        "idle daemon CPU over {:.0} s, nothing due: {busy_with:.2}% of one core with {incidents} open incidents and their timers, {busy_without:.2}% on the same roster without incidents",
        window.as_secs_f64()
    );
}

criterion_group!(escalation, benches);
criterion_main!(escalation);
