//! The dispatcher: claims due outbox rows one at a time and sends them.
//!
//! `try_execute_task` does one message end to end (claim, last gate, rate
//! limit, provider, record) and says what happened, so tests can step it;
//! `run_until_stopped` loops over it until shutdown.
//!
//! Delivery guarantee: at least once. A message is marked `sending` (and
//! committed) before the provider is called and `sent` after it answers;
//! a crash in between leaves it `sending`, and the next start queues it
//! again. So a message can be sent twice only if the process dies after the
//! provider accepted it and before that acceptance was committed — a window
//! of one provider round trip, for the one message in flight.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use tokio_util::sync::CancellationToken;

use super::gate::{self, Verdict};
use super::provider::{AnyProvider, Outgoing, SendError};
use crate::settings::DispatchSettings;
use crate::store::outbox::OutState;
use crate::store::{Store, StoreError};

/// What one step of the dispatcher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionOutcome {
    EmptyQueue,
    Sent { id: i64 },
    Retrying { id: i64, at: DateTime<Utc> },
    Failed { id: i64 },
    OptedOut { id: i64 },
    Suppressed { id: i64 },
    Deferred { id: i64, until: DateTime<Utc> },
    Expired { id: i64 },
}

/// Environment hooks that abort the process at exact points, for the crash
/// tests (a SIGKILL lands wherever it lands; these land where asked).
const ABORT_AFTER_SENT: &str = "HEARTH_FAULT_ABORT_AFTER_SENT";
const ABORT_BEFORE_RECORD: &str = "HEARTH_FAULT_ABORT_BEFORE_RECORD";

pub struct Dispatcher {
    store: Store,
    provider: Arc<AnyProvider>,
    settings: DispatchSettings,
    limiter: DefaultDirectRateLimiter,
    fault: Option<(bool, u64)>,
    sent: std::sync::atomic::AtomicU64,
    /// How often an idle dispatcher looks for messages queued by other
    /// processes (`hearth send`); this process's own wake it at once.
    poll: Duration,
}

impl Dispatcher {
    pub fn new(store: Store, provider: Arc<AnyProvider>, settings: DispatchSettings) -> Dispatcher {
        let per_second = NonZeroU32::new(settings.segments_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let fault = std::env::var(ABORT_AFTER_SENT)
            .ok()
            .map(|v| (true, v))
            .or_else(|| std::env::var(ABORT_BEFORE_RECORD).ok().map(|v| (false, v)))
            .and_then(|(after, v)| v.parse().ok().map(|n| (after, n)));
        Dispatcher {
            store,
            provider,
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            settings,
            fault,
            sent: Default::default(),
            poll: Duration::from_secs(2),
        }
    }

    pub fn with_poll(mut self, poll: Duration) -> Dispatcher {
        self.poll = poll;
        self
    }

    /// Puts messages a crash left in `sending` back in the queue.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let n = self.store.requeue_interrupted().await?;
        if n > 0 {
            tracing::warn!(
                messages = n,
                "requeued messages interrupted mid-send by the last stop"
            );
        }
        Ok(n)
    }

    fn backoff(&self, attempts: i64, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .settings
            .backoff_initial
            .saturating_mul(1u32 << (attempts.clamp(1, 20) - 1) as u32)
            .min(self.settings.backoff_max);
        // The provider's Retry-After, when it gave one, wins (up to the cap).
        match retry_after {
            Some(ra) => ra.min(self.settings.backoff_max),
            None => exp,
        }
    }

    /// Sends (or settles) the most urgent due message.
    #[tracing::instrument(skip_all, fields(outbox_id, member_id))]
    pub async fn try_execute_task(&self) -> Result<ExecutionOutcome, StoreError> {
        let now = Utc::now();
        let Some(claimed) = self.store.claim_next(now).await? else {
            return Ok(ExecutionOutcome::EmptyQueue);
        };
        let id = claimed.row.id;
        tracing::Span::current().record("outbox_id", id);
        if let Some(m) = claimed.row.member_id {
            tracing::Span::current().record("member_id", m);
        }
        match gate::decide(&claimed, now, self.settings.send_window) {
            Verdict::Send => {}
            Verdict::Suppress(reason) => {
                tracing::info!(%reason, "message suppressed at the last gate");
                self.store
                    .settle(id, OutState::Suppressed, Some(reason), None, None)
                    .await?;
                return Ok(ExecutionOutcome::Suppressed { id });
            }
            Verdict::Expire(reason) => {
                tracing::info!(%reason, "message expired");
                self.store
                    .settle(id, OutState::Expired, Some(reason), None, None)
                    .await?;
                return Ok(ExecutionOutcome::Expired { id });
            }
            Verdict::Defer { until, reason } => {
                tracing::debug!(%until, "message deferred");
                self.store.defer(id, until, reason).await?;
                return Ok(ExecutionOutcome::Deferred { id, until });
            }
        }
        let to = claimed.to.clone().expect("the gate checked the number");
        let msg = Outgoing {
            outbox_id: id,
            member_id: claimed.row.member_id,
            to,
            segments: claimed.row.segments.max(1) as usize,
            body: claimed.row.body.clone(),
        };
        // Each segment is one unit of the sender's rate.
        for _ in 0..msg.segments {
            self.limiter.until_ready().await;
        }
        let result = self.provider.send(&msg).await;
        if let (Some((false, n)), Ok(_)) = (self.fault, &result)
            && self.sent.load(std::sync::atomic::Ordering::SeqCst) + 1 == n
        {
            tracing::error!(
                "fault injection: aborting after the provider accepted, before recording"
            );
            std::process::abort();
        }
        let outcome = match result {
            Ok(accepted) => {
                self.store
                    .settle(
                        id,
                        OutState::Sent,
                        None,
                        Some((
                            self.provider.name().to_owned(),
                            accepted.provider_message_id,
                        )),
                        None,
                    )
                    .await?;
                tracing::info!(
                    segments = msg.segments,
                    provider = self.provider.name(),
                    "message sent"
                );
                let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if self.fault == Some((true, n)) {
                    tracing::error!("fault injection: aborting after recording a send");
                    std::process::abort();
                }
                ExecutionOutcome::Sent { id }
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                if claimed.row.attempts >= i64::from(self.settings.max_attempts) {
                    tracing::warn!(%reason, attempts = claimed.row.attempts, "message failed after its last attempt");
                    self.store
                        .settle(
                            id,
                            OutState::Failed,
                            Some(format!(
                                "gave up after {} attempts: {reason}",
                                claimed.row.attempts
                            )),
                            None,
                            None,
                        )
                        .await?;
                    ExecutionOutcome::Failed { id }
                } else {
                    let delay = self.backoff(claimed.row.attempts, retry_after);
                    let at = Utc::now()
                        + chrono::TimeDelta::from_std(delay)
                            .unwrap_or(chrono::TimeDelta::seconds(60));
                    tracing::warn!(%reason, attempts = claimed.row.attempts, retry_in_ms = delay.as_millis() as u64, "send failed; will retry");
                    self.store
                        .settle(id, OutState::Queued, Some(reason), None, Some(at))
                        .await?;
                    ExecutionOutcome::Retrying { id, at }
                }
            }
            Err(SendError::OptedOut { reason }) => {
                tracing::warn!(%reason, "provider reports the number opted out; consent revoked");
                self.store.provider_opt_out(id, reason).await?;
                ExecutionOutcome::OptedOut { id }
            }
            Err(SendError::Permanent { reason }) => {
                tracing::warn!(%reason, "send failed permanently");
                self.store
                    .settle(id, OutState::Failed, Some(reason), None, None)
                    .await?;
                ExecutionOutcome::Failed { id }
            }
        };
        Ok(outcome)
    }

    /// Sends until `shutdown`; sleeps until the next message falls due, a
    /// wake-up, or a poll (for messages queued by other processes).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        if let Err(e) = self.recover().await {
            tracing::error!(error.cause_chain = ?e, "cannot requeue interrupted messages");
        }
        let poll = self.poll;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                o = self.try_execute_task() => o,
            };
            let pause = match outcome {
                Ok(ExecutionOutcome::EmptyQueue) => match self.store.next_due().await {
                    Ok(Some(due)) => (due - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(poll),
                    Ok(None) | Err(_) => poll,
                },
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, "dispatcher step failed");
                    Duration::from_secs(1)
                }
            };
            let enqueued = self.store.enqueued();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = enqueued.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatcher(initial: u64, max: u64) -> DispatchSettings {
        DispatchSettings {
            backoff_initial: Duration::from_secs(initial),
            backoff_max: Duration::from_secs(max),
            ..DispatchSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_honours_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_at(
            &dir.path().join("h.db"),
            &crate::store::KeySource::Generated(dir.path().join("h.db.key")),
        )
        .unwrap();
        let p = Arc::new(AnyProvider::Console(
            super::super::providers::console::ConsoleProvider::new(None).unwrap(),
        ));
        let d = Dispatcher::new(store, p, dispatcher(30, 600));
        let secs: Vec<u64> = (1..=7).map(|a| d.backoff(a, None).as_secs()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(d.backoff(1, Some(Duration::from_secs(90))).as_secs(), 90);
        assert_eq!(d.backoff(1, Some(Duration::from_secs(5))).as_secs(), 5);
        assert_eq!(d.backoff(1, Some(Duration::from_secs(9999))).as_secs(), 600);
    }
}
