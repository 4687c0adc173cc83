//! P102 `per-subvolume-option`.

use super::{
    at_disko, declare_rule, denied_message, meant_per_subvolume, mount_option_offset, mount_options_path,
};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use crate::validate::mount_order::order;

declare_rule! {
    /// ## What it checks
    ///
    /// `nodatacow`, `nodatasum`, `compress=…` or `compress-force=…` on a mount of a btrfs
    /// filesystem whose first mount does not set the same: written as if it acted on that
    /// one subvolume. This includes a `compress` level that differs from the first
    /// mount's. The same option on every mount, or on the first mount only, is fine.
    ///
    /// ## Why it matters
    ///
    /// These are filesystem-wide options. The first mount of the filesystem decides them
    /// for every subvolume; on a later mount they are silently ignored. A database
    /// subvolume mounted with `nodatacow` after `/` is still copy-on-write; `compress=zstd`
    /// on `/home` does nothing when `/` was mounted without it (disko issues #331 and #493).
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@root" = { mountpoint = "/"; mountOptions = [ "compress=zstd" ]; };
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
            for option in d.options.iter().copied().filter(|o| meant_per_subvolume(o)) {
                let name = d.mount.subvolume.map_or("", |s| s.name.trim_start_matches('/'));
                let fix = if option.starts_with("compress") {
                    format!(
                        "per-subvolume compression is `btrfs property set <mnt>/{name} compression zstd|none` \
                         in the btrfs postCreateHook (the level comes from the first mount)"
                    )
                } else {
                    format!(
                        "per-subvolume NOCOW is `chattr +C <mnt>/{name}` on the empty subvolume in the btrfs \
                         postCreateHook"
                    )
                };
                let mut diag = at_disko(
                    &RULE,
                    disko,
                    &mount_options_path(fs, &d.mount),
                    denied_message(&d, &order, &[option]),
                )
                .with_help(fix);
                if let Some(o) = mount_option_offset(disko, fs, &d.mount, option) {
                    (diag.line, diag.column) = disko.source.position(o);
                }
                out.push(diag);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::validate::{self, Inputs, disko};

    /// The P101/P102 codes `check` reports for a btrfs layout whose `/` and `/home` mounts
    /// carry `root` and `home` as their options.
    fn codes(root: &str, home: &str) -> Vec<&'static str> {
        let text = format!(
            r#"{{ disko.devices.disk.main = {{
  device = "/dev/vda"; type = "disk";
  content = {{ type = "gpt"; partitions.system = {{ size = "100%"; content = {{
    type = "btrfs";
    subvolumes = {{
      "@" = {{ mountpoint = "/"; mountOptions = [ {root} ]; }};
      "@home" = {{ mountpoint = "/home"; mountOptions = [ {home} ]; }};
    }};
  }}; }}; }};
}}; }}"#
        );
        let file = disko::load_text(&text, "disko.nix", disko::NixMode::Static).unwrap();
        let inputs = Inputs { disko: Some(file), storage: None, containers: None, live: None };
        validate::check(&inputs).iter().map(|d| d.code).filter(|c| ["P101", "P102"].contains(c)).collect()
    }

    #[test]
    fn generic_per_mount_flags_differ_freely_between_subvolumes() {
        for flag in ["\"nosymfollow\"", "\"nostrictatime\"", "\"noexec\""] {
            assert_eq!(codes("\"noatime\"", &format!("\"noatime\" {flag}")), Vec::<&str>::new(), "{flag}");
        }
        // A filesystem-wide option set on one subvolume alone still is one.
        assert!(codes("\"noatime\"", "\"noatime\" \"compress=zstd\"").contains(&"P102"));
    }
}
