//! P302 `store-not-own-subvolume`.

use super::{at_storage_or_disko, declare_rule, store_settings, subvolume_path};
use crate::layout::Holder;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// graphroot, or the volume path (containers.conf `volume_path`, by default
    /// `graphroot/volumes`), lies inside a subvolume mounted higher up, usually the root
    /// subvolume, instead of on a subvolume of its own.
    ///
    /// ## Why it matters
    ///
    /// Every snapshot of that subvolume then carries all images, containers and volumes:
    /// root snapshots grow by gigabytes, rolling the root back also rolls container data
    /// back, and NOCOW database files in a snapshot turn copy-on-write again.
    ///
    /// ## Example
    ///
    /// ```nix
    /// subvolumes."@root".mountpoint = "/";   # and nothing at /var/lib/containers/storage
    /// ```
    ///
    /// ## Fix
    ///
    /// Add subvolumes mounted at graphroot and at the volume path, e.g.
    /// `"@containers-storage".mountpoint = "/var/lib/containers/storage";`.
    pub static RULE = {
        code: "P302",
        name: "store-not-own-subvolume",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let s = store_settings(inputs);
    let volume_path = inputs
        .containers
        .as_ref()
        .and_then(|c| c.volume_path())
        .map_or_else(|| format!("{}/volumes", s.graphroot.trim_end_matches('/')), |(v, _)| v);
    let graphroot_holder = disko.layout.holder_of(&s.graphroot);
    let mut out = Vec::new();
    for (what, path, offset) in
        [("graphroot", &s.graphroot, s.graphroot_at), ("volume path", &volume_path, None)]
    {
        let Some(Holder::Btrfs { fs, subvolume: Some(sv) }) = disko.layout.holder_of(path) else { continue };
        let at = sv.mountpoint.as_deref().unwrap_or("");
        if at.trim_end_matches('/') == path.trim_end_matches('/') {
            continue;
        }
        // Volumes inside graphroot's own subvolume share its snapshots, not the root's.
        if what == "volume path"
            && graphroot_holder == Some(Holder::Btrfs { fs, subvolume: Some(sv) })
            && at.trim_end_matches('/') == s.graphroot.trim_end_matches('/')
        {
            continue;
        }
        out.push(
            at_storage_or_disko(
                &RULE,
                inputs,
                offset,
                &subvolume_path(fs, sv, &["mountpoint"]),
                format!(
                    "{what} {path} is not a subvolume of its own: it lies in `{}` mounted at {at}, whose snapshots carry it",
                    sv.name
                ),
            )
            .with_help(format!("add a subvolume mounted at {path}")),
        );
    }
    out
}
