//! P402 `live-options-lost`.

use super::{at_disko, declare_rule, fs_wide, live_mounts, option_offset, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// With `check --live`: filesystem-wide options a subvolume's mount asks for that are
    /// not in force on the running host, because another mount of the same filesystem came
    /// first with other options (or the filesystem was mounted by hand).
    ///
    /// ## Why it matters
    ///
    /// The kernel keeps the filesystem-wide options of the first mount and ignores the
    /// rest silently: a host believed to compress, discard or allow rootless subvolume
    /// removal does not.
    ///
    /// ## Example
    ///
    /// ```text
    /// disko.nix: "@data" = { mountpoint = "/data"; mountOptions = [ "compress=zstd:1" ]; };
    /// mountinfo: … /data … - btrfs /dev/sda2 rw,ssd,space_cache=v2,subvol=/@data
    /// ```
    ///
    /// ## Fix
    ///
    /// Give every mount of the filesystem the same options (see P101) and remount, or
    /// reboot so that the first mount carries them.
    pub static RULE = {
        code: "P402",
        name: "live-options-lost",
        severity: Severity::Warning,
        check: check,
    };
}

/// Whether a planned option is in force among a mount's superblock options.
fn in_force(planned: &str, live: &[String]) -> bool {
    let (key, value) = planned.split_once('=').unwrap_or((planned, ""));
    live.iter().any(|o| {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        if k != key {
            return false;
        }
        match key {
            // `compress=zstd` shows as `compress=zstd:3`: compare the level only if planned.
            "compress" | "compress-force" if !value.contains(':') => v.split(':').next() == Some(value),
            _ => v == value,
        }
    })
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    live_mounts(inputs)
        .into_iter()
        .filter_map(|l| {
            let (disko, fs, sv, m) = (l.disko, l.fs, l.subvolume, l.mountpoint);
            let entry = l.live.mount_at(m).filter(|e| e.fs_type == "btrfs")?;
            let lost: Vec<&str> =
                fs_wide(&sv.mount_options).into_iter().filter(|o| !in_force(o, &entry.super_options)).collect();
            if lost.is_empty() {
                return None;
            }
            let in_force_now: Vec<&str> =
                entry.super_options.iter().map(String::as_str).filter(|o| !o.starts_with("subvol")).collect();
            let mut d = at_disko(&RULE, disko, &subvolume_path(fs, sv, &["mountOptions"]), format!(
                "{} asked for on {m} {} not in force: the filesystem runs with {}",
                lost.join(","),
                if lost.len() == 1 { "is" } else { "are" },
                in_force_now.join(",")
            ))
            .with_help("another mount of this filesystem came first with other options; make them identical and remount");
            if let Some(o) = option_offset(disko, fs, sv, lost[0]) {
                (d.line, d.column) = disko.source.position(o);
            }
            Some(d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn compression_level_is_compared_only_when_planned() {
        let live = vec!["rw".to_string(), "compress=zstd:3".to_string(), "ssd".to_string()];
        assert!(super::in_force("compress=zstd", &live));
        assert!(super::in_force("compress=zstd:3", &live));
        assert!(!super::in_force("compress=zstd:1", &live));
        assert!(super::in_force("ssd", &live));
        assert!(!super::in_force("discard=async", &live));
    }
}
