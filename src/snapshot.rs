//! `snapshot`: read-only btrfs snapshots of volumes, taken while the containers that use
//! them are paused. A volume's snapshots lie in a `.snapshots` directory beside its
//! subvolume (for a plugin volume ROOT/<class>/.snapshots, which the plugin never lists
//! since it skips names that start with a dot), each named `<volume>@<UTC stamp>`.

use crate::btrfs;
use crate::class::{Class, Snapshots};
use crate::error::Error;
use crate::podman::{Client, Outcome};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory beside a volume's subvolume that holds its snapshots.
pub const SNAPSHOT_DIR: &str = ".snapshots";

/// The name of a snapshot of `volume` taken at `stamp` (`YYYYMMDDTHHMMSSZ`).
pub fn snapshot_name(volume: &str, stamp: &str) -> String {
    format!("{volume}@{stamp}")
}

/// The stamp of a snapshot of `volume` named `name`, `None` when it is not one.
pub fn stamp_of<'a>(volume: &str, name: &'a str) -> Option<&'a str> {
    let stamp = name.strip_prefix(volume)?.strip_prefix('@')?;
    let stamp_like = stamp.len() == 16
        && stamp.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    stamp_like.then_some(stamp)
}

/// Where a volume whose data is the subvolume `subvolume` keeps its snapshots.
pub fn snapshot_dir(subvolume: &Path) -> PathBuf {
    subvolume.parent().unwrap_or(Path::new("/")).join(SNAPSHOT_DIR)
}

/// Why a volume of `class` may not be snapshotted, `None` when it may.
pub fn refusal(volume: &str, class: Class, force: bool) -> Option<String> {
    (class.info().snapshots == Snapshots::Never && !force).then(|| {
        format!(
            "volume `{volume}` is of class {class}, whose data is rebuilt on loss and never \
             snapshotted (a snapshot only costs space); pass --force to take one anyway"
        )
    })
}

/// One snapshot on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub volume: String,
    pub name: String,
    pub stamp: String,
    pub path: PathBuf,
}

/// The parent directory and last component of `path`.
fn split(path: &Path) -> Result<(&Path, &str), Error> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Error::Usage(format!("{}: not a path to a volume's data", path.display()))),
    }
}

fn open_path(path: &Path) -> Result<rustix::fd::OwnedFd, Error> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(path, "open", e.into()))
}

/// Checks that `data`, the data directory of `volume`, is the root of a btrfs subvolume.
pub fn check_subvolume(volume: &str, data: &Path) -> Result<(), Error> {
    let (parent, name) = split(data)?;
    let dir = open_path(parent)?;
    if btrfs::is_btrfs(rustix::fd::AsFd::as_fd(&dir))
        && btrfs::is_subvolume_at(rustix::fd::AsFd::as_fd(&dir), name)
    {
        return Ok(());
    }
    Err(Error::Environment(format!(
        "volume `{volume}`: its data at {} is not a btrfs subvolume, so it cannot be snapshotted; \
         `podman-btrfs-advise migrate` moves volumes into subvolumes of their own (volumes made \
         through `serve`, the volume plugin, are subvolumes from the start)",
        data.display()
    )))
}

/// Takes a read-only snapshot of `data`, the subvolume of `volume`, stamped `stamp`.
pub fn take(volume: &str, data: &Path, stamp: &str) -> Result<Snapshot, Error> {
    check_subvolume(volume, data)?;
    let dir = snapshot_dir(data);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(&dir, "create directory", e)),
    }
    let name = snapshot_name(volume, stamp);
    let (source, into) = (open_path(data)?, open_path(&dir)?);
    btrfs::snapshot(rustix::fd::AsFd::as_fd(&source), rustix::fd::AsFd::as_fd(&into), &name, true).map_err(
        |e| Error::Environment(format!("volume `{volume}`: {} → {}: {e}", data.display(), dir.display())),
    )?;
    Ok(Snapshot { volume: volume.to_string(), path: dir.join(&name), name, stamp: stamp.to_string() })
}

/// The snapshots of `volume` beside its data `data`, oldest first. No directory: none.
pub fn list(volume: &str, data: &Path) -> Result<Vec<Snapshot>, Error> {
    let dir = snapshot_dir(data);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, "read directory", e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, "read directory", e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if let Some(stamp) = stamp_of(volume, &name) {
            out.push(Snapshot {
                volume: volume.to_string(),
                stamp: stamp.to_string(),
                path: dir.join(&name),
                name,
            });
        }
    }
    out.sort_by(|a, b| a.stamp.cmp(&b.stamp));
    Ok(out)
}

/// How a container was quiesced for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quiesced {
    Paused,
    Stopped,
}

/// Containers paused (or stopped, with `--stop`) for a snapshot. Dropping it unpauses and
/// starts them again, also when the snapshot failed.
pub struct Quiet<'a> {
    client: &'a Client,
    runtime: &'a tokio::runtime::Runtime,
    held: Vec<(String, Quiesced)>,
    /// What unpausing or starting said when it failed, for the report.
    pub failures: Vec<String>,
}

impl<'a> Quiet<'a> {
    pub fn new(client: &'a Client, runtime: &'a tokio::runtime::Runtime) -> Self {
        Quiet { client, runtime, held: Vec::new(), failures: Vec::new() }
    }

    /// Pauses `container`; when that fails, stops it if `stop` allows, else fails.
    pub fn quiesce(&mut self, container: &str, stop: bool) -> Result<Quiesced, Error> {
        match self.runtime.block_on(self.client.pause(container)) {
            Ok(()) => {
                self.held.push((container.to_string(), Quiesced::Paused));
                Ok(Quiesced::Paused)
            }
            Err(e) if stop => {
                tracing::info!("cannot pause {container} ({e}): stopping it");
                if self.runtime.block_on(self.client.stop(container, Duration::from_secs(10)))?
                    == Outcome::Changed
                {
                    self.held.push((container.to_string(), Quiesced::Stopped));
                }
                Ok(Quiesced::Stopped)
            }
            Err(e) => Err(Error::Environment(format!(
                "cannot pause container `{container}`: {e}; pass --stop to stop it for the snapshot instead"
            ))),
        }
    }

    /// Unpauses and starts again what was quiesced; returns what failed.
    pub fn release(&mut self) -> Vec<String> {
        for (container, how) in std::mem::take(&mut self.held).into_iter().rev() {
            let done = match how {
                Quiesced::Paused => self.runtime.block_on(self.client.unpause(&container)),
                Quiesced::Stopped => self.runtime.block_on(self.client.start(&container)).map(drop),
            };
            if let Err(e) = done {
                tracing::error!("container {container} stays {how:?}: {e}");
                self.failures.push(format!("container `{container}` stays {how:?}: {e}"));
            }
        }
        self.failures.clone()
    }
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_volume_and_a_stamp_that_reads_back() {
        let name = snapshot_name("pgdata", "20261130T083800Z");
        assert_eq!(name, "pgdata@20261130T083800Z");
        assert_eq!(stamp_of("pgdata", &name), Some("20261130T083800Z"));
        // Another volume whose name starts the same, and names that are not snapshots.
        assert_eq!(stamp_of("pg", &name), None);
        assert_eq!(stamp_of("pgdata", "pgdata@latest"), None);
        assert_eq!(stamp_of("pgdata", "pgdata"), None);
    }

    #[test]
    fn snapshots_lie_in_a_hidden_directory_beside_the_subvolume() {
        assert_eq!(
            snapshot_dir(Path::new("/srv/vol/database/pg")),
            Path::new("/srv/vol/database/.snapshots")
        );
        assert!(SNAPSHOT_DIR.starts_with('.'), "the plugin skips names that start with a dot");
    }

    #[test]
    fn only_classes_never_snapshotted_are_refused_and_force_overrides() {
        let cache = Class::named("cache").unwrap();
        let message = refusal("c", cache, false).expect("cache is refused");
        assert!(message.contains("--force"), "{message}");
        assert_eq!(refusal("c", cache, true), None);
        for c in Class::ALL {
            assert_eq!(refusal("v", c, false).is_some(), c.info().snapshots == Snapshots::Never, "{c}");
        }
    }
}
