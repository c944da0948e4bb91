//! The reply pipeline's queue: stored inbound texts, handed over in order.
//!
//! Inbound texts are rows in the store before any webhook answers; the
//! rows not yet processed are this queue, so it survives restarts: at
//! start, and whenever a text arrives (or every few seconds, for texts
//! stored by another process such as `hearth inject`), the worker hands
//! each unprocessed row to the [`InboundHandler`] and marks it processed
//! only when the handler says so. It reads the queue in pages by id (a
//! cursor: the next page starts after the last row seen), so rows a
//! handler holds back never hide newer ones, however many there are.
//!
//! The pipeline itself (crisis check, STOP/START/HELP, surveys, alerts)
//! plugs in as a handler; until it exists, [`Held`] keeps every row queued.

pub mod alerts;
pub mod answer;
pub mod crisis;
pub mod handler;
pub mod keywords;
pub mod normalize;
pub mod scheduled;
pub mod surveys;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::message::InboundRow;
use crate::store::Store;
use crate::store::traits::InboundStore;

/// What a handler did with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done; mark it processed with this outcome.
    Processed(String),
    /// Leave it queued; try again later.
    Held,
}

pub trait InboundHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> Pin<Box<dyn Future<Output = Handled> + Send + 'a>>;
}

/// Keeps every row queued: nothing may be dropped before the pipeline can
/// read it.
pub struct Held;

impl InboundHandler for Held {
    fn handle<'a>(
        &'a self,
        _row: &'a InboundRow,
    ) -> Pin<Box<dyn Future<Output = Handled> + Send + 'a>> {
        Box::pin(async { Handled::Held })
    }
}

pub struct InboundWorker {
    store: Store,
    handler: Arc<dyn InboundHandler>,
    wake: Arc<Notify>,
    poll: Duration,
    page: usize,
}

impl InboundWorker {
    pub fn new(store: Store, handler: Arc<dyn InboundHandler>, wake: Arc<Notify>) -> InboundWorker {
        InboundWorker {
            store,
            handler,
            wake,
            poll: Duration::from_secs(2),
            page: 500,
        }
    }

    /// How many rows one read of the queue returns (500 by default).
    pub fn with_page(mut self, page: usize) -> InboundWorker {
        self.page = page.max(1);
        self
    }

    /// Hands every queued row to the handler once, oldest first, a page
    /// at a time; returns how many were processed. Held rows stay queued
    /// for the next drain and do not stop this one.
    pub async fn drain(&self) -> Result<usize, crate::store::StoreError> {
        let mut done = 0;
        let mut cursor = 0;
        loop {
            let page = self.store.unprocessed_after(cursor, self.page).await?;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            let full = page.len() == self.page;
            for row in page {
                if let Handled::Processed(outcome) = self.handler.handle(&row).await {
                    self.store.mark_inbound_processed(row.id, &outcome).await?;
                    done += 1;
                }
            }
            if !full {
                break;
            }
        }
        Ok(done)
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::error!(error.cause_chain = ?e, "inbound queue step failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}
