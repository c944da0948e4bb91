//! Rule evaluation: the Rhai sandbox, message templates, SMS length.
//!
//! - [`script`]: the sandboxed Rhai engine for `when:` and `script:`.
//! - [`template`]: strict minijinja templates and their context.
//! - [`sms`]: GSM-7/UCS-2 segment arithmetic.

pub mod script;
pub mod sms;
pub mod template;
