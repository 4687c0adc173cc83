//! P203 `btrfs-size`.

use super::declare_rule;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A `size` option for the btrfs driver, which rejects it. That is `size` in
    /// `[storage.options.btrfs]` while the btrfs driver can be in use (`driver = "btrfs"`,
    /// or no driver named), and `size` in `[storage.options]` with `driver = "btrfs"`,
    /// which containers/storage hands to the btrfs driver the same way.
    ///
    /// ## Why it matters
    ///
    /// containers-storage.conf(5) documents `size` for the btrfs table, but the btrfs
    /// driver does not accept it: Podman 4.3 and 5.4 both stop with
    /// `unknown option btrfs.size`, so every podman command fails, `podman info`
    /// included. (When `min_space` is set too, some versions drop
    /// `size` silently instead, which is no better: there is no limit either way.)
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    ///
    /// [storage.options.btrfs]
    /// size = "20G"
    /// ```
    ///
    /// ## Fix
    ///
    /// Delete the `size` line. storage.conf has no working per-container size limit for
    /// the btrfs driver; to keep containers from filling the disk, give container storage
    /// a subvolume (or filesystem) of its own and watch its use, as the layouts this tool
    /// plans do:
    ///
    /// ```toml
    /// [storage]
    /// driver = "btrfs"
    /// ```
    pub static RULE = {
        code: "P203",
        name: "btrfs-size",
        severity: Severity::Error,
        check: check,
    };
}

const HELP: &str = "remove this `size`: the btrfs driver has no size option; to bound what containers \
                    use, give container storage a subvolume or filesystem of its own";

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    let mut out = Vec::new();
    let section = ["storage", "options", "btrfs", "size"];
    if file.may_use_driver("btrfs")
        && let Some(at) = file.key_offset(&section)
    {
        let message = "`size` in [storage.options.btrfs] is rejected by Podman \
                       (`unknown option btrfs.size`): every podman command fails with the btrfs driver";
        out.push(Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(HELP));
    }
    let general = ["storage", "options", "size"];
    if file.driver_name().as_deref() == Some("btrfs")
        && let Some(at) = file.key_offset(&general)
    {
        let message = "with driver = \"btrfs\", `size` in [storage.options] becomes `btrfs.size`, which Podman \
                       rejects (`unknown option btrfs.size`): every podman command fails";
        out.push(Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(HELP));
    }
    out
}

#[cfg(test)]
mod tests {
    fn lines(text: &str) -> Vec<usize> {
        crate::validate::rules::storage_findings(&super::RULE, text).into_iter().map(|d| d.line).collect()
    }

    #[test]
    fn size_is_reported_where_the_btrfs_driver_reads_it() {
        assert_eq!(lines("[storage]\ndriver = \"btrfs\"\n[storage.options.btrfs]\nsize = \"1G\"\n"), [4]);
        assert_eq!(lines("[storage.options.btrfs]\nsize = \"1G\"\n"), [2], "no driver: may be btrfs");
        assert_eq!(lines("[storage]\ndriver = \"btrfs\"\noptions = { size = \"1G\" }\n"), [3]);
        assert_eq!(
            lines("[storage]\ndriver = \"btrfs\"\noptions.btrfs = { size = \"1G\", min_space = \"1G\" }\n"),
            [3]
        );
    }

    #[test]
    fn other_drivers_ignore_the_btrfs_table() {
        assert!(
            lines("[storage]\ndriver = \"overlay\"\n[storage.options.btrfs]\nsize = \"1G\"\n").is_empty()
        );
        assert!(
            lines("[storage]\n[storage.options]\nsize = \"1G\"\n").is_empty(),
            "no driver: no btrfs.size"
        );
        assert!(lines("[storage]\ndriver = \"overlay\"\n[storage.options]\nsize = \"1G\"\n").is_empty());
    }
}
