//! The daemon's one reload path: the watcher and SIGHUP feed it requests;
//! each is compiled off the async threads, logged, audited, and told to
//! systemd. A rejected or crashed reload leaves the previous rules live.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::notifier::Notifier;
use crate::config::reload::{self, LiveRules, ReloadOutcome, Trigger};
use crate::domain::actor::DAEMON_ACTOR;
use crate::settings::Settings;
use crate::store::{Backend, StoreError};

/// How the daemon compiles its rules, at start and on every reload: judged
/// against the settings' send window, as `hearth check --settings` does.
pub(super) fn rules_compiler(settings: &Settings) -> reload::Compile {
    let options = crate::config::CompileOptions {
        send_window: settings.dispatch.send_window,
    };
    Arc::new(move |snapshot| crate::config::compile_snapshot_with(snapshot, &options))
}

/// Writes a rule-set load (or rejection) to the audit trail.
pub(super) async fn record_load(
    store: &impl Backend,
    trigger: Trigger,
    status: &reload::ReloadStatus,
) -> Result<(), StoreError> {
    let generation = status.generation;
    let detail = if status.last.ok {
        serde_json::json!({ "generation": generation, "trigger": trigger, "files": status.files, "changes": status.last.diff })
    } else {
        let errors = status
            .last
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        serde_json::json!({ "serving_generation": generation, "trigger": trigger, "errors": errors })
    };
    let action = if status.last.ok {
        "rules.load"
    } else {
        "rules.reject"
    };
    store
        .audit(DAEMON_ACTOR, action, None, detail)
        .await
        .map(|_| ())
}

pub(super) async fn reload_loop(
    rules: Arc<LiveRules>,
    store: impl Backend,
    notifier: Arc<dyn Notifier>,
    mut requests: mpsc::UnboundedReceiver<Trigger>,
    shutdown: CancellationToken,
) {
    loop {
        let trigger = tokio::select! {
            _ = shutdown.cancelled() => break,
            t = requests.recv() => match t { Some(t) => t, None => break },
        };
        // A signal among queued requests forces a recompile.
        let mut trigger = trigger;
        while let Ok(t) = requests.try_recv() {
            if t == Trigger::Signal {
                trigger = t;
            }
        }
        let signalled = trigger == Trigger::Signal;
        if signalled {
            notifier.reloading();
        }
        let r = rules.clone();
        // `reload` catches a compiler panic itself; a panic anywhere else
        // in it ends only this task, and the loop goes on: no lock it
        // holds can be poisoned into failing later reloads or `/status`.
        let outcome = tokio::task::spawn_blocking(move || r.reload(trigger)).await;
        let crashed = match &outcome {
            Ok(outcome) => {
                log_outcome(outcome, trigger);
                matches!(outcome, ReloadOutcome::Crashed { .. })
            }
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, ?trigger, "rules reload crashed; previous rules still live");
                true
            }
        };
        let status = rules.status();
        if !matches!(outcome, Ok(ReloadOutcome::Unchanged { .. }))
            && let Err(e) = record_load(&store, trigger, &status).await
        {
            tracing::error!(error.cause_chain = ?e, "cannot write the rules load to the audit trail");
        }
        // Whatever happened, systemd hears that we are ready again: a
        // reload never leaves the unit in RELOADING.
        let summary = status.summary();
        if signalled || crashed {
            notifier.ready(&summary);
        } else {
            notifier.status(&summary);
        }
    }
}

fn log_outcome(outcome: &ReloadOutcome, trigger: Trigger) {
    match outcome {
        ReloadOutcome::Applied { generation, diff } => {
            tracing::info!(generation, ?trigger, changes = %diff, "rules reloaded");
        }
        ReloadOutcome::Unchanged { generation } => {
            tracing::debug!(generation, ?trigger, "rules unchanged");
        }
        ReloadOutcome::Crashed {
            generation,
            message,
        } => {
            tracing::error!(
                serving_generation = generation,
                ?trigger,
                panic = %message,
                "the rules compiler crashed; previous rules still live (a bug in hearth: please report it)"
            );
        }
        ReloadOutcome::Rejected { generation, errors } => {
            for d in errors {
                tracing::error!(file = %d.path.display(), line = d.line, column = d.column, rule = d.rule.as_deref(), "{}", d.message);
            }
            tracing::error!(
                serving_generation = generation,
                errors = errors.len(),
                ?trigger,
                "rules reload rejected; previous rules still live"
            );
        }
    }
}
