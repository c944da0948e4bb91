//! What the benchmarks share: importing a generated roster as staff would.

// Each bench uses what it needs of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;

use hearth::store::import::{self, ImportOptions, ImportReport};
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;

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
