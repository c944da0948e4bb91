//! The live rule set, its one reload path, and the directory watcher.
//!
//! [`LiveRules`] holds the current [`RuleSet`] behind an `ArcSwap`: readers
//! take an `Arc` and keep a consistent set for as long as they hold it. A
//! reload rereads the whole directory and swaps only if it compiled without
//! an error; otherwise the last good set keeps serving and the failure is
//! recorded in [`ReloadStatus`].
//!
//! Nothing poisons the reload path: the directory is read and compiled
//! before any lock that guards shared state is taken, a panic in the
//! compiler is caught (the last good set stays live and the panic is
//! recorded as a failed attempt), and every lock is taken poison-tolerantly,
//! so even a panic elsewhere never turns into a cascade of panics in later
//! reloads or `/status` calls. A reload that would leave no rules at all is
//! refused the same way.
//!
//! - `status`: what a reload reports ([`ReloadStatus`], [`ReloadOutcome`]);
//! - `guard`: the compiler panic guard and poison-tolerant locks;
//! - `live`: [`LiveRules`], the holder, and loading it at start-up;
//! - `apply`: one reload attempt, from reading the directory to going live;
//! - `watcher`: [`RulesWatcher`], which reports settled changes to the
//!   directory (SIGHUP is the daemon's).

mod apply;
mod guard;
mod live;
mod status;
mod watcher;

pub use self::guard::{Compile, CompileHook};
pub use self::live::{LiveRules, StartupError};
pub use self::status::{Attempt, ReloadOutcome, ReloadStatus, Trigger};
pub use self::watcher::{RECHECK, RulesWatcher};
