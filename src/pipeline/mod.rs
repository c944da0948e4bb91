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
//! Crisis first, ahead of the queue: before each drain's ordinary pass the
//! worker hands over every queued row the handler calls urgent
//! ([`InboundHandler::is_urgent`]: crisis language), and between rows it
//! takes each newly arrived text (the intake passes them on as they are
//! stored) and hands it over at once if it is urgent. So a crisis text
//! waits for at most the one row being handled, however long the queue.
//!
//! The pipeline itself is [`handler::ReplyPipeline`]; [`Held`] keeps every
//! row queued (tests of the queue use it).

pub mod alerts;
pub mod answer;
pub mod crisis;
pub(crate) mod decide;
pub mod handler;
pub(crate) mod keywords;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::domain::message::InboundRow;
use crate::store::Backend;

/// What a handler did with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done; mark it processed with this outcome.
    Processed(String),
    /// Done, and already marked processed with this outcome in the
    /// handler's own transaction.
    Recorded(String),
    /// Leave it queued; try again later.
    Held,
}

pub trait InboundHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> Pin<Box<dyn Future<Output = Handled> + Send + 'a>>;

    /// Whether `row` must be handled ahead of the queue (crisis language).
    fn is_urgent(&self, _row: &InboundRow) -> bool {
        false
    }
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

/// How many queued rows one drain reads ahead (and checks for crisis
/// language) before handling them in order; a longer queue is read on a
/// page at a time.
const QUEUE_READ_AHEAD: usize = 20_000;

pub struct InboundWorker<S> {
    store: S,
    handler: Arc<dyn InboundHandler>,
    wake: Arc<Notify>,
    poll: Duration,
    page: usize,
    arrivals: Option<std::sync::Mutex<UnboundedReceiver<InboundRow>>>,
}

impl<S: Backend> InboundWorker<S> {
    pub fn new(store: S, handler: Arc<dyn InboundHandler>, wake: Arc<Notify>) -> InboundWorker<S> {
        InboundWorker {
            store,
            handler,
            wake,
            poll: Duration::from_secs(2),
            page: 500,
            arrivals: None,
        }
    }

    /// Texts as the intake stores them, checked between rows for urgent
    /// ones.
    pub fn with_arrivals(mut self, arrivals: UnboundedReceiver<InboundRow>) -> InboundWorker<S> {
        self.arrivals = Some(std::sync::Mutex::new(arrivals));
        self
    }

    /// How many rows one read of the queue returns (500 by default).
    pub fn with_page(mut self, page: usize) -> InboundWorker<S> {
        self.page = page.max(1);
        self
    }

    /// Hands every queued row to the handler once, urgent rows first, then
    /// the rest oldest first, a page at a time; returns how many were
    /// processed. Held rows stay queued for the next drain and do not stop
    /// this one.
    pub async fn drain(&self) -> Result<usize, crate::store::StoreError> {
        let mut seen = HashSet::new();
        let mut done = self.urgent_arrivals(&mut seen).await?;
        // The queue as it stands, read once: its urgent rows first (stored
        // by another process, or before a restart), then every row in
        // order, then whatever was stored after it.
        let mut queue = Vec::new();
        let mut cursor = 0;
        loop {
            let page = self.store.unprocessed_after(cursor, self.page).await?;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            let full = page.len() == self.page;
            for row in &page {
                if self.handler.is_urgent(row) && seen.insert(row.id) {
                    done += self.handle(row).await?;
                }
            }
            queue.extend(page.into_iter().filter(|r| !seen.contains(&r.id)));
            if !full || queue.len() >= QUEUE_READ_AHEAD {
                break;
            }
        }
        loop {
            for row in &queue {
                done += self.urgent_arrivals(&mut seen).await?;
                if seen.insert(row.id) {
                    done += self.handle(row).await?;
                }
            }
            let page = self.store.unprocessed_after(cursor, self.page).await?;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            queue = page;
        }
        Ok(done)
    }

    /// Handles the urgent texts that arrived since the last look.
    async fn urgent_arrivals(
        &self,
        seen: &mut HashSet<i64>,
    ) -> Result<usize, crate::store::StoreError> {
        let Some(arrivals) = &self.arrivals else {
            return Ok(0);
        };
        let mut urgent = Vec::new();
        {
            let mut rx = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            while let Ok(row) = rx.try_recv() {
                if self.handler.is_urgent(&row) {
                    urgent.push(row);
                }
            }
        }
        let mut done = 0;
        for row in urgent {
            if seen.insert(row.id) {
                done += self.handle(&row).await?;
            }
        }
        Ok(done)
    }

    async fn handle(&self, row: &InboundRow) -> Result<usize, crate::store::StoreError> {
        match self.handler.handle(row).await {
            Handled::Processed(outcome) => {
                self.store.mark_inbound_processed(row.id, &outcome).await?;
                Ok(1)
            }
            Handled::Recorded(_) => Ok(1),
            Handled::Held => Ok(0),
        }
    }

    pub(crate) async fn run_until_stopped(self, shutdown: CancellationToken) {
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
