//! `groups:`: timezone, session pattern, cancelled dates, facilitators.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawGroup;
use crate::config::rules::Group;
use crate::schedule::{CronSpec, parse_date};

impl Compiler<'_> {
    pub(super) fn group(&mut self, g: &RawGroup, path: &Path) -> Option<Group> {
        let owner = rule("group", &g.id.value);
        let timezone = self.timezone(&g.timezone, path, &owner);
        let sessions = CronSpec::parse(&g.sessions.value.cron.value)
            .map_err(|e| self.invalid(Place::of(path, &g.sessions.value.cron), &owner, e))
            .ok();
        let duration = self.duration(&g.sessions.value.duration, path, &owner);
        let mut cancelled = BTreeSet::new();
        let mut ok = true;
        for d in &g.sessions.value.cancelled {
            match parse_date(&d.value) {
                Ok(date) => {
                    if let (Some(tz), Some(spec)) = (&timezone, &sessions)
                        && !crate::schedule::calendar::meets_on(spec, *tz, date)
                    {
                        self.diags
                            .warning(
                                Place::of(path, d),
                                Some(&owner),
                                format!(
                                    "group `{}` has no session on {date} to cancel",
                                    g.id.value
                                ),
                            )
                            .with_hint(format!("its sessions follow `{}`", spec.pattern()));
                    }
                    cancelled.insert(date);
                }
                Err(e) => {
                    ok = false;
                    self.diags.error(Place::of(path, d), Some(&owner), e);
                }
            }
        }
        for f in &g.facilitators {
            ok &= self.reference("contact", f, path, &owner);
        }
        if g.name.value.trim().is_empty() {
            ok = false;
            self.diags.error(
                Place::of(path, &g.name),
                Some(&owner),
                format!("group `{}` has an empty name", g.id.value),
            );
        }
        Some(Group {
            id: g.id.value.clone(),
            name: g.name.value.clone(),
            timezone: timezone?,
            sessions: sessions?,
            duration: duration?,
            cancelled,
            extra: Vec::new(),
            facilitators: g.facilitators.iter().map(|f| f.value.clone()).collect(),
        })
        .filter(|_| ok)
    }
}
