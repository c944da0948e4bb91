//! The console provider: prints each outbound message instead of sending
//! it. The example deployment's default, so a newcomer sees what Hearth
//! would send without texting anyone.
//!
//! On standard output each message is one readable line with the number
//! masked; to a file (`output:`), one JSON object a line with the full
//! number, for tests and local tooling. The file is created mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::dispatch::provider::{Accepted, Outgoing, Provider, SendError, SetupError};

pub struct ConsoleProvider {
    file: Option<Mutex<std::fs::File>>,
}

impl ConsoleProvider {
    pub fn new(output: Option<PathBuf>) -> Result<ConsoleProvider, SetupError> {
        let file = match output {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|source| SetupError::ConsoleOutput { path, source })?,
            )),
        };
        Ok(ConsoleProvider { file })
    }
}

impl Provider for ConsoleProvider {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, msg: &Outgoing) -> Result<Accepted, SendError> {
        let id = format!("console-{}", msg.outbox_id);
        match &self.file {
            Some(file) => {
                let line = serde_json::json!({
                    "outbox_id": msg.outbox_id,
                    "member_id": msg.member_id,
                    "to": msg.to.as_str(),
                    "body": msg.body,
                    "segments": msg.segments,
                });
                let mut f = file
                    .lock()
                    .map_err(|_| SendError::transient("console output lock poisoned"))?;
                writeln!(f, "{line}").map_err(|e| {
                    SendError::transient(format!("cannot write console output: {e}"))
                })?;
            }
            None => {
                let member = msg
                    .member_id
                    .map(|m| format!(" (member {m})"))
                    .unwrap_or_default();
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "[sms #{} to {}{member}] {}",
                    msg.outbox_id,
                    msg.to.masked(),
                    msg.body
                )
                .map_err(|e| {
                    SendError::transient(format!("cannot write to standard output: {e}"))
                })?;
            }
        }
        Ok(Accepted {
            provider_message_id: Some(id),
        })
    }
}
