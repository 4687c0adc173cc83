//! P105 `options-without-mountpoint`.

use super::{at_disko, declare_rule, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A subvolume with `mountOptions` but no `mountpoint`, or a btrfs filesystem with
    /// `mountOptions` at its own level but no `mountpoint` there.
    ///
    /// ## Why it matters
    ///
    /// disko mounts a subvolume only when it has a mountpoint, so the options are never
    /// used. The btrfs-level `mountOptions` belong to the btrfs-level `mountpoint` (the
    /// top-level subvolume) and are not passed to the subvolume mounts. Often the mountpoint was forgotten or misspelt, and the data meant for the
    /// subvolume lands in its parent instead (disko upgrade guide 2023-07-09).
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@nix" = { mountOptions = [ "noatime" ]; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Add the `mountpoint`, or drop the `mountOptions` if the subvolume is only created.
    pub static RULE = {
        code: "P105",
        name: "options-without-mountpoint",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        if fs.mountpoint.is_none() && !fs.mount_options.is_empty() {
            let mut path: Vec<&str> = fs.attr_path.iter().map(String::as_str).collect();
            path.push("mountOptions");
            out.push(
                at_disko(
                    &RULE,
                    disko,
                    &path,
                    "this btrfs has mountOptions but no mountpoint of its own: they are never used (the \
                     subvolume mounts do not inherit them)",
                )
                .with_help("move the options to each subvolume's mountOptions"),
            );
        }
        for sv in fs.subvolumes.iter().filter(|s| s.mountpoint.is_none() && !s.mount_options.is_empty()) {
            out.push(
                at_disko(
                    &RULE,
                    disko,
                    &subvolume_path(fs, sv, &["mountOptions"]),
                    format!(
                        "subvolume `{}` has mountOptions but no mountpoint: it is never mounted",
                        sv.name
                    ),
                )
                .with_help("add `mountpoint = \"/…\";` or remove the mountOptions"),
            );
        }
    }
    out
}
