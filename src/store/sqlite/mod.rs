//! The SQLite backend: an encrypted database (SQLCipher) with one writer
//! thread and a small pool of read-only connections.
//!
//! One dedicated thread owns the write connection and runs every write in
//! turn (SQLite allows one writer anyway); reads (lists, segments, reports,
//! lookups) run on their own read-only connections in WAL mode, so a long
//! import never stalls a webhook's member lookup. Async callers await a
//! reply and never block the runtime. Every write transaction is
//! `IMMEDIATE` and waits (busy timeout) for another process's writer
//! instead of failing, so staff commands and the daemon take turns.
//!
//! Opening refuses what must not be silently replaced: a missing database
//! for a command that only reads, a zero-byte or truncated file, a wrong
//! key, a damaged database (`PRAGMA quick_check`). The daemon also holds an
//! exclusive lock on `<db>.lock` for its life, so a second daemon on the
//! same database refuses to start; staff commands do not take it.
//!
//! This is the only module that names `rusqlite`.
//!
//! - [`migrations`]: the schema, versioned with `user_version`.
//! - [`members`]: members, groups, attributes.
//! - [`consent`]: the append-only consent ledger.
//! - [`audit`]: the hash-chained audit trail and its checkpoint.
//! - [`import`]: the roster import transaction.

mod audit;
mod consent;
mod escalation;
mod import;
mod inbound;
mod incident;
mod members;
mod migrations;
mod outbox;
mod reply;
mod schedule;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::{DatabaseSettings, SecretRef};
use crate::store::StoreError;

/// The schema version a fully migrated database has.
pub const SCHEMA_VERSION: usize = migrations::LATEST;

/// How long a write waits for another process's writer before `Busy`.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// Read-only connections: at most this many reads run at once, each on a
/// connection kept open for reuse (opening one derives the key, which is
/// slow for a passphrase).
const READERS: usize = 4;
/// SQLCipher's page size (its default): a file that is not a whole number
/// of pages was cut short.
const PAGE: u64 = 4096;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as C;
        let text = e.to_string();
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Busy(text),
            Some(C::DiskFull) => StoreError::Full(text),
            Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt(text),
            Some(C::ConstraintViolation) => StoreError::Constraint(text),
            _ => StoreError::Backend(text),
        }
    }
}

impl From<rusqlite_migration::Error> for StoreError {
    fn from(e: rusqlite_migration::Error) -> StoreError {
        match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => err.into(),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// How a process opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The daemon: creates the database on first start and holds
    /// `<db>.lock` for the life of the store.
    Daemon,
    /// A staff command that may create the database (roster import).
    Create,
    /// Every other staff command: the database must exist.
    Existing,
    /// `hearth db check`: the database must exist; opening skips the quick
    /// check and migrations, since the command reports on the database as
    /// it is.
    Inspect,
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
pub struct SqliteStore {
    inner: Arc<Writer>,
    readers: Arc<Readers>,
    path: PathBuf,
    /// The daemon's exclusive lock on `<db>.lock`, released when the last
    /// handle is dropped (or the process ends).
    _lock: Option<Arc<File>>,
}

/// Read-only connections, opened on demand and kept for reuse.
struct Readers {
    path: PathBuf,
    secret: SecretString,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: a read waits for a free one rather than
    /// opening more.
    permits: Arc<tokio::sync::Semaphore>,
}

/// The writer thread and the way to it. Dropped with the last handle: the
/// channel closes, the thread closes the connection and ends, and the drop
/// waits for it. Without that wait a process could exit while SQLCipher
/// was still working, and OpenSSL's exit handlers freed its state under it
/// (a segfault at exit, seen in about one CLI run in three).
struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    /// Closed before the write connection, so the writer closes last and
    /// checkpoints the WAL into the database file (a read-only connection
    /// closing last cannot, and would leave the data in the `-wal` file).
    readers: Arc<Readers>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Notified when a message is queued, so the dispatcher need not poll.
    enqueued: Arc<tokio::sync::Notify>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.readers
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
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

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
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

    pub(crate) fn describe(&self) -> String {
        match self {
            KeySource::Secret(r) => r.to_string(),
            KeySource::Generated(p) => format!("file:{}", p.display()),
        }
    }
}

/// `hearth.db` → `hearth.db.key`.
pub fn default_key_file(db: &Path) -> PathBuf {
    sibling(db, ".key")
}

/// `hearth.db` → `hearth.db.lock`: the file a daemon holds locked.
pub fn lock_file(db: &Path) -> PathBuf {
    sibling(db, ".lock")
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    db.with_file_name(name)
}

/// Takes the daemon's exclusive lock on `<db>.lock` (an `flock`, released
/// by the kernel when the process ends, however it ends).
fn lock(path: &Path) -> Result<File, StoreError> {
    let lock = lock_file(path);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: path.to_owned(),
            lock,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Refuses a database file that is missing (when it must exist), empty or
/// cut short, before SQLite would treat it as a new empty database.
fn check_file(path: &Path, mode: OpenMode) -> Result<bool, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match mode {
                OpenMode::Existing | OpenMode::Inspect => Err(StoreError::Missing {
                    path: path.to_owned(),
                }),
                OpenMode::Daemon | OpenMode::Create => Ok(false),
            };
        }
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(StoreError::Open {
            path: path.to_owned(),
            detail: "not a regular file".into(),
        });
    }
    let wal = std::fs::metadata(sibling(path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    if meta.len() == 0 && wal == 0 {
        return Err(StoreError::Empty {
            path: path.to_owned(),
        });
    }
    if meta.len() % PAGE != 0 {
        return Err(StoreError::Damaged {
            path: path.to_owned(),
            detail: format!(
                "its size ({} bytes) is not a whole number of {PAGE}-byte pages: the file was cut short",
                meta.len()
            ),
        });
    }
    Ok(true)
}

/// Resolves the key, generating a key file for a new database.
fn resolve_key(
    path: &Path,
    key: &KeySource,
    exists: bool,
    report: &mut OpenReport,
) -> Result<SecretString, StoreError> {
    match key {
        KeySource::Secret(r) => r.resolve().map_err(|e| StoreError::Key(e.to_string())),
        KeySource::Generated(file) => {
            if file.exists() {
                SecretRef::File(file.clone())
                    .resolve()
                    .map_err(|e| StoreError::Key(e.to_string()))
            } else if exists {
                Err(StoreError::MissingKeyFile {
                    path: path.to_owned(),
                    key_file: file.clone(),
                })
            } else {
                let k = generate_key_file(file)?;
                report.generated_key = Some(file.clone());
                Ok(k)
            }
        }
    }
}

/// Opens a connection with the key applied and tells a wrong key from a
/// damaged file. SQLCipher's own log lines are switched off first: the
/// error Hearth reports is the only message.
fn keyed(
    path: &Path,
    flags: OpenFlags,
    secret: &SecretString,
    key: &KeySource,
) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    quiet(&conn);
    apply_key(&conn, secret).map_err(open_err)?;
    conn.busy_timeout(BUSY_WAIT).map_err(open_err)?;
    // The first read tells whether the key is right.
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        return Err(match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::WrongKey {
                path: path.to_owned(),
                key: key.describe(),
            },
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
                path: path.to_owned(),
                detail: e.to_string(),
            },
            _ => open_err(e),
        });
    }
    Ok(conn)
}

/// SQLCipher logs decryption failures to stderr by itself; Hearth reports
/// them once, in its own words.
fn quiet(conn: &Connection) {
    let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
}

/// Opens (creating if needed) and migrates a connection; tests use it.
#[cfg(test)]
fn open_connection(path: &Path, key: &KeySource) -> Result<(Connection, OpenReport), StoreError> {
    open_checked(path, key, OpenMode::Create).map(|(c, r, _)| (c, r))
}

/// Opens (creating if the mode allows) the write connection, runs
/// `PRAGMA quick_check` on an existing database and migrates it. Blocking.
fn open_checked(
    path: &Path,
    key: &KeySource,
    mode: OpenMode,
) -> Result<(Connection, OpenReport, SecretString), StoreError> {
    let mut report = OpenReport::default();
    let exists = check_file(path, mode)?;
    let secret = resolve_key(path, key, exists, &mut report)?;
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let mut conn = keyed(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        &secret,
        key,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    // Every `transaction()` takes the write lock at BEGIN, so it waits for
    // another writer there (busy timeout) instead of failing half-way.
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if mode == OpenMode::Inspect {
        return Ok((conn, report, secret));
    }
    if exists {
        quick_check(&conn, path)?;
    }
    let migrate_err = |e: rusqlite_migration::Error| StoreError::Migrate {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let before = migrations::version(&conn).map_err(migrate_err)?;
    migrations::to_latest(&mut conn).map_err(migrate_err)?;
    let after = migrations::LATEST;
    if before != after {
        report.migrated = Some((before, after));
    }
    Ok((conn, report, secret))
}

/// `PRAGMA quick_check`: a damaged database is refused at open.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let problems = integrity(conn, "quick_check").map_err(|e| StoreError::Damaged {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(StoreError::Damaged {
            path: path.to_owned(),
            detail: if problems.len() > 1 {
                format!("{first} (and {} more problems)", problems.len() - 1)
            } else {
                first.clone()
            },
        }),
    }
}

/// Runs `quick_check` or `integrity_check`; the problems it lists (none
/// when the database is sound).
fn integrity(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
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

impl SqliteStore {
    /// Opens (creating if needed) the database named by the settings and
    /// starts the writer thread, without the daemon's lock.
    pub fn open(db: &DatabaseSettings) -> Result<(SqliteStore, OpenReport), StoreError> {
        SqliteStore::open_as(db, OpenMode::Create)
    }

    /// Opens the database named by the settings. `mode` says whether it
    /// may be created and whether this process is the daemon (which holds
    /// the lock).
    pub fn open_as(
        db: &DatabaseSettings,
        mode: OpenMode,
    ) -> Result<(SqliteStore, OpenReport), StoreError> {
        SqliteStore::open_with(&db.path, &KeySource::for_settings(db), mode)
    }

    /// Opens (creating if needed) without taking the daemon's lock: tests
    /// and benchmarks.
    pub fn open_at(path: &Path, key: &KeySource) -> Result<(SqliteStore, OpenReport), StoreError> {
        SqliteStore::open_with(path, key, OpenMode::Create)
    }

    pub fn open_with(
        path: &Path,
        key: &KeySource,
        mode: OpenMode,
    ) -> Result<(SqliteStore, OpenReport), StoreError> {
        if matches!(mode, OpenMode::Daemon | OpenMode::Create)
            && let Some(dir) = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        // The lock first: a second daemon must not even migrate.
        let lock = match mode {
            OpenMode::Daemon => Some(Arc::new(lock(path)?)),
            OpenMode::Create | OpenMode::Existing | OpenMode::Inspect => None,
        };
        let (conn, report, secret) = open_checked(path, key, mode)?;
        let readers = Arc::new(Readers {
            path: path.to_owned(),
            secret,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        });
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
            SqliteStore {
                inner: Arc::new(Writer {
                    jobs: Some(jobs),
                    readers: readers.clone(),
                    thread: Some(thread),
                    enqueued: Default::default(),
                }),
                readers,
                path: path.to_owned(),
                _lock: lock,
            },
            report,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// Runs `f` on a read-only connection from the pool, off the async
    /// threads and never behind the writer's queue.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        // The permit goes with the blocking task, so a cancelled caller
        // cannot let a fifth connection open while the read still runs.
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            let conn = readers.take()?;
            let out = f(&conn);
            readers.give_back(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a read task failed: {e}")))?
    }

    /// Full `integrity_check` (every page, every index); the problems it
    /// finds, none when the database is sound. For `hearth db check`.
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| Ok(integrity(c, "integrity_check")?)).await
    }
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        quiet(&conn);
        apply_key(&conn, &self.secret)?;
        conn.busy_timeout(BUSY_WAIT)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
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
    fn a_version_5_database_with_queued_and_sent_rows_migrates_to_the_scheduling_schema_and_keeps_them()
     {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let key = KeySource::Generated(dir.path().join("h.db.key"));
        {
            let secret = generate_key_file(&dir.path().join("h.db.key")).unwrap();
            let mut conn = Connection::open(&path).unwrap();
            apply_key(&conn, &secret).unwrap();
            migrations::to_version(&mut conn, 5).unwrap();
            conn.execute_batch(
                "INSERT INTO members (external_id, first_name, phone, timezone, joined_on, created_at, updated_at)
                 VALUES ('M1', 'Ann', '+15555550101', 'UTC', '2026-01-01', 'now', 'now');
                 INSERT INTO outbox (idempotency_key, member_id, body, kind, priority, not_before, next_attempt_at,
                                     state, segments, created_at, updated_at)
                 VALUES ('a', 1, 'hi', 'staff', 4, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',
                         'queued', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
                        ('b', 1, 'yo', 'scheduled', 5, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',
                         'sent', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:05:00.000Z');",
            )
            .unwrap();
            assert!(
                conn.prepare("SELECT * FROM schedule_marks").is_err(),
                "version 5 has no schedule tables"
            );
        }
        let (conn, report) = open_connection(&path, &key).unwrap();
        assert_eq!(report.migrated, Some((5, migrations::LATEST)));
        let rows: Vec<(String, String, Option<String>, Option<String>)> = conn
            .prepare("SELECT idempotency_key, state, schedule_id, sent_at FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("a".into(), "queued".into(), None, None),
                ("b".into(), "sent".into(), None, None),
            ]
        );
        for table in ["schedule_marks", "schedule_fires", "survey_runs"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        assert_eq!(
            default_key_file(Path::new("/var/lib/hearth/hearth.db")),
            PathBuf::from("/var/lib/hearth/hearth.db.key")
        );
    }
}
