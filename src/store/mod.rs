//! The store: an encrypted SQLite database (SQLCipher) behind one writer.
//!
//! Everything Hearth keeps about people lives here: members, group
//! memberships, the consent ledger, the audit trail. The database file is
//! encrypted at rest; the key comes from a secret reference, or from a
//! key file generated beside the database on first start.
//!
//! [`Store`] is the whole interface: callers ask for domain operations
//! (import members, record consent, append to the audit trail) and never
//! see SQL, so a PostgreSQL backend can be added behind the same methods.
//! One dedicated thread owns the connection and runs every operation in
//! turn (SQLite allows one writer anyway); async callers await a oneshot
//! reply and never block the runtime.
//!
//! - [`migrations`]: the schema, versioned with `user_version`.
//! - [`members`]: members, groups, attributes.
//! - [`consent`]: the append-only consent ledger.
//! - [`audit`]: the hash-chained audit trail.
//! - [`import`]: roster CSV parsing and validation.
//! - [`outbox`]: outbound messages, inbound queue, delivery reports.

pub mod audit;
pub mod consent;
pub mod import;
pub mod inbound;
pub mod members;
mod migrations;
pub mod outbox;
pub mod traits;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::{DatabaseSettings, SecretRef};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {}: the key does not decrypt it\n  hint: check the key reference ({key}); a database encrypted with another key cannot be read", path.display())]
    WrongKey { path: PathBuf, key: String },
    #[error("database {} exists but its key file {} is missing\n  hint: restore the key file; a new key cannot read the existing data", path.display(), key_file.display())]
    MissingKeyFile { path: PathBuf, key_file: PathBuf },
    #[error("cannot read the database key: {0}")]
    Key(String),
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot migrate database {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the store has shut down")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What opening the store did, for the one-time notices.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// A new key file was written here.
    pub generated_key: Option<PathBuf>,
    /// Schema version before and after migrating.
    pub migrated: Option<(usize, usize)>,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the store; cheap to clone. The writer thread stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: std::sync::Arc<Writer>,
    path: PathBuf,
}

/// The writer thread and the way to it. Dropped with the last handle: the
/// channel closes, the thread closes the connection and ends, and the drop
/// waits for it. Without that wait a process could exit while SQLCipher
/// was still working, and OpenSSL's exit handlers freed its state under it
/// (a segfault at exit, seen in about one CLI run in three).
struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Notified when a message is queued, so the dispatcher need not poll.
    enqueued: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            // A handle dropped by a job on the writer thread itself must
            // not wait for that thread.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Where the database key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Secret(SecretRef),
    /// A key file Hearth generates on first start.
    Generated(PathBuf),
}

impl KeySource {
    pub fn for_settings(db: &DatabaseSettings) -> KeySource {
        match &db.key {
            Some(r) => KeySource::Secret(r.clone()),
            None => KeySource::Generated(default_key_file(&db.path)),
        }
    }

    fn describe(&self) -> String {
        match self {
            KeySource::Secret(r) => r.to_string(),
            KeySource::Generated(p) => format!("file:{}", p.display()),
        }
    }
}

/// `hearth.db` → `hearth.db.key`.
pub fn default_key_file(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".key");
    db.with_file_name(name)
}

/// Opens (creating if needed) and migrates a connection. Blocking.
pub fn open_connection(
    path: &Path,
    key: &KeySource,
) -> Result<(Connection, OpenReport), StoreError> {
    let mut report = OpenReport::default();
    let exists = path.exists();
    let secret = match key {
        KeySource::Secret(r) => r.resolve().map_err(StoreError::Key)?,
        KeySource::Generated(file) => {
            if file.exists() {
                SecretRef::File(file.clone())
                    .resolve()
                    .map_err(StoreError::Key)?
            } else if exists {
                return Err(StoreError::MissingKeyFile {
                    path: path.to_owned(),
                    key_file: file.clone(),
                });
            } else {
                let k = generate_key_file(file)?;
                report.generated_key = Some(file.clone());
                k
            }
        }
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    apply_key(&conn, &secret).map_err(open_err)?;
    // The first read tells whether the key is right.
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        return Err(match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::WrongKey {
                path: path.to_owned(),
                key: key.describe(),
            },
            _ => open_err(e),
        });
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(open_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let before = migrations::version(&conn).map_err(|source| StoreError::Migrate {
        path: path.to_owned(),
        source,
    })?;
    migrations::to_latest(&mut conn).map_err(|source| StoreError::Migrate {
        path: path.to_owned(),
        source,
    })?;
    let after = migrations::LATEST;
    if before != after {
        report.migrated = Some((before, after));
    }
    Ok((conn, report))
}

/// SQLCipher key: 64 hex digits are a raw 256-bit key (no key derivation);
/// anything else is a passphrase.
fn apply_key(conn: &Connection, secret: &SecretString) -> rusqlite::Result<()> {
    let s = secret.expose_secret();
    let pragma = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("x'{s}'")
    } else {
        s.to_owned()
    };
    conn.pragma_update(None, "key", &pragma)
}

fn generate_key_file(file: &Path) -> Result<SecretString, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Key(format!("no randomness for a new key: {e}")))?;
    let key = hex::encode(bytes);
    if let Some(dir) = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(key.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(SecretString::from(key))
}

impl Store {
    /// Opens the database named by the settings and starts the writer thread.
    pub fn open(db: &DatabaseSettings) -> Result<(Store, OpenReport), StoreError> {
        Store::open_at(&db.path, &KeySource::for_settings(db))
    }

    pub fn open_at(path: &Path, key: &KeySource) -> Result<(Store, OpenReport), StoreError> {
        let (conn, report) = open_connection(path, key)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("hearth-store".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error.cause_chain = ?e, "closing the database failed");
                }
            })?;
        Ok((
            Store {
                inner: std::sync::Arc::new(Writer {
                    jobs: Some(jobs),
                    thread: Some(thread),
                    enqueued: Default::default(),
                }),
                path: path.to_owned(),
            },
            report,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notified each time a new message is queued in this process.
    pub fn enqueued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.enqueued.clone()
    }

    /// Runs `f` on the writer thread and awaits its result, carrying the
    /// caller's tracing span along.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        self.inner
            .jobs
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Box::new(move |conn| {
                let _entered = span.enter();
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_migrates_from_empty_to_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeySource::Generated(dir.path().join("h.db.key"));
        let (conn, report) = open_connection(&dir.path().join("h.db"), &key).unwrap();
        assert_eq!(report.migrated, Some((0, migrations::LATEST)));
        assert_eq!(migrations::version(&conn).unwrap(), migrations::LATEST);
    }

    #[test]
    fn a_previous_version_database_migrates_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let key = KeySource::Generated(dir.path().join("h.db.key"));
        {
            // Build a version-1 database by hand: members, but no audit table.
            let secret = generate_key_file(&dir.path().join("h.db.key")).unwrap();
            let mut conn = Connection::open(&path).unwrap();
            apply_key(&conn, &secret).unwrap();
            migrations::to_version(&mut conn, 1).unwrap();
            conn.execute(
                "INSERT INTO members (external_id, first_name, phone, timezone, joined_on, created_at, updated_at)
                 VALUES ('M1', 'Ann', '+15555550101', 'UTC', '2026-01-01', 'now', 'now')",
                [],
            )
            .unwrap();
            assert!(
                conn.prepare("SELECT * FROM audit").is_err(),
                "version 1 has no audit table"
            );
        }
        let (conn, report) = open_connection(&path, &key).unwrap();
        assert_eq!(report.migrated, Some((1, migrations::LATEST)));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let audit: i64 = conn
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(audit, 0);
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        assert_eq!(
            default_key_file(Path::new("/var/lib/hearth/hearth.db")),
            PathBuf::from("/var/lib/hearth/hearth.db.key")
        );
    }
}
