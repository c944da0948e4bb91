//! Sends that may have gone through. A send whose outcome is ambiguous
//! (timed out after the request went out), or a message whose lease lapsed
//! mid-send (*possibly sent*), is reconciled with the provider where it
//! can look messages up (Twilio); elsewhere it is sent once more and
//! counted ([`super::worker::Counters::ambiguous_resends`]); a second
//! ambiguous outcome for the same message is recorded as possibly sent and
//! not sent a third time.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::breaker::Admit;
use super::provider::{Accepted, Outgoing, Reconciled, SendError};
use super::worker::{ExecutionOutcome, Inner};
use crate::store::Backend;
use crate::store::traits::outbox::{ClaimedMessage, Lease, Outcome};

/// The prefix of the reason an ambiguous send leaves on a requeued row.
const AMBIGUOUS: &str = "ambiguous: ";

impl<S: Backend> Inner<S> {
    /// Before sending a message whose earlier send may have gone through:
    /// asks the provider. If it has the message, records it as sent and
    /// says so; otherwise the message is to be sent (counted as a possible
    /// duplicate when the provider cannot say).
    pub(super) async fn settle_if_already_sent(
        &self,
        lease: &Lease,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
        admitted: Admit,
    ) -> Option<ExecutionOutcome> {
        let since = claimed.message.updated_at - chrono::TimeDelta::days(1);
        match self.provider.reconcile(msg, since).await {
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
                self.record(lease, outcome).await;
                Some(ExecutionOutcome::Sent {
                    id: claimed.message.id,
                })
            }
            Ok(Reconciled::NotFound) => None,
            Ok(Reconciled::Unsupported) | Err(_) => {
                self.counters
                    .ambiguous_resends
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "an interrupted send may have gone through and cannot be checked; sending again (a possible duplicate)"
                );
                None
            }
        }
    }

    /// After an ambiguous send: ask the provider; if it cannot say, let the
    /// message be sent once more (counted) unless it already was.
    pub(super) async fn after_ambiguous(
        &self,
        claimed: &ClaimedMessage,
        msg: &Outgoing,
        started: DateTime<Utc>,
        reason: String,
    ) -> Result<Accepted, SendError> {
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
            return Ok(Accepted {
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
}
