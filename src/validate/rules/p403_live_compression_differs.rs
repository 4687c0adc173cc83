//! P403 `live-compression-differs`.

use super::{at_disko, declare_rule, live_mounts, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// With `check --live`: a subvolume whose `btrfs property get DIR compression` on the
    /// running host differs from what the disko file's `postCreateHook` sets. Only a
    /// btrfs mount is judged: where another filesystem is mounted, P404 says so.
    ///
    /// ## Why it matters
    ///
    /// The property decides compression of every new file below it, whatever the mount
    /// options say: media meant to stay uncompressed is compressed at a CPU cost, or data
    /// meant to be compressed takes its full size.
    ///
    /// ## Example
    ///
    /// ```text
    /// postCreateHook: btrfs property set "$mnt/@podfs-media" compression none
    /// host:           btrfs property get /var/lib/containers/podfs/media compression  →  (unset)
    /// ```
    ///
    /// ## Fix
    ///
    /// `btrfs property set DIR compression VALUE` on the mountpoint; it applies to files
    /// written afterwards (`btrfs filesystem defragment -c` rewrites old ones).
    pub static RULE = {
        code: "P403",
        name: "live-compression-differs",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    live_mounts(inputs)
        .into_iter()
        .filter(|l| !l.subvolume.nocow && l.live.btrfs_at(l.mountpoint).is_some())
        .filter_map(|l| {
            let planned = l.subvolume.compression?;
            let have = l.live.attributes.get(l.mountpoint)?.compression.as_deref().unwrap_or("");
            if have == planned.as_str() {
                return None;
            }
            let m = l.mountpoint;
            Some(
                at_disko(
                    &RULE,
                    l.disko,
                    &subvolume_path(l.fs, l.subvolume, &[]),
                    format!(
                        "subvolume `{}` should have compression {planned}, but {m} has {}",
                        l.subvolume.name,
                        if have.is_empty() {
                            "no compression property".to_string()
                        } else {
                            format!("compression {have}")
                        }
                    ),
                )
                .with_help(format!("btrfs property set {m} compression {planned}")),
            )
        })
        .collect()
}
