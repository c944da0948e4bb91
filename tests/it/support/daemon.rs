//! The real binary as a child process (`spawn_daemon`): `hearth run` on a
//! temp deployment directory with a fake `$NOTIFY_SOCKET`, its logs kept.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::app::settings_yaml;
use super::files::write;

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
