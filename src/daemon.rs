//! The daemon: build the app, spawn its subsystems, reload, shut down.
//!
//! [`App::build`] does everything that can fail at start-up (settings are
//! already parsed; the rules directory is loaded here) so a bad
//! configuration exits before systemd is told READY. [`App::run_until_stopped`]
//! runs the subsystems under one [`CancellationToken`] and [`TaskTracker`]
//! until the token is cancelled — by SIGTERM/SIGINT in production, by the
//! test itself in tests.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::reload::{self, LiveRules, ReloadOutcome, RulesWatcher, Trigger};
use crate::dispatch::provider::AnyProvider;
use crate::dispatch::worker::Dispatcher;
use crate::domain::actor::DAEMON_ACTOR;
use crate::domain::member::AuditVerified as Verified;
use crate::intake::IntakeState;
use crate::pipeline::handler::ReplyPipeline;
use crate::pipeline::{InboundHandler, InboundWorker};
use crate::settings::Settings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::sqlite::{OpenMode, SqliteStore};

/// Why the daemon could not start. Both kinds are the operator's to fix:
/// the process exits 1.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Rules(#[from] reload::StartupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the provider: {0}")]
    Provider(crate::dispatch::provider::SetupError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// What systemd hears from us. Production uses [`SystemdNotifier`]; the
/// notifications are no-ops when `$NOTIFY_SOCKET` is unset.
pub trait Notifier: Send + Sync + 'static {
    fn ready(&self, status: &str);
    fn reloading(&self);
    fn status(&self, status: &str);
    fn stopping(&self);
    fn watchdog(&self);
}

pub struct SystemdNotifier;

impl Notifier for SystemdNotifier {
    fn ready(&self, status: &str) {
        notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(status),
        ]);
    }
    fn reloading(&self) {
        // Type=notify-reload wants MONOTONIC_USEC with RELOADING=1.
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(usec) => notify(&[sd_notify::NotifyState::Reloading, usec]),
            Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
        }
    }
    fn status(&self, status: &str) {
        notify(&[sd_notify::NotifyState::Status(status)]);
    }
    fn stopping(&self) {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    fn watchdog(&self) {
        notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error.cause_chain = ?e, "cannot notify systemd");
    }
}

/// The daemon, built for one store backend (`S`); `App::build` opens the
/// SQLite store the settings name, [`App::assemble`] takes any backend.
pub struct App<S = SqliteStore> {
    settings: Arc<Settings>,
    rules: Arc<LiveRules>,
    store: S,
    notifier: Arc<dyn Notifier>,
    listener: tokio::net::TcpListener,
    provider: Arc<AnyProvider>,
    /// `None`: the reply pipeline.
    inbound_handler: Option<Arc<dyn InboundHandler>>,
}

impl App<SqliteStore> {
    /// Opens the SQLite store the settings name (holding the daemon's
    /// lock), then [`App::assemble`]s the daemon on it.
    pub async fn build(settings: Settings) -> Result<App, BuildError> {
        // The rules first: a rule set that does not compile stops start-up
        // before the database is touched.
        let rules = LiveRules::load_with(&settings.rules_dir, rules_compiler(&settings))?;
        let (store, opened) = SqliteStore::open_as(&settings.database, OpenMode::Daemon)?;
        if let Some(key) = &opened.generated_key {
            tracing::warn!(key_file = %key.display(), "generated a new database key; back it up: without it the database cannot be read");
        }
        if let Some((from, to)) = opened.migrated {
            tracing::info!(from, to, "database schema migrated");
        }
        App::assemble_with(settings, rules, store).await
    }
}

impl<S: Backend> App<S> {
    /// Loads the rules directory and builds the daemon on `store`: checks
    /// the audit trail written since the last start, records the rule
    /// load, makes the provider and binds the intake's socket.
    pub async fn assemble(settings: Settings, store: S) -> Result<App<S>, BuildError> {
        let rules = LiveRules::load_with(&settings.rules_dir, rules_compiler(&settings))?;
        App::assemble_with(settings, rules, store).await
    }

    async fn assemble_with(
        settings: Settings,
        rules: LiveRules,
        store: S,
    ) -> Result<App<S>, BuildError> {
        // Only the entries written since the last start: the whole walk
        // is `hearth audit verify` / `hearth db check`.
        match store.audit_verify_since_checkpoint().await? {
            Verified::Intact { entries, head } => {
                tracing::info!(new_entries = entries, head = %head, "audit trail intact")
            }
            Verified::Broken { entry, reason, .. } => {
                tracing::error!(entry, reason = %reason, "audit trail BROKEN: run `hearth audit verify` and investigate")
            }
        }
        let status = rules.status();
        for d in &status.last.diagnostics {
            tracing::warn!(file = %d.path.display(), line = d.line, column = d.column, rule = d.rule.as_deref(), "{}", d.message);
        }
        tracing::info!(
            generation = status.generation,
            files = status.files.len(),
            dir = %settings.rules_dir.display(),
            "rules loaded"
        );
        record_load(&store, Trigger::Startup, &status).await?;
        let provider = AnyProvider::from_settings(&settings).map_err(BuildError::Provider)?;
        let listener = crate::intake::bind(settings.listen)
            .await
            .map_err(|e| BuildError::Listen(settings.listen, e))?;
        tracing::info!(provider = provider.name(), "provider ready");
        Ok(App {
            settings: Arc::new(settings),
            rules: Arc::new(rules),
            store,
            notifier: Arc::new(SystemdNotifier),
            listener,
            provider: Arc::new(provider),
            inbound_handler: None,
        })
    }

    /// The address the HTTP intake listens on (the real port when the
    /// settings asked for port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Replaces the reply pipeline as what inbound texts are handed to
    /// (tests of the queue).
    pub fn with_inbound_handler(mut self, handler: Arc<dyn InboundHandler>) -> App<S> {
        self.inbound_handler = Some(handler);
        self
    }

    pub fn store(&self) -> S {
        self.store.clone()
    }

    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> App<S> {
        self.notifier = notifier;
        self
    }

    pub fn rules(&self) -> Arc<LiveRules> {
        self.rules.clone()
    }

    /// Runs until `shutdown` is cancelled, then drains every subsystem.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        let (reload_tx, reload_rx) = mpsc::unbounded_channel::<Trigger>();

        // File watcher → reload requests.
        let mut watcher =
            RulesWatcher::start(&self.settings.rules_dir, self.settings.reload_debounce).map_err(
                |e| {
                    anyhow::anyhow!(
                        "cannot watch rules directory {}: {e}",
                        self.settings.rules_dir.display()
                    )
                },
            )?;
        {
            let shutdown = shutdown.clone();
            let reload_tx = reload_tx.clone();
            tracker.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        changed = watcher.next_change() => {
                            if !changed || reload_tx.send(Trigger::Watch).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }

        // The one reload path: watcher and SIGHUP both feed it.
        tracker.spawn(reload_loop(
            self.rules.clone(),
            self.store.clone(),
            self.notifier.clone(),
            reload_rx,
            shutdown.clone(),
        ));

        // Signals: SIGHUP reloads, SIGTERM/SIGINT stop.
        {
            let mut hup = signal(SignalKind::hangup())?;
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = hup.recv() => { let _ = reload_tx.send(Trigger::Signal); }
                        _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); shutdown.cancel(); }
                        _ = int.recv() => { tracing::info!("SIGINT: shutting down"); shutdown.cancel(); }
                    }
                }
            });
        }

        // Watchdog pings at half the interval systemd asked for.
        if let Some(interval) = sd_notify::watchdog_enabled() {
            let notifier = self.notifier.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let mut tick = tokio::time::interval(interval / 2);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => notifier.watchdog(),
                    }
                }
            });
        }

        // The intake: provider webhooks and status.
        let local_addr = self.local_addr();
        let inbound_wake = Arc::new(tokio::sync::Notify::new());
        let (arrivals_tx, arrivals_rx) = mpsc::unbounded_channel();
        let dispatch_counters = Arc::<crate::dispatch::worker::Counters>::default();
        let escalation_wake = Arc::new(tokio::sync::Notify::new());
        {
            let tokens = self
                .settings
                .admin_tokens
                .iter()
                .map(|t| t.resolve())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("cannot read an admin token: {e}"))?;
            let state = IntakeState {
                store: self.store.clone(),
                rules: self.rules.clone(),
                settings: self.settings.clone(),
                inbound_wake: inbound_wake.clone(),
                arrivals: Some(arrivals_tx),
                admin_tokens: Arc::new(tokens),
                dispatch: dispatch_counters.clone(),
                escalation_wake: escalation_wake.clone(),
            };
            let router = crate::intake::router(state);
            let shutdown = shutdown.clone();
            let listener = self.listener;
            tracker.spawn(async move {
                if let Err(e) = crate::intake::serve(listener, router, shutdown.clone()).await {
                    tracing::error!(error.cause_chain = ?e, "intake server stopped; shutting down");
                    shutdown.cancel();
                }
            });
        }

        // The dispatcher.
        let dispatcher = Dispatcher::new(
            self.store.clone(),
            self.provider.clone(),
            self.settings.dispatch.clone(),
        )
        .with_counters(dispatch_counters)
        .with_limits({
            let rules = self.rules.clone();
            Arc::new(move || rules.current().limits)
        });
        tracker.spawn(dispatcher.run_until_stopped(shutdown.clone()));

        // The scheduler: schedules' fires into the outbox.
        let scheduler = crate::scheduler::Scheduler::new(
            self.store.clone(),
            self.rules.clone(),
            Arc::new(crate::domain::clock::SystemClock),
        );
        tracker.spawn(scheduler.run_until_stopped(shutdown.clone()));

        // The inbound queue, handed to the reply pipeline.
        let handler = match &self.inbound_handler {
            Some(h) => h.clone(),
            None => Arc::new(
                ReplyPipeline::new(
                    self.store.clone(),
                    self.rules.clone(),
                    self.settings.replies.clone(),
                )
                .with_escalation_wake(escalation_wake.clone()),
            ),
        };
        let inbound = InboundWorker::new(self.store.clone(), handler, inbound_wake)
            .with_arrivals(arrivals_rx);
        tracker.spawn(inbound.run_until_stopped(shutdown.clone()));

        // Survey reminders and expiry, scheduled (`every:`) alerts.
        tracker.spawn(housekeeping(
            self.store.clone(),
            self.rules.clone(),
            escalation_wake.clone(),
            shutdown.clone(),
        ));

        // Escalations: incidents' policies, their timers (read from the
        // database, so a restart goes on where it was), email and webhook
        // notices.
        for w in
            crate::escalate::engine::channel_warnings(&self.rules.current(), &self.settings.notify)
        {
            tracing::warn!("{w}");
        }
        let escalator = crate::escalate::engine::Escalator::new(
            self.store.clone(),
            self.rules.clone(),
            &self.settings.notify,
        )
        .map_err(|e| anyhow::anyhow!("cannot set up escalation notices: {e}"))?
        .with_waker(escalation_wake);
        tracker.spawn(escalator.run(shutdown.clone()));

        tracker.close();
        self.notifier.ready(&self.rules.status().summary());
        tracing::info!(listen = %local_addr, "hearth is running");

        shutdown.cancelled().await;
        self.notifier.stopping();
        tracing::info!("stopping: waiting for subsystems");
        tracker.wait().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Every few seconds: survey reminders and expiry, then scheduled alerts.
/// A failure is logged and tried again on the next round.
async fn housekeeping(
    store: impl Backend,
    rules: Arc<LiveRules>,
    escalation_wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let current = rules.current();
        let now = chrono::Utc::now();
        match crate::pipeline::surveys::tick(&store, &current, now).await {
            Ok(t) if t.reminded + t.expired > 0 => {
                tracing::info!(
                    reminded = t.reminded,
                    expired = t.expired,
                    "surveys: reminders and expiry"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, "survey housekeeping failed; trying again shortly")
            }
        }
        match crate::pipeline::scheduled::tick(&store, &current, now).await {
            Ok(t) if t.evaluated > 0 => {
                tracing::info!(
                    evaluated = t.evaluated,
                    fired = t.fired,
                    failed = t.failed,
                    "scheduled alerts evaluated"
                );
                if t.fired > 0 {
                    escalation_wake.notify_one();
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, "scheduled alerts failed; trying again shortly")
            }
        }
    }
}

/// How the daemon compiles its rules, at start and on every reload: judged
/// against the settings' send window, as `hearth check --settings` does.
fn rules_compiler(settings: &Settings) -> reload::Compile {
    let (start, end) = settings.dispatch.send_window;
    let options = crate::config::CompileOptions {
        send_window: crate::config::SendWindow::new(start, end),
    };
    Arc::new(move |snapshot| crate::config::compile_snapshot_with(snapshot, &options))
}

/// Writes a rule-set load (or rejection) to the audit trail.
async fn record_load(
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

async fn reload_loop(
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
