//! Retries by time, not by count: after a provider error a message waits
//! (`backoff_initial` doubling to `backoff_max`, or the provider's
//! `Retry-After`) and is tried again, until its expiry or `retry_horizon`
//! after it was queued; then it is expired or failed with the reason.

use std::time::Duration;

use chrono::Utc;

use super::breaker::MAX_PROBE_INTERVAL;
use super::worker::{ExecutionOutcome, Inner};
use crate::domain::message::Kind;
use crate::settings::DispatchSettings;
use crate::store::Backend;
use crate::store::traits::outbox::{ClaimedMessage, Lease, Outcome};

/// How long a message waits after a provider error: `backoff_initial`
/// doubling per attempt to `backoff_max`; for an urgent message never
/// more than the breaker's longest probe interval, so crisis texts go
/// soon after an outage. The provider's Retry-After wins (up to the cap).
pub(super) fn backoff(
    settings: &DispatchSettings,
    attempts: i64,
    retry_after: Option<Duration>,
    urgent: bool,
) -> Duration {
    let mut cap = settings.backoff_max;
    if urgent {
        cap = cap.min(MAX_PROBE_INTERVAL);
    }
    let exp = settings
        .backoff_initial
        .saturating_mul(1u32 << (attempts.clamp(1, 20) - 1) as u32)
        .min(cap);
    match retry_after {
        Some(ra) => ra.min(settings.backoff_max),
        None => exp,
    }
}

impl<S: Backend> Inner<S> {
    /// Requeues after a provider error, or gives up when the next try would
    /// fall past the message's expiry or the retry horizon.
    pub(super) async fn retry_or_give_up(
        &self,
        lease: &Lease,
        claimed: &ClaimedMessage,
        reason: String,
        retry_after: Option<Duration>,
    ) -> ExecutionOutcome {
        let m = &claimed.message;
        let id = m.id;
        let delay = backoff(
            &self.settings,
            m.attempts,
            retry_after,
            Kind::URGENT.contains(&m.kind),
        );
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
}

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
        let s = settings(30, 600);
        let secs: Vec<u64> = (1..=7)
            .map(|a| backoff(&s, a, None, false).as_secs())
            .collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 600, 600]);
        let ra = |secs| backoff(&s, 1, Some(Duration::from_secs(secs)), false).as_secs();
        assert_eq!(ra(90), 90);
        assert_eq!(ra(5), 5);
        assert_eq!(ra(9999), 600);
        // Crisis texts wait at most a minute between tries.
        let urgent: Vec<u64> = (1..=4)
            .map(|a| backoff(&s, a, None, true).as_secs())
            .collect();
        assert_eq!(urgent, vec![30, 60, 60, 60]);
    }

    #[test]
    fn horizons_read_as_people_write_them() {
        assert_eq!(humantime(Duration::from_secs(86400)), "24h");
        assert_eq!(humantime(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(humantime(Duration::from_millis(1500)), "1500ms");
    }
}
