//! `migrate --to-disk DEV`: the new disk. Reading its btrfs superblock, refusing a disk
//! that is not an empty btrfs of its own, naming its subvolumes, and mounting: its top
//! level privately under the state directory while the data is copied, each subvolume at
//! the path Podman knows once the copy is verified. Nothing here formats a disk: DEV is
//! a btrfs that disko made with the plan, or an empty one the user names.

use super::journal::{Role, Target};
use crate::error::Error;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The plan's subvolume for graphroot (src/decide/layout.rs).
pub const GRAPHROOT_SUBVOLUME: &str = "@containers-storage";
/// The plan's subvolume for the named-volume path when it lies outside graphroot.
pub const VOLUMES_SUBVOLUME: &str = "@containers-volumes";

/// Where btrfs keeps its primary superblock, and the magic that marks one.
const SUPERBLOCK_OFFSET: u64 = 0x10000;
const MAGIC: &[u8; 8] = b"_BHRfS_M";

/// What the superblock of a btrfs says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The filesystem UUID (`blkid`'s UUID), lowercase with dashes.
    pub uuid: String,
    pub total_bytes: u64,
    pub num_devices: u64,
}

/// Parses a btrfs superblock (4 KiB read at 64 KiB); `None` when the magic is missing.
pub fn parse_superblock(block: &[u8]) -> Option<Superblock> {
    let u64_at =
        |at: usize| block.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if block.get(0x40..0x48)? != MAGIC {
        return None;
    }
    let fsid = block.get(0x20..0x30)?;
    let hex: String = fsid.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
    Some(Superblock { uuid, total_bytes: u64_at(0x70)?, num_devices: u64_at(0x88)? })
}

/// The subvolume a target gets on the new disk: the plan's names for graphroot and the
/// volume path, `@volume-NAME` for a volume of a class with a subvolume of its own.
pub fn subvolume_name(role: &Role) -> Result<String, String> {
    match role {
        Role::Graphroot => Ok(GRAPHROOT_SUBVOLUME.into()),
        Role::VolumePath => Ok(VOLUMES_SUBVOLUME.into()),
        Role::Volume(name) => {
            if name.is_empty() || name.contains('/') || name.contains("..") || name.contains('\0') {
                return Err(format!(
                    "volume {name:?}: its name cannot name a subvolume (empty, `/` or `..`)"
                ));
            }
            Ok(format!("@volume-{name}"))
        }
    }
}

/// Checks DEV before anything is planned on it: a block device holding btrfs. Returns
/// the resolved device path and its superblock. Not a block device is bad input (exit 2);
/// not btrfs is a refusal (exit 3).
pub fn open_device(dev: &str) -> Result<(PathBuf, Superblock), Error> {
    let resolved = std::fs::canonicalize(dev).map_err(|e| {
        Error::Usage(format!("--to-disk {dev}: {e}\n  = help: name the new disk's block device"))
    })?;
    let meta = std::fs::metadata(&resolved).map_err(|e| Error::io(&resolved, "read", e))?;
    if !meta.file_type().is_block_device() {
        return Err(Error::Usage(format!(
            "--to-disk {dev}: not a block device\n  = help: name the new disk's block device, e.g. \
             /dev/disk/by-id/…"
        )));
    }
    let mut block = vec![0u8; 4096];
    let read = std::fs::File::open(&resolved).and_then(|f| {
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut block, SUPERBLOCK_OFFSET)
    });
    let sb = match read {
        Ok(()) => parse_superblock(&block),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(Error::io(&resolved, "read the superblock of", e)),
    };
    let Some(sb) = sb else {
        return Err(Error::Environment(format!(
            "--to-disk {dev}: holds no btrfs; migrate never formats a disk\n  = help: format it with \
             the plan's disko.nix, or `mkfs.btrfs {dev}` if it holds nothing you need, then run migrate again"
        )));
    };
    if sb.num_devices != 1 {
        return Err(Error::Environment(format!(
            "--to-disk {dev}: the btrfs on it spans {} devices; migrate moves data onto a btrfs of one device",
            sb.num_devices
        )));
    }
    Ok((resolved, sb))
}

/// `(major, minor)` of a block device path.
fn devnum(path: &Path) -> Option<(u32, u32)> {
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| (rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev())))
}

/// Whether the filesystem graphroot is on (`source`, its mount source) is DEV or one of
/// its partitions.
pub fn holds(dev: &Path, source: &str) -> bool {
    let (Some(d), Some(s)) = (devnum(dev), devnum(Path::new(source))) else { return false };
    if d == s {
        return true;
    }
    // A partition's sysfs directory lies inside its disk's.
    let sys = |(maj, min): (u32, u32)| std::fs::canonicalize(format!("/sys/dev/block/{maj}:{min}")).ok();
    match (sys(d), sys(s)) {
        (Some(disk), Some(part)) => part.parent() == Some(disk.as_path()),
        _ => false,
    }
}

/// Refuses DEV when something on this machine uses it (mounted anywhere, swap, holders).
pub fn refuse_in_use(dev: &str) -> Result<(), Error> {
    match crate::inspect::blockdev::status(dev).map_err(|e| Error::Environment(e.to_string()))? {
        crate::inspect::blockdev::Status::InUse(u) => Err(Error::Environment(format!(
            "--to-disk {u}\n  = help: migrate writes only to a disk nothing uses; unmount it (and \
             remove it from /etc/fstab), or name another disk"
        ))),
        _ => Ok(()),
    }
}

/// One entry of the new disk's top level as it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    pub name: String,
    pub subvolume: bool,
    pub empty: bool,
}

/// Subvolumes a data disk formatted with a plan's disko.nix has besides this migration's
/// (src/decide/layout.rs): `@podfs-CLASS` and these.
const PLANNED: [&str; 4] = ["@containers-volumes", "@containers-users", "@containers-tmp", "@snapshots"];

/// What in DEV's top level stands in the way: anything but empty subvolumes named in
/// `allowed` or by a plan. Pure, for the unit tests.
pub fn unexpected_in_top(entries: &[TopEntry], allowed: &[String]) -> Vec<String> {
    let named = |n: &str| allowed.iter().any(|a| a == n) || PLANNED.contains(&n) || n.starts_with("@podfs-");
    entries
        .iter()
        .filter(|e| !(e.subvolume && e.empty && named(&e.name)))
        .map(|e| match (e.subvolume, e.empty, named(&e.name)) {
            (false, _, _) => format!("{} (not a subvolume)", e.name),
            (true, false, _) => format!("{} (a subvolume that holds data)", e.name),
            _ => format!("{} (a subvolume the plan does not name)", e.name),
        })
        .collect()
}

/// The entries of a mounted top level.
pub fn read_top(top: &Path) -> Result<Vec<TopEntry>, Error> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(top).map_err(|e| Error::io(top, "read", e))? {
        let e = e.map_err(|e| Error::io(top, "read", e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(e.path()).map_err(|err| Error::io(e.path(), "read", err))?;
        let subvolume = meta.is_dir() && meta.ino() == crate::btrfs::SUBVOLUME_ROOT_INO;
        let empty = subvolume
            && std::fs::read_dir(e.path()).map_err(|err| Error::io(e.path(), "read", err))?.next().is_none();
        out.push(TopEntry { name, subvolume, empty });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The mount at exactly `at`, when there is one.
pub fn mount_at(at: &Path) -> Result<Option<crate::inspect::mountinfo::MountEntry>, Error> {
    let mounts = crate::inspect::read_mounts().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
    Ok(mounts.into_iter().rev().find(|m| Path::new(&m.mountpoint) == at))
}

/// Whether `at` is a mount of `subvolume` (`/` for the top level) of the btrfs on `dev`.
pub fn is_mounted(at: &Path, dev: &Path, subvolume: &str) -> Result<bool, Error> {
    let Some(m) = mount_at(at)? else { return Ok(false) };
    let want = format!("/{}", subvolume.trim_start_matches('/'));
    let same_device = devnum(Path::new(&m.source)).is_some() && devnum(Path::new(&m.source)) == devnum(dev);
    Ok(same_device && m.fs_type == "btrfs" && (m.root == want || m.subvolume() == want))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let out = cmd.output().map_err(|e| Error::Environment(format!("{what}: cannot run {cmd:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Environment(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// Mounts `subvolume` of DEV at `at` with `options` (mount(8) turns `noatime` and the
/// like into flags), unless it is mounted there already; a private mount, so it is not
/// propagated into other mount namespaces.
pub fn mount(
    dev: &Path,
    subvolume: &str,
    options: &[String],
    at: &Path,
    read_only: bool,
) -> Result<(), Error> {
    if is_mounted(at, dev, subvolume)? {
        return Ok(());
    }
    let mut opts =
        vec![if subvolume == "/" { "subvolid=5".to_string() } else { format!("subvol={subvolume}") }];
    if read_only {
        opts.push("ro".into());
    }
    opts.extend(options.iter().cloned());
    let what = format!("mounting {subvolume} of {} at {}", dev.display(), at.display());
    run(Command::new("mount").args(["-t", "btrfs", "-o", &opts.join(",")]).arg(dev).arg(at), &what)?;
    run(Command::new("mount").arg("--make-private").arg(at), &what)
}

/// Unmounts what is mounted at `at` when it is `subvolume` of DEV; never lazily: a busy
/// mount is an error that names it.
pub fn unmount(at: &Path, dev: &Path, subvolume: &str) -> Result<bool, Error> {
    if !is_mounted(at, dev, subvolume)? {
        return Ok(false);
    }
    run(Command::new("umount").arg(at), &format!("unmounting {}", at.display()))?;
    Ok(true)
}

/// The filesystem-wide mount options the plan gives the container filesystem:
/// `noatime` and zstd compression at the strategy's level (crate::decide::options), plus
/// `ssd,discard=async` on a solid-state disk, told apart as the plan does.
pub fn mount_options(strategy: crate::decide::Strategy, dev: &Path) -> Vec<String> {
    let disk = dev.display().to_string();
    let host = crate::inventory::Host {
        name: String::new(),
        ssd: crate::scan::profile::solid_state(&disk),
        disk,
        mode: crate::inventory::DiskMode::DataDisk,
        disk_size: 0,
        rootless: false,
    };
    crate::decide::options::filesystem_options(&host, strategy, crate::decide::Driver::Overlay)
}

/// Where DEV's top level is mounted while the data is copied.
pub fn top_dir(state: &Path, stamp: &str) -> PathBuf {
    state.join(format!("disk-{stamp}"))
}

/// Makes the directory a subvolume is mounted on: empty, with the owner and mode of the
/// directory it replaces.
pub fn make_mountpoint(at: &Path, like: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(like).map_err(|e| Error::io(like, "read", e))?;
    match std::fs::create_dir(at) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(at, "create directory", e)),
    }
    std::os::unix::fs::chown(at, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| Error::io(at, "chown", e))?;
    std::fs::set_permissions(at, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| Error::io(at, "chmod", e))?;
    let dir = at.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync", e))
}

/// Which targets lie inside which: `Some(i)` when the target's path is below target `i`'s.
pub fn nesting(targets: &[Target]) -> Vec<Option<usize>> {
    targets
        .iter()
        .map(|t| {
            targets
                .iter()
                .enumerate()
                .filter(|(_, o)| t.path.starts_with(&o.path) && t.path != o.path)
                .max_by_key(|(_, o)| o.path.components().count())
                .map(|(i, _)| i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superblock(uuid: [u8; 16], total: u64, devices: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0x20..0x30].copy_from_slice(&uuid);
        b[0x40..0x48].copy_from_slice(MAGIC);
        b[0x70..0x78].copy_from_slice(&total.to_le_bytes());
        b[0x88..0x90].copy_from_slice(&devices.to_le_bytes());
        b
    }

    #[test]
    fn the_superblock_gives_uuid_size_and_devices_and_anything_else_is_not_btrfs() {
        let uuid = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8];
        let sb = parse_superblock(&superblock(uuid, 1 << 30, 1)).unwrap();
        assert_eq!(
            sb,
            Superblock {
                uuid: "12345678-9abc-def0-0102-030405060708".into(),
                total_bytes: 1 << 30,
                num_devices: 1,
            }
        );
        assert_eq!(parse_superblock(&[0u8; 4096]), None);
        assert_eq!(parse_superblock(&[0u8; 10]), None);
    }

    #[test]
    fn subvolume_names_follow_the_plan_and_refuse_names_that_leave_the_top_level() {
        assert_eq!(subvolume_name(&Role::Graphroot).unwrap(), "@containers-storage");
        assert_eq!(subvolume_name(&Role::VolumePath).unwrap(), "@containers-volumes");
        assert_eq!(subvolume_name(&Role::Volume("pgdata".into())).unwrap(), "@volume-pgdata");
        for bad in ["a/b", "..", "x..y", ""] {
            assert!(subvolume_name(&Role::Volume(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_empty_subvolumes_the_plan_names_may_be_in_the_top_level() {
        let e = |name: &str, subvolume, empty| TopEntry { name: name.into(), subvolume, empty };
        let allowed = vec!["@containers-storage".to_string(), "@volume-db".to_string()];
        let planned = [
            e("@containers-storage", true, true),
            e("@podfs-database", true, true),
            e("@snapshots", true, true),
        ];
        assert!(unexpected_in_top(&planned, &allowed).is_empty());
        assert_eq!(
            unexpected_in_top(
                &[
                    e("@volume-db", true, false),
                    e("lost+found", false, false),
                    e("@home", true, true),
                    e("@containers-storage", true, true)
                ],
                &allowed
            ),
            [
                "@volume-db (a subvolume that holds data)",
                "lost+found (not a subvolume)",
                "@home (a subvolume the plan does not name)"
            ]
        );
    }
}
