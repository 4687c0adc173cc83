//! P302 `store-not-own-subvolume`.

use super::{at_storage_or_disko, declare_rule, store_settings, subvolume_path};
use crate::layout::{Holder, path_is_under};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// graphroot, or a volume path outside graphroot (containers.conf `volume_path`),
    /// lies inside a subvolume mounted higher up, usually the root subvolume, instead of on
    /// a subvolume of its own. A subvolume mounted at graphroot, or at the `containers`
    /// directory above it (`/var/lib/containers`), is one of its own.
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

/// Whether a subvolume mounted at `at` holds only container data for `path`: it is
/// mounted at `path`, or at a `containers` directory above it (`/var/lib/containers` for
/// `/var/lib/containers/storage`, `~/.local/share/containers` for rootless storage).
fn dedicated(at: &str, path: &str) -> bool {
    let at = at.trim_end_matches('/');
    at == path.trim_end_matches('/')
        || (path_is_under(path, at) && at.rsplit('/').next().is_some_and(|c| c == "containers"))
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let s = store_settings(inputs);
    let volume_path = inputs
        .containers
        .as_ref()
        .and_then(|c| c.volume_path())
        .map_or_else(|| format!("{}/volumes", s.graphroot.trim_end_matches('/')), |(v, _)| v);
    let mut out = Vec::new();
    for (what, path, offset) in
        [("graphroot", &s.graphroot, s.graphroot_at), ("volume path", &volume_path, None)]
    {
        // Volumes inside graphroot share its fate: the graphroot finding covers them.
        if what == "volume path" && path_is_under(path, &s.graphroot) {
            continue;
        }
        let Some(Holder::Btrfs { fs, subvolume: Some(sv) }) = disko.layout.holder_of(path) else { continue };
        let at = sv.mountpoint.as_deref().unwrap_or("");
        if dedicated(at, path) {
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
