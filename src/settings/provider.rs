//! `provider:`: which SMS gateway sends the texts, and the secret
//! references each holds.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SecretRef;

/// Which SMS gateway sends the texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProviderSettings {
    /// Prints each outbound message instead of sending it.
    Console {
        /// A file to append to; standard output when absent.
        #[serde(default)]
        output: Option<PathBuf>,
    },
    Twilio {
        account_sid: String,
        auth_token: SecretRef,
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        messaging_service_sid: Option<String>,
        #[serde(default)]
        base_url: Option<String>,
    },
    Kannel {
        sendsms_url: String,
        username: String,
        password: SecretRef,
        from: String,
        /// Shared secret Kannel presents on MO and DLR callbacks.
        callback_secret: SecretRef,
    },
    Webhook {
        url: String,
        signing_key: SecretRef,
    },
}

impl ProviderSettings {
    /// The secret references this provider holds.
    pub(super) fn secrets(&self) -> Vec<&SecretRef> {
        match self {
            ProviderSettings::Console { .. } => vec![],
            ProviderSettings::Twilio { auth_token, .. } => vec![auth_token],
            ProviderSettings::Kannel {
                password,
                callback_secret,
                ..
            } => vec![password, callback_secret],
            ProviderSettings::Webhook { signing_key, .. } => vec![signing_key],
        }
    }

    pub(super) fn relative_to(self, base: &Path) -> ProviderSettings {
        match self {
            ProviderSettings::Console { output } => ProviderSettings::Console {
                output: output.map(|o| base.join(o)),
            },
            ProviderSettings::Twilio {
                account_sid,
                auth_token,
                from,
                messaging_service_sid,
                base_url,
            } => ProviderSettings::Twilio {
                account_sid,
                auth_token: auth_token.relative_to(base),
                from,
                messaging_service_sid,
                base_url,
            },
            ProviderSettings::Kannel {
                sendsms_url,
                username,
                password,
                from,
                callback_secret,
            } => ProviderSettings::Kannel {
                sendsms_url,
                username,
                password: password.relative_to(base),
                from,
                callback_secret: callback_secret.relative_to(base),
            },
            ProviderSettings::Webhook { url, signing_key } => ProviderSettings::Webhook {
                url,
                signing_key: signing_key.relative_to(base),
            },
        }
    }
}
