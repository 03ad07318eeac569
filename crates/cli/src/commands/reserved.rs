//! Commands named in DESIGN.md that this version does not implement yet.

use anyhow::bail;

/// Fail with a clear message naming the command and the issue that tracks it.
pub(crate) fn run(command: &str, tracked_by: &str) -> anyhow::Result<()> {
    bail!("`protforge {command}` is not yet available in protforge {}; it arrives with {tracked_by}", env!("CARGO_PKG_VERSION"))
}
