//! Rotations: who is on call at a given moment.

use chrono::{DateTime, Utc};

use crate::engine::rules::Rotation;

/// The contact ids on call at `at`: those of the dated overrides that
/// contain it if any does, else those of every weekly shift that contains
/// it, in the order written, without repeats. Local times are read in the
/// rotation's timezone, so a shift from 09:00 to 17:00 covers 09:00–17:00
/// on the wall clock on both sides of a DST change; a nonexistent local
/// time (spring forward) begins at the first instant after the gap, and
/// an ambiguous one (fall back) at its first occurrence.
pub fn on_call(rotation: &Rotation, at: DateTime<Utc>) -> Vec<String> {
    let _ = (rotation, at);
    todo!("rules helper")
}
