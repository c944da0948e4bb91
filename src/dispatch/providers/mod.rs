//! One file per SMS gateway adapter, each implementing
//! [`super::provider::Provider`] with the same method shape.

pub mod console;
pub(crate) mod kannel;
pub mod twilio;
pub mod webhook;
