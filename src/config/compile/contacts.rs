//! `contacts:`: who escalations reach, and how.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawContact;
use crate::config::rules::Contact;
use crate::domain::Phone;

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
            s.value
                .parse::<Phone>()
                .map_err(|e| {
                    ok = false;
                    self.diags.error(Place::of(path, s), Some(&owner), e);
                })
                .ok()
        });
        if let Some(email) = &raw.email
            && !valid_email(&email.value)
        {
            ok = false;
            self.diags.error(
                Place::of(path, email),
                Some(&owner),
                format!("invalid email address `{}`", email.value),
            );
        }
        if let Some(url) = &raw.webhook
            && !(url.value.starts_with("https://") || url.value.starts_with("http://"))
        {
            ok = false;
            self.diags
                .error(
                    Place::of(path, url),
                    Some(&owner),
                    format!("invalid webhook URL `{}`", url.value),
                )
                .with_hint("use an absolute http:// or https:// URL");
        }
        ok.then(|| Contact {
            id: id.value.clone(),
            name: raw.name.clone(),
            sms,
            email: raw.email.as_ref().map(|e| e.value.clone()),
            webhook: raw.webhook.as_ref().map(|w| w.value.clone()),
        })
    }
}

pub(super) fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}
