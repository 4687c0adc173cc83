//! The tree operations the steps need: measure, copy and verify a directory tree
//! ([`super::copy`], [`super::verify`]). One place that calls them, so the steps never
//! depend on how they work inside.

use super::copy::{self, CopyOptions, Reflink};
use super::verify;
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub use super::copy::{CopyError, CopyStats, Progress, Totals};
pub use super::verify::VerifyError;

/// Bytes and files below `path`, hard links counted once. What is mounted below it (the
/// root filesystems of running containers) is not its data and is left out; a mount table
/// that cannot be read is an error, not an empty one.
pub fn measure(path: &Path) -> Result<Totals, CopyError> {
    let mounts = crate::inspect::read_mounts().map_err(|source| CopyError::Io {
        path: "/proc/self/mountinfo".into(),
        op: "read",
        source,
    })?;
    copy::measure_excluding(path, &mounts_below(&mounts, path))
}

/// As [`measure`], leaving out `exclude` too (paths relative to `path`).
pub fn measure_except(path: &Path, exclude: &[std::path::PathBuf]) -> Result<Totals, CopyError> {
    let mounts = crate::inspect::read_mounts().map_err(|source| CopyError::Io {
        path: "/proc/self/mountinfo".into(),
        op: "read",
        source,
    })?;
    let mut below = mounts_below(&mounts, path);
    below.extend(exclude.iter().cloned());
    copy::measure_excluding(path, &below)
}

/// Mount points strictly below `path`, relative to it.
pub fn mounts_below(
    mounts: &[crate::inspect::mountinfo::MountEntry],
    path: &Path,
) -> Vec<std::path::PathBuf> {
    mounts
        .iter()
        .filter_map(|m| Path::new(&m.mountpoint).strip_prefix(path).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect()
}

/// Copies the contents of `src` and the metadata of its root into the existing, empty (or
/// partly filled by an earlier run) directory `dst`. `reflink`: share extents where the
/// target's attributes allow.
pub fn copy(
    src: &Path,
    dst: &Path,
    reflink: bool,
    cancel: &AtomicBool,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<CopyStats, CopyError> {
    copy_except(src, dst, reflink, &[], cancel, progress)
}

/// Compares both trees: every file's content and metadata. `Err` names the first
/// difference.
pub fn verify(src: &Path, dst: &Path, cancel: &AtomicBool) -> Result<(), VerifyError> {
    let options = CopyOptions { cancel: Some(cancel), ..CopyOptions::default() };
    verify::verify_tree(src, dst, &options).map(drop)
}

/// As [`verify`], but what was changed in `dst` at or after `since` (ns since the epoch)
/// is taken as changed by its owner since: for checking the live data against its old
/// copy after containers ran again.
pub fn verify_unchanged_since(
    src: &Path,
    dst: &Path,
    since: u64,
    cancel: &AtomicBool,
) -> Result<(), VerifyError> {
    let options = CopyOptions { cancel: Some(cancel), changed_since: Some(since), ..CopyOptions::default() };
    verify::verify_tree(src, dst, &options).map(drop)
}

/// As [`copy`], leaving out `exclude` (paths relative to `src`: the volumes that get
/// subvolumes of their own).
pub fn copy_except(
    src: &Path,
    dst: &Path,
    reflink: bool,
    exclude: &[std::path::PathBuf],
    cancel: &AtomicBool,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<CopyStats, CopyError> {
    let options = CopyOptions {
        reflink: if reflink { Reflink::Auto } else { Reflink::Never },
        cancel: Some(cancel),
        exclude,
        ..CopyOptions::new(progress)
    };
    copy::copy_tree(src, dst, &options)
}

/// As [`verify`], leaving out `exclude`; with `since`, as [`verify_unchanged_since`].
pub fn verify_except(
    src: &Path,
    dst: &Path,
    exclude: &[std::path::PathBuf],
    since: Option<u64>,
    cancel: &AtomicBool,
) -> Result<(), VerifyError> {
    let options =
        CopyOptions { cancel: Some(cancel), exclude, changed_since: since, ..CopyOptions::default() };
    verify::verify_tree(src, dst, &options).map(drop)
}
