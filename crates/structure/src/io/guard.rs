//! Panic containment for third-party parsers (pdbtbx, molly).
//!
//! pdbtbx 0.12 and molly 0.7 contain `expect`/`assert!`/slicing on input-dependent values,
//! so malformed files can make them panic. [`catch`] runs such a call under
//! [`std::panic::catch_unwind`] and turns a panic into [`StructureError::ParserPanic`]
//! naming the file.
//!
//! To keep the default hook from printing "thread panicked at ..." for a panic we handle,
//! the first call installs (once per process) a panic hook that stays silent while the
//! current thread is inside [`catch`] and otherwise forwards to the hook that was
//! installed before it. An application that later replaces the hook simply gets the
//! message printed again; nothing else changes.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use crate::error::StructureError;

thread_local! {
    /// Whether the current thread is inside [`catch`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static INSTALL_HOOK: Once = Once::new();

fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Restores the previous quiet state even if `f` unwinds.
struct QuietGuard(bool);

impl Drop for QuietGuard {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(self.0));
    }
}

/// Run `f`, converting a panic inside it into [`StructureError::ParserPanic`] for `path`.
///
/// Only third-party parser calls go through here; our own code must not panic.
pub(crate) fn catch<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, StructureError> {
    install_hook();
    let _guard = QuietGuard(QUIET.with(|q| q.replace(true)));
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        StructureError::ParserPanic {
            path: path.to_path_buf(),
            message: message.lines().next().unwrap_or_default().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_error_naming_file() {
        let r: Result<(), _> = catch(Path::new("bad.pdb"), || panic!("index out of range"));
        let e = r.unwrap_err();
        assert!(matches!(e, StructureError::ParserPanic { .. }));
        assert_eq!(e.to_string(), "bad.pdb: parser failure on malformed input (index out of range)");
        assert!(!QUIET.with(Cell::get), "quiet flag restored after the panic");
        assert_eq!(catch(Path::new("ok.pdb"), || 7).unwrap(), 7);
    }
}
