//! Read-only inspection of where data lies on a live host: the filesystem and subvolume
//! of a path, the effective options of its mount, its NOCOW flag and compression
//! property, and how many bytes a directory holds. Nothing here writes.

pub mod blockdev;
pub mod mountinfo;

use mountinfo::MountEntry;
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};
use serde::Serialize;
use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a directory's data lies and with which attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub path: String,
    /// Filesystem type of the mount holding it, e.g. `btrfs`, `ext4`.
    pub filesystem: String,
    /// Its device, e.g. `/dev/nvme0n1p2`.
    pub device: String,
    pub mountpoint: String,
    /// btrfs: the subvolume holding the path, as a path inside the filesystem (`/@containers-storage`).
    pub subvolume: Option<String>,
    /// btrfs: the path is the root of a subvolume of its own (mounted or nested).
    pub own_subvolume: bool,
    /// Options in force for the whole filesystem (the superblock's), without `subvol`/`subvolid`.
    pub filesystem_options: Vec<String>,
    /// Options of this one mount.
    pub mount_options: Vec<String>,
    /// `chattr +C` is set (btrfs only; `None` where the flag cannot be read).
    pub nocow: Option<bool>,
    /// The `btrfs.compression` property (`zstd`, `none`, …), `None` where unset.
    pub compression: Option<String>,
}

impl Placement {
    pub fn is_btrfs(&self) -> bool {
        self.filesystem == "btrfs"
    }

    /// New files here get compressed: a compression property other than `none`, or a
    /// filesystem-wide `compress*` option and no property saying otherwise.
    pub fn compresses(&self) -> bool {
        if self.nocow == Some(true) {
            return false;
        }
        match self.compression.as_deref() {
            Some("none") | Some("no") => false,
            Some(_) => true,
            None => self.filesystem_options.iter().any(|o| o.starts_with("compress")),
        }
    }
}

/// The mount table of this process's mount namespace.
pub fn read_mounts() -> io::Result<Vec<MountEntry>> {
    Ok(mountinfo::parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Inspects a directory; `mounts` from [`read_mounts`].
pub fn inspect(path: &Path, mounts: &[MountEntry]) -> io::Result<Placement> {
    let path = std::fs::canonicalize(path)?;
    let text = path.to_string_lossy().into_owned();
    let mount = mountinfo::mount_of(mounts, &text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no mount holds {text}")))?;
    let btrfs = mount.fs_type == "btrfs";
    let (subvolume, own_subvolume) = if btrfs { subvolume_of(&path, mount)? } else { (None, false) };
    Ok(Placement {
        path: text,
        filesystem: mount.fs_type.clone(),
        device: mount.source.clone(),
        mountpoint: mount.mountpoint.clone(),
        subvolume,
        own_subvolume,
        filesystem_options: mount
            .super_options
            .iter()
            .filter(|o| !o.starts_with("subvol=") && !o.starts_with("subvolid="))
            .cloned()
            .collect(),
        mount_options: mount.mount_options.clone(),
        nocow: if btrfs { nocow(&path).ok() } else { None },
        compression: if btrfs { compression_property(&path)? } else { None },
    })
}

/// The subvolume holding `path` and whether `path` is its root. Every btrfs subvolume
/// has its own device number, so the subvolume root is the highest ancestor (up to the
/// mountpoint) with the same device number as `path`.
fn subvolume_of(path: &Path, mount: &MountEntry) -> io::Result<(Option<String>, bool)> {
    let dev = std::fs::metadata(path)?.dev();
    let mountpoint = Path::new(&mount.mountpoint);
    let mut root = path;
    while root != mountpoint {
        match root.parent() {
            Some(parent) if std::fs::metadata(parent)?.dev() == dev => root = parent,
            _ => break,
        }
    }
    let own = std::fs::metadata(root)?.ino() == crate::btrfs::SUBVOLUME_ROOT_INO && root == path;
    let inside = root.strip_prefix(mountpoint).unwrap_or(Path::new(""));
    let base = mount.subvolume().trim_end_matches('/');
    let name = if inside.as_os_str().is_empty() {
        if base.is_empty() { "/".to_string() } else { base.to_string() }
    } else {
        format!("{base}/{}", inside.display())
    };
    Ok((Some(name), own))
}

/// Reads the NOCOW inode flag (FS_IOC_GETFLAGS), as `lsattr` shows `C`.
pub fn nocow(path: &Path) -> io::Result<bool> {
    Ok(crate::btrfs::nocow(open_nonblocking(path)?.as_fd())?)
}

/// Reads the `btrfs.compression` property (an extended attribute), `None` when unset.
pub fn compression_property(path: &Path) -> io::Result<Option<String>> {
    Ok(crate::btrfs::compression(open_nonblocking(path)?.as_fd())?)
}

/// Opens any file for reading its attributes; NONBLOCK so a FIFO cannot hang the open.
fn open_nonblocking(path: &Path) -> io::Result<rustix::fd::OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())?)
}

/// Bytes of the regular files below `path` (apparent size, hard links counted once, no
/// symlinks followed). Unreadable directories are skipped and logged.
pub fn dir_size(path: &Path) -> io::Result<u64> {
    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![path.to_path_buf()];
    std::fs::symlink_metadata(path)?;
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("skipping {}: {e}", dir.display());
                continue;
            }
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino()))) {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

/// Sizes of many directories, walked by `workers` threads at once; `progress` is called
/// after each with (done, total). Order matches `paths`.
pub fn dir_sizes(
    paths: &[PathBuf],
    workers: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Option<u64>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<u64>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, paths.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let size =
                        dir_size(path).map_err(|e| tracing::debug!("size of {}: {e}", path.display())).ok();
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = size;
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, paths.len());
                }
            });
        }
    });
    results.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_counts_files_once_and_skips_symlinks() {
        let d = std::env::temp_dir().join(format!("podfs-size-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/x"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.join("a/b/y"), vec![0u8; 24]).unwrap();
        std::fs::hard_link(d.join("a/x"), d.join("a/b/x-again")).unwrap();
        std::os::unix::fs::symlink("/usr", d.join("a/link")).unwrap();
        assert_eq!(dir_size(&d).unwrap(), 1024);
        let sizes = dir_sizes(&[d.join("a/b"), d.join("missing")], 4, &|_, _| {});
        assert_eq!(sizes, [Some(1024), None]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
