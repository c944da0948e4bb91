//! The two lanes of bounded concurrency. The **urgent lane** (crisis,
//! compliance, escalation: `urgent_concurrency` sends at once) never waits
//! behind routine sends: when every routine slot is busy (a hung request),
//! urgent messages are still claimed and sent. The **routine lane**
//! (`concurrency` sends at once) takes the most urgent message of all when
//! it has a free slot. Here: which lane claims, which slot a claimed
//! message takes, and how long the loop waits when there is nothing to do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::breaker::Admit;
use super::send::Stop;
use super::worker::{Dispatcher, Inner};
use crate::domain::message::Kind;
use crate::settings::DispatchSettings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::outbox::ClaimedMessage;

/// The lanes' slots, and the signal that one was freed.
pub(super) struct Lanes {
    routine: Arc<Semaphore>,
    urgent: Arc<Semaphore>,
    /// Notified whenever a send finishes and frees its slot.
    pub(super) freed: Arc<Notify>,
}

/// What one turn of the claim loop did.
pub(super) enum Step {
    /// A message was claimed and its send started.
    Claimed,
    /// Nothing to claim now: wait this long (or for a wake-up).
    Wait(Duration),
}

/// The slot a claimed message's send holds.
enum Permit {
    Held(OwnedSemaphorePermit),
    /// No slot of its lane is free yet: the send waits for one.
    Later(Arc<Semaphore>),
}

impl Lanes {
    pub(super) fn new(settings: &DispatchSettings) -> Lanes {
        Lanes {
            routine: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            urgent: Arc::new(Semaphore::new(settings.urgent_concurrency.max(1))),
            freed: Arc::new(Notify::new()),
        }
    }

    /// Urgent messages take the urgent lane when it is free, so the
    /// routine slots stay for routine sends.
    fn slot_for(
        &self,
        claimed: &ClaimedMessage,
        urgent: Option<OwnedSemaphorePermit>,
        routine: Option<OwnedSemaphorePermit>,
    ) -> Permit {
        let is_urgent = Kind::URGENT.contains(&claimed.message.kind);
        match (is_urgent, urgent, routine) {
            (true, Some(u), _) => Permit::Held(u),
            (_, _, Some(r)) => Permit::Held(r),
            // A routine message with only the urgent lane free cannot be
            // claimed (claim_of_kinds); handled all the same.
            (false, _, None) => Permit::Later(self.routine.clone()),
            (true, None, None) => Permit::Later(self.urgent.clone()),
        }
    }
}

impl<S: Backend> Dispatcher<S> {
    /// One turn of the claim loop: claims the next message a free lane may
    /// take and starts its send on `tracker`, or says how long to wait.
    pub(super) async fn claim_one(
        &self,
        lanes: &Lanes,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Step {
        let inner = &self.inner;
        let admitted = inner.breaker.admit(Instant::now());
        if let Admit::Wait(until) = admitted {
            return Step::Wait(self.paused_for(until));
        }
        // A free routine slot takes the most urgent message of all; with
        // every routine slot busy, only the urgent lane claims.
        let routine = lanes.routine.clone().try_acquire_owned().ok();
        let urgent = lanes.urgent.clone().try_acquire_owned().ok();
        let claim = match (&routine, &urgent) {
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
                return Step::Wait(self.idle_for(routine.is_some()).await);
            }
            Err(e) => {
                inner.breaker.abandon(admitted);
                tracing::error!(error.cause_chain = ?e, "cannot claim the next message");
                return Step::Wait(Duration::from_secs(1));
            }
        };
        let permit = lanes.slot_for(&claimed, urgent, routine);
        self.spawn_send(claimed, admitted, permit, lanes, tracker, shutdown);
        Step::Claimed
    }

    /// How long to wait while the breaker holds sending back: until its
    /// pause ends (a probe in flight: the poll), never longer than the poll.
    fn paused_for(&self, until: Option<Instant>) -> Duration {
        until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(self.poll)
            .min(self.poll)
    }

    /// How long to wait when the claim found nothing: until the next
    /// message falls due (within the poll). When only the urgent lane
    /// looked, what is due now may be routine and must not make the loop
    /// spin: wait for a routine slot, a new message or the poll.
    async fn idle_for(&self, routine_lane_looked: bool) -> Duration {
        if !routine_lane_looked {
            return self.poll;
        }
        let due = self.inner.store.next_due().await.ok().flatten();
        due.map(|d| (d - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(self.poll)
            .min(self.poll)
            .max(Duration::from_millis(20))
    }

    /// Sends a claimed message on `tracker`, holding its lane's slot until
    /// the outcome is recorded.
    fn spawn_send(
        &self,
        claimed: ClaimedMessage,
        admitted: Admit,
        permit: Permit,
        lanes: &Lanes,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let inner = self.inner.clone();
        let freed = lanes.freed.clone();
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
    }
}

impl<S: Backend> Inner<S> {
    /// The routine lane's claim: the most urgent due message of any kind.
    pub(super) async fn claim(&self) -> Result<Option<ClaimedMessage>, StoreError> {
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
}
