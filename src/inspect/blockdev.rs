//! Whether a block device is in use on this machine: a mounted filesystem or active swap
//! on it or on one of its partitions, or something built on top of it (device mapper,
//! LVM, LUKS, md RAID, a loop device backed by it). A plan never lays out such a disk.
//!
//! The kernel's own tables are the source: `/proc/self/mountinfo`, `/proc/swaps` and
//! sysfs (`/sys/class/block/NAME/{dev,partition,holders,loop/backing_file,dm/name}`,
//! `/sys/fs/btrfs/UUID/devices/`). The walk reads sysfs below an injected root so it can
//! run over a fake tree; the readings of `/proc` are parsed by pure functions. Read-only.

use super::mountinfo::{self, MountEntry};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A block device number, `(major, minor)`.
pub type DevNum = (u32, u32);

/// A device named for a plan that something on this machine uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The device as named, with the kernel's name when that differs (`/dev/disk/by-id/… (/dev/vda)`).
    pub device: String,
    /// What uses it, each a sentence such as `/dev/vda1 is mounted at / (ext4)`.
    pub uses: Vec<String>,
}

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is in use: {}", self.device, self.uses.join("; "))
    }
}

/// What this machine says about a device path named for a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// No such path here, or not a block device: a plan for another machine.
    Absent,
    Unused,
    InUse(InUse),
}

/// The readings the walk works on: a sysfs root (`/sys`), the mount table, the active
/// swap areas, and how to tell which block device a path names.
pub struct Readings<'a> {
    pub sys: &'a Path,
    pub mounts: &'a [MountEntry],
    /// Reads the mounts of other mount namespaces, their mountpoints naming the namespace:
    /// called at most once, and only when our own mounts show none on a device.
    pub other_namespaces: &'a dyn Fn() -> Vec<MountEntry>,
    pub swaps: &'a [String],
    pub resolve: &'a dyn Fn(&str) -> Option<DevNum>,
}

/// Checks `device` (any path naming a block device, symlinks allowed) on this machine.
pub fn status(device: &str) -> io::Result<Status> {
    let found =
        block_device(device).map_err(|e| io::Error::new(e.kind(), format!("cannot read {device}: {e}")))?;
    let Some((path, dev)) = found else { return Ok(Status::Absent) };
    let sys = Path::new("/sys");
    let name = sysfs_name(sys, dev)?;
    let mounts = super::read_mounts()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read /proc/self/mountinfo: {e}")))?;
    let swaps = parse_swaps(&read("/proc/swaps")?);
    let readings = Readings {
        sys,
        mounts: &mounts,
        other_namespaces: &other_namespace_mounts,
        swaps: &swaps,
        resolve: &resolve_block_device,
    };
    let uses = uses(&readings, &name)?;
    if uses.is_empty() {
        return Ok(Status::Unused);
    }
    let shown = path.to_string_lossy();
    let device = if shown == device { device.to_string() } else { format!("{device} ({shown})") };
    Ok(Status::InUse(InUse { device, uses }))
}

/// Bytes a block device holds (`/sys/class/block/NAME/size` counts 512-byte sectors),
/// `None` when `device` is not a block device here.
pub fn size_bytes(device: &str) -> Option<u64> {
    let (_, dev) = block_device(device).ok()??;
    let sys = Path::new("/sys");
    let name = sysfs_name(sys, dev).ok()?;
    let sectors: u64 =
        std::fs::read_to_string(class_block(sys, &name).join("size")).ok()?.trim().parse().ok()?;
    Some(sectors.saturating_mul(512))
}

/// The mounts of every other mount namespace on the machine (containers, chroots in
/// namespaces of their own, rootless Podman): a disk mounted only inside a container is
/// just as much in use. Each mountpoint names its namespace, `/data (in the mount
/// namespace of pid 4242)`.
fn other_namespace_mounts() -> Vec<MountEntry> {
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let mut seen: HashSet<PathBuf> = namespace("self").into_iter().collect();
    let mut mounts = Vec::new();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    for pid in pids {
        // A process that ends meanwhile, or one we may not look into, has nothing to add
        // that the kernel would let us read; root reads them all.
        let Some(ns) = namespace(&pid.to_string()) else { continue };
        if !seen.insert(ns) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else { continue };
        mounts.extend(mountinfo::parse(&text).into_iter().map(|mut m| {
            m.mountpoint = format!("{} (in the mount namespace of pid {pid})", m.mountpoint);
            m
        }));
    }
    mounts
}

fn read(path: &str) -> io::Result<String> {
    std::fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))
}

/// The resolved path and device number of a block device, `None` for a path that is not
/// there or not a block device; a path that cannot be read (permissions) is an error, not
/// taken for absent.
fn block_device(path: &str) -> io::Result<Option<(PathBuf, DevNum)>> {
    let resolved = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = std::fs::metadata(&resolved)?;
    Ok(meta.file_type().is_block_device().then(|| (resolved, split_rdev(meta.rdev()))))
}

fn split_rdev(rdev: u64) -> DevNum {
    (rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

/// The block device an absolute path names; other sources (`tmpfs`, `server:/export`)
/// name none and are never looked up.
fn resolve_block_device(path: &str) -> Option<DevNum> {
    if !path.starts_with('/') {
        return None;
    }
    block_device(path).ok().flatten().map(|(_, dev)| dev)
}

/// The kernel's name of a block device (`vda1`, `dm-0`), from `/sys/dev/block/MAJ:MIN`.
fn sysfs_name(sys: &Path, (major, minor): DevNum) -> io::Result<String> {
    let link = sys.join(format!("dev/block/{major}:{minor}"));
    let target = std::fs::canonicalize(&link)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", link.display())))?;
    Ok(target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

fn class_block(sys: &Path, name: &str) -> PathBuf {
    sys.join("class/block").join(name)
}

/// Parses `MAJ:MIN`.
pub fn parse_dev(text: &str) -> Option<DevNum> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The paths of the active swap areas in `/proc/swaps` (devices and files alike).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(mountinfo::unescape).collect()
}

/// Entries of a sysfs directory; a directory that is not there has none, any other
/// failure is reported rather than taken for "nothing uses it".
fn entries(dir: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(list) => {
            let mut names = Vec::new();
            for e in list {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", dir.display()))),
    }
}

/// A file's contents, `None` when it is not there.
fn optional(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
    }
}

fn dev_number(sys: &Path, name: &str) -> io::Result<Option<DevNum>> {
    Ok(optional(&class_block(sys, name).join("dev"))?.as_deref().and_then(parse_dev))
}

/// `/dev/mapper/NAME` for device-mapper devices, else `/dev/NAME` (sysfs writes `/` as `!`).
fn shown(sys: &Path, name: &str) -> io::Result<String> {
    Ok(match optional(&class_block(sys, name).join("dm/name"))? {
        Some(dm) if !dm.is_empty() => format!("/dev/mapper/{dm}"),
        _ => format!("/dev/{}", name.replace('!', "/")),
    })
}

/// The partitions of a whole disk: its sysfs subdirectories that have a `partition` file.
fn partitions(sys: &Path, name: &str) -> io::Result<Vec<String>> {
    let dir = class_block(sys, name);
    Ok(entries(&dir)?.into_iter().filter(|p| dir.join(p).join("partition").is_file()).collect())
}

/// The devices of each mounted btrfs filesystem (`/sys/fs/btrfs/UUID/devices/`), so a
/// mount of a multi-device filesystem counts against every device in it.
fn btrfs_filesystems(sys: &Path) -> io::Result<Vec<Vec<DevNum>>> {
    let root = sys.join("fs/btrfs");
    let mut filesystems = Vec::new();
    for uuid in entries(&root)? {
        let mut devices = Vec::new();
        for name in entries(&root.join(&uuid).join("devices"))? {
            devices.extend(dev_number(sys, &name)?);
        }
        if !devices.is_empty() {
            filesystems.push(devices);
        }
    }
    Ok(filesystems)
}

/// Loop devices and the block device each is backed by (loops over plain files have none).
fn loop_backings(r: &Readings) -> io::Result<Vec<(String, DevNum)>> {
    let mut backings = Vec::new();
    for name in entries(&r.sys.join("class/block"))?.into_iter().filter(|n| n.starts_with("loop")) {
        if let Some(file) = optional(&class_block(r.sys, &name).join("loop/backing_file"))? {
            backings.extend((r.resolve)(&file).map(|dev| (name, dev)));
        }
    }
    Ok(backings)
}

/// Whether a mount is of the filesystem on `dev`. btrfs shows an anonymous `0:NN` device
/// number, so the source path counts too, and for btrfs every device of its filesystem.
pub fn mount_is_on(
    mount: &MountEntry,
    dev: DevNum,
    btrfs: &[Vec<DevNum>],
    resolve: &dyn Fn(&str) -> Option<DevNum>,
) -> bool {
    if parse_dev(&mount.device_number) == Some(dev) {
        return true;
    }
    let Some(source) = resolve(&mount.source) else { return false };
    source == dev
        || (mount.fs_type == "btrfs" && btrfs.iter().any(|fs| fs.contains(&source) && fs.contains(&dev)))
}

/// `DEV is mounted at A, B (btrfs)` for each filesystem type of the mounts on `dev`.
pub fn describe_mounts(device: &str, mounts: &[&MountEntry]) -> Vec<String> {
    const SHOWN: usize = 3;
    let mut types: Vec<&str> = Vec::new();
    for m in mounts {
        if !types.contains(&m.fs_type.as_str()) {
            types.push(&m.fs_type);
        }
    }
    types
        .into_iter()
        .map(|fs| {
            let points: Vec<&str> =
                mounts.iter().filter(|m| m.fs_type == fs).map(|m| m.mountpoint.as_str()).collect();
            let more = points.len().saturating_sub(SHOWN);
            let mut list = points[..points.len().min(SHOWN)].join(", ");
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            format!("{device} is mounted at {list} ({fs})")
        })
        .collect()
}

/// What uses the block device `name` (its sysfs name), its partitions, and whatever is
/// built on them, followed up to the top. Empty when nothing does.
pub fn uses(r: &Readings, name: &str) -> io::Result<Vec<String>> {
    let btrfs = btrfs_filesystems(r.sys)?;
    let loops = loop_backings(r)?;
    let mut walk = Walk {
        r,
        btrfs: &btrfs,
        loops: &loops,
        others: std::cell::OnceCell::new(),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    walk.device(name)?;
    Ok(walk.out)
}

struct Walk<'a> {
    r: &'a Readings<'a>,
    btrfs: &'a [Vec<DevNum>],
    loops: &'a [(String, DevNum)],
    /// The other namespaces' mounts, once read.
    others: std::cell::OnceCell<Vec<MountEntry>>,
    seen: HashSet<String>,
    out: Vec<String>,
}

impl Walk<'_> {
    fn device(&mut self, name: &str) -> io::Result<()> {
        if !self.seen.insert(name.to_string()) {
            return Ok(());
        }
        let mut members = vec![name.to_string()];
        members.extend(partitions(self.r.sys, name)?);
        for member in &members {
            self.member(member)?;
        }
        Ok(())
    }

    fn member(&mut self, name: &str) -> io::Result<()> {
        let sys = self.r.sys;
        let device = shown(sys, name)?;
        if let Some(dev) = dev_number(sys, name)? {
            let on_dev = |m: &&MountEntry| mount_is_on(m, dev, self.btrfs, self.r.resolve);
            let mut mounts: Vec<&MountEntry> = self.r.mounts.iter().filter(on_dev).collect();
            // Our own mounts say it best; other namespaces matter when we see none.
            if mounts.is_empty() {
                mounts = self.others.get_or_init(self.r.other_namespaces).iter().filter(on_dev).collect();
            }
            self.out.extend(describe_mounts(&device, &mounts));
            if self.r.swaps.iter().any(|s| (self.r.resolve)(s) == Some(dev)) {
                self.out.push(format!("{device} is active swap"));
            }
            let loops: Vec<String> =
                self.loops.iter().filter(|(_, b)| *b == dev).map(|(l, _)| l.clone()).collect();
            for looped in loops {
                self.out.push(format!("{device} backs the loop device /dev/{looped}"));
                self.device(&looped)?;
            }
        }
        let holders = entries(&class_block(sys, name).join("holders"))?;
        for holder in holders {
            self.out.push(format!("{device} is held by {}", shown(sys, &holder)?));
            self.device(&holder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SWAPS: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
        /dev/zram0                              partition\t4194300\t\t0\t\t100\n\
        /var/swap\\040file                       file\t\t1048572\t\t0\t\t-2\n";

    #[test]
    fn swaps_are_read_with_their_escapes() {
        assert_eq!(parse_swaps(SWAPS), ["/dev/zram0", "/var/swap file"]);
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn device_numbers_parse() {
        assert_eq!(parse_dev("254:1\n"), Some((254, 1)));
        assert_eq!(parse_dev("254"), None);
        assert_eq!(parse_dev("a:1"), None);
    }

    const MOUNTS: &str = "\
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
40 27 0:45 /@data /srv rw - btrfs /dev/loop3 rw,subvol=/@data
41 27 0:45 /@logs /var/log rw - btrfs /dev/loop3 rw,subvol=/@logs
42 27 0:46 / /tmp rw - tmpfs tmpfs rw
";

    fn resolver(map: &[(&str, DevNum)]) -> impl Fn(&str) -> Option<DevNum> {
        let map: HashMap<String, DevNum> = map.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        move |p| map.get(p).copied()
    }

    #[test]
    fn btrfs_mounts_match_by_source_and_by_filesystem_member() {
        let mounts = mountinfo::parse(MOUNTS);
        let resolve = resolver(&[("/dev/vda1", (254, 1)), ("/dev/loop3", (7, 3))]);
        let btrfs = vec![vec![(7, 3), (7, 4)]];
        let on = |dev| -> Vec<u64> {
            mounts.iter().filter(|m| mount_is_on(m, dev, &btrfs, &resolve)).map(|m| m.mount_id).collect()
        };
        assert_eq!(on((254, 1)), [27], "by device number");
        assert_eq!(on((7, 3)), [40, 41], "an anonymous 0:NN btrfs mount matches by its source");
        assert_eq!(on((7, 4)), [40, 41], "the second device of a two-device btrfs");
        assert!(on((7, 5)).is_empty());
        // Without the btrfs device list the second device is not seen.
        assert!(mounts.iter().all(|m| !mount_is_on(m, (7, 4), &[], &resolve)));
    }

    #[test]
    fn mounts_are_described_per_filesystem_type() {
        let mounts = mountinfo::parse(MOUNTS);
        let refs: Vec<&MountEntry> = mounts.iter().collect();
        assert_eq!(
            describe_mounts("/dev/x", &refs),
            [
                "/dev/x is mounted at / (ext4)",
                "/dev/x is mounted at /srv, /var/log (btrfs)",
                "/dev/x is mounted at /tmp (tmpfs)"
            ]
        );
        let many: Vec<MountEntry> = (0..5)
            .map(|i| mountinfo::parse(&format!("{i} 1 0:45 / /m{i} rw - btrfs /dev/loop3 rw"))[0].clone())
            .collect();
        let refs: Vec<&MountEntry> = many.iter().collect();
        assert_eq!(
            describe_mounts("/dev/loop3", &refs),
            ["/dev/loop3 is mounted at /m0, /m1, /m2 and 2 more (btrfs)"]
        );
    }

    /// A fake sysfs: `class/block/NAME` directories (partitions inside their disk, linked
    /// from `class/block` as the kernel does), holders, loop backing files, dm names.
    struct FakeSys(PathBuf);

    impl FakeSys {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("podfs-sysfs-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("class/block")).unwrap();
            FakeSys(p)
        }
        fn disk(&self, name: &str, dev: &str) -> &Self {
            let d = self.0.join("class/block").join(name);
            std::fs::create_dir_all(d.join("holders")).unwrap();
            std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
            self
        }
        fn partition(&self, disk: &str, name: &str, dev: &str) -> &Self {
            let d = self.0.join("class/block").join(disk).join(name);
            std::fs::create_dir_all(d.join("holders")).unwrap();
            std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
            std::fs::write(d.join("partition"), "1\n").unwrap();
            std::os::unix::fs::symlink(&d, self.0.join("class/block").join(name)).unwrap();
            self
        }
        fn holds(&self, lower: &str, upper: &str) -> &Self {
            let up = self.0.join("class/block").join(upper);
            std::os::unix::fs::symlink(
                &up,
                self.0.join("class/block").join(lower).join("holders").join(upper),
            )
            .unwrap();
            self
        }
        fn write(&self, name: &str, file: &str, text: &str) -> &Self {
            let p = self.0.join("class/block").join(name).join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
            self
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn walk(sys: &FakeSys, mounts: &str, swaps: &[&str], name: &str) -> Vec<String> {
        walk_with(sys, mounts, "", swaps, name).0
    }

    /// [`walk`] with `others` as the other namespaces' mounts; also how often they were read.
    fn walk_with(
        sys: &FakeSys,
        mounts: &str,
        others: &str,
        swaps: &[&str],
        name: &str,
    ) -> (Vec<String>, usize) {
        let mounts = mountinfo::parse(mounts);
        let reads = std::cell::Cell::new(0);
        let other_namespaces = || {
            reads.set(reads.get() + 1);
            mountinfo::parse(others)
        };
        let swaps: Vec<String> = swaps.iter().map(|s| s.to_string()).collect();
        let resolve = resolver(&[
            ("/dev/vda1", (254, 1)),
            ("/dev/vdb", (254, 16)),
            ("/dev/mapper/vg-root", (253, 1)),
            ("/dev/md0", (9, 0)),
            ("/dev/loop3", (7, 3)),
        ]);
        let r = Readings {
            sys: &sys.0,
            mounts: &mounts,
            other_namespaces: &other_namespaces,
            swaps: &swaps,
            resolve: &resolve,
        };
        let found = uses(&r, name).unwrap();
        (found, reads.get())
    }

    #[test]
    fn other_namespaces_are_read_once_and_only_when_our_mounts_show_nothing() {
        let sys = FakeSys::new("namespaces");
        sys.disk("vda", "254:0").partition("vda", "vda1", "254:1").partition("vda", "vda2", "254:2");
        let ours = "30 27 254:1 / /boot rw - vfat /dev/vda1 rw\n";
        let theirs = "40 1 254:2 / /data rw - ext4 /dev/vda2 rw\n";
        assert_eq!(
            walk_with(&sys, ours, theirs, &[], "vda1"),
            (vec!["/dev/vda1 is mounted at /boot (vfat)".into()], 0)
        );
        let (found, reads) = walk_with(&sys, ours, theirs, &[], "vda");
        assert_eq!(reads, 1, "{found:?}");
        assert!(found.contains(&"/dev/vda2 is mounted at /data (ext4)".to_string()), "{found:?}");
    }

    #[test]
    fn a_disk_is_in_use_through_its_partitions_and_what_they_hold_up() {
        let sys = FakeSys::new("stack");
        sys.disk("vda", "254:0")
            .partition("vda", "vda1", "254:1")
            .partition("vda", "vda2", "254:2")
            .disk("md0", "9:0")
            .disk("dm-1", "253:1")
            .write("dm-1", "dm/name", "vg-root\n")
            .holds("vda2", "md0")
            .holds("md0", "dm-1");
        let mounts = "27 1 253:1 / / rw - ext4 /dev/mapper/vg-root rw\n\
                      30 27 254:1 / /boot rw - vfat /dev/vda1 rw\n";
        assert_eq!(
            walk(&sys, mounts, &[], "vda"),
            [
                "/dev/vda1 is mounted at /boot (vfat)",
                "/dev/vda2 is held by /dev/md0",
                "/dev/md0 is held by /dev/mapper/vg-root",
                "/dev/mapper/vg-root is mounted at / (ext4)",
            ]
        );
        // Named as a partition or as the device-mapper device itself.
        assert_eq!(walk(&sys, mounts, &[], "vda1"), ["/dev/vda1 is mounted at /boot (vfat)"]);
        assert_eq!(walk(&sys, mounts, &[], "dm-1"), ["/dev/mapper/vg-root is mounted at / (ext4)"]);
        // A holder that nothing mounts still holds the disk.
        assert_eq!(
            walk(&sys, "", &[], "vda2"),
            ["/dev/vda2 is held by /dev/md0", "/dev/md0 is held by /dev/mapper/vg-root"]
        );
        assert!(walk(&sys, "", &[], "vda1").is_empty());
    }

    #[test]
    fn swap_loop_backing_and_multi_device_btrfs_count() {
        let sys = FakeSys::new("misc");
        sys.disk("vdb", "254:16")
            .disk("vdc", "254:32")
            .disk("loop3", "7:3")
            .write("loop3", "loop/backing_file", "/dev/vdb\n")
            .disk("loop4", "7:4")
            .write("loop4", "loop/backing_file", "/var/lib/img\n")
            .disk("zram0", "253:0");
        let fs = sys.0.join("fs/btrfs/0b8e-uuid/devices");
        std::fs::create_dir_all(&fs).unwrap();
        for d in ["loop3", "vdc"] {
            std::os::unix::fs::symlink(sys.0.join("class/block").join(d), fs.join(d)).unwrap();
        }
        std::fs::create_dir_all(sys.0.join("fs/btrfs/features")).unwrap();
        let mounts = "40 1 0:45 / /srv rw - btrfs /dev/loop3 rw\n";
        assert_eq!(
            walk(&sys, mounts, &[], "vdb"),
            ["/dev/vdb backs the loop device /dev/loop3", "/dev/loop3 is mounted at /srv (btrfs)"]
        );
        assert_eq!(walk(&sys, mounts, &[], "vdc"), ["/dev/vdc is mounted at /srv (btrfs)"]);
        assert_eq!(
            walk(&sys, "", &["/dev/vdb"], "vdb"),
            ["/dev/vdb is active swap", "/dev/vdb backs the loop device /dev/loop3"]
        );
        assert!(walk(&sys, "", &[], "loop4").is_empty(), "a loop over a plain file is unused until mounted");
        assert!(walk(&sys, mounts, &["/var/swap"], "zram0").is_empty());
    }
}
