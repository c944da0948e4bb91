//! Starting one incident's escalation: its policy pinned from the rules
//! as they are now, for the member's groups. The escalation timer starts
//! every new incident this way, and so does anything that must act on an
//! incident before the timer has reached it (an `ACK` or `ESC` that
//! arrives first, a follow-up text to forward), so an escalation is never
//! marked unstartable only because someone was quick.

use chrono::{DateTime, Utc};

use super::pinned::Pinned;
use crate::domain::incident::Incident;
use crate::rules::RuleSet;
use crate::store::Backend;
use crate::store::StoreError;

/// What [`start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Started {
    /// Pinned now; the first page falls due at once.
    Now { policy: String },
    /// Another writer started (or marked) it first.
    Already,
    /// The incident follows no policy (`escalate` unset): an empty,
    /// exhausted escalation row was written so its state can move.
    NoPolicy,
    /// The policy it names is not in the rules: logged, audited
    /// (`escalation.no_policy`) and marked unstartable; nobody is paged.
    Missing { policy: String },
}

/// Starts `inc`'s escalation if it has none: pins its policy from `rules`
/// (first page due `now`), or marks it unstartable when the policy is not
/// in `rules`. An incident without a policy gets the empty row `act`
/// needs.
pub(crate) async fn start(
    store: &impl Backend,
    rules: &RuleSet,
    inc: &Incident,
    now: DateTime<Utc>,
) -> Result<Started, StoreError> {
    let Some(policy) = inc.escalate.as_deref() else {
        let wrote = store.mark_escalation_unstartable(inc.id, "", now).await?;
        return Ok(if wrote {
            Started::NoPolicy
        } else {
            Started::Already
        });
    };
    let groups = match &inc.member_external_id {
        Some(ext) => store
            .member(ext)
            .await?
            .map(|m| m.groups)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    match Pinned::pin(rules, policy, &groups) {
        Some(p) => {
            let wrote = store
                .start_escalation(inc.id, &p.policy, &p.version, &p.to_json(), now, now)
                .await?;
            if !wrote {
                return Ok(Started::Already);
            }
            tracing::info!(incident = inc.id, policy = %p.policy, "escalation started");
            Ok(Started::Now { policy: p.policy })
        }
        None => {
            let wrote = store
                .mark_escalation_unstartable(inc.id, policy, now)
                .await?;
            if !wrote {
                return Ok(Started::Already);
            }
            tracing::error!(incident = inc.id, policy = %policy, "escalation `{policy}` is not in the rules: nobody is notified of this incident; acknowledge it with `hearth incidents ack {}`", inc.id);
            Ok(Started::Missing {
                policy: policy.to_owned(),
            })
        }
    }
}
