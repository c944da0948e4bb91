//! Domain values that parse, not validate: once built, they are valid.
//!
//! Each parser's error is a lowercase sentence that echoes the input, fit to
//! follow `path:line:column: error:`; the typed parsers (`Duration::parse`,
//! `Phone::parse`, `parse_timezone`) return an [`Invalid`] whose hint is the
//! fixed input where it can be worked out.

pub(crate) mod actor;
mod address;
pub(crate) mod bookkeeping;
mod channel;
pub mod clock;
mod cron;
mod duration;
pub mod incident;
mod invalid;
pub mod local_time;
pub mod member;
pub mod message;
pub mod normalize;
mod phone;
mod send_window;
pub(crate) mod session;
pub mod sms;
mod timezone;

pub use address::{parse_email, parse_webhook_url};
pub use channel::Channel;
pub use cron::CronSpec;
pub use duration::{Duration, parse_time_of_day};
pub use incident::Severity;
pub use invalid::Invalid;
pub use phone::Phone;
pub use send_window::SendWindow;
pub use timezone::{parse_timezone, timezone_names};
