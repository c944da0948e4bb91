//! The scheduler: turns the live rules' schedules into outbox messages at
//! each fire, exactly once, across reloads and restarts.
//!
//! Each pass ([`Scheduler::tick`]) reads the clock once and:
//! 1. forgets removed or disabled schedules, cancelling what they queued;
//! 2. notices a changed schedule (its version: its definition and its
//!    template or survey), cancels what the old version queued and
//!    recomputes from now;
//! 3. after a reload, cancels queued messages whose fire no longer exists
//!    (a session cancelled or moved after its reminders were queued);
//! 4. processes every fire since the schedule's mark: on time or within
//!    `catch_up:` → fan-out; older → recorded missed. The mark moves past
//!    an instant only once all of its fires are written, so a crash
//!    mid-fan-out is finished by the next start, and the idempotency key
//!    (`schedule × fire × member`) makes that re-run enqueue nothing twice.
//!
//! [`Scheduler::run_until_stopped`] sleeps at most [`MAX_SLEEP`] at a time
//! and reads the wall clock after every wake: a suspended VM or a clock
//! step never leaves it asleep past a fire.

pub mod fanout;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::config::reload::LiveRules;
use crate::domain::actor::DAEMON_ACTOR;
use crate::domain::clock::Clock;
use crate::domain::member::Member;
use crate::rules::{Content, RuleSet, Schedule};
use crate::schedule::plan::{self, Fire, Scope};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::schedule::{FireRecord, FireStatus, RecipientFilter, ScheduleMark};
use fanout::CapCounts;

/// The longest the scheduler sleeps before it reads the clock again.
pub(crate) const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// A fire processed within this long of its instant is on time, whatever
/// the schedule's `catch_up:` (so `catch_up: 0` still sends on time).
pub(crate) const ON_TIME: TimeDelta = TimeDelta::minutes(2);

/// Rows per outbox transaction in a fan-out.
pub const BATCH: usize = 5_000;

/// What one pass did.
#[derive(Debug, Default)]
pub struct TickReport {
    /// Every fire processed or recorded missed, in order.
    pub fires: Vec<FireRecord>,
    /// Queued messages cancelled (removed, changed, vanished fires).
    pub cancelled: usize,
    /// The next fire of any schedule after this pass.
    pub next: Option<DateTime<Utc>>,
}

pub struct Scheduler<S> {
    store: S,
    rules: Arc<LiveRules>,
    clock: Arc<dyn Clock>,
    /// The generation the last pass checked queued fires against.
    checked_generation: AtomicU64,
    max_sleep: std::time::Duration,
}

impl<S: Backend> Scheduler<S> {
    pub fn new(store: S, rules: Arc<LiveRules>, clock: Arc<dyn Clock>) -> Scheduler<S> {
        Scheduler {
            store,
            rules,
            clock,
            checked_generation: AtomicU64::new(0),
            max_sleep: MAX_SLEEP,
        }
    }

    /// Reads the clock at least this often (default [`MAX_SLEEP`]).
    pub fn with_max_sleep(mut self, max_sleep: std::time::Duration) -> Scheduler<S> {
        self.max_sleep = max_sleep;
        self
    }

    /// Runs passes until `shutdown`: after each, sleeps until the next
    /// fire, a new rule set, or [`MAX_SLEEP`], whichever comes first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut generations = self.rules.subscribe();
        loop {
            let now = self.clock.now();
            let next = match self.tick(now).await {
                Ok(report) => report.next,
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, "scheduler pass failed; retrying shortly");
                    None
                }
            };
            let wait = next
                .map(|n| (n - self.clock.now()).to_std().unwrap_or_default())
                .unwrap_or(self.max_sleep)
                .min(self.max_sleep);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                changed = generations.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// One pass at `now`. Safe to repeat: a fire already processed is
    /// never processed again, and a repeated fan-out enqueues nothing new.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let generation = self.rules.generation();
        let rules = self.rules.current();
        let mut report = TickReport::default();
        let marks: HashMap<String, ScheduleMark> = self
            .store
            .schedule_marks()
            .await?
            .into_iter()
            .map(|m| (m.schedule.clone(), m))
            .collect();

        // Removed or disabled schedules: nothing they queued goes out.
        // (`alert:<id>` marks are the scheduled alerts', not schedules.)
        for id in marks.keys().filter(|id| !id.starts_with("alert:")) {
            let reason = match rules.schedules.get(id) {
                None => format!("schedule `{id}` was removed"),
                Some(s) if !s.enabled => format!("schedule `{id}` was disabled"),
                Some(_) => continue,
            };
            report.cancelled += self.cancel(id, None, &reason).await?;
            self.store.remove_schedule_mark(id).await?;
        }

        // New and changed schedules start from now; a changed one loses
        // what its old version queued.
        let mut current = Vec::new();
        for schedule in rules.schedules.values().filter(|s| s.enabled) {
            let version = version(&rules, schedule);
            match marks.get(&schedule.id) {
                Some(m) if m.version == version => current.push((schedule, version, m.last_fire)),
                Some(old) => {
                    let reason = format!("schedule `{}` changed", schedule.id);
                    report.cancelled += self.cancel(&schedule.id, Some(&version), &reason).await?;
                    tracing::info!(schedule = %schedule.id, from = %old.version, to = %version, "schedule changed: future fires recomputed from now");
                    self.mark(schedule, &version, old.last_fire.max(now))
                        .await?;
                }
                // New (or first seen): its fires start now, none before.
                None => self.mark(schedule, &version, now).await?,
            }
        }

        let mut state = PassState::default();
        let zones = self.zones(&mut state).await?;
        if self.checked_generation.swap(generation, Ordering::SeqCst) != generation {
            report.cancelled += self.cancel_vanished(&rules, &zones).await?;
        }

        for (schedule, version, last_fire) in current {
            let fires = plan::fires(&rules, schedule, last_fire, now, &zones);
            let mut i = 0;
            while i < fires.len() {
                let instant = fires[i].at;
                while i < fires.len() && fires[i].at == instant {
                    let record = self
                        .process(
                            &rules, generation, &version, schedule, &fires[i], now, &mut state,
                        )
                        .await?;
                    report.fires.push(record);
                    i += 1;
                }
                self.mark(schedule, &version, instant).await?;
            }
        }

        report.next = rules
            .schedules
            .values()
            .filter(|s| s.enabled)
            .filter_map(|s| plan::next_fire(&rules, s, now, &zones))
            .min();
        Ok(report)
    }

    async fn mark(
        &self,
        schedule: &Schedule,
        version: &str,
        last_fire: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .set_schedule_mark(ScheduleMark {
                schedule: schedule.id.clone(),
                version: version.to_owned(),
                last_fire,
            })
            .await
    }

    async fn cancel(
        &self,
        schedule: &str,
        keep: Option<&str>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let n = self.store.cancel_planned(schedule, keep, reason).await?;
        if n > 0 {
            tracing::info!(
                schedule,
                cancelled = n,
                reason,
                "queued scheduled messages cancelled"
            );
        }
        Ok(n)
    }

    /// The timezones member-timezone crons fire in: every zone an active
    /// member lives in (one that does not parse is logged and skipped;
    /// the gate holds that member's messages anyway).
    async fn zones(&self, state: &mut PassState) -> Result<Vec<Tz>, StoreError> {
        let mut zones = BTreeSet::new();
        for z in self.store.member_zones().await? {
            match z.parse::<Tz>() {
                Ok(tz) => {
                    zones.insert(tz.name().to_owned());
                    state.spellings.entry(tz).or_default().push(z);
                }
                Err(_) => tracing::warn!(
                    timezone = %z.escape_debug(),
                    "a member's timezone is not an IANA timezone; schedules in members' own timezones skip them"
                ),
            }
        }
        Ok(zones.iter().filter_map(|z| z.parse().ok()).collect())
    }

    /// Cancels queued messages whose fire the live rules no longer have
    /// (a session cancelled, moved or removed after its messages were
    /// queued).
    async fn cancel_vanished(&self, rules: &RuleSet, zones: &[Tz]) -> Result<usize, StoreError> {
        let mut n = 0;
        for (schedule_id, fire) in self.store.planned_fires().await? {
            let Some(schedule) = rules.schedules.get(&schedule_id) else {
                continue;
            };
            let still = plan::fires(rules, schedule, fire - TimeDelta::seconds(1), fire, zones);
            if still.iter().all(|f| f.at != fire) {
                let reason = format!(
                    "schedule `{schedule_id}` no longer fires at {} (a session cancelled or moved, or no member left in that timezone)",
                    fire.to_rfc3339()
                );
                n += self
                    .store
                    .cancel_planned_fire(&schedule_id, fire, &reason)
                    .await?;
            }
        }
        Ok(n)
    }

    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        rules: &RuleSet,
        generation: u64,
        version: &str,
        schedule: &Schedule,
        fire: &Fire,
        now: DateTime<Utc>,
        state: &mut PassState,
    ) -> Result<FireRecord, StoreError> {
        let mut record = FireRecord {
            schedule: schedule.id.clone(),
            fire: fire.at,
            scope: fire.scope.key(),
            status: FireStatus::Started,
            enqueued: 0,
            suppressed: 0,
            generation,
            version: version.to_owned(),
            note: None,
        };
        let late = now - fire.at;
        if late > schedule.catch_up.chrono().max(ON_TIME) {
            return self.record_missed(record, schedule, late).await;
        }
        self.store.record_fire(record.clone()).await?;

        state.load_caps(&self.store, rules, now).await?;
        let caps = state.caps.get_or_insert_with(CapCounts::default);
        let cx = fanout::Context {
            rules,
            generation,
            version,
        };
        let filter = recipient_filter(schedule, fire, &state.spellings);
        let members = self.store.recipients_page(&filter, 0, usize::MAX).await?;
        let failed = self
            .fan_out_in_batches(&cx, schedule, fire, &members, caps, &mut record)
            .await?;
        self.record_done(record, failed).await
    }

    /// A fire found later than its `catch_up:` allows: recorded missed and
    /// audited, nothing sent.
    async fn record_missed(
        &self,
        mut record: FireRecord,
        schedule: &Schedule,
        late: TimeDelta,
    ) -> Result<FireRecord, StoreError> {
        record.status = FireStatus::Missed;
        record.note = Some(format!(
            "{} late when the scheduler got to it; catch_up is {}",
            crate::domain::Duration::from_secs(late.num_seconds().max(0) as u64),
            schedule.catch_up
        ));
        tracing::warn!(schedule = %schedule.id, fire = %record.fire, scope = %record.scope, "fire missed (the daemon was not running at the time); recorded, not sent");
        self.store.record_fire(record.clone()).await?;
        self.store
            .audit(
                DAEMON_ACTOR,
                "schedule.missed",
                Some(&format!("schedule:{}", schedule.id)),
                serde_json::json!({ "fire": record.fire, "scope": record.scope, "note": record.note }),
            )
            .await?;
        Ok(record)
    }

    /// Renders the fire's messages for `members` and queues them in
    /// batches: while one batch is written (on the store's writer thread),
    /// the next is rendered here. (Reading pages alongside as a third
    /// stage measured slower on two cores: docs/BENCHMARKS.md.) Counts
    /// into `record`; returns how many members got no message.
    async fn fan_out_in_batches(
        &self,
        cx: &fanout::Context<'_>,
        schedule: &Schedule,
        fire: &Fire,
        members: &[Member],
        caps: &mut CapCounts,
        record: &mut FireRecord,
    ) -> Result<usize, StoreError> {
        let store = &self.store;
        let mut failed = 0usize;
        let mut chunks = members.chunks(BATCH);
        let mut out = chunks
            .next()
            .map(|c| fanout::fan_out(cx, schedule, fire, c, caps));
        while let Some(current) = out.take() {
            failed += current.failed.len();
            for (member_id, why) in &current.failed {
                tracing::warn!(schedule = %schedule.id, member_id, reason = %why, "no scheduled message for this member");
            }
            record.suppressed += current
                .messages
                .iter()
                .filter(|m| m.suppressed.is_some())
                .count() as u64;
            let next = chunks.next();
            let messages = current.messages;
            // `join!` polls the insert first, which hands the batch to the
            // writer thread, then renders the next batch meanwhile.
            let (written, rendered) = tokio::join!(
                async move {
                    if messages.is_empty() {
                        Ok(None)
                    } else {
                        store.enqueue_batch(messages).await.map(Some)
                    }
                },
                async { next.map(|c| fanout::fan_out(cx, schedule, fire, c, caps)) }
            );
            if let Some(n) = written? {
                record.enqueued += n as u64;
                #[cfg(feature = "fault-injection")]
                fault::after_batch();
            }
            out = rendered;
        }
        Ok(failed)
    }

    /// The fire is done: recorded with its counts, audited, logged.
    async fn record_done(
        &self,
        mut record: FireRecord,
        failed: usize,
    ) -> Result<FireRecord, StoreError> {
        record.status = FireStatus::Done;
        if failed > 0 {
            record.note = Some(format!(
                "{failed} member(s) left out: their message could not be made (see the log)"
            ));
        }
        self.store.record_fire(record.clone()).await?;
        self.store
            .audit(
                DAEMON_ACTOR,
                "schedule.fire",
                Some(&format!("schedule:{}", record.schedule)),
                serde_json::json!({
                    "fire": record.fire,
                    "scope": record.scope,
                    "enqueued": record.enqueued,
                    "suppressed": record.suppressed,
                    "failed": failed,
                    "generation": record.generation,
                    "version": record.version,
                }),
            )
            .await?;
        tracing::info!(schedule = %record.schedule, fire = %record.fire, scope = %record.scope, enqueued = record.enqueued, suppressed = record.suppressed, "schedule fired");
        Ok(record)
    }
}

/// Test-only crash points (the `fault-injection` feature, never in a
/// release build): `HEARTH_FAULT_SCHEDULER_ABORT_AFTER_BATCHES=N` aborts
/// the process, as a SIGKILL would, once N fan-out batches are written.
#[cfg(feature = "fault-injection")]
mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) const ABORT_AFTER_BATCHES: &str = "HEARTH_FAULT_SCHEDULER_ABORT_AFTER_BATCHES";
    static WRITTEN: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn after_batch() {
        let limit = std::env::var(ABORT_AFTER_BATCHES)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = limit
            && WRITTEN.fetch_add(1, Ordering::SeqCst) + 1 >= n
        {
            eprintln!("fault injection: aborting after {n} fan-out batch(es)");
            std::process::abort();
        }
    }
}

/// What one pass loads once and shares between its fires.
#[derive(Default)]
struct PassState {
    /// How members' timezones are spelled in the store, by zone.
    spellings: HashMap<Tz, Vec<String>>,
    caps: Option<CapCounts>,
}

impl PassState {
    /// Loads the cap counts, once per pass (only when `limits:` is set).
    async fn load_caps(
        &mut self,
        store: &impl Backend,
        rules: &RuleSet,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.caps.is_none() {
            let times = if rules.limits.is_some() {
                // A week of local days, the longest catch-up, and a day of
                // timezone slack.
                let longest = rules
                    .schedules
                    .values()
                    .map(|s| s.catch_up.chrono())
                    .max()
                    .unwrap_or_default();
                store
                    .routine_times(now - longest - TimeDelta::days(9))
                    .await?
            } else {
                HashMap::new()
            };
            self.caps = Some(CapCounts { times });
        }
        Ok(())
    }
}

/// The store-side narrowing of a fire's recipients: its group, or the
/// schedule's groups, and for a member-timezone fire the spellings of its
/// zone. [`fanout::fan_out`] still decides who is in scope.
fn recipient_filter(
    schedule: &Schedule,
    fire: &Fire,
    spellings: &HashMap<Tz, Vec<String>>,
) -> RecipientFilter {
    match &fire.scope {
        Scope::Session { group, .. } => RecipientFilter {
            groups: vec![group.clone()],
            timezones: Vec::new(),
        },
        Scope::Everyone => RecipientFilter {
            groups: schedule.groups.clone(),
            timezones: Vec::new(),
        },
        Scope::MembersIn(tz) => RecipientFilter {
            groups: schedule.groups.clone(),
            // A zone no active member spells: an impossible filter, so
            // nobody, rather than no filter.
            timezones: spellings
                .get(tz)
                .cloned()
                .unwrap_or_else(|| vec![tz.name().to_owned()]),
        },
    }
}

/// A schedule's version: a fingerprint of its definition and of the
/// template or survey it sends. Messages record it; a reload that changes
/// it cancels what the old version queued.
pub(crate) fn version(rules: &RuleSet, schedule: &Schedule) -> String {
    let mut parts: BTreeMap<&str, String> = BTreeMap::new();
    let get = |kind: &'static str, id: &str| {
        rules
            .inventory
            .get(&(kind, id.to_owned()))
            .cloned()
            .unwrap_or_default()
    };
    parts.insert("schedule", get("schedules", &schedule.id));
    match &schedule.content {
        Content::Template(t) => {
            parts.insert("template", get("templates", t));
        }
        Content::Survey(s) => {
            parts.insert("survey", get("surveys", s));
            if let Some(first) = rules.surveys.get(s).and_then(|v| v.questions.first()) {
                parts.insert("ask", get("templates", &first.ask));
            }
        }
    }
    let text = serde_json::to_string(&parts).unwrap_or_default();
    crate::text::sha256_hex(text.as_bytes())[..16].to_owned()
}
