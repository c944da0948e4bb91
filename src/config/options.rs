//! What a rules directory is compiled against, beyond its own files.

use crate::domain::SendWindow;

/// Inputs of a compile that come from outside the rules directory.
/// `Default` is what `hearth check DIR` uses without settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// The settings' `dispatch.send_window`: schedules that fire outside
    /// it get a quiet-hours warning.
    pub send_window: SendWindow,
}
