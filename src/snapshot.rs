//! `snapshot`: read-only btrfs snapshots of volumes, taken while the containers that use
//! them are paused. A volume's snapshots lie in a `.snapshots` directory beside its
//! subvolume (for a plugin volume `ROOT/<class>/.snapshots`, which the plugin never lists
//! since it skips names that start with a dot), each named `<volume>@<UTC stamp>`.
//! `restore` exchanges a writable copy of one with the volume's data and keeps the data
//! it replaces as another snapshot.

use crate::btrfs;
use crate::class::{Class, Retention, Snapshots};
use crate::error::Error;
use crate::podman::{Client, Outcome};
use rustix::fd::{AsFd, BorrowedFd};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    if btrfs::is_btrfs(dir.as_fd()) && btrfs::is_subvolume_at(dir.as_fd(), name) {
        return Ok(());
    }
    Err(Error::Environment(format!(
        "volume `{volume}`: its data at {} is not a btrfs subvolume, so it cannot be snapshotted; \
         `podman-btrfs-advise migrate` moves volumes into subvolumes of their own (volumes made \
         through `serve`, the volume plugin, are subvolumes from the start)",
        data.display()
    )))
}

/// A stamp (UTC, to the second) that no snapshot of `volume` beside `data` has yet: two
/// snapshots in one second (a snapshot, then a restore that keeps the data it replaces)
/// would otherwise share a name. Waits for the next second when it must.
pub fn unused_stamp(volume: &str, data: &Path) -> String {
    let dir = snapshot_dir(data);
    loop {
        let stamp = crate::output::timestamp();
        if dir.join(snapshot_name(volume, &stamp)).symlink_metadata().is_err() {
            return stamp;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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
    btrfs::snapshot(source.as_fd(), into.as_fd(), &name, true).map_err(|e| {
        Error::Environment(format!("volume `{volume}`: {} → {}: {e}", data.display(), dir.display()))
    })?;
    Ok(Snapshot { volume: volume.to_string(), path: dir.join(&name), name, stamp: stamp.to_string() })
}

/// Every name in the `.snapshots` directory of `parent` (the directory that holds the
/// volumes' subvolumes, shown as `parent_path`), read through its fd without following
/// links; none when there is no such directory. One read serves every volume beside it.
pub fn names_in(parent: BorrowedFd<'_>, parent_path: &Path) -> Result<Vec<String>, Error> {
    let path = parent_path.join(SNAPSHOT_DIR);
    let dir = match btrfs::open_dir(parent, SNAPSHOT_DIR) {
        Ok(dir) => dir,
        Err(e) if e.errno == rustix::io::Errno::NOENT => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, "open", e.errno.into())),
    };
    let entries =
        rustix::fs::Dir::read_from(&dir).map_err(|e| Error::io(&path, "read directory", e.into()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&path, "read directory", e.into()))?;
        names.extend(entry.file_name().to_str().ok().map(str::to_string));
    }
    Ok(names)
}

/// The names among `names` that are snapshots of `volume`, with their stamps, oldest
/// first (UTC stamps sort as text).
pub fn of_volume<'a>(names: &'a [String], volume: &str) -> Vec<(&'a str, &'a str)> {
    let mut mine: Vec<(&str, &str)> =
        names.iter().filter_map(|n| stamp_of(volume, n).map(|stamp| (n.as_str(), stamp))).collect();
    mine.sort_by_key(|&(_, stamp)| stamp);
    mine
}

/// The snapshots of `volume` beside its data `data`, oldest first. No directory: none.
pub fn list(volume: &str, data: &Path) -> Result<Vec<Snapshot>, Error> {
    let parent_path = data.parent().unwrap_or(Path::new("/"));
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let parent = match rustix::fs::open(parent_path, flags, rustix::fs::Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(parent_path, "open", e.into())),
    };
    let names = names_in(parent.as_fd(), parent_path)?;
    let dir = snapshot_dir(data);
    Ok(of_volume(&names, volume)
        .into_iter()
        .map(|(name, stamp)| Snapshot {
            volume: volume.to_string(),
            name: name.to_string(),
            stamp: stamp.to_string(),
            path: dir.join(name),
        })
        .collect())
}

/// Finds the snapshot of `volume` that `wanted` names: its name (`VOLUME@STAMP`) or stamp.
pub fn find<'a>(snapshots: &'a [Snapshot], volume: &str, wanted: &str) -> Result<&'a Snapshot, Error> {
    snapshots.iter().find(|s| s.name == wanted || s.stamp == wanted).ok_or_else(|| {
        let have: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
        Error::Usage(format!(
            "volume `{volume}` has no snapshot `{wanted}` (it has: {})",
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        ))
    })
}

/// The hidden name, beside a volume's data, that a restored copy is made under.
fn restoring_name(data_name: &str) -> String {
    format!(".{data_name}.restoring")
}

/// Puts a writable copy of `from` in place of `data`, the subvolume of `volume`, and keeps
/// the data it replaces (the subvolume itself, moved, then made read-only) as the
/// snapshot stamped `stamp`, which it returns. Nothing is deleted. The containers using the volume must be
/// stopped. The copy is made under a hidden name first and exchanged with the data in
/// one rename, so the volume's path always holds one whole tree.
pub fn restore(volume: &str, data: &Path, from: &Snapshot, stamp: &str) -> Result<Snapshot, Error> {
    check_subvolume(volume, data)?;
    let (parent, data_name) = split(data)?;
    let dir = snapshot_dir(data);
    let kept_name = snapshot_name(volume, stamp);
    if dir.join(&kept_name).symlink_metadata().is_ok() {
        return Err(Error::Environment(format!(
            "{} exists already: run restore again in a second",
            dir.join(&kept_name).display()
        )));
    }
    let parent_fd = open_path(parent)?;
    let snapshots_fd = open_path(&dir)?;
    let temp = restoring_name(data_name);
    let fail =
        |what: &str, e: &dyn std::fmt::Display| Error::Environment(format!("volume `{volume}`: {what}: {e}"));
    let source = open_path(&from.path)?;
    btrfs::snapshot(source.as_fd(), parent_fd.as_fd(), &temp, false).map_err(|e| {
        fail(&format!("copying {} to {}", from.path.display(), parent.join(&temp).display()), &e)
    })?;
    rustix::fs::renameat_with(
        &parent_fd,
        data_name,
        &parent_fd,
        temp.as_str(),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        fail(
            &format!("exchanging {} with its restored copy {temp} (both left as they are)", data.display()),
            &std::io::Error::from(e),
        )
    })?;
    // The volume now holds the snapshot's data; the replaced data lies at `temp`.
    rustix::fs::renameat(&parent_fd, temp.as_str(), &snapshots_fd, kept_name.as_str()).map_err(|e| {
        fail(
            &format!("the replaced data stays at {}", parent.join(&temp).display()),
            &std::io::Error::from(e),
        )
    })?;
    let kept_path = dir.join(&kept_name);
    let kept = open_path(&kept_path)?;
    btrfs::set_read_only(kept.as_fd())
        .map_err(|e| fail(&format!("{} stays writable", kept_path.display()), &e))?;
    Ok(Snapshot { volume: volume.to_string(), name: kept_name, stamp: stamp.to_string(), path: kept_path })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The hour, day, week (starting on Monday) and month a stamp lies in, as numbers that
/// grow with time.
fn buckets(stamp: &str) -> [i64; 4] {
    let n = |r: std::ops::Range<usize>| stamp.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (year, month, day, hour) = (n(0..4), n(4..6), n(6..8), n(9..11));
    let days = days_from_civil(year, month, day);
    // 1970-01-01 was a Thursday: three days later a week begins.
    [days * 24 + hour, days, (days + 3).div_euclid(7), year * 12 + month]
}

/// The snapshots (by stamp) that `keep` preserves: the newest, and the first snapshot of
/// each of the newest N hours, days, weeks and months that hold one (btrbk's model).
pub fn kept_by(keep: &Retention, stamps: &[&str]) -> BTreeSet<String> {
    let mut sorted: Vec<&str> = stamps.to_vec();
    sorted.sort_unstable();
    let mut kept: BTreeSet<String> = sorted.last().map(|s| s.to_string()).into_iter().collect();
    for (unit, count) in [keep.hours, keep.days, keep.weeks, keep.months].into_iter().enumerate() {
        // The first snapshot of each bucket, newest bucket first.
        let mut firsts: Vec<(i64, &str)> = Vec::new();
        for stamp in &sorted {
            let bucket = buckets(stamp)[unit];
            if firsts.last().is_none_or(|(b, _)| *b != bucket) {
                firsts.push((bucket, stamp));
            }
        }
        kept.extend(firsts.iter().rev().take(usize::from(count)).map(|(_, s)| s.to_string()));
    }
    kept
}

/// Deletes snapshot `s` (a subvolume in the `.snapshots` directory this tool made).
pub fn delete(s: &Snapshot) -> Result<(), Error> {
    let (dir, name) = split(&s.path)?;
    let dir_fd = open_path(dir)?;
    btrfs::delete_subvolume(dir_fd.as_fd(), name)
        .map_err(|e| Error::Environment(format!("{}: {e}", s.path.display())))
}

/// How a container was quiesced for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiesced {
    Paused,
    Stopped,
}

impl Quiesced {
    /// The word for it, in JSON and in human output.
    pub fn as_str(self) -> &'static str {
        match self {
            Quiesced::Paused => "paused",
            Quiesced::Stopped => "stopped",
        }
    }
}

impl Serialize for Quiesced {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Containers paused (or stopped, with `--stop`) for a snapshot. Dropping it unpauses and
/// starts them again, also when the snapshot failed.
pub struct Quiet<'a> {
    client: &'a Client,
    runtime: &'a tokio::runtime::Runtime,
    held: Vec<(String, Quiesced)>,
    /// What unpausing or starting said when it failed, for the report.
    failures: Vec<String>,
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
                self.stop(container, false)?;
                Ok(Quiesced::Stopped)
            }
            Err(e) => Err(Error::Environment(format!(
                "cannot pause container `{container}`: {e}; pass --stop to stop it for the snapshot instead"
            ))),
        }
    }

    /// Stops `container` (unpausing it first: Podman 4.3.1 refuses to stop a paused one)
    /// with its own stop timeout, to be started again by [`release`](Self::release).
    pub fn stop(&mut self, container: &str, paused: bool) -> Result<(), Error> {
        if paused {
            self.runtime.block_on(self.client.unpause(container))?;
        }
        if self.runtime.block_on(self.client.stop_with_own_timeout(container))? == Outcome::Changed {
            self.held.push((container.to_string(), Quiesced::Stopped));
        }
        Ok(())
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
    fn a_snapshot_to_restore_is_found_by_name_or_stamp_else_the_error_lists_what_there_is() {
        let one = |stamp: &str| Snapshot {
            volume: "db".into(),
            name: snapshot_name("db", stamp),
            stamp: stamp.into(),
            path: PathBuf::from(format!("/x/.snapshots/db@{stamp}")),
        };
        let all = [one("20261130T080000Z"), one("20261130T090000Z")];
        assert_eq!(find(&all, "db", "db@20261130T090000Z").unwrap().stamp, "20261130T090000Z");
        assert_eq!(find(&all, "db", "20261130T080000Z").unwrap().stamp, "20261130T080000Z");
        let e = find(&all, "db", "db@20261201T000000Z").unwrap_err().to_string();
        assert!(e.contains("db@20261130T080000Z, db@20261130T090000Z"), "{e}");
        assert!(find(&[], "db", "x").unwrap_err().to_string().contains("none"));
        assert!(restoring_name("_data").starts_with('.'), "hidden from the plugin while it is made");
    }

    #[test]
    fn a_simulated_week_of_hourly_database_snapshots_is_thinned_to_what_the_policy_keeps() {
        let Snapshots::Scheduled(policy) = Class::named("database").unwrap().info().snapshots else {
            panic!()
        };
        // One snapshot an hour from Monday 2026-11-23 00:00 to Sunday 2026-11-29 23:00.
        let stamps: Vec<String> =
            (0..7 * 24).map(|h| format!("202611{:02}T{:02}0000Z", 23 + h / 24, h % 24)).collect();
        let refs: Vec<&str> = stamps.iter().map(String::as_str).collect();
        let kept = kept_by(&policy.keep, &refs);
        // 24 hourly: all of Sunday; 7 daily: midnight of each day (Sunday's is among the hourly).
        let mut expected: BTreeSet<String> = (0..24).map(|h| format!("20261129T{h:02}0000Z")).collect();
        expected.extend((23..30).map(|d| format!("202611{d:02}T000000Z")));
        assert_eq!(kept, expected);
        assert_eq!(kept.len(), 30);
    }

    #[test]
    fn weeks_start_on_monday_and_months_and_the_newest_are_kept() {
        // 2026-11-29 is a Sunday, 2026-11-30 a Monday.
        assert_eq!(buckets("20261129T120000Z")[2] + 1, buckets("20261130T000000Z")[2]);
        assert_eq!(buckets("20261123T000000Z")[2], buckets("20261129T235959Z")[2]);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let weekly = Retention { hours: 0, days: 0, weeks: 1, months: 1 };
        let kept = kept_by(&weekly, &["20261101T000000Z", "20261124T000000Z", "20261126T000000Z"]);
        let expected: BTreeSet<String> =
            ["20261101T000000Z", "20261124T000000Z", "20261126T000000Z"].map(String::from).into();
        assert_eq!(kept, expected, "the month's first, the week's first and the newest");
        let none = Retention { hours: 0, days: 0, weeks: 0, months: 0 };
        assert_eq!(kept_by(&none, &["20261101T000000Z", "20261102T000000Z"]).len(), 1, "the newest stays");
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
