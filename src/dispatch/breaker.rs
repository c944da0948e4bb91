//! The provider-wide circuit breaker: after `breaker_threshold`
//! consecutive transient errors, or at once on a `Retry-After` or a 429,
//! sending pauses (nothing is claimed, no attempt is used) until a single
//! probe gets an answer. The pause doubles while the provider stays down,
//! but a down provider is probed at least once a minute.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::settings::DispatchSettings;

/// The longest the breaker waits between probes of a provider that is
/// down (unless the provider's own `Retry-After` asks for longer).
pub(super) const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// The provider-wide circuit breaker.
#[derive(Debug)]
pub(super) struct Breaker {
    threshold: u32,
    initial: Duration,
    max: Duration,
    state: Mutex<BreakerState>,
    /// Woken whenever the breaker opens, closes or frees its probe slot.
    pub(super) changed: Notify,
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
pub(super) enum Admit {
    Go,
    /// The breaker's pause is over: this send is the one probe.
    Probe,
    Wait(Option<Instant>),
}

impl Breaker {
    pub(super) fn new(s: &DispatchSettings) -> Breaker {
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

    pub(super) fn admit(&self, now: Instant) -> Admit {
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
    pub(super) fn abandon(&self, admitted: Admit) {
        if admitted == Admit::Probe {
            self.lock().probing = false;
            self.changed.notify_waiters();
        }
    }

    pub(super) fn success(&self) {
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
    pub(super) fn failure(
        &self,
        retry_after: Option<Duration>,
        throttled: bool,
        now: Instant,
    ) -> bool {
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
}
