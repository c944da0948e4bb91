//! `escalations:`: steps, their targets and channels.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawEscalation;
use crate::config::rules::{Channel, Contact, Escalation, Group, Repeat, Step, Target};

impl Compiler<'_> {
    pub(super) fn escalation(
        &mut self,
        id_at: &Spanned<String>,
        raw: &RawEscalation,
        path: &Path,
        contacts: &BTreeMap<String, Contact>,
        groups: &BTreeMap<String, Group>,
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
        let mut steps = Vec::new();
        for (n, step) in raw.steps.iter().enumerate() {
            let st = &step.value;
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
            let mut targets = Vec::new();
            for t in &st.notify {
                let target = if t.value == "group.facilitators" {
                    Target::GroupFacilitators
                } else if self.reference("contact", t, path, &owner) {
                    Target::Contact(t.value.clone())
                } else {
                    ok = false;
                    continue;
                };
                // Every named contact must be reachable on every channel.
                let reached: Vec<&Contact> = match &target {
                    Target::Contact(c) => contacts.get(c).into_iter().collect(),
                    Target::OnCall(_) => Vec::new(),
                    Target::GroupFacilitators => groups
                        .values()
                        .flat_map(|g| g.facilitators.iter())
                        .filter_map(|f| contacts.get(f))
                        .collect(),
                };
                for c in reached {
                    for via in &st.via {
                        let has = match via.value {
                            Channel::Sms => c.sms.is_some(),
                            Channel::Email => c.email.is_some(),
                            Channel::Webhook => c.webhook.is_some(),
                        };
                        if !has {
                            ok = false;
                            self.diags.error(
                                Place::of(path, t),
                                Some(&owner),
                                format!(
                                    "step {} notifies contact `{}` by {}, but it has no {} address",
                                    n + 1,
                                    c.id,
                                    channel_name(via.value),
                                    channel_name(via.value)
                                ),
                            );
                        }
                    }
                }
                targets.push(target);
            }
            let ack = self.duration(&st.ack_within, path, &owner);
            if let Some(ack) = ack {
                steps.push(Step {
                    targets,
                    via: st.via.iter().map(|v| v.value).collect(),
                    ack_within: ack,
                });
            } else {
                ok = false;
            }
        }
        ok.then(|| Escalation {
            id: id.to_owned(),
            steps,
            repeat: Repeat::Times(raw.repeat),
            backup: None,
            resolve_within: None,
        })
    }
}

pub(super) fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}
