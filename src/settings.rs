//! Daemon settings (`hearth.yaml`), with `HEARTH_*` environment overrides.
//!
//! Not hot-reloaded: a change needs a restart. Secrets are never written
//! here, only referenced (`file:…`, `env:…`, `credential:…`); a literal
//! is rejected with a hint. Relative paths are relative to the settings
//! file's own directory, so a deployment folder can be moved whole.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_saphyr::MessageFormatter;

use crate::domain::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The URL providers call us at: Twilio signs over it and sends status
    /// callbacks to it; Kannel's DLR URLs point at it (Kannel must reach it).
    pub public_url: Option<String>,
    pub database: DatabaseSettings,
    pub rules_dir: PathBuf,
    pub provider: ProviderSettings,
    pub admin_tokens: Vec<SecretRef>,
    pub log_format: LogFormat,
    /// Quiet period after a file change before the rules are reloaded.
    pub reload_debounce: std::time::Duration,
    pub dispatch: DispatchSettings,
    pub intake: IntakeSettings,
    pub replies: ReplySettings,
    /// `notify:`: the channels escalations reach contacts on besides SMS.
    pub notify: NotifySettings,
}

/// What the reply pipeline says on its own behalf (`replies:`): the
/// program details HELP and the STOP/START confirmations carry, extra
/// compliance words, and whether unknown senders get an answer. Defaults,
/// not constants: the clinic's compliance officer sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySettings {
    /// The program's name, as confirmations and HELP name it.
    pub program: String,
    /// Who to reach, for HELP ("call 555-0100", a web address).
    pub contact: String,
    /// How often members get texts, for HELP ("up to 1 msg/day").
    pub frequency: String,
    /// Extra opt-out, opt-in and help words (`ALTO`, `PARAR`, `AYUDA`),
    /// added to the standard ones, never replacing them.
    pub stop_words: Vec<String>,
    pub start_words: Vec<String>,
    pub help_words: Vec<String>,
    /// Sent to a number that is not a member's or a contact's; none by
    /// default (such texts are stored and counted only).
    pub unknown_sender_reply: Option<String>,
    /// The crisis reply when the crisis check matched and the rules give
    /// no `reply:` template for it (or it cannot be rendered).
    pub crisis_text: String,
}

/// The crisis reply Hearth sends when the rules name none (COMPLIANCE.md:
/// 988, 911, Crisis Text Line).
pub const DEFAULT_CRISIS_TEXT: &str = "If you are in danger or may act on thoughts of hurting yourself, call 911 now. Call or text 988 any time, day or night, for the 988 Suicide & Crisis Lifeline, or text HOME to 741741. A person from your group has been told.";

impl Default for ReplySettings {
    fn default() -> Self {
        ReplySettings {
            program: "Hearth support group texts".into(),
            contact: "your group facilitator".into(),
            frequency: "up to 1 msg/day".into(),
            stop_words: Vec::new(),
            start_words: Vec::new(),
            help_words: Vec::new(),
            unknown_sender_reply: None,
            crisis_text: DEFAULT_CRISIS_TEXT.into(),
        }
    }
}

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Routine messages go only between these local times of the
    /// recipient (default 08:00–21:00); outside, they wait. An end of
    /// 00:00 means midnight (`end: "24:00"`), so `00:00`–`24:00` is the
    /// whole day: no quiet hours. See [`DispatchSettings::in_send_window`].
    pub send_window: (chrono::NaiveTime, chrono::NaiveTime),
    /// SMS segments per second per sender (a US long code does 1).
    pub segments_per_second: u32,
    pub burst: u32,
    /// How long a message keeps being retried after provider errors,
    /// counted from when it was queued (its own expiry, when earlier,
    /// wins). Retries go by time, not by a count of attempts.
    pub retry_horizon: std::time::Duration,
    pub backoff_initial: std::time::Duration,
    pub backoff_max: std::time::Duration,
    /// Per provider request.
    pub timeout: std::time::Duration,
    /// Routine sends in flight at once.
    pub concurrency: usize,
    /// Crisis, compliance and escalation sends in flight at once, on a
    /// lane of their own that never waits behind routine sends.
    pub urgent_concurrency: usize,
    /// Consecutive provider errors that pause the whole provider (the
    /// circuit breaker) instead of burning each message's retries.
    pub breaker_threshold: u32,
}

impl DispatchSettings {
    /// Is the local time `t` inside the send window?
    pub fn in_send_window(&self, t: chrono::NaiveTime) -> bool {
        let (start, end) = self.send_window;
        t >= start && (end == chrono::NaiveTime::MIN || t < end)
    }
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            send_window: (
                chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("valid"),
                chrono::NaiveTime::from_hms_opt(21, 0, 0).expect("valid"),
            ),
            segments_per_second: 1,
            burst: 1,
            retry_horizon: std::time::Duration::from_secs(24 * 3600),
            backoff_initial: std::time::Duration::from_secs(30),
            backoff_max: std::time::Duration::from_secs(3600),
            timeout: std::time::Duration::from_secs(10),
            concurrency: 4,
            urgent_concurrency: 2,
            breaker_threshold: 5,
        }
    }
}

/// The HTTP intake (provider webhooks, admin API).
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Addresses Kannel may call the MO and DLR endpoints from.
    pub kannel_allow: Vec<std::net::IpAddr>,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            max_body: 64 * 1024,
            kannel_allow: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    /// Where the encryption key comes from; `None` lets the store generate a
    /// key file beside the database on first start.
    pub key: Option<SecretRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "invalid log format `{s}`: expected `text` or `json`"
            )),
        }
    }
}

/// `notify:`: email (SMTP) and webhook settings for escalation notices.
/// Either may be absent: a notice by a channel that is not configured is
/// recorded as failed ("not configured") and the others still go.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    pub email: Option<crate::escalate::email::EmailSettings>,
    pub webhook: Option<crate::escalate::webhook::WebhookSettings>,
}

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

/// Where a secret lives. `Debug` shows the reference, never the value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/NAME`.
    Credential(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::Credential(n) => write!(f, "credential:{n}"),
        }
    }
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let bad = |what: &str| format!("invalid secret reference `{text}`: {what}");
        if let Some(p) = text.strip_prefix("file:") {
            return if p.is_empty() {
                Err(bad("no path after `file:`"))
            } else {
                Ok(SecretRef::File(p.into()))
            };
        }
        if let Some(n) = text.strip_prefix("env:") {
            return if n.is_empty() {
                Err(bad("no variable after `env:`"))
            } else {
                Ok(SecretRef::Env(n.into()))
            };
        }
        if let Some(n) = text.strip_prefix("credential:") {
            return if n.is_empty() || n.contains('/') {
                Err(bad(
                    "a credential name is one path component, like `twilio-token`",
                ))
            } else {
                Ok(SecretRef::Credential(n.into()))
            };
        }
        // Do not echo the text: it may be the secret itself.
        Err("a literal secret is not allowed here\n  hint: write a reference instead: `file:/path/to/secret`, `env:VARIABLE` or `credential:NAME` (systemd LoadCredential=)".to_owned())
    }

    fn relative_to(self, base: &Path) -> SecretRef {
        match self {
            SecretRef::File(p) if p.is_relative() => SecretRef::File(base.join(p)),
            other => other,
        }
    }

    /// Reads the secret. A trailing newline in a file is dropped.
    pub fn resolve(&self) -> Result<SecretString, String> {
        let value = match self {
            SecretRef::File(p) => {
                std::fs::read_to_string(p).map_err(|e| format!("cannot read secret {self}: {e}"))?
            }
            SecretRef::Env(n) => std::env::var(n)
                .map_err(|_| format!("cannot read secret {self}: variable `{n}` is not set"))?,
            SecretRef::Credential(n) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!("cannot read secret {self}: $CREDENTIALS_DIRECTORY is not set (systemd sets it for LoadCredential=)")
                })?;
                std::fs::read_to_string(Path::new(&dir).join(n))
                    .map_err(|e| format!("cannot read secret {self}: {e}"))?
            }
        };
        let value = value.strip_suffix('\n').unwrap_or(&value).to_owned();
        if value.is_empty() {
            return Err(format!("secret {self} is empty"));
        }
        Ok(SecretString::from(value))
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SecretRef::parse(&text).map_err(de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    database: Option<RawDatabase>,
    #[serde(default)]
    rules_dir: Option<PathBuf>,
    #[serde(default)]
    provider: Option<ProviderSettings>,
    #[serde(default)]
    admin_tokens: Vec<SecretRef>,
    #[serde(default)]
    log_format: Option<LogFormat>,
    #[serde(default)]
    reload_debounce: Option<String>,
    #[serde(default)]
    dispatch: Option<RawDispatch>,
    #[serde(default)]
    intake: Option<RawIntake>,
    #[serde(default)]
    replies: Option<RawReplies>,
    #[serde(default)]
    notify: Option<RawNotify>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default)]
    email: Option<RawEmail>,
    #[serde(default)]
    webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    from: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<SecretRef>,
    #[serde(default)]
    tls: Option<String>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    secret: SecretRef,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReplies {
    #[serde(default)]
    program: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    frequency: Option<String>,
    #[serde(default)]
    stop_words: Vec<String>,
    #[serde(default)]
    start_words: Vec<String>,
    #[serde(default)]
    help_words: Vec<String>,
    #[serde(default)]
    unknown_sender_reply: Option<String>,
    #[serde(default)]
    crisis_text: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    #[serde(default)]
    send_window: Option<RawWindow>,
    #[serde(default)]
    segments_per_second: Option<u32>,
    #[serde(default)]
    burst: Option<u32>,
    /// Gone: retries go by time (`retry_horizon`). Read only to say so.
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    retry_horizon: Option<String>,
    #[serde(default)]
    backoff_initial: Option<String>,
    #[serde(default)]
    backoff_max: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    urgent_concurrency: Option<usize>,
    #[serde(default)]
    breaker_threshold: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: String,
    end: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    #[serde(default)]
    max_body: Option<usize>,
    #[serde(default)]
    kannel_allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: PathBuf,
    #[serde(default)]
    key: Option<SecretRef>,
}

/// The `HEARTH_*` variables read, each overriding one setting.
pub const ENV_OVERRIDES: &[&str] = &[
    "HEARTH_LISTEN",
    "HEARTH_PUBLIC_URL",
    "HEARTH_DATABASE_PATH",
    "HEARTH_DATABASE_KEY",
    "HEARTH_RULES_DIR",
    "HEARTH_LOG_FORMAT",
    "HEARTH_RELOAD_DEBOUNCE",
];

/// Variables that start with `HEARTH_` but are not settings overrides.
const ENV_OTHER: &[&str] = &[
    "HEARTH_SETTINGS",
    "HEARTH_LOG",
    "HEARTH_REQUIRE_COMPONENTS",
    #[cfg(feature = "fault-injection")]
    "HEARTH_FAULT_ABORT_AFTER_SENT",
    #[cfg(feature = "fault-injection")]
    "HEARTH_FAULT_ABORT_BEFORE_RECORD",
    #[cfg(feature = "fault-injection")]
    "HEARTH_FAULT_SCHEDULER_ABORT_AFTER_BATCHES",
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{0}")]
    Env(String),
}

impl Settings {
    /// Reads a settings file, then applies `HEARTH_*` overrides from `env`.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Settings::parse(&text, path, &base, env)
    }

    pub fn parse(
        text: &str,
        path: &Path,
        base: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let raw: RawSettings = serde_saphyr::from_str::<Option<RawSettings>>(text)
            .map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                SettingsError::Invalid {
                    path: path.to_owned(),
                    line,
                    column,
                    message: serde_saphyr::DefaultMessageFormatter
                        .format_message(e.without_snippet())
                        .into_owned(),
                }
            })?
            .unwrap_or(RawSettings {
                listen: None,
                public_url: None,
                database: None,
                rules_dir: None,
                provider: None,
                admin_tokens: Vec::new(),
                log_format: None,
                reload_debounce: None,
                dispatch: None,
                intake: None,
                replies: None,
                notify: None,
            });
        let invalid = |message: String| SettingsError::Invalid {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
        };

        // Variables the file names as secrets (`env:HEARTH_TWILIO_TOKEN`) are
        // not overrides.
        let referenced: Vec<String> = raw
            .admin_tokens
            .iter()
            .chain(raw.database.as_ref().and_then(|d| d.key.as_ref()))
            .chain(raw.provider.iter().flat_map(ProviderSettings::secrets))
            .chain(raw.notify.iter().flat_map(RawNotify::secrets))
            .filter_map(|r| match r {
                SecretRef::Env(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        let mut listen = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let mut public_url = raw.public_url;
        let env: Vec<(String, String)> = env.into_iter().collect();
        // Under systemd, StateDirectory= names a writable folder; the
        // settings folder (/etc/hearth) is read-only there.
        let state_dir = env
            .iter()
            .find(|(k, _)| k == "STATE_DIRECTORY")
            .map(|(_, v)| PathBuf::from(v));
        let (mut db_path, mut db_key) = match raw.database {
            Some(d) => (d.path, d.key),
            None => (state_dir.unwrap_or_default().join("hearth.db"), None),
        };
        let mut rules_dir = raw.rules_dir.unwrap_or_else(|| PathBuf::from("rules"));
        let mut log_format = raw.log_format.unwrap_or_default();
        let mut debounce = raw.reload_debounce.unwrap_or_else(|| "200ms".to_owned());

        for (name, value) in env {
            if !name.starts_with("HEARTH_")
                || ENV_OTHER.contains(&name.as_str())
                || referenced.contains(&name)
            {
                continue;
            }
            let bad = |e: String| SettingsError::Env(format!("{name}: {e}"));
            match name.as_str() {
                "HEARTH_LISTEN" => listen = value,
                "HEARTH_PUBLIC_URL" => public_url = Some(value),
                "HEARTH_DATABASE_PATH" => db_path = PathBuf::from(value),
                "HEARTH_DATABASE_KEY" => db_key = Some(SecretRef::parse(&value).map_err(bad)?),
                "HEARTH_RULES_DIR" => rules_dir = PathBuf::from(value),
                "HEARTH_LOG_FORMAT" => log_format = value.parse().map_err(bad)?,
                "HEARTH_RELOAD_DEBOUNCE" => debounce = value,
                _ => {
                    return Err(SettingsError::Env(format!(
                        "unknown environment variable {name}\n  hint: Hearth reads {}",
                        ENV_OVERRIDES.join(", ")
                    )));
                }
            }
        }

        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(format!(
                "invalid listen address `{listen}`: expected IP:PORT, like `127.0.0.1:8080`"
            ))
        })?;
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(format!(
                "invalid public_url `{url}`: expected an absolute http(s) URL"
            )));
        }
        let reload_debounce =
            parse_millis(&debounce).map_err(|e| invalid(format!("reload_debounce: {e}")))?;
        let dispatch = dispatch_settings(raw.dispatch.unwrap_or_default()).map_err(invalid)?;
        let intake = intake_settings(raw.intake.unwrap_or_default()).map_err(invalid)?;
        let replies = reply_settings(raw.replies.unwrap_or_default()).map_err(invalid)?;
        let notify = notify_settings(raw.notify.unwrap_or_default(), base).map_err(invalid)?;
        Ok(Settings {
            listen,
            public_url,
            database: DatabaseSettings {
                path: base.join(db_path),
                key: db_key.map(|k| k.relative_to(base)),
            },
            rules_dir: base.join(rules_dir),
            provider: raw
                .provider
                .unwrap_or(ProviderSettings::Console { output: None })
                .relative_to(base),
            admin_tokens: raw
                .admin_tokens
                .into_iter()
                .map(|t| t.relative_to(base))
                .collect(),
            log_format,
            reload_debounce,
            dispatch,
            intake,
            replies,
            notify,
        })
    }
}

impl ProviderSettings {
    /// The secret references this provider holds.
    fn secrets(&self) -> Vec<&SecretRef> {
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

    fn relative_to(self, base: &Path) -> ProviderSettings {
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

fn dispatch_settings(raw: RawDispatch) -> Result<DispatchSettings, String> {
    let mut d = DispatchSettings::default();
    if let Some(w) = raw.send_window {
        let start = crate::domain::parse_time_of_day(&w.start)
            .map_err(|e| format!("dispatch.send_window.start: {e}"))?;
        // `24:00` is midnight at the end of the day, kept as 00:00.
        let end = if w.end.trim() == "24:00" {
            chrono::NaiveTime::MIN
        } else {
            crate::domain::parse_time_of_day(&w.end)
                .map_err(|e| format!("dispatch.send_window.end: {e}"))?
        };
        if end != chrono::NaiveTime::MIN && start >= end {
            return Err(format!(
                "dispatch.send_window: start {} must be before end {}\n  hint: for no quiet hours at all, use start \"00:00\" and end \"24:00\"",
                w.start, w.end
            ));
        }
        d.send_window = (start, end);
    }
    if let Some(n) = raw.segments_per_second {
        if n == 0 {
            return Err("dispatch.segments_per_second must be at least 1".into());
        }
        d.segments_per_second = n;
    }
    if let Some(n) = raw.burst {
        d.burst = n.max(1);
    }
    if let Some(n) = raw.max_attempts {
        return Err(format!(
            "dispatch.max_attempts ({n}) is no longer read: provider errors are retried by time\n  hint: set dispatch.retry_horizon (default 24h) instead"
        ));
    }
    for (name, value, slot, default) in [
        ("concurrency", raw.concurrency, &mut d.concurrency, 4),
        (
            "urgent_concurrency",
            raw.urgent_concurrency,
            &mut d.urgent_concurrency,
            2,
        ),
    ] {
        if let Some(n) = value {
            if n == 0 || n > 256 {
                return Err(format!(
                    "dispatch.{name}: {n} is out of range\n  hint: between 1 and 256 (default {default})"
                ));
            }
            *slot = n;
        }
    }
    if let Some(n) = raw.breaker_threshold {
        d.breaker_threshold = n.max(1);
    }
    for (name, text, slot) in [
        ("retry_horizon", raw.retry_horizon, &mut d.retry_horizon),
        (
            "backoff_initial",
            raw.backoff_initial,
            &mut d.backoff_initial,
        ),
        ("backoff_max", raw.backoff_max, &mut d.backoff_max),
        ("timeout", raw.timeout, &mut d.timeout),
    ] {
        if let Some(t) = text {
            *slot = parse_millis(&t).map_err(|e| format!("dispatch.{name}: {e}"))?;
        }
    }
    Ok(d)
}

fn reply_settings(raw: RawReplies) -> Result<ReplySettings, String> {
    let d = ReplySettings::default();
    let text = |key: &str, v: Option<String>, default: String| -> Result<String, String> {
        match v {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Err(format!(
                "replies.{key} is empty\n  hint: leave `{key}` out for the default `{default}`"
            )),
            Some(v) => Ok(v.trim().to_owned()),
        }
    };
    let words = |key: &str, v: Vec<String>| -> Result<Vec<String>, String> {
        v.into_iter()
            .map(|w| {
                let folded = crate::domain::normalize::phrase_words(&w).join(" ");
                if folded.is_empty() {
                    Err(format!(
                        "replies.{key}: `{w}` has no letters or digits to match\n  hint: write the word a member would text, like `ALTO`"
                    ))
                } else {
                    Ok(folded)
                }
            })
            .collect()
    };
    Ok(ReplySettings {
        program: text("program", raw.program, d.program)?,
        contact: text("contact", raw.contact, d.contact)?,
        frequency: text("frequency", raw.frequency, d.frequency)?,
        stop_words: words("stop_words", raw.stop_words)?,
        start_words: words("start_words", raw.start_words)?,
        help_words: words("help_words", raw.help_words)?,
        unknown_sender_reply: match raw.unknown_sender_reply {
            Some(t) if t.trim().is_empty() => {
                return Err("replies.unknown_sender_reply is empty\n  hint: leave it out to send unknown senders nothing".into());
            }
            t => t.map(|t| t.trim().to_owned()),
        },
        crisis_text: {
            let t = text("crisis_text", raw.crisis_text, d.crisis_text)?;
            if !t.contains("988") && !t.contains("911") {
                return Err(format!(
                    "replies.crisis_text does not give 988 or 911: `{t}`\n  hint: a crisis reply must say how to reach help now, like the default: {DEFAULT_CRISIS_TEXT}"
                ));
            }
            t
        },
    })
}

impl RawNotify {
    /// The secret references the `notify:` section holds.
    fn secrets(&self) -> Vec<&SecretRef> {
        let email = self.email.as_ref().and_then(|e| e.password.as_ref());
        let webhook = self.webhook.as_ref().map(|w| &w.secret);
        email.into_iter().chain(webhook).collect()
    }
}

/// `notify:`: checked here so a mistake stops the start, not the first
/// crisis notice. Secret values are read later, by the channels.
fn notify_settings(raw: RawNotify, base: &Path) -> Result<NotifySettings, String> {
    use crate::escalate::email::{EmailSettings, EmailTls, is_loopback_host};
    use crate::escalate::webhook::WebhookSettings;

    let timeout = |key: &str, text: Option<String>| -> Result<std::time::Duration, String> {
        let Some(text) = text else {
            return Ok(std::time::Duration::from_secs(10));
        };
        let t = parse_millis(&text).map_err(|e| format!("notify.{key}.timeout: {e}"))?;
        if t.is_zero() {
            return Err(format!(
                "notify.{key}.timeout: `{text}` is zero\n  hint: leave it out for the default 10s"
            ));
        }
        Ok(t)
    };
    let email = match raw.email {
        None => None,
        Some(e) => {
            let host = e.host.trim();
            if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
                return Err(format!(
                    "notify.email.host: `{}` is not a host name\n  hint: write the server's name alone, like `smtp.clinic.example` (the port goes in `port:`)",
                    e.host
                ));
            }
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if host.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!(
                    "notify.email.host: `{host}` holds a port\n  hint: write the host alone and the port in `port:` (default 587)"
                ));
            }
            let port = e.port.unwrap_or(587);
            if port == 0 {
                return Err("notify.email.port: 0 is not a port\n  hint: 587 (the default) for STARTTLS submission".into());
            }
            if let Err(err) = e.from.parse::<lettre::message::Mailbox>() {
                return Err(format!(
                    "notify.email.from: `{}` is not an email address: {err}\n  hint: write `Hearth <hearth@clinic.example>` or `hearth@clinic.example`",
                    e.from
                ));
            }
            let tls = match e.tls.as_deref().map(str::trim) {
                None | Some("starttls") => EmailTls::Starttls,
                Some("none") if is_loopback_host(host) => EmailTls::None,
                Some("none") => {
                    return Err(format!(
                        "notify.email.tls: `none` with host `{host}`: plain SMTP is allowed only to a relay on loopback (localhost, 127.0.0.1, ::1)\n  hint: remove `tls: none`; the default `starttls` encrypts the connection"
                    ));
                }
                Some(other) => {
                    return Err(format!(
                        "notify.email.tls: `{other}` is not a TLS mode\n  hint: `starttls` (the default) or `none` (loopback only)"
                    ));
                }
            };
            let username = match e.username {
                Some(u) if u.trim().is_empty() => {
                    return Err("notify.email.username is empty\n  hint: leave out both username and password to send without logging in".into());
                }
                u => u,
            };
            match (&username, &e.password) {
                (Some(_), None) => {
                    return Err("notify.email.username is set but notify.email.password is not\n  hint: add `password: env:HEARTH_SMTP_PASSWORD` (or `file:`, `credential:`)".into());
                }
                (None, Some(_)) => {
                    return Err("notify.email.password is set but notify.email.username is not\n  hint: add `username:`, the login the server expects".into());
                }
                _ => {}
            }
            if tls == EmailTls::None && e.ca_file.is_some() {
                return Err("notify.email.ca_file is set but notify.email.tls is `none`\n  hint: remove one of them".into());
            }
            Some(EmailSettings {
                host: host.to_owned(),
                port,
                from: e.from.trim().to_owned(),
                username,
                password: e.password.map(|p| p.relative_to(base)),
                tls,
                ca_file: e.ca_file.map(|p| base.join(p)),
                timeout: timeout("email", e.timeout)?,
            })
        }
    };
    let webhook = match raw.webhook {
        None => None,
        Some(w) => Some(WebhookSettings {
            secret: w.secret.relative_to(base),
            timeout: timeout("webhook", w.timeout)?,
        }),
    };
    Ok(NotifySettings { email, webhook })
}

fn intake_settings(raw: RawIntake) -> Result<IntakeSettings, String> {
    let mut i = IntakeSettings::default();
    if let Some(n) = raw.max_body {
        i.max_body = n;
    }
    if let Some(list) = raw.kannel_allow {
        i.kannel_allow = list
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("intake.kannel_allow: `{a}` is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(i)
}

/// `200ms`, or a rules-style duration (`1s`).
fn parse_millis(text: &str) -> Result<std::time::Duration, String> {
    if let Some(ms) = text.strip_suffix("ms")
        && let Ok(n) = ms.parse::<u64>()
    {
        return Ok(std::time::Duration::from_millis(n));
    }
    text.parse::<Duration>()
        .map(Duration::std)
        .map_err(|e| format!("{e} (or milliseconds, like `200ms`)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::parse(
            text,
            Path::new("/etc/hearth/hearth.yaml"),
            Path::new("/etc/hearth"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_fill_an_empty_file_and_paths_are_relative_to_it() {
        let s = parse("", &[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.rules_dir, PathBuf::from("/etc/hearth/rules"));
        assert_eq!(s.database.path, PathBuf::from("/etc/hearth/hearth.db"));
        assert!(matches!(
            s.provider,
            ProviderSettings::Console { output: None }
        ));
        assert_eq!(s.reload_debounce, std::time::Duration::from_millis(200));
    }

    #[test]
    fn the_default_database_lives_in_systemds_state_directory() {
        let s = parse("", &[("STATE_DIRECTORY", "/var/lib/hearth")]).unwrap();
        assert_eq!(s.database.path, PathBuf::from("/var/lib/hearth/hearth.db"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = parse(
            "listen: 127.0.0.1:9000\nrules_dir: /srv/rules\n",
            &[
                ("HEARTH_LISTEN", "127.0.0.1:9100"),
                ("HEARTH_LOG_FORMAT", "json"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.rules_dir, PathBuf::from("/srv/rules"));
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_hearth_variable_is_an_error_naming_it() {
        let err = parse("", &[("HEARTH_LISTN", "x")]).unwrap_err().to_string();
        assert!(err.contains("HEARTH_LISTN"), "{err}");
        assert!(err.contains("HEARTH_LISTEN"), "{err}");
    }

    #[test]
    fn a_hearth_variable_named_by_an_env_reference_is_not_an_unknown_override() {
        let text = "provider:\n  kind: twilio\n  account_sid: AC1\n  auth_token: env:HEARTH_TWILIO_TOKEN\n";
        assert!(parse(text, &[("HEARTH_TWILIO_TOKEN", "secret")]).is_ok());
        assert!(parse("", &[("HEARTH_TWILIO_TOKEN", "secret")]).is_err());
    }

    #[test]
    fn a_literal_secret_is_rejected_without_echoing_it() {
        let text = "provider:\n  kind: twilio\n  account_sid: AC123\n  auth_token: hunter2secret\n";
        let err = parse(text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("a literal secret is not allowed here"),
            "{err}"
        );
        // serde buffers internally tagged enums, so the place is the
        // provider mapping rather than the key itself.
        assert!(
            err.contains("hearth.yaml:2:"),
            "points at the provider: {err}"
        );
        assert!(!err.contains("hunter2secret"), "echoed the secret: {err}");
    }

    #[test]
    fn secret_references_resolve_and_debug_shows_only_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", dir.path().join("token").display())).unwrap();
        let secret = r.resolve().unwrap();
        assert_eq!(secret.expose_secret(), "s3cret");
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert!(format!("{r:?}").starts_with("SecretRef(file:"));
        let missing = SecretRef::Env("HEARTH_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert!(missing.contains("is not set"), "{missing}");
    }

    #[test]
    fn the_send_window_can_be_the_whole_day_and_dispatch_limits_are_checked() {
        let s = parse(
            "dispatch: { send_window: { start: \"00:00\", end: \"24:00\" }, concurrency: 8, urgent_concurrency: 3, retry_horizon: 2h, breaker_threshold: 2 }\n",
            &[],
        )
        .unwrap();
        let d = &s.dispatch;
        assert_eq!(
            d.send_window,
            (chrono::NaiveTime::MIN, chrono::NaiveTime::MIN)
        );
        for h in [0, 3, 12, 23] {
            let t = chrono::NaiveTime::from_hms_opt(h, 59, 59).unwrap();
            assert!(d.in_send_window(t), "{t}");
        }
        assert_eq!(
            (d.concurrency, d.urgent_concurrency, d.breaker_threshold),
            (8, 3, 2)
        );
        assert_eq!(d.retry_horizon, std::time::Duration::from_secs(7200));
        let default = DispatchSettings::default();
        assert!(!default.in_send_window(chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap()));
        assert!(default.in_send_window(chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap()));

        let err = parse("dispatch: { max_attempts: 3 }\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dispatch.max_attempts") && err.contains("retry_horizon"),
            "{err}"
        );
        let err = parse("dispatch: { concurrency: 0 }\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dispatch.concurrency: 0"), "{err}");
        let err = parse(
            "dispatch: { send_window: { start: \"21:00\", end: \"08:00\" } }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("24:00"), "{err}");
    }

    #[test]
    fn replies_have_clinic_defaults_take_extra_words_and_refuse_what_cannot_work() {
        let d = parse("", &[]).unwrap().replies;
        assert_eq!(d, ReplySettings::default());
        assert!(d.crisis_text.contains("988") && d.crisis_text.contains("911"));
        assert_eq!(d.unknown_sender_reply, None);

        let s = parse(
            "replies: { program: Maple texts, contact: call 555-0100, stop_words: [ALTO, \"Opt-Out Please\"], unknown_sender_reply: Not monitored. }\n",
            &[],
        )
        .unwrap()
        .replies;
        assert_eq!(s.program, "Maple texts");
        assert_eq!(s.contact, "call 555-0100");
        assert_eq!(s.frequency, ReplySettings::default().frequency);
        assert_eq!(s.stop_words, vec!["alto", "opt out please"]);
        assert_eq!(s.unknown_sender_reply.as_deref(), Some("Not monitored."));

        for (yaml, names) in [
            ("replies: { program: \"  \" }", "replies.program is empty"),
            (
                "replies: { stop_words: [\"!!\"] }",
                "replies.stop_words: `!!`",
            ),
            (
                "replies: { crisis_text: Please call us. }",
                "replies.crisis_text does not give 988 or 911",
            ),
            (
                "replies: { unknown_sender_reply: \"\" }",
                "unknown_sender_reply is empty",
            ),
            ("replies: { programme: x }", "programme"),
        ] {
            let err = parse(&format!("{yaml}\n"), &[]).unwrap_err().to_string();
            assert!(err.contains(names), "{yaml}: {err}");
        }
    }

    #[test]
    fn fault_injection_variables_are_known_only_in_a_build_that_has_the_hooks() {
        for var in [
            "HEARTH_FAULT_ABORT_AFTER_SENT",
            "HEARTH_FAULT_ABORT_BEFORE_RECORD",
            "HEARTH_FAULT_SCHEDULER_ABORT_AFTER_BATCHES",
        ] {
            let r = parse("", &[(var, "7")]);
            assert_eq!(
                r.is_ok(),
                cfg!(feature = "fault-injection"),
                "{var}: {:?}",
                r.err().map(|e| e.to_string())
            );
        }
    }

    #[test]
    fn the_notify_section_parses_with_defaults_and_paths_relative_to_the_file() {
        let s = parse("", &[]).unwrap();
        assert!(s.notify.email.is_none() && s.notify.webhook.is_none());

        let text = "notify:\n  email:\n    host: smtp.clinic.example\n    from: Hearth <hearth@clinic.example>\n    username: hearth\n    password: env:HEARTH_SMTP_PASSWORD\n    ca_file: ca.pem\n  webhook:\n    secret: file:webhook.key\n    timeout: 3s\n";
        let s = parse(text, &[("HEARTH_SMTP_PASSWORD", "pw")]).unwrap();
        let e = s.notify.email.unwrap();
        assert_eq!(e.host, "smtp.clinic.example");
        assert_eq!(e.port, 587);
        assert_eq!(e.tls, crate::escalate::email::EmailTls::Starttls);
        assert_eq!(e.timeout, std::time::Duration::from_secs(10));
        assert_eq!(e.username.as_deref(), Some("hearth"));
        assert_eq!(
            e.password,
            Some(SecretRef::Env("HEARTH_SMTP_PASSWORD".into()))
        );
        assert_eq!(e.ca_file, Some(PathBuf::from("/etc/hearth/ca.pem")));
        let w = s.notify.webhook.unwrap();
        assert_eq!(
            w.secret,
            SecretRef::File(PathBuf::from("/etc/hearth/webhook.key"))
        );
        assert_eq!(w.timeout, std::time::Duration::from_secs(3));

        let s = parse(
            "notify: { email: { host: localhost, port: 2525, from: a@b.example, tls: none, timeout: 500ms } }\n",
            &[],
        )
        .unwrap();
        let e = s.notify.email.unwrap();
        assert_eq!(
            (e.port, e.tls),
            (2525, crate::escalate::email::EmailTls::None)
        );
        assert_eq!(e.timeout, std::time::Duration::from_millis(500));
    }

    #[test]
    fn a_hearth_variable_named_by_a_notify_secret_is_not_an_unknown_override() {
        let text = "notify: { webhook: { secret: env:HEARTH_WEBHOOK_SECRET } }\n";
        assert!(parse(text, &[("HEARTH_WEBHOOK_SECRET", "k")]).is_ok());
        assert!(parse("", &[("HEARTH_WEBHOOK_SECRET", "k")]).is_err());
    }

    #[test]
    fn each_bad_notify_value_gives_an_error_naming_its_setting() {
        let email = |rest: &str| {
            format!(
                "notify: {{ email: {{ host: smtp.clinic.example, from: a@b.example, {rest} }} }}\n"
            )
        };
        for (yaml, names) in [
            (
                email("tls: none"),
                "notify.email.tls: `none` with host `smtp.clinic.example`",
            ),
            (email("tls: ssl"), "notify.email.tls: `ssl`"),
            (email("port: 0"), "notify.email.port: 0"),
            (email("timeout: soon"), "notify.email.timeout: "),
            (email("timeout: 0ms"), "notify.email.timeout: `0ms` is zero"),
            (
                email("username: hearth"),
                "notify.email.username is set but notify.email.password is not",
            ),
            (
                email("password: env:X"),
                "notify.email.password is set but notify.email.username is not",
            ),
            (email("username: \"\""), "notify.email.username is empty"),
            (email("colour: red"), "unknown field `colour`"),
            (
                "notify: { email: { host: smtp.clinic.example, from: nobody } }\n".to_owned(),
                "notify.email.from: `nobody`",
            ),
            (
                "notify: { email: { host: \"smtp.clinic.example:587\", from: a@b.example } }\n"
                    .to_owned(),
                "notify.email.host: `smtp.clinic.example:587` holds a port",
            ),
            (
                "notify: { email: { host: \"smtp clinic\", from: a@b.example } }\n".to_owned(),
                "notify.email.host: `smtp clinic`",
            ),
            (
                "notify: { email: { from: a@b.example } }\n".to_owned(),
                "missing field `host`",
            ),
            (
                "notify: { webhook: { timeout: 2s } }\n".to_owned(),
                "missing field `secret`",
            ),
            (
                "notify: { webhook: { secret: hunter2 } }\n".to_owned(),
                "a literal secret is not allowed here",
            ),
            (
                "notify: { webhook: { secret: env:K, timeout: -1 } }\n".to_owned(),
                "notify.webhook.timeout: ",
            ),
            ("notify: { sms: {} }\n".to_owned(), "unknown field `sms`"),
        ] {
            let err = parse(&yaml, &[]).unwrap_err().to_string();
            assert!(err.contains(names), "{yaml}: {err}");
            assert!(!err.contains("hunter2"), "echoed a secret: {err}");
        }
    }

    /// A small xorshift generator: reproducible random cases, no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn random_notify_sections_never_panic_the_settings_parser() {
        let keys = [
            "host", "port", "from", "username", "password", "tls", "ca_file", "timeout", "secret",
            "email", "webhook", "bogus", "",
        ];
        let values = [
            "smtp.clinic.example",
            "localhost",
            "127.0.0.1",
            "::1",
            "587",
            "0",
            "70000",
            "-1",
            "starttls",
            "none",
            "NONE",
            "env:HEARTH_SMTP_PASSWORD",
            "env:",
            "file:",
            "file:secret",
            "credential:a/b",
            "hunter2",
            "a@b.example",
            "Hearth <a@b.example>",
            "<>",
            "10s",
            "0s",
            "200ms",
            "99999999999999999999s",
            "\"\"",
            "~",
            "[]",
            "{}",
            "[1, 2]",
            "{ host: x }",
            "é\u{301}",
            "\"\\u0000\"",
            "&a",
            "*a",
            "!!binary x",
            "|",
        ];
        let mut rng = Rng(0x4E4F_5449_4659_0001);
        for case in 0..3000 {
            let mut text = String::from("notify:\n");
            for section in ["email", "webhook"] {
                if rng.next().is_multiple_of(4) {
                    continue;
                }
                text.push_str(&format!("  {section}:\n"));
                for _ in 0..(rng.next() % 9) {
                    let indent = rng.pick(&["    ", "    ", "    ", "  ", "      ", ""]);
                    text.push_str(&format!(
                        "{indent}{}: {}\n",
                        rng.pick(&keys),
                        rng.pick(&values)
                    ));
                }
            }
            if rng.next().is_multiple_of(10) {
                let cut = (rng.next() as usize) % (text.len() + 1);
                text.truncate(text.floor_char_boundary(cut));
            }
            let result = std::panic::catch_unwind(|| parse(&text, &[]));
            match result {
                Err(_) => panic!("case {case} panicked:\n{text}"),
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty(), "case {case}: empty error\n{text}");
                    assert!(
                        !msg.contains("hunter2"),
                        "case {case} echoed a secret: {msg}"
                    );
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_place() {
        let err = parse("listen: 127.0.0.1:80\nrule_dir: x\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:1: unknown field `rule_dir`"), "{err}");
        let err = parse("listen: localhost\n", &[]).unwrap_err().to_string();
        assert!(err.contains("invalid listen address `localhost`"), "{err}");
    }
}
