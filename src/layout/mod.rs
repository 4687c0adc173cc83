//! `Layout`: disks, partitions, btrfs filesystems and subvolumes with their mount options
//! and per-subvolume attributes. `decide` produces one; the disko renderer writes it and
//! the validator reads a disko.nix back into one, so both speak of the same thing.

use serde::Serialize;
use std::fmt;

/// Per-subvolume compression, set with `btrfs property set DIR compression VALUE`.
/// The property has no level; the level comes from the filesystem-wide mount option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Lzo,
    Zlib,
    /// Never compress new files here, whatever the mount options say (kernel ≥ 5.14).
    None,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lzo => "lzo",
            Compression::Zlib => "zlib",
            Compression::None => "none",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A btrfs subvolume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subvolume {
    /// Name below the top-level subvolume, e.g. `@containers-storage`.
    pub name: String,
    /// Where it is mounted; disko mounts a subvolume only when this is set.
    pub mountpoint: Option<String>,
    /// Options of its mount (disko adds `subvol=NAME` itself).
    pub mount_options: Vec<String>,
    /// `chattr +C` on the empty subvolume root: no copy-on-write, checksums or compression.
    pub nocow: bool,
    /// `btrfs property set … compression`, when planned.
    pub compression: Option<Compression>,
    /// What it holds, for comments and reports.
    pub purpose: Option<String>,
}

/// A btrfs filesystem with its subvolumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Btrfs {
    /// Where this filesystem's attributes are in a loaded disko file, e.g.
    /// `disko.devices.disk.main.content.partitions.root.content`; empty for generated ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attr_path: Vec<String>,
    pub extra_args: Vec<String>,
    /// Mountpoint of the top-level subvolume itself (rarely used).
    pub mountpoint: Option<String>,
    pub mount_options: Vec<String>,
    pub subvolumes: Vec<Subvolume>,
}

/// A filesystem other than btrfs (the ESP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// As [`Btrfs::attr_path`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attr_path: Vec<String>,
    pub format: String,
    pub mountpoint: Option<String>,
    pub mount_options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Filesystem(Filesystem),
    Btrfs(Btrfs),
}

/// A gpt partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub name: String,
    /// disko size: `100%` or `[0-9]+[KMGTP]?`.
    pub size: String,
    /// sgdisk type code, e.g. `EF00` for an ESP.
    pub type_code: Option<String>,
    pub priority: Option<u32>,
    pub content: Content,
}

/// A disk with a gpt partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Attribute name under `disko.devices.disk`.
    pub name: String,
    pub device: String,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub disks: Vec<Disk>,
}

impl Layout {
    pub fn btrfs_filesystems(&self) -> impl Iterator<Item = &Btrfs> {
        self.disks.iter().flat_map(|d| &d.partitions).filter_map(|p| match &p.content {
            Content::Btrfs(b) => Some(b),
            Content::Filesystem(_) => None,
        })
    }

    pub fn subvolumes(&self) -> impl Iterator<Item = &Subvolume> {
        self.btrfs_filesystems().flat_map(|b| &b.subvolumes)
    }

    /// The subvolume whose mount holds `path`: the one mounted at its longest prefix.
    pub fn subvolume_for_path(&self, path: &str) -> Option<&Subvolume> {
        self.subvolumes()
            .filter_map(|s| s.mountpoint.as_deref().map(|m| (m, s)))
            .filter(|(m, _)| path_is_under(path, m))
            .max_by_key(|(m, _)| m.len())
            .map(|(_, s)| s)
    }
}

/// What holds a path according to a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// A btrfs filesystem, through the subvolume mounted at the longest prefix (or its
    /// top level, when that is what is mounted there).
    Btrfs { fs: &'a Btrfs, subvolume: Option<&'a Subvolume> },
    /// Another filesystem, e.g. `vfat` or `ext4`.
    Other(&'a Filesystem),
}

impl Layout {
    /// The mount in this layout whose mountpoint is the longest prefix of `path`.
    pub fn holder_of(&self, path: &str) -> Option<Holder<'_>> {
        let mut best: Option<(usize, Holder<'_>)> = None;
        for disk in &self.disks {
            for p in &disk.partitions {
                let candidates: Vec<(Option<&String>, Holder<'_>)> = match &p.content {
                    Content::Filesystem(f) => vec![(f.mountpoint.as_ref(), Holder::Other(f))],
                    Content::Btrfs(b) => {
                        std::iter::once((b.mountpoint.as_ref(), Holder::Btrfs { fs: b, subvolume: None }))
                            .chain(b.subvolumes.iter().map(|s| {
                                (s.mountpoint.as_ref(), Holder::Btrfs { fs: b, subvolume: Some(s) })
                            }))
                            .collect()
                    }
                };
                for (m, h) in candidates {
                    if let Some(m) = m.filter(|m| path_is_under(path, m))
                        && best.as_ref().is_none_or(|(len, _)| m.len() > *len)
                    {
                        best = Some((m.len(), h));
                    }
                }
            }
        }
        best.map(|(_, h)| h)
    }
}

/// `path` equals `dir` or lies below it (component-wise, not by string prefix).
pub fn path_is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Whether a mount option acts on one mount or on the whole btrfs filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptionScope {
    /// `subvol`/`subvolid` and generic VFS flags: each mount has its own.
    PerMount,
    /// Every other btrfs option: only the first mount of the filesystem sets it
    /// (btrfs-progs ch-mount-options.rst, ch-subvolume-intro.rst).
    FilesystemWide,
}

/// Every mount option a btrfs mount takes, by name without `=value`, with its scope:
/// btrfs(5)'s own (filesystem-wide but `subvol` and `subvolid`), then the generic flags
/// of the VFS, mount(8) and systemd: per mount those the VFS keeps per mount (atime,
/// nodev, nosuid, noexec, nosymfollow, ro) and those that never reach the kernel
/// (nofail, user, …); filesystem-wide the superblock's (sync, dirsync, iversion, mand,
/// SELinux contexts). `x-`/`X-` options (userspace only) are per mount too.
pub const MOUNT_OPTIONS: &[(&str, OptionScope)] = {
    use OptionScope::{FilesystemWide, PerMount};
    &[
        ("acl", FilesystemWide),
        ("noacl", FilesystemWide),
        ("autodefrag", FilesystemWide),
        ("noautodefrag", FilesystemWide),
        ("barrier", FilesystemWide),
        ("nobarrier", FilesystemWide),
        ("check_int", FilesystemWide),
        ("check_int_data", FilesystemWide),
        ("check_int_print_mask", FilesystemWide),
        ("clear_cache", FilesystemWide),
        ("commit", FilesystemWide),
        ("compress", FilesystemWide),
        ("compress-force", FilesystemWide),
        ("datacow", FilesystemWide),
        ("nodatacow", FilesystemWide),
        ("datasum", FilesystemWide),
        ("nodatasum", FilesystemWide),
        ("degraded", FilesystemWide),
        ("device", FilesystemWide),
        ("discard", FilesystemWide),
        ("nodiscard", FilesystemWide),
        ("enospc_debug", FilesystemWide),
        ("noenospc_debug", FilesystemWide),
        ("fatal_errors", FilesystemWide),
        ("flushoncommit", FilesystemWide),
        ("noflushoncommit", FilesystemWide),
        ("fragment", FilesystemWide),
        ("nologreplay", FilesystemWide),
        ("max_inline", FilesystemWide),
        ("metadata_ratio", FilesystemWide),
        ("inode_cache", FilesystemWide),
        ("noinode_cache", FilesystemWide),
        ("norecovery", FilesystemWide),
        ("recovery", FilesystemWide),
        ("rescan_uuid_tree", FilesystemWide),
        ("rescue", FilesystemWide),
        ("skip_balance", FilesystemWide),
        ("space_cache", FilesystemWide),
        ("nospace_cache", FilesystemWide),
        ("ssd", FilesystemWide),
        ("nossd", FilesystemWide),
        ("ssd_spread", FilesystemWide),
        ("nossd_spread", FilesystemWide),
        ("subvol", PerMount),
        ("subvolid", PerMount),
        ("subvolrootid", FilesystemWide),
        ("thread_pool", FilesystemWide),
        ("treelog", FilesystemWide),
        ("notreelog", FilesystemWide),
        ("usebackuproot", FilesystemWide),
        ("user_subvol_rm_allowed", FilesystemWide),
        ("alloc_start", FilesystemWide),
        ("subvol_rm_allowed", FilesystemWide),
        ("defaults", PerMount),
        ("ro", PerMount),
        ("rw", PerMount),
        ("sync", FilesystemWide),
        ("async", FilesystemWide),
        ("dirsync", FilesystemWide),
        ("atime", PerMount),
        ("noatime", PerMount),
        ("diratime", PerMount),
        ("nodiratime", PerMount),
        ("relatime", PerMount),
        ("norelatime", PerMount),
        ("strictatime", PerMount),
        ("nostrictatime", PerMount),
        ("lazytime", PerMount),
        ("nolazytime", PerMount),
        ("dev", PerMount),
        ("nodev", PerMount),
        ("exec", PerMount),
        ("noexec", PerMount),
        ("suid", PerMount),
        ("nosuid", PerMount),
        ("mand", FilesystemWide),
        ("nomand", FilesystemWide),
        ("iversion", FilesystemWide),
        ("noiversion", FilesystemWide),
        ("silent", FilesystemWide),
        ("loud", FilesystemWide),
        ("nosymfollow", PerMount),
        ("symfollow", PerMount),
        ("auto", PerMount),
        ("noauto", PerMount),
        ("nofail", PerMount),
        ("user", PerMount),
        ("nouser", PerMount),
        ("users", PerMount),
        ("owner", PerMount),
        ("group", PerMount),
        ("_netdev", PerMount),
        ("bind", PerMount),
        ("rbind", PerMount),
        ("remount", PerMount),
        ("context", FilesystemWide),
        ("fscontext", FilesystemWide),
        ("defcontext", FilesystemWide),
        ("rootcontext", FilesystemWide),
        ("seclabel", FilesystemWide),
        ("comment", PerMount),
        ("loop", PerMount),
        ("offset", PerMount),
        ("sizelimit", PerMount),
    ]
};

/// Whether `option` names a mount option of [`MOUNT_OPTIONS`] or an `x-` one.
pub fn known_option(option: &str) -> bool {
    let key = option_key(option);
    MOUNT_OPTIONS.iter().any(|(name, _)| *name == key) || userspace_only(key)
}

fn option_key(option: &str) -> &str {
    option.split('=').next().unwrap_or(option)
}

fn userspace_only(key: &str) -> bool {
    key.starts_with("x-") || key.starts_with("X-")
}

/// An option's scope; one this tool does not know counts as filesystem-wide.
pub fn option_scope(option: &str) -> OptionScope {
    let key = option_key(option);
    match MOUNT_OPTIONS.iter().find(|(name, _)| *name == key) {
        Some((_, scope)) => *scope,
        None if userspace_only(key) => OptionScope::PerMount,
        None => OptionScope::FilesystemWide,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_btrfs_documentation() {
        for o in ["subvol=@x", "noatime", "nodev", "ro", "X-mount.mkdir"] {
            assert_eq!(option_scope(o), OptionScope::PerMount, "{o}");
        }
        for o in ["compress=zstd:1", "nodatacow", "nodatasum", "ssd", "discard=async", "space_cache=v2"] {
            assert_eq!(option_scope(o), OptionScope::FilesystemWide, "{o}");
        }
    }

    #[test]
    fn paths_are_compared_by_component() {
        assert!(path_is_under("/var/lib/containers/storage", "/var/lib/containers"));
        assert!(path_is_under("/var/lib", "/"));
        assert!(!path_is_under("/var/lib/containers2", "/var/lib/containers"));
    }
}
