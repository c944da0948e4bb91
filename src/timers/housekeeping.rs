//! The daemon's housekeeping loop: every few seconds, survey reminders and
//! expiry ([`super::surveys`]), then scheduled alerts ([`super::alerts`]),
//! waking the escalation engine when an alert fired.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::reload::LiveRules;
use crate::store::Backend;

/// Every few seconds: survey reminders and expiry, then scheduled alerts.
/// A failure is logged and tried again on the next round.
pub(crate) async fn run_until_stopped(
    store: impl Backend,
    rules: Arc<LiveRules>,
    escalation_wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let current = rules.current();
        let now = chrono::Utc::now();
        match super::surveys::tick(&store, &current, now).await {
            Ok(t) if t.reminded + t.expired > 0 => {
                tracing::info!(
                    reminded = t.reminded,
                    expired = t.expired,
                    "surveys: reminders and expiry"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, "survey housekeeping failed; trying again shortly")
            }
        }
        match super::alerts::tick(&store, &current, now).await {
            Ok(t) if t.evaluated > 0 => {
                tracing::info!(
                    evaluated = t.evaluated,
                    fired = t.fired,
                    failed = t.failed,
                    "scheduled alerts evaluated"
                );
                if t.fired > 0 {
                    escalation_wake.notify_one();
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, "scheduled alerts failed; trying again shortly")
            }
        }
    }
}
