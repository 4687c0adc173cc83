//! A scanned host as a `Profile`, so `plan` can plan from what really runs.
//!
//! Each container becomes a workload. A container with volumes takes the class of its
//! largest volume (volume classification already weighs labels on the volume and on its
//! containers) and their total size; one without takes its own class. Volumes no container
//! uses still hold data and become workloads of their own.

use super::{ScanReport, VolumeReport};
use crate::classify::{Classified, Evidence, Profile};
use crate::error::Error;
use crate::inventory::{DiskMode, Host, Lifetime, Source, Workload};
use std::collections::BTreeSet;
use std::path::Path;

/// Names must fit the spec's rule, since they end up in paths and commands.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(63)
        .collect();
    if cleaned.is_empty() { "unnamed".into() } else { cleaned }
}

fn image_size(report: &ScanReport, image_id: &str) -> u64 {
    report.images.iter().find(|i| i.id == image_id || image_id.starts_with(&i.id)).map_or(0, |i| i.size)
}

fn prefixed(evidence: &[Evidence], volume: &str) -> Vec<Evidence> {
    evidence
        .iter()
        .cloned()
        .map(|mut e| {
            e.detail = format!("volume `{volume}`: {}", e.detail);
            e
        })
        .collect()
}

pub fn to_profile(report: &ScanReport, host: Host, source: Source) -> Profile {
    let mut names = BTreeSet::new();
    let mut unique = |base: String| {
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    };
    let mut workloads = Vec::new();
    for c in &report.containers {
        let volumes: Vec<&VolumeReport> =
            report.volumes.iter().filter(|v| v.volume.used_by.contains(&c.container.name)).collect();
        let largest = volumes.iter().max_by_key(|v| v.volume.size.unwrap_or(0));
        let (class, evidence) = match largest {
            Some(v) => (v.class, prefixed(&v.evidence, &v.volume.name)),
            None => (c.class, c.evidence.clone()),
        };
        // A volume counts as data to place even when empty or not measured.
        let volume_size: u64 = volumes.iter().map(|v| v.volume.size.unwrap_or(0).max(1)).sum();
        let explicit = evidence.first().is_some_and(|e| e.kind == crate::classify::EvidenceKind::Explicit);
        workloads.push(Classified {
            workload: Workload {
                name: unique(safe_name(&c.container.name)),
                image: c.container.image.clone(),
                class: explicit.then_some(class),
                count: 1,
                image_size: image_size(report, &c.container.image_id),
                volume_size,
                lifetime: if c.container.auto_remove { Lifetime::Short } else { Lifetime::Long },
                mounts: c
                    .container
                    .mounts
                    .iter()
                    .filter(|m| m.kind == "volume")
                    .map(|m| m.destination.clone())
                    .collect(),
            },
            decided: class,
            evidence,
        });
    }
    for v in report.volumes.iter().filter(|v| v.volume.used_by.is_empty()) {
        let explicit = v.evidence.first().is_some_and(|e| e.kind == crate::classify::EvidenceKind::Explicit);
        workloads.push(Classified {
            workload: Workload {
                name: unique(safe_name(&v.volume.name)),
                image: String::new(),
                class: explicit.then_some(v.class),
                count: 1,
                image_size: 0,
                volume_size: v.volume.size.unwrap_or(0).max(1),
                lifetime: Lifetime::Long,
                mounts: Vec::new(),
            },
            decided: v.class,
            evidence: prefixed(&v.evidence, &v.volume.name),
        });
    }
    Profile { source, host, workloads }
}

/// Facts about the machine for a plan from the live host: its name, the device holding
/// graphroot, the disk's size, and whether the disk is solid-state. `disk` overrides the
/// device; without one the graphroot device must be a block device. The size is the
/// device's when it is a block device here, else that of graphroot's filesystem. Whether
/// the disk is in use is for the caller to check.
pub fn host_facts(report: &ScanReport, disk: Option<&str>, mode: DiskMode) -> Result<Host, Error> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| safe_name(s.trim()))
        .unwrap_or_else(|_| "host".into());
    let graphroot = report.graphroot.as_ref();
    let device = match (disk, graphroot) {
        (Some(d), _) => d.to_string(),
        (None, Some(g)) if g.device.starts_with("/dev/") => g.device.clone(),
        (None, g) => {
            return Err(Error::Usage(format!(
                "cannot tell which disk to lay out: graphroot {} is on {}; pass --disk DEVICE",
                report.storage.graphroot,
                g.map_or("an unknown filesystem", |g| g.device.as_str())
            )));
        }
    };
    crate::inventory::spec::check_device_path(&device).map_err(|e| Error::Usage(format!("--disk: {e}")))?;
    let disk_size = crate::inspect::blockdev::size_bytes(&device).unwrap_or_else(|| {
        rustix::fs::statvfs(Path::new(&report.storage.graphroot))
            .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
            .unwrap_or(0)
    });
    Ok(Host {
        name,
        disk: device.clone(),
        mode,
        disk_size,
        ssd: solid_state(&device),
        rootless: report.rootless,
    })
}

/// `/sys/dev/block/MAJ:MIN/queue/rotational` is 0 on solid-state disks; a partition
/// reads its disk's queue one level up; a device-mapper device has a queue of its own.
pub fn solid_state(device: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(device) else { return false };
    let rdev = meta.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let base = format!("/sys/dev/block/{major}:{minor}");
    [format!("{base}/queue/rotational"), format!("{base}/../queue/rotational")]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|r| r.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_for_paths() {
        assert_eq!(safe_name("web_1"), "web_1");
        assert_eq!(safe_name("../../etc"), "etc");
        assert_eq!(safe_name("a b/c"), "a-b-c");
        assert_eq!(safe_name("///"), "unnamed");
    }
}
