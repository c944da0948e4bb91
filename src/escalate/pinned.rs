//! The policy an incident follows, pinned when its escalation starts.
//!
//! Pinning copies the policy's steps, the contacts they can reach (with
//! their addresses), the rotations they name, and the facilitators of
//! the member's groups, as they were at that moment. A reload that
//! changes or removes the policy, a contact or a rotation changes only
//! incidents opened after it; a running escalation goes on as it began
//! (its version is on record) and is never orphaned.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Entry, entry_at};
use crate::domain::Channel;
use crate::rules::{Contact, Repeat, Rotation, RuleSet, Step, Target};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pinned {
    pub(crate) policy: String,
    /// The policy's fingerprint when pinned.
    pub version: String,
    pub(crate) steps: Vec<PinnedStep>,
    pub(crate) backup: Option<PinnedStep>,
    pub(crate) repeat: Repeat,
    pub(crate) resolve_within_secs: Option<u64>,
    /// Every contact a step can reach, by id.
    pub(crate) contacts: BTreeMap<String, PinnedContact>,
    pub(crate) rotations: BTreeMap<String, Rotation>,
    /// The facilitators of the member's groups (for `group.facilitators`),
    /// in group order, without repeats.
    pub(crate) facilitators: Vec<String>,
    /// The names of the member's groups, for notices.
    pub(crate) groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedStep {
    pub(crate) targets: Vec<Target>,
    pub(crate) via: Vec<Channel>,
    pub(crate) ack_within_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedContact {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    /// E.164.
    pub(crate) sms: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) webhook: Option<String>,
    pub(crate) phi: bool,
}

impl PinnedContact {
    fn of(c: &Contact) -> PinnedContact {
        PinnedContact {
            id: c.id.clone(),
            name: c.name.clone(),
            sms: c.sms.as_ref().map(|p| p.as_str().to_owned()),
            email: c.email.clone(),
            webhook: c.webhook.clone(),
            phi: c.phi,
        }
    }

    /// How notices name this contact to colleagues: its name without
    /// any parenthesis or credentials ("Dana Reyes"), else its id.
    pub(crate) fn display(&self) -> String {
        match self.name.as_deref().map(super::notice::staff_name) {
            Some(name) if !name.is_empty() => name,
            _ => self.id.clone(),
        }
    }

    pub(crate) fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Sms => self.sms.as_deref(),
            Channel::Email => self.email.as_deref(),
            Channel::Webhook => self.webhook.as_deref(),
        }
    }
}

fn pin_step(s: &Step) -> PinnedStep {
    PinnedStep {
        targets: s.targets.clone(),
        via: s.via.clone(),
        ack_within_secs: s.ack_within.as_secs(),
    }
}

impl Pinned {
    /// Pins `policy` from `rules` for a member in `member_groups` (empty
    /// for an unknown sender); `None` when the rules have no such policy.
    pub fn pin(rules: &RuleSet, policy: &str, member_groups: &[String]) -> Option<Pinned> {
        let p = rules.escalations.get(policy)?;
        let mut facilitators: Vec<String> = Vec::new();
        let mut groups = Vec::new();
        for g in member_groups {
            if let Some(group) = rules.groups.get(g) {
                groups.push(group.name.clone());
                for f in &group.facilitators {
                    if !facilitators.contains(f) {
                        facilitators.push(f.clone());
                    }
                }
            }
        }
        let steps: Vec<&Step> = p.steps.iter().chain(p.backup.iter()).collect();
        let mut contacts = BTreeMap::new();
        let mut rotations = BTreeMap::new();
        let add = |id: &str, contacts: &mut BTreeMap<String, PinnedContact>| {
            if let Some(c) = rules.contacts.get(id) {
                contacts.insert(id.to_owned(), PinnedContact::of(c));
            }
        };
        for s in &steps {
            for t in &s.targets {
                match t {
                    Target::Contact(id) => add(id, &mut contacts),
                    Target::GroupFacilitators => {
                        for f in &facilitators {
                            add(f, &mut contacts);
                        }
                    }
                    Target::OnCall(r) => {
                        if let Some(rot) = rules.rotations.get(r) {
                            for c in rot
                                .shifts
                                .iter()
                                .flat_map(|s| &s.contacts)
                                .chain(rot.overrides.iter().flat_map(|o| &o.contacts))
                            {
                                add(c, &mut contacts);
                            }
                            rotations.insert(r.clone(), rot.clone());
                        }
                    }
                }
            }
        }
        Some(Pinned {
            policy: p.id.clone(),
            version: rules
                .inventory
                .get(&("escalations", p.id.clone()))
                .cloned()
                .unwrap_or_default(),
            steps: p.steps.iter().map(pin_step).collect(),
            backup: p.backup.as_ref().map(pin_step),
            repeat: p.repeat,
            resolve_within_secs: p.resolve_within.map(|d| d.as_secs()),
            contacts,
            rotations,
            facilitators,
            groups,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub(crate) fn from_json(s: &str) -> Result<Pinned, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The sequence's entry at `position`; `None` past its end.
    pub(crate) fn entry(&self, position: u64) -> Option<Entry> {
        entry_at(
            self.steps.len() as u32,
            self.repeat,
            self.backup.is_some(),
            position,
        )
    }

    /// The last entry of a finite sequence, with the sequence's length;
    /// `None` for one that never ends (`until_acknowledged`) or has no
    /// step.
    pub(crate) fn last_entry(&self) -> Option<(Entry, u64)> {
        let Repeat::Times(r) = self.repeat else {
            return None;
        };
        let len = (self.steps.len() as u64)
            .saturating_mul(u64::from(r) + 1)
            .saturating_add(u64::from(self.backup.is_some()));
        let last = self.entry(len.checked_sub(1)?)?;
        Some((last, len))
    }

    pub(crate) fn step(&self, e: &Entry) -> Option<&PinnedStep> {
        if e.backup {
            self.backup.as_ref()
        } else {
            self.steps.get(e.step as usize)
        }
    }

    /// The step's 1-based number as people read it ("step 2"); the backup
    /// step is numbered after the others.
    pub(crate) fn step_number(e: &Entry) -> u32 {
        e.step + 1
    }

    /// Whom `step` reaches at `at`, in target order, each once: named
    /// contacts, the member's groups' facilitators, whoever the rotation
    /// has on call at that moment.
    pub(crate) fn recipients(&self, step: &PinnedStep, at: DateTime<Utc>) -> Vec<&PinnedContact> {
        let mut ids: Vec<String> = Vec::new();
        for t in &step.targets {
            let more: Vec<String> = match t {
                Target::Contact(id) => vec![id.clone()],
                Target::GroupFacilitators => self.facilitators.clone(),
                Target::OnCall(r) => self
                    .rotations
                    .get(r)
                    .map(|rot| super::rotation::on_call(rot, at))
                    .unwrap_or_default(),
            };
            for id in more {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.iter().filter_map(|id| self.contacts.get(id)).collect()
    }

    /// Whether a contact is on this incident's chain: any step could reach
    /// it (named, a facilitator of the member's group, or in a rotation a
    /// step names).
    pub(crate) fn on_chain(&self, contact: &str) -> bool {
        self.steps.iter().chain(self.backup.iter()).any(|s| {
            s.targets.iter().any(|t| match t {
                Target::Contact(id) => id == contact,
                Target::GroupFacilitators => self.facilitators.iter().any(|f| f == contact),
                Target::OnCall(r) => self.rotations.get(r).is_some_and(|rot| {
                    rot.shifts
                        .iter()
                        .flat_map(|s| &s.contacts)
                        .chain(rot.overrides.iter().flat_map(|o| &o.contacts))
                        .any(|c| c == contact)
                }),
            })
        })
    }

    /// Every channel the policy pages `c` on that `c` has an address for,
    /// in step order: where a reminder or a forwarded follow-up reaches
    /// one contact.
    pub(crate) fn channels_of(&self, c: &PinnedContact) -> Vec<Channel> {
        let mut out: Vec<Channel> = Vec::new();
        for s in self.steps.iter().chain(self.backup.iter()) {
            for ch in &s.via {
                if c.address(*ch).is_some() && !out.contains(ch) {
                    out.push(*ch);
                }
            }
        }
        out
    }

    pub(crate) fn resolve_within(&self) -> Option<chrono::TimeDelta> {
        self.resolve_within_secs
            .map(|s| chrono::TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000)))
    }
}
