//! The channels besides SMS (email, webhook) that the escalation timer
//! delivers notices over: built once from the settings, warned about at
//! start when a policy uses one the settings leave out, and each pending
//! notice attempted on its own, a failure retried with backoff or
//! recorded as failed. (SMS notices go through the outbox.)

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::Channel;
use crate::escalate::email::{ChannelError, EmailSetupError, Mailer};
use crate::escalate::webhook::{self, WebhookSetupError, Webhooks};
use crate::settings::NotifySettings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::Notice;

/// Why a channel could not be built from the settings; the message names
/// the setting.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Email(#[from] EmailSetupError),
    #[error(transparent)]
    Webhook(#[from] WebhookSetupError),
}

/// The email and webhook senders the settings configure (each optional).
pub(super) struct Channels {
    mailer: Option<Arc<Mailer>>,
    webhooks: Option<Arc<Webhooks>>,
}

impl Channels {
    /// Builds the channels from the settings; an error names the setting.
    pub(super) fn new(notify: &NotifySettings) -> Result<Channels, SetupError> {
        let mailer = notify
            .email
            .as_ref()
            .map(Mailer::new)
            .transpose()?
            .map(Arc::new);
        let webhooks = notify
            .webhook
            .as_ref()
            .map(Webhooks::new)
            .transpose()?
            .map(Arc::new);
        Ok(Channels { mailer, webhooks })
    }

    /// Attempts the pending email and webhook notices that are due, each
    /// on its own (a slow or failing one does not hold the others up);
    /// returns how many were delivered and how many attempts failed.
    pub(super) async fn deliver<S: Backend>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        let pending = store.pending_notices(now, super::BATCH).await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let mut set = tokio::task::JoinSet::new();
        for n in pending {
            let mailer = self.mailer.clone();
            let webhooks = self.webhooks.clone();
            set.spawn(async move {
                let outcome = attempt(&n, mailer.as_deref(), webhooks.as_deref(), now).await;
                (n, outcome)
            });
        }
        let (mut ok, mut failed) = (0, 0);
        while let Some(joined) = set.join_next().await {
            let Ok((n, outcome)) = joined else { continue };
            let settle = match outcome {
                Ok(()) => {
                    ok += 1;
                    Ok(())
                }
                Err(e) => {
                    failed += 1;
                    Err(failure(&n, e, now))
                }
            };
            store.settle_notice(n.id, settle, now).await?;
        }
        Ok((ok, failed))
    }
}

/// One attempt at one notice on its channel.
async fn attempt(
    n: &Notice,
    mailer: Option<&Mailer>,
    webhooks: Option<&Webhooks>,
    now: DateTime<Utc>,
) -> Result<(), ChannelError> {
    match n.channel {
        Channel::Email => match mailer {
            Some(m) => {
                m.send(
                    &n.address,
                    n.subject.as_deref().unwrap_or("Hearth"),
                    &n.body,
                )
                .await
            }
            None => Err(not_configured("email")),
        },
        Channel::Webhook => match webhooks {
            Some(h) => match serde_json::from_str::<serde_json::Value>(&n.body) {
                Ok(body) => h.post(&n.address, &body, now).await,
                Err(e) => Err(ChannelError {
                    retryable: false,
                    message: format!("stored webhook body is not JSON: {e}"),
                }),
            },
            None => Err(not_configured("webhook")),
        },
        Channel::Sms => Ok(()),
    }
}

/// A failed attempt as the notice records it: the error, and when to try
/// again (a retryable error, within the backoff schedule), logged.
fn failure(n: &Notice, e: ChannelError, now: DateTime<Utc>) -> (String, Option<DateTime<Utc>>) {
    let retry = if e.retryable {
        webhook::backoff(n.attempts + 1)
            .map(|d| now + TimeDelta::from_std(d).unwrap_or(TimeDelta::zero()))
    } else {
        None
    };
    tracing::warn!(incident = n.incident_id, contact = %n.contact, channel = ?n.channel, attempt = n.attempts + 1, retry = retry.is_some(), error = %e.message, "escalation notice not delivered");
    (e.message, retry)
}

fn not_configured(channel: &str) -> ChannelError {
    ChannelError {
        retryable: false,
        message: format!("{channel} is not configured (settings `notify.{channel}`)"),
    }
}

/// What the daemon warns about at start: policies that notify by a
/// channel the settings do not configure (those notices will be recorded
/// as failed), and contacts a policy can reach by nothing that works.
pub fn channel_warnings(rules: &crate::rules::RuleSet, notify: &NotifySettings) -> Vec<String> {
    let mut out = Vec::new();
    for (id, p) in &rules.escalations {
        for s in p.steps.iter().chain(p.backup.iter()) {
            for ch in &s.via {
                let missing = match ch {
                    Channel::Email => notify.email.is_none().then_some("email"),
                    Channel::Webhook => notify.webhook.is_none().then_some("webhook"),
                    Channel::Sms => None,
                };
                if let Some(m) = missing {
                    let w = format!(
                        "escalation `{id}` notifies by {m}, but the settings have no `notify.{m}`: those notices will be recorded as failed\n  hint: add `notify: {{ {m}: ... }}` to the settings (see docs/OPERATIONS.md), or remove `{m}` from the step's `via`"
                    );
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
            }
        }
    }
    out
}
