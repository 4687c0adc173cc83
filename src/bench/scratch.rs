//! Where `bench` writes: one scratch subvolume of its own on the measured btrfs
//! (`DIR/.podfs-bench-STAMP`: removed in one go, and never part of a snapshot of DIR's
//! subvolume), and a plain directory of the same name on the `--compare-dir` filesystem.
//! Both are removed when the run ends, also when it fails or is cancelled (Drop), and are
//! locked (flock) while a run uses them, so that finding leftovers of a killed run never
//! names, or removes, the scratch of a run still going. Nothing whose name does not start
//! with [`PREFIX`] is ever removed.

use crate::btrfs;
use crate::error::Error;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, FlockOperation, IFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The name of every scratch directory `bench` makes begins so.
pub const PREFIX: &str = ".podfs-bench-";

/// A scratch subvolume or directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    parent: OwnedFd,
    path: PathBuf,
    name: String,
    subvolume: bool,
    /// Held open with an exclusive flock while the run uses the scratch.
    lock: Option<OwnedFd>,
    removed: bool,
}

fn open_dir(path: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(path, "open", e.into()))
}

/// Opens `name` in `parent` and takes its lock; `None` when another run holds it.
fn lock_at(parent: BorrowedFd<'_>, name: &str) -> Result<Option<OwnedFd>, Errno> {
    let fd = btrfs::open_dir(parent, name).map_err(|e| e.errno)?;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Scratch {
    /// Creates subvolume `PREFIX + tag` in `dir`, which must lie on btrfs.
    pub fn subvolume(dir: &Path, tag: &str) -> Result<Scratch, Error> {
        Self::create(dir, tag, true)
    }

    /// Creates directory `PREFIX + tag` in `dir` (any filesystem).
    pub fn directory(dir: &Path, tag: &str) -> Result<Scratch, Error> {
        Self::create(dir, tag, false)
    }

    fn create(dir: &Path, tag: &str, subvolume: bool) -> Result<Scratch, Error> {
        let parent = open_dir(dir)?;
        let name = format!("{PREFIX}{tag}");
        let path = dir.join(&name);
        if subvolume {
            btrfs::create_subvolume(parent.as_fd(), &name)
                .map_err(|e| Error::Environment(format!("cannot create {}: {e}", path.display())))?;
        } else {
            rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700))
                .map_err(|e| Error::io(&path, "create directory", e.into()))?;
        }
        let mut scratch = Scratch { parent, path, name, subvolume, lock: None, removed: false };
        scratch.lock = lock_at(scratch.parent.as_fd(), &scratch.name)
            .map_err(|e| Error::io(&scratch.path, "lock", e.into()))?;
        Ok(scratch)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the scratch and everything in it, saying what failed.
    pub fn remove(mut self) -> Result<(), Error> {
        self.remove_now()
    }

    fn remove_now(&mut self) -> Result<(), Error> {
        if self.removed {
            return Ok(());
        }
        self.lock = None;
        let result = remove_entry(self.parent.as_fd(), &self.path, &self.name, self.subvolume);
        self.removed = result.is_ok();
        result
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.remove_now() {
            tracing::error!("{e}; remove {} by hand (or `bench --clean`)", self.path.display());
        }
    }
}

/// Removes `name` in `parent` (at `path`): a subvolume with the subvolumes inside it,
/// else a directory tree.
fn remove_entry(parent: BorrowedFd<'_>, path: &Path, name: &str, subvolume: bool) -> Result<(), Error> {
    if !subvolume {
        return std::fs::remove_dir_all(path).map_err(|e| Error::io(path, "remove", e));
    }
    let c_name = CString::new(name).map_err(|e| Error::io(path, "remove", io::Error::other(e)))?;
    match remove_below(parent, &c_name) {
        Ok(()) => Ok(()),
        // Not root, and the filesystem does not allow users to delete subvolumes: an
        // emptied subvolume can still be removed with rmdir.
        Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::PERM | Errno::ACCESS)) => {
            std::fs::remove_dir_all(path).map_err(|e| Error::io(path, "remove", e))
        }
        Err(e) => {
            Err(Error::Environment(format!("cannot delete the scratch subvolume {}: {e}", path.display())))
        }
    }
}

/// The entries of a directory but `.` and `..`, with their type (from stat where the
/// directory entry does not say).
pub(super) fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<(CString, FileType)>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => {
                FileType::from_raw_mode(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?.st_mode)
            }
            k => k,
        };
        out.push((name.to_owned(), kind));
    }
    Ok(out)
}

/// Directory `name` of `dir`, never through a symlink.
pub(super) fn open_subdir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Removes `path` and everything below it, deleting btrfs subvolumes (the btrfs driver's
/// layers) by ioctl: a directory walk cannot remove a subvolume that holds another.
pub(super) fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let parent = rustix::fs::open(parent, flags, Mode::empty())?;
    remove_below(parent.as_fd(), &name)
}

/// Removes directory `name` of `parent` with its contents.
fn remove_below(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // Podman names its layers in ASCII; a name that is not UTF-8 is no subvolume of its.
    let subvolume = name.to_str().ok().filter(|n| btrfs::is_subvolume_at(parent, n));
    // A subvolume goes in one ioctl, unless it holds another (ENOTEMPTY): then its
    // contents first.
    if let Some(n) = subvolume
        && delete_subvolume(parent, n).is_ok()
    {
        return Ok(());
    }
    let dir = open_subdir(parent, name)?;
    for (entry, kind) in entries(dir.as_fd())? {
        if kind == FileType::Directory {
            remove_below(dir.as_fd(), &entry)?;
        } else {
            rustix::fs::unlinkat(&dir, entry.as_c_str(), AtFlags::empty())?;
        }
    }
    drop(dir);
    match subvolume {
        Some(n) => delete_subvolume(parent, n),
        None => Ok(rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?),
    }
}

/// Deletes a subvolume, waiting a little while a mount that just ended still holds it.
fn delete_subvolume(parent: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let start = Instant::now();
    loop {
        match btrfs::delete_subvolume(parent, name) {
            Ok(()) => return Ok(()),
            Err(e) if e.errno == rustix::io::Errno::BUSY && start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.errno.into()),
        }
    }
}

/// How a directory in the scratch subvolume is set up before anything is written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attributes {
    /// `chattr +C`: set on the empty directory, so every file made in it is NOCOW.
    Nocow,
    /// The btrfs `compression` property (`zstd`, `none`), inherited by new files.
    Compression(&'static str),
}

/// Makes directory `path` on btrfs with `attrs`, and checks with a probe file that new
/// files get them: a directory inherits NOCOW from its parent (cleared here for the
/// copy-on-write ones), and a filesystem mounted `nodatacow` makes every new file NOCOW
/// whatever its directory says.
pub fn make_dir(path: &Path, attrs: Attributes) -> Result<(), Error> {
    let refused = |e: btrfs::BtrfsError| Error::Environment(format!("{}: {e}", path.display()));
    std::fs::create_dir(path).map_err(|e| Error::io(path, "create directory", e))?;
    let fd = open_dir(path)?;
    match attrs {
        Attributes::Nocow => btrfs::set_nocow(fd.as_fd()).map_err(refused)?,
        Attributes::Compression(value) => {
            let flags = rustix::fs::ioctl_getflags(&fd)
                .map_err(|e| Error::io(path, "read the flags of", e.into()))?;
            if flags.contains(IFlags::NOCOW) {
                rustix::fs::ioctl_setflags(&fd, flags - IFlags::NOCOW)
                    .map_err(|e| Error::io(path, "clear NOCOW on", e.into()))?;
            }
            btrfs::set_compression(fd.as_fd(), value).map_err(refused)?;
        }
    }
    let probe = path.join(".probe");
    let file = std::fs::File::create(&probe).map_err(|e| Error::io(&probe, "create", e))?;
    let nocow = btrfs::nocow(rustix::fd::AsFd::as_fd(&file));
    drop(file);
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, "remove", e))?;
    let want = attrs == Attributes::Nocow;
    match nocow {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(Error::Environment(format!(
            "new files in {} are {}, not {}: is the filesystem mounted with nodatacow?",
            path.display(),
            if got { "NOCOW" } else { "copy-on-write" },
            if want { "NOCOW" } else { "copy-on-write" }
        ))),
        Err(e) => Err(Error::io(&probe, "read the flags of", e.into())),
    }
}

/// Scratch directories in `dir` left by a run that was killed: named `PREFIX…` and
/// locked by no run. A missing or unreadable `dir` has none to name.
pub fn stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(parent) = open_dir(dir) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(PREFIX))
        .filter(|name| matches!(lock_at(parent.as_fd(), name), Ok(Some(_))))
        .map(|name| dir.join(name))
        .collect();
    found.sort();
    found
}

/// Removes the stale scratch directories of [`stale`] in `dir` and returns them.
pub fn clean(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let parent = open_dir(dir)?;
    let mut removed = Vec::new();
    for path in stale(dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Held while removing, so that no run can pick the same name meanwhile.
        let Ok(Some(_lock)) = lock_at(parent.as_fd(), &name) else { continue };
        let subvolume = btrfs::is_subvolume_at(parent.as_fd(), &name);
        let is_dir = rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        if !is_dir {
            continue;
        }
        remove_entry(parent.as_fd(), &path, &name, subvolume)?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("podfs-scratch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_directory_scratch_is_locked_while_used_and_removed_on_drop() {
        let d = tempdir("dir");
        std::fs::write(d.join("mine"), "user data").unwrap();
        std::fs::create_dir(d.join(".podfs-benchmark")).unwrap();
        let s = Scratch::directory(&d, "T1").unwrap();
        std::fs::write(s.path().join("file"), "x").unwrap();
        assert!(stale(&d).is_empty(), "a scratch in use is not stale");
        assert!(clean(&d).unwrap().is_empty());
        assert!(s.path().exists());
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists());
        // A leftover of a killed run, and things that are not ours.
        std::fs::create_dir_all(d.join(".podfs-bench-OLD/sub")).unwrap();
        assert_eq!(stale(&d), vec![d.join(".podfs-bench-OLD")]);
        assert_eq!(clean(&d).unwrap(), vec![d.join(".podfs-bench-OLD")]);
        assert!(d.join("mine").exists() && d.join(".podfs-benchmark").exists());
        assert!(!d.join(".podfs-bench-OLD").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_name_taken_is_an_error_not_a_reuse() {
        let d = tempdir("taken");
        let s = Scratch::directory(&d, "T2").unwrap();
        let e = Scratch::directory(&d, "T2").unwrap_err();
        assert!(e.to_string().contains(".podfs-bench-T2"), "{e}");
        assert!(s.path().exists(), "the failed second run removed nothing");
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
