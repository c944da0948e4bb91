//! Roster import: a CSV with a header row, upserted by external id.
//!
//! The header maps columns to member fields (`external_id`, `first_name`,
//! `last_name`, `phone`, `timezone`, `language`, `joined_on`, `status`,
//! `groups`, `consent`); any other column becomes a typed attribute
//! (integers and decimals as numbers, `true`/`false` as booleans,
//! `a;b;c` as a list, anything else as text). Every bad row is reported
//! with its line number and reason; the import is all-or-nothing unless
//! the caller skips invalid rows. Importing the same file again changes
//! nothing, and a row without a `status` keeps the member's current
//! status (a deactivated member stays inactive unless the row says
//! `active`).
//!
//! Error messages name the line and external id, never the phone number
//! or the name, so they can be pasted into a ticket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;

use crate::domain::member::{MemberRecord, MemberStatus};
use crate::domain::{self, Phone};
use crate::text::did_you_mean;

/// One valid row.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub(crate) line: u64,
    pub(crate) record: MemberRecord,
    /// `Some(true)`: the roster says the member consented; `Some(false)`: not.
    pub(crate) consent: Option<bool>,
}

/// One bad row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub(crate) external_id: Option<String>,
    pub(crate) reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.external_id {
            Some(id) => write!(f, "line {} ({id}): {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// Rows whose `consent` said yes for a member whose consent stands
/// revoked: an import never re-grants it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeptRevoked {
    /// The member texted STOP.
    pub stop: usize,
    /// The provider reported the number opted out.
    pub(crate) provider: usize,
    /// Staff recorded the revocation.
    pub(crate) staff: usize,
}

impl KeptRevoked {
    pub fn total(&self) -> usize {
        self.stop + self.provider + self.staff
    }
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub(crate) rows: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub consent_granted: usize,
    pub consent_revoked: usize,
    /// Rows that said yes for a member whose consent was revoked, left
    /// revoked, by who revoked it.
    pub kept_revoked: KeptRevoked,
    pub invalid: Vec<RowError>,
    /// False when invalid rows stopped the whole import.
    pub applied: bool,
}

const REQUIRED: &[&str] = &["external_id", "first_name", "phone", "timezone"];
const FIELDS: &[&str] = &[
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "timezone",
    "language",
    "joined_on",
    "status",
    "groups",
    "consent",
];

fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An attribute cell as typed JSON; `None` when empty.
pub(crate) fn attribute_value(cell: &str) -> Option<serde_json::Value> {
    let s = cell.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains(';') {
        return Some(serde_json::Value::from(split_list(s)));
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
        && s.chars().any(|c| c == '.')
    {
        return Some(f.into());
    }
    match s {
        "true" => Some(true.into()),
        "false" => Some(false.into()),
        _ => Some(s.into()),
    }
}

fn parse_consent(s: &str) -> Result<Option<bool>, String> {
    match s.trim().to_lowercase().as_str() {
        "" => Ok(None),
        "yes" | "y" | "true" | "1" | "granted" => Ok(Some(true)),
        "no" | "n" | "false" | "0" | "revoked" => Ok(Some(false)),
        other => Err(format!("invalid consent `{other}`: expected yes or no")),
    }
}

/// Parses and validates a roster. `groups` are the ids the live rules
/// define; `today` fills a missing `joined_on`.
pub fn parse(
    input: impl std::io::Read,
    groups: &BTreeSet<String>,
    today: NaiveDate,
) -> Result<(Vec<ImportRow>, Vec<RowError>), RowError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = read_headers(&mut reader)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = Seen::default();
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    external_id: None,
                    reason: format!("malformed CSV row: {}", csv_reason(&e)),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let cell: BTreeMap<&str, &str> = headers
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        match parse_row(&cell, line, groups, today, &mut seen) {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    Ok((rows, errors))
}

/// The header row, names normalised (lower case, `_` for spaces and
/// dashes), checked: every column named once, the required ones there,
/// no `phone_number` (it would become an attribute).
fn read_headers<R: std::io::Read>(reader: &mut csv::Reader<R>) -> Result<Vec<String>, RowError> {
    let header_err = |reason: String| RowError {
        line: 1,
        external_id: None,
        reason,
    };
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| header_err(format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase().replace([' ', '-'], "_"))
        .collect();
    let mut seen_headers = BTreeSet::new();
    for h in &headers {
        if h.is_empty() {
            return Err(header_err("a column has no name in the header row".into()));
        }
        if !seen_headers.insert(h.as_str()) {
            return Err(header_err(format!(
                "column `{h}` appears twice in the header row"
            )));
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|r| !headers.iter().any(|h| h == r))
        .collect();
    if !missing.is_empty() {
        return Err(header_err(format!(
            "the header row lacks required column{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if headers.iter().any(|h| h == "phone_number") {
        return Err(header_err(
            "column `phone_number` would become an attribute; name it `phone`".into(),
        ));
    }
    Ok(headers)
}

/// The first line each external id and phone number appeared on.
#[derive(Default)]
struct Seen {
    ids: HashMap<String, u64>,
    phones: HashMap<Phone, u64>,
}

impl Seen {
    /// Notes the row's id and phone; a reason for each seen before.
    fn check(
        &mut self,
        external_id: &str,
        phone: Option<&Phone>,
        line: u64,
        errs: &mut Vec<String>,
    ) {
        if !external_id.is_empty() {
            if let Some(first) = self.ids.get(external_id) {
                errs.push(format!("duplicate external_id (also on line {first})"));
            } else {
                self.ids.insert(external_id.to_owned(), line);
            }
        }
        if let Some(p) = phone {
            if let Some(first) = self.phones.get(p) {
                errs.push(format!("duplicate phone number (also on line {first})"));
            } else {
                self.phones.insert(p.clone(), line);
            }
        }
    }
}

/// One record: every field checked (each problem noted, in column
/// order), then duplicates; a row with any problem is one error naming
/// them all.
fn parse_row(
    cell: &BTreeMap<&str, &str>,
    line: u64,
    groups: &BTreeSet<String>,
    today: NaiveDate,
    seen: &mut Seen,
) -> Result<ImportRow, RowError> {
    let get = |k: &str| cell.get(k).copied().unwrap_or("").trim();
    let mut errs: Vec<String> = Vec::new();
    let external_id = required(get("external_id"), "external_id", &mut errs);
    let first_name = required(get("first_name"), "first_name", &mut errs);
    let phone = phone(get("phone"), &mut errs);
    let timezone = get("timezone");
    check_timezone(timezone, &mut errs);
    let joined_on = joined_on(get("joined_on"), today, &mut errs);
    // An empty or absent status says nothing: a re-import keeps the
    // status a member has, so it never reactivates someone staff
    // deactivated. Only an explicit `active` does.
    let status = match get("status") {
        "" => Some(None),
        s => MemberStatus::parse(s)
            .map(Some)
            .map_err(|e| errs.push(e.into()))
            .ok(),
    };
    let mut member_groups = split_list(get("groups"));
    check_groups(&member_groups, groups, &mut errs);
    let consent = parse_consent(get("consent"))
        .map_err(|e| errs.push(e))
        .ok()
        .flatten();
    seen.check(&external_id, phone.as_ref(), line, &mut errs);
    let (Some(phone), Some(joined_on), Some(status), true) =
        (phone, joined_on, status, errs.is_empty())
    else {
        return Err(RowError {
            line,
            external_id: (!external_id.is_empty()).then_some(external_id),
            reason: errs.join("; "),
        });
    };
    member_groups.sort();
    member_groups.dedup();
    let last_name = Some(get("last_name").to_owned()).filter(|s| !s.is_empty());
    let language = Some(get("language").to_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "en".into());
    Ok(ImportRow {
        line,
        record: MemberRecord {
            external_id,
            first_name,
            last_name,
            phone,
            timezone: timezone.to_owned(),
            language,
            joined_on,
            status,
            groups: member_groups,
            attributes: attributes(cell),
        },
        consent,
    })
}

/// A required cell's text; "missing NAME" noted when it is empty.
fn required(value: &str, name: &str, errs: &mut Vec<String>) -> String {
    if value.is_empty() {
        errs.push(format!("missing {name}"));
    }
    value.to_owned()
}

fn phone(value: &str, errs: &mut Vec<String>) -> Option<Phone> {
    match value.parse::<Phone>() {
        Ok(p) => Some(p),
        Err(_) if value.is_empty() => {
            errs.push("missing phone".into());
            None
        }
        Err(_) => {
            errs.push("invalid phone number: expected E.164, like +15555550100".into());
            None
        }
    }
}

fn check_timezone(value: &str, errs: &mut Vec<String>) {
    if let Err(e) = domain::parse_timezone(value) {
        let hint = did_you_mean(value, domain::timezone_names())
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        errs.push(format!("{e}{hint}"));
    }
}

/// `joined_on` as a date; `today` when empty.
fn joined_on(value: &str, today: NaiveDate, errs: &mut Vec<String>) -> Option<NaiveDate> {
    match value {
        "" => Some(today),
        s => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errs.push(format!("invalid joined_on `{s}`: expected YYYY-MM-DD"));
                None
            }
        },
    }
}

/// Every group the row names must be one the rules define.
fn check_groups(member_groups: &[String], groups: &BTreeSet<String>, errs: &mut Vec<String>) {
    for g in member_groups {
        if !groups.contains(g) {
            let hint = did_you_mean(g, groups.iter().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            errs.push(format!("unknown group `{g}`{hint}"));
        }
    }
}

/// The cells of columns that are no member field, typed.
fn attributes(cell: &BTreeMap<&str, &str>) -> serde_json::Map<String, serde_json::Value> {
    let mut attributes = serde_json::Map::new();
    for (k, v) in cell {
        if !FIELDS.contains(k)
            && let Some(value) = attribute_value(v)
        {
            attributes.insert((*k).to_owned(), value);
        }
    }
    attributes
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Apply the valid rows even when some are invalid.
    pub skip_invalid: bool,
    /// The exact consent text members agreed to; needed when rows grant consent.
    pub consent_text: Option<String>,
    pub actor: String,
    /// For the audit trail: the file's name (not its path).
    pub source_name: String,
}

/// The file name to record for an import, without its directories.
pub(crate) fn source_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> BTreeSet<String> {
        ["tuesday-anxiety", "thursday-grief"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    #[test]
    fn attributes_are_typed() {
        assert_eq!(attribute_value("2"), Some(2.into()));
        assert_eq!(attribute_value("2.5"), Some(2.5.into()));
        assert_eq!(
            attribute_value("PTSD;C-PTSD"),
            Some(serde_json::json!(["PTSD", "C-PTSD"]))
        );
        assert_eq!(attribute_value("true"), Some(true.into()));
        assert_eq!(attribute_value("Grief"), Some("Grief".into()));
        assert_eq!(attribute_value("  "), None);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_nothing_phi_in_it() {
        let csv = "external_id,first_name,phone,timezone,groups,consent,progress_level\n\
                   M1,Ann,+15555550101,America/New_York,tuesday-anxiety,yes,2\n\
                   M2,Bob,555-0102,America/New_York,,yes,1\n\
                   M3,Cat,+15555550103,America/New_Yrok,,no,\n\
                   M4,Dan,+15555550104,America/Chicago,tuesday-anxeity,,\n\
                   M1,Eve,+15555550105,America/Chicago,,,\n\
                   M6,Fay,+15555550101,America/Chicago,,maybe,\n";
        let (rows, errors) = parse(csv.as_bytes(), &groups(), today()).unwrap();
        assert_eq!(rows.len(), 1);
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "line 3 (M2): invalid phone number: expected E.164, like +15555550100",
                "line 4 (M3): unknown timezone `America/New_Yrok` (did you mean `America/New_York`?)",
                "line 5 (M4): unknown group `tuesday-anxeity` (did you mean `tuesday-anxiety`?)",
                "line 6 (M1): duplicate external_id (also on line 2)",
                "line 7 (M6): invalid consent `maybe`: expected yes or no; duplicate phone number (also on line 2)",
            ]
        );
        for e in &shown {
            assert!(!e.contains("555-0102") && !e.contains("Bob"), "{e}");
        }
        let r = &rows[0].record;
        assert_eq!(r.attributes.get("progress_level"), Some(&2.into()));
        assert_eq!(r.language, "en");
        assert_eq!(r.joined_on, today());
        assert_eq!(rows[0].consent, Some(true));
    }

    #[test]
    fn a_header_without_required_columns_is_rejected_whole() {
        let err = parse(
            "external_id,first_name\nM1,Ann\n".as_bytes(),
            &groups(),
            today(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the header row lacks required columns `phone`, `timezone`"
        );
    }

    #[test]
    fn a_ragged_row_is_reported_not_fatal() {
        let csv =
            "external_id,first_name,phone,timezone\nM1,Ann,+15555550101\nM2,Bob,+15555550102,UTC\n";
        let (rows, errors) = parse(csv.as_bytes(), &groups(), today()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "line 2: malformed CSV row: 3 fields where the header has 4"
        );
    }
}
