//! A store on a temp directory and a roster imported into it, as staff
//! would with `hearth members import`.

use std::path::Path;

use hearth::store::prelude::*;

/// The consent text test rosters grant.
pub const CONSENT_TEXT: &str = "I agree to receive texts from the clinic.";

/// Imports a roster CSV (no group columns) into `store`, granting consent
/// where its `consent` column says yes; panics on invalid rows.
pub async fn import_roster(
    store: &hearth::store::sqlite::SqliteStore,
    csv: &str,
) -> hearth::store::import::ImportReport {
    import_roster_in(store, csv, &[]).await
}

/// The same for a roster whose `groups` column names these groups.
pub async fn import_roster_in(
    store: &hearth::store::sqlite::SqliteStore,
    csv: &str,
    groups: &[&str],
) -> hearth::store::import::ImportReport {
    use hearth::store::import::{self, ImportOptions};
    let known = groups.iter().map(|g| g.to_string()).collect();
    let (rows, invalid) =
        import::parse(csv.as_bytes(), &known, chrono::Utc::now().date_naive()).unwrap();
    assert!(invalid.is_empty(), "{invalid:?}");
    let report = store
        .import_members(
            rows,
            invalid,
            ImportOptions {
                skip_invalid: false,
                consent_text: Some(CONSENT_TEXT.into()),
                actor: "test".into(),
                source_name: "roster.csv".into(),
            },
        )
        .await
        .unwrap();
    assert!(report.applied, "{report:?}");
    report
}

/// An encrypted store in `dir/h.db`, its key generated beside it.
pub fn open_store(dir: &Path) -> hearth::store::sqlite::SqliteStore {
    hearth::store::sqlite::SqliteStore::open_at(
        &dir.join("h.db"),
        &hearth::store::sqlite::KeySource::Generated(dir.join("h.db.key")),
    )
    .unwrap()
    .0
}
