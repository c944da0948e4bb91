//! `notify:`: the email (SMTP) and webhook channels escalation notices
//! go by besides SMS, checked at load so a mistake stops the start, not
//! the first crisis notice. Secret values are read later, by the channels
//! (`escalate::email`, `escalate::webhook`), which take these settings.

use std::path::{Path, PathBuf};

use super::SecretRef;
use super::parse_millis;
use super::raw::{RawEmail, RawNotify, RawWebhook};

/// `notify:`: email (SMTP) and webhook settings for escalation notices.
/// Either may be absent: a notice by a channel that is not configured is
/// recorded as failed ("not configured") and the others still go.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub email: Option<EmailSettings>,
    pub(crate) webhook: Option<WebhookSettings>,
    /// `notify.critical_repeat`: how often a critical incident whose
    /// policy ran out with nobody acknowledging pages its last step (or
    /// its backup step) again; 15 minutes by default.
    pub(crate) critical_repeat: std::time::Duration,
}

/// The default of `notify.critical_repeat`.
pub const DEFAULT_CRITICAL_REPEAT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The longest `notify.critical_repeat` allowed: a critical incident
/// nobody has taken must not go quiet for longer.
const MAX_CRITICAL_REPEAT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            email: None,
            webhook: None,
            critical_repeat: DEFAULT_CRITICAL_REPEAT,
        }
    }
}

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

/// `notify.webhook:` in the settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The signing secret (a secret reference).
    pub secret: SecretRef,
    /// Per attempt.
    pub timeout: std::time::Duration,
}

/// Is `host` the loopback interface (`localhost`, 127.0.0.0/8, `::1`)?
/// Plain SMTP and plain HTTP are allowed only there.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RawNotify {
    /// The secret references the `notify:` section holds.
    pub(super) fn secrets(&self) -> Vec<&SecretRef> {
        let email = self.email.as_ref().and_then(|e| e.password.as_ref());
        let webhook = self.webhook.as_ref().map(|w| &w.secret);
        email.into_iter().chain(webhook).collect()
    }
}

/// `notify:`, checked; relative paths are made relative to `base`.
pub(super) fn notify_settings(raw: RawNotify, base: &Path) -> Result<NotifySettings, String> {
    let email = raw.email.map(|e| email_settings(e, base)).transpose()?;
    let webhook = raw.webhook.map(|w| webhook_settings(w, base)).transpose()?;
    let critical_repeat = critical_repeat(raw.critical_repeat.as_deref())?;
    Ok(NotifySettings {
        email,
        webhook,
        critical_repeat,
    })
}

/// `notify.critical_repeat`: a duration from 1s to 1h; 15m when left out.
fn critical_repeat(text: Option<&str>) -> Result<std::time::Duration, String> {
    let Some(text) = text else {
        return Ok(DEFAULT_CRITICAL_REPEAT);
    };
    let hint = "  hint: how often an unacknowledged critical incident pages again after its policy ran out, like `15m` (the default); at most `1h`";
    let d = super::parse_millis(text.trim())
        .map_err(|e| format!("notify.critical_repeat: {e}\n{hint}"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!(
            "notify.critical_repeat: `{text}` is shorter than a second\n{hint}"
        ));
    }
    if d > MAX_CRITICAL_REPEAT {
        return Err(format!(
            "notify.critical_repeat: `{text}` is longer than an hour: a critical incident nobody has taken must not go quiet that long\n{hint}"
        ));
    }
    Ok(d)
}

/// A channel's `timeout:`, 10s when left out; zero is refused.
fn channel_timeout(key: &str, text: Option<String>) -> Result<std::time::Duration, String> {
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
}

fn email_settings(e: RawEmail, base: &Path) -> Result<EmailSettings, String> {
    let host = email_host(&e.host)?;
    let port = e.port.unwrap_or(587);
    if port == 0 {
        return Err(
            "notify.email.port: 0 is not a port\n  hint: 587 (the default) for STARTTLS submission"
                .into(),
        );
    }
    if let Err(err) = e.from.parse::<lettre::message::Mailbox>() {
        return Err(format!(
            "notify.email.from: `{}` is not an email address: {err}\n  hint: write `Hearth <hearth@clinic.example>` or `hearth@clinic.example`",
            e.from
        ));
    }
    let tls = email_tls(e.tls.as_deref(), host)?;
    let username = email_login(e.username, e.password.as_ref())?;
    if tls == EmailTls::None && e.ca_file.is_some() {
        return Err("notify.email.ca_file is set but notify.email.tls is `none`\n  hint: remove one of them".into());
    }
    Ok(EmailSettings {
        host: host.to_owned(),
        port,
        from: e.from.trim().to_owned(),
        username,
        password: e.password.map(|p| p.relative_to(base)),
        tls,
        ca_file: e.ca_file.map(|p| base.join(p)),
        timeout: channel_timeout("email", e.timeout)?,
    })
}

/// `notify.email.host`, trimmed: a bare name or address, without a port.
fn email_host(text: &str) -> Result<&str, String> {
    let host = text.trim();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(format!(
            "notify.email.host: `{text}` is not a host name\n  hint: write the server's name alone, like `smtp.clinic.example` (the port goes in `port:`)"
        ));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!(
            "notify.email.host: `{host}` holds a port\n  hint: write the host alone and the port in `port:` (default 587)"
        ));
    }
    Ok(host)
}

/// `notify.email.tls`: STARTTLS unless `none` is asked for a loopback relay.
fn email_tls(text: Option<&str>, host: &str) -> Result<EmailTls, String> {
    match text.map(str::trim) {
        None | Some("starttls") => Ok(EmailTls::Starttls),
        Some("none") if is_loopback_host(host) => Ok(EmailTls::None),
        Some("none") => Err(format!(
            "notify.email.tls: `none` with host `{host}`: plain SMTP is allowed only to a relay on loopback (localhost, 127.0.0.1, ::1)\n  hint: remove `tls: none`; the default `starttls` encrypts the connection"
        )),
        Some(other) => Err(format!(
            "notify.email.tls: `{other}` is not a TLS mode\n  hint: `starttls` (the default) or `none` (loopback only)"
        )),
    }
}

/// `notify.email.username`: both it and the password, or neither.
fn email_login(
    username: Option<String>,
    password: Option<&SecretRef>,
) -> Result<Option<String>, String> {
    if username.as_ref().is_some_and(|u| u.trim().is_empty()) {
        return Err("notify.email.username is empty\n  hint: leave out both username and password to send without logging in".into());
    }
    match (&username, password) {
        (Some(_), None) => Err("notify.email.username is set but notify.email.password is not\n  hint: add `password: env:HEARTH_SMTP_PASSWORD` (or `file:`, `credential:`)".into()),
        (None, Some(_)) => Err("notify.email.password is set but notify.email.username is not\n  hint: add `username:`, the login the server expects".into()),
        _ => Ok(username),
    }
}

fn webhook_settings(w: RawWebhook, base: &Path) -> Result<WebhookSettings, String> {
    Ok(WebhookSettings {
        secret: w.secret.relative_to(base),
        timeout: channel_timeout("webhook", w.timeout)?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::settings::testing::parse;
    use crate::testing::Rng;

    #[test]
    fn loopback_hosts_are_recognised_and_others_are_not() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.clinic.example",
            "10.0.0.1",
            "localhost.evil.example",
            "::2",
        ] {
            assert!(!is_loopback_host(h), "{h}");
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
        assert_eq!(e.tls, EmailTls::Starttls);
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
        assert_eq!((e.port, e.tls), (2525, EmailTls::None));
        assert_eq!(e.timeout, std::time::Duration::from_millis(500));
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
        let mut rng = Rng::new(0x4E4F_5449_4659_0001);
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
    fn critical_repeat_defaults_to_15_minutes_and_refuses_what_would_leave_a_crisis_quiet() {
        let d = parse("", &[]).unwrap().notify.critical_repeat;
        assert_eq!(d, std::time::Duration::from_secs(15 * 60));
        let s = parse("notify: { critical_repeat: 5m }\n", &[]).unwrap();
        assert_eq!(
            s.notify.critical_repeat,
            std::time::Duration::from_secs(300)
        );
        for (text, says) in [
            ("0s", "longer than zero"),
            ("500ms", "shorter than a second"),
            ("2h", "longer than an hour"),
            ("soon", "notify.critical_repeat:"),
        ] {
            let err = parse(&format!("notify: {{ critical_repeat: {text} }}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("notify.critical_repeat")
                    && err.contains(says)
                    && err.contains("hint:"),
                "{text}: {err}"
            );
        }
    }
}
