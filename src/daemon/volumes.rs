//! The managed root of the volume plugin: each volume is a btrfs subvolume
//! `<root>/<class>/<name>`. Nothing is kept in memory or in a state file; the class of a
//! volume is the directory it lies in, so a restart or a crash loses nothing.
//!
//! Every operation goes through file descriptors opened without following symlinks and a
//! single validated path component, so no request can reach outside the root.

use crate::btrfs;
use crate::class::Class;
use crate::decide::Strategy;
use crate::decide::options::data_attributes;
use crate::error::Error;
use crate::snapshot;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::Mode;
use rustix::io::Errno;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Longest volume name accepted (a file name's limit on Linux).
pub const MAX_NAME: usize = 255;

/// A plugin request that cannot be carried out; the text goes back to Podman as `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub message: String,
    /// The request was wrong (bad name, unknown option), not the host.
    pub bad_request: bool,
}

impl PluginError {
    fn bad(message: impl Into<String>) -> Self {
        PluginError { message: message.into(), bad_request: true }
    }
    fn failed(message: impl Into<String>) -> Self {
        PluginError { message: message.into(), bad_request: false }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A volume name as Podman allows it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 255 bytes.
/// That excludes `/`, `..`, NUL and anything else that could name another place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VolumeName(String);

impl VolumeName {
    pub fn parse(name: &str) -> Result<Self, PluginError> {
        let shown: String = name.chars().take(64).flat_map(char::escape_default).collect();
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if name.is_empty() {
            Err(PluginError::bad("a volume name is required"))
        } else if name.len() > MAX_NAME {
            Err(PluginError::bad(format!("volume name `{shown}…` is longer than {MAX_NAME} bytes")))
        } else if !first_ok || !rest_ok {
            Err(PluginError::bad(format!(
                "invalid volume name `{shown}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
            )))
        } else {
            Ok(VolumeName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `--opt` values of `podman volume create --driver podfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub class: Class,
    /// A qgroup limit on the bytes the volume refers to.
    pub size: Option<u64>,
}

const KNOWN_OPTIONS: [&str; 2] = ["class", "size"];

impl CreateOptions {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Self, PluginError> {
        let mut class = Class::FALLBACK;
        let mut size = None;
        for (key, value) in opts {
            match key.as_str() {
                "class" => {
                    class = value.parse().map_err(|e: crate::class::UnknownClass| {
                        PluginError::bad(format!(
                            "--opt class: {e}; known classes: {}",
                            Class::ALL.map(Class::as_str).join(", ")
                        ))
                    })?
                }
                "size" => {
                    let bytes = crate::size::parse_size(value)
                        .map_err(|e| PluginError::bad(format!("--opt size: {e}")))?;
                    if bytes == 0 {
                        return Err(PluginError::bad("--opt size: a size limit must be above zero"));
                    }
                    size = Some(bytes);
                }
                other => {
                    let hint = crate::suggest::did_you_mean(other, KNOWN_OPTIONS)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    let shown: String = other.chars().take(64).flat_map(char::escape_default).collect();
                    return Err(PluginError::bad(format!(
                        "unknown option `{shown}`{hint}; this driver knows `class` and `size`"
                    )));
                }
            }
        }
        Ok(CreateOptions { class, size })
    }
}

/// What a class's volumes get: its table entry's NOCOW or compression. Volumes are created
/// with an explicit class, so they are treated as declared.
pub fn class_attributes(class: Class) -> (bool, Option<&'static str>) {
    let (nocow, compression) = data_attributes(class, Strategy::Balanced, true);
    (nocow, compression.map(|c| c.as_str()))
}

fn not_btrfs(path: &Path) -> Error {
    Error::Environment(format!(
        "the managed root {} is not on btrfs; point --root at a directory on a btrfs filesystem \
         (by default {})",
        path.display(),
        crate::decide::layout::PODFS_ROOT
    ))
}

/// One volume as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    pub name: String,
    pub class: Class,
    pub mountpoint: PathBuf,
    pub nocow: bool,
    pub compression: Option<String>,
    /// Its snapshots (`CLASS/.snapshots/NAME@STAMP`, as `snapshot` takes them), oldest first.
    pub snapshots: Vec<String>,
}

/// The directory whose subvolumes are the plugin's volumes.
#[derive(Debug)]
pub struct VolumeRoot {
    path: PathBuf,
    dir: OwnedFd,
    /// Remove a volume that still has snapshots (they stay); otherwise such a Remove is refused.
    remove_with_snapshots: bool,
}

impl VolumeRoot {
    /// Opens (and creates, mode 0700) the managed root; it must be on btrfs.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if !path.is_absolute() {
            return Err(Error::Usage(format!("--root {} must be an absolute path", path.display())));
        }
        // Check the filesystem before creating anything, so a wrong --root leaves no trace.
        let existing = path.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        let probe = rustix::fs::open(
            existing,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(existing, "open", e.into()))?;
        if !btrfs::is_btrfs(probe.as_fd()) {
            return Err(not_btrfs(path));
        }
        if !path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| Error::io(path, "create the managed root", e))?;
        }
        let path = std::fs::canonicalize(path).map_err(|e| Error::io(path, "resolve the managed root", e))?;
        let dir = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&path, "open the managed root", e.into()))?;
        if !btrfs::is_btrfs(dir.as_fd()) {
            return Err(not_btrfs(&path));
        }
        Ok(VolumeRoot { path, dir, remove_with_snapshots: false })
    }

    /// Lets Remove delete a volume that still has snapshots; the snapshots stay.
    pub fn removing_volumes_with_snapshots(mut self, allowed: bool) -> Self {
        self.remove_with_snapshots = allowed;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mountpoint(&self, class: Class, name: &str) -> PathBuf {
        self.path.join(class.as_str()).join(name)
    }

    /// The group directory of a class, if it exists (and is a real directory).
    fn group(&self, class: Class) -> Option<OwnedFd> {
        btrfs::open_dir(self.dir.as_fd(), class.as_str()).ok()
    }

    /// The group directory of a class, created with the class's attributes if missing.
    fn group_or_create(&self, class: Class) -> Result<OwnedFd, PluginError> {
        let name = class.as_str();
        match rustix::fs::mkdirat(self.dir.as_fd(), name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {
                let fd = btrfs::open_dir(self.dir.as_fd(), name).map_err(|e| self.failure(name, e))?;
                // New plain files in the group directory follow the class too.
                let (nocow, compression) = class_attributes(class);
                if nocow {
                    btrfs::set_nocow(fd.as_fd()).map_err(|e| self.failure(name, e))?;
                }
                if let Some(c) = compression {
                    btrfs::set_compression(fd.as_fd(), c).map_err(|e| self.failure(name, e))?;
                }
                tracing::info!(group = %self.path.join(name).display(), "created group directory");
                Ok(fd)
            }
            Err(Errno::EXIST) => btrfs::open_dir(self.dir.as_fd(), name).map_err(|e| {
                PluginError::failed(format!(
                    "{} exists but is not a directory ({})",
                    self.path.join(name).display(),
                    std::io::Error::from(e.errno)
                ))
            }),
            Err(e) => Err(PluginError::failed(format!(
                "cannot create {}: {}",
                self.path.join(name).display(),
                std::io::Error::from(e)
            ))),
        }
    }

    fn failure(&self, at: &str, e: btrfs::BtrfsError) -> PluginError {
        PluginError::failed(format!("{}: {e}", self.path.join(at).display()))
    }

    /// The class whose group holds subvolume `name`.
    fn find(&self, name: &VolumeName) -> Option<(Class, OwnedFd)> {
        Class::ALL.into_iter().find_map(|class| {
            let group = self.group(class)?;
            btrfs::is_subvolume_at(group.as_fd(), name.as_str()).then_some((class, group))
        })
    }

    /// What the plugin tells of volume `name`; `snapshot_names` are the names in its
    /// group's `.snapshots` ([`snapshot_names`](Self::snapshot_names)).
    fn info(&self, class: Class, group: &OwnedFd, name: &str, snapshot_names: &[String]) -> VolumeInfo {
        let sub = btrfs::open_dir(group.as_fd(), name).ok();
        VolumeInfo {
            name: name.to_string(),
            class,
            mountpoint: self.mountpoint(class, name),
            nocow: sub.as_ref().is_some_and(|fd| btrfs::nocow(fd.as_fd()) == Ok(true)),
            compression: sub.as_ref().and_then(|fd| btrfs::compression(fd.as_fd()).ok().flatten()),
            snapshots: snapshot::of_volume(snapshot_names, name)
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect(),
        }
    }

    /// The names in the `.snapshots` directory of `class`'s group; none when it cannot be read.
    fn snapshot_names(&self, class: Class, group: &OwnedFd) -> Vec<String> {
        snapshot::names_in(group.as_fd(), &self.path.join(class.as_str())).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            Vec::new()
        })
    }

    fn info_of(&self, class: Class, group: &OwnedFd, name: &str) -> VolumeInfo {
        self.info(class, group, name, &self.snapshot_names(class, group))
    }

    /// Creates the volume's subvolume with its class's attributes. Creating a volume that
    /// already exists with the same class succeeds, so Podman can re-create it after
    /// losing its own database.
    pub fn create(&self, name: &VolumeName, opts: &CreateOptions) -> Result<VolumeInfo, PluginError> {
        if let Some((class, group)) = self.find(name) {
            if class == opts.class {
                tracing::info!(volume = %name, class = %class, "volume exists already; reusing it");
                return Ok(self.info_of(class, &group, name.as_str()));
            }
            return Err(PluginError::bad(format!(
                "volume `{name}` exists already with class {class} at {}",
                self.mountpoint(class, name.as_str()).display()
            )));
        }
        let group = self.group_or_create(opts.class)?;
        let at = format!("{}/{name}", opts.class);
        btrfs::create_subvolume(group.as_fd(), name.as_str()).map_err(|e| {
            if e.errno == Errno::EXIST {
                PluginError::failed(format!(
                    "{} exists and is not a subvolume; move it away first",
                    self.mountpoint(opts.class, name.as_str()).display()
                ))
            } else {
                self.failure(&at, e)
            }
        })?;
        if let Err(e) = self.set_attributes(&group, name, opts) {
            // The subvolume is empty and ours: take it back so no half-made volume stays.
            if let Err(undo) = btrfs::delete_subvolume(group.as_fd(), name.as_str()) {
                tracing::error!(volume = %name, "could not remove the half-made subvolume: {undo}");
            }
            return Err(e);
        }
        Ok(self.info_of(opts.class, &group, name.as_str()))
    }

    fn set_attributes(
        &self,
        group: &OwnedFd,
        name: &VolumeName,
        opts: &CreateOptions,
    ) -> Result<(), PluginError> {
        let at = format!("{}/{name}", opts.class);
        let sub = btrfs::open_dir(group.as_fd(), name.as_str()).map_err(|e| self.failure(&at, e))?;
        let (nocow, compression) = class_attributes(opts.class);
        if nocow {
            btrfs::set_nocow(sub.as_fd()).map_err(|e| self.failure(&at, e))?;
        }
        if let Some(c) = compression {
            btrfs::set_compression(sub.as_fd(), c).map_err(|e| self.failure(&at, e))?;
        }
        if let Some(bytes) = opts.size {
            btrfs::limit_size(sub.as_fd(), bytes).map_err(|e| {
                let mut err = self.failure(&at, e.clone());
                err.bad_request = e.quotas_off();
                err
            })?;
        }
        Ok(())
    }

    pub fn get(&self, name: &VolumeName) -> Result<VolumeInfo, PluginError> {
        let (class, group) = self.find(name).ok_or_else(|| self.missing(name))?;
        Ok(self.info_of(class, &group, name.as_str()))
    }

    fn missing(&self, name: &VolumeName) -> PluginError {
        PluginError::failed(format!("no volume `{name}` under {}", self.path.display()))
    }

    /// Every volume, by class then name. Entries that are not subvolumes with valid names
    /// are left out (and never touched).
    pub fn list(&self) -> Vec<VolumeInfo> {
        let mut out = Vec::new();
        for class in Class::ALL {
            let Some(group) = self.group(class) else { continue };
            // Read the directory already opened without following links, not its path again.
            let Ok(entries) = rustix::fs::Dir::read_from(&group) else { continue };
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
                .filter(|n| VolumeName::parse(n).is_ok() && btrfs::is_subvolume_at(group.as_fd(), n))
                .collect();
            names.sort();
            let snapshot_names = self.snapshot_names(class, &group);
            out.extend(names.iter().map(|n| self.info(class, &group, n, &snapshot_names)));
        }
        out
    }

    /// Deletes the volume's subvolume and its data. Only a subvolume directly in one of the
    /// root's group directories can be deleted.
    pub fn remove(&self, name: &VolumeName) -> Result<(), PluginError> {
        let (class, group) = self.find(name).ok_or_else(|| self.missing(name))?;
        // Unreadable snapshots are not counted as none: the volume stays.
        let names = snapshot::names_in(group.as_fd(), &self.path.join(class.as_str()))
            .map_err(|e| PluginError::failed(format!("volume `{name}` is kept: {e}")))?;
        let snapshots = snapshot::of_volume(&names, name.as_str());
        if !snapshots.is_empty() && !self.remove_with_snapshots {
            let dir = self.path.join(class.as_str()).join(snapshot::SNAPSHOT_DIR);
            return Err(PluginError::failed(format!(
                "volume `{name}` still has {} snapshot(s) in {} (newest {}): removing it would leave \
                 them without their volume. Delete them first (`btrfs subvolume delete {}/{name}@*`; \
                 `snapshot --prune` always keeps the newest), or run `serve --remove-with-snapshots`, \
                 which removes the volume and keeps its snapshots",
                snapshots.len(),
                dir.display(),
                snapshots.last().map_or("", |(n, _)| n),
                dir.display(),
            )));
        }
        btrfs::delete_subvolume(group.as_fd(), name.as_str())
            .map_err(|e| self.failure(&format!("{class}/{name}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_path_component() {
        for good in ["pg", "pg-data_1.0", "A", "0"] {
            assert!(VolumeName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "..", ".", "../../etc", "a/b", "/etc", "a\0b", ".hidden", "-x", "a b", "é"] {
            let e = VolumeName::parse(bad).unwrap_err();
            assert!(e.bad_request, "{bad:?}");
        }
        assert!(VolumeName::parse(&"a".repeat(255)).is_ok());
        let e = VolumeName::parse(&"a".repeat(256)).unwrap_err();
        assert!(e.message.contains("longer than 255"), "{e}");
        // Control characters are shown escaped, never raw.
        let e = VolumeName::parse("a\nb").unwrap_err();
        assert!(e.message.contains("a\\nb"), "{e}");
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn class(name: &str) -> Class {
        Class::named(name).expect(name)
    }

    #[test]
    fn options() {
        let o = CreateOptions::parse(&opts(&[])).unwrap();
        assert_eq!(o, CreateOptions { class: class("general"), size: None });
        let o = CreateOptions::parse(&opts(&[("class", "Database"), ("size", "10G")])).unwrap();
        assert_eq!(o, CreateOptions { class: class("database"), size: Some(10 << 30) });
        let e = CreateOptions::parse(&opts(&[("class", "databse")])).unwrap_err();
        assert!(e.message.contains("did you mean `database`"), "{e}");
        let e = CreateOptions::parse(&opts(&[("clas", "database")])).unwrap_err();
        assert!(e.message.contains("did you mean `class`"), "{e}");
        assert!(CreateOptions::parse(&opts(&[("size", "0")])).is_err());
        assert!(CreateOptions::parse(&opts(&[("size", "-1G")])).is_err());
    }

    #[test]
    fn attributes_follow_the_class() {
        assert_eq!(class_attributes(class("database")), (true, None));
        assert_eq!(class_attributes(class("cache")), (true, None));
        assert_eq!(class_attributes(class("vm")), (true, None));
        assert_eq!(class_attributes(class("media")), (false, Some("none")));
        assert_eq!(class_attributes(class("general")), (false, Some("zstd")));
        for c in Class::ALL {
            let want =
                if c.info().nocow { (true, None) } else { (false, Some(c.info().compression.as_str())) };
            assert_eq!(class_attributes(c), want, "{c}");
            let o = CreateOptions::parse(&opts(&[("class", c.as_str())])).unwrap();
            assert_eq!(o.class, c);
        }
    }
}
