//! P101 `fs-options-differ`.

use super::{at_disko, declare_rule, fs_wide, mounts_in_order, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// Subvolume mounts of one btrfs filesystem whose filesystem-wide options (`compress`,
    /// `ssd`, `discard`, `space_cache`, `autodefrag`, `commit`, …) differ from those of the
    /// mount that comes first. Per-mount options such as `noatime`, `nodev` or `ro` may
    /// differ. `nodatacow`, `nodatasum` and `compress` are reported by P102 instead.
    ///
    /// ## Why it matters
    ///
    /// btrfs takes these options from the first mount of a filesystem and silently ignores
    /// them on every later subvolume mount ("only options in the first mounted subvolume
    /// will take effect", btrfs-progs ch-mount-options.rst). The configuration then says
    /// one thing and the kernel does another, depending on mount order.
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
    /// Put the same filesystem-wide options on every subvolume mount of the filesystem.
    pub static RULE = {
        code: "P101",
        name: "fs-options-differ",
        severity: Severity::Error,
        check: check,
    };
}

/// Options that P102 reports as meant per subvolume.
fn p102_owns(option: &str) -> bool {
    let key = option.split('=').next().unwrap_or(option);
    matches!(key, "nodatacow" | "datacow" | "nodatasum" | "datasum" | "compress" | "compress-force")
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        let mounts = mounts_in_order(fs);
        let Some((first_at, first_sv, first_opts)) = mounts.first() else { continue };
        let wanted: Vec<&str> = fs_wide(first_opts).into_iter().filter(|o| !p102_owns(o)).collect();
        let first_name = first_sv.map_or("the top level".to_string(), |s| format!("`{}`", s.name));
        for (at, sv, opts) in &mounts[1..] {
            let Some(sv) = sv else { continue };
            let here: Vec<&str> = fs_wide(opts).into_iter().filter(|o| !p102_owns(o)).collect();
            let mut missing: Vec<&str> = wanted.iter().copied().filter(|o| !here.contains(o)).collect();
            let mut extra: Vec<&str> = here.iter().copied().filter(|o| !wanted.contains(o)).collect();
            if missing.is_empty() && extra.is_empty() {
                continue;
            }
            missing.sort_unstable();
            extra.sort_unstable();
            let mut diff = Vec::new();
            if !extra.is_empty() {
                diff.push(format!("adds {}", extra.join(",")));
            }
            if !missing.is_empty() {
                diff.push(format!("lacks {}", missing.join(",")));
            }
            out.push(
                at_disko(
                    &RULE,
                    disko,
                    &subvolume_path(fs, sv, &["mountOptions"]),
                    format!(
                        "subvolume `{}` (at {at}) {} compared with {first_name} mounted first at {first_at}; \
                         filesystem-wide options come from the first mount only",
                        sv.name,
                        diff.join(" and ")
                    ),
                )
                .with_help(format!(
                    "give every subvolume mount of this filesystem the same filesystem-wide options: {}",
                    if wanted.is_empty() { "(none)".to_string() } else { wanted.join(",") }
                )),
            );
        }
    }
    out
}
