//! The tree operations the steps need: measure, copy, verify and delete a directory tree
//! ([`super::copy`], [`super::verify`]), and make the nested subvolumes of an old copy
//! read-only and writable again. One place that calls them, so the steps never depend on
//! how they work inside.

use super::copy::{self, CopyOptions, Nesting, Reflink};
use super::verify;
use crate::inspect::mountinfo::MountEntry;
use rustix::fd::AsFd;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use super::copy::{CopyError, CopyStats, Progress, Totals};
pub use super::verify::VerifyError;

/// Bytes and files below `path`, hard links counted once, leaving out `exclude` (paths
/// relative to `path`). What is mounted below it (the root filesystems of running
/// containers) is not its data and is left out, but for a directory bound onto itself (the
/// btrfs storage driver does that to its own directory while Podman runs), which is
/// counted as the plain directory it is. A mount table that cannot be read is an error,
/// not an empty one.
pub fn measure_except(path: &Path, exclude: &[PathBuf]) -> Result<Totals, CopyError> {
    let mounts = crate::inspect::read_mounts().map_err(|source| CopyError::Io {
        path: "/proc/self/mountinfo".into(),
        op: "read",
        source,
    })?;
    measure_with(path, exclude, &mounts)
}

/// [`measure_except`] over a mount table: mounts below `path` are left out, but for a
/// directory bound onto itself, measured as the plain directory it is.
fn measure_with(path: &Path, exclude: &[PathBuf], mounts: &[MountEntry]) -> Result<Totals, CopyError> {
    let below: Vec<&MountEntry> = mounts
        .iter()
        .filter(|m| Path::new(&m.mountpoint).strip_prefix(path).is_ok_and(|r| !r.as_os_str().is_empty()))
        .collect();
    let mut relative: Vec<PathBuf> = below
        .iter()
        .filter_map(|m| Path::new(&m.mountpoint).strip_prefix(path).ok())
        .map(Path::to_path_buf)
        .collect();
    relative.extend(exclude.iter().cloned());
    let mut totals = copy::measure_excluding(path, &relative)?;
    let outermost = |m: &&&MountEntry| {
        !below
            .iter()
            .any(|o| o.mountpoint != m.mountpoint && Path::new(&m.mountpoint).starts_with(&o.mountpoint))
    };
    for bind in below.iter().filter(outermost).filter(|m| is_self_bind(m, mounts)) {
        let at = Path::new(&bind.mountpoint);
        let rel = at.strip_prefix(path).unwrap_or(at);
        if exclude.iter().any(|e| rel.starts_with(e)) {
            continue;
        }
        let inner: Vec<PathBuf> =
            exclude.iter().filter_map(|e| e.strip_prefix(rel).ok().map(Path::to_path_buf)).collect();
        let inside = measure_with(at, &inner, mounts)?;
        totals.files += inside.files + 1;
        totals.dirs += inside.dirs + 1;
        totals.subvolumes += inside.subvolumes;
        totals.bytes += inside.bytes;
        totals.allocated += inside.allocated;
    }
    Ok(totals)
}

/// Whether `m` mounts a directory onto itself (same filesystem, same directory, as
/// `mount --bind DIR DIR`): its content is the data below it, not another filesystem's.
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

/// The parent directory of `path`, opened, and `path`'s last component.
fn parent_and_name(path: &Path) -> Result<(rustix::fd::OwnedFd, CString), CopyError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| CopyError::Io {
        path: path.to_path_buf(),
        op: "name",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no last component"),
    })?;
    let fd = copy::open_root(parent).map_err(copy::io_err(parent.to_path_buf(), "open"))?;
    let name = CString::new(name.as_bytes()).expect("a path holds no NUL");
    Ok((fd, name))
}

/// Deletes the tree at `path`, which this tool made or kept (a staging copy, an old
/// copy): nested subvolumes with the subvolume delete ioctl, read-only ones made writable
/// first; never through a mount point.
pub fn delete(path: &Path) -> Result<(), CopyError> {
    let (parent, name) = parent_and_name(path)?;
    copy::remove_tree(parent.as_fd(), &name).map_err(|e| match e {
        rustix::io::Errno::XDEV => CopyError::CrossesFilesystem { path: path.to_path_buf() },
        e => copy::io_err(path.to_path_buf(), "delete")(e),
    })
}

/// The subvolumes at or below `path` that are writable: the root when it is a subvolume
/// of its own, and every nested one. Mount points are not entered.
#[allow(clippy::unnecessary_cast)]
pub fn writable_subvolumes(path: &Path) -> Result<Vec<PathBuf>, CopyError> {
    let err = |op| copy::io_err(path.to_path_buf(), op);
    let (parent, name) = parent_and_name(path)?;
    let st =
        rustix::fs::statat(&parent, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).map_err(err("stat"))?;
    let parent_dev = rustix::fs::fstat(&parent).map_err(err("stat"))?.st_dev as u64;
    let mut all = Vec::new();
    if copy::nesting(parent.as_fd(), &name, &st, parent_dev).map_err(err("stat"))? == Nesting::Subvolume {
        all.push(path.to_path_buf());
    }
    let root = copy::open_root(path).map_err(err("open"))?;
    let below = copy::subvolumes_in(root.as_fd(), &[], st.st_dev as u64).map_err(err("read"))?;
    all.extend(below.iter().map(|rel| copy::join(path, rel)));
    let mut writable = Vec::new();
    for p in all {
        let fd = copy::open_root(&p).map_err(copy::io_err(p.clone(), "open"))?;
        if !crate::btrfs::is_read_only(fd.as_fd()).map_err(copy::io_err(p.clone(), "read the flags of"))? {
            writable.push(p);
        }
    }
    Ok(writable)
}

/// Makes each subvolume read-only (`true`) or writable; a path that is gone is skipped.
pub fn set_read_only(paths: &[PathBuf], read_only: bool) -> Result<(), CopyError> {
    for p in paths {
        let fd = match copy::open_root(p) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(copy::io_err(p.clone(), "open")(e)),
        };
        let done = if read_only {
            crate::btrfs::set_read_only(fd.as_fd())
        } else {
            crate::btrfs::set_writable(fd.as_fd())
        };
        done.map_err(|e| {
            copy::io_err(p.clone(), if read_only { "make read-only" } else { "make writable" })(e.errno)
        })?;
    }
    Ok(())
}

/// Copies the contents of `src` and the metadata of its root into the existing, empty (or
/// partly filled by an earlier run) directory `dst`, leaving out `exclude` (paths relative
/// to `src`: the targets that get subvolumes of their own). `reflink`: share extents where
/// the target's attributes allow.
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

/// Compares both trees, every file's content and metadata, leaving out `exclude` (paths
/// relative to both roots); `Err` names the first difference. With `since` (ns since the
/// epoch), what was changed in `dst` at or after it is taken as changed by its owner
/// since: for checking the live data against its old copy after containers ran again.
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
            fs_type: "btrfs".into(),
            source: "/dev/loop0".into(),
            super_options: vec![],
        }
    }

    #[test]
    fn a_directory_bound_onto_itself_is_told_from_other_mounts() {
        let mounts = [
            entry(1, 0, "0:20", "/", "/"),
            entry(2, 1, "0:30", "/", "/mnt"),
            // The btrfs storage driver's own directory, bound onto itself.
            entry(3, 2, "0:30", "/storage/btrfs", "/mnt/storage/btrfs"),
            // Another directory of the same filesystem bound there, and a tmpfs.
            entry(4, 2, "0:30", "/elsewhere", "/mnt/storage/volumes"),
            entry(5, 3, "0:40", "/", "/mnt/storage/btrfs/containers/x/shm"),
        ];
        assert!(is_self_bind(&mounts[2], &mounts));
        assert!(!is_self_bind(&mounts[3], &mounts));
        assert!(!is_self_bind(&mounts[4], &mounts));
        assert!(!is_self_bind(&mounts[1], &mounts), "another filesystem");
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
