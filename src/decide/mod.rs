//! `Profile` → `Plan`: the storage driver, the subvolume layout, mount options and
//! per-subvolume attributes, and the reasons for each.

pub mod database_fs;
pub mod driver;
pub mod layout;
pub mod measured;
pub mod options;
pub mod snapshots;
pub mod strategy;

pub use database_fs::DatabaseFs;
pub use driver::Driver;
pub use strategy::Strategy;

use crate::bench::report::{BenchHost, BenchReport, SkippedPart};
use crate::class::Class;
use crate::classify::Profile;
use crate::inventory::DiskMode;
use crate::layout::Layout;
use crate::size::{GIB, Human};
use serde::Serialize;

/// One decision, why it was taken and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub topic: String,
    pub choice: String,
    pub why: Vec<String>,
    pub gives_up: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementKind {
    /// A named volume in Podman's volume path.
    NamedVolume,
    /// A named volume bound to a directory in a class subvolume
    /// (`podman volume create --opt type=none --opt o=bind --opt device=PATH`).
    BindVolume,
}

/// Where one workload's persistent data goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub workload: String,
    pub class: Class,
    pub kind: PlacementKind,
    /// One volume per container; with several, one directory each below `path`.
    pub count: u32,
    pub path: String,
    /// The subvolume holding `path`; empty when a partition of its own does.
    pub subvolume: String,
    /// The partition holding `path` when it is not btrfs (`--database-fs`).
    pub partition: Option<String>,
}

impl Placement {
    /// The shell commands that create its volumes.
    pub fn create_commands(&self) -> String {
        let name = &self.workload;
        match (self.kind, self.count) {
            (PlacementKind::NamedVolume, 1) => format!("podman volume create {name}"),
            (PlacementKind::NamedVolume, n) => {
                format!("for i in $(seq 1 {n}); do podman volume create {name}-$i; done")
            }
            (PlacementKind::BindVolume, 1) => format!(
                "install -d {p} && podman volume create --opt type=none --opt o=bind --opt device={p} {name}",
                p = self.path
            ),
            (PlacementKind::BindVolume, n) => format!(
                "for i in $(seq 1 {n}); do install -d {p}/$i && podman volume create --opt type=none \
                 --opt o=bind --opt device={p}/$i {name}-$i; done",
                p = self.path
            ),
        }
    }
}

/// The settings of containers/storage.conf (and the one containers.conf key we set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageSettings {
    pub driver: Driver,
    pub graphroot: String,
    pub runroot: String,
    pub rootless_storage_path: Option<String>,
    /// `[storage.options.overlay] mountopt`; the btrfs driver accepts none.
    pub overlay_mountopt: Option<String>,
    /// containers.conf `[engine] image_copy_tmp_dir`.
    pub image_copy_tmp_dir: Option<String>,
}

/// Everything the renderers need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub strategy: Strategy,
    pub profile: Profile,
    pub storage: StorageSettings,
    /// The filesystem-wide options on every subvolume mount.
    pub filesystem_options: Vec<String>,
    pub layout: Layout,
    pub placements: Vec<Placement>,
    pub decisions: Vec<Decision>,
    pub warnings: Vec<String>,
    /// The measurements the plan was made with (`plan --bench`).
    pub bench: Option<PlanBench>,
    /// The filesystem of database-class data's own partition (`--database-fs`).
    pub database_fs: Option<DatabaseFs>,
}

/// A bench report as the plan used it: where the figures come from, the figures, and
/// which decisions they changed or are cited in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanBench {
    /// The report file.
    pub file: String,
    pub tool_version: String,
    pub taken_at: String,
    pub host: BenchHost,
    pub figures: Vec<measured::Figure>,
    pub skipped: Vec<SkippedPart>,
    /// When measurements overrule the general reasons ([`measured::threshold_text`]).
    pub threshold: String,
    /// Topics of the decisions the measurements changed.
    pub changed: Vec<String>,
    /// Topics of the decisions that cite the measurements.
    pub cited: Vec<String>,
    /// What to keep in mind reading the figures, e.g. another filesystem than btrfs.
    pub notes: Vec<String>,
}

// Report figures are finite numbers (JSON has no NaN), so equality is reflexive.
impl Eq for PlanBench {}

/// A bench report and the file it was read from.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    pub file: &'a str,
    pub report: &'a BenchReport,
}

/// What a plan is made from besides the profile and the strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    pub bench: Option<Measured<'a>>,
    /// Database-class data on a partition of this filesystem; see
    /// [`database_fs::refusal`] for when it applies.
    pub database_fs: Option<DatabaseFs>,
}

/// Space the system itself takes on a whole disk: ESP, Nix store, logs, headroom.
pub const SYSTEM_RESERVE: u64 = 40 * GIB;

pub fn decide(profile: &Profile, strategy: Strategy) -> Plan {
    decide_with(profile, strategy, &Inputs::default())
}

/// [`decide`], with measurements and a database partition as `inputs` ask.
pub fn decide_with(profile: &Profile, strategy: Strategy, inputs: &Inputs) -> Plan {
    let report = inputs.bench.map(|b| b.report);
    let choice = driver::choose_driver(profile, strategy, report);
    let driver = choice.driver;
    let fs_options = options::filesystem_options(&profile.host, strategy, driver);
    let mut options_decision = options::options_decision(&profile.host, strategy, &fs_options);
    let options_cited = options::cite_compression(&mut options_decision, report);
    let planned = layout::plan_layout(profile, strategy, &fs_options, report, inputs.database_fs);
    let storage = StorageSettings {
        driver,
        graphroot: layout::GRAPHROOT.into(),
        runroot: layout::RUNROOT.into(),
        rootless_storage_path: profile.host.rootless.then(|| format!("{}/$USER/storage", layout::USERS_ROOT)),
        overlay_mountopt: (driver == Driver::Overlay).then(|| "nodev".to_string()),
        image_copy_tmp_dir: (strategy == Strategy::Performance).then(|| layout::IMAGE_COPY_TMP.to_string()),
    };
    let mut cited = Vec::new();
    if choice.cites_bench {
        cited.push(choice.decision.topic.clone());
    }
    if options_cited {
        cited.push(options_decision.topic.clone());
    }
    for topic in planned.cited {
        if !cited.contains(&topic) {
            cited.push(topic);
        }
    }
    let changed = if choice.changed_by_bench { vec![choice.decision.topic.clone()] } else { Vec::new() };
    let mut decisions = vec![choice.decision, options_decision];
    decisions.extend(planned.decisions);
    Plan {
        strategy,
        profile: profile.clone(),
        storage,
        filesystem_options: fs_options,
        layout: planned.layout,
        placements: planned.placements,
        decisions,
        warnings: capacity_warnings(profile, inputs.database_fs),
        bench: inputs.bench.map(|b| plan_bench(b, changed, cited)),
        database_fs: planned.database_fs,
    }
}

/// The bench part of a plan.
fn plan_bench(b: Measured, changed: Vec<String>, cited: Vec<String>) -> PlanBench {
    let r = b.report;
    let mut notes = Vec::new();
    if r.host.filesystem != "btrfs" {
        notes.push(format!(
            "these figures were measured on {} ({}), not on btrfs as planned: the btrfs layouts \
             and the btrfs driver cannot be measured there, and the figures say little about the \
             planned filesystem; run `bench` on a btrfs filesystem of the planned disk",
            r.host.filesystem, r.host.dir
        ));
    }
    if r.host.quick {
        notes.push("a quick run: fewer and shorter rounds, so spreads are wider and fewer figures pass the threshold".into());
    }
    PlanBench {
        file: b.file.to_string(),
        tool_version: r.tool_version.clone(),
        taken_at: r.taken_at.clone(),
        host: r.host.clone(),
        figures: measured::figures(r),
        skipped: r.skipped.clone(),
        threshold: measured::threshold_text(),
        changed,
        cited,
        notes,
    }
}

/// Bytes the workloads need: each image once, each container's volume, and for
/// whole-disk plans the system itself; with database data on a partition of its own,
/// that partition's whole size.
pub fn estimated_use(profile: &Profile, database_fs: Option<DatabaseFs>) -> u64 {
    let partition = match database_fs {
        Some(_) => database_fs::partition_bytes(profile).saturating_sub(database_fs::database_bytes(profile)),
        None => 0,
    };
    estimated_data_use(profile).saturating_add(partition)
}

fn estimated_data_use(profile: &Profile) -> u64 {
    let data: u64 = profile
        .workloads
        .iter()
        .map(|w| w.workload.image_size.saturating_add(w.volume_bytes()))
        .fold(0, u64::saturating_add);
    match profile.host.mode {
        DiskMode::WholeDisk => data.saturating_add(SYSTEM_RESERVE),
        DiskMode::DataDisk => data,
    }
}

/// The plan does not fit: the workloads need `need` bytes but the disk holds `have`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overfull {
    pub need: u64,
    pub have: u64,
}

/// `Some` when the estimated use exceeds the disk; a disk of unknown size (0) is never
/// called too small.
pub fn overfull(profile: &Profile, database_fs: Option<DatabaseFs>) -> Option<Overfull> {
    let (need, have) = (estimated_use(profile, database_fs), profile.host.disk_size);
    (have > 0 && need > have).then_some(Overfull { need, have })
}

/// Near-full and unknown-size warnings; a plan that does not fit at all is refused
/// before deciding (see [`overfull`]).
fn capacity_warnings(profile: &Profile, database_fs: Option<DatabaseFs>) -> Vec<String> {
    let need = estimated_use(profile, database_fs);
    let have = profile.host.disk_size;
    if have == 0 {
        vec![format!(
            "the size of {} is unknown: the workloads need about {}, check that the disk holds that",
            profile.host.disk,
            Human(need)
        )]
    } else if need.saturating_mul(10) > have.saturating_mul(8) {
        vec![format!(
            "the workloads need about {} of {} ({}%): btrfs wants free space for metadata and \
             balance; plan for a larger disk or keep at least 20% free",
            Human(need),
            Human(have),
            need.saturating_mul(100) / have.max(1)
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::examples;

    #[test]
    fn every_example_fits_its_disk_and_a_smaller_disk_is_overfull() {
        for example in examples::EXAMPLES {
            let mut profile = crate::classify::classify(&examples::load(example.name).unwrap());
            assert_eq!(overfull(&profile, None), None, "{}", example.name);
            let need = estimated_use(&profile, None);
            profile.host.disk_size = need - 1;
            assert_eq!(overfull(&profile, None), Some(Overfull { need, have: need - 1 }));
            assert!(capacity_warnings(&profile, None)[0].contains("keep at least 20% free"));
            profile.host.disk_size = need;
            assert_eq!(overfull(&profile, None), None, "exactly full still fits, with a warning");
            if database_fs::database_bytes(&profile) > 0 {
                // The partition's headroom is space the btrfs part cannot use.
                let with = estimated_use(&profile, Some(DatabaseFs::Xfs));
                assert!(with > need, "{}", example.name);
                assert_eq!(
                    overfull(&profile, Some(DatabaseFs::Xfs)),
                    Some(Overfull { need: with, have: need })
                );
            }
            profile.host.disk_size = 0;
            assert_eq!(overfull(&profile, None), None, "an unknown size is not called too small");
            assert!(capacity_warnings(&profile, None)[0].contains("is unknown"));
        }
    }
}
