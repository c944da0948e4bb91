//! `HEARTH_*` environment overrides: which variables override which
//! setting, which belong to Hearth without being overrides, and laying
//! them over what the file says. A `HEARTH_*` variable that is neither,
//! and that the file does not name as a secret, is an error: it is most
//! likely a misspelt override.

use std::path::PathBuf;

use super::raw::{RawNotify, RawSettings};
use super::{LogFormat, ProviderSettings, SecretRef, SettingsError};

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

/// The settings a `HEARTH_*` variable can override, as the file (or the
/// default) gives them until [`Overridable::apply`] lays the environment
/// over them.
pub(super) struct Overridable {
    pub(super) listen: String,
    pub(super) public_url: Option<String>,
    pub(super) db_path: PathBuf,
    pub(super) db_key: Option<SecretRef>,
    pub(super) rules_dir: PathBuf,
    pub(super) log_format: LogFormat,
    pub(super) reload_debounce: String,
}

/// Variables the file names as secrets (`env:HEARTH_TWILIO_TOKEN`): they
/// are not overrides.
pub(super) fn referenced_variables(raw: &RawSettings) -> Vec<String> {
    raw.admin_tokens
        .iter()
        .chain(raw.database.as_ref().and_then(|d| d.key.as_ref()))
        .chain(raw.provider.iter().flat_map(ProviderSettings::secrets))
        .chain(raw.notify.iter().flat_map(RawNotify::secrets))
        .filter_map(|r| match r {
            SecretRef::Env(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

impl Overridable {
    /// Applies each `HEARTH_*` override in `env`, in order; variables of
    /// other programs, Hearth's other variables and those in `referenced`
    /// are passed over.
    pub(super) fn apply(
        &mut self,
        env: Vec<(String, String)>,
        referenced: &[String],
    ) -> Result<(), SettingsError> {
        for (name, value) in env {
            if !name.starts_with("HEARTH_")
                || ENV_OTHER.contains(&name.as_str())
                || referenced.contains(&name)
            {
                continue;
            }
            let bad = |e: String| SettingsError::Env(format!("{name}: {e}"));
            match name.as_str() {
                "HEARTH_LISTEN" => self.listen = value,
                "HEARTH_PUBLIC_URL" => self.public_url = Some(value),
                "HEARTH_DATABASE_PATH" => self.db_path = PathBuf::from(value),
                "HEARTH_DATABASE_KEY" => {
                    self.db_key = Some(SecretRef::parse(&value).map_err(|e| bad(e.to_string()))?)
                }
                "HEARTH_RULES_DIR" => self.rules_dir = PathBuf::from(value),
                "HEARTH_LOG_FORMAT" => self.log_format = value.parse().map_err(bad)?,
                "HEARTH_RELOAD_DEBOUNCE" => self.reload_debounce = value,
                _ => {
                    return Err(SettingsError::Env(format!(
                        "unknown environment variable {name}\n  hint: Hearth reads {}",
                        ENV_OVERRIDES.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::settings::LogFormat;
    use crate::settings::testing::parse;

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
    fn a_hearth_variable_named_by_a_notify_secret_is_not_an_unknown_override() {
        let text = "notify: { webhook: { secret: env:HEARTH_WEBHOOK_SECRET } }\n";
        assert!(parse(text, &[("HEARTH_WEBHOOK_SECRET", "k")]).is_ok());
        assert!(parse("", &[("HEARTH_WEBHOOK_SECRET", "k")]).is_err());
    }
}
