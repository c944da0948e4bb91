//! The order of compilation: every id first (so references can point
//! forward and across files), then each document kind in the order its
//! references need, then the checks that need every rule compiled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::escalations::Known;
use super::surveys::sample_answer;
use super::templates::{Bodies, CrisisReply, owner_of_template};
use super::{Compiler, fingerprint};
use crate::config::raw::{RawFile, Severity};
use crate::rules::template::{self, Templates};
use crate::rules::{
    Alert, Contact, Escalation, Group, Inventory, Rotation, RuleSet, RuleTest, Schedule, Segment,
    Survey,
};

/// What the passes gather beside the compiled rules.
struct Gathered {
    /// A fingerprint of every rule's definition, for reload diffs.
    inventory: Inventory,
    /// Every template body, compiled.
    bodies: Bodies,
    /// Templates some schedule or alert sends.
    used_templates: BTreeSet<String>,
}

impl Compiler<'_> {
    pub(super) fn build(&mut self, files: &[(PathBuf, RawFile)]) -> Option<RuleSet> {
        self.define_ids(files);
        let mut g = Gathered {
            inventory: Inventory::new(),
            bodies: Bodies {
                env: template::environment(),
                places: Vec::new(),
            },
            used_templates: BTreeSet::new(),
        };
        let contacts = self.compile_contacts(files, &mut g.inventory);
        let groups = self.compile_groups(files, &mut g.inventory);
        let segments = self.compile_segments(files, &mut g.inventory);
        self.compile_templates(files, &mut g);
        let surveys = self.compile_surveys(files, &mut g);
        self.learn_questions(&surveys);
        let schedules = self.compile_schedules(files, &mut g);
        let (alerts, crisis_replies) = self.compile_alerts(files, &mut g);
        // Before escalations: `on_call` targets resolve against them.
        let rotations = self.compile_rotations(files, &mut g.inventory);
        let known = Known {
            contacts: &contacts,
            groups: &groups,
            rotations: &rotations,
        };
        let escalations = self.compile_escalations(files, &mut g.inventory, &known);
        let limits = self.limits(files, &mut g.inventory);
        let tests = self.compile_tests(files);

        let renderer = Templates::new(g.bodies.env);
        let templates = self.render_templates(&renderer, &g.bodies.places);
        self.check_crisis_replies(&renderer, &crisis_replies);
        self.check_schedule_times(files, &groups, &schedules);
        self.check_template_places(files, &schedules, &surveys, &renderer);
        self.warn_unused_templates(files, &g.used_templates);

        self.note_unchecked();
        if self.diags.has_errors() {
            return None;
        }
        Some(RuleSet {
            groups,
            segments,
            templates,
            schedules,
            surveys,
            alerts,
            escalations,
            contacts,
            rotations,
            limits,
            tests,
            renderer,
            sandbox: self.sandbox.clone(),
            inventory: g.inventory,
        })
    }

    /// Pass 1: every id, so references can point forward and across files.
    fn define_ids(&mut self, files: &[(PathBuf, RawFile)]) {
        for (path, f) in files {
            for g in &f.groups {
                self.define("group", &g.value.id, path);
            }
            for s in &f.segments {
                self.define("segment", &s.value.id, path);
            }
            for (id, _) in &f.templates.0 {
                self.define("template", id, path);
            }
            for s in &f.schedules {
                self.define("schedule", &s.value.id, path);
            }
            for (id, _) in &f.surveys.0 {
                self.define("survey", id, path);
            }
            for a in &f.alerts {
                self.define("alert", &a.value.id, path);
            }
            for (id, _) in &f.escalations.0 {
                self.define("escalation", id, path);
            }
            for (id, _) in &f.contacts.0 {
                self.define("contact", id, path);
            }
            for (id, _) in &f.rotations.0 {
                self.define("rotation", id, path);
            }
        }
        // A survey's item alerts share the alert ids' namespace (incidents
        // are filed under them); after the alerts, so a clash is reported
        // at the item alert.
        for (path, f) in files {
            for (_, raw) in &f.surveys.0 {
                for a in &raw.alerts {
                    self.define("alert", &a.value.id, path);
                }
            }
        }
    }

    fn compile_contacts(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
    ) -> BTreeMap<String, Contact> {
        let mut contacts = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.contacts.0 {
                if let Some(c) = self.contact(id, raw, path) {
                    inventory.insert(("contacts", id.value.clone()), fingerprint(raw, ""));
                    contacts.insert(id.value.clone(), c);
                }
            }
        }
        contacts
    }

    fn compile_groups(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
    ) -> BTreeMap<String, Group> {
        let mut groups = BTreeMap::new();
        for (path, f) in files {
            for g in &f.groups {
                if let Some(group) = self.group(&g.value, path) {
                    inventory.insert(("groups", group.id.clone()), fingerprint(&g.value, ""));
                    groups.insert(group.id.clone(), group);
                }
            }
        }
        groups
    }

    fn compile_segments(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
    ) -> BTreeMap<String, Segment> {
        let mut segments = BTreeMap::new();
        for (path, f) in files {
            for s in &f.segments {
                if let Some(seg) = self.segment(&s.value, path) {
                    inventory.insert(("segments", seg.id.clone()), fingerprint(&s.value, ""));
                    segments.insert(seg.id.clone(), seg);
                }
            }
        }
        segments
    }

    /// `templates:` into the environment; rendered once every rule is compiled.
    fn compile_templates(&mut self, files: &[(PathBuf, RawFile)], g: &mut Gathered) {
        for (path, f) in files {
            for (id, raw) in &f.templates.0 {
                g.inventory
                    .insert(("templates", id.value.clone()), fingerprint(raw, ""));
                let owner = owner_of_template(&id.value);
                self.add_body(&mut g.bodies, &id.value, &raw.body, path, &owner);
            }
        }
    }

    fn compile_surveys(
        &mut self,
        files: &[(PathBuf, RawFile)],
        g: &mut Gathered,
    ) -> BTreeMap<String, Survey> {
        let mut surveys = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.surveys.0 {
                g.inventory
                    .insert(("surveys", id.value.clone()), fingerprint(raw, ""));
                if let Some(s) = self.survey(id, raw, path, &mut g.bodies) {
                    surveys.insert(s.id.clone(), s);
                }
            }
        }
        surveys
    }

    /// Every question id, and low and high sample answers to each, for
    /// checking and probing the scripts compiled after the surveys.
    fn learn_questions(&mut self, surveys: &BTreeMap<String, Survey>) {
        self.question_ids = surveys
            .values()
            .flat_map(|s: &Survey| s.questions.iter().map(|q| q.id.clone()))
            .collect();
        self.answer_samples = [true, false]
            .into_iter()
            .map(|low| {
                surveys
                    .values()
                    .flat_map(|s| s.questions.iter())
                    .map(|q| (q.id.as_str().into(), sample_answer(&q.expect, low)))
                    .collect()
            })
            .collect();
    }

    fn compile_schedules(
        &mut self,
        files: &[(PathBuf, RawFile)],
        g: &mut Gathered,
    ) -> BTreeMap<String, Schedule> {
        let mut schedules = BTreeMap::new();
        for (path, f) in files {
            for s in &f.schedules {
                g.inventory.insert(
                    ("schedules", s.value.id.value.clone()),
                    fingerprint(&s.value, ""),
                );
                // Counted as used even when the schedule has another error, so
                // that error is not joined by a misleading "not used".
                if let Some(t) = &s.value.template {
                    g.used_templates.insert(t.value.clone());
                }
                if let Some(sched) = self.schedule(&s.value, path) {
                    schedules.insert(sched.id.clone(), sched);
                }
            }
        }
        schedules
    }

    /// The alerts, critical first, and the replies of critical alerts
    /// (checked against a sender not on the roster once templates render).
    fn compile_alerts(
        &mut self,
        files: &[(PathBuf, RawFile)],
        g: &mut Gathered,
    ) -> (Vec<Alert>, Vec<CrisisReply>) {
        let mut alerts = Vec::new();
        let mut crisis_replies: Vec<CrisisReply> = Vec::new();
        for (path, f) in files {
            for a in &f.alerts {
                if let Some(r) = &a.value.reply {
                    g.used_templates.insert(r.value.clone());
                    if a.value.severity == Severity::Critical {
                        crisis_replies.push((path.clone(), r.clone(), a.value.id.value.clone()));
                    }
                }
                if let Some((alert, script_hash)) = self.alert(&a.value, path) {
                    g.inventory.insert(
                        ("alerts", alert.id.clone()),
                        fingerprint(&a.value, &script_hash),
                    );
                    if let Some(r) = &alert.reply {
                        g.used_templates.insert(r.clone());
                    }
                    alerts.push(alert);
                }
            }
        }
        for (_, f) in files {
            for (_, raw) in &f.surveys.0 {
                for r in raw.alerts.iter().filter_map(|a| a.value.reply.as_ref()) {
                    g.used_templates.insert(r.value.clone());
                }
            }
        }
        // Critical first; stable, so file order holds within a severity.
        alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));
        (alerts, crisis_replies)
    }

    fn compile_rotations(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
    ) -> BTreeMap<String, Rotation> {
        let mut rotations = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.rotations.0 {
                if let Some(r) = self.rotation(id, raw, path) {
                    inventory.insert(("rotations", id.value.clone()), fingerprint(raw, ""));
                    rotations.insert(r.id.clone(), r);
                }
            }
        }
        rotations
    }

    fn compile_escalations(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
        known: &Known<'_>,
    ) -> BTreeMap<String, Escalation> {
        let mut escalations = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.escalations.0 {
                if let Some(e) = self.escalation(id, raw, path, known) {
                    inventory.insert(("escalations", id.value.clone()), fingerprint(raw, ""));
                    escalations.insert(e.id.clone(), e);
                }
            }
        }
        escalations
    }

    fn compile_tests(&mut self, files: &[(PathBuf, RawFile)]) -> Vec<RuleTest> {
        let mut tests = Vec::new();
        for (path, f) in files {
            for t in &f.tests {
                if let Some(test) = self.test(&t.value, path) {
                    tests.push(test);
                }
            }
        }
        tests
    }
}
