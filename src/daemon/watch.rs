//! Re-runs `check` when storage.conf, containers.conf or a configured disko.nix changes.
//!
//! inotify watches each file's directory, not the file: editors and config managers write
//! a new file and rename it over the old one, which replaces the inode a file watch would
//! follow. Changes are collected for a short quiet period, then checked once.

use crate::diagnostic::Severity;
use crate::error::Error;
use crate::validate::{self, Inputs, containers_conf, disko, storage_conf};
use futures_util::StreamExt;
use inotify::{Inotify, WatchDescriptor, WatchMask};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Changes closer together than this are checked together.
const QUIET: Duration = Duration::from_millis(300);

/// The files to watch; `None` is not watched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchedFiles {
    pub disko: Option<PathBuf>,
    pub storage_conf: Option<PathBuf>,
    pub containers_conf: Option<PathBuf>,
}

impl WatchedFiles {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.disko, &self.storage_conf, &self.containers_conf].into_iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }
}

/// The counts of one check, for the summary line and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

/// Loads the files that exist and checks them. A malformed file is an error; a missing
/// one is left out (it may be written later).
pub fn check_files(files: &WatchedFiles) -> Result<Vec<validate::diagnostic::Diagnostic>, Error> {
    let present = |p: &Option<PathBuf>| p.clone().filter(|p| p.exists());
    let disko = present(&files.disko).map(|p| disko::load(&p, disko::NixMode::Auto)).transpose()?;
    let storage = present(&files.storage_conf).map(|p| storage_conf::load(&p)).transpose()?;
    let containers = present(&files.containers_conf).map(|p| containers_conf::load(&p)).transpose()?;
    Ok(validate::check(&Inputs { disko, storage, containers, live: None }))
}

/// Checks and logs every diagnostic as one structured line, then a summary.
pub fn check_and_log(files: &WatchedFiles, why: &str) -> Result<Counts, Error> {
    let diagnostics = match check_files(files) {
        Ok(d) => d,
        Err(e) => {
            match &e {
                Error::Input(i) => tracing::error!(
                    file = %i.file, line = i.line, column = i.column,
                    help = i.help.as_deref().unwrap_or(""),
                    "cannot check after {why}: {}", i.message
                ),
                other => {
                    tracing::error!("cannot check after {why}: {}", other.to_string().replace('\n', " "))
                }
            }
            return Err(e);
        }
    };
    let mut counts = Counts::default();
    for d in &diagnostics {
        let file = d.file.as_deref().unwrap_or("");
        let help = d.help.as_deref().unwrap_or("");
        match d.severity {
            Severity::Error => {
                counts.errors += 1;
                tracing::error!(code = d.code, file, line = d.line, column = d.column, help, "{}", d.message)
            }
            Severity::Warning => {
                counts.warnings += 1;
                tracing::warn!(code = d.code, file, line = d.line, column = d.column, help, "{}", d.message)
            }
            Severity::Info => {
                counts.infos += 1;
                tracing::info!(code = d.code, file, line = d.line, column = d.column, help, "{}", d.message)
            }
        }
    }
    tracing::info!(
        errors = counts.errors,
        warnings = counts.warnings,
        infos = counts.infos,
        "checked the configuration after {why}"
    );
    Ok(counts)
}

/// One watched directory and the file names in it that matter.
struct Watched {
    descriptor: WatchDescriptor,
    names: Vec<OsString>,
}

/// Watches armed on the configuration files' directories, not yet checked.
pub struct Armed {
    files: WatchedFiles,
    events: inotify::EventStream<[u8; 4096]>,
    watched: Vec<Watched>,
}

/// Arms the watches. Call it before saying the daemon is ready and before the first
/// check: a change made after this returns is queued by the kernel and checked, even one
/// made while the first check runs.
pub fn arm(files: &WatchedFiles) -> std::io::Result<Armed> {
    let (inotify, watched) = start(files)?;
    let events = inotify.into_event_stream([0u8; 4096])?;
    Ok(Armed { files: files.clone(), events, watched })
}

/// Runs forever: check once, then after every change.
pub async fn watch(armed: Armed) {
    let Armed { files, mut events, watched } = armed;
    let initial = files.clone();
    let _ = tokio::task::spawn_blocking(move || check_and_log(&initial, "start")).await;
    let relevant = |event: &inotify::Event<OsString>| {
        watched.iter().any(|w| {
            w.descriptor == event.wd && event.name.as_ref().is_some_and(|n| w.names.iter().any(|m| m == n))
        })
    };
    loop {
        let Some(Ok(event)) = events.next().await else {
            tracing::error!("the inotify stream ended; configuration files are no longer watched");
            return std::future::pending().await;
        };
        if !relevant(&event) {
            continue;
        }
        let mut changed = vec![event.name.clone().unwrap_or_default()];
        // Let a burst of writes and renames settle.
        loop {
            match tokio::time::timeout(QUIET, events.next()).await {
                Ok(Some(Ok(e))) if relevant(&e) => changed.push(e.name.clone().unwrap_or_default()),
                Ok(Some(Ok(_))) => {}
                Ok(_) | Err(_) => break,
            }
        }
        changed.sort();
        changed.dedup();
        let why = format!(
            "a change to {}",
            changed.iter().map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
        );
        let files = files.clone();
        let _ = tokio::task::spawn_blocking(move || check_and_log(&files, &why)).await;
    }
}

fn start(files: &WatchedFiles) -> std::io::Result<(Inotify, Vec<Watched>)> {
    let inotify = Inotify::init()?;
    let mut watched: Vec<(PathBuf, Watched)> = Vec::new();
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::ATTRIB;
    for file in files.all() {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { continue };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Some((_, w)) = watched.iter_mut().find(|(d, _)| d == dir) {
            w.names.push(name.to_os_string());
            continue;
        }
        match inotify.watches().add(dir, mask) {
            Ok(descriptor) => {
                tracing::info!(file = %file.display(), "watching for changes");
                watched.push((dir.to_path_buf(), Watched { descriptor, names: vec![name.to_os_string()] }));
            }
            Err(e) => tracing::warn!(file = %file.display(), "cannot watch {}: {e}", dir.display()),
        }
    }
    Ok((inotify, watched.into_iter().map(|(_, w)| w).collect()))
}
