//! Shared test helpers: real temp directories, the real daemon in-process
//! (`spawn_app`) or as a child process (`spawn_daemon`), typed waits.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth::config::reload::{LiveRules, ReloadStatus};
use hearth::daemon::{App, Notifier};
use hearth::settings::Settings;
pub use hearth::store::prelude::*;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The debounce window tests run with: short, so tests are quick.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// An IANA zone (`Etc/GMT±N`) where the local time is now within half an
/// hour of `hour`:00, so tests about quiet hours hold whenever they run.
///
/// Whole-hour zones keep the UTC minute, so no zone can promise that the
/// hour stays `hour` for long when the minute is late: picking by the
/// current hour alone (as this once did) gave a zone where `hour` ended
/// seconds later, and a test crossing that boundary failed. Instead the
/// zone is the one whose local time is nearest to `hour`:00, between
/// (`hour`-1):30 and `hour`:30 now, and so, for the next 30 minutes, never
/// further than an hour from `hour`:00. Callers ask for an hour at least
/// 90 minutes away from the edge that matters (3 for "quiet at night", 12
/// or 14 for "inside the default 08:00–21:00 window"). If the clock
/// crosses a half hour while the zone is picked, it is picked again.
pub fn timezone_where_it_is(hour: i32) -> String {
    loop {
        let before = chrono::Utc::now();
        let zone = zone_nearest(hour, before);
        if zone_nearest(hour, chrono::Utc::now()) == zone {
            return zone;
        }
    }
}

fn zone_nearest(hour: i32, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    // The UTC hour nearest to now: 10:40 counts as 11.
    let utc_hour = (now.hour() as i32 + i32::from(now.minute() >= 30)) % 24;
    let offset = (hour - utc_hour).rem_euclid(24);
    let offset = if offset > 14 { offset - 24 } else { offset };
    // POSIX-style names invert the sign: Etc/GMT-5 is UTC+5.
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// The consent text test rosters grant.
pub const CONSENT_TEXT: &str = "I agree to receive texts from the clinic.";

/// Imports a roster CSV (no group columns) into `store`, granting consent
/// where its `consent` column says yes; panics on invalid rows.
pub async fn import_roster(
    store: &hearth::store::sqlite::SqliteStore,
    csv: &str,
) -> hearth::store::import::ImportReport {
    import_roster_in(store, csv, &[]).await
}

/// The same for a roster whose `groups` column names these groups.
pub async fn import_roster_in(
    store: &hearth::store::sqlite::SqliteStore,
    csv: &str,
    groups: &[&str],
) -> hearth::store::import::ImportReport {
    use hearth::store::import::{self, ImportOptions};
    let known = groups.iter().map(|g| g.to_string()).collect();
    let (rows, invalid) =
        import::parse(csv.as_bytes(), &known, chrono::Utc::now().date_naive()).unwrap();
    assert!(invalid.is_empty(), "{invalid:?}");
    let report = store
        .import_members(
            rows,
            invalid,
            ImportOptions {
                skip_invalid: false,
                consent_text: Some(CONSENT_TEXT.into()),
                actor: "test".into(),
                source_name: "roster.csv".into(),
            },
        )
        .await
        .unwrap();
    assert!(report.applied, "{report:?}");
    report
}

/// An encrypted store in `dir/h.db`, its key generated beside it.
pub fn open_store(dir: &Path) -> hearth::store::sqlite::SqliteStore {
    hearth::store::sqlite::SqliteStore::open_at(
        &dir.join("h.db"),
        &hearth::store::sqlite::KeySource::Generated(dir.join("h.db.key")),
    )
    .unwrap()
    .0
}

/// A valid rules file whose reminder text is `body`.
pub fn rules_yaml(body: &str) -> String {
    format!(
        r#"templates:
  reminder:
    body: "{body}"
schedules:
  - id: weekly
    template: reminder
    cron: "0 12 * * THU"
"#
    )
}

/// A second, independent valid rules file.
pub const EXTRA_YAML: &str = r#"templates:
  extra:
    body: "Hi {{ member.first_name }}"
schedules:
  - id: extra-weekly
    template: extra
    cron: "0 13 * * FRI"
"#;

/// A file that does not compile: an unknown template reference.
pub const BROKEN_YAML: &str = r#"schedules:
  - id: broken
    template: does-not-exist
    cron: "0 12 * * THU"
"#;

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Writes a sibling temp file and renames it over `path`, as vim, VS Code
/// and most editors save.
pub fn rename_save(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp-save");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Records what the daemon tells systemd.
pub struct RecordingNotifier {
    pub events: Mutex<Vec<String>>,
    /// The number of events so far, for waiting on the next one.
    count: tokio::sync::watch::Sender<usize>,
}

impl Default for RecordingNotifier {
    fn default() -> Self {
        RecordingNotifier {
            events: Mutex::new(Vec::new()),
            count: tokio::sync::watch::channel(0).0,
        }
    }
}

impl RecordingNotifier {
    fn push(&self, event: String) {
        let mut events = self.events.lock().unwrap();
        events.push(event);
        self.count.send_replace(events.len());
    }

    /// Waits until an event satisfies `want`; returns it.
    pub async fn wait_for(&self, want: impl Fn(&str) -> bool) -> String {
        let mut rx = self.count.subscribe();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(e) = self.events.lock().unwrap().iter().find(|e| want(e)) {
                    return e.clone();
                }
                rx.changed().await.unwrap();
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no such notification; saw {:?}",
                self.events.lock().unwrap()
            )
        })
    }
}

impl Notifier for RecordingNotifier {
    fn ready(&self, status: &str) {
        self.push(format!("READY {status}"));
    }
    fn reloading(&self) {
        self.push("RELOADING".into());
    }
    fn status(&self, status: &str) {
        self.push(format!("STATUS {status}"));
    }
    fn stopping(&self) {
        self.push("STOPPING".into());
    }
    fn watchdog(&self) {}
}

/// The daemon running in-process on a temp rules directory.
pub struct TestApp {
    pub dir: TempDir,
    /// The intake's address.
    pub addr: std::net::SocketAddr,
    pub rules: Arc<LiveRules>,
    pub store: hearth::store::sqlite::SqliteStore,
    pub notifier: Arc<RecordingNotifier>,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn rules_dir(&self) -> PathBuf {
        self.dir.path().join("rules")
    }

    pub fn status(&self) -> ReloadStatus {
        self.rules.status()
    }

    /// Waits until the live generation reaches `generation`.
    pub async fn wait_for_generation(&self, generation: u64) {
        let mut rx = self.rules.subscribe();
        let reached =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|g| *g >= generation)).await;
        assert!(
            reached.is_ok(),
            "generation {generation} never went live; status: {:#?}",
            self.status()
        );
    }

    /// Waits until `attempts` reload attempts were made.
    pub async fn wait_for_attempts(&self, attempts: u64) {
        let mut rx = self.rules.subscribe_attempts();
        let reached =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|a| *a >= attempts)).await;
        assert!(
            reached.is_ok(),
            "only {} reload attempts; status: {:#?}",
            self.status().attempts,
            self.status()
        );
    }

    /// Waits out several quiet windows, for tests that assert a reload did
    /// *not* happen. Absence has no event to wait on, so this sleep is the
    /// thing under test: anything the watcher was going to report would
    /// have been reported within one window (plus the merge window).
    pub async fn settle(&self) {
        tokio::time::sleep(DEBOUNCE * 6).await;
    }

    /// The admin token of [`settings_with_admin_token`].
    pub const ADMIN_TOKEN: &str = "test-admin-token";

    /// `GET /status` with the admin token: the HTTP status and the body.
    pub async fn get_status(&self) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("http://{}/status", self.addr))
            .bearer_auth(Self::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or_default())
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// Settings for a deployment in `dir` (rules in `dir/rules`).
pub fn settings_yaml() -> String {
    "listen: 127.0.0.1:0\nrules_dir: rules\ndatabase: { path: state/hearth.db }\nprovider: { kind: console, output: console.jsonl }\nreload_debounce: 100ms\n"
        .to_owned()
}

/// Writes the admin token file into `dir`; returns [`settings_yaml`] with
/// `/status` open to [`TestApp::ADMIN_TOKEN`].
pub fn settings_with_admin_token(dir: &Path) -> String {
    write(
        &dir.join("admin-token"),
        &format!("{}\n", TestApp::ADMIN_TOKEN),
    );
    format!("{}admin_tokens: [file:admin-token]\n", settings_yaml())
}

/// Starts the daemon in-process on a fresh temp directory whose rules
/// directory holds `files`.
pub async fn spawn_app(files: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(&dir.path().join("rules").join(name), text);
    }
    spawn_app_in(dir).await
}

/// Starts the daemon in-process on a prepared directory (rules in `rules/`).
pub async fn spawn_app_in(dir: TempDir) -> TestApp {
    spawn_app_with_settings(dir, &settings_yaml()).await
}

/// Starts the daemon in-process on a prepared directory with these
/// settings (YAML; relative paths are relative to the directory).
pub async fn spawn_app_with_settings(dir: TempDir, settings: &str) -> TestApp {
    let settings_path = dir.path().join("hearth.yaml");
    write(&settings_path, settings);
    let settings = Settings::load(&settings_path, std::iter::empty()).unwrap();
    let notifier = Arc::new(RecordingNotifier::default());
    let app = App::build(settings)
        .await
        .unwrap()
        .with_notifier(notifier.clone());
    let rules = app.rules();
    let store = app.store();
    let addr = app.local_addr();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // READY is sent once every subsystem (the watcher among them) is up.
    notifier.wait_for(|e| e.starts_with("READY")).await;
    TestApp {
        dir,
        addr,
        rules,
        store,
        notifier,
        shutdown,
        handle: Some(handle),
    }
}

/// A `hearth run` child process with a fake `$NOTIFY_SOCKET`.
pub struct Daemon {
    pub dir: TempDir,
    pub child: Child,
    pub notify: UnixDatagram,
    /// What the process wrote to standard error, read as it goes so a
    /// chatty process never blocks on a full pipe.
    logs: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Reads notifications until one contains `want`; returns all read.
    pub fn wait_notify(&self, want: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no notification with {want:?}; saw {seen:?}"
            );
            self.notify.set_read_timeout(Some(left)).unwrap();
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let done = msg.contains(want);
                    seen.push(msg);
                    if done {
                        return seen;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!(
                        "no notification with {want:?} within {timeout:?}; saw {seen:?}\ndaemon log:\n{}",
                        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
                    )
                }
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    }

    /// Waits for the process to exit; `None` if it is still running at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Ends the process (if it still runs) and returns what it logged.
    pub fn stderr(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.logs.lock().unwrap().clone()
    }

    /// Wraps a spawned `hearth run` (stdout and stderr piped): drains both
    /// pipes in the background, keeping standard error.
    pub fn new(dir: TempDir, mut child: Child, notify: UnixDatagram) -> Daemon {
        use std::io::Read;
        let logs = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(mut err) = child.stderr.take() {
            let logs = logs.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    logs.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        if let Some(mut out) = child.stdout.take() {
            readers.push(std::thread::spawn(move || {
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }));
        }
        Daemon {
            dir,
            child,
            notify,
            logs,
            readers,
        }
    }
}

impl Daemon {
    /// Stops the process (SIGKILL) and hands back its directory, so a new
    /// daemon can start on the same database.
    pub fn kill_keep_dir(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hearth run` on a temp directory with `files` as its rules and
/// `extra_env` added to its environment.
pub fn spawn_daemon(files: &[(&str, &str)], extra_env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(&dir.path().join("rules").join(name), text);
    }
    write(&dir.path().join("hearth.yaml"), &settings_yaml());
    spawn_daemon_in(dir, extra_env)
}

/// Starts `hearth run` on a prepared directory (its `hearth.yaml` and
/// `rules/` already written). Reusing a directory restarts on the same
/// database.
pub fn spawn_daemon_in(dir: TempDir, extra_env: &[(&str, &str)]) -> Daemon {
    let socket_path = dir.path().join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("run")
        .arg("--settings")
        .arg(dir.path().join("hearth.yaml"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("HEARTH_SETTINGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    Daemon::new(dir, child, notify)
}
