//! The escalation timer: one loop over the database that starts new
//! incidents' policies, makes the notifications that fall due
//! (`advance`), and delivers the email and webhook notices queued
//! (`delivery`).
//!
//! Everything it needs is in the database (the pinned policy, the next
//! position and when it falls due), so there is nothing to rebuild at
//! start but a read of the earliest due instant: a restart mid-escalation
//! makes exactly the notifications that fell due while it was down, in
//! order, once each. Acknowledgements, which stop it, are
//! [`crate::escalate::act`].

mod advance;
mod delivery;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use self::delivery::Channels;
pub use self::delivery::{SetupError, channel_warnings};
use crate::config::reload::LiveRules;
use crate::domain::clock::Clock;
use crate::domain::clock::SystemClock;
use crate::escalate::start::{self, Started};
use crate::settings::NotifySettings;
use crate::store::Backend;
use crate::store::StoreError;

/// What one pass of the engine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tick {
    /// Escalations started (policies pinned).
    pub started: usize,
    /// Pages made (one per step notified, whatever the recipients).
    pub paged: usize,
    /// Email and webhook notices delivered, and attempts that failed.
    pub(crate) delivered: usize,
    pub(crate) failed: usize,
}

/// How many unstarted incidents, due escalations and pending notices one
/// pass reads.
const BATCH: usize = 200;
/// The longest the engine sleeps before it reads the database again.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(30);
/// How soon it tries again when something stayed due after a pass.
const STUCK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The engine the daemon runs.
pub struct Escalator<S> {
    store: S,
    rules: Arc<LiveRules>,
    clock: Arc<dyn Clock>,
    wake: Arc<tokio::sync::Notify>,
    channels: Channels,
    /// `notify.critical_repeat`.
    critical_repeat: std::time::Duration,
}

impl<S: Backend> Escalator<S> {
    /// Builds the channels from the settings; an error names the setting.
    pub fn new(
        store: S,
        rules: Arc<LiveRules>,
        notify: &NotifySettings,
    ) -> Result<Escalator<S>, SetupError> {
        Ok(Escalator {
            store,
            rules,
            clock: Arc::new(SystemClock),
            wake: Arc::new(tokio::sync::Notify::new()),
            channels: Channels::new(notify)?,
            critical_repeat: notify.critical_repeat,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Escalator<S> {
        self.clock = clock;
        self
    }

    /// Shares a waker made elsewhere (the intake's, so the admin API wakes
    /// this engine).
    pub(crate) fn with_waker(mut self, wake: Arc<tokio::sync::Notify>) -> Escalator<S> {
        self.wake = wake;
        self
    }

    /// One pass: start new incidents' policies, make every notification
    /// due, attempt every email and webhook notice due.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut t = Tick {
            started: self.start_new(now).await?,
            ..Tick::default()
        };
        // Each pass moves every due row past `now` (or ends it); the bound
        // only guards against a row that somehow stays due.
        for _ in 0..64 {
            let due = self.store.due_escalations(now, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let mut moved = 0;
            for row in due {
                match advance::advance(&self.store, row, now, self.critical_repeat).await {
                    Ok(Some(n)) => {
                        t.paged += n;
                        moved += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error.cause_chain = ?e, "cannot advance an escalation; it stays due");
                    }
                }
            }
            if moved == 0 {
                break;
            }
        }
        let (d, f) = self.channels.deliver(&self.store, now).await?;
        t.delivered = d;
        t.failed = f;
        Ok(t)
    }

    /// Runs until `cancel`: a pass, then sleep until the earliest due
    /// instant, a wake, or at most [`MAX_SLEEP`].
    pub(crate) async fn run(self, cancel: tokio_util::sync::CancellationToken) {
        loop {
            match self.tick().await {
                Ok(t) if t != Tick::default() => {
                    tracing::debug!(
                        started = t.started,
                        paged = t.paged,
                        delivered = t.delivered,
                        failed = t.failed,
                        "escalation pass"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, "escalation pass failed; retrying")
                }
            }
            // Whatever is still due after a pass could not be moved (a
            // store error, a lost race): try again in a second rather than
            // at once, so a stuck row never spins the engine.
            let sleep = match self.store.next_escalation_due().await {
                Ok(Some(at)) => (at - self.clock.now())
                    .to_std()
                    .unwrap_or(STUCK_RETRY)
                    .clamp(std::time::Duration::from_millis(1), MAX_SLEEP),
                _ => MAX_SLEEP,
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Pins the policy of every incident whose escalation has not
    /// started (as the rules are now, for the member's groups); a policy
    /// not in the rules is logged and marked unstartable
    /// ([`crate::escalate::start`]).
    async fn start_new(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let rules = self.rules.current();
        let mut started = 0;
        for u in self.store.unstarted_escalations(BATCH).await? {
            let Some(inc) = self.store.incident(u.incident_id).await? else {
                continue;
            };
            if let Started::Now { .. } = start::start(&self.store, &rules, &inc, now).await? {
                started += 1;
            }
        }
        Ok(started)
    }
}
