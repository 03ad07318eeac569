//! Paths of the shared fixtures in `tests/fixtures/` (see its README for sources and licences).
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// `tests/fixtures/<name>` at the workspace root.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}
