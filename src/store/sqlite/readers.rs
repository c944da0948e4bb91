//! The pool of read-only connections: reads (lists, segments, reports,
//! lookups) run on their own connections in WAL mode, off the async
//! threads and never behind the writer's queue.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use secrecy::SecretString;

use super::SqliteStore;
use super::open::{BUSY_WAIT, apply_key, quiet};
use crate::store::StoreError;

/// Read-only connections: at most this many reads run at once, each on a
/// connection kept open for reuse (opening one derives the key, which is
/// slow for a passphrase).
const READERS: usize = 4;

/// Read-only connections, opened on demand and kept for reuse.
pub(super) struct Readers {
    path: PathBuf,
    secret: SecretString,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: a read waits for a free one rather than
    /// opening more.
    permits: Arc<tokio::sync::Semaphore>,
}

impl SqliteStore {
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
}

impl Readers {
    pub(super) fn new(path: PathBuf, secret: SecretString) -> Readers {
        Readers {
            path,
            secret,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        }
    }

    /// Closes the idle connections (the writer closes after them, so it
    /// can checkpoint the WAL).
    pub(super) fn close_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

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
