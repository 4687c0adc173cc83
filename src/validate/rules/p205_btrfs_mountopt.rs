//! P205 `btrfs-mountopt`.

use super::declare_rule;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A `mountopt` in `[storage.options]` with `driver = "btrfs"`, which the btrfs driver
    /// refuses. (A `mountopt` in another driver's table, such as
    /// `[storage.options.overlay]`, is not reported: containers/storage passes it only to
    /// that driver.)
    ///
    /// ## Why it matters
    ///
    /// containers/storage passes `[storage.options] mountopt` to whichever driver is
    /// configured, as `btrfs.mountopt` here, and the btrfs driver refuses it with
    /// "btrfs driver does not support mount options": Podman cannot open its storage and
    /// every podman command fails. The btrfs driver does not mount anything per container
    /// (layers are subvolumes and snapshots on the already mounted filesystem), so there is
    /// nothing for mount options to apply to.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    ///
    /// [storage.options]
    /// mountopt = "nodev"
    /// ```
    ///
    /// ## Fix
    ///
    /// Delete `mountopt`. Options such as `nodev` or `noatime` belong on the mount of the
    /// subvolume that holds the graphroot (in disko.nix, its `mountOptions`). If the line
    /// is meant for the overlay driver, move it to `[storage.options.overlay]`, which the
    /// btrfs driver never reads:
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    /// ```
    pub static RULE = {
        code: "P205",
        name: "btrfs-mountopt",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    if file.driver_name().as_deref() != Some("btrfs") {
        return Vec::new();
    }
    let Some(at) = file.key_offset(&["storage", "options", "mountopt"]) else { return Vec::new() };
    let message = "the btrfs driver refuses `mountopt` (\"btrfs driver does not support mount options\"): \
                   every podman command fails";
    let help = "remove this `mountopt`; put mount options on the subvolume that holds the graphroot (its \
                mountOptions in disko.nix), or move it to [storage.options.overlay] if it is meant \
                for the overlay driver";
    vec![Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(help)]
}

#[cfg(test)]
mod tests {
    fn lines(text: &str) -> Vec<usize> {
        crate::validate::rules::storage_findings(&super::RULE, text).into_iter().map(|d| d.line).collect()
    }

    #[test]
    fn only_the_general_mountopt_with_the_btrfs_driver() {
        assert_eq!(lines("[storage]\ndriver = \"btrfs\"\n[storage.options]\nmountopt = \"nodev\"\n"), [4]);
        assert_eq!(lines("[storage]\ndriver = \"btrfs\"\noptions.mountopt = \"nodev\"\n"), [3]);
        assert!(
            lines("[storage]\ndriver = \"btrfs\"\n[storage.options.overlay]\nmountopt = \"nodev\"\n")
                .is_empty()
        );
        assert!(
            lines("[storage]\ndriver = \"overlay\"\n[storage.options]\nmountopt = \"nodev\"\n").is_empty()
        );
        assert!(lines("[storage.options]\nmountopt = \"nodev\"\n").is_empty());
    }
}
