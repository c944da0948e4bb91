//! Fault injection for the crash tests: abort the process at exact points
//! around a send (a SIGKILL lands wherever it lands; these land where
//! asked). Compiled only with the `fault-injection` cargo feature.

const ABORT_AFTER_SENT: &str = "HEARTH_FAULT_ABORT_AFTER_SENT";
const ABORT_BEFORE_RECORD: &str = "HEARTH_FAULT_ABORT_BEFORE_RECORD";

/// Where to abort: `(after_recording, n)`, around the n-th send.
pub(super) type Fault = Option<(bool, u64)>;

/// `(after_recording, n)`: abort around the n-th send.
pub(super) fn from_env() -> Fault {
    std::env::var(ABORT_AFTER_SENT)
        .ok()
        .map(|v| (true, v))
        .or_else(|| std::env::var(ABORT_BEFORE_RECORD).ok().map(|v| (false, v)))
        .and_then(|(after, v)| v.parse().ok().map(|n| (after, n)))
}

/// The provider accepted send number `sent + 1`: abort before it is
/// recorded, if asked to.
pub(super) fn before_record(fault: Fault, sent: u64) {
    if let Some((false, n)) = fault
        && sent + 1 == n
    {
        tracing::error!("fault injection: aborting after the provider accepted, before recording");
        std::process::abort();
    }
}

/// Send number `n` is recorded: abort now, if asked to.
pub(super) fn after_record(fault: Fault, n: u64) {
    if fault == Some((true, n)) {
        tracing::error!("fault injection: aborting after recording a send");
        std::process::abort();
    }
}
