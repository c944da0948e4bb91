//! Everything that fires at a time, each kind with one loop over one
//! [`Clock`](crate::domain::clock::Clock) and its timers kept in the store
//! (so a restart goes on where it was):
//!
//! - [`schedules`]: schedules' fires (cron and session-relative) fanned
//!   out to members into the outbox.
//! - [`surveys`]: survey reminders and expiry.
//! - [`alerts`]: scheduled (`every:`) alerts over members' history.
//! - [`housekeeping`]: the loop that runs `surveys` and `alerts` every few
//!   seconds.
//!
//! Escalation steps are timers too; their loop is
//! [`crate::escalate::engine::Escalator`], beside the acknowledgements
//! that stop them.

pub mod alerts;
pub mod housekeeping;
pub mod schedules;
pub mod surveys;
