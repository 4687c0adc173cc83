//! P301 `btrfs-driver-not-on-btrfs`.

use super::{at_storage_or_disko, btrfs_driver_store, declare_rule};
use crate::layout::Holder;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// storage.conf chooses `driver = "btrfs"` while the disko layout puts graphroot on a
    /// filesystem that is not btrfs.
    ///
    /// ## Why it matters
    ///
    /// The btrfs driver makes every layer a btrfs subvolume; on another filesystem Podman
    /// fails to start with "driver not supported", and every container command fails.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    /// graphroot = "/var/lib/containers/storage"   # on an ext4 partition in disko.nix
    /// ```
    ///
    /// ## Fix
    ///
    /// Use `driver = "overlay"`, or put graphroot on a btrfs subvolume.
    pub static RULE = {
        code: "P301",
        name: "btrfs-driver-not-on-btrfs",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some((_, s, Holder::Other(fs))) = btrfs_driver_store(inputs) else { return Vec::new() };
    let path: Vec<&str> = fs.attr_path.iter().map(String::as_str).chain(["format"]).collect();
    vec![
        at_storage_or_disko(
            &RULE,
            inputs,
            s.driver_at,
            &path,
            format!("driver is btrfs but graphroot {} is on {} in the disko layout", s.graphroot, fs.format),
        )
        .with_help("use driver = \"overlay\", or put graphroot on a btrfs subvolume"),
    ]
}
