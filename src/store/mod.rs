//! The store: everything Hearth keeps about people, behind traits per
//! aggregate so the database is a detail.
//!
//! - [`traits`]: the interface a backend implements, in domain types and
//!   `DateTime<Utc>` (members & consent, audit, outbox, inbound). A
//!   PostgreSQL backend implements the same traits.
//! - [`sqlite`]: today's backend, an encrypted SQLite database (SQLCipher)
//!   with one writer thread and a small pool of read-only connections. It
//!   is the only module that names a database crate.
//! - [`import`]: roster CSV parsing and validation (no storage).
//!
//! [`StoreError`] is backend-neutral: a backend maps its own errors onto
//! `Busy`, `Full`, `Corrupt`, `Constraint` or `Backend`, and callers branch
//! on those, never on a driver's error type.

pub mod import;
pub mod sqlite;
pub mod traits;

#[cfg(test)]
mod dummy;

use std::path::PathBuf;

pub use traits::{
    AuditStore, Backend, ConsentStore, EscalationStore, InboundStore, IncidentStore, MemberStore,
    OutboxStore, ReplyStore, ScheduleStore,
};

/// Every store trait, unnamed: `use hearth::store::prelude::*;` lets code
/// holding a concrete backend (the CLI, tests, benchmarks) call any store
/// method. Code generic over [`Backend`] needs no import.
pub mod prelude {
    pub use super::traits::{
        AuditStore as _, ConsentStore as _, EscalationStore as _, InboundStore as _,
        IncidentStore as _, MemberStore as _, OutboxStore as _, ReplyStore as _,
        ScheduleStore as _,
    };
}

/// A store failure, the same whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {} does not exist\n  hint: check `database.path` in the settings; `hearth run` and `hearth members import` create it when it is new", path.display())]
    Missing { path: PathBuf },
    #[error("database {} is empty (zero bytes); refusing to replace it with a new database\n  hint: restore it from a backup, or move it away to start afresh", path.display())]
    Empty { path: PathBuf },
    #[error("database {} is damaged: {detail}\n  hint: run `hearth db check` for the full report; restore the database from a backup", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot open database {}: the key does not decrypt it\n  hint: check the key reference ({key}); a database encrypted with another key cannot be read", path.display())]
    WrongKey { path: PathBuf, key: String },
    #[error("database {} exists but its key file {} is missing\n  hint: restore the key file; a new key cannot read the existing data", path.display(), key_file.display())]
    MissingKeyFile { path: PathBuf, key_file: PathBuf },
    #[error("cannot read the database key: {0}")]
    Key(String),
    #[error("database {} is in use by another hearth daemon (it holds {})\n  hint: stop the other daemon first; staff commands still work while it runs", path.display(), lock.display())]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("cannot open database {}: {detail}", path.display())]
    Open { path: PathBuf, detail: String },
    #[error("cannot migrate database {}: {detail}", path.display())]
    Migrate { path: PathBuf, detail: String },
    /// Another writer held the database past the wait.
    #[error("the database stayed busy (another writer held it): {0}")]
    Busy(String),
    /// The disk (or the database's size limit) is full.
    #[error("the database is full: {0}")]
    Full(String),
    /// The database file is corrupt.
    #[error("the database is corrupt: {0}\n  hint: run `hearth db check`")]
    Corrupt(String),
    /// A uniqueness or other constraint refused a write.
    #[error("the database refused a write: {0}")]
    Constraint(String),
    /// Any other backend failure.
    #[error("database error: {0}")]
    Backend(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the store has shut down")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True for faults in the database itself or its key (as opposed to a
    /// failed operation): the same exit code everywhere.
    pub(crate) fn is_open_fault(&self) -> bool {
        matches!(
            self,
            StoreError::Missing { .. }
                | StoreError::Empty { .. }
                | StoreError::Damaged { .. }
                | StoreError::WrongKey { .. }
                | StoreError::MissingKeyFile { .. }
                | StoreError::Key(_)
                | StoreError::InUse { .. }
        )
    }
}
