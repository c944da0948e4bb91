//! The serde shapes of `hearth.yaml`, mirroring the file key for key
//! (`deny_unknown_fields`): nothing here is checked beyond what the YAML
//! types say; the section files turn them into settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::{LogFormat, ProviderSettings, SecretRef};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    #[serde(default)]
    pub(super) listen: Option<String>,
    #[serde(default)]
    pub(super) public_url: Option<String>,
    #[serde(default)]
    pub(super) database: Option<RawDatabase>,
    #[serde(default)]
    pub(super) rules_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) provider: Option<ProviderSettings>,
    #[serde(default)]
    pub(super) admin_tokens: Vec<SecretRef>,
    #[serde(default)]
    pub(super) log_format: Option<LogFormat>,
    #[serde(default)]
    pub(super) reload_debounce: Option<String>,
    #[serde(default)]
    pub(super) dispatch: Option<RawDispatch>,
    #[serde(default)]
    pub(super) intake: Option<RawIntake>,
    #[serde(default)]
    pub(super) replies: Option<RawReplies>,
    #[serde(default)]
    pub(super) notify: Option<RawNotify>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default)]
    pub(super) email: Option<RawEmail>,
    #[serde(default)]
    pub(super) webhook: Option<RawWebhook>,
    #[serde(default)]
    pub(super) critical_repeat: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    pub(super) host: String,
    #[serde(default)]
    pub(super) port: Option<u16>,
    pub(super) from: String,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password: Option<SecretRef>,
    #[serde(default)]
    pub(super) tls: Option<String>,
    #[serde(default)]
    pub(super) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) secret: SecretRef,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplies {
    #[serde(default)]
    pub(super) program: Option<String>,
    #[serde(default)]
    pub(super) contact: Option<String>,
    #[serde(default)]
    pub(super) frequency: Option<String>,
    #[serde(default)]
    pub(super) stop_words: Vec<String>,
    #[serde(default)]
    pub(super) start_words: Vec<String>,
    #[serde(default)]
    pub(super) help_words: Vec<String>,
    #[serde(default)]
    pub(super) unknown_sender_reply: Option<String>,
    #[serde(default)]
    pub(super) crisis_text: Option<String>,
    #[serde(default)]
    pub(super) follow_up_text: Option<String>,
    /// Per-language texts, keyed by language code (`es`, `fr`).
    #[serde(default)]
    pub(super) languages: std::collections::BTreeMap<String, RawLanguageReplies>,
}

/// `replies.languages.<code>`: what HELP and the STOP/START confirmations
/// say to members whose roster language is `<code>`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLanguageReplies {
    #[serde(default)]
    pub(super) program: Option<String>,
    #[serde(default)]
    pub(super) contact: Option<String>,
    #[serde(default)]
    pub(super) frequency: Option<String>,
    #[serde(default)]
    pub(super) help: Option<String>,
    #[serde(default)]
    pub(super) stop: Option<String>,
    #[serde(default)]
    pub(super) stop_topic: Option<String>,
    #[serde(default)]
    pub(super) start: Option<String>,
    #[serde(default)]
    pub(super) follow_up: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDispatch {
    #[serde(default)]
    pub(super) send_window: Option<RawWindow>,
    #[serde(default)]
    pub(super) segments_per_second: Option<u32>,
    #[serde(default)]
    pub(super) burst: Option<u32>,
    /// Gone: retries go by time (`retry_horizon`). Read only to say so.
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
    #[serde(default)]
    pub(super) retry_horizon: Option<String>,
    #[serde(default)]
    pub(super) backoff_initial: Option<String>,
    #[serde(default)]
    pub(super) backoff_max: Option<String>,
    #[serde(default)]
    pub(super) timeout: Option<String>,
    #[serde(default)]
    pub(super) concurrency: Option<usize>,
    #[serde(default)]
    pub(super) urgent_concurrency: Option<usize>,
    #[serde(default)]
    pub(super) breaker_threshold: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    pub(super) start: String,
    pub(super) end: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntake {
    #[serde(default)]
    pub(super) max_body: Option<usize>,
    #[serde(default)]
    pub(super) kannel_allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) path: PathBuf,
    #[serde(default)]
    pub(super) key: Option<SecretRef>,
}
