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
    /// Where its snapshots go ([`snapshot_dir`]).
    pub snapshot_dir: String,
}

impl SubvolumeSnapshots<'_> {
    pub fn mountpoint(&self) -> &str {
        self.subvolume.mountpoint.as_deref().unwrap_or_default()
    }
}

/// Where a subvolume's snapshots go: the plan's snapshot subvolume where it has one (a
/// snapshot may be taken into any mount of the same filesystem), else a `.snapshots`
/// directory inside the subvolume. Snapshots are subvolumes, and a nested subvolume is left
/// out of snapshots of its parent, so they never pile up; the volume plugin skips it (`.`
/// names are no volumes).
pub fn snapshot_dir(plan: &Plan, mountpoint: &str) -> String {
    match plan
        .layout
        .subvolumes()
        .find(|s| s.name == super::layout::SNAPSHOTS)
        .and_then(|s| s.mountpoint.as_ref())
    {
        Some(shared) => shared.clone(),
        None => format!("{}/.snapshots", mountpoint.trim_end_matches('/')),
    }
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
            let snapshot_dir = snapshot_dir(plan, sv.mountpoint.as_deref().unwrap_or_default());
            Some(SubvolumeSnapshots { subvolume: sv, classes, snapshots, snapshot_dir })
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
    fn snapshots_go_to_the_snapshot_subvolume_or_inside_the_subvolume() {
        let plan = |s| decide(&crate::classify::classify(&examples::load("homelab").unwrap()), s);
        let balanced = plan(Strategy::Balanced);
        assert_eq!(snapshot_dir(&balanced, "/srv/db/"), "/srv/db/.snapshots");
        let reliable = plan(Strategy::Reliability);
        let shared =
            reliable.layout.subvolumes().find(|s| s.name == crate::decide::layout::SNAPSHOTS).unwrap();
        assert_eq!(Some(snapshot_dir(&reliable, "/srv/db")), shared.mountpoint);
        for s in snapshot_plan(&reliable) {
            assert_eq!(Some(&s.snapshot_dir), shared.mountpoint.as_ref());
        }
    }
}
