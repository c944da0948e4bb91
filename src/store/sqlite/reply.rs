//! The reply pipeline's reads and its one write transaction; survey
//! reminders and expiry.

use chrono::{DateTime, Utc};

use super::Store;
use crate::domain::message::{InboundRow, NewMessage};
use crate::store::StoreError;
use crate::store::traits::ReplyStore;
use crate::store::traits::reply::{
    AnswerRecord, Applied, Engagement, PastAnswer, ReplyEffects, ReplyFacts, WaitingRun,
};

impl ReplyStore for Store {
    async fn reply_facts(
        &self,
        row: &InboundRow,
        now: DateTime<Utc>,
    ) -> Result<ReplyFacts, StoreError> {
        todo!("{row:?} {now}")
    }

    async fn apply_reply(&self, effects: ReplyEffects) -> Result<Applied, StoreError> {
        todo!("{effects:?}")
    }

    async fn waiting_runs(&self, limit: usize) -> Result<Vec<WaitingRun>, StoreError> {
        todo!("{limit}")
    }

    async fn remind_run(&self, run_id: i64, message: NewMessage) -> Result<bool, StoreError> {
        todo!("{run_id} {message:?}")
    }

    async fn expire_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        todo!("{now}")
    }

    async fn member_history(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PastAnswer>, Engagement), StoreError> {
        todo!("{member_id} {now}")
    }

    async fn run_answers(&self, run_id: i64) -> Result<Vec<AnswerRecord>, StoreError> {
        todo!("{run_id}")
    }
}
