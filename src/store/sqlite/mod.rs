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
//! - [`open`]: the checks, the key and the lock of opening a database.
//! - [`readers`]: the pool of read-only connections.
//! - [`outbox`], [`escalation`], [`schedule`], [`reply`], [`incident`],
//!   [`inbound`]: the rest of the store traits, one file or folder each.

mod audit;
mod consent;
mod escalation;
mod import;
mod inbound;
mod incident;
mod members;
mod migrations;
mod open;
mod outbox;
mod readers;
mod reply;
mod schedule;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;

use crate::settings::DatabaseSettings;
use crate::store::StoreError;

pub use open::{KeySource, OpenMode, OpenReport, default_key_file, lock_file};
use open::{create_private_parent, integrity, lock, open_checked};
use readers::Readers;

/// The schema version a fully migrated database has.
pub const SCHEMA_VERSION: usize = migrations::LATEST;

/// A stored value that does not read back as its type (column `i`):
/// the row mapping's error, with what was wrong.
pub(crate) fn bad(i: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into())
}

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
        self.readers.close_idle();
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

    pub(crate) fn open_with(
        path: &Path,
        key: &KeySource,
        mode: OpenMode,
    ) -> Result<(SqliteStore, OpenReport), StoreError> {
        if matches!(mode, OpenMode::Daemon | OpenMode::Create) {
            create_private_parent(path)?;
        }
        // The lock first: a second daemon must not even migrate.
        let lock = match mode {
            OpenMode::Daemon => Some(Arc::new(lock(path)?)),
            OpenMode::Create | OpenMode::Existing | OpenMode::Inspect => None,
        };
        let (conn, report, secret) = open_checked(path, key, mode)?;
        let readers = Arc::new(Readers::new(path.to_owned(), secret));
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
