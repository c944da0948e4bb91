//! The ways an escalation reaches a person: a text, an email, a signed
//! webhook.

use serde::{Deserialize, Serialize};

/// How a notice reaches a contact.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
    Webhook,
}
