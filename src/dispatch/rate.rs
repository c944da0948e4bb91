//! The sender's rate limit (`segments_per_second`, `burst`), shared by
//! every send but not first come first served: while a crisis message
//! waits for it every other message stands back, and while another urgent
//! one (compliance, escalation) waits, routine ones stand back.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::domain::message::Kind;
use crate::settings::DispatchSettings;

/// The rate limiter and who is waiting for it.
pub(super) struct Rate {
    limiter: DefaultDirectRateLimiter,
    /// Urgent sends waiting for the rate limiter (routine ones yield).
    urgent_waiting: AtomicU64,
    /// Crisis sends waiting for the rate limiter (every other send yields).
    crisis_waiting: AtomicU64,
}

/// Counted down however the wait ends (also when it is dropped because
/// the dispatcher stops).
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Rate {
    pub(super) fn new(settings: &DispatchSettings) -> Rate {
        let per_second = NonZeroU32::new(settings.segments_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        Rate {
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            urgent_waiting: AtomicU64::new(0),
            crisis_waiting: AtomicU64::new(0),
        }
    }

    /// Waits for `segments` units of the sender's rate. So crisis
    /// resources never queue behind a backlog, and a crisis reply of two
    /// segments is not overtaken, a segment at a time, by confirmations.
    pub(super) async fn wait(&self, segments: usize, kind: Kind) {
        let (mine, ahead) = self.queue_of(kind);
        let _waiting = mine.map(|counter| {
            counter.fetch_add(1, Ordering::SeqCst);
            Waiting(counter)
        });
        let clock = governor::clock::DefaultClock::default();
        for _ in 0..segments {
            loop {
                if ahead.iter().any(|c| c.load(Ordering::SeqCst) > 0) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                match self.limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        use governor::clock::Clock;
                        tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
                    }
                }
            }
        }
    }

    /// The waiting count a send of `kind` joins (none for routine ones),
    /// and the counts it stands back for while they are non-zero.
    fn queue_of(&self, kind: Kind) -> (Option<&AtomicU64>, Vec<&AtomicU64>) {
        match kind {
            Kind::Crisis => (Some(&self.crisis_waiting), vec![]),
            k if Kind::URGENT.contains(&k) => {
                (Some(&self.urgent_waiting), vec![&self.crisis_waiting])
            }
            _ => (None, vec![&self.crisis_waiting, &self.urgent_waiting]),
        }
    }
}
