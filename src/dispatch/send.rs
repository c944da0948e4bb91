//! One claimed message to its recorded outcome: the last gate (and the
//! frequency caps), the rate limit, the lease renewed right before the
//! provider call, the call itself, and what the provider's answer means
//! for the message and for the circuit breaker.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::breaker::Admit;
use super::gate::{self, Verdict};
use super::provider::{Accepted, Outgoing, SendError};
use super::worker::{ExecutionOutcome, Inner};
use crate::store::Backend;
use crate::store::traits::outbox::{ClaimedMessage, Lease, Outcome};

/// How a step ends when the dispatcher is asked to stop before sending.
pub(super) enum Stop<'a> {
    Never,
    On(&'a CancellationToken),
}

impl<S: Backend> Inner<S> {
    /// Gate, rate limit, send, record: one claimed message to its outcome.
    /// Never returns before the outcome is recorded.
    #[tracing::instrument(skip_all, fields(outbox_id = claimed.message.id, member_id))]
    pub(super) async fn execute(
        &self,
        claimed: ClaimedMessage,
        admitted: Admit,
        stop: Stop<'_>,
    ) -> ExecutionOutcome {
        let id = claimed.message.id;
        let verdict = self.last_gate(&claimed).await;
        if verdict != Verdict::Send {
            self.breaker.abandon(admitted);
            return self.settle_verdict(&claimed.lease, &claimed, verdict).await;
        }
        let Some(msg) = outgoing(&claimed) else {
            // The gate suppresses a message with no number; never reached.
            self.breaker.abandon(admitted);
            let reason = "no phone number to send to".to_owned();
            self.record(&claimed.lease, Outcome::Suppressed { reason })
                .await;
            return ExecutionOutcome::Suppressed { id };
        };
        if let Some(released) = self.wait_for_rate(&claimed, &msg, admitted, stop).await {
            return released;
        }
        let Some(lease) = self.renew_for_send(&claimed.lease).await else {
            self.breaker.abandon(admitted);
            return ExecutionOutcome::Released { id };
        };
        // A message whose earlier send may have gone through: ask first.
        if claimed.message.possibly_sent
            && let Some(outcome) = self
                .settle_if_already_sent(&lease, &claimed, &msg, admitted)
                .await
        {
            return outcome;
        }
        let result = self.call_provider(&claimed, &msg).await;
        self.settle_send(&lease, &claimed, &msg, result).await
    }

    /// The gate's verdict (consent, status, expiry, quiet hours), then the
    /// frequency caps for a message the gate lets through.
    async fn last_gate(&self, claimed: &ClaimedMessage) -> Verdict {
        // For a number-only message, the member who has the number.
        if let Some(m) = member_of(claimed) {
            tracing::Span::current().record("member_id", m);
        }
        match gate::decide(claimed, Utc::now(), self.settings.send_window) {
            Verdict::Send => self.frequency_cap(claimed).await,
            verdict => verdict,
        }
    }

    /// Waits for the message's segments of the sender's rate (each segment
    /// is one unit). Stopping while waiting hands the message back unsent:
    /// that outcome is returned.
    async fn wait_for_rate(
        &self,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
        admitted: Admit,
        stop: Stop<'_>,
    ) -> Option<ExecutionOutcome> {
        let wait = self.rate.wait(msg.segments, claimed.message.kind);
        let token = match stop {
            Stop::Never => {
                wait.await;
                return None;
            }
            Stop::On(token) => token,
        };
        tokio::select! {
            biased;
            _ = wait => None,
            _ = token.cancelled() => {
                self.breaker.abandon(admitted);
                let outcome = Outcome::Defer {
                    until: Utc::now(),
                    reason: "handed back unsent when the dispatcher stopped".into(),
                };
                self.record(&claimed.lease, outcome).await;
                Some(ExecutionOutcome::Released { id: claimed.message.id })
            }
        }
    }

    /// Renews the claim so it outlasts the provider call (and a
    /// reconciliation). `None` when it lapsed and was taken back while
    /// waiting: the message is no longer ours. A store error keeps the
    /// original lease.
    async fn renew_for_send(&self, lease: &Lease) -> Option<Lease> {
        match self.store.renew(lease, Utc::now() + self.lease_for).await {
            Ok(Some(renewed)) => Some(renewed),
            Ok(None) => {
                tracing::warn!("the claim lapsed before sending; left to whoever holds it now");
                None
            }
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "cannot renew the claim; sending under the original lease");
                Some(lease.clone())
            }
        }
    }

    /// The provider call; an ambiguous answer is reconciled (or turned into
    /// a resend or a possibly-sent acceptance) before it is returned.
    async fn call_provider(
        &self,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
    ) -> Result<Accepted, SendError> {
        let started = Utc::now();
        let mut result = self.provider.send(msg).await;
        if let Err(SendError::Ambiguous { reason }) = &result {
            result = self
                .after_ambiguous(claimed, msg, started, reason.clone())
                .await;
        }
        #[cfg(feature = "fault-injection")]
        if result.is_ok() {
            super::fault::before_record(self.fault, self.sent.load(Ordering::SeqCst));
        }
        result
    }

    /// Records what the provider's answer means for the message, and tells
    /// the circuit breaker whether the provider is up.
    async fn settle_send(
        &self,
        lease: &Lease,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
        result: Result<Accepted, SendError>,
    ) -> ExecutionOutcome {
        let id = claimed.message.id;
        match result {
            Ok(accepted) => self.settle_sent(lease, msg, accepted).await,
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let throttled = reason.starts_with("HTTP 429");
                self.provider_failed(&reason, retry_after, throttled);
                self.retry_or_give_up(lease, claimed, reason, retry_after)
                    .await
            }
            Err(SendError::Ambiguous { reason }) => {
                // No answer in time: as much a sign of trouble as a 5xx.
                self.provider_failed(&reason, None, false);
                self.retry_or_give_up(lease, claimed, reason, None).await
            }
            Err(SendError::OptedOut { reason }) => {
                self.breaker.success();
                tracing::warn!(%reason, "provider reports the number opted out; consent revoked");
                self.record(lease, Outcome::OptedOut { reason }).await;
                ExecutionOutcome::OptedOut { id }
            }
            Err(SendError::Permanent { reason }) => {
                // The provider answered: it is up.
                self.breaker.success();
                tracing::warn!(%reason, "send failed permanently");
                self.record(lease, Outcome::Failed { reason }).await;
                ExecutionOutcome::Failed { id }
            }
        }
    }

    /// The provider took the message: recorded as sent, and counted.
    async fn settle_sent(
        &self,
        lease: &Lease,
        msg: &Outgoing,
        accepted: Accepted,
    ) -> ExecutionOutcome {
        self.breaker.success();
        let outcome = Outcome::Sent {
            provider: self.provider.name().to_owned(),
            provider_message_id: accepted.provider_message_id,
        };
        self.record(lease, outcome).await;
        tracing::info!(
            segments = msg.segments,
            provider = self.provider.name(),
            "message sent"
        );
        let _n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        #[cfg(feature = "fault-injection")]
        super::fault::after_record(self.fault, _n);
        ExecutionOutcome::Sent { id: msg.outbox_id }
    }

    /// A transient or ambiguous provider error: the breaker counts it, and
    /// its opening is counted and logged.
    fn provider_failed(&self, reason: &str, retry_after: Option<Duration>, throttled: bool) {
        if self.breaker.failure(retry_after, throttled, Instant::now()) {
            self.counters.breaker_opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%reason, "provider paused: sending stops until it answers again");
        }
    }
}

/// The member a message is for: its own, or for a number-only message the
/// member who has the number.
fn member_of(claimed: &ClaimedMessage) -> Option<i64> {
    claimed
        .message
        .member_id
        .or(claimed.member.as_ref().map(|m| m.id))
}

/// The message as the provider takes it; `None` without a number.
fn outgoing(claimed: &ClaimedMessage) -> Option<Outgoing> {
    Some(Outgoing {
        outbox_id: claimed.message.id,
        member_id: member_of(claimed),
        to: claimed.to.clone()?,
        segments: claimed.message.segments.max(1) as usize,
        body: claimed.message.body.clone(),
    })
}
