//! `/proc/self/mountinfo`: which mount holds a path, the subvolume it mounts, and its
//! effective options. The kernel lists per-mount options (field 6) apart from the
//! superblock's (field 11), which for btrfs are the filesystem-wide ones in force.

use serde::Serialize;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountEntry {
    pub mount_id: u64,
    pub parent_id: u64,
    /// `major:minor` of the filesystem.
    pub device_number: String,
    /// Path inside the filesystem that is mounted (for btrfs: the subvolume, `/@home`).
    pub root: String,
    pub mountpoint: String,
    /// Per-mount options (`rw,noatime,…`).
    pub mount_options: Vec<String>,
    pub fs_type: String,
    /// The device or source, e.g. `/dev/nvme0n1p2`.
    pub source: String,
    /// Superblock options: for btrfs, the filesystem-wide options in force.
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// The subvolume a btrfs mount shows (`subvol=` in the superblock options), else its root.
    pub fn subvolume(&self) -> &str {
        self.super_options.iter().find_map(|o| o.strip_prefix("subvol=")).unwrap_or(&self.root)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = digits
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn options(field: &str) -> Vec<String> {
    field.split(',').filter(|o| !o.is_empty()).map(String::from).collect()
}

/// Parses mountinfo text; malformed lines are skipped rather than failing the whole scan.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    Some(MountEntry {
        mount_id: l[0].parse().ok()?,
        parent_id: l[1].parse().ok()?,
        device_number: l[2].to_string(),
        root: unescape(l[3]),
        mountpoint: unescape(l[4]),
        mount_options: options(l[5]),
        fs_type: r[0].to_string(),
        source: unescape(r[1]),
        super_options: options(r[2]),
    })
}

/// The mount that holds `path` (absolute, symlinks resolved): the longest mountpoint
/// containing it, and of equal ones the last listed, which shadows the others.
pub fn mount_of<'a>(mounts: &'a [MountEntry], path: &str) -> Option<&'a MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| crate::layout::path_is_under(path, &m.mountpoint))
        .max_by_key(|(i, m)| (m.mountpoint.len(), *i))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - btrfs /dev/nvme0n1p2 rw,compress=zstd:1,ssd,discard=async,space_cache=v2,subvolid=256,subvol=/@root
35 22 0:21 /@containers-storage /var/lib/containers/storage rw,noatime shared:2 - btrfs /dev/nvme0n1p2 rw,compress=zstd:1,ssd,discard=async,space_cache=v2,subvolid=258,subvol=/@containers-storage
36 22 0:40 / /mnt/with\\040space rw - ext4 /dev/sdb1 rw
37 22 0:41 / /var/lib/containers/storage rw - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].subvolume(), "/@containers-storage");
        assert_eq!(m[1].mount_options, ["rw", "noatime"]);
        assert!(m[1].super_options.contains(&"compress=zstd:1".to_string()));
        assert_eq!(m[2].mountpoint, "/mnt/with space");
    }

    #[test]
    fn the_deepest_and_latest_mount_wins() {
        let m = parse(SAMPLE);
        assert_eq!(mount_of(&m, "/etc").unwrap().mount_id, 22);
        // Mount 37 shadows 35 at the same mountpoint.
        assert_eq!(mount_of(&m, "/var/lib/containers/storage/volumes/x").unwrap().mount_id, 37);
        assert_eq!(mount_of(&m[..2], "/var/lib/containers/storage/volumes/x").unwrap().mount_id, 35);
    }
}
