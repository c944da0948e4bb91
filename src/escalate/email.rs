//! Email notices over SMTP with STARTTLS (lettre).
//!
//! Settings (`notify.email:`): host, port, from, username and password
//! (the password a secret reference), `tls: starttls` (the default;
//! `none` only for a relay on loopback), and `ca_file` to trust a
//! private certificate authority.

use std::path::PathBuf;

use crate::settings::SecretRef;

/// `notify.email:` in the settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    /// 587 by default.
    pub port: u16,
    /// `Hearth <hearth@clinic.example>`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub tls: EmailTls,
    /// PEM certificates to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// STARTTLS required: a server that does not offer it is an error.
    Starttls,
    /// Plain SMTP; refused at settings load unless the host is loopback.
    None,
}

/// Why a notice was not delivered on one channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChannelError {
    /// Worth another attempt (a timeout, a 4xx SMTP reply, an HTTP 5xx or
    /// 429); false for a permanent refusal (a 5xx SMTP reply, an HTTP
    /// 4xx, a bad address).
    pub retryable: bool,
    /// For the notice's record and the logs: never a message body.
    pub message: String,
}

/// A connected-on-demand SMTP sender built once from the settings.
pub struct Mailer {
    _private: (),
}

impl Mailer {
    /// Resolves the password reference and builds the transport; an error
    /// names the setting (`notify.email.password: …`).
    pub fn new(settings: &EmailSettings) -> Result<Mailer, String> {
        let _ = settings;
        todo!("email helper")
    }

    /// Sends one plain-text message to one address.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), ChannelError> {
        let _ = (to, subject, body);
        todo!("email helper")
    }
}
