//! `--database-fs xfs|ext4`: database-class data on a partition of its own beside the
//! btrfs one, for the performance strategy, and what that gives up.

use super::{Decision, Strategy, measured};
use crate::bench::report::BenchReport;
use crate::class::Class;
use crate::classify::Profile;
use crate::size::{GIB, Human};
use serde::Serialize;
use std::fmt;

/// The filesystem of the database partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseFs {
    Xfs,
    Ext4,
}

impl DatabaseFs {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseFs::Xfs => "xfs",
            DatabaseFs::Ext4 => "ext4",
        }
    }
}

impl fmt::Display for DatabaseFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of the database partition in disko.nix (`disko.devices.disk.*.content.partitions`).
pub const PARTITION: &str = "database";

/// Room above the database workloads' data: half as much again.
pub const HEADROOM_PERCENT: u64 = 50;

/// The class whose data moves to the partition.
pub fn is_database(class: Class) -> bool {
    class == Class::DATABASE_PARTITION
}

/// Bytes of database-class data in the profile.
pub fn database_bytes(profile: &Profile) -> u64 {
    profile
        .workloads
        .iter()
        .filter(|w| is_database(w.decided))
        .map(|w| w.volume_bytes())
        .fold(0, u64::saturating_add)
}

/// The partition's size: the database data with [`HEADROOM_PERCENT`] on top, in whole
/// GiB, at least 1 GiB.
pub fn partition_bytes(profile: &Profile) -> u64 {
    let with_headroom = database_bytes(profile).saturating_mul(100 + HEADROOM_PERCENT) / 100;
    with_headroom.div_ceil(GIB).max(1).saturating_mul(GIB)
}

/// Why `--database-fs` cannot apply with this strategy, if it cannot: known before any
/// input is read.
pub fn strategy_refusal(strategy: Strategy) -> Option<String> {
    (strategy != Strategy::Performance).then(|| {
        format!(
            "--database-fs is offered with the performance strategy only (this plan is {strategy}): \
             it gives up snapshots, send/receive and checksums of database data for speed; \
             pass --strategy performance to plan it"
        )
    })
}

/// Why `--database-fs` cannot apply to this plan, if it cannot.
pub fn refusal(profile: &Profile, strategy: Strategy) -> Option<String> {
    if let Some(why) = strategy_refusal(strategy) {
        return Some(why);
    }
    if database_bytes(profile) == 0 {
        return Some(
            "--database-fs: this plan has no database-class data with a volume size, so there is \
             nothing to put on a partition of its own"
                .into(),
        );
    }
    None
}

/// The decision to put database data on its own partition, with what it gives up and,
/// from a bench report with a `compare` layout, the measured gain.
pub fn decision(
    profile: &Profile,
    fs: DatabaseFs,
    mountpoint: &str,
    bench: Option<&BenchReport>,
) -> (Decision, bool) {
    let size = partition_bytes(profile);
    let mut why = vec![
        format!(
            "performance: database files are rewritten in place with synced random writes; \
             {fs} rewrites them in place without copy-on-write, data checksums or compression, \
             the case database engines are tuned for"
        ),
        format!(
            "the partition holds the database workloads' {} with {HEADROOM_PERCENT}% headroom, \
             rounded up to whole GiB; it is mounted where the database subvolume would be, so \
             every path of the plan stays the same",
            Human(database_bytes(profile))
        ),
    ];
    let cited = match bench.and_then(measured::compare_gain) {
        Some(gain) => {
            let compared = bench.and_then(|b| b.database(crate::bench::report::DatabaseLayout::Compare));
            why.push(gain);
            if let Some(c) = compared.filter(|c| c.filesystem != fs.as_str()) {
                why.push(format!(
                    "the comparison was measured on {}, not on {fs}: the gain on {fs} may differ",
                    c.filesystem
                ));
            }
            true
        }
        None => {
            if bench.is_some() {
                why.push(
                    "the bench report has no `compare` layout (`bench --compare-dir` on ext4 or \
                     xfs), so the gain over NOCOW on btrfs was not measured on this disk"
                        .into(),
                );
            }
            false
        }
    };
    let other = match fs {
        DatabaseFs::Xfs => "xfs checksums its metadata (v5 CRCs) but never file data",
        DatabaseFs::Ext4 => "ext4 checksums its metadata (`metadata_csum`) and journal but never file data",
    };
    let gives_up = vec![
        format!(
            "snapshots of database data: {fs} has none, so `btrbk.conf`, the NixOS btrbk instance \
             and `snapshot` leave it out; back it up with the database's own tools (pg_dump, \
             mariadb-dump, mongodump…) or a file-level backup of a stopped or paused database"
        ),
        "`btrfs send`/`receive`: no incremental off-host copies of this data".into(),
        format!(
            "one pool of free space: the disk is split into a {} {fs} partition and the btrfs \
             rest; space free in one is not usable by the other, and growing the partition \
             means shrinking btrfs and moving partitions ({})",
            Human(size),
            match fs {
                DatabaseFs::Xfs => "xfs cannot shrink at all",
                DatabaseFs::Ext4 => "ext4 shrinks only unmounted",
            }
        ),
        format!("data checksums: {other}; NOCOW on btrfs has no data checksums either"),
        "compression (NOCOW on btrfs has none either)".into(),
        "the volume plugin's subvolume per volume: database volumes are bind volumes to \
         directories on the partition"
            .into(),
        "`migrate` converts a host in place on btrfs only: it places database data on a NOCOW \
         subvolume, not on this partition, which needs a new disk laid out with disko"
            .into(),
    ];
    let decision = Decision {
        topic: "database data".into(),
        choice: format!("a {} {fs} partition `{PARTITION}` at {mountpoint}", Human(size)),
        why,
        gives_up,
    };
    (decision, cited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::examples;

    fn profile(name: &str) -> Profile {
        crate::classify::classify(&examples::load(name).unwrap())
    }

    #[test]
    fn the_partition_holds_the_database_data_with_headroom() {
        let p = profile("database-host");
        let data = database_bytes(&p);
        assert!(data > 0);
        let size = partition_bytes(&p);
        assert_eq!(size % GIB, 0);
        assert!(size >= data * 3 / 2 && size < data * 3 / 2 + GIB, "{size} for {data}");
    }

    #[test]
    fn refused_outside_the_performance_strategy_and_without_database_data() {
        let p = profile("database-host");
        assert_eq!(refusal(&p, Strategy::Performance), None);
        for s in [Strategy::Balanced, Strategy::Reliability] {
            assert!(refusal(&p, s).unwrap().contains("performance strategy only"), "{s}");
        }
        let mut none = p.clone();
        none.workloads.retain(|w| !is_database(w.decided));
        assert!(refusal(&none, Strategy::Performance).unwrap().contains("no database-class data"));
    }

    #[test]
    fn the_decision_says_what_it_gives_up_and_cites_the_gain() {
        let p = profile("database-host");
        let (d, cited) = decision(&p, DatabaseFs::Xfs, "/x", None);
        assert!(!cited);
        let all = d.gives_up.join("\n");
        for word in ["snapshots", "send", "one pool of free space", "xfs cannot shrink", "checksums"] {
            assert!(all.contains(word), "{word}: {all}");
        }
        let bench = measured::tests::even();
        let (d, cited) = decision(&p, DatabaseFs::Xfs, "/x", Some(&bench));
        assert!(cited);
        let why = d.why.join("\n");
        assert!(why.contains("ext4 3,726 IOPS"), "{why}");
        assert!(why.contains("measured on ext4, not on xfs"), "{why}");
        let (d, _) = decision(&p, DatabaseFs::Ext4, "/x", Some(&bench));
        assert!(!d.why.join("\n").contains("not on ext4"));
    }
}
