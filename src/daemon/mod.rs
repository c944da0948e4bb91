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

mod notifier;
mod reload;

pub use notifier::{Notifier, SystemdNotifier};

use crate::config::reload::{LiveRules, RulesWatcher, Trigger};
use crate::dispatch::provider::AnyProvider;
use crate::dispatch::worker::Dispatcher;
use crate::domain::member::AuditVerified as Verified;
use crate::domain::message::InboundRow;
use crate::intake::IntakeState;
use crate::pipeline::InboundWorker;
use crate::pipeline::handler::ReplyPipeline;
use crate::settings::Settings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::sqlite::{OpenMode, SqliteStore};

/// Why the daemon could not start. Both kinds are the operator's to fix:
/// the process exits 1.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Rules(#[from] crate::config::reload::StartupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the provider: {0}")]
    Provider(crate::dispatch::provider::SetupError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
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
}

impl App<SqliteStore> {
    /// Opens the SQLite store the settings name (holding the daemon's
    /// lock), then [`App::assemble`]s the daemon on it.
    pub async fn build(settings: Settings) -> Result<App, BuildError> {
        // The rules first: a rule set that does not compile stops start-up
        // before the database is touched.
        let rules = LiveRules::load_with(&settings.rules_dir, reload::rules_compiler(&settings))?;
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
        let rules = LiveRules::load_with(&settings.rules_dir, reload::rules_compiler(&settings))?;
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
        reload::record_load(&store, Trigger::Startup, &status).await?;
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
        })
    }

    /// The address the HTTP intake listens on (the real port when the
    /// settings asked for port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
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
        let (wires, arrivals) = Wires::new();
        self.spawn_reloads(&tracker, &shutdown)?;
        self.spawn_watchdog(&tracker, &shutdown);
        let local_addr = self.local_addr();
        let App {
            settings,
            rules,
            store,
            notifier,
            listener,
            provider,
        } = self;
        let parts = Parts {
            settings,
            rules,
            store,
        };
        parts.spawn_intake(&tracker, &shutdown, &wires, listener)?;
        parts.spawn_dispatcher(&tracker, &shutdown, &wires, provider);
        parts.spawn_timers(&tracker, &shutdown, &wires);
        parts.spawn_replies(&tracker, &shutdown, &wires, arrivals);
        parts.spawn_escalations(&tracker, &shutdown, &wires)?;

        tracker.close();
        notifier.ready(&parts.rules.status().summary());
        tracing::info!(listen = %local_addr, "hearth is running");

        shutdown.cancelled().await;
        notifier.stopping();
        tracing::info!("stopping: waiting for subsystems");
        tracker.wait().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// The file watcher and SIGHUP feed the one reload loop; SIGTERM and
    /// SIGINT cancel `shutdown`.
    fn spawn_reloads(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let (reload_tx, reload_rx) = mpsc::unbounded_channel::<Trigger>();
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
        tracker.spawn(reload::reload_loop(
            self.rules.clone(),
            self.store.clone(),
            self.notifier.clone(),
            reload_rx,
            shutdown.clone(),
        ));
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
        Ok(())
    }

    /// Watchdog pings at half the interval systemd asked for.
    fn spawn_watchdog(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
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
}

/// What the subsystems share at run time: the wakes between them and the
/// dispatcher's counters.
struct Wires {
    /// Woken after an inbound text is stored, for the reply pipeline.
    inbound_wake: Arc<tokio::sync::Notify>,
    /// Each newly stored text, handed to the pipeline ahead of the queue.
    arrivals: mpsc::UnboundedSender<InboundRow>,
    /// Woken when an incident may need paging now.
    escalation_wake: Arc<tokio::sync::Notify>,
    dispatch_counters: Arc<crate::dispatch::worker::Counters>,
}

impl Wires {
    /// The wires, and the receiving end of the arrivals for the pipeline.
    fn new() -> (Wires, mpsc::UnboundedReceiver<InboundRow>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let wires = Wires {
            inbound_wake: Arc::new(tokio::sync::Notify::new()),
            arrivals: tx,
            escalation_wake: Arc::new(tokio::sync::Notify::new()),
            dispatch_counters: Arc::default(),
        };
        (wires, rx)
    }
}

/// What every subsystem is built from.
struct Parts<S> {
    settings: Arc<Settings>,
    rules: Arc<LiveRules>,
    store: S,
}

impl<S: Backend> Parts<S> {
    /// The intake: provider webhooks, `/status`, the admin API.
    fn spawn_intake(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        wires: &Wires,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<()> {
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
            inbound_wake: wires.inbound_wake.clone(),
            arrivals: Some(wires.arrivals.clone()),
            admin_tokens: Arc::new(tokens),
            dispatch: wires.dispatch_counters.clone(),
            escalation_wake: wires.escalation_wake.clone(),
        };
        let router = crate::intake::router(state);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::intake::serve(listener, router, shutdown.clone()).await {
                tracing::error!(error.cause_chain = ?e, "intake server stopped; shutting down");
                shutdown.cancel();
            }
        });
        Ok(())
    }

    /// The dispatcher: the outbox to the provider, under the live caps.
    fn spawn_dispatcher(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        wires: &Wires,
        provider: Arc<AnyProvider>,
    ) {
        let rules = self.rules.clone();
        let dispatcher =
            Dispatcher::new(self.store.clone(), provider, self.settings.dispatch.clone())
                .with_counters(wires.dispatch_counters.clone())
                .with_limits(Arc::new(move || rules.current().limits));
        tracker.spawn(dispatcher.run_until_stopped(shutdown.clone()));
    }

    /// Schedules' fires into the outbox; survey reminders and expiry and
    /// scheduled (`every:`) alerts.
    fn spawn_timers(&self, tracker: &TaskTracker, shutdown: &CancellationToken, wires: &Wires) {
        let scheduler = crate::timers::schedules::Scheduler::new(
            self.store.clone(),
            self.rules.clone(),
            Arc::new(crate::domain::clock::SystemClock),
        );
        tracker.spawn(scheduler.run_until_stopped(shutdown.clone()));
        tracker.spawn(crate::timers::housekeeping::run_until_stopped(
            self.store.clone(),
            self.rules.clone(),
            wires.escalation_wake.clone(),
            shutdown.clone(),
        ));
    }

    /// The inbound queue, handed to the reply pipeline.
    fn spawn_replies(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        wires: &Wires,
        arrivals: mpsc::UnboundedReceiver<InboundRow>,
    ) {
        let handler = Arc::new(
            ReplyPipeline::new(
                self.store.clone(),
                self.rules.clone(),
                self.settings.replies.clone(),
            )
            .with_escalation_wake(wires.escalation_wake.clone()),
        );
        let inbound = InboundWorker::new(self.store.clone(), handler, wires.inbound_wake.clone())
            .with_arrivals(arrivals);
        tracker.spawn(inbound.run_until_stopped(shutdown.clone()));
    }

    /// Escalations: incidents' policies, their timers (read from the
    /// database, so a restart goes on where it was), email and webhook
    /// notices.
    fn spawn_escalations(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        wires: &Wires,
    ) -> anyhow::Result<()> {
        for w in crate::timers::escalations::channel_warnings(
            &self.rules.current(),
            &self.settings.notify,
        ) {
            tracing::warn!("{w}");
        }
        let escalator = crate::timers::escalations::Escalator::new(
            self.store.clone(),
            self.rules.clone(),
            &self.settings.notify,
        )
        .map_err(|e| anyhow::anyhow!("cannot set up escalation notices: {e}"))?
        .with_waker(wires.escalation_wake.clone());
        tracker.spawn(escalator.run(shutdown.clone()));
        Ok(())
    }
}
