//! The names the audit trail records for who did something that no person
//! did.

/// The audit trail's actor for what the daemon does by itself.
pub(crate) const DAEMON_ACTOR: &str = "hearth";
