//! Secret references (`file:…`, `env:…`, `credential:…`): where a secret
//! lives, never its value. `Debug` and `Display` show the reference; the
//! value is read only by [`SecretRef::resolve`], into a `SecretString`.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer};

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

/// Why a secret reference did not parse. A literal secret is refused
/// without echoing it: the text may be the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    #[error("invalid secret reference `{text}`: {problem}")]
    Invalid { text: String, problem: &'static str },
    #[error(
        "a literal secret is not allowed here\n  hint: write a reference instead: `file:/path/to/secret`, `env:VARIABLE` or `credential:NAME` (systemd LoadCredential=)"
    )]
    Literal,
}

/// Why a referenced secret could not be read. Names the reference, never
/// the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {secret}: {source}")]
    Read {
        secret: SecretRef,
        source: std::io::Error,
    },
    #[error("cannot read secret {secret}: variable `{name}` is not set")]
    VariableUnset { secret: SecretRef, name: String },
    #[error(
        "cannot read secret {secret}: $CREDENTIALS_DIRECTORY is not set (systemd sets it for LoadCredential=)"
    )]
    NoCredentialsDirectory { secret: SecretRef },
    #[error("secret {secret} is empty")]
    Empty { secret: SecretRef },
}

impl SecretRef {
    pub(crate) fn parse(text: &str) -> Result<SecretRef, SecretRefError> {
        let bad = |problem: &'static str| SecretRefError::Invalid {
            text: text.to_owned(),
            problem,
        };
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
        Err(SecretRefError::Literal)
    }

    /// A relative `file:` path, made relative to the settings file's folder.
    pub(super) fn relative_to(self, base: &Path) -> SecretRef {
        match self {
            SecretRef::File(p) if p.is_relative() => SecretRef::File(base.join(p)),
            other => other,
        }
    }

    /// Reads the secret. A trailing newline in a file is dropped.
    pub(crate) fn resolve(&self) -> Result<SecretString, SecretError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                secret: self.clone(),
                source,
            })
        };
        let value = match self {
            SecretRef::File(p) => read(p)?,
            SecretRef::Env(n) => std::env::var(n).map_err(|_| SecretError::VariableUnset {
                secret: self.clone(),
                name: n.clone(),
            })?,
            SecretRef::Credential(n) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    SecretError::NoCredentialsDirectory {
                        secret: self.clone(),
                    }
                })?;
                read(&Path::new(&dir).join(n))?
            }
        };
        let value = value.strip_suffix('\n').unwrap_or(&value).to_owned();
        if value.is_empty() {
            return Err(SecretError::Empty {
                secret: self.clone(),
            });
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::settings::testing::parse;

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
        let missing = missing.to_string();
        assert!(missing.contains("is not set"), "{missing}");
    }
}
