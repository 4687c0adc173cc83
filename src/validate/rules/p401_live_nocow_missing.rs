//! P401 `live-nocow-missing`.

use super::{at_disko, declare_rule, live_mounts, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// With `check --live`: a subvolume the disko file makes NOCOW (`chattr +C` in its
    /// `postCreateHook`) that is mounted on the running host without the NOCOW flag.
    /// Only a btrfs mount is judged: where another filesystem is mounted, P404 says so.
    ///
    /// ## Why it matters
    ///
    /// The hook runs only when disko creates the filesystem; a subvolume made by hand, or
    /// re-created later, is copy-on-write, and the database files in it fragment. `+C` only
    /// takes effect on empty files, so the longer this goes unnoticed the more data has to
    /// be copied to fix it.
    ///
    /// ## Example
    ///
    /// ```nix
    /// postCreateHook = ''chattr +C "$mnt/@podfs-database"'';   # but lsattr -d shows no C
    /// ```
    ///
    /// ## Fix
    ///
    /// Stop the containers, create a new empty directory with `chattr +C`, copy the data
    /// in with `cp --reflink=never`, and swap the directories; or use the NixOS module's
    /// `systemd.tmpfiles` `h … +C` rule for new directories.
    pub static RULE = {
        code: "P401",
        name: "live-nocow-missing",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    live_mounts(inputs)
        .into_iter()
        .filter(|l| l.subvolume.nocow && l.live.btrfs_at(l.mountpoint).is_some())
        .filter(|l| l.live.attributes.get(l.mountpoint).and_then(|a| a.nocow) == Some(false))
        .map(|l| {
            let (sv, m) = (l.subvolume, l.mountpoint);
            at_disko(&RULE, l.disko, &subvolume_path(l.fs, sv, &[]), format!(
                "subvolume `{}` should be NOCOW, but {m} on this host is copy-on-write (no C in lsattr -d)",
                sv.name
            ))
            .with_help(format!(
                "new files only: `chattr +C {m}` while it is empty, or copy the data into a fresh +C directory"
            ))
        })
        .collect()
}
