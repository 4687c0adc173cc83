//! Checking a copy against its source before anything is swapped.
//!
//! [`verify_tree`] walks both trees as [`super::copy::copy_tree`] does (directory file
//! descriptors, never following symlinks) and compares every entry: its type, permission
//! bits, numeric owner and group, mtime, size, content, symlink target, device number,
//! extended attributes (all but `btrfs.*`, the target's own attributes), which names
//! share an inode, and which directories are nested subvolumes (read-only or not): a
//! subvolume that became a plain directory, or the reverse, is a mismatch. Content is compared byte for byte, reading both files side by side: the
//! source is at hand, so a checksum would only add a chance of collision and a dependency;
//! regions that are holes in both files are skipped without reading. The first difference
//! stops the walk with a [`Mismatch`] naming the path and what differs. Sparse layout need
//! not match; [`VerifyReport`] says where the copy allocates more than the source.
//! Access times are not compared: reading the source may change them. With
//! [`CopyOptions::changed_since`] the same walk checks data that has been in use since it
//! was copied: what its owner changed after that instant is left out, and so are
//! subvolumes' read-only flags (migrate makes those of the old copy read-only).

use super::copy::{
    BLOCK, CopyError, CopyOptions, Nesting, Pair, Totals, Tracker, ctime_ns, file_type, inode, io_err, join,
    mtime, nesting, open_dir_at, open_file_at, open_root, permissions, xattrs,
};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self as rfs, AtFlags, FileType, SeekFrom, Stat};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};

/// What differs between a source entry and its copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The copy lacks the entry.
    Missing,
    /// The copy has an entry the source does not.
    Extra,
    Type {
        src: String,
        dst: String,
    },
    Mode {
        src: u32,
        dst: u32,
    },
    Owner {
        src: (u32, u32),
        dst: (u32, u32),
    },
    Mtime {
        src: (i64, u64),
        dst: (i64, u64),
    },
    Size {
        src: u64,
        dst: u64,
    },
    /// The first byte offset at which the contents differ.
    Content {
        offset: u64,
    },
    SymlinkTarget,
    Device {
        src: u64,
        dst: u64,
    },
    /// An extended attribute (named lossily) is missing, extra or has another value.
    Xattr {
        name: String,
        what: &'static str,
    },
    /// Names that share one inode in the source do not share one in the copy, or the
    /// other way round.
    Hardlink,
    /// A directory is a subvolume on one side and not on the other, or read-only on one
    /// side only: `plain directory`, `subvolume` or `read-only subvolume`.
    Subvolume {
        src: String,
        dst: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing => f.write_str("missing from the copy"),
            Difference::Extra => f.write_str("only in the copy"),
            Difference::Type { src, dst } => {
                write!(f, "type differs: {src} in the source, {dst} in the copy")
            }
            Difference::Mode { src, dst } => {
                write!(f, "mode differs: {src:04o} in the source, {dst:04o} in the copy")
            }
            Difference::Owner { src, dst } => {
                write!(f, "owner differs: {}:{} in the source, {}:{} in the copy", src.0, src.1, dst.0, dst.1)
            }
            Difference::Mtime { src, dst } => write!(
                f,
                "mtime differs: {}.{:09} in the source, {}.{:09} in the copy",
                src.0, src.1, dst.0, dst.1
            ),
            Difference::Size { src, dst } => {
                write!(f, "size differs: {src} bytes in the source, {dst} in the copy")
            }
            Difference::Content { offset } => write!(f, "content differs from byte {offset} on"),
            Difference::SymlinkTarget => f.write_str("symlink target differs"),
            Difference::Device { src, dst } => {
                write!(f, "device number differs: {src:#x} in the source, {dst:#x} in the copy")
            }
            Difference::Xattr { name, what } => write!(f, "extended attribute {name} {what}"),
            Difference::Hardlink => {
                f.write_str("hardlinks differ: the names sharing its inode are not the same")
            }
            Difference::Subvolume { src, dst } => {
                write!(f, "it is a {src} in the source, a {dst} in the copy")
            }
        }
    }
}

/// A difference, with the entry's path in the source and in the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub what: Difference,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the copy {} of {}: {}", self.dst.display(), self.src.display(), self.what)
    }
}

/// Why a verification failed.
#[derive(Debug)]
pub enum VerifyError {
    /// The copy differs from the source.
    Mismatch(Mismatch),
    /// Reading failed, or the check was cancelled.
    Copy(CopyError),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Mismatch(m) => m.fmt(f),
            VerifyError::Copy(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<CopyError> for VerifyError {
    fn from(e: CopyError) -> Self {
        VerifyError::Copy(e)
    }
}

impl From<Mismatch> for VerifyError {
    fn from(m: Mismatch) -> Self {
        VerifyError::Mismatch(m)
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries compared below the root.
    pub files: u64,
    /// Content bytes compared (data regions; holes of both files are skipped).
    pub bytes_compared: u64,
    /// Allocated bytes (`st_blocks`) of the regular files, hardlinks counted once.
    pub src_allocated: u64,
    pub dst_allocated: u64,
    /// Files the copy allocates more of than the source (holes filled), the first
    /// [`MAX_LISTED`] of them.
    pub less_sparse: Vec<PathBuf>,
    pub less_sparse_count: u64,
}

/// At most this many paths are listed in [`VerifyReport::less_sparse`].
pub const MAX_LISTED: usize = 20;

/// Compares the tree `dst` with `src` (see the module documentation). `opts.reflink` is
/// not used; `opts.exclude` leaves the same paths out as in the copy. A mount point in
/// the source where the walk goes is refused, as the copy refuses it. The trees are walked
/// once: `opts.progress` reports what was compared, with no totals (they stay 0).
pub fn verify_tree(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<VerifyReport, VerifyError> {
    let src_root = open_root(src).map_err(io_err(src.to_path_buf(), "open"))?;
    let dst_root = open_root(dst).map_err(io_err(dst.to_path_buf(), "open"))?;
    let mut walk = Verify {
        opts,
        src,
        dst,
        track: Tracker::new(opts, &Totals::default()),
        report: VerifyReport::default(),
        src_to_dst: HashMap::new(),
        dst_to_src: HashMap::new(),
        bufs: (vec![0; BLOCK], vec![0; BLOCK]),
    };
    let result = walk.entry(src_root.as_fd(), dst_root.as_fd(), c".", &[]);
    walk.track.finish();
    result.map(|()| walk.report)
}

struct Verify<'a> {
    opts: &'a CopyOptions<'a>,
    src: &'a Path,
    dst: &'a Path,
    track: Tracker<'a>,
    report: VerifyReport,
    /// Inodes with more than one name, matched both ways.
    src_to_dst: HashMap<(u64, u64), (u64, u64)>,
    dst_to_src: HashMap<(u64, u64), (u64, u64)>,
    bufs: (Vec<u8>, Vec<u8>),
}

fn type_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown",
    }
}

/// What the directory `st` (named `name` in `parent`, opened as `dir`) is: `plain
/// directory`, `subvolume` or `read-only subvolume`. A mount point in the source was
/// refused before ([`Verify::refuse_mount_point`]); in the copy it is no subvolume.
#[allow(clippy::unnecessary_cast)]
fn subvolume_kind(
    parent: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &CStr,
    st: &Stat,
) -> Result<&'static str, Errno> {
    let dev = inode(&rfs::fstat(parent)?).0;
    if st.st_dev as u64 == dev || nesting(parent, name, st, dev)? != Nesting::Subvolume {
        return Ok("plain directory");
    }
    Ok(if crate::btrfs::is_read_only(dir)? { "read-only subvolume" } else { "subvolume" })
}

/// Where the data/hole state at `offset` ends: (in data, end of that state).
fn region(fd: BorrowedFd<'_>, offset: u64, size: u64) -> Result<(bool, u64), Errno> {
    let data = match rfs::seek(fd, SeekFrom::Data(offset)) {
        Ok(d) => d.min(size),
        Err(Errno::NXIO) => size,
        Err(e) => return Err(e),
    };
    if data > offset {
        return Ok((false, data));
    }
    let hole = rfs::seek(fd, SeekFrom::Hole(offset))?.min(size);
    Ok((true, hole.max(offset + 1)))
}

/// Reads exactly `buf.len()` bytes at `offset`; fewer only at end of file.
fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

impl Verify<'_> {
    fn mismatch(&self, rel: &[u8], what: Difference) -> VerifyError {
        VerifyError::Mismatch(Mismatch { src: join(self.src, rel), dst: join(self.dst, rel), what })
    }

    /// Refuses a source directory that is a mount point: what is mounted there is not
    /// the source's data, and the copy refused it too.
    fn refuse_mount_point(
        &self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        rel: &[u8],
    ) -> Result<(), VerifyError> {
        let path = || join(self.src, rel);
        let dev = inode(&rfs::fstat(parent).map_err(io_err(path(), "stat"))?).0;
        if nesting(parent, name, st, dev).map_err(io_err(path(), "stat"))? == Nesting::MountPoint {
            return Err(CopyError::CrossesFilesystem { path: path() }.into());
        }
        Ok(())
    }

    /// Whether the owner changed this entry of the copy after `opts.changed_since`.
    fn changed_since(&self, st: &Stat) -> bool {
        self.opts.changed_since.is_some_and(|t| ctime_ns(st) >= t)
    }

    /// Compares a directory's entries. `changed`: the copy's directory changed since
    /// `opts.changed_since`, so entries added to it or removed from it are accepted.
    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &[u8],
        changed: bool,
    ) -> Result<(), VerifyError> {
        let pair = Pair::list(src, dst, rel, (self.src, self.dst), self.opts.exclude)?;
        if let Some((_, crel)) = pair.extra.first().filter(|_| !changed) {
            return Err(self.mismatch(crel, Difference::Extra));
        }
        for (name, crel) in &pair.names {
            self.track.check_cancel()?;
            if pair.missing.contains(name) {
                if changed {
                    continue;
                }
                return Err(self.mismatch(crel, Difference::Missing));
            }
            self.entry(src, dst, name, crel)?;
            self.report.files += 1;
            self.track.progress.files += 1;
            self.track.tick();
        }
        Ok(())
    }

    /// Compares one entry; a directory's contents before its own metadata.
    #[allow(clippy::unnecessary_cast)]
    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &[u8],
    ) -> Result<(), VerifyError> {
        let (sp, dp) = (join(self.src, rel), join(self.dst, rel));
        let a = rfs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err(sp.clone(), "stat"))?;
        let b = rfs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err(dp.clone(), "stat"))?;
        let kind = file_type(&a);
        if kind == FileType::Directory {
            self.refuse_mount_point(src, name, &a, rel)?;
        }
        if self.changed_since(&b) {
            // The owner's own change: nothing to compare here, but below a directory
            // entries older than the change still must match.
            if kind == FileType::Directory && file_type(&b) == FileType::Directory {
                let s = open_dir_at(src, name).map_err(io_err(sp, "open"))?;
                let d = open_dir_at(dst, name).map_err(io_err(dp, "open"))?;
                self.dir(s.as_fd(), d.as_fd(), rel, true)?;
            }
            return Ok(());
        }
        if kind != file_type(&b) {
            let what = Difference::Type { src: type_name(kind).into(), dst: type_name(file_type(&b)).into() };
            return Err(self.mismatch(rel, what));
        }
        if kind == FileType::Directory {
            let s = open_dir_at(src, name).map_err(io_err(sp.clone(), "open"))?;
            let d = open_dir_at(dst, name).map_err(io_err(dp.clone(), "open"))?;
            let (a_is, b_is) = (
                subvolume_kind(src, s.as_fd(), name, &a).map_err(io_err(sp.clone(), "stat"))?,
                subvolume_kind(dst, d.as_fd(), name, &b).map_err(io_err(dp.clone(), "stat"))?,
            );
            // Checking live data against its old copy: migrate made the old copy's
            // subvolumes read-only itself.
            let plain_flag = |k: &'static str| {
                if self.opts.changed_since.is_some() && k == "read-only subvolume" { "subvolume" } else { k }
            };
            if plain_flag(a_is) != plain_flag(b_is) {
                return Err(self.mismatch(rel, Difference::Subvolume { src: a_is.into(), dst: b_is.into() }));
            }
            // Contents first: an entry too many or too few is what changed the directory's mtime.
            self.dir(s.as_fd(), d.as_fd(), rel, false)?;
        }
        self.compare_metadata(&a, &b, rel)?;
        let sx = xattrs(src, name).map_err(io_err(sp.clone(), "read the extended attributes of"))?;
        let dx = xattrs(dst, name).map_err(io_err(dp.clone(), "read the extended attributes of"))?;
        if let Some(what) = xattr_difference(&sx, &dx) {
            return Err(self.mismatch(rel, what));
        }
        if kind != FileType::Directory && (a.st_nlink > 1 || b.st_nlink > 1) {
            let (si, di) = (inode(&a), inode(&b));
            let seen = self.src_to_dst.get(&si).copied();
            if seen.is_some_and(|d| d != di) || self.dst_to_src.get(&di).is_some_and(|s| *s != si) {
                return Err(self.mismatch(rel, Difference::Hardlink));
            }
            self.src_to_dst.insert(si, di);
            self.dst_to_src.insert(di, si);
            if seen.is_some() {
                // Content compared under its first name.
                return Ok(());
            }
        }
        match kind {
            FileType::RegularFile => {
                self.report.src_allocated += a.st_blocks as u64 * 512;
                self.report.dst_allocated += b.st_blocks as u64 * 512;
                if b.st_blocks > a.st_blocks {
                    self.report.less_sparse_count += 1;
                    if self.report.less_sparse.len() < MAX_LISTED {
                        self.report.less_sparse.push(dp.clone());
                    }
                }
                let s = open_file_at(src, name).map_err(io_err(sp, "open"))?;
                let d = open_file_at(dst, name).map_err(io_err(dp.clone(), "open"))?;
                let start = self.track.progress.bytes;
                if let Some(offset) = self.first_difference(s.as_fd(), d.as_fd(), a.st_size as u64, rel)? {
                    return Err(self.mismatch(rel, Difference::Content { offset }));
                }
                self.track.progress.bytes = start + a.st_size as u64;
            }
            FileType::Symlink => {
                let s = rfs::readlinkat(src, name, Vec::new()).map_err(io_err(sp, "read the symlink"))?;
                let d = rfs::readlinkat(dst, name, Vec::new()).map_err(io_err(dp, "read the symlink"))?;
                if s != d {
                    return Err(self.mismatch(rel, Difference::SymlinkTarget));
                }
            }
            FileType::CharacterDevice | FileType::BlockDevice if a.st_rdev != b.st_rdev => {
                return Err(
                    self.mismatch(rel, Difference::Device { src: a.st_rdev as u64, dst: b.st_rdev as u64 })
                );
            }
            _ => {}
        }
        Ok(())
    }

    #[allow(clippy::unnecessary_cast)]
    fn compare_metadata(&self, a: &Stat, b: &Stat, rel: &[u8]) -> Result<(), VerifyError> {
        let what = if permissions(a) != permissions(b) && file_type(a) != FileType::Symlink {
            Difference::Mode { src: permissions(a), dst: permissions(b) }
        } else if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid) {
            Difference::Owner { src: (a.st_uid, a.st_gid), dst: (b.st_uid, b.st_gid) }
        } else if file_type(a) == FileType::RegularFile && a.st_size != b.st_size {
            Difference::Size { src: a.st_size as u64, dst: b.st_size as u64 }
        } else if mtime(a) != mtime(b) {
            Difference::Mtime { src: mtime(a), dst: mtime(b) }
        } else {
            return Ok(());
        };
        Err(self.mismatch(rel, what))
    }

    /// The first offset at which two files of `size` bytes differ, if any.
    fn first_difference(
        &mut self,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
        size: u64,
        rel: &[u8],
    ) -> Result<Option<u64>, VerifyError> {
        let (sp, dp) = (|| join(self.src, rel), || join(self.dst, rel));
        let mut offset = 0;
        while offset < size {
            let (a_data, a_end) = region(a, offset, size).map_err(io_err(sp(), "find data in"))?;
            let (b_data, b_end) = region(b, offset, size).map_err(io_err(dp(), "find data in"))?;
            let end = a_end.min(b_end);
            if a_data || b_data {
                let mut pos = offset;
                while pos < end {
                    self.track.check_cancel()?;
                    let want = (end - pos).min(BLOCK as u64) as usize;
                    let (ba, bb) = (&mut self.bufs.0[..want], &mut self.bufs.1[..want]);
                    let na = read_at(a, ba, pos).map_err(io_err(sp(), "read"))?;
                    let nb = read_at(b, bb, pos).map_err(io_err(dp(), "read"))?;
                    if let Some(i) = ba[..na.min(nb)].iter().zip(&bb[..na.min(nb)]).position(|(x, y)| x != y)
                    {
                        return Ok(Some(pos + i as u64));
                    }
                    if na != want || nb != want {
                        // One of them ended early: it changed size since it was stat'ed.
                        return Ok(Some(pos + na.min(nb) as u64));
                    }
                    pos += want as u64;
                    self.report.bytes_compared += want as u64;
                    self.track.progress.bytes += want as u64;
                    self.track.tick();
                }
            }
            offset = end;
        }
        Ok(None)
    }
}

/// The first difference between two sorted attribute lists.
fn xattr_difference(src: &[(CString, Vec<u8>)], dst: &[(CString, Vec<u8>)]) -> Option<Difference> {
    let name = |k: &CString| k.to_string_lossy().into_owned();
    for (key, value) in src {
        match dst.iter().find(|(k, _)| k == key) {
            None => return Some(Difference::Xattr { name: name(key), what: "is missing from the copy" }),
            Some((_, v)) if v != value => {
                return Some(Difference::Xattr { name: name(key), what: "has another value" });
            }
            Some(_) => {}
        }
    }
    dst.iter()
        .find(|(k, _)| !src.iter().any(|(s, _)| s == k))
        .map(|(k, _)| Difference::Xattr { name: name(k), what: "is only in the copy" })
}

#[cfg(test)]
mod tests {
    use super::super::copy::{CopyError, copy_tree};
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A scratch directory with a source tree `src` and an empty target `dst`, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("podfs-migrate-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("src/sub")).unwrap();
            fs::create_dir_all(dir.join("dst")).unwrap();
            fs::write(dir.join("src/a"), b"alpha").unwrap();
            fs::hard_link(dir.join("src/a"), dir.join("src/sub/a2")).unwrap();
            fs::write(dir.join("src/sub/b"), b"beta").unwrap();
            symlink("../a", dir.join("src/sub/link")).unwrap();
            Scratch(dir)
        }
        fn src(&self) -> PathBuf {
            self.0.join("src")
        }
        fn dst(&self) -> PathBuf {
            self.0.join("dst")
        }
        fn copied(tag: &str) -> Self {
            let s = Scratch::new(tag);
            copy_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();
            verify_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();
            s
        }
        fn difference(&self) -> (PathBuf, Difference) {
            match verify_tree(&self.src(), &self.dst(), &CopyOptions::default()) {
                Err(VerifyError::Mismatch(m)) => {
                    (m.dst.strip_prefix(self.dst()).unwrap().to_path_buf(), m.what)
                }
                other => panic!("expected a mismatch, got {other:?}"),
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_copy_that_lies_inside_its_source_or_around_it_is_refused() {
        let s = Scratch::new("overlap");
        let inside = s.src().join("sub/target");
        fs::create_dir(&inside).unwrap();
        let err = copy_tree(&s.src(), &inside, &CopyOptions::default()).unwrap_err();
        assert!(matches!(err, CopyError::Overlap { .. }), "{err:?}");
        // The other way round a copy would remove the source as "not in the source".
        let err = copy_tree(&s.src().join("sub"), &s.src(), &CopyOptions::default()).unwrap_err();
        assert!(matches!(err, CopyError::Overlap { .. }), "{err:?}");
        let err = copy_tree(&s.src(), &s.src(), &CopyOptions::default()).unwrap_err();
        assert!(matches!(err, CopyError::Overlap { .. }), "{err:?}");
        assert_eq!(fs::read(s.src().join("sub/b")).unwrap(), b"beta");
        // Unless the target lies in an excluded path.
        let exclude = [PathBuf::from("sub/target")];
        let opts = CopyOptions { exclude: &exclude, ..CopyOptions::default() };
        copy_tree(&s.src(), &s.dst(), &opts).unwrap();
        assert!(!s.dst().join("sub/target").exists());
    }

    #[test]
    fn excluded_paths_are_neither_copied_nor_removed_nor_verified() {
        let s = Scratch::new("exclude");
        fs::create_dir_all(s.dst().join("sub/b")).unwrap();
        fs::write(s.dst().join("sub/b/kept"), b"not ours").unwrap();
        let exclude = [s.src().join("sub/b")];
        let opts = CopyOptions { exclude: &exclude, ..CopyOptions::default() };
        copy_tree(&s.src(), &s.dst(), &opts).unwrap();
        assert_eq!(fs::read(s.dst().join("sub/b/kept")).unwrap(), b"not ours");
        verify_tree(&s.src(), &s.dst(), &opts).unwrap();
        assert_eq!(
            verify_tree(&s.src(), &s.dst(), &CopyOptions::default())
                .map_err(|e| e.to_string())
                .err()
                .map(|e| e.contains("sub/b")),
            Some(true)
        );
    }

    #[test]
    fn verify_names_what_differs() {
        let s = Scratch::copied("differs");
        fs::write(s.dst().join("extra"), b"").unwrap();
        assert_eq!(s.difference(), (PathBuf::from("extra"), Difference::Extra));
        fs::remove_file(s.dst().join("extra")).unwrap();

        fs::remove_file(s.dst().join("sub/b")).unwrap();
        assert_eq!(s.difference(), (PathBuf::from("sub/b"), Difference::Missing));
        copy_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();

        // The same content under a name of its own: the hardlink is gone.
        fs::remove_file(s.dst().join("sub/a2")).unwrap();
        fs::copy(s.dst().join("a"), s.dst().join("sub/a2")).unwrap();
        let meta = fs::metadata(s.src().join("a")).unwrap();
        fs::File::options()
            .write(true)
            .open(s.dst().join("sub/a2"))
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        assert_eq!(s.difference(), (PathBuf::from("sub/a2"), Difference::Hardlink));
        copy_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();
        verify_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();

        fs::set_permissions(s.dst().join("sub/b"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(s.src().join("sub/b"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(s.difference(), (PathBuf::from("sub/b"), Difference::Mode { src: 0o644, dst: 0o600 }));
        copy_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();

        fs::remove_file(s.dst().join("sub/link")).unwrap();
        symlink("../b", s.dst().join("sub/link")).unwrap();
        assert!(
            matches!(s.difference(), (p, Difference::SymlinkTarget | Difference::Mtime { .. }) if p == Path::new("sub/link"))
        );
    }

    #[test]
    fn entries_changed_since_an_instant_are_the_owners_and_older_ones_still_count() {
        let s = Scratch::copied("since");
        // Before the instant: a corrupted byte (mtime kept) is still found.
        let meta = fs::metadata(s.src().join("sub/b")).unwrap();
        fs::write(s.dst().join("sub/b"), b"bet!").unwrap();
        fs::File::options()
            .write(true)
            .open(s.dst().join("sub/b"))
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        std::thread::sleep(std::time::Duration::from_millis(20));
        // After it: the owner rewrote a, added a file and removed the symlink.
        fs::write(s.dst().join("a"), b"new data").unwrap();
        fs::write(s.dst().join("sub/new"), b"").unwrap();
        fs::remove_file(s.dst().join("sub/link")).unwrap();
        let opts = CopyOptions { changed_since: Some(since), ..CopyOptions::default() };
        match verify_tree(&s.src(), &s.dst(), &opts) {
            Err(VerifyError::Mismatch(m)) => {
                assert_eq!((m.dst, m.what), (s.dst().join("sub/b"), Difference::Content { offset: 3 }))
            }
            other => panic!("expected the old corruption, got {other:?}"),
        }
        fs::write(s.dst().join("sub/b"), b"beta").unwrap();
        verify_tree(&s.src(), &s.dst(), &opts).unwrap();
        assert!(verify_tree(&s.src(), &s.dst(), &CopyOptions::default()).is_err());
    }

    #[test]
    fn a_cancelled_flag_stops_before_anything_is_written_or_read() {
        let s = Scratch::new("cancel");
        let flag = std::sync::atomic::AtomicBool::new(true);
        let opts = CopyOptions { cancel: Some(&flag), ..CopyOptions::default() };
        assert!(matches!(copy_tree(&s.src(), &s.dst(), &opts), Err(CopyError::Cancelled)));
        assert_eq!(fs::read_dir(s.dst()).unwrap().count(), 0);
        assert!(matches!(
            verify_tree(&s.src(), &s.dst(), &opts),
            Err(VerifyError::Copy(CopyError::Cancelled))
        ));
    }

    #[test]
    fn a_resumed_copy_keeps_what_is_done_and_redoes_the_rest() {
        let s = Scratch::copied("resume");
        // Cut a file short behind the copy's back, keeping its mtime: the size gives it away.
        let meta = fs::metadata(s.src().join("sub/b")).unwrap();
        let f = fs::File::options().write(true).open(s.dst().join("sub/b")).unwrap();
        f.set_len(1).unwrap();
        f.set_modified(meta.modified().unwrap()).unwrap();
        fs::create_dir(s.dst().join("stale")).unwrap();
        let stats = copy_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();
        assert_eq!(stats.removed, 1, "{stats:?}");
        assert_eq!(stats.hardlinks, 1, "{stats:?}");
        // a and link are kept; sub is a directory (always walked); b is rewritten.
        assert_eq!(stats.skipped, 2, "{stats:?}");
        assert_eq!(fs::read(s.dst().join("sub/b")).unwrap(), b"beta");
        verify_tree(&s.src(), &s.dst(), &CopyOptions::default()).unwrap();
    }

    fn attr(k: &str, v: &[u8]) -> (CString, Vec<u8>) {
        (CString::new(k).unwrap(), v.to_vec())
    }

    #[test]
    fn xattr_differences_are_named() {
        let a = [attr("trusted.overlay.opaque", b"y"), attr("user.x", b"1")];
        assert_eq!(xattr_difference(&a, &a), None);
        let missing = xattr_difference(&a, &a[1..]).unwrap();
        assert_eq!(missing.to_string(), "extended attribute trusted.overlay.opaque is missing from the copy");
        let other = [attr("trusted.overlay.opaque", b"y"), attr("user.x", b"2")];
        assert_eq!(
            xattr_difference(&a, &other).unwrap().to_string(),
            "extended attribute user.x has another value"
        );
        let extra = [a[0].clone(), a[1].clone(), attr("user.z", b"")];
        assert_eq!(
            xattr_difference(&a, &extra).unwrap().to_string(),
            "extended attribute user.z is only in the copy"
        );
    }

    #[test]
    fn differences_serialize_with_their_kind() {
        let json = serde_json::to_value(Difference::Size { src: 3, dst: 1 }).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "size", "src": 3, "dst": 1}));
        assert_eq!(
            serde_json::to_value(Difference::Missing).unwrap(),
            serde_json::json!({"kind": "missing"})
        );
    }

    #[test]
    fn mismatches_name_both_paths() {
        let m = Mismatch {
            src: PathBuf::from("/s/db/x"),
            dst: PathBuf::from("/d/db/x"),
            what: Difference::Content { offset: 4096 },
        };
        assert_eq!(m.to_string(), "the copy /d/db/x of /s/db/x: content differs from byte 4096 on");
    }
}
