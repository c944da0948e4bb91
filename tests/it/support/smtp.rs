//! A real SMTP server for tests: Python's aiosmtpd on a free loopback
//! port, STARTTLS required (a certificate authority and a `localhost`
//! certificate made at start with the `openssl` CLI), every message
//! written to a Maildir and read back decoded by Python's `email` package.
//!
//! ```ignore
//! let Some(smtp) = Smtp::start().await else { return }; // skipped
//! let settings = format!("{}{}", base_settings, smtp.settings_yaml());
//! // ... something sends mail ...
//! let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
//! assert_eq!(mails[0].to, "Dana <dana@clinic.example>");
//! ```
//!
//! Missing aiosmtpd or openssl goes through [`components::require`]: a
//! failure under CI (`.ci/run` installs them), a printed skip otherwise.
//! The interpreter is `$AIOSMTPD_PYTHON`, else the first of
//! `/usr/bin/python3` and `python3` that can import aiosmtpd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::components;

/// The address messages are sent from in [`Smtp::settings_yaml`].
pub(crate) const FROM: &str = "Hearth <hearth@clinic.example>";

/// One message as the server stored it, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Mail {
    /// The `To:` header, decoded.
    pub to: String,
    /// The `Subject:` header, decoded (RFC 2047).
    pub subject: String,
    /// The `text/plain` body, decoded from its transfer encoding and charset.
    pub body: String,
    /// `text/plain` and its charset, as the message declared them.
    pub content_type: String,
    pub charset: Option<String>,
    /// `From:`, decoded.
    pub from: String,
}

/// How the server treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// STARTTLS offered and required before MAIL.
    Starttls,
    /// No TLS at all: STARTTLS is not offered.
    Plain,
}

pub(crate) struct Smtp {
    pub dir: TempDir,
    pub port: u16,
    pub mode: Mode,
    /// The certificate authority that signed the server's certificate.
    pub ca_file: PathBuf,
    /// `user:password` the server demands, when it does.
    auth: Option<(String, String)>,
    python: String,
    child: Child,
}

const SERVER_PY: &str = r#"
import logging, os, signal, ssl, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, mode, auth, ready = sys.argv[1:]
kw = {}
if mode == "starttls":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw.update(tls_context=ctx, require_starttls=True)
if auth != "-":
    user, password = auth.split(":", 1)
    def authenticator(server, session, envelope, mechanism, data):
        ok = (isinstance(data, LoginPassword)
              and data.login == user.encode() and data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    kw.update(authenticator=authenticator, auth_required=True,
              auth_require_tls=(mode == "starttls"))
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), **kw)
controller.start()
with open(ready + ".tmp", "w") as f:
    f.write("ready\n")
os.rename(ready + ".tmp", ready)
signal.signal(signal.SIGTERM, lambda *a: (controller.stop(), sys.exit(0)))
while True:
    signal.pause()
"#;

const DUMP_PY: &str = r#"
import email, email.policy, json, os, sys
root = sys.argv[1]
files = []
for sub in ("new", "cur"):
    d = os.path.join(root, sub)
    if os.path.isdir(d):
        files += [os.path.join(d, n) for n in os.listdir(d) if not n.startswith(".")]
files.sort(key=lambda p: (os.path.getmtime(p), os.path.basename(p)))
out = []
for path in files:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    out.append({
        "to": str(msg["To"] or ""),
        "from": str(msg["From"] or ""),
        "subject": str(msg["Subject"] or ""),
        "body": part.get_content() if part is not None else "",
        "content_type": msg.get_content_type(),
        "charset": msg.get_content_charset(),
    })
print(json.dumps(out))
"#;

/// How to install what the harness needs.
const HINT: &str = ".ci/run installs it: apt-get install python3-aiosmtpd openssl, or set AIOSMTPD_PYTHON to a python that has aiosmtpd";

/// A Python interpreter that can import aiosmtpd; `None` (skipped, see
/// [`components::require`]) when none can.
fn python() -> Option<String> {
    let candidates: Vec<String> = match std::env::var("AIOSMTPD_PYTHON") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    let found = candidates.iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let what = format!("aiosmtpd (for any of {candidates:?})");
    if !components::require(found.is_some(), &what, HINT) {
        return None;
    }
    found.cloned()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes a certificate authority `<name>.pem` (key `<name>.key`) in `dir`.
pub(crate) fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN=hearth test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// A `localhost` server certificate (`server.pem`, `server.key`) signed
/// by the CA `ca` made with [`make_ca`].
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

impl Smtp {
    /// STARTTLS required, no login. `None` when skipped.
    pub(crate) async fn start() -> Option<Smtp> {
        Smtp::start_with(Mode::Starttls, None).await
    }

    /// A server that does not offer STARTTLS at all.
    pub(crate) async fn start_plain() -> Option<Smtp> {
        Smtp::start_with(Mode::Plain, None).await
    }

    /// Any mode; with `auth`, the server demands that login and password.
    pub(crate) async fn start_with(mode: Mode, auth: Option<(&str, &str)>) -> Option<Smtp> {
        if !components::require(openssl_available(), "the openssl command", HINT) {
            return None;
        }
        let python = python()?;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = make_ca(dir.path(), "ca");
        make_server_cert(dir.path(), "ca");
        let port = super::ports::free_port();
        let ready = dir.path().join("ready");
        let auth_arg = auth.map_or("-".to_owned(), |(u, p)| format!("{u}:{p}"));
        std::fs::write(dir.path().join("server.py"), SERVER_PY).unwrap();
        let stderr = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(&python)
            .arg(dir.path().join("server.py"))
            .arg(port.to_string())
            .arg(dir.path().join("Maildir"))
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .arg(match mode {
                Mode::Starttls => "starttls",
                Mode::Plain => "plain",
            })
            .arg(&auth_arg)
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("aiosmtpd starts");
        let mut smtp = Smtp {
            dir,
            port,
            mode,
            ca_file,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            python,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if let Some(status) = smtp.child.try_wait().unwrap() {
                panic!(
                    "aiosmtpd exited ({status}) before it was ready:\n{}",
                    smtp.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd was not ready within 20s:\n{}",
                smtp.log()
            );
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
                .await
                .unwrap();
        }
        Some(smtp)
    }

    /// The server's stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The Maildir messages are written to.
    pub(crate) fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// A `notify:` block for a settings file that sends to this server:
    /// host `localhost`, its port, STARTTLS with `ca_file` trusting the
    /// test CA (or `tls: none` for a plain server), the login when the
    /// server demands one (the password as a `file:` reference in the
    /// server's directory), from [`FROM`].
    pub(crate) fn settings_yaml(&self) -> String {
        let mut y = format!(
            "notify:\n  email:\n    host: localhost\n    port: {}\n    from: \"{FROM}\"\n    timeout: 10s\n",
            self.port
        );
        match self.mode {
            Mode::Starttls => y.push_str(&format!(
                "    tls: starttls\n    ca_file: \"{}\"\n",
                self.ca_file.display()
            )),
            Mode::Plain => y.push_str("    tls: none\n"),
        }
        if let Some((user, password)) = &self.auth {
            let file = self.dir.path().join("smtp-password");
            std::fs::write(&file, format!("{password}\n")).unwrap();
            y.push_str(&format!(
                "    username: \"{user}\"\n    password: \"file:{}\"\n",
                file.display()
            ));
        }
        y
    }

    /// The [`hearth::settings::EmailSettings`] the block above
    /// parses to (for tests that build a `Mailer` directly).
    pub(crate) fn email_settings(&self) -> hearth::settings::EmailSettings {
        let settings = hearth::settings::Settings::parse(
            &self.settings_yaml(),
            &self.dir.path().join("hearth.yaml"),
            self.dir.path(),
            std::iter::empty(),
        )
        .expect("the harness's settings parse");
        settings.notify.email.expect("an email block")
    }

    /// How many messages are stored (a directory count; no decoding).
    fn stored(&self) -> usize {
        let maildir = self.maildir();
        ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(maildir.join(d)).ok())
            .flatten()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
            })
            .count()
    }

    /// Every message stored so far, oldest first.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        if self.stored() == 0 {
            return Vec::new();
        }
        let out = Command::new(&self.python)
            .args(["-c", DUMP_PY])
            .arg(self.maildir())
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "reading the Maildir failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the dump is JSON")
    }

    /// Waits until at least `n` messages are stored and returns them all;
    /// panics with what did arrive (and the server's log) after `deadline`
    /// of real time. Polls on a blocking thread, so it neither stalls the
    /// test's runtime nor spins under `tokio::time::pause()`.
    pub(crate) async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Mail> {
        let until = Instant::now() + deadline;
        loop {
            if self.stored() >= n {
                return self.mails();
            }
            if Instant::now() >= until {
                let mails = self.mails();
                panic!(
                    "expected {n} mail(s) within {deadline:?}, got {}: {mails:#?}\nserver log:\n{}",
                    mails.len(),
                    self.log()
                );
            }
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(25)))
                .await
                .unwrap();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
