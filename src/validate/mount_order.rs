//! What the kernel does with the mount options of one btrfs filesystem: which mount comes
//! first at boot, and which filesystem-wide options each later mount asks for and will not
//! get.
//!
//! btrfs takes its filesystem-wide options (`compress`, `nodatacow`, `space_cache`, `ssd`,
//! …) from the first mount of a filesystem; a later subvolume mount with an identical
//! option, or without the option, changes nothing; one that asks for a different value, or
//! for an option the first mount lacks, is silently ignored (docs/ARCHITECTURE.md, "btrfs").
//! NixOS mounts `/` first; with `/` elsewhere (a tmpfs root, another disk), the initrd
//! mounts the `neededForBoot` filesystems first; after that, parents before children,
//! siblings in no defined order.

use super::disko::Boot;
use crate::layout::{Btrfs, OptionScope, Subvolume, option_scope};

/// One mount of a btrfs filesystem: its top level (`subvolume` is `None`) or a subvolume.
#[derive(Debug, Clone, Copy)]
pub struct Mount<'a> {
    pub at: &'a str,
    pub subvolume: Option<&'a Subvolume>,
    pub options: &'a [String],
}

/// Why a mount comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBecause {
    /// It is `/`, which NixOS mounts before anything else.
    Root,
    /// The initrd mounts it (`neededForBoot`) before switching to the real root.
    NeededForBoot,
    /// It is the shallowest mount of the filesystem.
    Shallowest,
}

/// The mounts of one filesystem in boot order.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    /// The mounts: those that may come first lead, the rest by depth and path.
    pub mounts: Vec<Mount<'a>>,
    /// How many of the leading mounts may come first: 1 when the order is decided, more
    /// when siblings are mounted in no defined order (0 without mounts).
    pub first: usize,
    pub because: FirstBecause,
    /// `/` is a tmpfs (the usual reason `/` is not on this filesystem).
    pub tmpfs_root: bool,
}

fn depth(at: &str) -> usize {
    at.trim_end_matches('/').matches('/').count()
}

/// The mounts of `fs` in the order NixOS mounts them.
pub fn order<'a>(fs: &'a Btrfs, boot: &Boot) -> Order<'a> {
    let mut mounts: Vec<Mount<'a>> = fs
        .mountpoint
        .as_deref()
        .map(|at| Mount { at, subvolume: None, options: fs.mount_options.as_slice() })
        .into_iter()
        .chain(fs.subvolumes.iter().filter_map(|s| {
            s.mountpoint.as_deref().map(|at| Mount {
                at,
                subvolume: Some(s),
                options: s.mount_options.as_slice(),
            })
        }))
        .collect();
    mounts.sort_by_key(|m| (depth(m.at), m.at));
    let (pool, because): (Vec<usize>, FirstBecause) = if let Some(i) = mounts.iter().position(|m| m.at == "/")
    {
        (vec![i], FirstBecause::Root)
    } else {
        let early: Vec<usize> = (0..mounts.len()).filter(|&i| boot.needed_for_boot(mounts[i].at)).collect();
        if early.is_empty() {
            ((0..mounts.len()).collect(), FirstBecause::Shallowest)
        } else {
            (early, FirstBecause::NeededForBoot)
        }
    };
    let shallowest = pool.iter().map(|&i| depth(mounts[i].at)).min().unwrap_or(0);
    let leading: Vec<usize> = pool.into_iter().filter(|&i| depth(mounts[i].at) == shallowest).collect();
    let first = leading.len();
    let mut ordered: Vec<Mount<'a>> = leading.iter().map(|&i| mounts[i]).collect();
    ordered.extend(mounts.iter().enumerate().filter(|(i, _)| !leading.contains(i)).map(|(_, m)| *m));
    Order { mounts: ordered, first, because, tmpfs_root: boot.tmpfs_root }
}

impl<'a> Order<'a> {
    /// The mounts that may come first.
    pub fn leading(&self) -> &[Mount<'a>] {
        &self.mounts[..self.first]
    }

    /// For each mount, the filesystem-wide options it asks for and will not get, with the
    /// first mount that denies them; mounts that get everything they ask for are left out.
    /// When siblings may come first, a mount is reported when any of them would deny it.
    pub fn denied(&self) -> Vec<Denied<'a>> {
        let mut out = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let firsts = self.leading().iter().enumerate().filter(|(j, _)| *j != i).map(|(_, f)| f);
            for f in firsts {
                let options = denied_options(m.options, f.options);
                if !options.is_empty() {
                    out.push(Denied { mount: *m, by: *f, options, order_undefined: self.first > 1 });
                    break;
                }
            }
        }
        out
    }
}

/// A mount that asks for filesystem-wide options the first mount does not give.
#[derive(Debug, Clone)]
pub struct Denied<'a> {
    pub mount: Mount<'a>,
    /// The first mount whose options are in force instead.
    pub by: Mount<'a>,
    /// The options as written on `mount`.
    pub options: Vec<&'a str>,
    /// Whether the first mount is one of several siblings in no defined order.
    pub order_undefined: bool,
}

/// A filesystem-wide option as (name, value): `compress=zstd` is `("compress", "zstd:3")`,
/// `nodatacow` is `("datacow", "off")`, a flag `("ssd", "on")`.
/// Names the kernel does not know are P107's business and never an option in force.
pub fn normalise(option: &str) -> Option<(String, String)> {
    if option_scope(option) != OptionScope::FilesystemWide
        || !super::rules::p107_unknown_mount_option::known(option)
    {
        return None;
    }
    const NEGATABLE: &[&str] = &[
        "datacow",
        "datasum",
        "autodefrag",
        "ssd",
        "ssd_spread",
        "discard",
        "acl",
        "barrier",
        "treelog",
        "flushoncommit",
        "space_cache",
        "logreplay",
    ];
    let (key, value) = option.split_once('=').map_or((option, None), |(k, v)| (k, Some(v)));
    if let Some(positive) = key.strip_prefix("no")
        && NEGATABLE.contains(&positive)
        && value.is_none()
    {
        return Some((positive.to_string(), "off".into()));
    }
    let value = match (key, value) {
        ("compress" | "compress-force", None) => "zlib:3".to_string(),
        ("compress" | "compress-force", Some(v)) => match v {
            "zstd" | "zlib" => format!("{v}:3"),
            "no" | "none" => "no".into(),
            v => v.to_string(),
        },
        ("discard", None) => "sync".into(),
        (_, None) => "on".into(),
        (_, Some(v)) => v.to_string(),
    };
    Some((key.to_string(), value))
}

/// What a filesystem mounted without the option has, when that is known independently of
/// the hardware: copy-on-write, checksums, no compression, the free space tree that
/// mkfs.btrfs creates since btrfs-progs 5.15 (disko always makes a new filesystem).
fn default_value(key: &str) -> Option<&'static str> {
    Some(match key {
        "datacow" | "datasum" | "acl" | "barrier" | "treelog" | "logreplay" => "on",
        "autodefrag" | "flushoncommit" => "off",
        "compress" | "compress-force" => "no",
        "space_cache" => "v2",
        "commit" => "30",
        _ => return None,
    })
}

/// Options the kernel turns on by itself on the devices they are meant for: `ssd` on a
/// non-rotational device, `discard=async` on one that supports discard (Linux 6.2 and
/// later). Asked for by a later mount, they are in force on such a device whatever the
/// first mount says, so they are not reported.
const HARDWARE_DEFAULTS: &[(&str, &str)] = &[("ssd", "on"), ("discard", "async")];

/// The filesystem-wide options in `asked` that a filesystem first mounted with `first`
/// does not have: a different value, or one the first mount lacks and the default is not.
pub fn denied_options<'a>(asked: &'a [String], first: &[String]) -> Vec<&'a str> {
    let granted: Vec<(String, String)> = first.iter().filter_map(|o| normalise(o)).collect();
    asked
        .iter()
        .filter(|o| {
            let Some((key, value)) = normalise(o) else { return false };
            match granted.iter().rev().find(|(k, _)| *k == key) {
                Some((_, v)) => *v != value,
                None => {
                    default_value(&key) != Some(value.as_str())
                        && !HARDWARE_DEFAULTS.contains(&(key.as_str(), value.as_str()))
                }
            }
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_or_missing_options_are_granted() {
        let first = opts(&["compress=zstd", "noatime", "space_cache=v2"]);
        assert!(denied_options(&opts(&["compress=zstd:3"]), &first).is_empty());
        assert!(denied_options(&opts(&[]), &first).is_empty());
        assert!(denied_options(&opts(&["noatime", "nodev"]), &first).is_empty());
        assert!(denied_options(&opts(&["space_cache=v2", "datacow"]), &opts(&[])).is_empty());
        assert!(denied_options(&opts(&["ssd", "discard=async"]), &opts(&[])).is_empty());
        assert_eq!(denied_options(&opts(&["ssd"]), &opts(&["nossd"])), ["ssd"]);
    }

    #[test]
    fn different_values_and_options_the_first_lacks_are_denied() {
        let first = opts(&["compress=zstd:1", "noatime"]);
        assert_eq!(denied_options(&opts(&["compress=zstd"]), &first), ["compress=zstd"]);
        assert_eq!(denied_options(&opts(&["nodatacow", "noatime"]), &first), ["nodatacow"]);
        assert_eq!(denied_options(&opts(&["autodefrag"]), &first), ["autodefrag"]);
        assert_eq!(denied_options(&opts(&["compress=zstd"]), &opts(&[])), ["compress=zstd"]);
        assert_eq!(denied_options(&opts(&["datacow"]), &opts(&["nodatacow"])), ["datacow"]);
    }
}
