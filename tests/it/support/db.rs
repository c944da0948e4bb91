//! The encrypted database opened raw, behind the store's back: SQLCipher
//! with the key file the store generated beside it (`<db>.key`), for tests
//! that tamper with rows, move state as another process would, or read
//! counts beside a running daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a raw statement waits for the daemon's lock.
const BUSY: Duration = Duration::from_secs(10);

/// Opens the database file `db` read-write with its key.
pub fn open(db: &Path) -> Connection {
    keyed(db, OpenFlags::default())
}

/// Opens the database file `db` read-only with its key.
pub fn open_read_only(db: &Path) -> Connection {
    keyed(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// Runs `statements` (one or more, `;`-separated) on the database file `db`.
pub fn sql(db: &Path, statements: &str) {
    open(db).execute_batch(statements).unwrap();
}

/// The key file the store generates beside `db`: `h.db` → `h.db.key`.
pub fn key_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn keyed(db: &Path, flags: OpenFlags) -> Connection {
    let key = std::fs::read_to_string(key_file(db)).unwrap();
    let conn = Connection::open_with_flags(db, flags).unwrap();
    conn.pragma_update(None, "key", format!("x'{}'", key.trim()))
        .unwrap();
    conn.busy_timeout(BUSY).unwrap();
    conn
}
