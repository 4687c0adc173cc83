//! `check --live`: what the running host has mounted, with which options in force, and
//! the NOCOW flag and compression property of each mountpoint. Gathered once at the
//! edge ([`gather`]); the P4xx rules compare it with the disko layout.

use crate::inspect::mountinfo::{self, MountEntry};
use crate::layout::Layout;
use std::collections::BTreeMap;
use std::path::Path;

/// Attributes of one mounted directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveAttributes {
    pub nocow: Option<bool>,
    pub compression: Option<String>,
}

/// The host's mounts and the attributes of the layout's mountpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    pub mounts: Vec<MountEntry>,
    /// By mountpoint, for every mountpoint of the layout that is mounted.
    pub attributes: BTreeMap<String, LiveAttributes>,
}

impl LiveState {
    /// The mount visible at exactly `mountpoint` (the last one listed there).
    pub fn mount_at(&self, mountpoint: &str) -> Option<&MountEntry> {
        let want = mountpoint.trim_end_matches('/');
        let want = if want.is_empty() { "/" } else { want };
        self.mounts.iter().rev().find(|m| m.mountpoint == want)
    }

    /// The btrfs mount at exactly `mountpoint`. NOCOW and the compression property are
    /// btrfs attributes: elsewhere (another filesystem, or nothing mounted) P404 says what
    /// is there, and no attribute advice is given.
    pub fn btrfs_at(&self, mountpoint: &str) -> Option<&MountEntry> {
        self.mount_at(mountpoint).filter(|m| m.fs_type == "btrfs")
    }
}

/// Reads mountinfo and, for each mountpoint of the layout where btrfs is mounted, its
/// flags (read-only).
pub fn gather(layout: &Layout, mountinfo_text: &str) -> LiveState {
    let mut state = LiveState { mounts: mountinfo::parse(mountinfo_text), attributes: BTreeMap::new() };
    let points = layout.subvolumes().filter_map(|s| s.mountpoint.clone());
    for m in points {
        let path = Path::new(&m);
        if state.btrfs_at(&m).is_none() || !path.is_dir() {
            continue;
        }
        state.attributes.insert(
            m.clone(),
            LiveAttributes {
                nocow: crate::inspect::nocow(path).ok(),
                compression: crate::inspect::compression_property(path).ok().flatten(),
            },
        );
    }
    state
}
