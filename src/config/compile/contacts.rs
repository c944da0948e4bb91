//! `contacts:`: who escalations reach, and how.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawContact;
use crate::domain::{self, Phone};
use crate::rules::Contact;

impl Compiler<'_> {
    pub(super) fn contact(
        &mut self,
        id: &Spanned<String>,
        raw: &RawContact,
        path: &Path,
    ) -> Option<Contact> {
        let owner = rule("contact", &id.value);
        let mut ok = true;
        if raw.sms.is_none() && raw.email.is_none() && raw.webhook.is_none() {
            self.diags
                .error(
                    Place::of(path, id),
                    Some(&owner),
                    format!("contact `{}` has no way to reach it", id.value),
                )
                .with_hint("give at least one of `sms`, `email` or `webhook`");
            ok = false;
        }
        let sms = raw.sms.as_ref().and_then(|s| {
            Phone::parse(&s.value)
                .map_err(|e| {
                    ok = false;
                    self.invalid(Place::of(path, s), &owner, e);
                })
                .ok()
        });
        if let Some(email) = &raw.email
            && let Err(e) = domain::parse_email(&email.value)
        {
            ok = false;
            self.invalid(Place::of(path, email), &owner, e);
        }
        if let Some(url) = &raw.webhook
            && let Err(e) = domain::parse_webhook_url(&url.value)
        {
            ok = false;
            self.invalid(Place::of(path, url), &owner, e);
        }
        ok.then(|| Contact {
            id: id.value.clone(),
            name: raw.name.clone(),
            sms,
            email: raw.email.as_ref().map(|e| e.value.clone()),
            webhook: raw.webhook.as_ref().map(|w| w.value.clone()),
            phi: raw.phi,
        })
    }
}
