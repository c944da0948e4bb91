//! Why a provider could not be built from the settings: every refusal of
//! an adapter's settings, a secret that cannot be read, an output that
//! cannot be opened, each with the message the operator reads at start.
//! Messages never carry a secret's value.

use std::path::PathBuf;

use crate::settings::SecretError;

/// Why a provider could not be set up. Start-up reports it and exits.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A secret the provider needs (token, password, key) cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),

    // Console.
    #[error("cannot open console output {}: {source}", path.display())]
    ConsoleOutput {
        path: PathBuf,
        source: std::io::Error,
    },

    // Twilio.
    #[error("the twilio provider needs `kind: twilio` settings")]
    NotTwilio,
    #[error(
        "twilio account_sid `{0}` is not an account SID\n  hint: it is `AC` followed by 32 hex digits, as shown in the Twilio Console"
    )]
    TwilioAccountSid(String),
    #[error(
        "twilio messaging_service_sid `{0}` is not a Messaging Service SID\n  hint: it is `MG` followed by 32 hex digits"
    )]
    TwilioServiceSid(String),
    #[error(
        "twilio settings give both `from` and `messaging_service_sid`\n  hint: keep exactly one: a sender number, or the Messaging Service that picks one"
    )]
    TwilioBothSenders,
    #[error(
        "twilio settings give neither `from` nor `messaging_service_sid`\n  hint: set `from: \"+15555550100\"` (a Twilio number) or `messaging_service_sid: MG…`"
    )]
    TwilioNoSender,
    #[error("twilio base_url `{0}` is not an http(s) URL")]
    TwilioBaseUrl(String),

    // Kannel.
    #[error("not a kannel provider")]
    NotKannel,
    #[error(
        "kannel sendsms_url `{0}` is not an http(s) URL\n  hint: smsbox's sendsms interface, like `http://127.0.0.1:13013/cgi-bin/sendsms`"
    )]
    KannelSendsmsUrl(String),
    #[error(
        "kannel sendsms_url must not carry the password\n  hint: give it as `password: file:…` (or env:/credential:)"
    )]
    KannelPasswordInUrl,
    #[error("kannel username is empty")]
    KannelNoUsername,
    #[error(
        "kannel `from` is empty\n  hint: the number or sender id texts come from, like `+15555550100`"
    )]
    KannelNoSender,
    #[error(
        "the kannel provider needs `public_url`: Kannel reports delivery to {{public_url}}/webhooks/kannel/dlr\n  hint: the address Kannel reaches Hearth at, like `http://10.0.0.5:8080`"
    )]
    KannelNoPublicUrl,
    #[error(
        "public_url `{0}` contains `%`, which Kannel would read as an escape in the delivery-report URL"
    )]
    KannelPublicUrlPercent(String),
    /// The callback secret (never echoed) has a character Kannel's URLs
    /// give a meaning to.
    #[error(
        "the kannel callback_secret may only hold letters, digits, `-`, `.`, `_` and `~`\n  hint: it travels verbatim in Kannel's URLs, where `%` and `&` have meaning; `openssl rand -hex 24` makes a good one"
    )]
    CallbackSecretCharacters,
    /// The callback secret is this many characters: too few.
    #[error(
        "the kannel callback_secret is {0} characters; use at least 16\n  hint: `openssl rand -hex 24` makes a good one"
    )]
    CallbackSecretTooShort(usize),

    // Webhook.
    #[error("webhook provider url `{0}` is not an http(s) URL")]
    WebhookUrl(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_setting_and_keep_their_hints() {
        let text = SetupError::KannelNoPublicUrl.to_string();
        assert!(
            text.starts_with("the kannel provider needs `public_url`: Kannel reports delivery to {public_url}/webhooks/kannel/dlr\n  hint: "),
            "{text}"
        );
        assert_eq!(
            SetupError::CallbackSecretTooShort(5).to_string(),
            "the kannel callback_secret is 5 characters; use at least 16\n  hint: `openssl rand -hex 24` makes a good one"
        );
        assert_eq!(
            SetupError::WebhookUrl("ftp://x".into()).to_string(),
            "webhook provider url `ftp://x` is not an http(s) URL"
        );
    }
}
