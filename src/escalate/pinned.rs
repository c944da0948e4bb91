//! The policy an incident follows, pinned when its escalation starts.
