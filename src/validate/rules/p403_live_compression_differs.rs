//! P403 `live-compression-differs`.

use super::{at_disko, declare_rule, subvolume_path};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// With `check --live`: a subvolume whose `btrfs property get DIR compression` on the
    /// running host differs from what the disko file's `postCreateHook` sets.
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
    let (Some(disko), Some(live)) = (&inputs.disko, &inputs.live) else { return Vec::new() };
    let mut out = Vec::new();
    for fs in disko.layout.btrfs_filesystems() {
        for sv in fs.subvolumes.iter().filter(|s| !s.nocow) {
            let (Some(m), Some(planned)) = (&sv.mountpoint, sv.compression) else { continue };
            let Some(attrs) = live.attributes.get(m) else { continue };
            let have = attrs.compression.as_deref().unwrap_or("");
            if have == planned.as_str() {
                continue;
            }
            out.push(
                at_disko(
                    &RULE,
                    disko,
                    &subvolume_path(fs, sv, &[]),
                    format!(
                        "subvolume `{}` should have compression {planned}, but {m} has {}",
                        sv.name,
                        if have.is_empty() {
                            "no compression property".to_string()
                        } else {
                            format!("compression {have}")
                        }
                    ),
                )
                .with_help(format!("btrfs property set {m} compression {planned}")),
            );
        }
    }
    out
}
