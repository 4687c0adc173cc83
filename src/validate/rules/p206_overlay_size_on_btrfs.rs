//! P206 `overlay-size-on-btrfs`.

use super::declare_rule;
use crate::layout::Holder;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// An overlay size or inode limit while the graphroot is on btrfs, where overlay
    /// cannot enforce it. That is `size` or `inodes` in `[storage.options.overlay]` (with
    /// `driver = "overlay"` or no driver named), or `size` in `[storage.options]` with
    /// `driver = "overlay"`. Where the graphroot is comes from the disko.nix given to
    /// `check`: the rule applies when the mount holding the graphroot
    /// (`/var/lib/containers/storage` unless `graphroot` says otherwise) is a btrfs
    /// subvolume or filesystem. Without a disko.nix it reports nothing.
    ///
    /// ## Why it matters
    ///
    /// The overlay driver enforces `size` and `inodes` with XFS project quotas, and with
    /// nothing else. On any other backing filesystem it refuses to start; Podman 4.3.1
    /// says "storage option overlay.size and overlay.inodes only supported for backingFS
    /// XFS. Found btrfs", and every podman command fails.
    ///
    /// ## Example
    ///
    /// With `/var/lib/containers/storage` on a btrfs subvolume:
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    ///
    /// [storage.options.overlay]
    /// size = "20G"
    /// ```
    ///
    /// ## Fix
    ///
    /// Delete `size` (and `inodes`). On btrfs, bound what containers use by giving
    /// container storage a subvolume or filesystem of its own, as the layouts this tool
    /// plans do; keep per-container limits for hosts whose graphroot is on XFS mounted
    /// with `pquota`.
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    ///
    /// [storage.options.overlay]
    /// mountopt = "nodev"
    /// ```
    pub static RULE = {
        code: "P206",
        name: "overlay-size-on-btrfs",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let (Some(file), Some(disko)) = (&inputs.storage, &inputs.disko) else { return Vec::new() };
    let (graphroot, _) = file.graphroot();
    let Some(Holder::Btrfs { subvolume, .. }) = disko.layout.holder_of(&graphroot) else { return Vec::new() };
    let mut keys: Vec<&[&str]> = Vec::new();
    if file.may_use_driver("overlay") {
        keys.push(&["storage", "options", "overlay", "size"]);
        keys.push(&["storage", "options", "overlay", "inodes"]);
    }
    if file.driver_name().as_deref() == Some("overlay") {
        keys.push(&["storage", "options", "size"]);
    }
    let on = match subvolume {
        Some(s) => format!("the btrfs subvolume `{}` in {}", s.name, disko.source.path),
        None => format!("btrfs in {}", disko.source.path),
    };
    keys.into_iter()
        .filter_map(|path| {
            let at = file.key_offset(path)?;
            let key = path[path.len() - 1];
            let message = format!(
                "overlay `{key}` works only on XFS, but graphroot {graphroot} is on {on}: Podman fails with \
                 \"overlay.size and overlay.inodes only supported for backingFS XFS. Found btrfs\""
            );
            let help = format!(
                "remove `{key}`; on btrfs, bound container storage with a subvolume or filesystem \
                 of its own instead of overlay quotas"
            );
            Some(Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(help))
        })
        .collect()
}
