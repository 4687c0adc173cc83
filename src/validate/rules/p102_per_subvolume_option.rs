//! P102 `per-subvolume-option`.

use super::{at_disko, declare_rule, option_offset, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// `nodatacow`, `nodatasum`, `compress=…` or `compress-force=…` in the mountOptions of
    /// some subvolumes of a filesystem but not of all: written as if they acted on that
    /// one subvolume.
    ///
    /// ## Why it matters
    ///
    /// These are filesystem-wide options. The first mount of the filesystem decides them
    /// for every subvolume; on a later mount they are silently ignored. A database
    /// subvolume mounted with `nodatacow` after `/` is still copy-on-write; a subvolume
    /// meant to stay uncompressed is compressed if `/` was mounted with `compress`
    /// (disko issues #331 and #493).
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@postgres" = { mountpoint = "/var/lib/postgresql"; mountOptions = [ "nodatacow" ]; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Set NOCOW with `chattr +C` on the empty subvolume, and compression with
    /// `btrfs property set DIR compression zstd|none`, in the btrfs `postCreateHook`;
    /// keep one list of filesystem-wide options on every mount.
    pub static RULE = {
        code: "P102",
        name: "per-subvolume-option",
        severity: Severity::Warning,
        check: check,
    };
}

fn per_subvolume_kind(option: &str) -> Option<&'static str> {
    match option.split('=').next().unwrap_or(option) {
        "nodatacow" => Some("nodatacow"),
        "nodatasum" => Some("nodatasum"),
        "compress" | "compress-force" => Some("compress"),
        _ => None,
    }
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        let mounted: Vec<_> = fs.subvolumes.iter().filter(|s| s.mountpoint.is_some()).collect();
        for sv in &mounted {
            for option in &sv.mount_options {
                let Some(kind) = per_subvolume_kind(option) else { continue };
                let everywhere = mounted.iter().all(|other| {
                    other.mount_options.iter().any(|o| per_subvolume_kind(o) == Some(kind) && o == option)
                });
                if everywhere {
                    continue;
                }
                let fix = match kind {
                    "compress" => format!(
                        "per-subvolume compression is `btrfs property set <mnt>/{} compression zstd|none` \
                         in the btrfs postCreateHook",
                        sv.name
                    ),
                    _ => format!(
                        "per-subvolume NOCOW is `chattr +C <mnt>/{}` on the empty subvolume in the \
                                  btrfs postCreateHook",
                        sv.name
                    ),
                };
                let offset = option_offset(disko, fs, sv, option)
                    .or_else(|| disko.positions.of(&subvolume_path(fs, sv, &["mountOptions"])));
                let mut d = at_disko(
                    &RULE,
                    disko,
                    &subvolume_path(fs, sv, &["mountOptions"]),
                    format!(
                        "`{option}` on subvolume `{}` acts on the whole filesystem, and only on its first \
                         mount, never on this subvolume alone",
                        sv.name
                    ),
                )
                .with_help(fix);
                if let Some(o) = offset {
                    (d.line, d.column) = disko.source.position(o);
                }
                out.push(d);
            }
        }
    }
    out
}
