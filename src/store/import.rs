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
    pub line: u64,
    pub record: MemberRecord,
    /// `Some(true)`: the roster says the member consented; `Some(false)`: not.
    pub consent: Option<bool>,
}

/// One bad row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub external_id: Option<String>,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.external_id {
            Some(id) => write!(f, "line {} ({id}): {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub consent_granted: usize,
    pub consent_revoked: usize,
    /// Roster said yes, but the member had texted STOP: not re-granted.
    pub consent_kept_opted_out: usize,
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
pub fn attribute_value(cell: &str) -> Option<serde_json::Value> {
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

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut first_line_of_id: HashMap<String, u64> = HashMap::new();
    let mut first_line_of_phone: HashMap<Phone, u64> = HashMap::new();
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
        let get = |k: &str| cell.get(k).copied().unwrap_or("").trim();
        let external_id = get("external_id").to_owned();
        let mut row_errors: Vec<String> = Vec::new();
        if external_id.is_empty() {
            row_errors.push("missing external_id".into());
        }
        let first_name = get("first_name").to_owned();
        if first_name.is_empty() {
            row_errors.push("missing first_name".into());
        }
        let phone = match get("phone").parse::<Phone>() {
            Ok(p) => Some(p),
            Err(_) if get("phone").is_empty() => {
                row_errors.push("missing phone".into());
                None
            }
            Err(_) => {
                row_errors.push("invalid phone number: expected E.164, like +15555550100".into());
                None
            }
        };
        let timezone = get("timezone");
        if let Err(e) = domain::parse_timezone(timezone) {
            let hint = did_you_mean(timezone, domain::timezone_names())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            row_errors.push(format!("{e}{hint}"));
        }
        let joined_on = match get("joined_on") {
            "" => Some(today),
            s => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    row_errors.push(format!("invalid joined_on `{s}`: expected YYYY-MM-DD"));
                    None
                }
            },
        };
        // An empty or absent status says nothing: a re-import keeps the
        // status a member has, so it never reactivates someone staff
        // deactivated. Only an explicit `active` does.
        let status = match get("status") {
            "" => Some(None),
            s => MemberStatus::parse(s)
                .map(Some)
                .map_err(|e| row_errors.push(e))
                .ok(),
        };
        let member_groups = split_list(get("groups"));
        for g in &member_groups {
            if !groups.contains(g) {
                let hint = did_you_mean(g, groups.iter().map(String::as_str))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                row_errors.push(format!("unknown group `{g}`{hint}"));
            }
        }
        let consent = parse_consent(get("consent"))
            .map_err(|e| row_errors.push(e))
            .ok()
            .flatten();
        if !external_id.is_empty() {
            if let Some(first) = first_line_of_id.get(&external_id) {
                row_errors.push(format!("duplicate external_id (also on line {first})"));
            } else {
                first_line_of_id.insert(external_id.clone(), line);
            }
        }
        if let Some(p) = &phone {
            if let Some(first) = first_line_of_phone.get(p) {
                row_errors.push(format!("duplicate phone number (also on line {first})"));
            } else {
                first_line_of_phone.insert(p.clone(), line);
            }
        }
        if !row_errors.is_empty() {
            errors.push(RowError {
                line,
                external_id: (!external_id.is_empty()).then_some(external_id),
                reason: row_errors.join("; "),
            });
            continue;
        }
        let mut attributes = serde_json::Map::new();
        for (k, v) in &cell {
            if !FIELDS.contains(k)
                && let Some(value) = attribute_value(v)
            {
                attributes.insert((*k).to_owned(), value);
            }
        }
        let mut member_groups = member_groups;
        member_groups.sort();
        member_groups.dedup();
        let last_name = Some(get("last_name").to_owned()).filter(|s| !s.is_empty());
        let language = Some(get("language").to_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "en".into());
        rows.push(ImportRow {
            line,
            record: MemberRecord {
                external_id,
                first_name,
                last_name,
                phone: phone.expect("checked above"),
                timezone: timezone.to_owned(),
                language,
                joined_on: joined_on.expect("checked above"),
                status: status.expect("checked above"),
                groups: member_groups,
                attributes,
            },
            consent,
        });
    }
    Ok((rows, errors))
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
pub fn source_name(path: &Path) -> String {
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
