//! Recording outcomes: a gate's verdict or a provider's answer becomes
//! the claimed row's new state. A store error while recording (a full
//! disk) is retried with backoff until it succeeds (settling is
//! idempotent), so a row is never left in `sending` while the process
//! lives; the lease is the backstop if the process dies first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::gate::Verdict;
use super::worker::{ExecutionOutcome, Inner};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::outbox::{ClaimedMessage, Lease, Outcome, Settled};

impl<S: Backend> Inner<S> {
    /// Records what the last gate decided for a message it did not let
    /// through.
    pub(super) async fn settle_verdict(
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
    pub(super) async fn record(&self, lease: &Lease, outcome: Outcome) {
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
