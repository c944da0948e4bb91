//! Opening the database: the checks that refuse what must not be
//! silently replaced (a missing, empty or truncated file, a wrong key, a
//! damaged database), the key (given, or generated into a key file on
//! first start), the daemon's lock file, the connection's pragmas, and
//! the migration to the latest schema.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use secrecy::{ExposeSecret, SecretString};

use super::migrations;
use crate::settings::{DatabaseSettings, SecretRef};
use crate::store::StoreError;

/// How long a write waits for another process's writer before `Busy`.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(30);
/// SQLCipher's page size (its default): a file that is not a whole number
/// of pages was cut short.
const PAGE: u64 = 4096;

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

/// Where the database key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Secret(SecretRef),
    /// A key file Hearth generates on first start.
    Generated(PathBuf),
}

impl KeySource {
    pub(crate) fn for_settings(db: &DatabaseSettings) -> KeySource {
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
pub(super) fn lock(path: &Path) -> Result<File, StoreError> {
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
pub(super) fn quiet(conn: &Connection) {
    let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
}

/// Opens (creating if the mode allows) the write connection, runs
/// `PRAGMA quick_check` on an existing database and migrates it. Blocking.
pub(super) fn open_checked(
    path: &Path,
    key: &KeySource,
    mode: OpenMode,
) -> Result<(Connection, OpenReport, SecretString), StoreError> {
    let mut report = OpenReport::default();
    let exists = check_file(path, mode)?;
    let secret = resolve_key(path, key, exists, &mut report)?;
    create_private_parent(path)?;
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
pub(super) fn integrity(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// SQLCipher key: 64 hex digits are a raw 256-bit key (no key derivation);
/// anything else is a passphrase.
pub(super) fn apply_key(conn: &Connection, secret: &SecretString) -> rusqlite::Result<()> {
    let s = secret.expose_secret();
    let pragma = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("x'{s}'")
    } else {
        s.to_owned()
    };
    conn.pragma_update(None, "key", &pragma)
}

pub(super) fn generate_key_file(file: &Path) -> Result<SecretString, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Key(format!("no randomness for a new key: {e}")))?;
    let key = hex::encode(bytes);
    create_private_parent(file)?;
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

/// Creates the directory `path` sits in, readable by its owner only, when
/// it does not exist yet.
pub(super) fn create_private_parent(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens (creating if needed) and migrates a connection; tests use it.
#[cfg(test)]
pub(super) fn open_connection(
    path: &Path,
    key: &KeySource,
) -> Result<(Connection, OpenReport), StoreError> {
    open_checked(path, key, OpenMode::Create).map(|(c, r, _)| (c, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migrations;

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
