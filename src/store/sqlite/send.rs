//! A staff send: the outbox row and its audit entry in one transaction, so
//! a command that fails has written neither.

use super::{SqliteStore, audit};
use crate::domain::message::{Enqueued, NewMessage};
use crate::store::StoreError;

impl SqliteStore {
    /// Queues `m` and, when it is new, appends `action` to the audit trail
    /// (subject the member, `detail` plus the outbox id) in the same
    /// transaction. A message whose idempotency key is already in the
    /// outbox is `Duplicate` and writes nothing.
    pub async fn enqueue_audited(
        &self,
        m: NewMessage,
        actor: &str,
        action: &str,
        mut detail: serde_json::Value,
    ) -> Result<Enqueued, StoreError> {
        let (actor, action) = (actor.to_owned(), action.to_owned());
        let q = self
            .call(move |c| {
                let tx = c.transaction()?;
                let q = super::outbox::enqueue(&tx, &m)?;
                if let Enqueued::New(id) = q {
                    if let Some(d) = detail.as_object_mut() {
                        d.insert("outbox".into(), id.into());
                    }
                    audit::append(
                        &tx,
                        &actor,
                        &action,
                        super::outbox::subject(&tx, m.member_id)?.as_deref(),
                        detail,
                    )?;
                }
                tx.commit()?;
                Ok(q)
            })
            .await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }
}
