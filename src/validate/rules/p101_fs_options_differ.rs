//! P101 `fs-options-differ`.

use super::{at_disko, declare_rule, denied_message, meant_per_subvolume, mount_name, mount_options_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use crate::validate::mount_order::order;

declare_rule! {
    /// ## What it checks
    ///
    /// A mount of a btrfs filesystem that asks for a filesystem-wide option (`autodefrag`,
    /// `commit`, `max_inline`, `space_cache`, `nossd`, …) which the first mount of the
    /// filesystem does not give it: a different value, or an option the first mount lacks.
    /// A later mount with the same options, or without them, is fine: it gets them.
    /// Per-mount options such as `noatime`, `nodev` or `ro` may differ. `ssd` and
    /// `discard=async`, which the kernel turns on by itself on the devices they suit, are
    /// not reported when only the first mount lacks them. `compress`, `nodatacow` and
    /// `nodatasum` are reported by P102.
    ///
    /// ## Why it matters
    ///
    /// btrfs takes these options from the first mount of a filesystem and silently ignores
    /// them on every later subvolume mount ("only options in the first mounted subvolume
    /// will take effect", btrfs-progs ch-mount-options.rst). The configuration then says
    /// one thing and the kernel does another. NixOS mounts `/` first; with `/` on tmpfs or
    /// another disk, the filesystems the initrd needs (`/nix`, `/var/log`, …, and any
    /// `neededForBoot`) come first; otherwise parents before children. When siblings come
    /// first in no defined order, the message says so.
    ///
    /// ## Example
    ///
    /// ```nix
    /// subvolumes = {
    ///   "@root" = { mountpoint = "/"; mountOptions = [ "noatime" ]; };
    ///   "@data" = { mountpoint = "/data"; mountOptions = [ "noatime" "autodefrag" ]; };
    /// };
    /// ```
    ///
    /// ## Fix
    ///
    /// Put the filesystem-wide options on the mount that comes first (simplest: the same
    /// list on every mount of the filesystem), or drop them where they are ignored.
    pub static RULE = {
        code: "P101",
        name: "fs-options-differ",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        let order = order(fs, &disko.boot);
        for d in order.denied() {
            let options: Vec<&str> = d.options.iter().copied().filter(|o| !meant_per_subvolume(o)).collect();
            if options.is_empty() {
                continue;
            }
            out.push(
                at_disko(
                    &RULE,
                    disko,
                    &mount_options_path(fs, &d.mount),
                    denied_message(&d, &order, &options),
                )
                .with_help(format!(
                    "put {} on {} too (the same filesystem-wide options on every mount of this \
                         filesystem), or drop {} here",
                    options.join(","),
                    mount_name(&d.by),
                    if options.len() == 1 { "it" } else { "them" }
                )),
            );
        }
    }
    out
}
