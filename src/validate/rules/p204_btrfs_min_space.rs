//! P204 `btrfs-min-space`.

use super::declare_rule;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A `min_space` for the btrfs driver, which turns on quotas for the whole filesystem.
    /// That is `min_space` in `[storage.options.btrfs]` while the btrfs driver can be in
    /// use (`driver = "btrfs"`, or no driver named).
    ///
    /// ## Why it matters
    ///
    /// Podman accepts `min_space`, but the btrfs driver turns on btrfs quotas to honour
    /// it, and quotas (qgroups) are a property of the whole filesystem, not of container
    /// storage: from then on every snapshot, subvolume delete, balance and large delete
    /// on that filesystem pays for qgroup accounting, which makes them much slower on a
    /// filesystem with many snapshots or extents. Checked on Podman 4.3.1: after one `podman info` with
    /// `min_space` set, `btrfs qgroup show` works on the filesystem, i.e. quotas are on,
    /// and they stay on after the line is removed.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    ///
    /// [storage.options.btrfs]
    /// min_space = "10G"
    /// ```
    ///
    /// ## Fix
    ///
    /// Delete the `min_space` line. If Podman already ran with it, turn quotas off again
    /// with `btrfs quota disable MOUNTPOINT` (MOUNTPOINT: any mount of that filesystem).
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    /// ```
    pub static RULE = {
        code: "P204",
        name: "btrfs-min-space",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    if !file.may_use_driver("btrfs") {
        return Vec::new();
    }
    let Some(at) = file.key_offset(&["storage", "options", "btrfs", "min_space"]) else { return Vec::new() };
    let message = "`min_space` turns on btrfs quotas (qgroups) for the whole filesystem, which slows \
                   snapshots, subvolume deletes and balances everywhere on it";
    let help = "remove `min_space`; if Podman already ran with it, `btrfs quota disable MOUNTPOINT` turns \
                quotas off again";
    vec![Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(help)]
}

#[cfg(test)]
mod tests {
    fn lines(text: &str) -> Vec<usize> {
        crate::validate::rules::storage_findings(&super::RULE, text).into_iter().map(|d| d.line).collect()
    }

    #[test]
    fn min_space_is_reported_for_the_btrfs_driver_only() {
        assert_eq!(
            lines("[storage]\ndriver = \"btrfs\"\n\n[storage.options.btrfs]\nmin_space = \"1G\"\n"),
            [5]
        );
        assert_eq!(lines("storage.options.btrfs.min_space = \"1G\"\n"), [1]);
        assert!(
            lines("[storage]\ndriver = \"zfs\"\n[storage.options.btrfs]\nmin_space = \"1G\"\n").is_empty()
        );
        assert!(lines("[storage]\ndriver = \"btrfs\"\n").is_empty());
    }
}
