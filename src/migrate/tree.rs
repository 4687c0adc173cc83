//! The three tree operations the steps need: measure, copy and verify a directory tree.
//! One place that calls the copier, so the steps never depend on how it works inside.

use std::path::Path;
use std::sync::atomic::AtomicBool;

pub use super::interim::{CopyError, Totals};

/// Bytes and files below `path`, hard links counted once.
pub fn measure(path: &Path) -> std::io::Result<Totals> {
    super::interim::measure(path)
}

/// Copies the contents of `src` and the metadata of its root into the existing, empty (or
/// partly filled by an earlier run) directory `dst`. `reflink`: share extents where the
/// attributes allow.
pub fn copy(
    src: &Path,
    dst: &Path,
    reflink: bool,
    cancel: &AtomicBool,
    progress: &dyn Fn(u64, u64),
) -> Result<(), CopyError> {
    super::interim::copy_tree(src, dst, reflink, cancel, progress)
}

/// Compares both trees: every file's content and metadata. `Err` names the first
/// difference.
pub fn verify(src: &Path, dst: &Path, cancel: &AtomicBool) -> Result<(), CopyError> {
    super::interim::verify_tree(src, dst, cancel)
}

/// As [`verify`], but what was changed in `dst` at or after `since` (ns since the epoch)
/// is taken as changed by its owner since: for checking the live data against its old
/// copy after containers ran again.
pub fn verify_unchanged_since(
    src: &Path,
    dst: &Path,
    since: u64,
    cancel: &AtomicBool,
) -> Result<(), CopyError> {
    super::interim::verify_since(src, dst, Some(since), cancel)
}
