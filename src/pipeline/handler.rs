//! [`ReplyPipeline`]: the inbound handler the daemon runs. For each stored
//! text it reads the sender's facts, decides ([`super::decide`]) and applies
//! the decision in one store transaction, then marks the text processed.
//! A store failure leaves the text queued (it is decided again later).

use std::sync::Arc;

use crate::config::reload::LiveRules;
use crate::domain::message::InboundRow;
use crate::settings::ReplySettings;
use crate::store::Store;

use super::{Handled, InboundHandler};

pub struct ReplyPipeline {
    store: Store,
    rules: Arc<LiveRules>,
    settings: Arc<ReplySettings>,
}

impl ReplyPipeline {
    pub fn new(store: Store, rules: Arc<LiveRules>, settings: ReplySettings) -> ReplyPipeline {
        ReplyPipeline {
            store,
            rules,
            settings: Arc::new(settings),
        }
    }
}

impl InboundHandler for ReplyPipeline {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        Box::pin(async move {
            let _ = (&self.store, &self.rules, &self.settings, row);
            todo!()
        })
    }
}
