//! Copying a directory tree so that nothing is lost: the data-moving core of `migrate`.
//!
//! [`copy_tree`] copies the *contents* of `src` into an existing directory `dst` (an empty
//! directory or subvolume root that the caller prepared with its class's attributes) and
//! then gives `dst` the root's own metadata. Guarantees:
//!
//! - **Everything is kept**: file content; mode including setuid, setgid and sticky bits;
//!   numeric owner and group; access and modification times to the nanosecond (a
//!   directory's times are set after its contents); every extended attribute, `trusted.*`
//!   (overlay storage's `trusted.overlay.*`), `security.*` (SELinux labels, file
//!   capabilities) and POSIX ACLs (`system.posix_acl_access`/`_default`) included;
//!   hardlinks (names of one source inode stay names of one target inode); symlinks (their
//!   target bytes, owner and times, never followed); holes of sparse files (data is found
//!   with `SEEK_DATA`/`SEEK_HOLE` and holes are never written); fifos, sockets and device
//!   nodes; names that are not UTF-8 or hold newlines or leading dashes.
//! - **The target's attributes win**: `btrfs.*` extended attributes (the compression
//!   property) and inode flags are not copied, so new files inherit NOCOW or compression
//!   from `dst`, which is the point of the copy: data is rewritten into a NOCOW directory.
//! - **Reflinks where they keep the target's attributes**: with [`Reflink::Auto`] a file is
//!   cloned (`FICLONE`, no data written, no space used) when source and target are on the
//!   same btrfs and the new file is not NOCOW; a NOCOW file is always rewritten so its data
//!   really is NOCOW (and the kernel refuses to clone between NOCOW and copy-on-write files
//!   anyway). Data is otherwise copied with `pread`/`pwrite`, never `copy_file_range`,
//!   because on one btrfs the kernel turns that into a clone, and [`CopyStats`] must say
//!   truthfully how many bytes were shared and how many written. A cloned file keeps its
//!   extents as they are (compressed or not); only data written later follows the
//!   target's compression property.
//! - **The source is never changed**: it is only opened read-only, with `O_NOFOLLOW` and
//!   `O_NOATIME`, through directory file descriptors one name at a time, so a symlink
//!   swapped in anywhere below `src` is never followed. A file whose size, mtime or ctime
//!   changes while it is copied, an entry that appears or vanishes in a directory being
//!   copied, is [`CopyError::SourceChanged`]. A mount point below `src` (another
//!   filesystem, or a subvolume mounted there) is an error
//!   ([`CopyError::CrossesFilesystem`]) unless the caller excludes it.
//! - **Nested subvolumes stay subvolumes**: a directory below `src` that is the root of a
//!   btrfs subvolume of the same mount (inode 256 on a device of its own, as the btrfs
//!   storage driver keeps every layer) becomes a new subvolume in `dst`, with the NOCOW
//!   flag and compression property of the directory it is made in (the target's
//!   attributes win here too), filled the same way and made read-only at the end when the
//!   source is read-only.
//! - **Resumable**: on a `dst` that holds a partial copy (a killed run), entries that
//!   already equal the source (type, size, mtime, mode, owner; times are set last, so a
//!   half-written file never matches) are kept, everything else is rewritten, and entries
//!   of `dst` that `src` does not have are removed: `dst` belongs to the copy. Excluded
//!   paths are left alone on both sides. A read-only subvolume of `dst` left by the
//!   killed run is made writable to be completed, and read-only again.
//! - **Durable**: the target filesystem is synced (`syncfs`) before `copy_tree` returns.
//! - **Prompt errors**: a full target is [`CopyError::NoSpace`], cancellation through
//!   [`CopyOptions::cancel`] is [`CopyError::Cancelled`] within one 1 MiB block (a clone
//!   is one call and is not interrupted), every other failure names the path and the
//!   operation.
//!
//! Run it as root: only root can give files other owners, and the kernel lists `trusted.*`
//! attributes to root alone, so for anyone else they would be invisible on both sides and
//! neither the copy nor [`super::verify::verify_tree`] could notice they are missing.
//!
//! Not kept, on purpose or because no copy can: inode flags such as immutable or
//! append-only (the target's NOCOW flag is the one that matters), extents preallocated
//! with `fallocate` but never written (they read as zeros and are copied as holes or
//! zeros), inode numbers, ctimes and birth times. Space for a rewrite is
//! [`Totals::allocated`]: btrfs reports `st_blocks` uncompressed, which is what a NOCOW
//! copy (never compressed) needs.
//!
//! [`super::verify::verify_tree`] checks a finished copy against its source.

use crate::btrfs;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, SeekFrom, Stat, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How far a copy (or verification) has come. `files` counts entries of every type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub files: u64,
    pub bytes: u64,
    pub total_files: u64,
    pub total_bytes: u64,
}

/// Whether data may be shared with the source through reflinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reflink {
    /// Clone files when the kernel allows it and the target file is not NOCOW.
    #[default]
    Auto,
    /// Always write the data anew.
    Never,
}

/// How to copy. Make it with [`CopyOptions::new`], or `CopyOptions { cancel: Some(&flag),
/// ..CopyOptions::new(&progress) }`, so that fields added later do not break callers.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    pub reflink: Reflink,
    /// Called at most about ten times a second, and once at the end.
    pub progress: &'a (dyn Fn(&Progress) + Sync),
    /// Set it to stop the copy; the call then returns [`CopyError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
    /// Paths relative to `src` that are neither copied nor verified, and that are left
    /// alone in `dst` (for example volumes that get subvolumes of their own).
    pub exclude: &'a [PathBuf],
    /// For [`super::verify::verify_tree`] only, when checking data that has been in use
    /// since it was copied: entries of `dst` whose inode changed (ctime) at or after this
    /// instant, in nanoseconds since the epoch, were changed by their owner and are not
    /// compared; in a directory of `dst` changed since then, entries added or removed are
    /// accepted. Everything older must still match.
    pub changed_since: Option<u64>,
}

fn no_progress(_: &Progress) {}

impl<'a> CopyOptions<'a> {
    pub fn new(progress: &'a (dyn Fn(&Progress) + Sync)) -> Self {
        CopyOptions { reflink: Reflink::Auto, progress, cancel: None, exclude: &[], changed_since: None }
    }
}

impl Default for CopyOptions<'_> {
    fn default() -> Self {
        CopyOptions::new(&no_progress)
    }
}

impl fmt::Debug for CopyOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOptions")
            .field("reflink", &self.reflink)
            .field("cancel", &self.cancel.map(|c| c.load(Ordering::Relaxed)))
            .field("exclude", &self.exclude)
            .field("changed_since", &self.changed_since)
            .finish_non_exhaustive()
    }
}

/// What a tree holds, for space checks and progress totals. Hardlinked inodes count once
/// in the byte figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Entries of every type below the root (the root itself not counted).
    pub files: u64,
    pub dirs: u64,
    /// Directories of `dirs` that are nested subvolume roots.
    pub subvolumes: u64,
    /// Apparent size of regular files.
    pub bytes: u64,
    /// Bytes of regular files' data extents (`st_blocks`; btrfs reports them uncompressed):
    /// what a rewrite into a NOCOW directory needs, holes excluded.
    pub allocated: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyStats {
    /// Entries below the root, of every type, that the target now holds.
    pub files: u64,
    /// Data bytes written anew.
    pub bytes_written: u64,
    /// Bytes shared with the source through reflinks.
    pub bytes_reflinked: u64,
    /// Entries found already copied (a resumed copy) and kept.
    pub skipped: u64,
    /// Apparent bytes of the regular files found already copied.
    pub bytes_skipped: u64,
    /// Names made as hardlinks to an inode copied earlier.
    pub hardlinks: u64,
    /// Nested subvolumes the target holds, as the source does.
    pub subvolumes: u64,
    /// Entries of the target that the source does not have, removed.
    pub removed: u64,
}

/// Why a copy stopped. The source is untouched in every case.
#[derive(Debug)]
pub enum CopyError {
    /// A system call failed on `path`.
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    /// The target filesystem is full (or a quota is reached). `needed` is the data (holes
    /// left out, as [`Totals::allocated`]) that was still to be copied, when known.
    NoSpace { path: PathBuf, needed: Option<u64> },
    /// The source changed while it was copied: a file's size, mtime or ctime, or a
    /// directory's entries. Stop what writes to it and copy again.
    SourceChanged { path: PathBuf },
    /// A mount point below the source (another filesystem, or a subvolume mounted there):
    /// not the source's own data, so the caller must unmount or exclude it.
    CrossesFilesystem { path: PathBuf },
    /// Source and target overlap (one lies inside the other).
    Overlap { src: PathBuf, dst: PathBuf },
    /// An entry of a type this module does not know.
    UnknownType { path: PathBuf },
    /// [`CopyOptions::cancel`] was set.
    Cancelled,
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Io { path, op, source } => write!(f, "cannot {op} {}: {source}", path.display()),
            CopyError::NoSpace { path, needed } => {
                write!(f, "no space left on the target filesystem while writing {}", path.display())?;
                match needed {
                    Some(n) => write!(f, " ({n} bytes were still to copy)"),
                    None => Ok(()),
                }
            }
            CopyError::SourceChanged { path } => write!(
                f,
                "{} changed while it was copied; stop whatever writes to it and copy again",
                path.display()
            ),
            CopyError::CrossesFilesystem { path } => write!(
                f,
                "{} is a mount point (another filesystem, or a subvolume mounted there); what is \
                 mounted there is not copied: unmount it first",
                path.display()
            ),
            CopyError::Overlap { src, dst } => {
                write!(
                    f,
                    "{} and {} overlap; a copy cannot lie inside its source or around it",
                    src.display(),
                    dst.display()
                )
            }
            CopyError::UnknownType { path } => {
                write!(f, "{} has a file type this tool cannot copy", path.display())
            }
            CopyError::Cancelled => f.write_str("the copy was cancelled"),
        }
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CopyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An error of a system call on `path`; a full filesystem or quota is [`CopyError::NoSpace`].
pub(super) fn io_err(path: PathBuf, op: &'static str) -> impl FnOnce(Errno) -> CopyError {
    move |errno| match errno {
        Errno::NOSPC | Errno::DQUOT => CopyError::NoSpace { path, needed: None },
        _ => CopyError::Io { path, op, source: errno.into() },
    }
}

/// The same for errors on the source side, where a vanished entry means it changed.
fn src_err(path: PathBuf, op: &'static str) -> impl FnOnce(Errno) -> CopyError {
    move |errno| match errno {
        Errno::NOENT | Errno::LOOP | Errno::NOTDIR => CopyError::SourceChanged { path },
        _ => io_err(path, op)(errno),
    }
}

// ---- small helpers shared with `verify` ----

pub(super) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

// The `Stat` field types differ between architectures.
#[allow(clippy::unnecessary_cast)]
pub(super) fn mtime(st: &Stat) -> (i64, u64) {
    (st.st_mtime as i64, st.st_mtime_nsec as u64)
}

#[allow(clippy::unnecessary_cast)]
fn ctime(st: &Stat) -> (i64, u64) {
    (st.st_ctime as i64, st.st_ctime_nsec as u64)
}

/// When the inode last changed, in nanoseconds since the epoch (0 before it).
pub(super) fn ctime_ns(st: &Stat) -> u64 {
    let (secs, nanos) = ctime(st);
    u64::try_from(secs).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[allow(clippy::unnecessary_cast)]
pub(super) fn inode(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

#[allow(clippy::unnecessary_cast)]
fn timestamps(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec { tv_sec: st.st_atime as i64, tv_nsec: st.st_atime_nsec as _ },
        last_modification: Timespec { tv_sec: st.st_mtime as i64, tv_nsec: st.st_mtime_nsec as _ },
    }
}

/// Permission bits including setuid, setgid and sticky.
pub(super) fn permissions(st: &Stat) -> u32 {
    st.st_mode & 0o7777
}

/// `rel/name`, as bytes relative to the tree's root.
pub(super) fn child(rel: &[u8], name: &CStr) -> Vec<u8> {
    let mut out = rel.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name.to_bytes());
    out
}

pub(super) fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() { root.to_path_buf() } else { root.join(OsStr::from_bytes(rel)) }
}

/// Whether `rel` is one of the excluded paths (given relative to the root, or absolute
/// below it).
pub(super) fn excluded(root: &Path, exclude: &[PathBuf], rel: &[u8]) -> bool {
    let rel = Path::new(OsStr::from_bytes(rel));
    exclude.iter().any(|e| e.strip_prefix(root).unwrap_or(e) == rel)
}

fn stat_changed(before: &Stat, after: &Stat) -> bool {
    before.st_size != after.st_size || mtime(before) != mtime(after) || ctime(before) != ctime(after)
}

/// How a directory stands to the directory it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nesting {
    /// Part of the same subvolume (or filesystem).
    Plain,
    /// The root of a nested btrfs subvolume, on the same mount.
    Subvolume,
    /// Something is mounted on it.
    MountPoint,
}

/// What the directory `st`, named `name` in the open directory `dir` of device `dev`, is:
/// a directory on another device is a nested subvolume when it is inode 256 on btrfs and
/// on the same mount (statx's mount id), else a mount point.
#[allow(clippy::unnecessary_cast)]
pub(super) fn nesting(dir: BorrowedFd<'_>, name: &CStr, st: &Stat, dev: u64) -> Result<Nesting, Errno> {
    if st.st_dev as u64 == dev {
        return Ok(Nesting::Plain);
    }
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    let child = rfs::statx(dir, name, flags, rfs::StatxFlags::MNT_ID)?;
    let parent = rfs::statx(dir, c"", flags | AtFlags::EMPTY_PATH, rfs::StatxFlags::MNT_ID)?;
    let known = (child.stx_mask & parent.stx_mask & rfs::StatxFlags::MNT_ID.bits()) != 0;
    let same_mount = known && child.stx_mnt_id == parent.stx_mnt_id;
    Ok(if same_mount && st.st_ino as u64 == btrfs::SUBVOLUME_ROOT_INO && btrfs::is_btrfs(dir) {
        Nesting::Subvolume
    } else {
        Nesting::MountPoint
    })
}

/// Opens a directory of the source or target, never following a symlink. `O_NOATIME`
/// keeps reads from touching the source; it needs ownership or root, so it is dropped
/// when refused.
pub(super) fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rfs::openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

/// Opens a regular file of the source read-only. `O_NONBLOCK` so a fifo swapped in for
/// the file cannot hang the copy (the caller checks the inode afterwards).
pub(super) fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    match rfs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rfs::openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

pub(super) fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::open(path, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rfs::open(path, flags, Mode::empty()),
        other => other,
    }
}

/// The names in a directory, sorted, without `.` and `..`.
pub(super) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<CString>, Errno> {
    let mut reader = rfs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The names in a directory that may be directories (the type the directory entry gives,
/// or none given), for walks that look only for subvolumes: other entries are not stat'ed.
fn list_subdirs(dir: BorrowedFd<'_>) -> Result<Vec<CString>, Errno> {
    let mut reader = rfs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"."
            && name != c".."
            && matches!(entry.file_type(), FileType::Directory | FileType::Unknown)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A path naming `name` inside the open directory `dir` that needs no path walk of its own:
/// for the xattr calls, which have no `*at` form on this kernel generation. Only the last
/// component is looked up, and the `l*` calls never follow it.
fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut bytes = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    bytes.extend_from_slice(name.to_bytes());
    CString::new(bytes).expect("a file name holds no NUL")
}

/// Extended attributes the copy carries over: all but `btrfs.*`, which are the target's
/// own attributes (the compression property).
pub(super) fn carried(name: &CStr) -> bool {
    !name.to_bytes().starts_with(b"btrfs.")
}

/// Every extended attribute of `name` in `dir` (not following symlinks), but `btrfs.*`,
/// sorted by name.
pub(super) fn xattrs(dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<(CString, Vec<u8>)>, Errno> {
    let path = proc_path(dir, name);
    let names = loop {
        let size = match rfs::llistxattr_query(&path) {
            Ok(n) => n,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut buf = vec![0u8; size];
        match rfs::llistxattr(&path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    };
    let mut out = Vec::new();
    for raw in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let key = CString::new(raw).expect("split at NUL");
        if !carried(&key) {
            continue;
        }
        let value = loop {
            let size = match rfs::lgetxattr_query(&path, &key) {
                Ok(n) => n,
                // Removed between list and get: it is not there.
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; size];
            match rfs::lgetxattr(&path, &key, &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    break Some(buf);
                }
                Err(Errno::RANGE) => continue,
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e),
            }
        };
        if let Some(value) = value {
            out.push((key, value));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes the extended attributes of `name` in `dir` exactly `want` (`btrfs.*` aside).
fn set_xattrs(
    dir: BorrowedFd<'_>,
    name: &CStr,
    want: &[(CString, Vec<u8>)],
) -> Result<(), (Errno, &'static str)> {
    let path = proc_path(dir, name);
    let have = xattrs(dir, name).map_err(|e| (e, "list the extended attributes of"))?;
    for (key, _) in &have {
        if !want.iter().any(|(k, _)| k == key) {
            match rfs::lremovexattr(&path, key) {
                Ok(()) | Err(Errno::NODATA) => {}
                Err(e) => return Err((e, "remove an extended attribute of")),
            }
        }
    }
    for (key, value) in want {
        if !have.iter().any(|(k, v)| k == key && v == value) {
            rfs::lsetxattr(&path, key, value, rfs::XattrFlags::empty())
                .map_err(|e| (e, "set an extended attribute on"))?;
        }
    }
    Ok(())
}

/// Removes `name` in `dir` and, for a directory, everything in it. A nested subvolume is
/// made writable and deleted with the subvolume delete ioctl once the subvolumes inside it
/// are; a mount point is never entered (EXDEV). Used only inside trees this tool made:
/// the copy's target, a staging copy, an old copy it kept.
pub(super) fn remove_tree(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if file_type(&st) != FileType::Directory {
        return rfs::unlinkat(dir, name, AtFlags::empty());
    }
    let dev = inode(&rfs::fstat(dir)?).0;
    let fd = open_dir_at(dir, name)?;
    match nesting(dir, name, &st, dev)? {
        Nesting::MountPoint => Err(Errno::XDEV),
        Nesting::Subvolume => {
            if btrfs::is_read_only(fd.as_fd())? {
                btrfs::set_writable(fd.as_fd()).map_err(|e| e.errno)?;
            }
            remove_subvolumes_in(fd.as_fd(), inode(&st).0)?;
            drop(fd);
            // The ioctl takes names as text; btrfs accepts any bytes, as rmdir does.
            match name.to_str() {
                Ok(text) => btrfs::delete_subvolume(dir, text).map_err(|e| e.errno),
                Err(_) => {
                    let fd = open_dir_at(dir, name)?;
                    for child in list_dir(fd.as_fd())? {
                        remove_tree(fd.as_fd(), &child)?;
                    }
                    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
                }
            }
        }
        Nesting::Plain => {
            for child in list_dir(fd.as_fd())? {
                remove_tree(fd.as_fd(), &child)?;
            }
            rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        }
    }
}

/// Deletes the subvolumes nested anywhere in `dir` (of device `dev`), leaving the rest:
/// the delete ioctl refuses a subvolume that holds others.
fn remove_subvolumes_in(dir: BorrowedFd<'_>, dev: u64) -> Result<(), Errno> {
    for child in list_subdirs(dir)? {
        let st = rfs::statat(dir, &child, AtFlags::SYMLINK_NOFOLLOW)?;
        if file_type(&st) != FileType::Directory {
            continue;
        }
        match nesting(dir, &child, &st, dev)? {
            Nesting::Plain => remove_subvolumes_in(open_dir_at(dir, &child)?.as_fd(), dev)?,
            Nesting::Subvolume => remove_tree(dir, &child)?,
            Nesting::MountPoint => return Err(Errno::XDEV),
        }
    }
    Ok(())
}

/// The nested subvolumes below the directory `dir` (of device `dev`), each with its path
/// relative to it; mount points are not entered.
pub(super) fn subvolumes_in(dir: BorrowedFd<'_>, rel: &[u8], dev: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut found = Vec::new();
    for child in list_subdirs(dir)? {
        let st = rfs::statat(dir, &child, AtFlags::SYMLINK_NOFOLLOW)?;
        if file_type(&st) != FileType::Directory {
            continue;
        }
        let crel = self::child(rel, &child);
        let nested = nesting(dir, &child, &st, dev)?;
        if nested == Nesting::MountPoint {
            continue;
        }
        if nested == Nesting::Subvolume {
            found.push(crel.clone());
        }
        let fd = open_dir_at(dir, &child)?;
        found.extend(subvolumes_in(fd.as_fd(), &crel, inode(&st).0)?);
    }
    Ok(found)
}

/// Whether a target entry left by an earlier run already equals the source entry.
fn same_entry(src: &Stat, dst: &Stat) -> bool {
    src.st_mode == dst.st_mode
        && src.st_uid == dst.st_uid
        && src.st_gid == dst.st_gid
        && src.st_size == dst.st_size
        && mtime(src) == mtime(dst)
        && (!matches!(file_type(src), FileType::CharacterDevice | FileType::BlockDevice)
            || src.st_rdev == dst.st_rdev)
}

/// One directory of the source and its counterpart in the target, excluded paths left
/// out: the source's names (each with its path relative to the root) and the target's
/// names the source lacks.
pub(super) struct Pair {
    pub(super) names: Vec<(CString, Vec<u8>)>,
    pub(super) extra: Vec<(CString, Vec<u8>)>,
    /// Names of `names` the target lacks.
    pub(super) missing: HashSet<CString>,
}

impl Pair {
    pub(super) fn list(
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &[u8],
        roots: (&Path, &Path),
        exclude: &[PathBuf],
    ) -> Result<Pair, CopyError> {
        let with_paths = |names: Vec<CString>| -> Vec<(CString, Vec<u8>)> {
            names
                .into_iter()
                .map(|n| {
                    let crel = child(rel, &n);
                    (n, crel)
                })
                .filter(|(_, crel)| !excluded(roots.0, exclude, crel))
                .collect()
        };
        let names = with_paths(list_dir(src).map_err(src_err(join(roots.0, rel), "read the directory"))?);
        let have = with_paths(list_dir(dst).map_err(io_err(join(roots.1, rel), "read the directory"))?);
        let wanted: HashSet<&CStr> = names.iter().map(|(n, _)| n.as_c_str()).collect();
        let present: HashSet<&CStr> = have.iter().map(|(n, _)| n.as_c_str()).collect();
        let missing =
            names.iter().filter(|(n, _)| !present.contains(n.as_c_str())).map(|(n, _)| n.clone()).collect();
        let extra = have.iter().filter(|(n, _)| !wanted.contains(n.as_c_str())).cloned().collect();
        Ok(Pair { names, extra, missing })
    }
}

// ---- measure ----

/// Counts what `src` holds: entries, directories, apparent and allocated bytes.
pub fn measure(src: &Path) -> Result<Totals, CopyError> {
    measure_excluding(src, &[])
}

/// [`measure`] leaving out `exclude` (paths relative to `src`).
pub fn measure_excluding(src: &Path, exclude: &[PathBuf]) -> Result<Totals, CopyError> {
    let root = open_root(src).map_err(io_err(src.to_path_buf(), "open"))?;
    measure_open(root.as_fd(), src, exclude, None, None)
}

/// Measures the open directory `root` (at `path`), stopping at `cancel`; with `dst`, a
/// directory that is that inode is [`CopyError::Overlap`].
pub(super) fn measure_open(
    root: BorrowedFd<'_>,
    path: &Path,
    exclude: &[PathBuf],
    dst: Option<(u64, u64)>,
    cancel: Option<&AtomicBool>,
) -> Result<Totals, CopyError> {
    let st = rfs::fstat(root).map_err(io_err(path.to_path_buf(), "stat"))?;
    let mut walk =
        Measure { root: path, exclude, dst, cancel, seen: HashSet::new(), totals: Totals::default() };
    walk.dir(root, &[], inode(&st).0)?;
    Ok(walk.totals)
}

struct Measure<'a> {
    root: &'a Path,
    exclude: &'a [PathBuf],
    /// The copy's target, which must not lie inside the source.
    dst: Option<(u64, u64)>,
    cancel: Option<&'a AtomicBool>,
    seen: HashSet<(u64, u64)>,
    totals: Totals,
}

impl Measure<'_> {
    #[allow(clippy::unnecessary_cast)]
    fn dir(&mut self, dir: BorrowedFd<'_>, rel: &[u8], dev: u64) -> Result<(), CopyError> {
        let names = list_dir(dir).map_err(src_err(join(self.root, rel), "read the directory"))?;
        for name in names {
            if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(CopyError::Cancelled);
            }
            let rel = child(rel, &name);
            if excluded(self.root, self.exclude, &rel) {
                continue;
            }
            let path = || join(self.root, &rel);
            let st = rfs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(src_err(path(), "stat"))?;
            self.totals.files += 1;
            match file_type(&st) {
                FileType::Directory => {
                    match nesting(dir, &name, &st, dev).map_err(src_err(path(), "stat"))? {
                        Nesting::MountPoint => return Err(CopyError::CrossesFilesystem { path: path() }),
                        Nesting::Subvolume => self.totals.subvolumes += 1,
                        Nesting::Plain => {}
                    }
                    if Some(inode(&st)) == self.dst {
                        return Err(CopyError::Overlap { src: self.root.to_path_buf(), dst: path() });
                    }
                    self.totals.dirs += 1;
                    let fd = open_dir_at(dir, &name).map_err(src_err(path(), "open"))?;
                    self.dir(fd.as_fd(), &rel, st.st_dev as u64)?;
                }
                FileType::RegularFile if st.st_nlink <= 1 || self.seen.insert(inode(&st)) => {
                    self.totals.bytes += st.st_size as u64;
                    self.totals.allocated += st.st_blocks as u64 * 512;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

// ---- copy ----

/// Copies the contents of `src` into the existing directory `dst`, then `src`'s own
/// metadata onto `dst` (see the module documentation for what is guaranteed).
///
/// `dst` belongs to the copy: whatever it holds that `src` does not (excluded paths aside)
/// is deleted, so pass only a target made for this copy, or one an earlier `copy_tree` of
/// the same source left behind.
pub fn copy_tree(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<CopyStats, CopyError> {
    let src_root = open_root(src).map_err(io_err(src.to_path_buf(), "open"))?;
    let dst_root = open_root(dst).map_err(io_err(dst.to_path_buf(), "open"))?;
    let src_st = rfs::fstat(&src_root).map_err(io_err(src.to_path_buf(), "stat"))?;
    let dst_st = rfs::fstat(&dst_root).map_err(io_err(dst.to_path_buf(), "stat"))?;
    let overlap = || CopyError::Overlap { src: src.to_path_buf(), dst: dst.to_path_buf() };
    if is_inside(src_root.as_fd(), inode(&dst_st)).map_err(io_err(src.to_path_buf(), "walk up from"))? {
        return Err(overlap());
    }
    let totals = measure_open(src_root.as_fd(), src, opts.exclude, Some(inode(&dst_st)), opts.cancel)?;

    let mut copy = Copy {
        opts,
        src,
        dst,
        dst_root: dst_root.as_fd(),
        track: Tracker::new(opts, &totals),
        allocated_done: 0,
        stats: CopyStats::default(),
        links: HashMap::new(),
        buf: vec![0; BLOCK],
    };
    let result = copy.run(src_root.as_fd(), &src_st);
    copy.track.finish();
    match result {
        Ok(()) => {
            rfs::syncfs(&dst_root).map_err(io_err(dst.to_path_buf(), "sync"))?;
            Ok(copy.stats)
        }
        Err(CopyError::NoSpace { path, .. }) => Err(CopyError::NoSpace {
            path,
            needed: Some(totals.allocated.saturating_sub(copy.allocated_done)),
        }),
        Err(e) => Err(e),
    }
}

/// Whether the directory `dir` is the inode `target` or lies below it.
fn is_inside(dir: BorrowedFd<'_>, target: (u64, u64)) -> Result<bool, Errno> {
    let mut current =
        rfs::openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    loop {
        let st = rfs::fstat(&current)?;
        if inode(&st) == target {
            return Ok(true);
        }
        let parent = rfs::openat(
            &current,
            c"..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if inode(&rfs::fstat(&parent)?) == inode(&st) {
            return Ok(false);
        }
        current = parent;
    }
}

/// Data is copied (and compared) and cancellation checked in blocks of this size.
pub(super) const BLOCK: usize = 1 << 20;
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// Progress of a walk over a tree, reported at most every [`REPORT_EVERY`], and the
/// cancellation flag.
pub(super) struct Tracker<'a> {
    opts: &'a CopyOptions<'a>,
    pub(super) progress: Progress,
    last_report: Option<Instant>,
}

impl<'a> Tracker<'a> {
    pub(super) fn new(opts: &'a CopyOptions<'a>, totals: &Totals) -> Self {
        let progress =
            Progress { total_files: totals.files, total_bytes: totals.bytes, ..Progress::default() };
        Tracker { opts, progress, last_report: None }
    }

    pub(super) fn check_cancel(&self) -> Result<(), CopyError> {
        match self.opts.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(CopyError::Cancelled),
            _ => Ok(()),
        }
    }

    /// Reports progress unless it was reported a moment ago.
    pub(super) fn tick(&mut self) {
        if self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            self.last_report = Some(Instant::now());
            (self.opts.progress)(&self.progress);
        }
    }

    /// Reports the final figures.
    pub(super) fn finish(&self) {
        (self.opts.progress)(&self.progress);
    }
}

struct Copy<'a> {
    opts: &'a CopyOptions<'a>,
    src: &'a Path,
    dst: &'a Path,
    dst_root: BorrowedFd<'a>,
    track: Tracker<'a>,
    /// [`Totals::allocated`] of the regular files done.
    allocated_done: u64,
    stats: CopyStats,
    /// Source inodes with more than one name → the first target name (relative to the
    /// target root) and its inode.
    links: HashMap<(u64, u64), (CString, u64)>,
    buf: Vec<u8>,
}

impl Copy<'_> {
    fn run(&mut self, src_root: BorrowedFd<'_>, src_st: &Stat) -> Result<(), CopyError> {
        self.dir(src_root, self.dst_root, &[], inode(src_st).0)?;
        let xattrs = xattrs(src_root, c".")
            .map_err(src_err(self.src.to_path_buf(), "read the extended attributes of"))?;
        self.apply_metadata(self.dst_root, c".", src_st, &xattrs, &[])
    }

    fn src_path(&self, rel: &[u8]) -> PathBuf {
        join(self.src, rel)
    }

    fn dst_path(&self, rel: &[u8]) -> PathBuf {
        join(self.dst, rel)
    }

    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &[u8],
        dev: u64,
    ) -> Result<(), CopyError> {
        let before = rfs::fstat(src).map_err(src_err(self.src_path(rel), "stat"))?;
        let pair = Pair::list(src, dst, rel, (self.src, self.dst), self.opts.exclude)?;
        for (name, crel) in &pair.extra {
            remove_tree(dst, name).map_err(io_err(self.dst_path(crel), "remove"))?;
            self.stats.removed += 1;
        }
        for (name, crel) in &pair.names {
            self.track.check_cancel()?;
            self.entry(src, dst, name, crel, dev)?;
            self.stats.files += 1;
            self.track.progress.files += 1;
            self.track.tick();
        }
        let after = rfs::fstat(src).map_err(src_err(self.src_path(rel), "stat"))?;
        if mtime(&before) != mtime(&after) || ctime(&before) != ctime(&after) {
            return Err(CopyError::SourceChanged { path: self.src_path(rel) });
        }
        Ok(())
    }

    #[allow(clippy::unnecessary_cast)]
    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &[u8],
        dev: u64,
    ) -> Result<(), CopyError> {
        let st =
            rfs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(src_err(self.src_path(rel), "stat"))?;
        let existing = match rfs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(d) => Some(d),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(io_err(self.dst_path(rel), "stat")(e)),
        };
        let kind = file_type(&st);
        if kind == FileType::Directory {
            return self.directory(src, dst, name, rel, dev, &st, existing.as_ref());
        }

        // A further name of an inode copied before becomes a hardlink to its copy.
        if st.st_nlink > 1
            && let Some((first, first_ino)) = self.links.get(&inode(&st))
        {
            if existing.as_ref().is_none_or(|d| d.st_ino as u64 != *first_ino) {
                if existing.is_some() {
                    remove_tree(dst, name).map_err(io_err(self.dst_path(rel), "remove"))?;
                }
                rfs::linkat(self.dst_root, first.as_c_str(), dst, name, AtFlags::empty())
                    .map_err(io_err(self.dst_path(rel), "make a hardlink"))?;
            }
            self.stats.hardlinks += 1;
            return Ok(());
        }

        let done = existing.as_ref().is_some_and(|d| same_entry(&st, d))
            && (kind != FileType::Symlink || self.same_target(src, dst, name, rel)?);
        if done {
            self.stats.skipped += 1;
            if kind == FileType::RegularFile {
                self.stats.bytes_skipped += st.st_size as u64;
                self.allocated_done += st.st_blocks as u64 * 512;
                self.track.progress.bytes += st.st_size as u64;
            }
        } else {
            if existing.is_some() {
                remove_tree(dst, name).map_err(io_err(self.dst_path(rel), "remove"))?;
            }
            match kind {
                FileType::RegularFile => self.file(src, dst, name, &st, rel)?,
                FileType::Symlink => {
                    let target = rfs::readlinkat(src, name, Vec::new())
                        .map_err(src_err(self.src_path(rel), "read the symlink"))?;
                    rfs::symlinkat(target.as_c_str(), dst, name)
                        .map_err(io_err(self.dst_path(rel), "create the symlink"))?;
                }
                FileType::Fifo | FileType::Socket | FileType::CharacterDevice | FileType::BlockDevice => {
                    rfs::mknodat(dst, name, kind, Mode::from_raw_mode(0o600), st.st_rdev as _)
                        .map_err(io_err(self.dst_path(rel), "create the special file"))?;
                }
                _ => return Err(CopyError::UnknownType { path: self.src_path(rel) }),
            }
            let xattrs =
                xattrs(src, name).map_err(src_err(self.src_path(rel), "read the extended attributes of"))?;
            self.apply_metadata(dst, name, &st, &xattrs, rel)?;
        }
        if st.st_nlink > 1 {
            let copied = rfs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err(self.dst_path(rel), "stat"))?;
            let rel = CString::new(rel).expect("a path holds no NUL");
            self.links.insert(inode(&st), (rel, copied.st_ino as u64));
        }
        Ok(())
    }

    /// Copies a directory, or a nested subvolume into a new subvolume, with its contents.
    #[allow(clippy::too_many_arguments, clippy::unnecessary_cast)]
    fn directory(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &[u8],
        dev: u64,
        st: &Stat,
        existing: Option<&Stat>,
    ) -> Result<(), CopyError> {
        let subvolume = match nesting(src, name, st, dev).map_err(src_err(self.src_path(rel), "stat"))? {
            Nesting::MountPoint => return Err(CopyError::CrossesFilesystem { path: self.src_path(rel) }),
            Nesting::Subvolume => true,
            Nesting::Plain => false,
        };
        let dst_dev = inode(&rfs::fstat(dst).map_err(io_err(self.dst_path(rel), "stat"))?).0;
        let fits = match existing {
            Some(d) if file_type(d) == FileType::Directory => {
                nesting(dst, name, d, dst_dev).map_err(io_err(self.dst_path(rel), "stat"))?
                    == if subvolume { Nesting::Subvolume } else { Nesting::Plain }
            }
            _ => false,
        };
        if !fits {
            if existing.is_some() {
                remove_tree(dst, name).map_err(io_err(self.dst_path(rel), "remove"))?;
            }
            if subvolume {
                self.make_subvolume(dst, name, rel)?;
            } else {
                rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                    .map_err(io_err(self.dst_path(rel), "create the directory"))?;
            }
        }
        let sfd = open_dir_at(src, name).map_err(src_err(self.src_path(rel), "open"))?;
        let sst = rfs::fstat(&sfd).map_err(src_err(self.src_path(rel), "stat"))?;
        if inode(&sst) != inode(st) {
            return Err(CopyError::SourceChanged { path: self.src_path(rel) });
        }
        let dfd = open_dir_at(dst, name).map_err(io_err(self.dst_path(rel), "open"))?;
        let read_only = subvolume
            && btrfs::is_read_only(sfd.as_fd()).map_err(src_err(self.src_path(rel), "read the flags of"))?;
        if subvolume
            && btrfs::is_read_only(dfd.as_fd()).map_err(io_err(self.dst_path(rel), "read the flags of"))?
        {
            // Finished by a killed run: completed again, then read-only again.
            btrfs::set_writable(dfd.as_fd())
                .map_err(|e| io_err(self.dst_path(rel), "make writable")(e.errno))?;
        }
        self.dir(sfd.as_fd(), dfd.as_fd(), rel, st.st_dev as u64)?;
        let xattrs =
            xattrs(src, name).map_err(src_err(self.src_path(rel), "read the extended attributes of"))?;
        self.apply_metadata(dst, name, st, &xattrs, rel)?;
        if subvolume {
            self.stats.subvolumes += 1;
        }
        if read_only {
            btrfs::set_read_only(dfd.as_fd())
                .map_err(|e| io_err(self.dst_path(rel), "make read-only")(e.errno))?;
        }
        Ok(())
    }

    /// A new subvolume `name` in `dst`, with the NOCOW flag and compression property of
    /// `dst` (a new subvolume inherits neither for certain).
    fn make_subvolume(&self, dst: BorrowedFd<'_>, name: &CStr, rel: &[u8]) -> Result<(), CopyError> {
        let path = || self.dst_path(rel);
        let text = name.to_str().map_err(|_| CopyError::Io {
            path: path(),
            op: "create the subvolume",
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the name is not UTF-8"),
        })?;
        btrfs::create_subvolume(dst, text).map_err(|e| io_err(path(), "create the subvolume")(e.errno))?;
        let fd = open_dir_at(dst, name).map_err(io_err(path(), "open"))?;
        if btrfs::nocow(dst).map_err(io_err(path(), "read the flags of"))? {
            btrfs::set_nocow(fd.as_fd()).map_err(|e| io_err(path(), "set NOCOW on")(e.errno))?;
        }
        if let Some(c) = btrfs::compression(dst).map_err(io_err(path(), "read the compression of"))? {
            btrfs::set_compression(fd.as_fd(), &c)
                .map_err(|e| io_err(path(), "set the compression property of")(e.errno))?;
        }
        Ok(())
    }

    fn same_target(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &[u8],
    ) -> Result<bool, CopyError> {
        let a = rfs::readlinkat(src, name, Vec::new())
            .map_err(src_err(self.src_path(rel), "read the symlink"))?;
        let b =
            rfs::readlinkat(dst, name, Vec::new()).map_err(io_err(self.dst_path(rel), "read the symlink"))?;
        Ok(a == b)
    }

    /// Copies a regular file's data into a new file `name` in `dst`.
    #[allow(clippy::unnecessary_cast)]
    fn file(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        rel: &[u8],
    ) -> Result<(), CopyError> {
        let from = open_file_at(src, name).map_err(src_err(self.src_path(rel), "open"))?;
        let before = rfs::fstat(&from).map_err(src_err(self.src_path(rel), "stat"))?;
        if inode(&before) != inode(st) || stat_changed(st, &before) {
            return Err(CopyError::SourceChanged { path: self.src_path(rel) });
        }
        let to = rfs::openat(
            dst,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err(self.dst_path(rel), "create"))?;
        let size = before.st_size as u64;
        let start = self.track.progress.bytes;
        let cloned = self.opts.reflink == Reflink::Auto
            && size > 0
            && !btrfs::nocow(to.as_fd()).unwrap_or(false)
            && self.clone_file(from.as_fd(), to.as_fd(), rel)?;
        if cloned {
            self.stats.bytes_reflinked += size;
        } else {
            self.copy_data(from.as_fd(), to.as_fd(), size, rel)?;
        }
        let after = rfs::fstat(&from).map_err(src_err(self.src_path(rel), "stat"))?;
        if stat_changed(&before, &after) {
            return Err(CopyError::SourceChanged { path: self.src_path(rel) });
        }
        self.track.progress.bytes = start + size;
        self.allocated_done += st.st_blocks as u64 * 512;
        Ok(())
    }

    /// Clones the whole file; false when the kernel cannot (other filesystem, NOCOW source).
    fn clone_file(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        rel: &[u8],
    ) -> Result<bool, CopyError> {
        match rfs::ioctl_ficlone(to, from) {
            Ok(()) => Ok(true),
            Err(e @ (Errno::NOSPC | Errno::DQUOT)) => Err(io_err(self.dst_path(rel), "clone")(e)),
            Err(_) => {
                // Nothing may remain of a failed clone before the data is written.
                rfs::ftruncate(to, 0).map_err(io_err(self.dst_path(rel), "truncate"))?;
                Ok(false)
            }
        }
    }

    /// Writes the data regions of `from` into `to` at the same offsets; holes stay holes.
    fn copy_data(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        size: u64,
        rel: &[u8],
    ) -> Result<(), CopyError> {
        let mut offset = 0;
        while offset < size {
            let data = match rfs::seek(from, SeekFrom::Data(offset)) {
                Ok(d) => d,
                Err(Errno::NXIO) => break,
                Err(e) => return Err(src_err(self.src_path(rel), "find data in")(e)),
            };
            if data >= size {
                break;
            }
            let hole = rfs::seek(from, SeekFrom::Hole(data))
                .map_err(src_err(self.src_path(rel), "find holes in"))?
                .min(size);
            let mut pos = data;
            while pos < hole {
                self.track.check_cancel()?;
                let want = (hole - pos).min(BLOCK as u64) as usize;
                let n = rustix::io::pread(from, &mut self.buf[..want], pos)
                    .map_err(src_err(self.src_path(rel), "read"))?;
                if n == 0 {
                    // The file shrank under us.
                    return Err(CopyError::SourceChanged { path: self.src_path(rel) });
                }
                let mut written = 0;
                while written < n {
                    written += rustix::io::pwrite(to, &self.buf[written..n], pos + written as u64)
                        .map_err(io_err(self.dst_path(rel), "write"))?;
                }
                pos += n as u64;
                self.stats.bytes_written += n as u64;
                self.track.progress.bytes += n as u64;
                self.track.tick();
            }
            offset = hole;
        }
        // A trailing hole (or a file that is all hole) gets its size without data.
        rfs::ftruncate(to, size).map_err(io_err(self.dst_path(rel), "set the size of"))
    }

    /// Owner, extended attributes, mode, then times: chown clears setuid bits and file
    /// capabilities, and every other step changes times.
    fn apply_metadata(
        &self,
        dst: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        xattrs: &[(CString, Vec<u8>)],
        rel: &[u8],
    ) -> Result<(), CopyError> {
        let path = || self.dst_path(rel);
        rfs::chownat(
            dst,
            name,
            Some(rfs::Uid::from_raw(st.st_uid)),
            Some(rfs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io_err(path(), "set the owner of"))?;
        set_xattrs(dst, name, xattrs).map_err(|(e, op)| io_err(path(), op)(e))?;
        if file_type(st) != FileType::Symlink {
            rfs::chmodat(dst, name, Mode::from_raw_mode(permissions(st)), AtFlags::empty())
                .map_err(io_err(path(), "set the mode of"))?;
        }
        rfs::utimensat(dst, name, &timestamps(st), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err(path(), "set the times of"))
    }
}

impl From<CopyError> for crate::error::Error {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Io { path, op, source } => crate::error::Error::io(path, op, source),
            other => crate::error::Error::Environment(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_bytes_joined_below_the_root() {
        assert_eq!(child(b"", c"a"), b"a");
        assert_eq!(child(b"a", c"b\n\xff"), b"a/b\n\xff");
        assert_eq!(join(Path::new("/r"), b""), PathBuf::from("/r"));
        assert_eq!(join(Path::new("/r"), b"a/-b").as_os_str().as_bytes(), b"/r/a/-b");
    }

    #[test]
    fn exclusions_are_relative_or_absolute_below_the_root() {
        let root = Path::new("/g");
        let ex = [PathBuf::from("volumes/db"), PathBuf::from("/g/volumes/media/")];
        assert!(excluded(root, &ex, b"volumes/db"));
        assert!(excluded(root, &ex, b"volumes/media"));
        assert!(!excluded(root, &ex, b"volumes"));
        assert!(!excluded(root, &ex, b"volumes/db2"));
    }

    #[test]
    fn figures_serialize_for_json_output() {
        let stats = CopyStats { bytes_reflinked: 5, ..CopyStats::default() };
        let json = serde_json::to_value(stats).unwrap();
        assert_eq!(json["bytes_reflinked"], 5);
        assert_eq!(serde_json::to_value(Reflink::Never).unwrap(), "never");
        assert_eq!(serde_json::from_str::<Reflink>("\"auto\"").unwrap(), Reflink::Auto);
    }

    #[test]
    fn btrfs_attributes_are_the_targets_own() {
        assert!(!carried(c"btrfs.compression"));
        assert!(carried(c"trusted.overlay.opaque"));
        assert!(carried(c"security.selinux"));
        assert!(carried(c"system.posix_acl_access"));
    }

    #[test]
    fn errors_name_the_path_and_no_space_is_its_own_kind() {
        let e = io_err(PathBuf::from("/t/x"), "write")(Errno::NOSPC);
        assert!(matches!(e, CopyError::NoSpace { .. }), "{e:?}");
        let e = io_err(PathBuf::from("/t/x"), "write")(Errno::IO);
        assert_eq!(e.to_string(), format!("cannot write /t/x: {}", std::io::Error::from(Errno::IO)));
        let e = src_err(PathBuf::from("/s/x"), "open")(Errno::LOOP);
        assert!(matches!(e, CopyError::SourceChanged { .. }), "{e:?}");
    }
}
