//! The tree operations the steps need: measure, copy and verify a directory tree
//! ([`super::copy`], [`super::verify`]). One place that calls them, so the steps never
//! depend on how they work inside.

use super::copy::{self, CopyOptions, Reflink};
use super::verify;
use crate::inspect::mountinfo::MountEntry;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use super::copy::{CopyError, CopyStats, Progress, Totals};
pub use super::verify::VerifyError;

/// Bytes and files below `path`, hard links counted once. What is mounted below it (the
/// root filesystems of running containers) is not its data and is left out; a mount table
/// that cannot be read is an error, not an empty one.
pub fn measure(path: &Path) -> Result<Totals, CopyError> {
    measure_except(path, &[])
}

/// As [`measure`], leaving out `exclude` too (paths relative to `path`).
pub fn measure_except(path: &Path, exclude: &[PathBuf]) -> Result<Totals, CopyError> {
    let mounts = crate::inspect::read_mounts().map_err(|source| CopyError::Io {
        path: "/proc/self/mountinfo".into(),
        op: "read",
        source,
    })?;
    let mut below = mounts_below(&mounts, path);
    below.extend(exclude.iter().cloned());
    copy::measure_excluding(path, &below)
}

/// Whether `m` mounts a directory onto itself (same filesystem, same directory): its
/// content is the data below it, not another filesystem's.
pub fn is_self_bind(m: &MountEntry, mounts: &[MountEntry]) -> bool {
    let Some(parent) = mounts.iter().find(|p| p.mount_id == m.parent_id) else { return false };
    let Ok(rel) = Path::new(&m.mountpoint).strip_prefix(&parent.mountpoint) else { return false };
    parent.device_number == m.device_number && Path::new(&parent.root).join(rel) == Path::new(&m.root)
}

/// Mount points strictly below `path`, relative to it; a directory bind-mounted onto
/// itself is data of `path` and not listed.
pub fn mounts_below(mounts: &[MountEntry], path: &Path) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| !is_self_bind(m, mounts))
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
    exclude: &[PathBuf],
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
    exclude: &[PathBuf],
    since: Option<u64>,
    cancel: &AtomicBool,
) -> Result<(), VerifyError> {
    let options =
        CopyOptions { cancel: Some(cancel), exclude, changed_since: since, ..CopyOptions::default() };
    verify::verify_tree(src, dst, &options).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, parent: u64, dev: &str, root: &str, at: &str) -> MountEntry {
        MountEntry {
            mount_id: id,
            parent_id: parent,
            device_number: dev.into(),
            root: root.into(),
            mountpoint: at.into(),
            mount_options: vec![],
            fs_type: "ext4".into(),
            source: "/dev/loop1".into(),
            super_options: vec![],
        }
    }

    #[test]
    fn a_directory_bind_mounted_onto_itself_is_data_and_other_mounts_are_not() {
        // As Podman 4.3's overlay driver leaves it on ext4 (mountinfo of the real system).
        let mounts = vec![
            entry(64, 44, "7:1", "/", "/m"),
            entry(68, 64, "7:1", "/storage/overlay", "/m/storage/overlay"),
            entry(70, 64, "7:1", "/elsewhere", "/m/storage/volumes"),
            entry(71, 64, "0:50", "/", "/m/storage/overlay/x/merged"),
        ];
        assert!(is_self_bind(&mounts[1], &mounts));
        assert!(!is_self_bind(&mounts[2], &mounts), "another directory of the same filesystem");
        assert!(!is_self_bind(&mounts[3], &mounts), "another filesystem");
        assert_eq!(
            mounts_below(&mounts, Path::new("/m/storage")),
            [PathBuf::from("volumes"), PathBuf::from("overlay/x/merged")]
        );
    }
}
