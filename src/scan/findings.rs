//! What a scan reports about where data lies: pure functions of the scan's facts.

use super::{ScanReport, VolumeReport};
use crate::diagnostic::Severity;
use crate::inspect::Placement;
use serde::Serialize;

/// One thing worth an admin's attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, e.g. `volume-cow`.
    pub code: &'static str,
    /// What it is about: `volume pgdata`, `graphroot`.
    pub object: String,
    pub message: String,
    pub help: String,
}

pub fn findings(report: &ScanReport) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(g) = &report.graphroot {
        out.extend(store_findings("graphroot", g, None));
    }
    if let Some(v) = &report.volume_path {
        out.extend(store_findings("volume path", v, report.graphroot.as_ref()));
    }
    for v in &report.volumes {
        out.extend(volume_findings(v));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// graphroot and the volume path: on btrfs at all, and on a subvolume of their own.
fn store_findings(what: &str, p: &Placement, graphroot: Option<&Placement>) -> Option<Finding> {
    if !p.is_btrfs() {
        return (what == "graphroot").then(|| Finding {
            severity: Severity::Info,
            code: "not-btrfs",
            object: what.into(),
            message: format!("{what} {} is on {}, not btrfs", p.path, p.filesystem),
            help: "the subvolume, NOCOW and compression advice applies to btrfs only".into(),
        });
    }
    if p.own_subvolume {
        return None;
    }
    let holder = p.subvolume.clone().unwrap_or_else(|| "?".into());
    // Volumes inside graphroot's own subvolume share its snapshots, not the root's.
    let shared_with_graphroot =
        graphroot.is_some_and(|g| g.own_subvolume && g.subvolume.as_ref() == Some(&holder));
    Some(Finding {
        severity: Severity::Warning,
        code: "shared-subvolume",
        object: what.into(),
        message: if shared_with_graphroot {
            format!(
                "{what} {} is not a subvolume of its own: it lies in graphroot's subvolume {holder}",
                p.path
            )
        } else {
            format!("{what} {} is not a subvolume of its own: it lies in {holder}", p.path)
        },
        help: format!(
            "snapshots of {holder} carry all of this data; give {} a subvolume of its own \
             (see `podman-btrfs-advise plan --from-host`)",
            p.path
        ),
    })
}

pub fn volume_findings(v: &VolumeReport) -> Vec<Finding> {
    let Some(p) = v.placement.as_ref().filter(|p| p.is_btrfs()) else { return Vec::new() };
    let object = format!("volume {}", v.volume.name);
    let class = v.class;
    let mut out = Vec::new();
    match (class.rewrites_in_place(), p.nocow) {
        (true, Some(false)) => out.push(Finding {
            severity: Severity::Warning,
            code: "volume-cow",
            object: object.clone(),
            message: format!("{class} volume {} is on copy-on-write storage ({})", v.volume.name, v.data_dir),
            help: "in-place rewrites fragment copy-on-write files; +C applies only to new, empty files: \
                   make an empty directory with `chattr +C`, copy the data in with `cp --reflink=never` \
                   while the container is stopped, and point the volume at it"
                .into(),
        }),
        (false, Some(true)) => out.push(Finding {
            severity: Severity::Info,
            code: "volume-nocow-unneeded",
            object: object.clone(),
            message: format!("{class} volume {} is NOCOW", v.volume.name),
            help: format!(
                "NOCOW data has no checksums and no compression; only {} gain from it",
                crate::class::nocow_data()
            ),
        }),
        _ => {}
    }
    if class.incompressible() && p.compresses() {
        out.push(Finding {
            severity: Severity::Info,
            code: "media-compressed",
            object,
            message: format!("{class} volume {} is compressed on write", v.volume.name),
            help: format!(
                "already-compressed data only costs CPU: `btrfs property set {} compression none` \
                 (applies to files written afterwards)",
                v.data_dir
            ),
        });
    }
    out
}
