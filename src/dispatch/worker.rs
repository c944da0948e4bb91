//! The dispatcher: claims due outbox rows and sends them, several at once.
//!
//! `try_execute_task` does one message end to end (claim, last gate, rate
//! limit, provider, record) and says what happened, so tests can step it;
//! `run_until_stopped` claims and sends until shutdown, with bounded
//! concurrency on two lanes:
//!
//! - the **urgent lane** (crisis, compliance, escalation:
//!   `urgent_concurrency` sends at once) never waits behind routine sends:
//!   when every routine slot is busy (a hung request), urgent messages are
//!   still claimed and sent;
//! - the **routine lane** (`concurrency` sends at once).
//!
//! **Shutdown never abandons a claim.** On shutdown the dispatcher stops
//! claiming; every send already under way finishes (bounded by the
//! provider timeout) and its outcome is recorded before the worker
//! returns. A claimed message still waiting for the rate limiter is
//! handed back to the queue unsent.
//!
//! **Provider faults.** A transient error (5xx, 429, no connection) is the
//! provider's fault, not the message's: messages are retried by time, until
//! their expiry or `retry_horizon` after they were queued, never by a count
//! of attempts. A provider-wide circuit breaker opens after
//! `breaker_threshold` consecutive errors, or at once on a `Retry-After` or
//! 429, and pauses all sending (no claims, no attempts used) until a single
//! probe succeeds. A send whose outcome is ambiguous (timed out after the
//! request went out) is reconciled with the provider where it can look
//! messages up (Twilio); elsewhere it is sent once more and counted
//! ([`Counters::ambiguous_resends`]); a second ambiguous outcome for the
//! same message is recorded as possibly sent and not sent a third time.
//!
//! **Claims are leases** held by this daemon's [`InstanceId`] for
//! `2 × timeout + 60 s`, renewed right before the provider call. A
//! message whose lease lapsed while it was being sent comes back marked
//! *possibly sent*: it is reconciled with the provider where possible
//! before it is sent again, and counted as a possible duplicate where not.
//!
//! **Recording outcomes.** A store error while recording (a full disk) is
//! retried with backoff until it succeeds (settling is idempotent), so a
//! row is never left in `sending` while the process lives; the lease is
//! the backstop if the process dies first.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gate::{self, Verdict};
use super::provider::{AnyProvider, Outgoing, Reconciled, SendError};
use crate::domain::message::Kind;
use crate::rules::Limits;
use crate::settings::DispatchSettings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::outbox::{ClaimedMessage, InstanceId, Lease, Outcome, Settled};

/// What one step of the dispatcher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionOutcome {
    EmptyQueue,
    /// The provider is paused (circuit breaker open, or `Retry-After`):
    /// nothing was claimed.
    Paused {
        until: Instant,
    },
    Sent {
        id: i64,
    },
    Retrying {
        id: i64,
        at: DateTime<Utc>,
    },
    Failed {
        id: i64,
    },
    OptedOut {
        id: i64,
    },
    Suppressed {
        id: i64,
    },
    Deferred {
        id: i64,
        until: DateTime<Utc>,
    },
    /// Held for bad member data (an unreadable timezone).
    Held {
        id: i64,
        until: DateTime<Utc>,
    },
    Expired {
        id: i64,
    },
    /// Claimed, then handed back unsent because the dispatcher is stopping.
    Released {
        id: i64,
    },
}

/// Running counts, for `/status` and the tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Ambiguous or possibly-sent messages sent again without a way to
    /// check (a possible duplicate each).
    pub ambiguous_resends: AtomicU64,
    /// Ambiguous sends the provider's records showed were sent.
    pub reconciled_sent: AtomicU64,
    /// Messages held because a member's timezone could not be read.
    pub bad_timezone_holds: AtomicU64,
    /// Times the circuit breaker opened.
    pub breaker_opened: AtomicU64,
    /// Store errors while recording an outcome (each retried).
    pub record_retries: AtomicU64,
}

impl Counters {
    /// The counts as `/status` shows them.
    pub fn snapshot(&self) -> serde_json::Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "ambiguous_resends": n(&self.ambiguous_resends),
            "reconciled_sent": n(&self.reconciled_sent),
            "bad_timezone_holds": n(&self.bad_timezone_holds),
            "breaker_opened": n(&self.breaker_opened),
            "record_retries": n(&self.record_retries),
        })
    }
}

/// Fault injection for the crash tests: abort the process at exact points
/// (a SIGKILL lands wherever it lands; these land where asked). Compiled
/// only with the `fault-injection` cargo feature.
#[cfg(feature = "fault-injection")]
mod fault {
    pub const ABORT_AFTER_SENT: &str = "HEARTH_FAULT_ABORT_AFTER_SENT";
    pub const ABORT_BEFORE_RECORD: &str = "HEARTH_FAULT_ABORT_BEFORE_RECORD";

    /// `(after_recording, n)`: abort around the n-th send.
    pub fn from_env() -> Option<(bool, u64)> {
        std::env::var(ABORT_AFTER_SENT)
            .ok()
            .map(|v| (true, v))
            .or_else(|| std::env::var(ABORT_BEFORE_RECORD).ok().map(|v| (false, v)))
            .and_then(|(after, v)| v.parse().ok().map(|n| (after, n)))
    }
}

/// The longest the breaker waits between probes of a provider that is
/// down (unless the provider's own `Retry-After` asks for longer).
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// The provider-wide circuit breaker.
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    initial: Duration,
    max: Duration,
    state: Mutex<BreakerState>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive: u32,
    open_until: Option<Instant>,
    /// The pause the next opening uses; doubles while failures go on.
    pause: Option<Duration>,
    /// A probe is in flight: nothing else goes until it answers.
    probing: bool,
}

/// May a send start?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    Go,
    /// The breaker's pause is over: this send is the one probe.
    Probe,
    Wait(Option<Instant>),
}

impl Breaker {
    fn new(s: &DispatchSettings) -> Breaker {
        Breaker {
            threshold: s.breaker_threshold.max(1),
            initial: s.backoff_initial,
            max: s.backoff_max,
            state: Mutex::new(BreakerState::default()),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(&self, now: Instant) -> Admit {
        let mut s = self.lock();
        if s.probing {
            return Admit::Wait(None);
        }
        match s.open_until {
            None => Admit::Go,
            Some(t) if now < t => Admit::Wait(Some(t)),
            Some(_) => {
                s.probing = true;
                Admit::Probe
            }
        }
    }

    /// A send that was admitted did not reach the provider after all
    /// (deferred, suppressed, released): a probe slot is given back.
    fn abandon(&self, admitted: Admit) {
        if admitted == Admit::Probe {
            self.lock().probing = false;
            self.changed.notify_waiters();
        }
    }

    fn success(&self) {
        let mut s = self.lock();
        let was_open = s.open_until.is_some();
        *s = BreakerState::default();
        drop(s);
        if was_open {
            tracing::info!("provider answered again; sending resumes");
        }
        self.changed.notify_waiters();
    }

    /// A transient error; returns whether this opened the breaker.
    fn failure(&self, retry_after: Option<Duration>, throttled: bool, now: Instant) -> bool {
        let mut s = self.lock();
        s.consecutive = s.consecutive.saturating_add(1);
        let was_probe = std::mem::take(&mut s.probing);
        let open =
            was_probe || throttled || retry_after.is_some() || s.consecutive >= self.threshold;
        if !open {
            return false;
        }
        let pause = match retry_after {
            Some(ra) => ra.min(self.max),
            None => {
                // Probe at least once a minute: when the provider is back,
                // crisis messages must not wait out an hour-long pause.
                let cap = self.max.min(MAX_PROBE_INTERVAL);
                let p = s.pause.unwrap_or(self.initial).min(cap);
                s.pause = Some(p.saturating_mul(2).min(cap));
                p
            }
        };
        let until = now + pause;
        s.open_until = Some(s.open_until.map_or(until, |t| t.max(until)));
        drop(s);
        self.changed.notify_waiters();
        true
    }
}

struct Inner<S> {
    store: S,
    holder: InstanceId,
    lease_for: chrono::TimeDelta,
    provider: Arc<AnyProvider>,
    settings: DispatchSettings,
    limiter: DefaultDirectRateLimiter,
    breaker: Breaker,
    counters: Arc<Counters>,
    #[cfg(feature = "fault-injection")]
    fault: Option<(bool, u64)>,
    #[cfg(feature = "fault-injection")]
    fail_records: AtomicU64,
    sent: AtomicU64,
    /// Urgent sends waiting for the rate limiter (routine ones yield).
    urgent_waiting: AtomicU64,
    /// Crisis sends waiting for the rate limiter (every other send yields).
    crisis_waiting: AtomicU64,
    /// The live frequency caps (`limits:`), checked again at the gate.
    limits: Option<LimitsSource>,
}

/// Where the dispatcher reads the live `limits:` from.
pub type LimitsSource = Arc<dyn Fn() -> Option<Limits> + Send + Sync>;

pub struct Dispatcher<S> {
    inner: Arc<Inner<S>>,
    /// How often an idle dispatcher looks for messages queued by other
    /// processes (`hearth send`); this process's own wake it at once.
    poll: Duration,
}

/// How a step ends when the dispatcher is asked to stop before sending.
enum Stop<'a> {
    Never,
    On(&'a CancellationToken),
}

impl<S: Backend> Dispatcher<S> {
    pub fn new(store: S, provider: Arc<AnyProvider>, settings: DispatchSettings) -> Dispatcher<S> {
        let per_second = NonZeroU32::new(settings.segments_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let lease_for = chrono::TimeDelta::from_std(settings.timeout.saturating_mul(2))
            .unwrap_or(chrono::TimeDelta::minutes(5))
            + chrono::TimeDelta::seconds(60);
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                holder: InstanceId::for_this_host(),
                lease_for,
                provider,
                limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
                breaker: Breaker::new(&settings),
                settings,
                counters: Arc::default(),
                #[cfg(feature = "fault-injection")]
                fault: fault::from_env(),
                #[cfg(feature = "fault-injection")]
                fail_records: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                urgent_waiting: AtomicU64::new(0),
                crisis_waiting: AtomicU64::new(0),
                limits: None,
            }),
            poll: Duration::from_secs(2),
        }
    }

    /// Checks routine messages against the frequency caps `limits`
    /// returns (the live rules' `limits:`) just before sending. Takes
    /// effect only before the dispatcher is shared (right after `new`).
    pub fn with_limits(mut self, limits: LimitsSource) -> Dispatcher<S> {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.limits = Some(limits);
        }
        self
    }

    pub fn with_poll(mut self, poll: Duration) -> Dispatcher<S> {
        self.poll = poll;
        self
    }

    /// Holds claims as `holder` (default: this host's name). Takes effect
    /// only before the dispatcher is shared (right after `new`).
    pub fn with_instance(mut self, holder: InstanceId) -> Dispatcher<S> {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.holder = holder;
        }
        self
    }

    /// The running counts (they stay readable after the dispatcher is
    /// handed to `run_until_stopped`).
    pub fn counters(&self) -> Arc<Counters> {
        self.inner.counters.clone()
    }

    /// Counts into `counters` (shared with `/status`). Takes effect only
    /// before the dispatcher is shared (right after `new`).
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Dispatcher<S> {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.counters = counters;
        }
        self
    }

    /// Makes the next `n` attempts to record an outcome fail as a store
    /// error would (a full disk), to test that they are retried.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_records(&self, n: u64) {
        self.inner.fail_records.store(n, Ordering::SeqCst);
    }

    /// Takes back what this instance's previous run left `sending` (a
    /// crash): queued again, marked possibly sent. Other daemons' claims
    /// are left to their leases.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let n = self
            .inner
            .store
            .release_own_claims(&self.inner.holder)
            .await?;
        if n > 0 {
            tracing::warn!(
                messages = n,
                "requeued messages the last run left mid-send (possibly sent: reconciled before sending where the provider allows)"
            );
        }
        Ok(n)
    }

    /// Sends (or settles) the most urgent due message, in this task.
    pub async fn try_execute_task(&self) -> Result<ExecutionOutcome, StoreError> {
        let admitted = self.inner.breaker.admit(Instant::now());
        if let Admit::Wait(until) = admitted {
            return Ok(ExecutionOutcome::Paused {
                until: until.unwrap_or_else(|| Instant::now() + Duration::from_millis(50)),
            });
        }
        let Some(claimed) = self.inner.claim().await? else {
            self.inner.breaker.abandon(admitted);
            return Ok(ExecutionOutcome::EmptyQueue);
        };
        Ok(self.inner.execute(claimed, admitted, Stop::Never).await)
    }

    /// Claims and sends until `shutdown`; then waits for every send under
    /// way to finish and be recorded.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        if let Err(e) = self.recover().await {
            tracing::error!(error.cause_chain = ?e, "cannot requeue interrupted messages");
        }
        let inner = self.inner.clone();
        let routine = Arc::new(Semaphore::new(inner.settings.concurrency.max(1)));
        let urgent = Arc::new(Semaphore::new(inner.settings.urgent_concurrency.max(1)));
        let freed = Arc::new(Notify::new());
        let tracker = TaskTracker::new();
        let enqueued = inner.store.enqueued();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let pause = match self
                .claim_one(&inner, &routine, &urgent, &freed, &tracker, &shutdown)
                .await
            {
                Step::Claimed => continue,
                Step::Wait(d) => d,
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = enqueued.notified() => {}
                _ = freed.notified() => {}
                _ = inner.breaker.changed.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracker.close();
        if !tracker.is_empty() {
            tracing::info!(
                in_flight = tracker.len(),
                "stopping: finishing the sends under way"
            );
        }
        tracker.wait().await;
    }

    async fn claim_one(
        &self,
        inner: &Arc<Inner<S>>,
        routine: &Arc<Semaphore>,
        urgent: &Arc<Semaphore>,
        freed: &Arc<Notify>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Step {
        let admitted = inner.breaker.admit(Instant::now());
        if let Admit::Wait(until) = admitted {
            return Step::Wait(
                until
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(self.poll)
                    .min(self.poll),
            );
        }
        // A free routine slot takes the most urgent message of all; with
        // every routine slot busy, only the urgent lane claims.
        let routine_permit = routine.clone().try_acquire_owned().ok();
        let urgent_permit = urgent.clone().try_acquire_owned().ok();
        let claim = match (&routine_permit, &urgent_permit) {
            (None, None) => {
                inner.breaker.abandon(admitted);
                return Step::Wait(self.poll);
            }
            (Some(_), _) => inner.claim().await,
            (None, Some(_)) => inner.claim_urgent().await,
        };
        let claimed = match claim {
            Ok(Some(c)) => c,
            Ok(None) => {
                inner.breaker.abandon(admitted);
                if routine_permit.is_none() {
                    // Only the urgent lane looked, and found nothing: wait
                    // for a routine slot, a new message or the poll (what
                    // is due now is routine, and must not make this spin).
                    return Step::Wait(self.poll);
                }
                let due = inner.store.next_due().await.ok().flatten();
                return Step::Wait(
                    due.map(|d| (d - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                        .unwrap_or(self.poll)
                        .min(self.poll)
                        .max(Duration::from_millis(20)),
                );
            }
            Err(e) => {
                inner.breaker.abandon(admitted);
                tracing::error!(error.cause_chain = ?e, "cannot claim the next message");
                return Step::Wait(Duration::from_secs(1));
            }
        };
        let is_urgent = Kind::URGENT.contains(&claimed.message.kind);
        // Urgent messages take the urgent lane when it is free, so the
        // routine slots stay for routine sends.
        let permit: Permit = match (is_urgent, urgent_permit, routine_permit) {
            (true, Some(u), _) => Permit::Held(u),
            (_, _, Some(r)) => Permit::Held(r),
            // A routine message with only the urgent lane free cannot be
            // claimed (claim_of_kinds); handled all the same.
            (false, _, None) => Permit::Later(routine.clone()),
            (true, None, None) => Permit::Later(urgent.clone()),
        };
        let inner = inner.clone();
        let freed = freed.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = match permit {
                Permit::Held(p) => p,
                Permit::Later(s) => match s.acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            inner.execute(claimed, admitted, Stop::On(&shutdown)).await;
            drop(_permit);
            freed.notify_one();
        });
        Step::Claimed
    }
}

enum Step {
    Claimed,
    Wait(Duration),
}

enum Permit {
    Held(OwnedSemaphorePermit),
    Later(Arc<Semaphore>),
}

impl<S: Backend> Inner<S> {
    /// How long a message waits after a provider error: `backoff_initial`
    /// doubling per attempt to `backoff_max`; for an urgent message never
    /// more than the breaker's longest probe interval, so crisis texts go
    /// soon after an outage. The provider's Retry-After wins (up to the cap).
    fn backoff(&self, attempts: i64, retry_after: Option<Duration>, urgent: bool) -> Duration {
        let mut cap = self.settings.backoff_max;
        if urgent {
            cap = cap.min(MAX_PROBE_INTERVAL);
        }
        let exp = self
            .settings
            .backoff_initial
            .saturating_mul(1u32 << (attempts.clamp(1, 20) - 1) as u32)
            .min(cap);
        match retry_after {
            Some(ra) => ra.min(self.settings.backoff_max),
            None => exp,
        }
    }

    /// Waits for `segments` units of the sender's rate. The rate is shared,
    /// but not first come first served: while a crisis message waits for
    /// it, every other message stands back, and while another urgent one
    /// (compliance, escalation) waits, routine ones stand back. So crisis
    /// resources never queue behind a backlog, and a crisis reply of two
    /// segments is not overtaken, a segment at a time, by confirmations.
    async fn rate_limit(&self, segments: usize, kind: Kind) {
        // Counted down however the wait ends (also when it is dropped
        // because the dispatcher stops).
        struct Waiting<'a>(&'a AtomicU64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let (mine, ahead): (Option<&AtomicU64>, &[&AtomicU64]) = match kind {
            Kind::Crisis => (Some(&self.crisis_waiting), &[]),
            k if Kind::URGENT.contains(&k) => (Some(&self.urgent_waiting), &[&self.crisis_waiting]),
            _ => (None, &[&self.crisis_waiting, &self.urgent_waiting]),
        };
        let _waiting = mine.map(|counter| {
            counter.fetch_add(1, Ordering::SeqCst);
            Waiting(counter)
        });
        let clock = governor::clock::DefaultClock::default();
        for _ in 0..segments {
            loop {
                if ahead.iter().any(|c| c.load(Ordering::SeqCst) > 0) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                match self.limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        use governor::clock::Clock;
                        tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
                    }
                }
            }
        }
    }

    async fn claim(&self) -> Result<Option<ClaimedMessage>, StoreError> {
        self.store
            .claim(&self.holder, Utc::now(), self.lease_for)
            .await
    }

    /// The urgent lane's claim: crisis, compliance and escalation only.
    async fn claim_urgent(&self) -> Result<Option<ClaimedMessage>, StoreError> {
        self.store
            .claim_of_kinds(&self.holder, Utc::now(), self.lease_for, &Kind::URGENT)
            .await
    }

    /// Gate, rate limit, send, record: one claimed message to its outcome.
    /// Never returns before the outcome is recorded.
    #[tracing::instrument(skip_all, fields(outbox_id = claimed.message.id, member_id))]
    async fn execute(
        &self,
        claimed: ClaimedMessage,
        admitted: Admit,
        stop: Stop<'_>,
    ) -> ExecutionOutcome {
        let id = claimed.message.id;
        let mut lease = claimed.lease.clone();
        // For a number-only message, the member who has the number.
        let member_id = claimed
            .message
            .member_id
            .or(claimed.member.as_ref().map(|m| m.id));
        if let Some(m) = member_id {
            tracing::Span::current().record("member_id", m);
        }
        let verdict = match gate::decide(&claimed, Utc::now(), self.settings.send_window) {
            Verdict::Send => self.frequency_cap(&claimed).await,
            verdict => verdict,
        };
        match verdict {
            Verdict::Send => {}
            verdict => {
                self.breaker.abandon(admitted);
                return self.settle_verdict(&lease, &claimed, verdict).await;
            }
        }
        let Some(to) = claimed.to.clone() else {
            // The gate suppresses a message with no number; never reached.
            self.breaker.abandon(admitted);
            let reason = "no phone number to send to".to_owned();
            self.record(&lease, Outcome::Suppressed { reason }).await;
            return ExecutionOutcome::Suppressed { id };
        };
        let msg = Outgoing {
            outbox_id: id,
            member_id,
            to,
            segments: claimed.message.segments.max(1) as usize,
            body: claimed.message.body.clone(),
        };
        // Each segment is one unit of the sender's rate. Stopping while
        // waiting hands the message back unsent.
        let wait = self.rate_limit(msg.segments, claimed.message.kind);
        match stop {
            Stop::Never => wait.await,
            Stop::On(token) => {
                tokio::select! {
                    biased;
                    _ = wait => {}
                    _ = token.cancelled() => {
                        self.breaker.abandon(admitted);
                        let outcome = Outcome::Defer {
                            until: Utc::now(),
                            reason: "handed back unsent when the dispatcher stopped".into(),
                        };
                        self.record(&lease, outcome).await;
                        return ExecutionOutcome::Released { id };
                    }
                }
            }
        }
        // The lease must outlast the provider call (and a reconciliation).
        match self.store.renew(&lease, Utc::now() + self.lease_for).await {
            Ok(Some(renewed)) => lease = renewed,
            Ok(None) => {
                // Lapsed and taken back while waiting: no longer ours.
                self.breaker.abandon(admitted);
                tracing::warn!("the claim lapsed before sending; left to whoever holds it now");
                return ExecutionOutcome::Released { id };
            }
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "cannot renew the claim; sending under the original lease");
            }
        }
        // A message whose earlier send may have gone through: ask first.
        if claimed.message.possibly_sent {
            let since = claimed.message.updated_at - chrono::TimeDelta::days(1);
            match self.provider.reconcile(&msg, since).await {
                Ok(Reconciled::Found(accepted)) => {
                    self.counters
                        .reconciled_sent
                        .fetch_add(1, Ordering::Relaxed);
                    self.breaker.abandon(admitted);
                    tracing::warn!(
                        "an interrupted send reached the provider after all: recorded as sent, not sent again"
                    );
                    let outcome = Outcome::Sent {
                        provider: self.provider.name().to_owned(),
                        provider_message_id: accepted.provider_message_id,
                    };
                    self.record(&lease, outcome).await;
                    return ExecutionOutcome::Sent { id };
                }
                Ok(Reconciled::NotFound) => {}
                Ok(Reconciled::Unsupported) | Err(_) => {
                    self.counters
                        .ambiguous_resends
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "an interrupted send may have gone through and cannot be checked; sending again (a possible duplicate)"
                    );
                }
            }
        }
        let started = Utc::now();
        let mut result = self.provider.send(&msg).await;
        if let Err(SendError::Ambiguous { reason }) = &result {
            result = self
                .after_ambiguous(&claimed, &msg, started, reason.clone())
                .await;
        }
        #[cfg(feature = "fault-injection")]
        if let (Some((false, n)), Ok(_)) = (self.fault, &result)
            && self.sent.load(Ordering::SeqCst) + 1 == n
        {
            tracing::error!(
                "fault injection: aborting after the provider accepted, before recording"
            );
            std::process::abort();
        }
        match result {
            Ok(accepted) => {
                self.breaker.success();
                let outcome = Outcome::Sent {
                    provider: self.provider.name().to_owned(),
                    provider_message_id: accepted.provider_message_id,
                };
                self.record(&lease, outcome).await;
                tracing::info!(
                    segments = msg.segments,
                    provider = self.provider.name(),
                    "message sent"
                );
                let _n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
                #[cfg(feature = "fault-injection")]
                if self.fault == Some((true, _n)) {
                    tracing::error!("fault injection: aborting after recording a send");
                    std::process::abort();
                }
                ExecutionOutcome::Sent { id }
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let throttled = reason.starts_with("HTTP 429");
                self.provider_failed(&reason, retry_after, throttled);
                self.retry_or_give_up(&lease, &claimed, reason, retry_after)
                    .await
            }
            Err(SendError::Ambiguous { reason }) => {
                // No answer in time: as much a sign of trouble as a 5xx.
                self.provider_failed(&reason, None, false);
                self.retry_or_give_up(&lease, &claimed, reason, None).await
            }
            Err(SendError::OptedOut { reason }) => {
                self.breaker.success();
                tracing::warn!(%reason, "provider reports the number opted out; consent revoked");
                self.record(&lease, Outcome::OptedOut { reason }).await;
                ExecutionOutcome::OptedOut { id }
            }
            Err(SendError::Permanent { reason }) => {
                // The provider answered: it is up.
                self.breaker.success();
                tracing::warn!(%reason, "send failed permanently");
                self.record(&lease, Outcome::Failed { reason }).await;
                ExecutionOutcome::Failed { id }
            }
        }
    }

    fn provider_failed(&self, reason: &str, retry_after: Option<Duration>, throttled: bool) {
        if self.breaker.failure(retry_after, throttled, Instant::now()) {
            self.counters.breaker_opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%reason, "provider paused: sending stops until it answers again");
        }
    }

    /// After an ambiguous send: ask the provider; if it cannot say, let the
    /// message be sent once more (counted) unless it already was.
    async fn after_ambiguous(
        &self,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
        started: DateTime<Utc>,
        reason: String,
    ) -> Result<super::provider::Accepted, SendError> {
        match self.provider.reconcile(msg, started).await {
            Ok(Reconciled::Found(accepted)) => {
                self.counters
                    .reconciled_sent
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "send timed out, but the provider has the message: recorded as sent");
                return Ok(accepted);
            }
            Ok(Reconciled::NotFound) => {
                tracing::warn!(%reason, "send timed out and the provider has no such message: will send again");
                return Err(SendError::transient(format!(
                    "{reason} (the provider has no such message)"
                )));
            }
            Ok(Reconciled::Unsupported) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not look the message up after an ambiguous send");
            }
        }
        let again = claimed
            .message
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(AMBIGUOUS));
        if again {
            tracing::warn!(%reason, "a second ambiguous send: recorded as possibly sent, not sent a third time");
            return Ok(super::provider::Accepted {
                provider_message_id: None,
            });
        }
        self.counters
            .ambiguous_resends
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %reason,
            "send may have gone through and cannot be checked; it will be sent once more (a possible duplicate)"
        );
        Err(SendError::Ambiguous {
            reason: format!("{AMBIGUOUS}{reason}"),
        })
    }

    /// Requeues after a provider error, or gives up when the next try would
    /// fall past the message's expiry or the retry horizon.
    async fn retry_or_give_up(
        &self,
        lease: &Lease,
        claimed: &ClaimedMessage,
        reason: String,
        retry_after: Option<Duration>,
    ) -> ExecutionOutcome {
        let m = &claimed.message;
        let id = m.id;
        let delay = self.backoff(m.attempts, retry_after, Kind::URGENT.contains(&m.kind));
        let at = Utc::now()
            + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::seconds(60));
        let horizon = m.created_at
            + chrono::TimeDelta::from_std(self.settings.retry_horizon)
                .unwrap_or(chrono::TimeDelta::days(1));
        if let Some(e) = m.expires_at
            && at >= e
        {
            tracing::warn!(%reason, "provider errors until the message's expiry; expired");
            let reason = format!("expired while the provider was failing: {reason}");
            self.record(lease, Outcome::Expired { reason }).await;
            return ExecutionOutcome::Expired { id };
        }
        if at >= horizon {
            tracing::warn!(%reason, attempts = m.attempts, "message failed: provider errors for the whole retry horizon");
            let reason = format!(
                "gave up after {} attempts over the retry horizon ({}): {reason}",
                m.attempts,
                humantime(self.settings.retry_horizon)
            );
            self.record(lease, Outcome::Failed { reason }).await;
            return ExecutionOutcome::Failed { id };
        }
        tracing::warn!(%reason, attempts = m.attempts, retry_in_ms = delay.as_millis() as u64, "send failed; will retry");
        self.record(lease, Outcome::Retry { at, reason }).await;
        ExecutionOutcome::Retrying { id, at }
    }

    /// The frequency caps, checked again at the last gate: a routine
    /// (scheduled) message to a member already sent their day's or
    /// week's share is suppressed with the reason. Other kinds pass. A
    /// count that cannot be read holds nothing back (the fan-out applied
    /// the caps already) and is logged.
    async fn frequency_cap(&self, claimed: &ClaimedMessage) -> Verdict {
        let Some(limits) = self.limits.as_ref().and_then(|l| l()) else {
            return Verdict::Send;
        };
        let Some(member) = claimed.member.as_ref() else {
            return Verdict::Send;
        };
        // The gate has already held a member whose timezone does not parse.
        let Ok(tz) = member.timezone.parse::<chrono_tz::Tz>() else {
            return Verdict::Send;
        };
        if claimed.message.kind != Kind::Scheduled {
            return Verdict::Send;
        }
        let now = Utc::now();
        for (cap, days, key, span) in [
            (limits.per_day, 0, "per_day", "today"),
            (limits.per_week, 6, "per_week", "in these 7 days"),
        ] {
            let Some(cap) = cap else { continue };
            let Some((from, to)) = crate::domain::local_time::local_day(tz, now, days) else {
                continue;
            };
            match self
                .store
                .routine_sent(member.id, from, to, claimed.message.id)
                .await
            {
                Ok(n) if n >= u64::from(cap) => {
                    return Verdict::Suppress(format!(
                        "frequency cap: the member was already sent {n} routine message{} {span} (limits.{key} is {cap})",
                        if n == 1 { "" } else { "s" }
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error.cause_chain = ?e, member_id = member.id, "cannot count routine messages for the frequency cap; sending");
                }
            }
        }
        Verdict::Send
    }

    async fn settle_verdict(
        &self,
        lease: &Lease,
        claimed: &ClaimedMessage,
        verdict: Verdict,
    ) -> ExecutionOutcome {
        let id = claimed.message.id;
        match verdict {
            Verdict::Send => unreachable!("handled by the caller"),
            Verdict::Suppress(reason) => {
                tracing::info!(%reason, "message suppressed at the last gate");
                self.record(lease, Outcome::Suppressed { reason }).await;
                ExecutionOutcome::Suppressed { id }
            }
            Verdict::Expire(reason) => {
                tracing::info!(%reason, "message expired");
                self.record(lease, Outcome::Expired { reason }).await;
                ExecutionOutcome::Expired { id }
            }
            Verdict::Defer { until, reason } => {
                tracing::debug!(%until, "message deferred");
                self.record(lease, Outcome::Defer { until, reason }).await;
                ExecutionOutcome::Deferred { id, until }
            }
            Verdict::Hold { until, reason } => {
                self.counters
                    .bad_timezone_holds
                    .fetch_add(1, Ordering::Relaxed);
                // Logged by member id only; the reason names the bad zone.
                tracing::warn!(
                    member = claimed.member.as_ref().map(|m| m.id),
                    %until,
                    "member timezone cannot be read; message held (fix the member's timezone)"
                );
                self.record(lease, Outcome::Defer { until, reason }).await;
                ExecutionOutcome::Held { id, until }
            }
        }
    }

    /// Records an outcome, retrying store errors with backoff (up to 5 s
    /// apart) until it is stored: a claimed row is never left in `sending`
    /// while the process lives. Settling is idempotent, so a write that
    /// landed before its error was reported is not recorded twice.
    async fn record(&self, lease: &Lease, outcome: Outcome) {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.try_record(lease, outcome.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    self.counters.record_retries.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        error.cause_chain = ?e,
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot record a message's outcome; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn try_record(&self, lease: &Lease, outcome: Outcome) -> Result<(), StoreError> {
        #[cfg(feature = "fault-injection")]
        if self
            .fail_records
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Invalid(
                "fault injection: the store refused the write".into(),
            ));
        }
        if let Settled::LeaseLost(now) = self.store.settle_claim(lease, outcome).await? {
            tracing::warn!(state = %now, "the claim lapsed before its outcome was recorded; the message moved on");
        }
        Ok(())
    }
}

/// The prefix of the reason an ambiguous send leaves on a requeued row.
const AMBIGUOUS: &str = "ambiguous: ";

/// `24h`, `90m`, `45s`, `200ms`.
fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(initial: u64, max: u64) -> DispatchSettings {
        DispatchSettings {
            backoff_initial: Duration::from_secs(initial),
            backoff_max: Duration::from_secs(max),
            breaker_threshold: 3,
            ..DispatchSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_honours_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::store::sqlite::SqliteStore::open_at(
            &dir.path().join("h.db"),
            &crate::store::sqlite::KeySource::Generated(dir.path().join("h.db.key")),
        )
        .unwrap();
        let p = Arc::new(AnyProvider::Console(
            super::super::providers::console::ConsoleProvider::new(None).unwrap(),
        ));
        let d = Dispatcher::new(store, p, settings(30, 600));
        let secs: Vec<u64> = (1..=7)
            .map(|a| d.inner.backoff(a, None, false).as_secs())
            .collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 600, 600]);
        let ra = |s| {
            d.inner
                .backoff(1, Some(Duration::from_secs(s)), false)
                .as_secs()
        };
        assert_eq!(ra(90), 90);
        assert_eq!(ra(5), 5);
        assert_eq!(ra(9999), 600);
        // Crisis texts wait at most a minute between tries.
        let urgent: Vec<u64> = (1..=4)
            .map(|a| d.inner.backoff(a, None, true).as_secs())
            .collect();
        assert_eq!(urgent, vec![30, 60, 60, 60]);
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_lets_one_probe_through_and_closes_on_success() {
        let b = Breaker::new(&settings(10, 40));
        let t0 = Instant::now();
        assert_eq!(b.admit(t0), Admit::Go);
        assert!(!b.failure(None, false, t0));
        assert!(!b.failure(None, false, t0));
        assert!(b.failure(None, false, t0), "third failure opens it");
        assert_eq!(b.admit(t0), Admit::Wait(Some(t0 + Duration::from_secs(10))));
        // After the pause, exactly one probe.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(b.admit(t1), Admit::Probe);
        assert_eq!(b.admit(t1), Admit::Wait(None));
        // A failed probe reopens it for twice as long.
        assert!(b.failure(None, false, t1));
        assert_eq!(b.admit(t1), Admit::Wait(Some(t1 + Duration::from_secs(20))));
        let t2 = t1 + Duration::from_secs(21);
        assert_eq!(b.admit(t2), Admit::Probe);
        b.success();
        assert_eq!(b.admit(t2), Admit::Go);
        // A probe that never reached the provider gives its turn back.
        let t3 = t2 + Duration::from_secs(1);
        for _ in 0..3 {
            b.failure(None, false, t3);
        }
        let t4 = t3 + Duration::from_secs(11);
        assert_eq!(b.admit(t4), Admit::Probe);
        b.abandon(Admit::Probe);
        assert_eq!(b.admit(t4), Admit::Probe);
    }

    #[test]
    fn a_provider_that_stays_down_is_probed_at_least_once_a_minute() {
        let b = Breaker::new(&settings(30, 3600));
        let mut t = Instant::now();
        let mut pauses = Vec::new();
        for _ in 0..5 {
            b.failure(None, true, t);
            let Admit::Wait(Some(until)) = b.admit(t) else {
                panic!("not paused")
            };
            pauses.push((until - t).as_secs());
            t = until;
            assert_eq!(b.admit(t), Admit::Probe);
        }
        assert_eq!(pauses, vec![30, 60, 60, 60, 60]);
        // The provider's own Retry-After may ask for longer.
        let b = Breaker::new(&settings(30, 3600));
        b.failure(Some(Duration::from_secs(600)), true, t);
        assert_eq!(b.admit(t), Admit::Wait(Some(t + Duration::from_secs(600))));
    }

    #[test]
    fn a_retry_after_or_a_429_pauses_the_provider_at_once() {
        let b = Breaker::new(&settings(10, 40));
        let t0 = Instant::now();
        assert!(b.failure(Some(Duration::from_secs(7)), true, t0));
        assert_eq!(b.admit(t0), Admit::Wait(Some(t0 + Duration::from_secs(7))));
        let b = Breaker::new(&settings(10, 40));
        assert!(b.failure(None, true, t0));
        assert_eq!(b.admit(t0), Admit::Wait(Some(t0 + Duration::from_secs(10))));
        // Retry-After is capped at backoff_max.
        let b = Breaker::new(&settings(10, 40));
        b.failure(Some(Duration::from_secs(3600)), true, t0);
        assert_eq!(b.admit(t0), Admit::Wait(Some(t0 + Duration::from_secs(40))));
    }

    #[test]
    fn horizons_read_as_people_write_them() {
        assert_eq!(humantime(Duration::from_secs(86400)), "24h");
        assert_eq!(humantime(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(humantime(Duration::from_millis(1500)), "1500ms");
    }
}
