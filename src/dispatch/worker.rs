//! The dispatcher: claims due outbox rows and sends them, several at once.
//!
//! `try_execute_task` does one message end to end (claim, last gate, rate
//! limit, provider, record) and says what happened, so tests can step it;
//! `run_until_stopped` claims and sends until shutdown, with bounded
//! concurrency on two lanes (`lanes.rs`): the urgent lane (crisis,
//! compliance, escalation) never waits behind routine sends.
//!
//! **Shutdown never abandons a claim.** On shutdown the dispatcher stops
//! claiming; every send already under way finishes (bounded by the
//! provider timeout) and its outcome is recorded before the worker
//! returns. A claimed message still waiting for the rate limiter is
//! handed back to the queue unsent.
//!
//! **Provider faults.** A transient error (5xx, 429, no connection) is the
//! provider's fault, not the message's: messages are retried by time
//! (`retry.rs`), never by a count of attempts, and a provider-wide
//! circuit breaker (`breaker.rs`) pauses all sending until a single
//! probe succeeds. A send whose outcome is ambiguous is reconciled or sent
//! once more (`ambiguous.rs`).
//!
//! **Claims are leases** held by this daemon's [`InstanceId`] for
//! `2 × timeout + 60 s`, renewed right before the provider call. A
//! message whose lease lapsed while it was being sent comes back marked
//! *possibly sent*: it is reconciled with the provider where possible
//! before it is sent again, and counted as a possible duplicate where not.
//!
//! **Recording outcomes** (`record.rs`) retries store errors until
//! the outcome is stored; the lease is the backstop if the process dies.
//!
//! Here: the [`Dispatcher`] type, its builder methods, and the loop.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::breaker::{Admit, Breaker};
use super::lanes::{Lanes, Step};
use super::provider::AnyProvider;
use super::rate::Rate;
use super::send::Stop;
use crate::rules::Limits;
use crate::settings::DispatchSettings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::outbox::InstanceId;

pub use super::counters::Counters;

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

/// What every send shares: the store, the provider, the settings, the
/// breaker, the rate and the counts.
pub(super) struct Inner<S> {
    pub(super) store: S,
    pub(super) holder: InstanceId,
    pub(super) lease_for: chrono::TimeDelta,
    pub(super) provider: Arc<AnyProvider>,
    pub(super) settings: DispatchSettings,
    pub(super) rate: Rate,
    pub(super) breaker: Breaker,
    pub(super) counters: Arc<Counters>,
    #[cfg(feature = "fault-injection")]
    pub(super) fault: super::fault::Fault,
    #[cfg(feature = "fault-injection")]
    pub(super) fail_records: AtomicU64,
    /// Sends recorded so far (fault injection counts them).
    pub(super) sent: AtomicU64,
    /// The live frequency caps (`limits:`), checked again at the gate.
    pub(super) limits: Option<LimitsSource>,
}

/// Where the dispatcher reads the live `limits:` from.
pub(crate) type LimitsSource = Arc<dyn Fn() -> Option<Limits> + Send + Sync>;

pub struct Dispatcher<S> {
    pub(super) inner: Arc<Inner<S>>,
    /// How often an idle dispatcher looks for messages queued by other
    /// processes (`hearth send`); this process's own wake it at once.
    pub(super) poll: Duration,
}

impl<S: Backend> Dispatcher<S> {
    pub fn new(store: S, provider: Arc<AnyProvider>, settings: DispatchSettings) -> Dispatcher<S> {
        let lease_for = chrono::TimeDelta::from_std(settings.timeout.saturating_mul(2))
            .unwrap_or(chrono::TimeDelta::minutes(5))
            + chrono::TimeDelta::seconds(60);
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                holder: InstanceId::for_this_host(),
                lease_for,
                provider,
                rate: Rate::new(&settings),
                breaker: Breaker::new(&settings),
                settings,
                counters: Arc::default(),
                #[cfg(feature = "fault-injection")]
                fault: super::fault::from_env(),
                #[cfg(feature = "fault-injection")]
                fail_records: AtomicU64::new(0),
                sent: AtomicU64::new(0),
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
    pub(crate) fn with_counters(mut self, counters: Arc<Counters>) -> Dispatcher<S> {
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
        let lanes = Lanes::new(&self.inner.settings);
        let tracker = TaskTracker::new();
        let enqueued = self.inner.store.enqueued();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let pause = match self.claim_one(&lanes, &tracker, &shutdown).await {
                Step::Claimed => continue,
                Step::Wait(d) => d,
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = enqueued.notified() => {}
                _ = lanes.freed.notified() => {}
                _ = self.inner.breaker.changed.notified() => {}
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
}
