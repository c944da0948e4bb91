//! Everything that fires at a time, each kind with one loop over one
//! [`Clock`](crate::domain::clock::Clock) and its timers kept in the store
//! (so a restart goes on where it was):
//!
//! - [`schedules`]: schedules' fires (cron and session-relative) fanned
//!   out to members into the outbox.
//! - [`surveys`]: survey reminders and expiry.
//! - [`alerts`]: scheduled (`every:`) alerts over members' history.
//! - [`escalations`]: escalation steps as they fall due (pages, reminders,
//!   catch-up after downtime) and the delivery of email and webhook
//!   notices; the acknowledgements that stop them are
//!   [`crate::escalate::act`].
//! - [`housekeeping`]: the loop that runs `surveys` and `alerts` every few
//!   seconds.

pub mod alerts;
pub mod escalations;
pub(crate) mod housekeeping;
pub mod schedules;
pub mod surveys;
