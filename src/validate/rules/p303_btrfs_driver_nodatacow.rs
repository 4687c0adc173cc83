//! P303 `btrfs-driver-nodatacow`.

use super::{
    at_storage_or_disko, btrfs_driver_store, declare_rule, fs_wide, mounts_in_order, subvolume_path,
};
use crate::layout::Holder;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// `driver = "btrfs"` on a filesystem that is first mounted with `nodatacow`.
    ///
    /// ## Why it matters
    ///
    /// Every image layer and container is then written without copy-on-write and without
    /// checksums: silent corruption of images goes unnoticed and scrub cannot repair it.
    /// The btrfs driver's cheap snapshots still copy every block once when written.
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@containers" = { mountpoint = "/var/lib/containers/storage"; mountOptions = [ "nodatacow" ]; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Remove `nodatacow` from the mount options; set NOCOW with `chattr +C` only on the
    /// subvolumes that hold databases, caches or VM images.
    pub static RULE = {
        code: "P303",
        name: "btrfs-driver-nodatacow",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some((disko, s, Holder::Btrfs { fs, subvolume })) = btrfs_driver_store(inputs) else {
        return Vec::new();
    };
    let mounts = mounts_in_order(fs, &disko.boot);
    let Some((_, _, first)) = mounts.first() else { return Vec::new() };
    if !fs_wide(first).contains(&"nodatacow") {
        return Vec::new();
    }
    let path = subvolume.map(|sv| subvolume_path(fs, sv, &["mountOptions"])).unwrap_or_default();
    vec![
        at_storage_or_disko(
            &RULE,
            inputs,
            s.driver_at,
            &path,
            "the btrfs driver stores every layer on a filesystem mounted nodatacow: no checksums for any image",
        )
        .with_help("remove nodatacow; use chattr +C on database subvolumes only"),
    ]
}
