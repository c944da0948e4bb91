//! Email notices over SMTP with STARTTLS (lettre).
//!
//! Settings (`notify.email:`): host, port, from, username and password
//! (the password a secret reference), `tls: starttls` (the default;
//! `none` only for a relay on loopback), and `ca_file` to trust a
//! private certificate authority.
//!
//! One connection per message (no pool): notices are rare, and a fresh
//! connection never trips over one the server closed while idle.
//!
//! What is worth another attempt ([`ChannelError::retryable`]): a 4xx
//! reply, a refused or dropped connection, a timeout. What is not: a 5xx
//! reply, a bad address, a server that does not offer STARTTLS when it is
//! required, and a certificate that does not verify. The last two are
//! settings to fix (or a connection being tampered with), not weather to
//! wait out; failing at once makes the failure visible in the notice's
//! record instead of hiding it behind half an hour of retries.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::settings::is_loopback_host;
use crate::settings::{EmailSettings, EmailTls};

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

impl ChannelError {
    pub(crate) fn retryable(message: impl Into<String>) -> ChannelError {
        ChannelError {
            retryable: true,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> ChannelError {
        ChannelError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Why the SMTP sender could not be built; each message names the setting
/// to fix (`notify.email.…`).
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error(
        "notify.email.from: `{from}` is not an email address: {reason}\n  hint: write `Hearth <hearth@clinic.example>` or `hearth@clinic.example`"
    )]
    From { from: String, reason: String },
    #[error(
        "notify.email.tls: `none` with host `{host}`: plain SMTP is allowed only to a relay on loopback\n  hint: use `tls: starttls` (the default)"
    )]
    PlainSmtp { host: String },
    #[error("notify.email: cannot set up TLS for `{host}`: {reason}")]
    Tls { host: String, reason: String },
    #[error("notify.email.ca_file: cannot read {}: {source}", path.display())]
    CaUnreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "notify.email.ca_file: {} holds no PEM certificate\n  hint: it should contain `-----BEGIN CERTIFICATE-----` blocks",
        path.display()
    )]
    CaNotPem { path: std::path::PathBuf },
    #[error("notify.email.password: {0}")]
    Password(#[source] crate::settings::SecretError),
    #[error(
        "notify.email.username is set but notify.email.password is not\n  hint: add `password: env:HEARTH_SMTP_PASSWORD` (or `file:`, `credential:`)"
    )]
    UsernameWithoutPassword,
    #[error("notify.email.password is set but notify.email.username is not")]
    PasswordWithoutUsername,
}

/// A connected-on-demand SMTP sender built once from the settings.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for error messages.
    server: String,
    /// For the whole exchange of one message.
    timeout: std::time::Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Resolves the password reference and builds the transport; an error
    /// names the setting (`notify.email.password: …`).
    pub fn new(settings: &EmailSettings) -> Result<Mailer, EmailSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| EmailSetupError::From {
                from: settings.from.clone(),
                reason: e.to_string(),
            })?;
        let tls = match settings.tls {
            EmailTls::None => {
                if !is_loopback_host(&settings.host) {
                    return Err(EmailSetupError::PlainSmtp {
                        host: settings.host.clone(),
                    });
                }
                Tls::None
            }
            EmailTls::Starttls => {
                let mut params = TlsParameters::builder(settings.host.clone());
                if let Some(path) = &settings.ca_file {
                    params = params.add_root_certificate(read_ca_file(path)?);
                }
                Tls::Required(params.build_rustls().map_err(|e| EmailSetupError::Tls {
                    host: settings.host.clone(),
                    reason: e.to_string(),
                })?)
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                let password = password.resolve().map_err(EmailSetupError::Password)?;
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(EmailSetupError::UsernameWithoutPassword);
            }
            (None, Some(_)) => {
                return Err(EmailSetupError::PasswordWithoutUsername);
            }
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{}:{}", settings.host, settings.port),
            timeout: settings.timeout,
        })
    }

    /// Sends one plain-text message to one address.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), ChannelError> {
        let to_box: Mailbox = to.parse().map_err(|e| {
            ChannelError::permanent(format!("email to `{to}`: not an email address: {e}"))
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| ChannelError::permanent(format!("email to `{to}`: cannot build: {e}")))?;
        // lettre's own timeout bounds only the connect; this bounds the
        // whole exchange, so a server that stops answering mid-way cannot
        // hold the notice.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| classify(&self.server, &e)),
            Err(_) => Err(ChannelError::retryable(format!(
                "smtp {}: no answer within {:?}",
                self.server, self.timeout
            ))),
        }
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Certificate, EmailSetupError> {
    let pem = std::fs::read(path).map_err(|source| EmailSetupError::CaUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let count = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
        .count();
    let cert = Certificate::from_pem(&pem).ok().filter(|_| count > 0);
    cert.ok_or_else(|| EmailSetupError::CaNotPem {
        path: path.to_owned(),
    })
}

/// Sorts an SMTP failure into worth-retrying or not (see the module
/// docs). The message is lettre's, which carries the server's reply text
/// but never the message itself.
fn classify(server: &str, e: &lettre::transport::smtp::Error) -> ChannelError {
    let message = format!("smtp {server}: {e}");
    if e.is_transient() || e.is_timeout() {
        return ChannelError::retryable(message);
    }
    if e.is_permanent() || e.is_client() || e.is_tls() {
        // `is_client` holds "STARTTLS is not supported on this server".
        return ChannelError::permanent(message);
    }
    // A TLS handshake that fails verification surfaces as an I/O error of
    // kind InvalidData (tokio-rustls); a refused or dropped connection as
    // any other I/O error.
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::InvalidData {
                ChannelError::permanent(message)
            } else {
                ChannelError::retryable(message)
            };
        }
        source = err.source();
    }
    ChannelError::retryable(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SecretRef;

    fn settings() -> EmailSettings {
        EmailSettings {
            host: "smtp.clinic.example".into(),
            port: 587,
            from: "Hearth <hearth@clinic.example>".into(),
            username: None,
            password: None,
            tls: EmailTls::Starttls,
            ca_file: None,
            timeout: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn a_mailer_is_built_from_valid_settings_and_bad_ones_name_the_setting() {
        assert!(Mailer::new(&settings()).is_ok());

        let mut s = settings();
        s.from = "not an address".into();
        let err = Mailer::new(&s).unwrap_err().to_string();
        assert!(
            err.starts_with("notify.email.from: `not an address`"),
            "{err}"
        );

        let mut s = settings();
        s.tls = EmailTls::None;
        let err = Mailer::new(&s).unwrap_err().to_string();
        assert!(err.starts_with("notify.email.tls:"), "{err}");
        s.host = "127.0.0.1".into();
        assert!(Mailer::new(&s).is_ok());

        let mut s = settings();
        s.username = Some("hearth".into());
        s.password = Some(SecretRef::Env("HEARTH_TEST_SURELY_UNSET_SMTP".into()));
        let err = Mailer::new(&s).unwrap_err().to_string();
        assert!(err.starts_with("notify.email.password: "), "{err}");
        assert!(err.contains("HEARTH_TEST_SURELY_UNSET_SMTP"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let mut s = settings();
        s.ca_file = Some(junk);
        let err = Mailer::new(&s).unwrap_err().to_string();
        assert!(err.starts_with("notify.email.ca_file: "), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
        s.ca_file = Some(dir.path().join("missing.pem"));
        let err = Mailer::new(&s).unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_recipient_address_is_permanent_and_echoed() {
        let mailer = Mailer::new(&settings()).unwrap();
        let err = mailer
            .send("nobody", "s", "private body")
            .await
            .unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.contains("`nobody`"), "{}", err.message);
        assert!(!err.message.contains("private body"));
    }
}
