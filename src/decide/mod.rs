//! `Profile` → `Plan`: the storage driver, the subvolume layout, mount options and
//! per-subvolume attributes, and the reasons for each.

pub mod driver;
pub mod layout;
pub mod options;
pub mod snapshots;
pub mod strategy;

pub use driver::Driver;
pub use strategy::Strategy;

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
    pub subvolume: String,
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
}

/// Space the system itself takes on a whole disk: ESP, Nix store, logs, headroom.
pub const SYSTEM_RESERVE: u64 = 40 * GIB;

pub fn decide(profile: &Profile, strategy: Strategy) -> Plan {
    let (driver, driver_decision) = driver::choose_driver(profile, strategy);
    let fs_options = options::filesystem_options(&profile.host, strategy, driver);
    let (layout, placements, layout_decisions) = layout::plan_layout(profile, strategy, &fs_options);
    let storage = StorageSettings {
        driver,
        graphroot: layout::GRAPHROOT.into(),
        runroot: layout::RUNROOT.into(),
        rootless_storage_path: profile.host.rootless.then(|| format!("{}/$USER/storage", layout::USERS_ROOT)),
        overlay_mountopt: (driver == Driver::Overlay).then(|| "nodev".to_string()),
        image_copy_tmp_dir: (strategy == Strategy::Performance).then(|| layout::IMAGE_COPY_TMP.to_string()),
    };
    let mut decisions =
        vec![driver_decision, options::options_decision(&profile.host, strategy, &fs_options)];
    decisions.extend(layout_decisions);
    Plan {
        strategy,
        profile: profile.clone(),
        storage,
        filesystem_options: fs_options,
        layout,
        placements,
        decisions,
        warnings: capacity_warnings(profile),
    }
}

/// Bytes the workloads need: each image once, each container's volume, and for
/// whole-disk plans the system itself.
pub fn estimated_use(profile: &Profile) -> u64 {
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
pub fn overfull(profile: &Profile) -> Option<Overfull> {
    let (need, have) = (estimated_use(profile), profile.host.disk_size);
    (have > 0 && need > have).then_some(Overfull { need, have })
}

/// Near-full and unknown-size warnings; a plan that does not fit at all is refused
/// before deciding (see [`overfull`]).
fn capacity_warnings(profile: &Profile) -> Vec<String> {
    let need = estimated_use(profile);
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
            assert_eq!(overfull(&profile), None, "{}", example.name);
            let need = estimated_use(&profile);
            profile.host.disk_size = need - 1;
            assert_eq!(overfull(&profile), Some(Overfull { need, have: need - 1 }));
            assert!(capacity_warnings(&profile)[0].contains("keep at least 20% free"));
            profile.host.disk_size = need;
            assert_eq!(overfull(&profile), None, "exactly full still fits, with a warning");
            profile.host.disk_size = 0;
            assert_eq!(overfull(&profile), None, "an unknown size is not called too small");
            assert!(capacity_warnings(&profile)[0].contains("is unknown"));
        }
    }
}
