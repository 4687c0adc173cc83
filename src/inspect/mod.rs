//! Read-only inspection of where data lies on a live host: the filesystem and subvolume
//! of a path, the effective options of its mount, its NOCOW flag and compression
//! property, and how many bytes a directory holds (walked, or read from the btrfs qgroup
//! of a subvolume when quotas are on). Nothing here writes.

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

/// Where paths of another process are read: its root directory and its mount table.
///
/// A Podman in another mount namespace (a chroot, a container, a rootless namespace)
/// names paths as it sees them; through `/proc/PID/root` and `/proc/PID/mountinfo` they
/// are read in its namespace, not in ours, where the same path may not exist or lie on
/// another filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountView {
    /// `None`: our own root and mounts; else `/proc/PID/root`.
    root: Option<PathBuf>,
    /// The process whose namespace this is, when it is not ours.
    pid: Option<u32>,
    /// Mountpoints here are relative to that process's root.
    pub mounts: Vec<MountEntry>,
}

impl MountView {
    /// Our own mount namespace and root.
    pub fn own() -> io::Result<MountView> {
        Ok(MountView { root: None, pid: None, mounts: read_mounts()? })
    }

    /// A view from a given root with a given mount table; `root` `None` is our own.
    #[cfg(test)]
    pub fn with(root: Option<PathBuf>, mounts: Vec<MountEntry>) -> MountView {
        MountView { root, pid: None, mounts }
    }

    /// The mount namespace and root of process `pid`: our own when both are ours (read
    /// directly), else through `/proc/PID/root`. The error says why it cannot be read
    /// (permission, the process is gone), never guessed around.
    pub fn of_process(pid: u32) -> Result<MountView, String> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let why = |what: &str, e: io::Error| -> String {
            let hint = match e.kind() {
                io::ErrorKind::PermissionDenied => {
                    " (permission denied: run as root or as the user Podman runs as)".to_string()
                }
                io::ErrorKind::NotFound => " (the process is gone)".to_string(),
                _ => format!(" ({e})"),
            };
            format!("cannot read {}{hint}", proc.join(what).display())
        };
        let same_namespace = std::fs::read_link("/proc/self/ns/mnt")
            .map_err(|e| format!("cannot read /proc/self/ns/mnt ({e})"))?
            == std::fs::read_link(proc.join("ns/mnt")).map_err(|e| why("ns/mnt", e))?;
        let id = |m: std::fs::Metadata| (m.dev(), m.ino());
        let root = proc.join("root");
        let theirs = std::fs::metadata(&root).map_err(|e| why("root", e))?;
        let ours = std::fs::metadata("/").map_err(|e| format!("cannot read / ({e})"))?;
        if same_namespace && id(theirs) == id(ours) {
            return MountView::own().map_err(|e| format!("cannot read /proc/self/mountinfo ({e})"));
        }
        let text = std::fs::read_to_string(proc.join("mountinfo")).map_err(|e| why("mountinfo", e))?;
        // A root that opens but cannot be listed is no view at all.
        std::fs::read_dir(&root).map_err(|e| why("root", e))?;
        Ok(MountView { root: Some(root), pid: Some(pid), mounts: mountinfo::parse(&text) })
    }

    /// The directory paths are read through: `/` or `/proc/PID/root`.
    pub fn root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/"))
    }

    /// The process whose namespace is read, when it is not our own.
    pub fn foreign_pid(&self) -> Option<u32> {
        self.pid
    }

    /// Where this process reads a path of the viewed namespace. `inside` must be
    /// resolved ([`MountView::resolve`]): a symlink left in it would be followed in ours.
    pub fn local(&self, inside: &Path) -> PathBuf {
        match &self.root {
            None => inside.to_path_buf(),
            Some(root) => root.join(inside.strip_prefix("/").unwrap_or(inside)),
        }
    }

    /// `path` as the viewed namespace resolves it: absolute, every symlink followed
    /// inside that root (an absolute link target starts again at its root, not ours).
    pub fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        match &self.root {
            None => std::fs::canonicalize(path),
            Some(root) => resolve_in(root, path),
        }
    }

    /// Inspects a directory as the viewed namespace sees it; the placement names paths
    /// as that namespace does.
    pub fn inspect(&self, path: &Path) -> io::Result<Placement> {
        let inside = self.resolve(path)?;
        let text = inside.to_string_lossy().into_owned();
        let mount = mountinfo::mount_of(&self.mounts, &text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no mount holds {text}")))?;
        let btrfs = mount.fs_type == "btrfs";
        let local = self.local(&inside);
        let (subvolume, own_subvolume) =
            if btrfs { subvolume_of(&inside, mount, &|p| self.local(p))? } else { (None, false) };
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
            nocow: if btrfs { nocow(&local).ok() } else { None },
            compression: if btrfs { compression_property(&local)? } else { None },
        })
    }

    /// Sizes of directories named as the viewed namespace names them (see [`dir_sizes`]);
    /// a directory that does not resolve has no size.
    pub fn dir_sizes(
        &self,
        paths: &[PathBuf],
        workers: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Option<Measured>> {
        let local: Vec<Option<PathBuf>> = paths
            .iter()
            .map(|p| {
                self.resolve(p)
                    .map(|inside| self.local(&inside))
                    .map_err(|e| tracing::debug!("size of {}: {e}", p.display()))
                    .ok()
            })
            .collect();
        let readable: Vec<PathBuf> = local.iter().flatten().cloned().collect();
        let mut sizes = dir_sizes(&readable, workers, progress).into_iter();
        local.iter().map(|p| p.as_ref().and_then(|_| sizes.next().flatten())).collect()
    }
}

/// Resolves `path` inside `root` the way the kernel would with `root` as `/`: `..` stops
/// at the root, and absolute symlink targets start again there. At most 40 links, as
/// the kernel allows.
fn resolve_in(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut pending = steps_reversed(path);
    let mut done = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&name);
        let local = root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        if !std::fs::symlink_metadata(&local)?.file_type().is_symlink() {
            done = candidate;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(io::Error::other(format!("too many levels of symbolic links in {}", path.display())));
        }
        let target = std::fs::read_link(&local)?;
        if target.is_absolute() {
            done = PathBuf::from("/");
        }
        pending.extend(steps_reversed(&target));
    }
    Ok(done)
}

/// The names and `..` steps of a path, last first (a stack to pop from).
fn steps_reversed(path: &Path) -> Vec<std::ffi::OsString> {
    use std::path::Component;
    path.components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// The subvolume holding `path` and whether `path` is its root. Every btrfs subvolume
/// has its own device number, so the subvolume root is the highest ancestor (up to the
/// mountpoint) with the same device number as `path`.
fn subvolume_of(
    path: &Path,
    mount: &MountEntry,
    local: &dyn Fn(&Path) -> PathBuf,
) -> io::Result<(Option<String>, bool)> {
    let dev = std::fs::metadata(local(path))?.dev();
    let mountpoint = Path::new(&mount.mountpoint);
    let mut root = path;
    while root != mountpoint {
        match root.parent() {
            Some(parent) if std::fs::metadata(local(parent))?.dev() == dev => root = parent,
            _ => break,
        }
    }
    let own = std::fs::metadata(local(root))?.ino() == crate::btrfs::SUBVOLUME_ROOT_INO && root == path;
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

/// A directory's size, and how it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// Walked: the apparent bytes of its regular files ([`dir_size`]).
    Walked(u64),
    /// The `referenced` bytes of its subvolume's qgroup.
    Qgroup(u64),
}

/// The size of a directory: from its qgroup when it is the root of a btrfs subvolume
/// that [`crate::btrfs::qgroup_referenced`] can read (quotas already on; the tool never
/// turns them on), else by walking it ([`dir_size`]).
pub fn measure(path: &Path) -> io::Result<Measured> {
    match qgroup_size(path) {
        Some(bytes) => Ok(Measured::Qgroup(bytes)),
        None => dir_size(path).map(Measured::Walked),
    }
}

fn qgroup_size(path: &Path) -> Option<u64> {
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    if !crate::btrfs::is_btrfs(fd.as_fd())
        || rustix::fs::fstat(&fd).ok()?.st_ino != crate::btrfs::SUBVOLUME_ROOT_INO
    {
        return None;
    }
    crate::btrfs::qgroup_referenced(fd.as_fd())
        .map_err(|why| {
            tracing::debug!("size of {} is walked, not read from its qgroup: {why:?}", path.display())
        })
        .ok()
}

/// Sizes of many directories ([`measure`]), by `workers` threads at once; `progress` is
/// called after each with (done, total). Order matches `paths`.
pub fn dir_sizes(
    paths: &[PathBuf],
    workers: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Option<Measured>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Measured>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, paths.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let size =
                        measure(path).map_err(|e| tracing::debug!("size of {}: {e}", path.display())).ok();
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
        assert_eq!(sizes, [Some(Measured::Walked(1024)), None]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn paths_resolve_inside_another_root() {
        let root = std::env::temp_dir().join(format!("podfs-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"12345").unwrap();
        // An absolute target means the viewed root, never ours.
        std::os::unix::fs::symlink("/a", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("a/b", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("../../../a", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let at = |p: &str| resolve_in(&root, Path::new(p));
        assert_eq!(at("/abs/b").unwrap(), Path::new("/a/b"));
        assert_eq!(at("/rel/f").unwrap(), Path::new("/a/b/f"));
        assert_eq!(at("/a/up/b/../b").unwrap(), Path::new("/a/b"));
        assert_eq!(at("/abs/missing").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(at("/loop").unwrap_err().to_string().contains("too many levels"));

        // Placements name paths as the viewed root does; sizes are read through it.
        let mounts = mountinfo::parse("1 0 0:99 / / rw - ext4 /dev/viewed rw\n");
        let view = MountView::with(Some(root.clone()), mounts);
        let p = view.inspect(Path::new("/abs/b")).unwrap();
        assert_eq!(
            (p.path.as_str(), p.filesystem.as_str(), p.device.as_str()),
            ("/a/b", "ext4", "/dev/viewed")
        );
        let sizes = view.dir_sizes(&[PathBuf::from("/rel"), PathBuf::from("/nothing")], 2, &|_, _| {});
        assert_eq!(sizes, [Some(Measured::Walked(5)), None]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn our_own_process_is_read_directly() {
        let view = MountView::of_process(std::process::id()).unwrap();
        assert_eq!((view.root(), view.foreign_pid()), (Path::new("/"), None));
        assert!(!view.mounts.is_empty());
        let gone = MountView::of_process(u32::MAX).unwrap_err();
        assert!(gone.contains("the process is gone"), "{gone}");
    }
}
