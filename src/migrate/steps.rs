//! Running the steps of a journal: each step is idempotent and reads where it stands
//! from the filesystem and the journal, so a run killed at any point continues
//! (`--resume`) or returns to the original state (`--rollback`). The journal is saved
//! after every change.

use super::journal::{Journal, Phase, Service, StateDir, Step, Target};
use super::podman_ops::{self, Podman};
use super::progress::Progress;
use super::tree;
use crate::error::Error;
use rustix::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a run needs besides the journal.
pub struct Run<'a> {
    pub state: &'a StateDir,
    pub podman: &'a Podman,
    pub cancel: &'a AtomicBool,
    /// One line per thing done, for the human output.
    pub say: &'a dyn Fn(&str),
}

/// Why a run stopped before the end.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C: stopped at a safe point.
    Cancelled(Step),
    Failed(Step, Error),
}

impl Run<'_> {
    pub(super) fn save(&self, j: &Journal) -> Result<(), Error> {
        self.state.save(j)
    }

    pub(super) fn check_cancel(&self, step: Step) -> Result<(), Stop> {
        if self.cancel.load(Ordering::Relaxed) { Err(Stop::Cancelled(step)) } else { Ok(()) }
    }

    /// Runs every step not done yet, in order.
    pub fn forward(&self, j: &mut Journal) -> Result<(), Stop> {
        while let Some(step) = j.next_step() {
            self.check_cancel(step)?;
            tracing::info!(step = step.as_str(), "step");
            let result = match step {
                Step::Preflight => Ok(()),
                Step::StopContainers => self.stop_containers(j),
                Step::StopServices => self.stop_services(j),
                Step::Copy if j.to_disk.is_some() => self.disk_copy(j),
                Step::Swap if j.to_disk.is_some() => self.disk_swap(j),
                Step::Copy => self.copy(j),
                Step::Verify => self.verify(j),
                Step::Swap => self.swap(j),
                Step::PersistMounts if j.to_disk.is_some() => self.persist_mounts(j),
                Step::PersistMounts => Ok(()),
                Step::StartServices => self.start_services(j),
                Step::StartContainers => self.start_containers(j),
                Step::Check => self.check(j),
            };
            match result {
                Ok(()) => {}
                Err(Stop::Failed(s, e)) => {
                    j.interrupted =
                        Some(super::journal::Note { step: s.as_str().into(), message: e.to_string() });
                    let _ = self.save(j);
                    return Err(Stop::Failed(s, e));
                }
                Err(stop) => {
                    j.interrupted = Some(super::journal::Note {
                        step: step.as_str().into(),
                        message: "interrupted".into(),
                    });
                    let _ = self.save(j);
                    return Err(stop);
                }
            }
            j.done.push(step);
            j.interrupted = None;
            if j.next_step().is_none() {
                j.phase = Phase::Migrated;
            }
            self.save(j).map_err(|e| Stop::Failed(step, e))?;
        }
        Ok(())
    }

    fn stop_containers(&self, j: &mut Journal) -> Result<(), Stop> {
        let step = Step::StopContainers;
        for i in 0..j.containers.len() {
            self.check_cancel(step)?;
            if j.containers[i].stopped {
                continue;
            }
            let said = self.podman.stop(&j.containers[i]).map_err(|e| Stop::Failed(step, e))?;
            (self.say)(&said);
            j.containers[i].stopped = true;
            self.save(j).map_err(|e| Stop::Failed(step, e))?;
        }
        Ok(())
    }

    fn stop_services(&self, j: &mut Journal) -> Result<(), Stop> {
        let step = Step::StopServices;
        for i in 0..j.services.len() {
            let said = match &j.services[i] {
                Service::Systemd { stopped: true, .. } | Service::Manual { stopped: true, .. } => continue,
                s => podman_ops::stop_service(s).map_err(|e| Stop::Failed(step, e))?,
            };
            (self.say)(&said);
            match &mut j.services[i] {
                Service::Systemd { stopped, .. } | Service::Manual { stopped, .. } => *stopped = true,
            }
            self.save(j).map_err(|e| Stop::Failed(step, e))?;
        }
        Ok(())
    }

    fn copy(&self, j: &mut Journal) -> Result<(), Stop> {
        let step = Step::Copy;
        let fail = |e: Error| Stop::Failed(step, e);
        quiet(j).map_err(fail)?;
        for i in 0..j.targets.len() {
            self.check_cancel(step)?;
            if j.targets[i].copied {
                continue;
            }
            let t = j.targets[i].clone();
            make_staging(&t).map_err(fail)?;
            self.copy_target(&t, &[], &t.staging.display().to_string())?;
            #[cfg(debug_assertions)]
            test_hooks::after_copy(i, &t);
            (self.say)(&format!(
                "copied {} into the new subvolume {}{}",
                t.source.display(),
                t.staging.display(),
                if t.reflink { " (reflinked)" } else { " (every byte written: NOCOW)" }
            ));
            j.targets[i].copied = true;
            self.save(j).map_err(fail)?;
        }
        Ok(())
    }

    /// Copies one target's source into its staging directory, leaving out `exclude`, with
    /// a progress bar; `into` names the target in the error.
    pub(super) fn copy_target(
        &self,
        t: &Target,
        exclude: &[std::path::PathBuf],
        into: &str,
    ) -> Result<(), Stop> {
        let step = Step::Copy;
        let fail = |e: Error| Stop::Failed(step, e);
        // The copy measures the tree first and reports the totals with its progress.
        let progress = Progress::new(&format!("copy {}", t.path.display()));
        let copied = tree::copy_except(&t.source, &t.staging, t.reflink, exclude, self.cancel, &|p| {
            progress.update(p)
        });
        progress.finish();
        match copied {
            Ok(stats) => {
                tracing::info!(
                    written = stats.bytes_written,
                    reflinked = stats.bytes_reflinked,
                    files = stats.files,
                    "copied {}",
                    t.source.display()
                );
                Ok(())
            }
            Err(tree::CopyError::Cancelled) => Err(Stop::Cancelled(step)),
            Err(e) => Err(fail(Error::Environment(format!(
                "copying {} into {into} stopped: {e}; the original is untouched",
                t.source.display(),
            )))),
        }
    }

    fn verify(&self, j: &mut Journal) -> Result<(), Stop> {
        let step = Step::Verify;
        let fail = |e: Error| Stop::Failed(step, e);
        if let Some(d) = &j.to_disk {
            super::onto_disk::mount_top(d).map_err(fail)?;
        }
        for i in 0..j.targets.len() {
            self.check_cancel(step)?;
            if j.targets[i].verified {
                continue;
            }
            let t = j.targets[i].clone();
            // On a new disk the nested targets are left out of the outer copy.
            let exclude =
                if j.to_disk.is_some() { super::onto_disk::nested_in(&j.targets, i) } else { Vec::new() };
            match tree::verify_except(&t.source, &t.staging, &exclude, None, self.cancel) {
                Ok(()) => {}
                Err(tree::VerifyError::Copy(tree::CopyError::Cancelled)) => {
                    return Err(Stop::Cancelled(step));
                }
                Err(e) => {
                    // The copy is redone by --resume; nothing was swapped.
                    j.targets[i].copied = false;
                    return Err(fail(Error::Environment(format!(
                        "verifying {} against {} failed: {e}; the original is untouched",
                        t.staging.display(),
                        t.source.display()
                    ))));
                }
            }
            let name = match &j.to_disk {
                Some(d) => format!("{} on {}", d.subvolumes[i].name, d.device),
                None => t.staging.display().to_string(),
            };
            (self.say)(&format!("verified {name}: every file matches"));
            j.targets[i].verified = true;
            self.save(j).map_err(fail)?;
        }
        Ok(())
    }

    fn swap(&self, j: &mut Journal) -> Result<(), Stop> {
        if j.swapped_at.is_none() {
            j.swapped_at = Some(now_ns());
            self.save(j).map_err(|e| Stop::Failed(Step::Swap, e))?;
        }
        // Nested targets first: they move into the outer staging copy before it moves.
        for t in j.targets.iter().rev() {
            swap_one(t).map_err(|e| Stop::Failed(Step::Swap, e))?;
            (self.say)(&format!(
                "{} is {} a subvolume of its own; the old data is kept at {}",
                t.path.display(),
                if t.inside.is_some() { "to be" } else { "now" },
                settled(j, t, &t.old).display()
            ));
        }
        Ok(())
    }

    fn start_services(&self, j: &mut Journal) -> Result<(), Stop> {
        start_services(j, self).map_err(|e| Stop::Failed(Step::StartServices, e))
    }

    fn start_containers(&self, j: &mut Journal) -> Result<(), Stop> {
        start_containers(j, self).map_err(|e| Stop::Failed(Step::StartContainers, e))?;
        // Once what ran runs again: finding the subvolumes walks the old copy's directories.
        protect_old_copies(j, self).map_err(|e| Stop::Failed(Step::StartContainers, e))
    }

    fn check(&self, j: &mut Journal) -> Result<(), Stop> {
        if !self.podman.answers() {
            let msg =
                "scan skipped: Podman's API does not answer; run `podman-btrfs-advise scan` once it does";
            (self.say)(msg);
            j.note(Step::Check, msg);
            return Ok(());
        }
        let options = crate::scan::ScanOptions { sizes: false, workers: 4 };
        let report = crate::scan::scan_host(Some(&j.podman.url), options, &|_, _| {})
            .map_err(|e| Stop::Failed(Step::Check, e))?;
        let mut problems = Vec::new();
        for t in &j.targets {
            let placement = match &t.role {
                super::journal::Role::Graphroot => report.graphroot.clone(),
                super::journal::Role::VolumePath => report.volume_path.clone(),
                super::journal::Role::Volume(name) => {
                    report.volumes.iter().find(|v| &v.volume.name == name).and_then(|v| v.placement.clone())
                }
            };
            match placement {
                Some(p) if super::targets::placement_fits(&p, t.nocow, t.compression.as_deref()) => {}
                Some(_) => {
                    problems.push(format!("{} is not a subvolume with its attributes", t.path.display()))
                }
                None => problems.push(format!("{} was not found by the scan", t.path.display())),
            }
        }
        if problems.is_empty() {
            let msg = format!(
                "scan: every target is a subvolume of its own with its attributes ({} findings left)",
                report.findings.len()
            );
            (self.say)(&msg);
            j.note(Step::Check, msg);
            Ok(())
        } else {
            Err(Stop::Failed(
                Step::Check,
                Error::Environment(format!("the scan after the swap: {}", problems.join("; "))),
            ))
        }
    }
}

/// Nothing may write below a target while it is copied: a stopped container's conmon
/// runs its exit command (`podman container cleanup`) after the stop returned, so wait
/// for every process that still holds a file there, and for mounts below it to go.
pub(super) fn quiet(j: &Journal) -> Result<(), Error> {
    let paths: Vec<&Path> = j.targets.iter().map(|t| t.source.as_path()).collect();
    if let Err(held) = podman_ops::wait_until_released(&paths, std::time::Duration::from_secs(120)) {
        return Err(Error::Environment(format!(
            "processes still hold files in the data to copy after two minutes: {}; nothing was copied",
            held.join("; ")
        )));
    }
    unmount_self_binds(&paths)?;
    let mounts = crate::inspect::read_mounts().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
    let below: Vec<String> = mounts
        .iter()
        .map(|m| m.mountpoint.clone())
        .filter(|m| paths.iter().any(|p| Path::new(m).starts_with(p)))
        .collect();
    if !below.is_empty() {
        return Err(Error::Environment(format!(
            "something is mounted in the data to copy: {}; nothing was copied\n  = help: a stopped \
             container's storage is normally unmounted; see what still uses it (`podman ps -a`, `podman mount`)",
            below.join(", ")
        )));
    }
    Ok(())
}

/// Makes the old copies' subvolumes read-only (a plain directory cannot be), listed in the
/// journal before, so that a rollback after a crash makes them writable again.
fn protect_old_copies(j: &mut Journal, run: &Run) -> Result<(), Error> {
    for i in 0..j.targets.len() {
        let old = settled(j, &j.targets[i], &j.targets[i].old);
        if j.targets[i].made_read_only.is_empty() && exists(&old) {
            j.targets[i].made_read_only = tree::writable_subvolumes(&old)?;
            run.save(j)?;
        }
        let made = &j.targets[i].made_read_only;
        if !made.is_empty() {
            tree::set_read_only(made, true)?;
            (run.say)(&format!(
                "made {} subvolume(s) of the old copy {} read-only",
                made.len(),
                old.display()
            ));
        }
    }
    Ok(())
}

/// Makes writable again exactly the old copies' subvolumes [`protect_old_copies`] made
/// read-only, before a rollback puts the old data back in use.
pub(super) fn writable_again(j: &mut Journal) -> Result<(), Error> {
    for t in &mut j.targets {
        tree::set_read_only(&t.made_read_only, false)?;
        t.made_read_only.clear();
    }
    Ok(())
}

/// Unmounts every directory bind-mounted onto itself below `paths`: the overlay driver of
/// a stopped Podman leaves its directory so (seen with Podman 4.3 on ext4). The data is
/// the same with or without it, and Podman makes the mount again when it starts.
pub(super) fn unmount_self_binds(paths: &[&Path]) -> Result<(), Error> {
    let mounts = crate::inspect::read_mounts().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
    let binds = mounts
        .iter()
        .filter(|m| paths.iter().any(|p| Path::new(&m.mountpoint).starts_with(p)))
        .filter(|m| tree::is_self_bind(m, &mounts));
    // Later mounts first: one may lie on another.
    for m in binds.rev() {
        let out = std::process::Command::new("umount")
            .arg(&m.mountpoint)
            .output()
            .map_err(|e| Error::Environment(format!("cannot run umount: {e}")))?;
        if !out.status.success() {
            return Err(Error::Environment(format!(
                "{} (a bind mount of the directory onto itself) cannot be unmounted: {}",
                m.mountpoint,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!("unmounted {}, the storage driver's bind mount of it onto itself", m.mountpoint);
    }
    Ok(())
}

pub(super) fn start_services(j: &mut Journal, run: &Run) -> Result<(), Error> {
    for i in 0..j.services.len() {
        match &j.services[i] {
            Service::Systemd { stopped: true, started: false, .. } => {
                if let Some(said) = podman_ops::start_service(&j.services[i])? {
                    (run.say)(&said);
                }
                if let Service::Systemd { started, .. } = &mut j.services[i] {
                    *started = true;
                }
                run.state.save(j)?;
            }
            Service::Manual { stopped: true, command, .. } => {
                let msg =
                    format!("the Podman service started by hand was stopped: start it again ({command})");
                (run.say)(&msg);
                if !j.notes.iter().any(|n| n.message == msg) {
                    j.note(Step::StartServices, msg);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn start_containers(j: &mut Journal, run: &Run) -> Result<(), Error> {
    for i in 0..j.containers.len() {
        let c = &j.containers[i];
        if !c.stopped || c.started {
            continue;
        }
        let said = run.podman.start(c)?;
        (run.say)(&said);
        j.containers[i].started = true;
        run.state.save(j)?;
    }
    Ok(())
}

/// Whether anything is at `p` (a symlink is not followed).
pub(super) fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

pub(super) fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| Error::io(from, "rename", e))?;
    let dir = to.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync", e))
}

/// Live data to `old`, the new subvolume to the live path; reads where it stands.
fn swap_one(t: &Target) -> Result<(), Error> {
    let (live, staging, old) = (exists(&t.live), exists(&t.staging), exists(&t.old));
    match (live, staging, old) {
        (true, true, false) => {
            rename(&t.live, &t.old)?;
            #[cfg(debug_assertions)]
            test_hooks::swap_changed();
            rename(&t.staging, &t.live)?;
            #[cfg(debug_assertions)]
            test_hooks::swap_changed();
            Ok(())
        }
        (false, true, true) => {
            rename(&t.staging, &t.live)?;
            #[cfg(debug_assertions)]
            test_hooks::swap_changed();
            Ok(())
        }
        (true, false, true) => Ok(()),
        _ => Err(unexpected(t)),
    }
}

/// The reverse of [`swap_one`]: the original back at the live path, the new subvolume
/// back at the staging path.
fn unswap_one(t: &Target) -> Result<(), Error> {
    let (live, staging, old) = (exists(&t.live), exists(&t.staging), exists(&t.old));
    match (live, staging, old) {
        (true, false, true) => {
            rename(&t.live, &t.staging)?;
            rename(&t.old, &t.live)
        }
        (false, true, true) => rename(&t.old, &t.live),
        // Never swapped: whatever of the copy exists is deleted with the staging copy.
        (_, _, false) => Ok(()),
        _ => Err(unexpected(t)),
    }
}

pub(super) fn unexpected(t: &Target) -> Error {
    let state = |p: &Path| if exists(p) { "exists" } else { "missing" };
    Error::Environment(format!(
        "{} is in a state this tool did not leave it in: {} {}, {} {}, {} {}; nothing was changed\n  = help: \
         look at these paths; the journal names every path the migration made",
        t.path.display(),
        t.live.display(),
        state(&t.live),
        t.staging.display(),
        state(&t.staging),
        t.old.display(),
        state(&t.old)
    ))
}

/// Creates the staging subvolume with the target's attributes, unless it exists; an
/// existing one that is still empty gets the attributes again (a crash may have come
/// between creating and setting them).
pub(super) fn make_staging(t: &Target) -> Result<(), Error> {
    let parent = t.staging.parent().unwrap_or(Path::new("/"));
    let name = t.staging.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = crate::btrfs::open_dir(rustix::fs::CWD, &parent.to_string_lossy())
        .map_err(|e| Error::Environment(format!("{}: {e}", parent.display())))?;
    if !exists(&t.staging) {
        crate::btrfs::create_subvolume(dir.as_fd(), &name)
            .map_err(|e| Error::Environment(format!("{}: {e}", t.staging.display())))?;
    } else if !crate::btrfs::is_subvolume_at(dir.as_fd(), &name) {
        return Err(Error::Environment(format!(
            "{} exists and is not a subvolume this tool made; nothing was changed",
            t.staging.display()
        )));
    }
    let empty = std::fs::read_dir(&t.staging).map_err(|e| Error::io(&t.staging, "read", e))?.next().is_none();
    if empty {
        let fd = crate::btrfs::open_dir(dir.as_fd(), &name)
            .map_err(|e| Error::Environment(format!("{}: {e}", t.staging.display())))?;
        if t.nocow {
            crate::btrfs::set_nocow(fd.as_fd())
                .map_err(|e| Error::Environment(format!("{}: {e}", t.staging.display())))?;
        }
        if let Some(c) = &t.compression {
            crate::btrfs::set_compression(fd.as_fd(), c)
                .map_err(|e| Error::Environment(format!("{}: {e}", t.staging.display())))?;
        }
    }
    Ok(())
}

/// Deletes a staging subvolume this migration made (checked: a subvolume root at the
/// path the journal names).
pub(super) fn delete_staging(t: &Target) -> Result<bool, Error> {
    if !exists(&t.staging) {
        return Ok(false);
    }
    let parent = t.staging.parent().unwrap_or(Path::new("/"));
    let name = t.staging.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = crate::btrfs::open_dir(rustix::fs::CWD, &parent.to_string_lossy())
        .map_err(|e| Error::Environment(format!("{}: {e}", parent.display())))?;
    if !crate::btrfs::is_subvolume_at(dir.as_fd(), &name) {
        return Err(Error::Environment(format!(
            "{} is not the subvolume this migration made; it is left alone",
            t.staging.display()
        )));
    }
    // With the subvolumes nested in it (a copy of the btrfs storage driver's layers).
    tree::delete(&t.staging)?;
    Ok(true)
}

impl Run<'_> {
    /// Returns to the original state from any point before `--finalize`: what runs on the
    /// new data stopped, swaps undone (outer targets first, so nested paths exist again),
    /// the new subvolumes deleted when nothing ran on them (kept, and named, when
    /// containers ran on them since the swap), services and containers started as they
    /// were.
    pub fn rollback(&self, j: &mut Journal) -> Result<(), Error> {
        if j.to_disk.is_some() {
            return self.disk_rollback(j);
        }
        let swapped = j.swapped_at.is_some();
        // Done once: after the swaps are undone, a run that failed later does not stop
        // again what the user started meanwhile.
        if j.is_done(Step::Swap) {
            self.stop_again(j)?;
            quiet(j)?;
        }
        writable_again(j)?;
        self.save(j)?;
        for t in &j.targets {
            unswap_one(t)?;
        }
        j.done.retain(|s| *s < Step::Swap);
        self.save(j)?;
        let mut kept = Vec::new();
        for t in j.targets.iter().rev() {
            if swapped {
                // Containers may have written to it since the swap: their data, kept.
                if exists(&t.staging) {
                    let msg = format!(
                        "kept the new subvolume {}: it holds what ran on it since the swap; delete it \
                         with `btrfs subvolume delete` once nothing there is needed",
                        t.staging.display()
                    );
                    (self.say)(&msg);
                    kept.push(msg);
                }
            } else if delete_staging(t)? {
                (self.say)(&format!(
                    "deleted the new subvolume {} (made by this migration)",
                    t.staging.display()
                ));
            }
        }
        self.finish_rollback(j, kept)
    }

    /// The end of every rollback: `kept` noted, the copy steps undone in the journal,
    /// services and containers started as they were.
    pub(super) fn finish_rollback(&self, j: &mut Journal, kept: Vec<String>) -> Result<(), Error> {
        for msg in kept {
            j.note(Step::Swap, msg);
        }
        for t in &mut j.targets {
            t.copied = false;
            t.verified = false;
        }
        j.done.retain(|s| *s < Step::Copy);
        self.save(j)?;
        start_services(j, self)?;
        start_containers(j, self)?;
        j.phase = Phase::RolledBack;
        j.interrupted = None;
        self.save(j)
    }

    /// After the swap, what was started again runs on the new data: stop it (and the API
    /// services) once more before the original goes back.
    pub(super) fn stop_again(&self, j: &mut Journal) -> Result<(), Error> {
        for i in 0..j.containers.len() {
            if j.containers[i].started {
                let said = self.podman.stop(&j.containers[i])?;
                (self.say)(&said);
                j.containers[i].started = false;
                self.save(j)?;
            }
        }
        for i in 0..j.services.len() {
            if let Service::Systemd { started: true, .. } = &j.services[i] {
                (self.say)(&podman_ops::stop_service(&j.services[i])?);
                if let Service::Systemd { started, .. } = &mut j.services[i] {
                    *started = false;
                }
                self.save(j)?;
            }
        }
        // A service the user started again by hand holds the new store now.
        for s in podman_ops::api_services(self.podman.server_pid(), &j.podman.url)? {
            if let Service::Manual { .. } = s {
                (self.say)(&podman_ops::stop_service(&s)?);
                if !j.services.iter().any(|k| matches!(k, Service::Manual { .. })) {
                    j.services.push(s);
                }
            }
        }
        Ok(())
    }

    /// Verifies each old copy against the live data once more, then deletes it: nested
    /// targets first (their old copies lie inside the outer target's live tree). What the
    /// host changed after the swap (inode changed since) is its own doing and not
    /// compared; everything else must still match.
    pub fn finalize(&self, j: &mut Journal) -> Result<(), Error> {
        if j.to_disk.is_some() {
            return self.disk_finalize(j);
        }
        for (i, t) in j.targets.iter().enumerate().rev() {
            let old = settled(j, t, &t.old);
            if !exists(&old) {
                continue;
            }
            let since = j.swapped_at.unwrap_or(0);
            // Targets nested in this one became subvolumes and were checked on their own.
            let nested = super::onto_disk::nested_in(&j.targets, i);
            tree::verify_except(&old, &t.path, &nested, Some(since), self.cancel).map_err(|e| {
                Error::Environment(format!(
                    "{} no longer matches its old copy {}: {e}; nothing was deleted",
                    t.path.display(),
                    old.display()
                ))
            })?;
            delete_old(&old)?;
            (self.say)(&format!("verified and deleted the old copy {}", old.display()));
        }
        j.phase = Phase::Finalized;
        self.save(j)?;
        Ok(())
    }
}

/// Where `p`, named inside an outer target's staging copy, lies once that is swapped.
pub fn settled(j: &Journal, t: &Target, p: &Path) -> std::path::PathBuf {
    match t.inside.and_then(|i| j.targets.get(i)) {
        Some(outer) => match p.strip_prefix(&outer.staging) {
            Ok(rest) => outer.path.join(rest),
            Err(_) => p.to_path_buf(),
        },
        None => p.to_path_buf(),
    }
}

/// Deletes an old copy, file by file; never through a mount point below it.
pub(super) fn delete_old(old: &Path) -> Result<(), Error> {
    let name = old.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(".podfs-old-") {
        return Err(Error::Environment(format!("{} is not an old copy this tool made", old.display())));
    }
    let mounts = crate::inspect::read_mounts().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
    if let Some(m) = mounts.iter().find(|m| Path::new(&m.mountpoint).starts_with(old)) {
        return Err(Error::Environment(format!(
            "{} is mounted inside the old copy {}; nothing was deleted\n  = help: unmount it, then run \
             --finalize again",
            m.mountpoint,
            old.display()
        )));
    }
    Ok(tree::delete(old)?)
}

/// Nanoseconds since the epoch.
pub(super) fn now_ns() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
}

/// Bytes available to unprivileged users on the filesystem of `path`, after the
/// filesystem committed what it was doing (freed space shows only then).
pub fn available(path: &Path) -> u64 {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = rustix::fs::syncfs(&f);
    }
    rustix::fs::statvfs(path).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0)
}

/// Hooks for the system tests' fault injection, compiled into debug builds only (release
/// builds, which users run, have no trace of them) and named `PODFS_TEST_…` so no
/// setting of a user's can trigger them:
///
/// - `PODFS_TEST_CORRUPT_COPY=1`: after a copy that wrote every byte (NOCOW), flip the
///   first byte of the largest file of the copy, for the verifier to find.
/// - `PODFS_TEST_PAUSE_DIR=DIR`: after copying target N, create `DIR/copied-N` and wait
///   (up to two minutes) for `DIR/continue-N`, so a test can change the source or fill
///   the filesystem at a known point with real tools.
/// - `PODFS_TEST_KILL_IN_SWAP=N`: the process kills itself (SIGKILL) right after the
///   swap step's N-th change to the filesystem (a rename, a mount point made, a mount),
///   so a test can resume or roll back from between any two of them.
#[cfg(debug_assertions)]
pub(super) mod test_hooks {
    use super::Target;
    use std::path::{Path, PathBuf};

    /// Counts the swap step's changes; see `PODFS_TEST_KILL_IN_SWAP`.
    pub fn swap_changed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CHANGES: AtomicUsize = AtomicUsize::new(0);
        let n = CHANGES.fetch_add(1, Ordering::SeqCst) + 1;
        let kill_at = std::env::var("PODFS_TEST_KILL_IN_SWAP").ok().and_then(|v| v.parse::<usize>().ok());
        if kill_at == Some(n) {
            tracing::warn!("test hook: killed after the swap's change {n}");
            let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        }
    }

    pub fn after_copy(index: usize, t: &Target) {
        if std::env::var_os("PODFS_TEST_CORRUPT_COPY").is_some() && !t.reflink {
            use std::os::unix::fs::FileExt;
            let file = largest_file(&t.staging);
            let opened =
                file.as_ref().and_then(|f| std::fs::OpenOptions::new().read(true).write(true).open(f).ok());
            if let (Some(path), Some(f)) = (file, opened) {
                let mut byte = [0u8];
                let modified = f.metadata().and_then(|m| m.modified());
                if f.read_exact_at(&mut byte, 0).is_ok() && f.write_all_at(&[byte[0] ^ 0xff], 0).is_ok() {
                    // Only the content differs: the time stays, as a bad disk would leave it.
                    if let Ok(t) = modified {
                        let _ = f.set_modified(t);
                    }
                    tracing::warn!("test hook: corrupted one byte of {}", path.display());
                }
            }
        }
        if let Some(dir) = std::env::var_os("PODFS_TEST_PAUSE_DIR").map(PathBuf::from) {
            let _ = std::fs::write(dir.join(format!("copied-{index}")), b"");
            let go = dir.join(format!("continue-{index}"));
            let start = std::time::Instant::now();
            while !go.exists() && start.elapsed() < std::time::Duration::from_secs(120) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    fn largest_file(dir: &Path) -> Option<PathBuf> {
        let mut best: Option<(u64, PathBuf)> = None;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let m = e.metadata().ok()?;
                if m.is_dir() {
                    stack.push(e.path());
                } else if m.is_file() && best.as_ref().is_none_or(|(size, _)| m.len() > *size) {
                    best = Some((m.len(), e.path()));
                }
            }
        }
        best.map(|(_, p)| p)
    }
}
