//! The migration journal: one JSON file in the state directory holding everything a run
//! needs to continue, roll back or finalize after a crash: what ran, which Podman services
//! were stopped, every target with its live, staging and old paths, and which steps are
//! done. Written atomically and fsynced after every change (crate::output::atomic_write),
//! so a reader sees the state before or after a step, never half of one. A lock file
//! (flock) keeps a second migration out while one runs.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Where the journal lives unless `--state-dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/podman-btrfs-advise/migrate";
const JOURNAL: &str = "journal.json";
const LOCK: &str = "lock";
/// Journals of this version are written; 2 added `--to-disk` (its `to_disk` record and the
/// `persist-mounts` step). Version 1 journals, of in-place migrations, are read as well.
pub const VERSION: u32 = 2;
/// The oldest version read.
const OLDEST: u32 = 1;

/// The steps of a migration, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Preflight,
    StopContainers,
    StopServices,
    Copy,
    Verify,
    Swap,
    /// `--to-disk`: the new mounts written where the host keeps them (nothing in place).
    PersistMounts,
    StartServices,
    StartContainers,
    Check,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Preflight,
        Step::StopContainers,
        Step::StopServices,
        Step::Copy,
        Step::Verify,
        Step::Swap,
        Step::PersistMounts,
        Step::StartServices,
        Step::StartContainers,
        Step::Check,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::StopContainers => "stop-containers",
            Step::StopServices => "stop-services",
            Step::Copy => "copy",
            Step::Verify => "verify",
            Step::Swap => "swap",
            Step::PersistMounts => "persist-mounts",
            Step::StartServices => "start-services",
            Step::StartContainers => "start-containers",
            Step::Check => "check",
        }
    }
}

/// Where the whole migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Steps are running or a run was interrupted: `--resume` or `--rollback`.
    Running,
    /// Every step is done; the old data waits for `--finalize` (or `--rollback`).
    Migrated,
    /// Rolled back to the original state; the journal is kept for the record.
    RolledBack,
    /// The old copies are deleted; nothing is left to roll back to.
    Finalized,
}

/// What a target is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Role {
    Graphroot,
    Volume(String),
    /// The named-volume path (containers.conf `volume_path`) outside graphroot.
    VolumePath,
}

/// One directory that becomes a subvolume of its own at the same path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub role: Role,
    /// The path Podman knows, which keeps its name.
    pub path: PathBuf,
    /// Class of the data (`graphroot` for the image store).
    pub class: String,
    pub nocow: bool,
    pub compression: Option<String>,
    /// Bytes under `path` when planned.
    pub bytes: u64,
    /// Bytes the copy takes on disk: all of them when it cannot share extents (NOCOW).
    pub needs: u64,
    /// Copied with reflinks (FICLONE): no data is written, only metadata.
    pub reflink: bool,
    /// Where the data is read from: `path`, or the original inside the outer target's
    /// old copy once that is swapped.
    pub source: PathBuf,
    /// Where the current data is while the target is swapped; before the swap, the
    /// directory the new subvolume replaces (inside an outer target's staging copy when
    /// nested).
    pub live: PathBuf,
    /// The new subvolume, made empty with the attributes, then filled.
    pub staging: PathBuf,
    /// Where the replaced data is kept until `--finalize`.
    pub old: PathBuf,
    /// Index of the target whose staging copy holds this one's `live`, when nested.
    pub inside: Option<usize>,
    /// The staging subvolume holds a full copy.
    #[serde(default)]
    pub copied: bool,
    /// The copy was compared with the source, file by file.
    #[serde(default)]
    pub verified: bool,
    /// Subvolumes of the old copy (it, or ones nested in it) that migrate made read-only
    /// after the swap, where they lie then; `--rollback` makes them writable again.
    #[serde(default)]
    pub made_read_only: Vec<PathBuf>,
}

/// A running container as it was found, and how it is stopped and started again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub id: String,
    pub name: String,
    /// `running` or `paused`.
    pub state: String,
    /// Seconds its stop waits before SIGKILL.
    pub stop_timeout: u64,
    /// The systemd unit that manages it (`PODMAN_SYSTEMD_UNIT`), stopped and started
    /// through systemctl so systemd does not restart it meanwhile.
    pub unit: Option<String>,
    /// Stopped by this migration (set after the stop succeeded).
    pub stopped: bool,
    /// Started again (set after the start succeeded).
    pub started: bool,
}

/// A Podman API service that holds the store, and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Service {
    /// systemd units (`podman.socket`, `podman.service`) that were active.
    Systemd {
        units: Vec<String>,
        user: bool,
        /// Whose user manager runs them (`systemctl --user`); none for the system's.
        #[serde(default)]
        uid: Option<u32>,
        stopped: bool,
        started: bool,
    },
    /// A `podman system service` started by hand: stopped, and the user starts it again.
    Manual { pid: u32, command: String, stopped: bool },
}

/// How Podman was reached when the migration was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodmanFacts {
    pub url: String,
    pub version: String,
    pub graphroot: String,
    pub runroot: String,
    pub driver: String,
    /// The server's mount namespace differs from ours: `podman` run here is not the one
    /// that served the socket.
    pub foreign_namespace: bool,
}

/// A message kept in the journal for `--status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub step: String,
    pub message: String,
}

/// The whole state of one migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// `YYYYMMDDTHHMMSSZ` of the start; names the staging and old directories.
    pub stamp: String,
    pub phase: Phase,
    pub strategy: String,
    pub podman: PodmanFacts,
    pub targets: Vec<Target>,
    pub containers: Vec<Stopped>,
    pub services: Vec<Service>,
    /// Steps done, in order.
    pub done: Vec<Step>,
    /// When the swap began (ns since the epoch): what changed in the live data after it
    /// was written by the host, not lost by the copy.
    #[serde(default)]
    pub swapped_at: Option<u64>,
    /// The step that was running when the run stopped, with why.
    pub interrupted: Option<Note>,
    pub notes: Vec<Note>,
    /// `--to-disk`: the new disk, its subvolumes and the persistent mounts; `None` in place.
    #[serde(default)]
    pub to_disk: Option<ToDisk>,
}

/// The new disk of a `--to-disk` migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDisk {
    /// The block device as named, and as resolved.
    pub device: String,
    pub resolved: PathBuf,
    /// The btrfs filesystem UUID, which the persistent mounts name.
    pub uuid: String,
    /// The filesystem's size in bytes, and what was free on it when planned.
    pub size: u64,
    #[serde(default)]
    pub free: u64,
    /// Where its top level is mounted (privately) while the data is copied.
    pub top: PathBuf,
    /// The mount options of every subvolume mount (the plan's filesystem-wide ones).
    pub options: Vec<String>,
    /// One per target, in the targets' order.
    pub subvolumes: Vec<DiskSubvolume>,
    pub mounts: Persisted,
}

/// A subvolume of the new disk and the path it is mounted at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSubvolume {
    pub name: String,
    pub path: PathBuf,
    /// Made by this migration (else an empty one found there, made by disko).
    #[serde(default)]
    pub made: bool,
}

/// The persistent mounts: shown before confirming, written by the `persist-mounts` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// fstab, systemd, nixos or none.
    pub kind: crate::migrate::persist::MountsKind,
    /// Each file and the exact text written to it (for fstab, the lines added).
    pub entries: Vec<crate::migrate::persist::Entry>,
    /// The file written (fstab, NixOS module) or the unit directory.
    pub file: PathBuf,
    /// The fstab lines written, each marker followed by its entry (fstab only).
    #[serde(default)]
    pub lines: Vec<String>,
    /// The backup of the fstab made before it was changed.
    #[serde(default)]
    pub backup: Option<PathBuf>,
    #[serde(default)]
    pub written: bool,
}

impl Journal {
    pub fn is_done(&self, step: Step) -> bool {
        // In place there are no new mounts to write.
        self.done.contains(&step) || (step == Step::PersistMounts && self.to_disk.is_none())
    }

    /// The first step not done yet.
    pub fn next_step(&self) -> Option<Step> {
        Step::ALL.into_iter().find(|s| !self.is_done(*s))
    }

    pub fn note(&mut self, step: Step, message: impl Into<String>) {
        self.notes.push(Note { step: step.as_str().into(), message: message.into() });
    }
}

/// The state directory: the journal and its lock.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

/// An exclusive lock on the state directory, held while a migration command runs.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateDir { dir: dir.into() }
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// Takes the lock, or fails at once naming the other run.
    pub fn lock(&self) -> Result<Lock, Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, "create directory", e))?;
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Lock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Environment(format!(
                "another migration runs (it holds the lock {})\n  = help: wait for it to end, or see \
                 `podman-btrfs-advise migrate --status --state-dir {}`",
                path.display(),
                self.dir.display()
            ))),
            Err(e) => Err(Error::io(&path, "lock", e.into())),
        }
    }

    /// The journal, `None` when no migration was ever started here.
    pub fn load(&self) -> Result<Option<Journal>, Error> {
        let path = self.journal_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, "read", e)),
        };
        let journal: Journal = serde_json::from_str(&text).map_err(|e| {
            Error::Environment(format!(
                "the migration journal {} cannot be read ({e}); it is left as it is\n  = help: \
                 nothing is changed without a journal; look at it and at the paths it names",
                path.display()
            ))
        })?;
        if !(OLDEST..=VERSION).contains(&journal.version) {
            return Err(Error::Environment(format!(
                "the migration journal {} has version {} but this tool reads versions {OLDEST} to {VERSION}",
                path.display(),
                journal.version
            )));
        }
        Ok(Some(journal))
    }

    /// Writes the journal atomically and durably.
    pub fn save(&self, journal: &Journal) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(journal).expect("plain data always serializes");
        crate::output::atomic_write(&self.journal_path(), text.as_bytes())
    }

    /// Moves a finished journal aside (`journal.STAMP.json`) so a new migration can start.
    pub fn archive(&self, journal: &Journal) -> Result<PathBuf, Error> {
        let to = self.dir.join(format!("journal.{}.json", journal.stamp));
        std::fs::rename(self.journal_path(), &to).map_err(|e| Error::io(&to, "archive the journal as", e))?;
        Ok(to)
    }
}

/// The path `NAME.podfs-KIND-STAMP` beside `path`.
pub fn beside(path: &Path, kind: &str, stamp: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.podfs-{kind}-{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_order_and_the_next_one_is_the_first_not_done() {
        let mut sorted = Step::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Step::ALL);
        let j = Journal {
            version: VERSION,
            stamp: "20261130T000000Z".into(),
            phase: Phase::Running,
            strategy: "balanced".into(),
            podman: PodmanFacts {
                url: "unix:///x".into(),
                version: "4.3.1".into(),
                graphroot: "/g".into(),
                runroot: "/r".into(),
                driver: "overlay".into(),
                foreign_namespace: false,
            },
            targets: vec![],
            containers: vec![],
            services: vec![],
            done: vec![Step::Preflight, Step::StopContainers],
            swapped_at: None,
            interrupted: None,
            notes: vec![],
            to_disk: None,
        };
        assert_eq!(j.next_step(), Some(Step::StopServices));
        let text = serde_json::to_string(&j).unwrap();
        assert!(text.contains("\"stop-containers\""), "{text}");
        assert_eq!(serde_json::from_str::<Journal>(&text).unwrap(), j);
    }

    #[test]
    fn a_second_lock_is_refused_and_a_journal_survives_a_round_trip() {
        let d = std::env::temp_dir().join(format!("podfs-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let state = StateDir::new(&d);
        let lock = state.lock().unwrap();
        let err = state.lock().unwrap_err().to_string();
        assert!(err.contains("another migration runs"), "{err}");
        drop(lock);
        assert!(state.lock().is_ok());
        assert!(state.load().unwrap().is_none());
        std::fs::write(state.journal_path(), "{not json").unwrap();
        assert!(state.load().unwrap_err().to_string().contains("cannot be read"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn beside_names_a_sibling() {
        assert_eq!(beside(Path::new("/a/storage"), "old", "S"), PathBuf::from("/a/storage.podfs-old-S"));
    }
}
