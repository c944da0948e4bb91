//! One support module for every test (as ripgrep's `tests/util.rs`):
//! nothing here is copied into a test file.
//!
//! The rigs, re-exported here so a test says `use crate::support::*;`:
//! - [`app`]: the daemon in-process on a temp deployment (`spawn_app`,
//!   `TestApp`), its systemd notifications recorded.
//! - [`daemon`]: the real binary as a child process (`spawn_daemon`,
//!   `Daemon`) with a fake `$NOTIFY_SOCKET`.
//! - [`files`]: writing files, an editor's rename-save, starter rules.
//! - [`roster`]: a store on a temp directory and a roster imported into it.
//! - [`clock`]: time zones where it is now a given hour.
//!
//! Reached by path:
//! - [`components`]: the one "is this real component here?" check: a
//!   printed skip on a laptop, a failure under CI.
//! - [`db`]: the encrypted database opened raw (SQLCipher and its key).
//! - [`rng`]: the one seeded random generator.
//! - [`ports`]: free loopback ports.
//! - [`kannel`]: real Kannel (bearerbox, smsbox, fakesmsc) on loopback.
//! - [`smtp`]: a real SMTP server (aiosmtpd) with STARTTLS.
//! - [`webhook_receiver`]: a scripted HTTP receiver recording every hit.

pub mod app;
pub mod clock;
pub mod components;
pub mod daemon;
pub mod db;
pub mod files;
pub mod kannel;
pub mod ports;
pub mod rng;
pub mod roster;
pub mod smtp;
pub mod webhook_receiver;

pub use app::*;
pub use clock::*;
pub use daemon::*;
pub use files::*;
pub use hearth::store::prelude::*;
pub use roster::*;
