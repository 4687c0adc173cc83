//! `btrbk.conf`: scheduled read-only snapshots of the subvolumes that hold container data,
//! with each class's retention on the host and on a backup target (`ClassInfo::snapshots`).
//! The NixOS snippet carries the same settings as `services.btrbk.instances.podfs`.

use crate::class::{Every, Snapshots};
use crate::decide::Plan;
use crate::decide::snapshots::{SubvolumeSnapshots, snapshot_plan};

/// Where the configuration points. The default is the planned host itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    /// Prefixed to every path of the plan, to run the configuration against a copy of the
    /// layout mounted elsewhere (a test's loop device); empty on the host.
    pub root: String,
    /// `target send-receive` of off-host copies: a directory on another btrfs filesystem
    /// or an `ssh://` URL. Without one the line is a commented example and btrbk only
    /// snapshots.
    pub target: Option<String>,
}

/// One `subvolume` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub path: String,
    pub comment: String,
    pub options: Vec<(&'static str, String)>,
}

/// The settings both renderings share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub globals: Vec<(&'static str, String)>,
    pub subvolumes: Vec<Section>,
    /// How often btrbk runs: the most frequent schedule in the plan.
    pub every: Option<Every>,
}

/// What is never snapshotted and why, for comments and PLAN.md.
pub fn left_out(plan: &Plan) -> Vec<String> {
    let graphroot = plan.layout.subvolumes().find(|s| s.mountpoint.as_ref() == Some(&plan.storage.graphroot));
    let mut out: Vec<String> = graphroot
        .map(|s| format!("`{}` (graphroot): images can be pulled again", s.name))
        .into_iter()
        .collect();
    for s in snapshot_plan(plan) {
        let why = match s.snapshots {
            Snapshots::Never => "rebuilt on loss",
            Snapshots::Unscheduled => "throwaway data",
            Snapshots::Scheduled(_) => continue,
        };
        out.push(format!("`{}` ({}): {why}", s.subvolume.name, class_list(&s)));
    }
    // Data on a partition of its own (`--database-fs`) is not btrfs: nothing to snapshot.
    let mut partitions: Vec<(&str, &str)> = plan
        .placements
        .iter()
        .filter_map(|p| p.partition.as_deref().map(|part| (part, p.class.as_str())))
        .collect();
    partitions.dedup();
    for (part, class) in partitions {
        let fs = plan.database_fs.map_or("not btrfs", |f| f.as_str());
        out.push(format!(
            "partition `{part}` ({class}, {fs}): no btrfs snapshots there; back it up with the database's own tools"
        ));
    }
    out
}

fn class_list(s: &SubvolumeSnapshots) -> String {
    s.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// `onchange` skips a subvolume that did not change since its last snapshot, but a
/// snapshot kept inside the subvolume changes it (a new directory entry), so there every
/// run snapshots: `always`, and retention thins them out.
fn snapshot_create(s: &SubvolumeSnapshots) -> &'static str {
    if crate::layout::path_is_under(&s.snapshot_dir, s.mountpoint()) { "always" } else { "onchange" }
}

pub fn settings(plan: &Plan, paths: &Paths) -> Settings {
    let root = paths.root.trim_end_matches('/');
    let mut globals = vec![
        ("timestamp_format", "long".to_string()),
        // btrbk runs at the most frequent schedule; of the snapshots a less frequent class
        // does not keep (the first of each day or week), only the newest survives a run, on
        // the host and on the target, so the off-host copy is as fresh as the last run.
        ("snapshot_preserve_min", "latest".to_string()),
        ("target_preserve_min", "latest".to_string()),
    ];
    if let Some(t) = &paths.target {
        globals.push(("target", format!("send-receive {t}")));
    }
    let mut subvolumes = Vec::new();
    let mut every = None;
    for s in snapshot_plan(plan) {
        let Snapshots::Scheduled(p) = s.snapshots else { continue };
        every = every.max(Some(p.every));
        let mountpoint = s.mountpoint();
        let pause =
            if p.pause { "; btrbk does not pause containers: crash-consistent, see PLAN.md" } else { "" };
        subvolumes.push(Section {
            path: format!("{root}{mountpoint}"),
            comment: format!("{}: {} data, {}{pause}", s.subvolume.name, class_list(&s), p.every.as_str()),
            options: vec![
                ("snapshot_dir", format!("{root}{}", s.snapshot_dir)),
                ("snapshot_name", s.subvolume.name.clone()),
                ("snapshot_create", snapshot_create(&s).into()),
                ("snapshot_preserve", p.keep.btrbk()),
                ("target_preserve", p.keep_off_host.btrbk()),
            ],
        });
    }
    Settings { globals, subvolumes, every }
}

pub fn render(plan: &Plan, header: &[String], paths: &Paths) -> String {
    let settings = settings(plan, paths);
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(
        "#\n# btrbk.conf(5): read-only snapshots of the subvolumes that hold container data, kept\n\
         # by class (see PLAN.md, \"Snapshots and backups\"). Install as /etc/btrbk/podfs.conf and\n\
         # run `btrbk -c /etc/btrbk/podfs.conf run` from a timer (contrib/systemd/podfs-btrbk.timer).\n\
         # Never snapshotted:\n",
    );
    for l in left_out(plan) {
        out.push_str(&format!("#   {}\n", l.replace('`', "")));
    }
    out.push('\n');
    for (k, v) in &settings.globals {
        out.push_str(&format!("{k} {v}\n"));
    }
    if paths.target.is_none() {
        out.push_str(
            "# Off-host copies: a btrfs filesystem on another disk, or another host over ssh:\n\
             # target send-receive /mnt/backup/podfs\n\
             # target send-receive ssh://backup.example.org/srv/btrbk/podfs\n",
        );
    }
    if settings.subvolumes.is_empty() {
        out.push_str("\n# No subvolume of this plan holds data that is snapshotted.\n");
    }
    for s in &settings.subvolumes {
        out.push_str(&format!("\n# {}\nsubvolume {}\n", s.comment, s.path));
        for (k, v) in &s.options {
            out.push_str(&format!("  {k} {v}\n"));
        }
    }
    out
}
