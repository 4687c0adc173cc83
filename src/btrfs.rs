//! The few btrfs operations the tool itself performs: create, snapshot and delete a
//! subvolume, make it read-only or writable again, set NOCOW, set the compression property
//! and a qgroup size limit, and read the bytes a subvolume's qgroup counts. Each works on directory
//! file descriptors and a single path component, so no path given by a client can lead
//! outside the directory it was opened in.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, IFlags, Mode, OFlags, XattrFlags};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Setter, Updater, opcode};
use std::fmt;

/// Inode number of every subvolume root (BTRFS_FIRST_FREE_OBJECTID).
pub const SUBVOLUME_ROOT_INO: u64 = 256;
/// `statfs.f_type` of btrfs (BTRFS_SUPER_MAGIC).
const SUPER_MAGIC: i64 = 0x9123_683e;
const IOCTL_MAGIC: u8 = 0x94;
/// BTRFS_PATH_NAME_MAX: a subvolume name is at most this many bytes.
const PATH_NAME_MAX: usize = 4087;
/// BTRFS_QGROUP_LIMIT_MAX_RFER: limit the bytes a subvolume refers to.
const LIMIT_MAX_REFERENCED: u64 = 1;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

/// BTRFS_SUBVOL_NAME_MAX: the name of a snapshot is at most this many bytes.
const SUBVOL_NAME_MAX: usize = 4039;
/// BTRFS_SUBVOL_RDONLY: the snapshot is read-only.
const SUBVOL_RDONLY: u64 = 1 << 1;

/// `struct btrfs_ioctl_vol_args_v2` (its unions as their largest member).
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

/// `struct btrfs_qgroup_limit`.
#[repr(C)]
struct QgroupLimit {
    flags: u64,
    max_referenced: u64,
    max_exclusive: u64,
    reserved_referenced: u64,
    reserved_exclusive: u64,
}

/// `struct btrfs_ioctl_qgroup_limit_args`.
#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    limit: QgroupLimit,
}

/// BTRFS_ROOT_TREE_OBJECTID and BTRFS_QUOTA_TREE_OBJECTID: the trees searched.
const ROOT_TREE: u64 = 1;
const QUOTA_TREE: u64 = 8;
/// Item types (BTRFS_*_KEY): a subvolume's reference to a subvolume inside it, the
/// quota status, and a qgroup's counters.
const ROOT_REF_KEY: u32 = 156;
const QGROUP_STATUS_KEY: u32 = 240;
const QGROUP_INFO_KEY: u32 = 242;
/// BTRFS_QGROUP_STATUS_FLAG_*: quotas on; a rescan running; numbers known to be wrong.
const QGROUP_ON: u64 = 1;
const QGROUP_RESCAN: u64 = 1 << 1;
const QGROUP_INCONSISTENT: u64 = 1 << 2;

/// `struct btrfs_ioctl_search_key`.
#[repr(C)]
#[derive(Default)]
struct SearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: u64,
    unused2: u64,
    unused3: u64,
    unused4: u64,
}

/// BTRFS_SEARCH_ARGS_BUFSIZE: the search args are 4096 bytes in all.
const SEARCH_BUF: usize = 4096 - std::mem::size_of::<SearchKey>();

/// `struct btrfs_ioctl_search_args`.
#[repr(C)]
struct SearchArgs {
    key: SearchKey,
    buf: [u8; SEARCH_BUF],
}

/// `struct btrfs_ioctl_search_header`, which precedes each item in `SearchArgs::buf`.
const SEARCH_HEADER: usize = 32;

/// `struct btrfs_ioctl_ino_lookup_args`.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

const SUBVOL_CREATE: Opcode = opcode::write::<VolArgs>(IOCTL_MAGIC, 14);
const SNAP_CREATE_V2: Opcode = opcode::write::<VolArgsV2>(IOCTL_MAGIC, 23);
const SUBVOL_GETFLAGS: Opcode = opcode::read::<u64>(IOCTL_MAGIC, 25);
const SUBVOL_SETFLAGS: Opcode = opcode::write::<u64>(IOCTL_MAGIC, 26);
const SNAP_DESTROY: Opcode = opcode::write::<VolArgs>(IOCTL_MAGIC, 15);
const QGROUP_LIMIT: Opcode = opcode::read::<QgroupLimitArgs>(IOCTL_MAGIC, 43);
const TREE_SEARCH: Opcode = opcode::read_write::<SearchArgs>(IOCTL_MAGIC, 17);
const INO_LOOKUP: Opcode = opcode::read_write::<InoLookupArgs>(IOCTL_MAGIC, 18);

/// What was being done when a btrfs operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateSubvolume,
    Snapshot,
    SetReadOnly,
    SetWritable,
    DeleteSubvolume,
    SetNocow,
    SetCompression,
    LimitSize,
    Open,
}

/// A failed btrfs operation, with a message that says what to do for the usual causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtrfsError {
    pub op: Op,
    pub errno: Errno,
}

impl BtrfsError {
    fn new(op: Op) -> impl FnOnce(Errno) -> Self {
        move |errno| BtrfsError { op, errno }
    }

    /// The kernel says btrfs quotas are off (ENOTCONN from the qgroup ioctls).
    pub fn quotas_off(&self) -> bool {
        self.op == Op::LimitSize && self.errno == Errno::NOTCONN
    }
}

impl fmt::Display for BtrfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.op {
            Op::CreateSubvolume => "creating the subvolume",
            Op::Snapshot => "taking the snapshot",
            Op::SetReadOnly => "making the subvolume read-only",
            Op::SetWritable => "making the subvolume writable",
            Op::DeleteSubvolume => "deleting the subvolume",
            Op::SetNocow => "setting NOCOW (chattr +C)",
            Op::SetCompression => "setting the compression property",
            Op::LimitSize => "setting the qgroup size limit",
            Op::Open => "opening",
        };
        let io = std::io::Error::from(self.errno);
        write!(f, "{what} failed: {io}")?;
        match (self.op, self.errno) {
            (_, Errno::PERM) | (_, Errno::ACCESS) => f.write_str(" (subvolume operations need root)"),
            (Op::LimitSize, Errno::NOTCONN) => f.write_str(
                " (btrfs quotas are off on this filesystem; a size limit needs `btrfs quota enable \
                 <mountpoint>`, which has a cost for the whole filesystem, so this tool never turns it on)",
            ),
            (Op::DeleteSubvolume, Errno::NOTEMPTY) => f.write_str(" (it holds nested subvolumes)"),
            (Op::DeleteSubvolume, Errno::INVAL) => f.write_str(" (it is not a subvolume)"),
            (Op::Snapshot, Errno::INVAL) => f.write_str(" (the source is not a subvolume root)"),
            (Op::Snapshot, Errno::XDEV) => f.write_str(" (the source lies on another btrfs filesystem)"),
            (Op::SetCompression, Errno::INVAL) => f.write_str(" (the kernel does not know this algorithm)"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for BtrfsError {}

/// Whether `fd` lies on btrfs.
// `f_type`'s integer type differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn is_btrfs(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as i64 == SUPER_MAGIC)
}

/// Opens `name` in `dir` as a directory, refusing symlinks.
pub fn open_dir(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, BtrfsError> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(BtrfsError::new(Op::Open))
}

/// Whether `name` in `dir` is the root of a subvolume (not following symlinks).
pub fn is_subvolume_at(dir: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            && st.st_ino == SUBVOLUME_ROOT_INO
    })
}

fn vol_args(name: &str) -> Result<Box<VolArgs>, Errno> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > PATH_NAME_MAX || bytes.contains(&0) || bytes.contains(&b'/') {
        return Err(Errno::INVAL);
    }
    let mut args = Box::new(VolArgs { fd: 0, name: [0; PATH_NAME_MAX + 1] });
    args.name[..bytes.len()].copy_from_slice(bytes);
    Ok(args)
}

/// Creates subvolume `name` in directory `dir` (BTRFS_IOC_SUBVOL_CREATE).
pub fn create_subvolume(dir: BorrowedFd<'_>, name: &str) -> Result<(), BtrfsError> {
    let args = vol_args(name).map_err(BtrfsError::new(Op::CreateSubvolume))?;
    // SAFETY: the opcode is _IOW(0x94, 14, struct btrfs_ioctl_vol_args), `VolArgs` has its layout.
    unsafe { rustix::ioctl::ioctl(dir, Setter::<SUBVOL_CREATE, VolArgs>::new(*args)) }
        .map_err(BtrfsError::new(Op::CreateSubvolume))
}

/// Deletes subvolume `name` in directory `dir` with everything in it (BTRFS_IOC_SNAP_DESTROY).
/// The kernel refuses anything that is not a subvolume root, including symlinks.
pub fn delete_subvolume(dir: BorrowedFd<'_>, name: &str) -> Result<(), BtrfsError> {
    let args = vol_args(name).map_err(BtrfsError::new(Op::DeleteSubvolume))?;
    // SAFETY: the opcode is _IOW(0x94, 15, struct btrfs_ioctl_vol_args), `VolArgs` has its layout.
    unsafe { rustix::ioctl::ioctl(dir, Setter::<SNAP_DESTROY, VolArgs>::new(*args)) }
        .map_err(BtrfsError::new(Op::DeleteSubvolume))
}

/// Takes a snapshot of the subvolume whose root is `source` as `name` in directory `dir`,
/// read-only or writable (BTRFS_IOC_SNAP_CREATE_V2). Both must lie on the same btrfs.
pub fn snapshot(
    source: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &str,
    read_only: bool,
) -> Result<(), BtrfsError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > SUBVOL_NAME_MAX || bytes.contains(&0) || bytes.contains(&b'/') {
        return Err(BtrfsError { op: Op::Snapshot, errno: Errno::INVAL });
    }
    let mut args = Box::new(VolArgsV2 {
        fd: i64::from(rustix::fd::AsRawFd::as_raw_fd(&source)),
        transid: 0,
        flags: if read_only { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    });
    args.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: the opcode is _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2), `VolArgsV2` has
    // its layout; `fd` stays open for the call.
    unsafe { rustix::ioctl::ioctl(dir, Setter::<SNAP_CREATE_V2, VolArgsV2>::new(*args)) }
        .map_err(BtrfsError::new(Op::Snapshot))
}

/// Makes the subvolume whose root is `fd` read-only (BTRFS_IOC_SUBVOL_SETFLAGS).
pub fn set_read_only(fd: BorrowedFd<'_>) -> Result<(), BtrfsError> {
    // SAFETY: the opcode is _IOW(0x94, 26, __u64); the kernel reads one u64 of flags.
    unsafe { rustix::ioctl::ioctl(fd, Setter::<SUBVOL_SETFLAGS, u64>::new(SUBVOL_RDONLY)) }
        .map_err(BtrfsError::new(Op::SetReadOnly))
}

/// Whether the subvolume whose root is `fd` is read-only (BTRFS_IOC_SUBVOL_GETFLAGS).
pub fn is_read_only(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    // SAFETY: the opcode is _IOR(0x94, 25, __u64); the kernel writes one u64 of flags.
    let flags = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<SUBVOL_GETFLAGS, u64>::new()) }?;
    Ok(flags & SUBVOL_RDONLY != 0)
}

/// Makes the read-only subvolume whose root is `fd` writable again.
pub fn set_writable(fd: BorrowedFd<'_>) -> Result<(), BtrfsError> {
    // SAFETY: the opcode is _IOW(0x94, 26, __u64); the kernel reads one u64 of flags.
    unsafe { rustix::ioctl::ioctl(fd, Setter::<SUBVOL_SETFLAGS, u64>::new(0)) }
        .map_err(BtrfsError::new(Op::SetWritable))
}

/// Reads the NOCOW flag (`lsattr` shows `C`).
pub fn nocow(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    Ok(rustix::fs::ioctl_getflags(fd)?.contains(IFlags::NOCOW))
}

/// Sets NOCOW (`chattr +C`). btrfs honours it only on empty files and directories; new
/// files inherit it from their directory.
pub fn set_nocow(fd: BorrowedFd<'_>) -> Result<(), BtrfsError> {
    let flags = rustix::fs::ioctl_getflags(fd).map_err(BtrfsError::new(Op::SetNocow))?;
    rustix::fs::ioctl_setflags(fd, flags | IFlags::NOCOW).map_err(BtrfsError::new(Op::SetNocow))?;
    if nocow(fd) == Ok(true) { Ok(()) } else { Err(BtrfsError { op: Op::SetNocow, errno: Errno::NOTSUP }) }
}

/// Sets the `compression` property (`zstd`, `none`, …), as `btrfs property set` does.
pub fn set_compression(fd: BorrowedFd<'_>, value: &str) -> Result<(), BtrfsError> {
    rustix::fs::fsetxattr(fd, "btrfs.compression", value.as_bytes(), XattrFlags::empty())
        .map_err(BtrfsError::new(Op::SetCompression))
}

/// Reads the `compression` property, `None` when unset (or on a filesystem without it).
pub fn compression(fd: BorrowedFd<'_>) -> Result<Option<String>, Errno> {
    let mut buf = [0u8; 64];
    match rustix::fs::fgetxattr(fd, "btrfs.compression", &mut buf[..]) {
        Ok(n) => {
            let value = String::from_utf8_lossy(&buf[..n]).trim_end_matches('\0').to_string();
            Ok((!value.is_empty()).then_some(value))
        }
        Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Limits how many bytes the subvolume whose root is `fd` may refer to. Fails with
/// [`BtrfsError::quotas_off`] when the admin has not turned quotas on.
pub fn limit_size(fd: BorrowedFd<'_>, bytes: u64) -> Result<(), BtrfsError> {
    let mut args = QgroupLimitArgs {
        // 0: the qgroup of the subvolume the ioctl is called on.
        qgroupid: 0,
        limit: QgroupLimit {
            flags: LIMIT_MAX_REFERENCED,
            max_referenced: bytes,
            max_exclusive: 0,
            reserved_referenced: 0,
            reserved_exclusive: 0,
        },
    };
    // SAFETY: the opcode is _IOR(0x94, 43, struct btrfs_ioctl_qgroup_limit_args), which
    // `QgroupLimitArgs` lays out; the kernel reads it and may write it back.
    unsafe { rustix::ioctl::ioctl(fd.as_fd(), Updater::<QGROUP_LIMIT, QgroupLimitArgs>::new(&mut args)) }
        .map_err(BtrfsError::new(Op::LimitSize))
}

/// The id of the subvolume `fd` lies in (BTRFS_IOC_INO_LOOKUP of the subvolume root,
/// which needs no privilege).
fn subvolume_id(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut args = Box::new(InoLookupArgs { treeid: 0, objectid: SUBVOLUME_ROOT_INO, name: [0; 4080] });
    // SAFETY: the opcode is _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args), which
    // `InoLookupArgs` lays out; the kernel reads it and writes it back.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<INO_LOOKUP, InoLookupArgs>::new(&mut *args)) }?;
    Ok(args.treeid)
}

/// The data of the first item with key (`objectid`, `kind`, `offset`) in tree `tree`,
/// `None` when there is none; a tree that does not exist (no quota tree while quotas
/// were never on) is ENOENT. Needs CAP_SYS_ADMIN (BTRFS_IOC_TREE_SEARCH).
fn search(
    fd: BorrowedFd<'_>,
    tree: u64,
    objectid: u64,
    kind: u32,
    offsets: (u64, u64),
) -> Result<Option<Vec<u8>>, Errno> {
    let mut args = Box::new(SearchArgs {
        key: SearchKey {
            tree_id: tree,
            min_objectid: objectid,
            max_objectid: objectid,
            min_offset: offsets.0,
            max_offset: offsets.1,
            max_transid: u64::MAX,
            min_type: kind,
            max_type: kind,
            nr_items: 1,
            ..SearchKey::default()
        },
        buf: [0; SEARCH_BUF],
    });
    // SAFETY: the opcode is _IOWR(0x94, 17, struct btrfs_ioctl_search_args), which
    // `SearchArgs` lays out; the kernel reads the key and writes items into `buf`.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<TREE_SEARCH, SearchArgs>::new(&mut *args)) }?;
    Ok(first_item(&args.buf[..], args.key.nr_items, objectid, kind))
}

/// The data of the first item a search returned, if it has the key asked for.
fn first_item(buf: &[u8], found: u32, objectid: u64, kind: u32) -> Option<Vec<u8>> {
    if found == 0 {
        return None;
    }
    let u64_at =
        |at: usize| buf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let u32_at =
        |at: usize| buf.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    let (header_objectid, header_kind, len) = (u64_at(8)?, u32_at(24)?, u32_at(28)? as usize);
    (header_objectid == objectid && header_kind == kind)
        .then(|| buf.get(SEARCH_HEADER..SEARCH_HEADER + len).map(<[u8]>::to_vec))
        .flatten()
}

/// Whether btrfs quotas are on for a filesystem, and whether their numbers are current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaStatus {
    /// Quotas are off (or were never turned on: there is no quota tree).
    Off,
    /// Quotas are on and their numbers current.
    On,
    /// Quotas are on, but a rescan is running or btrfs marked the numbers inconsistent.
    NotCurrent,
}

/// The quota status of the btrfs `fd` lies on, from the quota tree's status item.
/// Needs CAP_SYS_ADMIN (the tree is searched).
pub fn quota_status(fd: BorrowedFd<'_>) -> Result<QuotaStatus, Errno> {
    let status = match search(fd, QUOTA_TREE, 0, QGROUP_STATUS_KEY, (0, 0)) {
        Err(Errno::NOENT) | Ok(None) => return Ok(QuotaStatus::Off),
        Err(e) => return Err(e),
        Ok(Some(status)) => status,
    };
    // struct btrfs_qgroup_status_item: version, generation, flags, rescan (le64 each).
    let flags = status.get(16..24).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    Ok(match flags {
        Some(f) if f & QGROUP_ON == 0 => QuotaStatus::Off,
        Some(f) if f & (QGROUP_RESCAN | QGROUP_INCONSISTENT) != 0 => QuotaStatus::NotCurrent,
        None => QuotaStatus::NotCurrent,
        Some(_) => QuotaStatus::On,
    })
}

/// Why a subvolume's qgroup cannot stand for its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoQgroupSize {
    /// Quotas are off on this filesystem (the tool never turns them on).
    QuotasOff,
    /// A rescan is running, or btrfs marked the numbers inconsistent.
    NotCurrent,
    /// Subvolumes lie inside it: its qgroup leaves their data out.
    NestedSubvolumes,
    /// The subvolume has no qgroup (made before quotas were turned on, then removed).
    NoQgroup,
    /// The kernel refused (not root: the quota tree is read with CAP_SYS_ADMIN).
    Refused(Errno),
}

/// The bytes the subvolume whose root is `fd` refers to, from its level-0 qgroup
/// (`referenced`, as `btrfs qgroup show` prints it): what its files take on disk after
/// compression, extents it shares counted in full, with its metadata, as of btrfs's last
/// transaction commit. Only read when quotas are on, consistent and the subvolume holds
/// no other subvolume.
pub fn qgroup_referenced(fd: BorrowedFd<'_>) -> Result<u64, NoQgroupSize> {
    let refused = NoQgroupSize::Refused;
    let id = subvolume_id(fd).map_err(refused)?;
    match quota_status(fd).map_err(refused)? {
        QuotaStatus::Off => return Err(NoQgroupSize::QuotasOff),
        QuotaStatus::NotCurrent => return Err(NoQgroupSize::NotCurrent),
        QuotaStatus::On => {}
    }
    if search(fd, ROOT_TREE, id, ROOT_REF_KEY, (0, u64::MAX)).map_err(refused)?.is_some() {
        return Err(NoQgroupSize::NestedSubvolumes);
    }
    // struct btrfs_qgroup_info_item: generation, rfer, rfer_cmpr, excl, excl_cmpr.
    let info = search(fd, QUOTA_TREE, 0, QGROUP_INFO_KEY, (id, id)).map_err(refused)?;
    info.as_deref()
        .and_then(|i| i.get(8..16))
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .ok_or(NoQgroupSize::NoQgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        // _IOW(0x94, 14, 4096) and _IOR(0x94, 43, 48) as the kernel headers spell them.
        assert_eq!(SUBVOL_CREATE, 0x5000_940e);
        assert_eq!(SNAP_DESTROY, 0x5000_940f);
        // _IOW(0x94, 23, 4096): BTRFS_IOC_SNAP_CREATE_V2.
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(std::mem::offset_of!(VolArgsV2, name), 56);
        assert_eq!(SNAP_CREATE_V2, 0x5000_9417);
        // _IOW(0x94, 26, __u64): BTRFS_IOC_SUBVOL_SETFLAGS.
        assert_eq!(SUBVOL_SETFLAGS, 0x4008_941a);
        assert_eq!(QGROUP_LIMIT, 0x8030_942b);
        // _IOWR(0x94, 17, 4096) and _IOWR(0x94, 18, 4096).
        assert_eq!(std::mem::size_of::<SearchKey>(), 104);
        assert_eq!(std::mem::size_of::<SearchArgs>(), 4096);
        assert_eq!(std::mem::size_of::<InoLookupArgs>(), 4096);
        assert_eq!(TREE_SEARCH, 0xd000_9411);
        assert_eq!(INO_LOOKUP, 0xd000_9412);
    }

    #[test]
    fn names_that_are_not_one_path_component_never_reach_the_kernel() {
        for bad in ["", "a/b", "../x", "a\0b"] {
            assert_eq!(vol_args(bad).err(), Some(Errno::INVAL), "{bad:?}");
        }
        assert!(vol_args(&"x".repeat(PATH_NAME_MAX + 1)).is_err());
        assert!(vol_args(&"x".repeat(PATH_NAME_MAX)).is_ok());
    }

    #[test]
    fn a_search_result_is_read_only_for_the_key_asked_for() {
        let mut buf = vec![0u8; 64];
        buf[8..16].copy_from_slice(&0u64.to_le_bytes());
        buf[24..28].copy_from_slice(&QGROUP_INFO_KEY.to_le_bytes());
        buf[28..32].copy_from_slice(&16u32.to_le_bytes());
        buf[40..48].copy_from_slice(&12345u64.to_le_bytes());
        let item = first_item(&buf, 1, 0, QGROUP_INFO_KEY).unwrap();
        assert_eq!(u64::from_le_bytes(item[8..16].try_into().unwrap()), 12345);
        assert_eq!(first_item(&buf, 0, 0, QGROUP_INFO_KEY), None, "nothing found");
        assert_eq!(first_item(&buf, 1, 0, QGROUP_STATUS_KEY), None, "another item type");
        buf[28..32].copy_from_slice(&4000u32.to_le_bytes());
        assert_eq!(first_item(&buf, 1, 0, QGROUP_INFO_KEY), None, "a length past the buffer");
    }

    #[test]
    fn quota_errors_say_what_to_do() {
        let e = BtrfsError { op: Op::LimitSize, errno: Errno::NOTCONN };
        assert!(e.quotas_off());
        assert!(e.to_string().contains("btrfs quota enable"), "{e}");
        let e = BtrfsError { op: Op::CreateSubvolume, errno: Errno::PERM };
        assert!(e.to_string().contains("need root"), "{e}");
    }
}
