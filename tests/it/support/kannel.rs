//! Starts Kannel on free loopback ports in a temp directory and stops
//! it on drop.

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::components;

pub const BEARERBOX: &str = "/usr/sbin/bearerbox";
pub const SMSBOX: &str = "/usr/sbin/smsbox";
pub const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

pub const USER: &str = "hearth";
pub const PASSWORD: &str = "kannel-sendsms-pw";
/// The provider's callback secret (URL-safe, as the provider demands).
pub const SECRET: &str = "cb-0123456789abcdef0123";
/// The clinic's number: `from` of every outbound text.
pub const SHORTCODE: &str = "+15555550999";
pub const MEMBER_PHONE: &str = "+15555550101";
const ADMIN_PASSWORD: &str = "kannel-admin-pw";

/// Whether Kannel is installed; see [`components::require`].
pub fn available() -> bool {
    let missing: Vec<&str> = [BEARERBOX, SMSBOX, FAKESMSC]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    components::require(
        missing.is_empty(),
        &format!("Kannel ({missing:?} missing)"),
        "apt-get install kannel kannel-extras",
    )
}

pub use super::ports::{free_port, free_ports};

/// One text as fakesmsc received it from Kannel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: String,
    /// `text` (GSM, sent as 7-bit) or `ucs-2`.
    pub kind: String,
    pub body: String,
}

pub struct Kannel {
    pub dir: TempDir,
    conf: PathBuf,
    admin_port: u16,
    mo_port: u16,
    pub sendsms_port: u16,
    bearerbox: Option<Child>,
    smsbox: Option<Child>,
    sink: Option<Child>,
    injector: Option<Child>,
    injections: usize,
}

impl Kannel {
    /// Generates `kannel.conf` with `mo_url` as the sms-service's
    /// get-url, and starts bearerbox, smsbox and the sink fakesmsc.
    pub async fn start(mo_url: &str) -> Kannel {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("kannel.conf");
        let [admin, smsbox, sink, mo, sendsms] = free_ports::<5>();
        let ports = Ports {
            admin,
            smsbox,
            sink,
            mo,
            sendsms,
        };
        std::fs::write(&conf, conf_text(dir.path(), &ports, mo_url)).unwrap();
        let mut k = Kannel {
            dir,
            conf,
            admin_port: ports.admin,
            mo_port: ports.mo,
            sendsms_port: ports.sendsms,
            bearerbox: None,
            smsbox: None,
            sink: None,
            injector: None,
            injections: 0,
        };
        k.start_all(ports.sink).await;
        k
    }

    /// The conf file as generated.
    pub fn conf(&self) -> String {
        std::fs::read_to_string(&self.conf).unwrap()
    }

    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms_port)
    }

    fn spawn(&self, program: &str, args: &[&str], log: &str) -> Child {
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .unwrap();
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
    }

    async fn start_all(&mut self, sink_port: u16) {
        let conf = self.conf.to_str().unwrap().to_owned();
        self.bearerbox = Some(self.spawn(BEARERBOX, &[&conf], "bearerbox.out"));
        self.wait_listening(self.admin_port, "bearerbox's admin port")
            .await;
        self.smsbox = Some(self.spawn(SMSBOX, &[&conf], "smsbox.out"));
        self.wait_listening(self.sendsms_port, "smsbox's sendsms port")
            .await;
        let port = sink_port.to_string();
        // `-m 0`: send nothing, only receive (and log) what Kannel delivers.
        self.sink = Some(self.spawn(
            FAKESMSC,
            &["-H", "127.0.0.1", "-r", &port, "-m", "0", "0 0 text unused"],
            "sink.log",
        ));
        self.wait_status(
            |s| {
                s.lines()
                    .any(|l| l.contains("[sink]") && l.contains("(online"))
            },
            "the sink fakesmsc online",
        )
        .await;
    }

    async fn wait_listening(&self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "{what} never opened; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn status(&self) -> String {
        let url = format!(
            "http://127.0.0.1:{}/status.txt?password={ADMIN_PASSWORD}",
            self.admin_port
        );
        match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn wait_status(&self, ok: impl Fn(&str) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = self.status().await;
            if ok(&status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; status:\n{status}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The tail of every process's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in [
            "bearerbox.out",
            "smsbox.out",
            "sink.log",
            "bearerbox.log",
            "smsbox.log",
        ] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!("--- {name}\n{}\n", tail.join("\n")));
        }
        out
    }

    /// Kills bearerbox (a crash, not a clean stop). smsbox then stops
    /// serving `sendsms` and the sink loses its link.
    pub fn kill_bearerbox(&mut self) {
        stop(&mut self.bearerbox);
    }

    /// Starts everything again on the same ports and configuration.
    pub async fn restart(&mut self) {
        // smsbox hangs in its shutdown once bearerbox is gone, and
        // the sink has lost its link: start all three afresh.
        stop(&mut self.injector);
        stop(&mut self.sink);
        stop(&mut self.smsbox);
        stop(&mut self.bearerbox);
        let sink_port = sink_port(&self.conf());
        self.start_all(sink_port).await;
    }

    /// Waits until bearerbox holds nothing (no queued message, an empty
    /// store) and the sink has logged every text bearerbox sent it:
    /// with no sender running, `received()` is then final.
    pub async fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status().await;
            let idle = status
                .lines()
                .find(|l| l.starts_with("SMS: received"))
                .and_then(|l| {
                    // `SMS: received A (B queued), sent C (D queued), store size E`
                    let nums: Vec<usize> = l
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|w| !w.is_empty())
                        .map(|w| w.parse().unwrap())
                        .collect();
                    // The store size is -1 when bearerbox keeps no store.
                    let empty = l.ends_with("store size 0") || l.ends_with("store size -1");
                    match nums.as_slice() {
                        [_, q1, sent, q2, ..] => {
                            Some(*q1 == 0 && *q2 == 0 && empty && *sent == self.received().len())
                        }
                        _ => None,
                    }
                });
            if idle == Some(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kannel never went idle; status:\n{status}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every text the sink received, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut raw = Vec::new();
        File::open(self.dir.path().join("sink.log"))
            .and_then(|mut f| f.read_to_end(&mut raw))
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        text.lines().filter_map(parse_got).collect()
    }

    /// Waits until the sink received at least `n` texts.
    pub async fn wait_received(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "fakesmsc received {} of {n} texts: {got:#?}\nlogs:\n{}",
                got.len(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A member texts `text` to the clinic: a fakesmsc on the MO-only
    /// SMSC sends it to bearerbox. `ucs2` sends it as UCS-2.
    pub async fn inject(&mut self, from: &str, text: &str, ucs2: bool) {
        // The fake SMSC takes one client at a time.
        stop(&mut self.injector);
        self.injections += 1;
        let log = format!("inject-{}.log", self.injections);
        let msg = if ucs2 {
            let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            format!("{from} {SHORTCODE} ucs2 {}", url_encode(&bytes))
        } else {
            format!("{from} {SHORTCODE} text {text}")
        };
        let port = self.mo_port.to_string();
        self.injector = Some(self.spawn(
            FAKESMSC,
            &["-H", "127.0.0.1", "-r", &port, "-m", "1", &msg],
            &log,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        let path = self.dir.path().join(&log);
        while !std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("sent message 1")
        {
            assert!(
                Instant::now() < deadline,
                "fakesmsc never sent the MO; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        stop(&mut self.injector);
        stop(&mut self.sink);
        stop(&mut self.smsbox);
        stop(&mut self.bearerbox);
    }
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

struct Ports {
    admin: u16,
    smsbox: u16,
    sink: u16,
    mo: u16,
    sendsms: u16,
}

fn sink_port(conf: &str) -> u16 {
    let after = conf.split("smsc-id = sink").nth(1).unwrap();
    let line = after.lines().find(|l| l.starts_with("port = ")).unwrap();
    line["port = ".len()..].trim().parse().unwrap()
}

/// The whole Kannel configuration the tests run.
fn conf_text(dir: &Path, p: &Ports, mo_url: &str) -> String {
    let d = dir.display();
    format!(
        r#"# Generated by tests/it/kannel.rs: everything on loopback.
group = core
admin-port = {admin}
admin-password = {ADMIN_PASSWORD}
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox}
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = 0
access-log = "{d}/access.log"
dlr-storage = internal

# The phone network, as seen by the clinic's outbound texts.
group = smsc
smsc = fake
smsc-id = sink
port = {sink}
connect-allow-ip = "127.0.0.1"

# Member texts come in here; nothing outbound is routed to it.
group = smsc
smsc = fake
smsc-id = mo
allowed-smsc-id = mo
port = {mo}
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
log-file = "{d}/smsbox.log"
log-level = 0
# Retry a failed callback to Hearth (same URL, so the same %I).
http-request-retry = 5
http-queue-delay = 1

group = sendsms-user
username = {USER}
password = {PASSWORD}
user-deny-ip = "*.*.*.*"
user-allow-ip = "127.0.0.1"
# Long texts go as concatenated parts instead of being cut short.
max-messages = 10
concatenation = true

# Every member text goes to Hearth. No reply: Hearth answers with an
# empty body and max-messages = 0 keeps Kannel from texting anything back.
group = sms-service
keyword = default
catch-all = true
max-messages = 0
omit-empty = true
get-url = "{mo_url}"
"#,
        admin = p.admin,
        smsbox = p.smsbox,
        sink = p.sink,
        mo = p.mo,
        sendsms = p.sendsms,
    )
}

/// `... Got message 3: <FROM TO TYPE DATA>`.
fn parse_got(line: &str) -> Option<Received> {
    let rest = &line[line.find("Got message ")?..];
    let inner = &rest[rest.find(": <")? + 3..];
    let inner = inner.strip_suffix('>')?;
    let mut parts = inner.splitn(4, ' ');
    let (from, to, kind, data) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next().unwrap_or(""),
    );
    let body = match kind {
        // fakesmsc prints UCS-2 URL-encoded, as UTF-16BE bytes.
        "ucs-2" => {
            let bytes = url_decode(data.as_bytes());
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).expect("valid UTF-16 from Kannel")
        }
        _ => data.to_owned(),
    };
    Some(Received {
        from: from.into(),
        to: to.into(),
        kind: kind.into(),
        body,
    })
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&s[i + 1..i + 3]).unwrap(), 16).unwrap(),
                );
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

pub fn url_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A loopback HTTP hop between smsbox and Hearth that hangs up on
/// the first `drop_first` requests after Hearth answered them: smsbox
/// sees a failed callback and retries it, exactly as when an answer
/// is lost on a real network.
pub struct FlakyHop {
    pub addr: SocketAddr,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
    dropped: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyHop {
    pub async fn start(upstream: SocketAddr, drop_first: usize) -> FlakyHop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (reqs, drops) = (requests.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (reqs, drops) = (reqs.clone(), drops.clone());
                tokio::spawn(async move {
                    let _ = hop(client, upstream, reqs, drops, drop_first).await;
                });
            }
        });
        FlakyHop {
            addr,
            requests,
            dropped,
            task,
        }
    }

    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyHop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hop(
    mut client: tokio::net::TcpStream,
    upstream: SocketAddr,
    reqs: Arc<std::sync::Mutex<Vec<String>>>,
    drops: Arc<AtomicUsize>,
    drop_first: usize,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // One request per connection: the answer says `Connection: close`.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    reqs.lock()
        .unwrap()
        .push(text.lines().next().unwrap_or("").to_owned());
    let mut forwarded = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut up = tokio::net::TcpStream::connect(upstream).await?;
    up.write_all(forwarded.as_bytes()).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    if drops.fetch_add(1, Ordering::SeqCst) < drop_first {
        // Hearth has answered (and stored); smsbox never hears it.
        return Ok(());
    }
    drops.fetch_sub(1, Ordering::SeqCst);
    client.write_all(&answer).await?;
    client.shutdown().await
}
