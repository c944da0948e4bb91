//! The dispatcher's running counts (possible duplicates, reconciled
//! sends, held messages, breaker openings, record retries), shown by
//! `/status` and read by the tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running counts, for `/status` and the tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Ambiguous or possibly-sent messages sent again without a way to
    /// check (a possible duplicate each).
    pub ambiguous_resends: AtomicU64,
    /// Ambiguous sends the provider's records showed were sent.
    pub reconciled_sent: AtomicU64,
    /// Messages held because a member's timezone could not be read.
    pub(crate) bad_timezone_holds: AtomicU64,
    /// Times the circuit breaker opened.
    pub breaker_opened: AtomicU64,
    /// Store errors while recording an outcome (each retried).
    pub record_retries: AtomicU64,
}

impl Counters {
    /// The counts as `/status` shows them.
    pub(crate) fn snapshot(&self) -> serde_json::Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "ambiguous_resends": n(&self.ambiguous_resends),
            "reconciled_sent": n(&self.reconciled_sent),
            "bad_timezone_holds": n(&self.bad_timezone_holds),
            "breaker_opened": n(&self.breaker_opened),
            "record_retries": n(&self.record_retries),
        })
    }
}
