//! `escalations:`: steps, their targets and channels, `repeat`, the
//! backup step and `resolve_within`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawEscalation, RawRepeat, RawStep, RawTarget};
use crate::rules::{Channel, Contact, Escalation, Group, Repeat, Rotation, Step, Target};

/// What `repeat:` accepts, for hints.
const REPEAT_HINT: &str = "write a whole number of extra rounds, like `repeat: 2`, or `repeat: until_acknowledged` to page until someone acknowledges";

/// The contacts and groups a policy's targets resolve against.
pub(super) struct Known<'r> {
    pub(crate) contacts: &'r BTreeMap<String, Contact>,
    pub(crate) groups: &'r BTreeMap<String, Group>,
    pub(crate) rotations: &'r BTreeMap<String, Rotation>,
}

impl Compiler<'_> {
    pub(super) fn escalation(
        &mut self,
        id_at: &Spanned<String>,
        raw: &RawEscalation,
        path: &Path,
        known: &Known<'_>,
    ) -> Option<Escalation> {
        let id = id_at.value.as_str();
        let owner = rule("escalation", id);
        let mut ok = true;
        if raw.steps.is_empty() {
            ok = false;
            let at = Place::of(path, id_at);
            self.diags
                .error(at, Some(&owner), format!("escalation `{id}` has no steps"));
        }
        let last = raw.steps.len().saturating_sub(1);
        let mut steps = Vec::new();
        let mut backup = None;
        for (n, step) in raw.steps.iter().enumerate() {
            let st = &step.value;
            let is_backup = st.backup.as_ref().is_some_and(|b| b.value);
            if is_backup && let Some(flag) = &st.backup {
                ok &= self.backup_in_place(id, n, raw.steps.len(), flag, path);
            }
            if st.notify.is_empty() || st.via.is_empty() {
                ok = false;
                self.diags.error(
                    Place::of(path, step),
                    Some(&owner),
                    format!(
                        "step {} of escalation `{id}` needs `notify` and `via`",
                        n + 1
                    ),
                );
            }
            let (targets, targets_ok) = self.step_targets(n, st, path, &owner, known);
            ok &= targets_ok;
            let ack = self.duration(&st.ack_within, path, &owner);
            match ack {
                Some(ack) => {
                    let compiled = Step {
                        targets,
                        via: st.via.iter().map(|v| v.value).collect(),
                        ack_within: ack,
                    };
                    if is_backup && n == last && last > 0 {
                        backup = Some(compiled);
                    } else {
                        steps.push(compiled);
                    }
                }
                None => ok = false,
            }
        }
        let repeat = match &raw.repeat {
            None => Some(Repeat::Times(0)),
            Some(r) => self.repeat(r, path, &owner),
        };
        let resolve_within = match &raw.resolve_within {
            None => Some(None),
            Some(d) => self.duration(d, path, &owner).map(Some),
        };
        let (Some(repeat), Some(resolve_within), true) = (repeat, resolve_within, ok) else {
            return None;
        };
        Some(Escalation {
            id: id.to_owned(),
            steps,
            repeat,
            backup,
            resolve_within,
        })
    }

    /// A `backup: true` step must be the last of several; false (reported)
    /// when it is not.
    fn backup_in_place(
        &mut self,
        id: &str,
        n: usize,
        steps: usize,
        flag: &Spanned<bool>,
        path: &Path,
    ) -> bool {
        let owner = rule("escalation", id);
        if steps == 1 {
            self.diags
                .error(
                    Place::of(path, flag),
                    Some(&owner),
                    format!("escalation `{id}` has only a backup step"),
                )
                .with_hint("a backup step runs once the ordinary steps are done; add at least one step before it");
            return false;
        }
        if n != steps - 1 {
            self.diags
                .error(
                    Place::of(path, flag),
                    Some(&owner),
                    format!(
                        "step {} of escalation `{id}` is marked `backup: true`, but only the last step may be",
                        n + 1
                    ),
                )
                .with_hint("move the backup step to the end of `steps` (a policy has at most one)");
            return false;
        }
        true
    }

    /// The targets of step `n` that name something known, and whether
    /// everyone they may reach has an address on every channel of the step.
    fn step_targets(
        &mut self,
        n: usize,
        st: &RawStep,
        path: &Path,
        owner: &str,
        known: &Known<'_>,
    ) -> (Vec<Target>, bool) {
        let mut ok = true;
        let mut targets = Vec::new();
        for t in &st.notify {
            let Some(target) = self.target(t, path, owner) else {
                ok = false;
                continue;
            };
            // Everyone a target may reach must be reachable on every channel.
            for (c, role) in reached(&target, known) {
                for via in &st.via {
                    let has = match via.value {
                        Channel::Sms => c.sms.is_some(),
                        Channel::Email => c.email.is_some(),
                        Channel::Webhook => c.webhook.is_some(),
                    };
                    if !has {
                        ok = false;
                        let name = channel_name(via.value);
                        self.diags.error(
                            Place::of(path, t),
                            Some(owner),
                            format!(
                                "step {} notifies contact `{}`{role} by {name}, but it has no {name} address",
                                n + 1,
                                c.id,
                            ),
                        );
                    }
                }
            }
            targets.push(target);
        }
        (targets, ok)
    }

    /// One `notify:` item; `None` (reported) when it names nothing known.
    fn target(&mut self, t: &Spanned<RawTarget>, path: &Path, owner: &str) -> Option<Target> {
        match &t.value {
            RawTarget::Name(name) if name == "group.facilitators" => {
                Some(Target::GroupFacilitators)
            }
            RawTarget::Name(name) => {
                let named = Spanned {
                    value: name.clone(),
                    referenced: t.referenced,
                    defined: t.defined,
                };
                self.reference("contact", &named, path, owner)
                    .then(|| Target::Contact(name.clone()))
            }
            RawTarget::OnCall(on_call) => self
                .reference("rotation", &on_call.on_call, path, owner)
                .then(|| Target::OnCall(on_call.on_call.value.clone())),
        }
    }

    fn repeat(&mut self, r: &Spanned<RawRepeat>, path: &Path, owner: &str) -> Option<Repeat> {
        let written = match &r.value {
            RawRepeat::Number(n) => match u32::try_from(*n) {
                Ok(n) => return Some(Repeat::Times(n)),
                Err(_) => n.to_string(),
            },
            RawRepeat::Word(w) if w.trim() == "until_acknowledged" => {
                return Some(Repeat::UntilAcknowledged);
            }
            RawRepeat::Word(w) => match w.trim().parse::<u32>() {
                Ok(n) => return Some(Repeat::Times(n)),
                Err(_) => w.clone(),
            },
            RawRepeat::Other(o) => o.clone(),
        };
        let hint = if written.trim().eq_ignore_ascii_case("until_acknowledged")
            || written.contains("ack")
        {
            "write `repeat: until_acknowledged` (lowercase, with an underscore)".to_owned()
        } else {
            REPEAT_HINT.to_owned()
        };
        self.diags
            .error(
                Place::of(path, r),
                Some(owner),
                format!(
                    "invalid `repeat: {written}`: expected a whole number from 0 or `until_acknowledged`"
                ),
            )
            .with_hint(hint);
        None
    }
}

/// The contacts a target may reach, each with how (`" (on call in
/// rotation \`nights\`)"`), without repeats.
fn reached<'k>(target: &Target, known: &Known<'k>) -> Vec<(&'k Contact, String)> {
    let ids: Vec<(&String, String)> = match target {
        Target::Contact(c) => vec![(c, String::new())],
        Target::GroupFacilitators => known
            .groups
            .values()
            .flat_map(|g| g.facilitators.iter())
            .map(|f| (f, String::new()))
            .collect(),
        Target::OnCall(r) => known
            .rotations
            .get(r)
            .map(|rot| {
                rot.shifts
                    .iter()
                    .flat_map(|s| s.contacts.iter())
                    .chain(rot.overrides.iter().flat_map(|o| o.contacts.iter()))
                    .map(|c| (c, format!(" (on call in rotation `{r}`)")))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut seen = std::collections::BTreeSet::new();
    ids.into_iter()
        .filter(|(id, _)| seen.insert(id.as_str()))
        .filter_map(|(id, role)| known.contacts.get(id).map(|c| (c, role)))
        .collect()
}

pub(super) fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}

#[cfg(test)]
mod tests {
    use super::super::groups::tests::{compile_yaml, lines};
    use crate::rules::{Channel, Repeat, Target};

    const CONTACTS: &str = "contacts:\n  dana: { name: Dana Reyes, sms: \"+15555550101\", email: dana@clinic.example, phi: true }\n  lee: { sms: \"+15555550102\", email: lee@clinic.example }\n  sam: { sms: \"+15555550103\" }\n  director: { sms: \"+15555550104\", email: director@clinic.example }\n";

    const ROTATION: &str = "rotations:\n  nights:\n    timezone: America/New_York\n    shifts:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], from: \"17:00\", to: \"09:00\", contacts: [dana] }\n      - { days: [mon, tue, wed, thu, fri, sat, sun], from: \"09:00\", to: \"17:00\", contacts: [lee] }\n";

    fn doc(escalation: &str) -> String {
        format!("{CONTACTS}{ROTATION}escalations:\n  crisis:\n{escalation}")
    }

    fn errors(text: &str) -> Vec<String> {
        let c = compile_yaml(text);
        assert!(c.rules.is_none(), "expected an error: {:?}", lines(&c));
        lines(&c)
            .into_iter()
            .filter(|l| l.starts_with("error"))
            .collect()
    }

    #[test]
    fn a_policy_compiles_with_on_call_repeat_until_acknowledged_a_backup_and_resolve_within() {
        let c = compile_yaml(&doc(
            "    steps:\n      - notify: [lee]\n        via: [sms, email]\n        ack_within: 10m\n      - notify: [{on_call: nights}, dana]\n        via: [sms]\n        ack_within: 10m\n      - notify: [director]\n        via: [sms, email]\n        ack_within: 30m\n        backup: true\n    repeat: until_acknowledged\n    resolve_within: 4h\n",
        ));
        let shown = lines(&c);
        let rules = c.rules.unwrap_or_else(|| panic!("{shown:?}"));
        let e = &rules.escalations["crisis"];
        assert_eq!(e.steps.len(), 2, "the backup step is not an ordinary one");
        assert_eq!(e.steps[0].targets, [Target::Contact("lee".into())]);
        assert_eq!(
            e.steps[1].targets,
            [
                Target::OnCall("nights".into()),
                Target::Contact("dana".into())
            ]
        );
        assert_eq!(e.steps[1].via, [Channel::Sms]);
        assert_eq!(e.steps[1].ack_within.as_secs(), 600);
        let backup = e.backup.as_ref().expect("a backup step");
        assert_eq!(backup.targets, [Target::Contact("director".into())]);
        assert_eq!(backup.ack_within.as_secs(), 1800);
        assert_eq!(e.repeat, Repeat::UntilAcknowledged);
        assert_eq!(e.resolve_within.map(|d| d.as_secs()), Some(4 * 3600));
        assert!(rules.contacts["dana"].phi);
        assert!(!rules.contacts["lee"].phi);
        assert!(rules.rotations.contains_key("nights"));
        assert!(
            rules
                .inventory
                .contains_key(&("rotations", "nights".to_owned()))
        );
    }

    #[test]
    fn repeat_defaults_to_no_more_rounds_and_takes_a_whole_number() {
        let step =
            "    steps:\n      - notify: [lee]\n        via: [sms]\n        ack_within: 10m\n";
        let rules = compile_yaml(&doc(step)).rules.expect("rules");
        assert_eq!(rules.escalations["crisis"].repeat, Repeat::Times(0));
        assert!(rules.escalations["crisis"].backup.is_none());
        assert!(rules.escalations["crisis"].resolve_within.is_none());
        let rules = compile_yaml(&doc(&format!("{step}    repeat: 3\n")))
            .rules
            .expect("rules");
        assert_eq!(rules.escalations["crisis"].repeat, Repeat::Times(3));
    }

    #[test]
    fn a_repeat_that_is_not_a_whole_number_or_until_acknowledged_is_an_error_with_a_hint() {
        let step =
            "    steps:\n      - notify: [lee]\n        via: [sms]\n        ack_within: 10m\n";
        assert_eq!(
            errors(&doc(&format!("{step}    repeat: forever\n"))),
            [
                "error: escalation `crisis`: invalid `repeat: forever`: expected a whole number from 0 or `until_acknowledged` | hint: write a whole number of extra rounds, like `repeat: 2`, or `repeat: until_acknowledged` to page until someone acknowledges"
            ]
        );
        assert_eq!(
            errors(&doc(&format!("{step}    repeat: -1\n"))),
            [
                "error: escalation `crisis`: invalid `repeat: -1`: expected a whole number from 0 or `until_acknowledged` | hint: write a whole number of extra rounds, like `repeat: 2`, or `repeat: until_acknowledged` to page until someone acknowledges"
            ]
        );
        assert_eq!(
            errors(&doc(&format!("{step}    repeat: until-acknowledged\n"))),
            [
                "error: escalation `crisis`: invalid `repeat: until-acknowledged`: expected a whole number from 0 or `until_acknowledged` | hint: write `repeat: until_acknowledged` (lowercase, with an underscore)"
            ]
        );
        assert_eq!(errors(&doc(&format!("{step}    repeat: 1.5\n"))).len(), 1);
    }

    #[test]
    fn a_backup_step_that_is_not_the_last_is_an_error() {
        assert_eq!(
            errors(&doc(
                "    steps:\n      - notify: [lee]\n        via: [sms]\n        ack_within: 10m\n        backup: true\n      - notify: [dana]\n        via: [sms]\n        ack_within: 10m\n",
            )),
            [
                "error: step 1 of escalation `crisis` is marked `backup: true`, but only the last step may be | hint: move the backup step to the end of `steps` (a policy has at most one)"
            ]
        );
    }

    #[test]
    fn a_backup_step_that_is_the_only_step_is_an_error() {
        assert_eq!(
            errors(&doc(
                "    steps:\n      - notify: [lee]\n        via: [sms]\n        ack_within: 10m\n        backup: true\n",
            )),
            [
                "error: escalation `crisis` has only a backup step | hint: a backup step runs once the ordinary steps are done; add at least one step before it"
            ]
        );
    }

    #[test]
    fn an_unknown_rotation_in_on_call_is_an_error_with_a_suggestion() {
        assert_eq!(
            errors(&doc(
                "    steps:\n      - notify: [{on_call: night}]\n        via: [sms]\n        ack_within: 10m\n",
            )),
            ["error: escalation `crisis`: unknown rotation `night` | hint: did you mean `nights`?"]
        );
    }

    #[test]
    fn everyone_a_rotation_puts_on_call_must_have_an_address_for_every_channel() {
        // sam has no email; he is on call only through an override.
        let text = format!(
            "{CONTACTS}rotations:\n  nights:\n    timezone: America/New_York\n    shifts:\n      - {{ days: [mon], from: \"00:00\", to: \"00:00\", contacts: [dana] }}\n    overrides:\n      - {{ from: \"2026-12-24T17:00\", to: \"2026-12-26T09:00\", contacts: [sam] }}\nescalations:\n  crisis:\n    steps:\n      - notify: [{{on_call: nights}}]\n        via: [sms, email]\n        ack_within: 10m\n"
        );
        assert_eq!(
            errors(&text),
            [
                "error: escalation `crisis`: step 1 notifies contact `sam` (on call in rotation `nights`) by email, but it has no email address"
            ]
        );
    }

    #[test]
    fn a_resolve_within_that_is_not_a_duration_is_an_error() {
        let errors = errors(&doc(
            "    steps:\n      - notify: [lee]\n        via: [sms]\n        ack_within: 10m\n    resolve_within: soon\n",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("error: escalation `crisis`: invalid duration `soon`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_notify_item_that_is_a_map_without_on_call_is_an_error_naming_the_key() {
        let errors = errors(&doc(
            "    steps:\n      - notify: [{rotation: nights}]\n        via: [sms]\n        ack_within: 10m\n",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("`rotation`"), "{errors:?}");
    }
}
