//! The scheduler's tables: schedule marks, fire records, survey runs, and
//! the fan-out and frequency-cap queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Store;
use crate::domain::member::Member;
use crate::store::StoreError;
use crate::store::traits::ScheduleStore;
use crate::store::traits::schedule::{FireRecord, ScheduleMark, SurveyRun};

impl ScheduleStore for Store {
    async fn schedule_marks(&self) -> Result<Vec<ScheduleMark>, StoreError> {
        todo!("schedule_marks")
    }
    async fn set_schedule_mark(&self, mark: ScheduleMark) -> Result<(), StoreError> {
        let _ = mark;
        todo!("set_schedule_mark")
    }
    async fn remove_schedule_mark(&self, schedule: &str) -> Result<(), StoreError> {
        let _ = schedule;
        todo!("remove_schedule_mark")
    }
    async fn record_fire(&self, record: FireRecord) -> Result<(), StoreError> {
        let _ = record;
        todo!("record_fire")
    }
    async fn fire_records(
        &self,
        schedule: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FireRecord>, StoreError> {
        let _ = (schedule, limit);
        todo!("fire_records")
    }
    async fn cancel_planned(
        &self,
        schedule: &str,
        keep_version: Option<&str>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let _ = (schedule, keep_version, reason);
        todo!("cancel_planned")
    }
    async fn recipients(&self) -> Result<Vec<Member>, StoreError> {
        todo!("recipients")
    }
    async fn member_zones(&self) -> Result<Vec<String>, StoreError> {
        todo!("member_zones")
    }
    async fn routine_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, Vec<DateTime<Utc>>>, StoreError> {
        let _ = since;
        todo!("routine_times")
    }
    async fn routine_sent(
        &self,
        member_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: i64,
    ) -> Result<u64, StoreError> {
        let _ = (member_id, from, to, except);
        todo!("routine_sent")
    }
    async fn open_survey(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<SurveyRun>, StoreError> {
        let _ = (member_id, now);
        todo!("open_survey")
    }
}
