//! P404 `live-not-mounted`.

use super::{at_disko, declare_rule, live_mounts, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// With `check --live`: a subvolume the disko file mounts that is not mounted at its
    /// mountpoint on the running host, or where another subvolume or filesystem is mounted.
    /// A filesystem that is not btrfs is named once, here; P401 and P403 give no NOCOW or
    /// compression advice for it.
    ///
    /// ## Why it matters
    ///
    /// Data written to that path lands in whatever is mounted above it (often the root
    /// subvolume) with its attributes and in its snapshots, not in the planned subvolume.
    ///
    /// ## Example
    ///
    /// ```text
    /// disko.nix: "@containers-storage".mountpoint = "/var/lib/containers/storage";
    /// host:      /var/lib/containers/storage is a plain directory on /
    /// ```
    ///
    /// ## Fix
    ///
    /// Mount it (`mount /var/lib/containers/storage` with the fstab or NixOS
    /// `fileSystems` entry disko generates), then move any data written meanwhile.
    pub static RULE = {
        code: "P404",
        name: "live-not-mounted",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    live_mounts(inputs)
        .into_iter()
        .filter_map(|l| {
            let sv = l.subvolume;
            let what = match l.live.mount_at(l.mountpoint) {
                None => "nothing is mounted there".to_string(),
                Some(e) if e.fs_type != "btrfs" => {
                    format!(
                        "{} from {} is mounted there, not btrfs (its NOCOW flag and compression are not checked)",
                        e.fs_type, e.source
                    )
                }
                Some(e) if e.subvolume().trim_start_matches('/') != sv.name.trim_start_matches('/') => {
                    format!("subvolume {} is mounted there", e.subvolume())
                }
                Some(_) => return None,
            };
            Some(
                at_disko(
                    &RULE,
                    l.disko,
                    &subvolume_path(l.fs, sv, &["mountpoint"]),
                    format!("subvolume `{}` is not mounted at {}: {what}", sv.name, l.mountpoint),
                )
                .with_help(
                    "mount it with the fileSystems entry disko generates, then move data written meanwhile",
                ),
            )
        })
        .collect()
}
