//! What systemd hears from the daemon: READY, RELOADING, STATUS=,
//! STOPPING, watchdog pings (no-ops when `$NOTIFY_SOCKET` is unset).

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
