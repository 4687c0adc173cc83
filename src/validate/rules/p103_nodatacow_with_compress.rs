//! P103 `nodatacow-with-compress`.

use super::{at_disko, declare_rule, fs_wide, mounts_in_order, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A btrfs filesystem whose first mount carries both `nodatacow` and `compress…`.
    ///
    /// ## Why it matters
    ///
    /// `nodatacow` turns off copy-on-write, checksums and compression for all newly
    /// created files, so `compress` does nothing but mislead: data believed compressed
    /// and checksummed is neither, and scrub cannot repair it.
    ///
    /// ## Example
    ///
    /// ```nix
    /// mountOptions = [ "compress=zstd" "nodatacow" "noatime" ];
    /// ```
    ///
    /// ## Fix
    ///
    /// Drop `nodatacow` from the mount options and set NOCOW only where it is wanted, with
    /// `chattr +C` on empty subvolumes in the `postCreateHook`.
    pub static RULE = {
        code: "P103",
        name: "nodatacow-with-compress",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        let mounts = mounts_in_order(fs, &disko.boot);
        let Some((at, sv, opts)) = mounts.first() else { continue };
        let opts = fs_wide(opts);
        let nodatacow = opts.contains(&"nodatacow");
        let compress = opts.iter().any(|o| o.starts_with("compress"));
        if !(nodatacow && compress) {
            continue;
        }
        let path = match sv {
            Some(sv) => subvolume_path(fs, sv, &["mountOptions"]),
            None => fs.attr_path.iter().map(String::as_str).chain(["mountOptions"]).collect(),
        };
        out.push(
            at_disko(
                &RULE,
                disko,
                &path,
                format!("the filesystem is first mounted (at {at}) with both `nodatacow` and `compress`: nothing new is compressed or checksummed"),
            )
            .with_help("remove `nodatacow`; set NOCOW per subvolume with `chattr +C` in the postCreateHook"),
        );
    }
    out
}
