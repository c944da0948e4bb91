//! What changed between two rule sets: a pure function over inventories.

use std::collections::BTreeMap;
use std::fmt;

use crate::rules::Inventory;

/// Ids added, changed and removed, by kind (`templates`, `alerts`, …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuleDiff {
    pub(crate) kinds: BTreeMap<&'static str, KindDiff>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindDiff {
    pub(crate) added: Vec<String>,
    pub(crate) changed: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl RuleDiff {
    pub(crate) fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// Compares two inventories; ids come out sorted.
pub(crate) fn diff(old: &Inventory, new: &Inventory) -> RuleDiff {
    let mut out = RuleDiff::default();
    for ((kind, id), fp) in new {
        match old.get(&(*kind, id.clone())) {
            None => out.kinds.entry(*kind).or_default().added.push(id.clone()),
            Some(old_fp) if old_fp != fp => {
                out.kinds.entry(*kind).or_default().changed.push(id.clone())
            }
            Some(_) => {}
        }
    }
    for (kind, id) in old.keys() {
        if !new.contains_key(&(*kind, id.clone())) {
            out.kinds.entry(*kind).or_default().removed.push(id.clone());
        }
    }
    out
}

impl fmt::Display for RuleDiff {
    /// `templates: +welcome ~session-reminder -old; alerts: ~low-mood`, or
    /// `no changes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let mut first = true;
        for (kind, d) in &self.kinds {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{kind}:")?;
            for (sign, ids) in [("+", &d.added), ("~", &d.changed), ("-", &d.removed)] {
                for id in ids {
                    write!(f, " {sign}{id}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(items: &[(&'static str, &str, &str)]) -> Inventory {
        items
            .iter()
            .map(|(k, id, fp)| ((*k, id.to_string()), fp.to_string()))
            .collect()
    }

    #[test]
    fn table_of_changes() {
        struct Case {
            name: &'static str,
            old: Inventory,
            new: Inventory,
            want: &'static str,
        }
        let cases = [
            Case {
                name: "identical",
                old: inv(&[("alerts", "a", "1")]),
                new: inv(&[("alerts", "a", "1")]),
                want: "no changes",
            },
            Case {
                name: "added",
                old: inv(&[]),
                new: inv(&[("alerts", "a", "1")]),
                want: "alerts: +a",
            },
            Case {
                name: "removed",
                old: inv(&[("alerts", "a", "1")]),
                new: inv(&[]),
                want: "alerts: -a",
            },
            Case {
                name: "changed",
                old: inv(&[("alerts", "a", "1")]),
                new: inv(&[("alerts", "a", "2")]),
                want: "alerts: ~a",
            },
            Case {
                name: "same id, different kinds are different rules",
                old: inv(&[("templates", "x", "1")]),
                new: inv(&[("surveys", "x", "1")]),
                want: "surveys: +x; templates: -x",
            },
            Case {
                name: "mixed, sorted",
                old: inv(&[
                    ("templates", "b", "1"),
                    ("templates", "c", "1"),
                    ("alerts", "z", "1"),
                ]),
                new: inv(&[
                    ("templates", "a", "1"),
                    ("templates", "b", "9"),
                    ("alerts", "z", "1"),
                ]),
                want: "templates: +a ~b -c",
            },
        ];
        for case in cases {
            assert_eq!(
                diff(&case.old, &case.new).to_string(),
                case.want,
                "{}",
                case.name
            );
        }
    }
}
