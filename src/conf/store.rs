//! Whether a store holds anything that a driver or graphroot change would strand, and
//! whether a storage.conf is managed by NixOS.

use std::path::{Path, PathBuf};

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

/// The storage drivers whose files a store can hold.
pub const DRIVERS: [&str; 5] = ["overlay", "btrfs", "vfs", "zfs", "devicemapper"];

/// Why a store's contents are not known: something could not be read. Never read as
/// "empty".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

fn unknown(path: &Path, e: &std::io::Error) -> Unknown {
    Unknown { path: path.to_path_buf(), reason: e.to_string() }
}

/// Entries of a containers/storage JSON list (`overlay-images/images.json`, …): 0 when
/// the file does not exist; unknown when it cannot be read or is not a JSON list.
fn json_entries(path: &Path) -> Result<usize, Unknown> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice::<Vec<serde_json::Value>>(&b)
            .map(|v| v.len())
            .map_err(|e| Unknown { path: path.to_path_buf(), reason: format!("not a JSON list: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(unknown(path, &e)),
    }
}

/// Whether a path exists; unknown when a directory on the way cannot be searched.
fn present(path: &Path) -> Result<bool, Unknown> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(unknown(path, &e)),
    }
}

/// Reads a store's own files: `<driver>-images/images.json`, `<driver>-containers/
/// containers.json` for every driver, and the entries of `volumes/`. A store (or a part
/// of it) the caller cannot read is unknown, never empty.
pub fn from_files(graphroot: &Path, volume_path: Option<&Path>) -> Result<Contents, Unknown> {
    // Listing graphroot first: permission denied there is the common case (a rootless
    // user looking at root's store).
    if present(graphroot)? {
        std::fs::read_dir(graphroot).map_err(|e| unknown(graphroot, &e))?;
    }
    let mut images = 0;
    let mut containers = 0;
    for d in DRIVERS {
        images += json_entries(&graphroot.join(format!("{d}-images/images.json")))?;
        containers += json_entries(&graphroot.join(format!("{d}-containers/containers.json")))?;
    }
    let volumes_dir = volume_path.map_or_else(|| graphroot.join("volumes"), Path::to_path_buf);
    let volumes = match std::fs::read_dir(&volumes_dir) {
        Ok(d) => d.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(unknown(&volumes_dir, &e)),
    };
    Ok(Contents {
        images,
        containers,
        volumes,
        source: format!("the store's files under {}", graphroot.display()),
    })
}

/// The drivers other than `driver` whose store directories (`<d>-images`, `<d>-layers`,
/// `<d>-containers`) already lie in `root`, with the first such directory found.
pub fn foreign_drivers(root: &Path, driver: &str) -> Result<Vec<(String, PathBuf)>, Unknown> {
    let mut found = Vec::new();
    for d in DRIVERS.iter().filter(|d| **d != driver) {
        for kind in ["images", "layers", "containers"] {
            let dir = root.join(format!("{d}-{kind}"));
            if present(&dir)? {
                found.push((d.to_string(), dir));
                break;
            }
        }
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_is_unknown_and_missing_is_empty() {
        let dir = std::env::temp_dir().join(format!("podfs-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("overlay-images")).unwrap();
        assert!(from_files(&dir.join("none"), None).unwrap().is_empty());
        std::fs::write(dir.join("overlay-images/images.json"), "[{}, {}]").unwrap();
        assert_eq!(from_files(&dir, None).unwrap().images, 2);
        std::fs::write(dir.join("overlay-images/images.json"), "garbage").unwrap();
        assert!(from_files(&dir, None).is_err(), "a corrupt list is unknown, not empty");
        assert_eq!(foreign_drivers(&dir, "btrfs").unwrap()[0].0, "overlay");
        assert!(foreign_drivers(&dir, "overlay").unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
