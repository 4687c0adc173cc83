//! Whether a store holds anything that a driver or graphroot change would strand, and
//! whether a storage.conf is managed by NixOS.

use std::path::Path;

/// What a store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Contents {
    pub images: usize,
    pub containers: usize,
    pub volumes: usize,
    /// How it was learned: "the Podman socket at …" or "the store's files under …".
    pub source: String,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self.images == 0 && self.containers == 0 && self.volumes == 0
    }
}

/// Entries of a containers/storage JSON list (`overlay-images/images.json`, …).
fn json_entries(path: &Path) -> usize {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .map_or(0, |v| v.len())
}

/// Reads a store's own files: `<driver>-images/images.json`, `<driver>-containers/
/// containers.json` for every driver, and the entries of `volumes/`.
pub fn from_files(graphroot: &Path, volume_path: Option<&Path>) -> Contents {
    const DRIVERS: [&str; 5] = ["overlay", "btrfs", "vfs", "zfs", "devicemapper"];
    let images =
        DRIVERS.iter().map(|d| json_entries(&graphroot.join(format!("{d}-images/images.json")))).sum();
    let containers = DRIVERS
        .iter()
        .map(|d| json_entries(&graphroot.join(format!("{d}-containers/containers.json"))))
        .sum();
    let volumes_dir = volume_path.map_or_else(|| graphroot.join("volumes"), Path::to_path_buf);
    let volumes = std::fs::read_dir(&volumes_dir)
        .map(|d| d.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count())
        .unwrap_or(0);
    Contents {
        images,
        containers,
        volumes,
        source: format!("the store's files under {}", graphroot.display()),
    }
}

/// A storage.conf that NixOS manages: a symlink into the Nix store, or a file nobody may
/// write (mode without write bits, or a read-only filesystem). Root could still force a
/// write, which the next `nixos-rebuild` would undo.
pub fn nixos_managed(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let link = std::fs::symlink_metadata(path).ok()?;
    if link.file_type().is_symlink() {
        let target = std::fs::canonicalize(path).ok()?;
        if target.starts_with("/nix/store") {
            return Some(format!("{} is a link into the Nix store ({})", path.display(), target.display()));
        }
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o222 == 0 {
        return Some(format!(
            "{} is read-only (mode {:o})",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if rustix::fs::statvfs(dir).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY)) {
        return Some(format!("{} is on a read-only filesystem", path.display()));
    }
    None
}
