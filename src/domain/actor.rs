//! The names the audit trail records for who did something that no person
//! did.

/// The audit trail's actor for what the daemon does by itself.
pub const DAEMON_ACTOR: &str = "hearth";
