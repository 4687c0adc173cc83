//! The steps of `migrate --to-disk` that differ from in place: copy into the new disk's
//! subvolumes (its top level mounted privately under the state directory), verify, swap
//! by mounting (the live directory renamed to `NAME.podfs-old-STAMP`, an empty one with
//! its owner and mode made in its place, the subvolume mounted there, outer mounts
//! first), write the persistent mounts, and their rollback and finalize. Each reads where
//! it stands from the filesystem, the mount table and the journal, so it can run again.

use super::disk;
use super::journal::{Journal, Phase, Step, Target, ToDisk};
use super::persist;
use super::podman_ops;
use super::steps::{self, Run, Stop, exists};
use super::tree;
use crate::error::Error;
use rustix::fd::AsFd;
use std::path::{Path, PathBuf};

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

fn disk_of(j: &Journal) -> &ToDisk {
    j.to_disk.as_ref().expect("called for --to-disk journals only")
}

/// The paths of the targets nested in target `i`, relative to it: left out of its copy,
/// kept as empty mount points.
pub fn nested_in(targets: &[Target], i: usize) -> Vec<PathBuf> {
    targets
        .iter()
        .filter(|t| t.inside == Some(i))
        .filter_map(|t| t.path.strip_prefix(&targets[i].path).ok().map(Path::to_path_buf))
        .collect()
}

/// DEV's top level, mounted under the state directory.
pub(super) fn mount_top(d: &ToDisk) -> Result<(), Error> {
    std::fs::create_dir_all(&d.top).map_err(|e| Error::io(&d.top, "create directory", e))?;
    // The first mount of a btrfs sets its filesystem-wide options: the plan's.
    disk::mount(&d.resolved, "/", &d.options, &d.top, false)
}

fn unmount_top(d: &ToDisk) -> Result<(), Error> {
    disk::unmount(&d.top, &d.resolved, "/")?;
    if exists(&d.top) {
        std::fs::remove_dir(&d.top).map_err(|e| Error::io(&d.top, "remove", e))?;
    }
    Ok(())
}

impl Run<'_> {
    pub(super) fn disk_copy(&self, j: &mut Journal) -> Result<(), Stop> {
        let step = Step::Copy;
        let fail = |e: Error| Stop::Failed(step, e);
        steps::quiet(j).map_err(fail)?;
        mount_top(disk_of(j)).map_err(fail)?;
        for i in 0..j.targets.len() {
            self.check_cancel(step)?;
            if j.targets[i].copied {
                continue;
            }
            let t = j.targets[i].clone();
            if !exists(&t.staging) && !disk_of(j).subvolumes[i].made {
                // Recorded first: a crash right after the creation still knows it is ours.
                if let Some(d) = j.to_disk.as_mut() {
                    d.subvolumes[i].made = true;
                }
                self.save(j).map_err(fail)?;
            }
            steps::make_staging(&t).map_err(fail)?;
            let nested = nested_in(&j.targets, i);
            // The mount points first: the copy then gives their parents the source's times.
            for rel in &nested {
                let at = t.staging.join(rel);
                let parent = at.parent().unwrap_or(&t.staging);
                std::fs::create_dir_all(parent)
                    .map_err(|e| fail(Error::io(parent, "create directory", e)))?;
                disk::make_mountpoint(&at, &t.source.join(rel)).map_err(fail)?;
            }
            let d = disk_of(j);
            self.copy_target(&t, &nested, &format!("{} on {}", d.subvolumes[i].name, d.device))?;
            #[cfg(debug_assertions)]
            steps::test_hooks::after_copy(i, &t);
            (self.say)(&format!(
                "copied {} into {} on {}",
                t.source.display(),
                disk_of(j).subvolumes[i].name,
                disk_of(j).device
            ));
            j.targets[i].copied = true;
            self.save(j).map_err(fail)?;
        }
        Ok(())
    }

    pub(super) fn disk_swap(&self, j: &mut Journal) -> Result<(), Stop> {
        let fail = |e: Error| Stop::Failed(Step::Swap, e);
        if j.swapped_at.is_none() {
            j.swapped_at = Some(steps::now_ns());
            self.save(j).map_err(fail)?;
        }
        let d = disk_of(j).clone();
        // Outer targets first: the mount points of nested ones are in the outer copies.
        for (i, t) in j.targets.iter().enumerate() {
            let sub = &d.subvolumes[i];
            if disk::is_mounted(&t.path, &d.resolved, &sub.name).map_err(fail)? {
                continue;
            }
            if t.inside.is_none() {
                match (exists(&t.path), exists(&t.old)) {
                    (true, false) => {
                        steps::rename(&t.path, &t.old).map_err(fail)?;
                        #[cfg(debug_assertions)]
                        steps::test_hooks::swap_changed();
                        disk::make_mountpoint(&t.path, &t.old).map_err(fail)?;
                        #[cfg(debug_assertions)]
                        steps::test_hooks::swap_changed();
                    }
                    (false, true) => {
                        disk::make_mountpoint(&t.path, &t.old).map_err(fail)?;
                        #[cfg(debug_assertions)]
                        steps::test_hooks::swap_changed();
                    }
                    // The mount point made before a crash; anything in it would be hidden.
                    (true, true) if is_empty_dir(&t.path) => {}
                    _ => return Err(fail(steps::unexpected(t))),
                }
            }
            disk::mount(&d.resolved, &sub.name, &d.options, &t.path, false).map_err(fail)?;
            #[cfg(debug_assertions)]
            steps::test_hooks::swap_changed();
            (self.say)(&format!(
                "{} is now {} of {} mounted; the old data is kept at {}",
                t.path.display(),
                sub.name,
                d.device,
                t.old.display()
            ));
        }
        unmount_top(&d).map_err(fail)
    }

    pub(super) fn persist_mounts(&self, j: &mut Journal) -> Result<(), Stop> {
        let fail = |e: Error| Stop::Failed(Step::PersistMounts, e);
        let d = disk_of(j).clone();
        if !d.mounts.written {
            let backup = persist::write(d.mounts.kind, &d.mounts.entries, &d.mounts.lines).map_err(fail)?;
            if let Some(m) = j.to_disk.as_mut().map(|d| &mut d.mounts) {
                m.written = true;
                m.backup = m.backup.take().or(backup);
            }
            self.save(j).map_err(fail)?;
        }
        let m = &disk_of(j).mounts;
        let files: Vec<String> = m.entries.iter().map(|e| e.file.display().to_string()).collect();
        let msg = match m.kind {
            persist::MountsKind::Fstab => format!(
                "wrote the mounts into {}{}",
                m.file.display(),
                m.backup.as_ref().map(|b| format!(" (backup {})", b.display())).unwrap_or_default()
            ),
            persist::MountsKind::Systemd => format!(
                "wrote the mount units {} (enabled for local-fs.target); run `systemctl daemon-reload`",
                files.join(", ")
            ),
            persist::MountsKind::Nixos => format!(
                "wrote {}: import it in configuration.nix (imports = [ {} ];), then run `nixos-rebuild switch`",
                m.file.display(),
                m.file.display()
            ),
            _ => "wrote no persistent mounts (--mounts none): add the entries shown to the host's \
                  configuration, or the mounts end with the next boot"
                .to_string(),
        };
        (self.say)(&msg);
        if !j.notes.iter().any(|n| n.message == msg) {
            j.note(Step::PersistMounts, msg);
        }
        Ok(())
    }

    /// Back to the original from any point before `--finalize`: what runs on the new data
    /// stopped, the persistent mounts it wrote removed, the subvolumes unmounted (inner
    /// first), the old data renamed back; the subvolumes it made deleted when nothing ran
    /// on them yet, else kept and named.
    pub(super) fn disk_rollback(&self, j: &mut Journal) -> Result<(), Error> {
        let d = disk_of(j).clone();
        if j.is_done(Step::Swap) {
            self.stop_again(j)?;
            // A stopped container's cleanup may still hold files on the mounts.
            let paths: Vec<&Path> = j.targets.iter().map(|t| t.path.as_path()).collect();
            if let Err(held) = podman_ops::wait_until_released(&paths, std::time::Duration::from_secs(120)) {
                return Err(Error::Environment(format!(
                    "processes still hold files on {} after two minutes: {}; nothing was unmounted",
                    d.device,
                    held.join("; ")
                )));
            }
            steps::unmount_self_binds(&paths)?;
        }
        steps::writable_again(j)?;
        self.save(j)?;
        for line in persist::remove(d.mounts.kind, &d.mounts.entries, &d.mounts.lines)? {
            (self.say)(&line);
        }
        if let Some(m) = j.to_disk.as_mut().map(|d| &mut d.mounts) {
            m.written = false;
        }
        self.save(j)?;
        for (i, t) in j.targets.iter().enumerate().rev() {
            if disk::unmount(&t.path, &d.resolved, &d.subvolumes[i].name)? {
                (self.say)(&format!("unmounted {} from {}", d.subvolumes[i].name, t.path.display()));
            }
            if t.inside.is_none() && exists(&t.old) {
                if exists(&t.path) {
                    // The empty mount point made by the swap; remove_dir refuses anything else.
                    std::fs::remove_dir(&t.path)
                        .map_err(|e| Error::io(&t.path, "remove the mount point", e))?;
                }
                steps::rename(&t.old, &t.path)?;
            }
        }
        j.done.retain(|s| *s < Step::Swap);
        self.save(j)?;
        let swapped = j.swapped_at.is_some();
        let mut kept = Vec::new();
        if swapped {
            // A run killed in the swap left the top level mounted, where the copies were made.
            unmount_top(&d)?;
            for s in &d.subvolumes {
                kept.push(format!(
                    "kept the new subvolume {} on {} (UUID {}): it holds what ran on it since the swap; delete \
                     it with `btrfs subvolume delete` once nothing there is needed",
                    s.name, d.device, d.uuid
                ));
            }
        } else {
            mount_top(&d)?;
            for (i, t) in j.targets.iter().enumerate() {
                if d.subvolumes[i].made {
                    if steps::delete_staging(t)? {
                        (self.say)(&format!(
                            "deleted the subvolume {} (made by this migration)",
                            d.subvolumes[i].name
                        ));
                    }
                } else if exists(&t.staging) {
                    empty_dir(&t.staging)?;
                    (self.say)(&format!(
                        "emptied the subvolume {} again (found empty)",
                        d.subvolumes[i].name
                    ));
                }
            }
            unmount_top(&d)?;
        }
        for msg in &kept {
            (self.say)(msg);
        }
        self.finish_rollback(j, kept)
    }

    /// Verifies each old copy against the live mount once more (what the host changed
    /// since the swap is its own), then deletes the old copies: the nested targets' lie
    /// inside their outer target's and go with it.
    pub(super) fn disk_finalize(&self, j: &mut Journal) -> Result<(), Error> {
        let since = j.swapped_at.unwrap_or(0);
        let mounts =
            crate::inspect::read_mounts().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
        for (i, t) in j.targets.iter().enumerate().rev() {
            if !exists(&t.old) {
                continue;
            }
            // Leave out the nested targets and what is mounted in the live data now (the
            // root filesystems of running containers).
            let mut skip = nested_in(&j.targets, i);
            skip.extend(tree::mounts_below(&mounts, &t.path));
            tree::verify_except(&t.old, &t.path, &skip, Some(since), self.cancel).map_err(|e| {
                Error::Environment(format!(
                    "{} no longer matches its old copy {}: {e}; nothing was deleted",
                    t.path.display(),
                    t.old.display()
                ))
            })?;
            if t.inside.is_none() {
                steps::delete_old(&t.old)?;
                (self.say)(&format!("verified and deleted the old copy {}", t.old.display()));
            } else {
                (self.say)(&format!("verified {} against its old copy", t.path.display()));
            }
        }
        j.phase = Phase::Finalized;
        self.save(j)
    }
}

/// Removes everything inside `dir` (a subvolume found empty, filled by this migration).
fn empty_dir(dir: &Path) -> Result<(), Error> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read", e))? {
        let p = e.map_err(|e| Error::io(dir, "read", e))?.path();
        let meta = std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, "read", e))?;
        let removed = if meta.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        removed.map_err(|e| Error::io(&p, "remove", e))?;
    }
    let _ = crate::btrfs::open_dir(rustix::fs::CWD, &dir.to_string_lossy())
        .map(|fd| rustix::fs::syncfs(fd.as_fd()));
    Ok(())
}
