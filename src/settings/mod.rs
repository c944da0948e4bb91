//! Daemon settings (`hearth.yaml`), with `HEARTH_*` environment overrides.
//!
//! Not hot-reloaded: a change needs a restart. Secrets are never written
//! here, only referenced (`file:…`, `env:…`, `credential:…`); a literal
//! is rejected with a hint. Relative paths are relative to the settings
//! file's own directory, so a deployment folder can be moved whole.
//!
//! This file holds [`Settings`] and the order of loading: read the YAML
//! into the shapes of `raw`, lay the `env` overrides over it, then
//! check each section in its own file (`dispatch`, `intake`,
//! `replies`, `notify`, `database`, `provider`). Secret
//! references are `secret`'s.

mod database;
mod dispatch;
mod env;
mod intake;
mod notify;
mod provider;
mod raw;
mod replies;
mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::MessageFormatter;

use crate::domain::Duration;

pub use database::DatabaseSettings;
pub use dispatch::DispatchSettings;
pub use env::ENV_OVERRIDES;
pub use intake::IntakeSettings;
pub(crate) use notify::is_loopback_host;
pub use notify::{EmailSettings, EmailTls, NotifySettings, WebhookSettings};
pub use provider::ProviderSettings;
pub use replies::{DEFAULT_CRISIS_TEXT, LanguageReplies, ReplySettings, Said};
pub use secret::{SecretError, SecretRef, SecretRefError};

use env::Overridable;
use raw::RawSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) listen: SocketAddr,
    /// The URL providers call us at: Twilio signs over it and sends status
    /// callbacks to it; Kannel's DLR URLs point at it (Kannel must reach it).
    pub(crate) public_url: Option<String>,
    pub database: DatabaseSettings,
    pub(crate) rules_dir: PathBuf,
    pub provider: ProviderSettings,
    pub(crate) admin_tokens: Vec<SecretRef>,
    pub(crate) log_format: LogFormat,
    /// Quiet period after a file change before the rules are reloaded.
    pub(crate) reload_debounce: std::time::Duration,
    pub dispatch: DispatchSettings,
    pub(crate) intake: IntakeSettings,
    pub(crate) replies: ReplySettings,
    /// `notify:`: the channels escalations reach contacts on besides SMS.
    pub notify: NotifySettings,
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
        let raw = read_yaml(text, path)?;
        let referenced = env::referenced_variables(&raw);
        let env: Vec<(String, String)> = env.into_iter().collect();
        let RawSettings {
            listen,
            public_url,
            database,
            rules_dir,
            provider,
            admin_tokens,
            log_format,
            reload_debounce,
            dispatch,
            intake,
            replies,
            notify,
        } = raw;
        let (db_path, db_key) = database::path_and_key(database, &env);
        let mut o = Overridable {
            listen: listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            public_url,
            db_path,
            db_key,
            rules_dir: rules_dir.unwrap_or_else(|| PathBuf::from("rules")),
            log_format: log_format.unwrap_or_default(),
            reload_debounce: reload_debounce.unwrap_or_else(|| "200ms".to_owned()),
        };
        o.apply(env, &referenced)?;

        let invalid = |message: String| SettingsError::Invalid {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
        };
        let listen = parse_listen(&o.listen).map_err(invalid)?;
        check_public_url(o.public_url.as_deref()).map_err(invalid)?;
        let reload_debounce = parse_millis(&o.reload_debounce)
            .map_err(|e| invalid(format!("reload_debounce: {e}")))?;
        let dispatch =
            dispatch::dispatch_settings(dispatch.unwrap_or_default()).map_err(invalid)?;
        let intake = intake::intake_settings(intake.unwrap_or_default()).map_err(invalid)?;
        let replies = replies::reply_settings(replies.unwrap_or_default()).map_err(invalid)?;
        let notify = notify::notify_settings(notify.unwrap_or_default(), base).map_err(invalid)?;
        Ok(Settings {
            listen,
            public_url: o.public_url,
            database: DatabaseSettings {
                path: base.join(o.db_path),
                key: o.db_key.map(|k| k.relative_to(base)),
            },
            rules_dir: base.join(o.rules_dir),
            provider: provider
                .unwrap_or(ProviderSettings::Console { output: None })
                .relative_to(base),
            admin_tokens: admin_tokens
                .into_iter()
                .map(|t| t.relative_to(base))
                .collect(),
            log_format: o.log_format,
            reload_debounce,
            dispatch,
            intake,
            replies,
            notify,
        })
    }
}

/// The YAML of a settings file in its raw shapes; an empty file is all
/// defaults. An error is placed at its line and column in `path`.
fn read_yaml(text: &str, path: &Path) -> Result<RawSettings, SettingsError> {
    let raw = serde_saphyr::from_str::<Option<RawSettings>>(text).map_err(|e| {
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
    })?;
    Ok(raw.unwrap_or_default())
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid listen address `{text}`: expected IP:PORT, like `127.0.0.1:8080`")
    })
}

fn check_public_url(url: Option<&str>) -> Result<(), String> {
    match url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => Err(format!(
            "invalid public_url `{url}`: expected an absolute http(s) URL"
        )),
        _ => Ok(()),
    }
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

/// The one way the tests of every section parse settings.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use super::{Settings, SettingsError};

    /// `text` as `/etc/hearth/hearth.yaml`, with `env` as the environment.
    pub(super) fn parse(text: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::parse(
            text,
            Path::new("/etc/hearth/hearth.yaml"),
            Path::new("/etc/hearth"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::testing::parse;

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
    fn unknown_keys_and_bad_values_name_their_place() {
        let err = parse("listen: 127.0.0.1:80\nrule_dir: x\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:1: unknown field `rule_dir`"), "{err}");
        let err = parse("listen: localhost\n", &[]).unwrap_err().to_string();
        assert!(err.contains("invalid listen address `localhost`"), "{err}");
    }
}
