//! P304 `rootless-btrfs-subvol-rm`.

use super::{at_storage_or_disko, declare_rule, fs_wide, mounts_in_order, store_settings};
use crate::layout::Holder;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// `driver = "btrfs"` with a `rootless_storage_path` (rootless users) on a btrfs
    /// filesystem mounted without `user_subvol_rm_allowed`.
    ///
    /// ## Why it matters
    ///
    /// Rootless Podman's btrfs driver creates a subvolume per layer as the user, but only
    /// root may delete subvolumes unless the filesystem allows it: `podman rmi`,
    /// `podman rm` and `podman system prune` fail with "operation not permitted" and the
    /// layers pile up.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    /// rootless_storage_path = "/var/lib/containers/users/$USER/storage"
    /// ```
    ///
    /// ## Fix
    ///
    /// Add `user_subvol_rm_allowed` to the mount options of every subvolume mount of that
    /// filesystem (it is filesystem-wide), or use the overlay driver.
    pub static RULE = {
        code: "P304",
        name: "rootless-btrfs-subvol-rm",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let (Some(disko), Some(storage)) = (&inputs.disko, &inputs.storage) else { return Vec::new() };
    let s = store_settings(inputs);
    let Some((rootless, offset)) = storage.get_str(&["storage", "rootless_storage_path"]) else {
        return Vec::new();
    };
    if s.driver != "btrfs" {
        return Vec::new();
    }
    // The fixed part of the path, before $USER, $UID or $HOME.
    let fixed = rootless.split('$').next().unwrap_or("").trim_end_matches('/');
    let probe = if fixed.is_empty() { "/home" } else { fixed };
    let Some(Holder::Btrfs { fs, .. }) = disko.layout.holder_of(probe) else { return Vec::new() };
    let mounts = mounts_in_order(fs, &disko.boot);
    let Some((_, _, first)) = mounts.first() else { return Vec::new() };
    if fs_wide(first).contains(&"user_subvol_rm_allowed") {
        return Vec::new();
    }
    vec![
        at_storage_or_disko(
            &RULE,
            inputs,
            Some(offset),
            &[],
            format!("rootless btrfs storage at {rootless} is on a filesystem mounted without user_subvol_rm_allowed"),
        )
        .with_help("add user_subvol_rm_allowed to every subvolume mount of that filesystem, or use driver = \"overlay\""),
    ]
}
