//! Which subvolumes of a plan are snapshotted, how often and for how long: the schedule of
//! the classes whose data each one holds (`ClassInfo::snapshots`).

use super::Plan;
use crate::class::{Class, Snapshots};
use crate::layout::Subvolume;

/// A subvolume that holds workload data, with the schedule its classes ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolumeSnapshots<'a> {
    pub subvolume: &'a Subvolume,
    /// The classes whose data it holds, in table order.
    pub classes: Vec<Class>,
    /// The most frequent schedule among them: data that asks for snapshots gets them even
    /// when it shares the subvolume with data that does not.
    pub snapshots: Snapshots,
}

impl SubvolumeSnapshots<'_> {
    pub fn mountpoint(&self) -> &str {
        self.subvolume.mountpoint.as_deref().unwrap_or_default()
    }
}

/// Where a subvolume's snapshots go: a directory inside it. Snapshots are subvolumes, and
/// a nested subvolume is left out of snapshots of its parent, so they never pile up; the
/// volume plugin skips it (`.` names are no volumes).
pub fn snapshot_dir(mountpoint: &str) -> String {
    format!("{}/.snapshots", mountpoint.trim_end_matches('/'))
}

/// Every mounted subvolume that holds workload data, in layout order. Subvolumes without
/// any (graphroot: images can be pulled again; temp space; the system's own) are absent.
pub fn snapshot_plan(plan: &Plan) -> Vec<SubvolumeSnapshots<'_>> {
    plan.layout
        .subvolumes()
        .filter(|sv| sv.mountpoint.is_some())
        .filter_map(|sv| {
            let mut classes: Vec<Class> =
                plan.placements.iter().filter(|p| p.subvolume == sv.name).map(|p| p.class).collect();
            classes.sort();
            classes.dedup();
            let snapshots = classes.iter().map(|c| c.info().snapshots).max_by_key(Snapshots::rank)?;
            Some(SubvolumeSnapshots { subvolume: sv, classes, snapshots })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Strategy, decide};
    use crate::inventory::examples::{self, EXAMPLES};

    #[test]
    fn every_subvolume_with_data_has_the_most_frequent_schedule_of_its_classes() {
        for e in EXAMPLES {
            for s in Strategy::ALL {
                let plan = decide(&crate::classify::classify(&examples::load(e.name).unwrap()), s);
                let planned = snapshot_plan(&plan);
                let with_data: std::collections::BTreeSet<&str> =
                    plan.placements.iter().map(|p| p.subvolume.as_str()).collect();
                let names: std::collections::BTreeSet<&str> =
                    planned.iter().map(|p| p.subvolume.name.as_str()).collect();
                assert_eq!(names, with_data, "{} / {s}", e.name);
                assert!(!names.contains("@containers-storage"), "graphroot is never snapshotted");
                for p in &planned {
                    assert!(p.classes.iter().all(|c| c.info().snapshots.rank() <= p.snapshots.rank()));
                    assert!(p.classes.iter().any(|c| c.info().snapshots == p.snapshots));
                }
            }
        }
    }

    #[test]
    fn snapshot_dirs_lie_inside_the_subvolume() {
        assert_eq!(
            snapshot_dir("/var/lib/containers/podfs/database"),
            "/var/lib/containers/podfs/database/.snapshots"
        );
        assert_eq!(snapshot_dir("/srv/"), "/srv/.snapshots");
    }
}
