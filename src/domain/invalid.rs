//! The error of a domain parser: what is wrong, and the fix when it can be
//! worked out from the input.

use std::fmt;

/// A value that did not parse. `message` is a lowercase sentence echoing the
/// input; `hint`, when present, is the corrected input or the step that
/// fixes it, for a `  hint: ...` line under the error. `Display` (and the
/// conversion to `String`) is the message alone, so callers that add their
/// own context keep working; callers that can show a hint read `hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Invalid {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.message
    }
}
