//! Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
//! (Being written: see the Kannel/Twilio briefs. Placeholder that refuses.)

use crate::dispatch::provider::{Accepted, Outgoing, Provider, SendError};
use crate::settings::{ProviderSettings, Settings};

pub struct TwilioProvider;

impl TwilioProvider {
    pub fn from_settings(_p: &ProviderSettings, _s: &Settings, _timeout: std::time::Duration) -> Result<TwilioProvider, String> {
        Err("the twilio provider is not built yet".into())
    }
}

impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, _msg: &Outgoing) -> Result<Accepted, SendError> {
        Err(SendError::permanent("the twilio provider is not built yet"))
    }
}
