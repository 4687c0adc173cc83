//! Which directories become subvolumes of their own, with which attributes: a pure
//! function of a scan and a strategy, using the same attribute rules as `plan`
//! ([`crate::decide::options`]) and the class table.

use super::journal::{Role, Target, beside};
use crate::classify::EvidenceKind;
use crate::decide::Strategy;
use crate::decide::options::{data_attributes, image_store_compression};
use crate::scan::ScanReport;
use std::path::{Path, PathBuf};

/// Something that stays as it is, and why (for the printed plan).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub what: String,
    pub why: String,
}

/// The targets of an in-place migration; graphroot first, volumes after, so an outer
/// target's staging copy exists before the targets nested in it are swapped there.
pub fn in_place(report: &ScanReport, strategy: Strategy, stamp: &str) -> (Vec<Target>, Vec<Skipped>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    let graphroot = PathBuf::from(&report.storage.graphroot);
    match &report.graphroot {
        Some(p) if p.is_btrfs() && !p.own_subvolume => {
            let compression = image_store_compression(strategy).as_str().to_string();
            targets.push(target(
                Role::Graphroot,
                &graphroot,
                "graphroot",
                false,
                Some(compression),
                None,
                stamp,
            ));
        }
        Some(p) if p.is_btrfs() => skipped.push(Skipped {
            what: "graphroot".into(),
            why: format!("{} is a subvolume of its own already", p.path),
        }),
        Some(p) => skipped.push(Skipped {
            what: "graphroot".into(),
            why: format!("{} is on {}, not btrfs: move it with --to-disk", p.path, p.filesystem),
        }),
        None => {
            skipped.push(Skipped { what: "graphroot".into(), why: "its placement could not be read".into() })
        }
    }
    for v in &report.volumes {
        let name = &v.volume.name;
        let what = format!("volume {name}");
        let info = v.class.info();
        if !info.own_subvolume {
            continue;
        }
        if !v.volume.driver.is_empty() && v.volume.driver != "local" {
            skipped
                .push(Skipped { what, why: format!("driver {} manages its own storage", v.volume.driver) });
            continue;
        }
        let Some(p) = v.placement.as_ref() else {
            skipped.push(Skipped { what, why: "its placement could not be read".into() });
            continue;
        };
        if !p.is_btrfs() {
            skipped.push(Skipped { what, why: format!("{} is on {}, not btrfs", v.data_dir, p.filesystem) });
            continue;
        }
        let declared = v.evidence.first().is_some_and(|e| e.kind == EvidenceKind::Explicit);
        let (nocow, compression) = data_attributes(v.class, strategy, declared);
        let compression = compression.map(|c| c.as_str().to_string());
        if placement_fits(p, nocow, compression.as_deref()) {
            continue;
        }
        let path = PathBuf::from(&v.data_dir);
        let inside = targets
            .iter()
            .position(|t: &Target| t.role == Role::Graphroot && path.starts_with(&t.path) && path != t.path);
        let mut t =
            target(Role::Volume(name.clone()), &path, v.class.as_str(), nocow, compression, inside, stamp);
        if let Some(i) = inside {
            // Made beside the outer staging copy, so that copy verifies against the
            // original without it, and moved into it by the swap.
            let outer = &targets[i];
            t.live = rebase(&path, &outer.path, &outer.staging);
            t.staging = beside(&outer.path, &format!("new-{stamp}-volume"), name);
            t.old = beside(&t.live, "old", stamp);
        }
        targets.push(t);
    }
    (targets, skipped)
}

/// The targets of a `--to-disk` migration, each with the subvolume it gets on the new
/// disk (mounted at `top` while copying): graphroot, the volume path when it lies outside
/// graphroot, and every local volume of a class with a subvolume of its own, whatever
/// filesystem holds them now. Outer targets come first; a target inside another is
/// left out of the outer copy and mounted inside it. All are written in full: nothing is
/// shared across filesystems.
pub fn to_disk(
    report: &ScanReport,
    strategy: Strategy,
    stamp: &str,
    top: &Path,
) -> Result<DiskTargets, String> {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    let graphroot = PathBuf::from(&report.storage.graphroot);
    let compression = Some(image_store_compression(strategy).as_str().to_string());
    targets.push(target(Role::Graphroot, &graphroot, "graphroot", false, compression, None, stamp));
    if let Some(v) = report.storage.volume_path.as_deref().map(PathBuf::from)
        && !v.starts_with(&graphroot)
    {
        // As the plan gives `@containers-volumes` (src/decide/layout.rs).
        let zstd = Some("zstd".to_string());
        targets.push(target(Role::VolumePath, &v, "volumes", false, zstd, None, stamp));
    }
    for v in &report.volumes {
        let name = &v.volume.name;
        if !v.class.info().own_subvolume {
            continue;
        }
        if !v.volume.driver.is_empty() && v.volume.driver != "local" {
            skipped.push(Skipped {
                what: format!("volume {name}"),
                why: format!("driver {} manages its own storage", v.volume.driver),
            });
            continue;
        }
        let declared = v.evidence.first().is_some_and(|e| e.kind == EvidenceKind::Explicit);
        let (nocow, compression) = data_attributes(v.class, strategy, declared);
        let compression = compression.map(|c| c.as_str().to_string());
        let path = PathBuf::from(&v.data_dir);
        targets.push(target(
            Role::Volume(name.clone()),
            &path,
            v.class.as_str(),
            nocow,
            compression,
            None,
            stamp,
        ));
    }
    let inside = super::disk::nesting(&targets);
    let mut names = Vec::new();
    for i in 0..targets.len() {
        let name = super::disk::subvolume_name(&targets[i].role)?;
        let t = &mut targets[i];
        t.inside = inside[i];
        t.reflink = false;
        t.staging = top.join(&name);
        names.push(name);
        if let Some(o) = inside[i] {
            // Its original stays inside the outer target's old copy.
            let outer_old = targets[o].old.clone();
            let outer_path = targets[o].path.clone();
            targets[i].old = rebase(&targets[i].path, &outer_path, &outer_old);
        }
    }
    Ok(DiskTargets { targets, names, skipped })
}

/// The targets of `--to-disk`, with the name of each one's subvolume (same order).
#[derive(Debug)]
pub struct DiskTargets {
    pub targets: Vec<Target>,
    pub names: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// Records what a target holds (`bytes`) and what its copy writes: nothing for a
/// reflinked copy, which shares every extent; else the data's extents (`allocated`),
/// holes left out. NOCOW files cannot share extents with copy-on-write ones, and nothing
/// is shared across filesystems.
pub fn set_size(t: &mut Target, bytes: u64, allocated: u64) {
    t.bytes = bytes;
    t.needs = if t.reflink { 0 } else { allocated };
}

/// A target of unknown size ([`set_size`] measures it).
fn target(
    role: Role,
    path: &Path,
    class: &str,
    nocow: bool,
    compression: Option<String>,
    inside: Option<usize>,
    stamp: &str,
) -> Target {
    Target {
        role,
        path: path.to_path_buf(),
        class: class.into(),
        nocow,
        compression: if nocow { None } else { compression },
        bytes: 0,
        needs: 0,
        reflink: !nocow,
        source: path.to_path_buf(),
        live: path.to_path_buf(),
        staging: beside(path, "new", stamp),
        old: beside(path, "old", stamp),
        inside,
        copied: false,
        verified: false,
        made_read_only: Vec::new(),
    }
}

/// Whether data placed at `p` is where a target with these attributes wants it: a
/// subvolume of its own, NOCOW when asked, with the compression property asked for.
pub fn placement_fits(p: &crate::inspect::Placement, nocow: bool, compression: Option<&str>) -> bool {
    p.own_subvolume
        && (!nocow || p.nocow == Some(true))
        && (compression.is_none() || p.compression.as_deref() == compression)
}

/// `path` below `from`, moved below `to`.
fn rebase(path: &Path, from: &Path, to: &Path) -> PathBuf {
    to.join(path.strip_prefix(from).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Class;
    use crate::classify::Evidence;
    use crate::inspect::Placement;
    use crate::inventory::live::{StorageFacts, Volume};
    use crate::scan::{PlacementSource, Summary, VolumeReport};

    fn placement(path: &str, own: bool, nocow: bool) -> Placement {
        Placement {
            path: path.into(),
            filesystem: "btrfs".into(),
            device: "/dev/x".into(),
            mountpoint: "/".into(),
            subvolume: Some("/".into()),
            own_subvolume: own,
            filesystem_options: vec![],
            mount_options: vec![],
            nocow: Some(nocow),
            compression: None,
        }
    }

    fn volume(name: &str, class: Class, explicit: bool, p: Placement) -> VolumeReport {
        let dir = p.path.clone();
        VolumeReport {
            volume: Volume {
                name: name.into(),
                driver: "local".into(),
                mountpoint: dir.clone(),
                size: Some(1000),
                ..Volume::default()
            },
            class,
            evidence: vec![Evidence {
                kind: if explicit { EvidenceKind::Explicit } else { EvidenceKind::ImageName },
                suggests: class,
                detail: String::new(),
            }],
            data_dir: dir,
            placement: Some(p),
        }
    }

    fn report(volumes: Vec<VolumeReport>) -> ScanReport {
        ScanReport {
            endpoint: "unix:///x".into(),
            podman_version: "4.3.1".into(),
            rootless: false,
            storage: StorageFacts { graphroot: "/g".into(), driver: "overlay".into(), ..Default::default() },
            graphroot: Some(placement("/g", false, false)),
            volume_path: None,
            placement_source: PlacementSource::default(),
            images: vec![],
            containers: vec![],
            volumes,
            findings: vec![],
            summary: Summary::default(),
        }
    }

    #[test]
    fn graphroot_and_misplaced_class_volumes_become_subvolumes_nested_in_the_staging_copy() {
        let class = |n| Class::named(n).unwrap();
        let nocow_class = Class::ALL.into_iter().find(|c| c.info().nocow && c.info().own_subvolume).unwrap();
        let shared = Class::ALL.into_iter().find(|c| !c.info().own_subvolume).unwrap();
        let r = report(vec![
            volume("db", nocow_class, true, placement("/g/volumes/db/_data", false, false)),
            volume("done", nocow_class, true, placement("/g/volumes/done/_data", true, true)),
            volume("plain", shared, false, placement("/g/volumes/plain/_data", false, false)),
            volume("films", class("media"), true, placement("/g/volumes/films/_data", false, false)),
        ]);
        let (mut targets, _) = in_place(&r, Strategy::Balanced, "S");
        targets.iter_mut().for_each(|t| set_size(t, 1000, 800));
        let names: Vec<_> = targets.iter().map(|t| t.role.clone()).collect();
        assert_eq!(names, [Role::Graphroot, Role::Volume("db".into()), Role::Volume("films".into())]);
        let g = &targets[0];
        assert_eq!((g.reflink, g.staging.as_path()), (true, Path::new("/g.podfs-new-S")));
        let db = &targets[1];
        assert!(db.nocow && !db.reflink && db.compression.is_none());
        assert_eq!((db.bytes, db.needs), (1000, 800), "a NOCOW copy writes every extent, holes left out");
        assert_eq!(db.inside, Some(0));
        assert_eq!(db.live, PathBuf::from("/g.podfs-new-S/volumes/db/_data"));
        assert_eq!(db.staging, PathBuf::from("/g.podfs-new-S-volume-db"));
        assert_eq!(db.old, PathBuf::from("/g.podfs-new-S/volumes/db/_data.podfs-old-S"));
        assert_eq!(db.source, PathBuf::from("/g/volumes/db/_data"));
        let films = &targets[2];
        assert_eq!(films.compression.as_deref(), Some(class("media").info().compression.as_str()));
        assert!(films.reflink && films.needs == 0);

        // Reliability keeps undeclared data copy-on-write: the heuristic database volume
        // still gets a subvolume, with compression instead of NOCOW.
        let r =
            report(vec![volume("db", nocow_class, false, placement("/g/volumes/db/_data", false, false))]);
        let (targets, _) = in_place(&r, Strategy::Reliability, "S");
        assert!(!targets[1].nocow && targets[1].compression.is_some());
    }

    #[test]
    fn onto_a_new_disk_every_own_subvolume_volume_moves_nested_in_its_outer_target() {
        let nocow_class = Class::ALL.into_iter().find(|c| c.info().nocow && c.info().own_subvolume).unwrap();
        let shared = Class::ALL.into_iter().find(|c| !c.info().own_subvolume).unwrap();
        let mut ext4 = placement("/g/volumes/db/_data", false, false);
        ext4.filesystem = "ext4".into();
        let mut r = report(vec![
            volume("db", nocow_class, true, ext4),
            volume("plain", shared, false, placement("/v/plain/_data", false, false)),
            volume("done", nocow_class, true, placement("/v/done/_data", true, true)),
        ]);
        r.storage.volume_path = Some("/v".into());
        let mut d = to_disk(&r, Strategy::Balanced, "S", Path::new("/state/disk-S")).unwrap();
        d.targets.iter_mut().for_each(|t| set_size(t, 1000, 1000));
        assert_eq!(d.names, ["@containers-storage", "@containers-volumes", "@volume-db", "@volume-done"]);
        let [g, v, db, done] = &d.targets[..] else { panic!("{:?}", d.targets) };
        assert_eq!((g.role.clone(), v.role.clone()), (Role::Graphroot, Role::VolumePath));
        assert_eq!(v.compression.as_deref(), Some("zstd"));
        assert_eq!((g.inside, v.inside, db.inside, done.inside), (None, None, Some(0), Some(1)));
        assert_eq!(db.staging, PathBuf::from("/state/disk-S/@volume-db"));
        assert_eq!(db.old, PathBuf::from("/g.podfs-old-S/volumes/db/_data"), "inside graphroot's old copy");
        assert_eq!(done.old, PathBuf::from("/v.podfs-old-S/done/_data"));
        assert!(
            d.targets.iter().all(|t| !t.reflink && t.needs == t.bytes),
            "nothing shared across filesystems"
        );
        assert!(db.nocow);

        r.volumes[0].volume.name = "../escape".into();
        assert!(to_disk(&r, Strategy::Balanced, "S", Path::new("/t")).is_err());
    }

    #[test]
    fn a_placement_fits_only_as_a_subvolume_with_the_attributes_asked_for() {
        let mut p = placement("/v", true, false);
        assert!(placement_fits(&p, false, None));
        assert!(!placement_fits(&p, true, None), "NOCOW asked for");
        assert!(!placement_fits(&p, false, Some("zstd")), "compression asked for");
        p.compression = Some("zstd".into());
        assert!(placement_fits(&p, false, Some("zstd")));
        assert!(!placement_fits(&p, false, Some("lzo")), "another compression");
        p.own_subvolume = false;
        assert!(!placement_fits(&p, false, Some("zstd")), "not a subvolume of its own");
    }

    #[test]
    fn a_graphroot_that_is_a_subvolume_already_is_left_and_volumes_swap_beside_themselves() {
        let nocow_class = Class::ALL.into_iter().find(|c| c.info().nocow).unwrap();
        let mut r =
            report(vec![volume("db", nocow_class, true, placement("/g/volumes/db/_data", false, false))]);
        r.graphroot = Some(placement("/g", true, false));
        let (targets, skipped) = in_place(&r, Strategy::Balanced, "S");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].live, PathBuf::from("/g/volumes/db/_data"));
        assert_eq!(targets[0].old, PathBuf::from("/g/volumes/db/_data.podfs-old-S"));
        assert!(skipped[0].why.contains("subvolume of its own already"));
    }
}
