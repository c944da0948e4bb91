//! Kannel: `sendsms`.
//! (Being written: see the Kannel/Twilio briefs. Placeholder that refuses.)

use crate::dispatch::provider::{Accepted, Outgoing, Provider, SendError};
use crate::settings::{ProviderSettings, Settings};

pub struct KannelProvider;

impl KannelProvider {
    pub fn from_settings(_p: &ProviderSettings, _s: &Settings, _timeout: std::time::Duration) -> Result<KannelProvider, String> {
        Err("the kannel provider is not built yet".into())
    }
}

impl Provider for KannelProvider {
    fn name(&self) -> &'static str {
        "kannel"
    }

    async fn send(&self, _msg: &Outgoing) -> Result<Accepted, SendError> {
        Err(SendError::permanent("the kannel provider is not built yet"))
    }
}
