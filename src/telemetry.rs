//! Logging: `tracing` to standard error, `info` by default, text or JSON.
//!
//! The filter comes from `HEARTH_LOG` (then `RUST_LOG`), in `EnvFilter`
//! syntax. Standard output is left to the console provider.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// `default` is the filter when neither variable is set: `info` for the
/// daemon, `warn` for one-shot commands whose output is for a person.
pub(crate) fn init(format: LogFormat, default: &str) {
    let filter = std::env::var("HEARTH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
