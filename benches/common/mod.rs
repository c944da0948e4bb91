//! What the benchmarks share: importing a generated roster as staff
//! would, and the encrypted database made by the store then opened raw for
//! the baselines a bench compares the store against. (Benches cannot
//! reach `tests/it/support/`; this is their one copy.)

// Each bench uses what it needs of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hearth::store::import::{self, ImportOptions, ImportReport};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use tempfile::TempDir;

/// The options every bench imports with: all or nothing, consent granted.
pub fn options() -> ImportOptions {
    ImportOptions {
        skip_invalid: false,
        consent_text: Some("I agree.".into()),
        actor: "bench".into(),
        source_name: "bench.csv".into(),
    }
}

/// Parses `csv` (every row valid, groups among `groups`) and imports it.
pub fn import(
    rt: &tokio::runtime::Runtime,
    store: &SqliteStore,
    csv: &str,
    groups: &BTreeSet<String>,
) -> ImportReport {
    let (rows, invalid) =
        import::parse(csv.as_bytes(), groups, chrono::Utc::now().date_naive()).unwrap();
    assert!(invalid.is_empty());
    rt.block_on(store.import_members(rows, invalid, options()))
        .unwrap()
}

/// A fresh encrypted database in a temp directory, made by the store
/// (schema and key exactly as the daemon leaves them) and closed: the
/// directory and the database file (`h.db`, its key in `h.db.key`).
pub fn fresh_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(SqliteStore::open_at(&path, &KeySource::Generated(key_file(&path))).unwrap());
    (dir, path)
}

/// Opens the encrypted database `db` raw, with its key and the pragmas the
/// store runs with (WAL, synchronous NORMAL).
pub fn open_raw(db: &Path) -> rusqlite::Connection {
    let key = std::fs::read_to_string(key_file(db)).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "key", format!("x'{}'", key.trim()))
        .unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

/// The key file the store generates beside `db`: `h.db` → `h.db.key`.
pub fn key_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}
