//! The subvolume layout: which subvolumes exist, where they mount, and which workload's
//! data lands where.

use super::database_fs::{self, DatabaseFs};
use super::options::{cite_compression, cite_compression_of, data_attributes, image_store_compression};
use super::{Decision, Placement, PlacementKind, Strategy, measured};
use crate::bench::report::{BenchReport, DataKind};
use crate::class::Class;
use crate::classify::Profile;
use crate::inventory::DiskMode;
use crate::layout::{Btrfs, Compression, Content, Disk, Filesystem, Layout, Partition, Subvolume};

/// Podman's image and container store (containers/storage `graphroot`).
pub const GRAPHROOT: &str = "/var/lib/containers/storage";
/// Podman's named volumes (containers.conf `volume_path`, default `graphroot/volumes`).
pub const VOLUME_PATH: &str = "/var/lib/containers/storage/volumes";
/// Per-class data directories; the volume plugin manages volumes below it.
pub const PODFS_ROOT: &str = "/var/lib/containers/podfs";
/// Rootless users' stores (`rootless_storage_path`).
pub const USERS_ROOT: &str = "/var/lib/containers/users";
/// containers.conf `image_copy_tmp_dir` under the performance strategy.
pub const IMAGE_COPY_TMP: &str = "/var/lib/containers/tmp";
/// The subvolume that holds snapshots of the others, where a strategy plans one.
pub const SNAPSHOTS: &str = "@snapshots";
/// containers/storage `runroot`: tmpfs, never on disk.
pub const RUNROOT: &str = "/run/containers/storage";

/// Classes whose data gets a subvolume of its own (the rest share the named-volume path),
/// those with alike attributes next to each other: NOCOW first, then uncompressed, then
/// compressed, in table order within each.
fn own_subvolume_classes() -> Vec<Class> {
    let mut classes: Vec<Class> = Class::ALL.into_iter().filter(|c| c.info().own_subvolume).collect();
    classes.sort_by_key(|c| (!c.rewrites_in_place(), !c.incompressible()));
    classes
}

/// A group of workload data that shares one subvolume.
struct DataGroup {
    class: Class,
    nocow: bool,
    compression: Option<Compression>,
    dir: String,
}

fn subvolume(name: &str, mountpoint: &str, options: &[String], purpose: &str) -> Subvolume {
    Subvolume {
        name: name.into(),
        mountpoint: Some(mountpoint.into()),
        mount_options: options.to_vec(),
        nocow: false,
        compression: None,
        purpose: Some(purpose.into()),
    }
}

fn system_subvolumes(options: &[String]) -> Vec<Subvolume> {
    vec![
        subvolume("@root", "/", options, "the root filesystem"),
        subvolume("@nix", "/nix", options, "the Nix store"),
        subvolume("@home", "/home", options, "home directories"),
        subvolume("@log", "/var/log", options, "system logs, kept out of root snapshots"),
    ]
}

/// The groups of workload data in this profile, in a stable order.
fn data_groups(profile: &Profile, strategy: Strategy) -> Vec<DataGroup> {
    let mut groups: Vec<DataGroup> = Vec::new();
    for class in own_subvolume_classes() {
        let with_data: Vec<_> =
            profile.workloads.iter().filter(|w| w.decided == class && w.workload.volume_size > 0).collect();
        for declared in [true, false] {
            let members = with_data.iter().filter(|w| w.workload.class.is_some() == declared);
            if members.count() == 0 {
                continue;
            }
            let (nocow, compression) = data_attributes(class, strategy, declared);
            // Declared and heuristic data share a subvolume when their attributes agree.
            if let Some(g) = groups.iter().find(|g| g.class == class && g.nocow == nocow) {
                debug_assert_eq!(g.compression, compression);
                continue;
            }
            let suffix = if strategy == Strategy::Reliability && nocow { "-nocow" } else { "" };
            groups.push(DataGroup { class, nocow, compression, dir: format!("{class}{suffix}") });
        }
    }
    groups
}

/// A layout with the placement of every workload's data and the reasons.
pub struct PlannedLayout {
    pub layout: Layout,
    pub placements: Vec<Placement>,
    pub decisions: Vec<Decision>,
    /// Topics of the decisions that cite the bench report.
    pub cited: Vec<String>,
    /// The database partition's filesystem, when one was planned.
    pub database_fs: Option<DatabaseFs>,
}

/// Builds the layout and the placement of every workload's data. `database_fs` puts
/// database-class data on a partition of its own under the performance strategy.
pub fn plan_layout(
    profile: &Profile,
    strategy: Strategy,
    options: &[String],
    bench: Option<&BenchReport>,
    database_fs: Option<DatabaseFs>,
) -> PlannedLayout {
    let host = &profile.host;
    let mut subvolumes = match host.mode {
        DiskMode::WholeDisk => system_subvolumes(options),
        DiskMode::DataDisk => Vec::new(),
    };
    let mut decisions = Vec::new();
    let mut cited = Vec::new();

    let mut store =
        subvolume("@containers-storage", GRAPHROOT, options, "Podman images and containers (graphroot)");
    store.compression = Some(image_store_compression(strategy));
    subvolumes.push(store);
    let mut volumes = subvolume("@containers-volumes", VOLUME_PATH, options, "Podman named volumes");
    volumes.compression = Some(Compression::Zstd);
    subvolumes.push(volumes);
    decisions.push(Decision {
        topic: "image store and named volumes".into(),
        choice: format!(
            "`@containers-storage` at {GRAPHROOT} (compression {}), `@containers-volumes` at {VOLUME_PATH} (compression zstd)",
            image_store_compression(strategy)
        ),
        why: vec![
            "graphroot and the volume path are subvolumes of their own, so container data never \
             ends up in snapshots of the root filesystem and can be snapshotted on its own"
                .into(),
            "volumes are separate from graphroot: images can be wiped and re-pulled without \
             touching data"
                .into(),
            match strategy {
                Strategy::Performance => "performance: image layers are stored uncompressed \
                    (`compression none`), saving CPU on every container start"
                    .into(),
                _ => "compression is a property of the subvolume, so it holds even if another \
                    mount of the filesystem came first without `compress`"
                    .into(),
            },
        ],
        gives_up: match strategy {
            Strategy::Performance => vec!["image layers take their full size on disk".into()],
            _ => vec![],
        },
    });
    if strategy == Strategy::Performance
        && let Some(d) = decisions.last_mut()
        && cite_compression(d, bench)
    {
        cited.push(d.topic.clone());
    }

    if host.rootless {
        let mut users =
            subvolume("@containers-users", USERS_ROOT, options, "rootless users' container stores");
        users.compression = Some(image_store_compression(strategy));
        subvolumes.push(users);
        decisions.push(Decision {
            topic: "rootless storage".into(),
            choice: format!("rootless_storage_path = \"{USERS_ROOT}/$USER/storage\""),
            why: vec![
                "rootless stores would otherwise sit in each home directory, inside home \
                 snapshots and on whatever options /home was mounted with"
                    .into(),
                format!(
                    "each user needs a directory they own: `install -d -o USER -m 0700 {USERS_ROOT}/USER`"
                ),
            ],
            gives_up: vec!["a user's images no longer move with their home directory".into()],
        });
    }

    if strategy == Strategy::Performance {
        let mut tmp = subvolume(
            "@containers-tmp",
            IMAGE_COPY_TMP,
            options,
            "image copy temp space (image_copy_tmp_dir)",
        );
        tmp.nocow = true;
        subvolumes.push(tmp);
        decisions.push(Decision {
            topic: "image copy temp space".into(),
            choice: format!(
                "`@containers-tmp` at {IMAGE_COPY_TMP}, NOCOW, as containers.conf `image_copy_tmp_dir`"
            ),
            why: vec![
                "pulls and pushes write whole layer tarballs there once and delete them; \
                 copy-on-write and checksums buy nothing for such scratch data"
                    .into(),
            ],
            gives_up: vec!["no checksums on temporary layer copies".into()],
        });
    }

    let groups = data_groups(profile, strategy);
    let on_partition = |g: &DataGroup| {
        database_fs.filter(|_| strategy == Strategy::Performance && database_fs::is_database(g.class))
    };
    let mut partition = None;
    for g in &groups {
        let mountpoint = format!("{PODFS_ROOT}/{}", g.dir);
        let (decision, cites) = match on_partition(g) {
            Some(fs) => {
                partition = Some(database_partition(profile, fs, &mountpoint));
                database_fs::decision(profile, fs, &mountpoint, bench)
            }
            None => {
                let mut s = subvolume(
                    &format!("@podfs-{}", g.dir),
                    &mountpoint,
                    options,
                    &format!("{} data", g.class),
                );
                s.nocow = g.nocow;
                s.compression = g.compression;
                subvolumes.push(s);
                group_decision(g, strategy, &mountpoint, bench)
            }
        };
        if cites {
            cited.push(decision.topic.clone());
        }
        decisions.push(decision);
    }

    if strategy == Strategy::Reliability {
        let at = match host.mode {
            DiskMode::WholeDisk => "/.snapshots".to_string(),
            DiskMode::DataDisk => "/var/lib/containers/.snapshots".to_string(),
        };
        subvolumes.push(subvolume(SNAPSHOTS, &at, options, "snapshots of the other subvolumes"));
        decisions.push(Decision {
            topic: "snapshots".into(),
            choice: format!("`{SNAPSHOTS}` at {at}"),
            why: vec![
                "reliability: every data subvolume can be snapshotted (read-only, \
                 `btrfs subvolume snapshot -r`) into a subvolume that is itself never snapshotted"
                    .into(),
            ],
            gives_up: vec!["snapshots keep deleted data on disk until they are removed".into()],
        });
    }

    let placements = profile
        .workloads
        .iter()
        .filter(|w| w.workload.volume_size > 0)
        .map(|w| {
            let nocow = data_attributes(w.decided, strategy, w.workload.class.is_some()).0;
            match groups.iter().find(|g| g.class == w.decided && g.nocow == nocow) {
                Some(g) => {
                    let own = on_partition(g).map(|_| database_fs::PARTITION.to_string());
                    Placement {
                        workload: w.workload.name.clone(),
                        class: w.decided,
                        kind: PlacementKind::BindVolume,
                        count: w.workload.count,
                        path: format!("{PODFS_ROOT}/{}/{}", g.dir, w.workload.name),
                        subvolume: if own.is_some() { String::new() } else { format!("@podfs-{}", g.dir) },
                        partition: own,
                    }
                }
                None => Placement {
                    workload: w.workload.name.clone(),
                    class: w.decided,
                    kind: PlacementKind::NamedVolume,
                    count: w.workload.count,
                    path: format!("{}/{}", volume_path(host.rootless), w.workload.name),
                    subvolume: if host.rootless { "@containers-users" } else { "@containers-volumes" }.into(),
                    partition: None,
                },
            }
        })
        .collect();

    let planned_fs = partition.as_ref().and(database_fs);
    let layout = Layout { disks: vec![disk(profile, subvolumes, partition)] };
    PlannedLayout { layout, placements, decisions, cited, database_fs: planned_fs }
}

/// The database partition: sized by [`database_fs::partition_bytes`], mounted where the
/// database subvolume would be.
fn database_partition(profile: &Profile, fs: DatabaseFs, mountpoint: &str) -> Partition {
    Partition {
        name: database_fs::PARTITION.into(),
        size: format!("{}G", database_fs::partition_bytes(profile) / crate::size::GIB),
        type_code: Some("8300".into()),
        priority: None,
        content: Content::Filesystem(Filesystem {
            attr_path: Vec::new(),
            format: fs.as_str().into(),
            mountpoint: Some(mountpoint.into()),
            mount_options: vec!["noatime".into()],
        }),
    }
}

/// Where named volumes live for the containers' user.
fn volume_path(rootless: bool) -> String {
    if rootless { format!("{USERS_ROOT}/$USER/storage/volumes") } else { VOLUME_PATH.into() }
}

/// The decision for one group of data, and whether it cites the bench report.
fn group_decision(
    g: &DataGroup,
    strategy: Strategy,
    mountpoint: &str,
    bench: Option<&BenchReport>,
) -> (Decision, bool) {
    let nocow_measured = bench.filter(|_| g.class.rewrites_in_place()).and_then(measured::nocow);
    let mut why = vec![format!(
        "{} data gets a subvolume of its own: it can be snapshotted, excluded from snapshots \
         or given its own attributes without touching anything else",
        g.class
    )];
    let mut gives_up = Vec::new();
    if g.nocow {
        why.push(format!(
            "NOCOW (`chattr +C` on the empty subvolume root, inherited by every new file): \
             {} rewrite blocks in place, which copy-on-write fragments into thousands of extents",
            crate::class::nocow_data()
        ));
        why.extend(nocow_measured.as_ref().map(|m| m.cited(true)));
        // The performance strategy can go further; say so where the bench measured it.
        if strategy == Strategy::Performance
            && database_fs::is_database(g.class)
            && let Some(gain) = bench.and_then(measured::compare_gain)
        {
            why.push(format!(
                "{gain}; `--database-fs xfs|ext4` puts database data on a partition of its own \
                 (see `plan --help` for what that gives up)"
            ));
        }
        gives_up.push("no data checksums: scrub detects nothing and cannot repair this data".into());
        gives_up.push("no compression".into());
        gives_up.push("a snapshot makes every extent copy-on-write once more, until it is rewritten".into());
        why.extend(g.class.info().on_loss.map(String::from));
    } else if g.class.rewrites_in_place() {
        why.push(format!(
            "{strategy}: {} data stays copy-on-write with checksums because its class was not \
             declared explicitly; declare `class = \"{}\"` to move it to NOCOW storage",
            g.class, g.class
        ));
        why.extend(nocow_measured.as_ref().map(|m| m.cited(false)));
        gives_up.push(
            "random in-place writes fragment files; run `btrfs filesystem defragment` on quiet hours".into(),
        );
    }
    if g.compression == Some(Compression::None) {
        why.push(
            "`compression none`: the data is already compressed; compressing it again only costs CPU".into(),
        );
    }
    let attrs = match (g.nocow, g.compression) {
        (true, _) => "NOCOW".to_string(),
        (false, Some(c)) => format!("compression {c}"),
        (false, None) => "copy-on-write".to_string(),
    };
    let mut decision = Decision {
        topic: format!("{} data", g.class),
        choice: format!("`@podfs-{}` at {mountpoint}, {attrs}", g.dir),
        why,
        gives_up,
    };
    let cites_compression = g.compression == Some(Compression::None)
        && cite_compression_of(&mut decision, bench, &[DataKind::Incompressible]);
    (decision, nocow_measured.is_some() || cites_compression)
}

fn disk(profile: &Profile, subvolumes: Vec<Subvolume>, database: Option<Partition>) -> Disk {
    let host = &profile.host;
    let label = format!("{}-{}", host.name, if host.mode == DiskMode::WholeDisk { "root" } else { "data" });
    let btrfs = Partition {
        name: if host.mode == DiskMode::WholeDisk { "root" } else { "containers" }.into(),
        size: "100%".into(),
        type_code: Some("8300".into()),
        priority: None,
        content: Content::Btrfs(Btrfs {
            attr_path: Vec::new(),
            // A label shows which disk this is in `lsblk -f` and `btrfs filesystem show`.
            extra_args: vec!["-L".into(), label.chars().take(255).collect()],
            mountpoint: None,
            mount_options: Vec::new(),
            subvolumes,
        }),
    };
    let mut partitions = Vec::new();
    if host.mode == DiskMode::WholeDisk {
        partitions.push(Partition {
            name: "ESP".into(),
            size: "1G".into(),
            type_code: Some("EF00".into()),
            priority: Some(1),
            content: Content::Filesystem(Filesystem {
                attr_path: Vec::new(),
                format: "vfat".into(),
                mountpoint: Some("/boot".into()),
                mount_options: vec!["umask=0077".into()],
            }),
        });
    }
    // disko creates partitions by priority, a sized one (1000 by default) before a `100%`
    // one (9001), so the btrfs partition takes what the database partition leaves.
    partitions.extend(database);
    partitions.push(btrfs);
    Disk {
        name: if host.mode == DiskMode::WholeDisk { "main" } else { "containers" }.into(),
        device: host.disk.clone(),
        partitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_subvolumes_keep_alike_attributes_together() {
        let classes = own_subvolume_classes();
        let key = |c: &Class| (!c.rewrites_in_place(), !c.incompressible());
        assert!(classes.windows(2).all(|w| (key(&w[0]), w[0]) < (key(&w[1]), w[1])), "{classes:?}");
        assert_eq!(classes.len(), Class::ALL.iter().filter(|c| c.info().own_subvolume).count());
        // The order plans have always had.
        let at = |name| classes.iter().position(|c| c.as_str() == name);
        let known: Vec<_> = ["database", "cache", "vm", "media", "logs"].map(at).into_iter().collect();
        assert!(known.iter().all(Option::is_some) && known.is_sorted(), "{classes:?}");
    }
}
