//! Nothing poisons the reload path: the compiler runs inside a panic
//! guard, and every lock is taken poison-tolerantly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{Compiled, Snapshot};

/// Called with every snapshot just before it is compiled. Tests use it to
/// make the compiler fail in ways no rules directory can (a panic); see
/// [`super::LiveRules::set_compile_hook`].
#[doc(hidden)]
pub type CompileHook = Arc<dyn Fn(&Snapshot) + Send + Sync>;

/// Takes a lock whether or not a panic poisoned it: the data behind every
/// lock here is replaced whole, never left half-written, so it is always
/// consistent.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// How a snapshot is compiled: [`crate::config::compile_snapshot`] with the
/// daemon's own inputs (such as its send window) bound in.
pub type Compile = Arc<dyn Fn(&Snapshot) -> Compiled + Send + Sync>;

/// The compiler panicked (a bug in hearth, never the rules' fault).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(super) struct CompilerPanic {
    /// The panic's own text.
    pub(crate) message: String,
}

/// Compiles a snapshot, turning a compiler panic into an error.
pub(super) fn compile_guarded(
    compile: &Compile,
    snapshot: &Snapshot,
    hook: Option<CompileHook>,
) -> Result<Compiled, CompilerPanic> {
    catch_unwind(AssertUnwindSafe(|| {
        if let Some(hook) = hook {
            hook(snapshot);
        }
        compile(snapshot)
    }))
    .map_err(|payload| CompilerPanic {
        message: panic_message(payload.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiler_panic_becomes_an_error_message_not_a_crash() {
        let hook: CompileHook = Arc::new(|_| panic!("boom at {}", 42));
        let compile: Compile = Arc::new(crate::config::compile_snapshot);
        let err = compile_guarded(&compile, &Snapshot::default(), Some(hook)).unwrap_err();
        assert_eq!(err.message, "boom at 42");
    }

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }
}
