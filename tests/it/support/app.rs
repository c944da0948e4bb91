//! The daemon in-process (`spawn_app`): a temp deployment directory, the
//! real `App` on port 0, and what it told systemd recorded for waiting on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth::config::reload::{LiveRules, ReloadStatus};
use hearth::daemon::{App, Notifier};
use hearth::settings::Settings;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::files::write;

/// The debounce window tests run with: short, so tests are quick.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

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
