//! `migrate`: move a live Podman host to the planned layout, in place or onto a new disk
//! (`--to-disk`), losing nothing.

use super::Format;
use crate::decide::Strategy;
use crate::error::{Error, exit};
use crate::migrate::journal::{
    DEFAULT_STATE_DIR, DiskSubvolume, Journal, Persisted, Phase, PodmanFacts, Service, StateDir, Step,
    Target, ToDisk, VERSION,
};
use crate::migrate::persist::{self, MountSpec, MountsKind};
use crate::migrate::podman_ops::{self, Podman};
use crate::migrate::steps::{self, Run, Stop};
use crate::migrate::{disk, onto_disk, targets, tree};
use crate::podman::discover;
use crate::size::Human;
use clap::Args;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

const EXAMPLES: &str = "Examples:
  podman-btrfs-advise migrate --dry-run              # print every step and the space it needs
  podman-btrfs-advise migrate                        # asks before it starts
  podman-btrfs-advise migrate --status
  podman-btrfs-advise migrate --resume               # after a crash, a kill or Ctrl-C
  podman-btrfs-advise migrate --rollback             # back to exactly the original state
  podman-btrfs-advise migrate --finalize             # verify once more, delete the old data
  podman-btrfs-advise migrate --to-disk /dev/disk/by-id/NEW --dry-run   # onto a new btrfs disk";

const LONG_HELP: &str = "Examples:
  podman-btrfs-advise migrate --dry-run
  podman-btrfs-advise migrate --url unix:///run/podman/podman.sock --strategy performance --yes
  podman-btrfs-advise migrate --status --format json
  podman-btrfs-advise migrate --resume | --rollback | --finalize

Podman's view never changes: no path, storage driver or volume record is changed, no
container is recreated, nothing is reset. In place, graphroot becomes a subvolume of its
own at the same path, and each volume whose class gets a subvolume of its own in the plan
(see the class table in the README) becomes one at its same path (its `_data`
directory), made empty with the class's attributes (NOCOW, or the compression property)
and filled by a copy: NOCOW cannot be set on existing data, and a reflink or rename would
keep the old extents. Copies that keep copy-on-write share extents (reflinks) and cost
almost no space; NOCOW copies write every byte. A subvolume nested in a copied tree (the
btrfs storage driver keeps each layer as one below graphroot) becomes a new subvolume in
the copy, read-only when its source is, so graphroot on the btrfs driver is migrated in
place too; something mounted below a target stops the copy.

Steps, kept in a journal (--state-dir, default /var/lib/podman-btrfs-advise/migrate/,
written atomically after every change; a lock lets one migration run at a time):
  preflight         Podman version, free space (NOCOW copies counted in full), btrfs
                    quotas, SELinux (no path changes, so no `semanage fcontext` rule is
                    needed), what runs, which containers systemd units manage
                    (PODMAN_SYSTEMD_UNIT, also set by Quadlet), which API services run
                    (system units, or `systemctl --user` ones for a rootless Podman
                    whose socket lies in /run/user/UID), and each Quadlet unit
                    (.container .volume .pod .kube in /etc/containers/systemd,
                    /usr/share/containers/systemd, /run/containers/systemd,
                    ~/.config/containers/systemd and the users/ subdirectories, or
                    QUADLET_UNIT_DIRS) with what migrate does about it
  stop-containers   each running container with its own stop timeout; one a systemd unit
                    manages through `systemctl stop UNIT`, so systemd does not restart it
  stop-services     podman.socket and podman.service through systemctl; a
                    `podman system service` started by hand is ended (SIGTERM) and the
                    output says to start it again: a running service keeps the old store open
  copy              into a new subvolume beside each target (NAME.podfs-new-STAMP)
  verify            every file by content and metadata
  swap              renames: the data to NAME.podfs-old-STAMP, the new subvolume to NAME
  start-services    what was stopped
  start-containers  exactly what ran before; then the old copy's subvolumes are made
                    read-only (a plain directory cannot be: it is left as it was)
  check             scan: every target a subvolume of its own with its attributes
Containers are stopped and started through Podman's API when it answers, else with
`podman` itself (only when it is the same Podman: same mount namespace, version and
graphroot). With no API service answering, the host is read through a
`podman system service` of migrate's own on a socket in the state directory, ended
before the first step.

Onto a new disk (--to-disk DEV): graphroot and the volumes whose class gets a subvolume of
its own move onto DEV, a btrfs block device (one the plan's disko.nix formatted, without
mounting it, or an empty one; migrate never formats anything), and are mounted at the
same paths. Data on ext4 or xfs moves this way. DEV is refused (exit 3) when it holds no
btrfs, is in use (mounted anywhere, swap, holders), holds graphroot, or its top level holds
anything but empty subvolumes a plan names. Subvolumes: graphroot → @containers-storage, a
volume path outside graphroot → @containers-volumes, each volume of an own-subvolume class
→ @volume-NAME; an empty one disko made is used, the rest are made, each with its class's
attributes before any data is written. Mount options: the plan's (noatime, compress=zstd:N).
The steps differ here:
  preflight         also DEV's size and free space: every byte is copied, nothing is shared
  copy              DEV's top level mounted privately under the state directory, each target
                    copied into its subvolume; graphroot without the volumes that get their
                    own (their empty `_data` directories stay, as mount points)
  swap              outer paths first: the directory renamed to NAME.podfs-old-STAMP, an
                    empty one with its owner and mode made in its place, the subvolume
                    mounted there (in migrate's mount namespace: run it in Podman's)
  persist-mounts    the mounts written where the host keeps them, by UUID, exactly as the
                    plan showed them before confirming (--mounts):
                      fstab    lines added to --fstab FILE (default /etc/fstab), backed up
                               first (FILE.STAMP.bak), each after a marker comment
                      systemd  one .mount unit per path in --unit-dir DIR (default
                               /etc/systemd/system), named by systemd's path escaping,
                               WantedBy=local-fs.target and its wants link; run
                               `systemctl daemon-reload` afterwards
                      nixos    a module with fileSystems entries, --nixos-file FILE (default
                               /etc/nixos/podman-btrfs-advise-mounts.nix): import it, then
                               `nixos-rebuild switch`
                      none     shown only, to add by hand
                    auto (the default): nixos when /etc/NIXOS exists, else fstab
--rollback unmounts (inner mounts first), removes exactly the entries it wrote and renames
the old data back; after the swap the subvolumes on DEV are kept and named. --finalize
verifies the old data against the mounted data and deletes it.

--resume continues after a crash, a kill or Ctrl-C at any point; --rollback returns to
exactly the original state from any point before --finalize (after the swap it first
stops again what runs on the new data; the new subvolumes are then kept and named, as
they hold what ran since); --finalize verifies the old data against the live data once
more (what changed since the swap is the host's own) and deletes it: the only things
migrate ever deletes are the old copy it kept, and on --rollback before the swap the new
subvolumes it made (nested ones with the subvolume delete ioctl, read-only ones made
writable first). --rollback makes writable again what migrate made read-only.

JSON output (--format json), fields are only ever added:
  {\"result\": \"nothing-to-do\"|\"dry-run\"|\"migrated\"|\"interrupted\"|\"failed\"|\"rolled-back\"|
   \"finalized\"|\"status\", \"error\": STRING|null, \"freed_bytes\": N|null,
   \"migration\": {state_dir, stamp, phase, strategy, podman {url, version, graphroot, runroot,
   driver, foreign_namespace}, steps [{step, done}], targets [{role {kind, name}, path, class,
   nocow, compression, bytes, needs, reflink, source, live, staging, old, inside, copied,
   verified, made_read_only}], containers [{id, name, state, stop_timeout, unit, stopped, started}],
   services [{kind: systemd|manual, …}], space {needed, available}, checks [STRING],
   skipped [{what, why}], interrupted {step, message}|null, notes [{step, message}],
   to_disk: null | {device, resolved, uuid, size, free, top, options [STRING],
     subvolumes [{name, path, made}], mounts {kind, entries [{file, text}], file, lines
     [STRING], backup, written}}}}

Exit codes: 0 done (or nothing to do); 2 usage: no terminal to confirm on without --yes,
a migration already under way, --resume without one; 3 refused or stopped: the
environment does not allow it (too little space, a mount point below a target), a step failed,
or Ctrl-C or SIGTERM (which stop at the next safe point); the output then says `migrate --resume` or `migrate --rollback`.";

/// Move this host's container data to the planned layout, in place or onto a new disk, losing nothing.
///
/// Plans from the live host (as `plan --from-host`) or follows --plan DIR, prints every
/// step and the space it needs, asks before it starts, then runs the steps from a journal
/// that --resume, --rollback, --status and --finalize read. --to-disk DEV moves the data
/// onto a new btrfs disk instead, mounted at the same paths.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct MigrateArgs {
    /// Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Trade-off between speed and checksums/snapshots, as for `plan`.
    #[arg(long, value_enum, default_value_t = Strategy::Balanced, conflicts_with = "plan")]
    pub strategy: Strategy,

    /// Follow a plan written by `plan --out DIR` (its plan.json) instead of planning now.
    #[arg(long, value_name = "DIR")]
    pub plan: Option<PathBuf>,

    /// Print the steps and the space they need; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask before starting (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Continue an interrupted migration.
    #[arg(long, group = "mode")]
    pub resume: bool,

    /// Return to exactly the original state (from any point before --finalize).
    #[arg(long, group = "mode")]
    pub rollback: bool,

    /// Show where the migration stands.
    #[arg(long, group = "mode")]
    pub status: bool,

    /// Verify the old data against the live data once more, then delete it.
    #[arg(long, group = "mode")]
    pub finalize: bool,

    /// Move graphroot and the volumes whose class gets a subvolume of its own onto DEV, a
    /// btrfs block device (made by the plan's disko.nix, or an empty one; never formatted
    /// here), mounted at the same paths. Data on ext4 or xfs moves this way.
    #[arg(long, value_name = "DEV")]
    pub to_disk: Option<String>,

    /// With --to-disk: where the persistent mounts are written (auto: nixos when /etc/NIXOS
    /// exists, else fstab; none: shown, not written).
    #[arg(long, value_enum, default_value_t = MountsKind::Auto, value_name = "KIND", requires = "to_disk")]
    pub mounts: MountsKind,

    /// With --to-disk --mounts fstab: the fstab to add the mounts to (backed up first).
    #[arg(long, value_name = "FILE", default_value = "/etc/fstab", requires = "to_disk")]
    pub fstab: PathBuf,

    /// With --to-disk --mounts systemd: where the .mount units go.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system", requires = "to_disk")]
    pub unit_dir: PathBuf,

    /// With --to-disk --mounts nixos: the NixOS module with the fileSystems entries.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/nixos/podman-btrfs-advise-mounts.nix",
        requires = "to_disk"
    )]
    pub nixos_file: PathBuf,

    /// Where the journal and its lock live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: MigrateArgs) -> Result<u8, Error> {
    let state = StateDir::new(&args.state_dir);
    if args.status {
        let Some(j) = state.load()? else {
            return Err(Error::Usage(format!(
                "no migration was started with the journal in {}",
                state.dir.display()
            )));
        };
        print_result(&args, &state, &j, "status", None, None);
        return Ok(exit::OK);
    }
    // A dry run writes nothing: no state directory or lock unless a migration made them.
    let _lock = if args.dry_run && !state.dir.exists() { None } else { Some(state.lock()?) };
    let existing = state.load()?;
    if args.resume || args.rollback || args.finalize {
        let Some(mut j) = existing else {
            return Err(Error::Usage(format!(
                "no migration to {} in {}",
                if args.resume {
                    "resume"
                } else if args.rollback {
                    "roll back"
                } else {
                    "finalize"
                },
                state.dir.display()
            )));
        };
        return continue_existing(&args, &state, &mut j);
    }
    if let Some(j) = existing {
        match j.phase {
            Phase::Running | Phase::Migrated => {
                return Err(Error::Usage(format!(
                    "a migration is under way ({}, phase {:?}) in {}\n  = help: `migrate --status`, then \
                     `--resume`, `--rollback` or `--finalize`",
                    j.stamp,
                    j.phase,
                    state.dir.display()
                )));
            }
            Phase::RolledBack | Phase::Finalized => {
                state.archive(&j)?;
            }
        }
    }
    start_new(&args, &state)
}

fn human(args: &MigrateArgs) -> bool {
    args.format == Format::Human
}

fn continue_existing(args: &MigrateArgs, state: &StateDir, j: &mut Journal) -> Result<u8, Error> {
    let podman = podman_for(j)?;
    let cancel = super::cancel_on_signal();
    let say = |line: &str| say(args, line);
    let run = Run { state, podman: &podman, cancel: &cancel, say: &say };
    if args.rollback {
        if j.phase == Phase::Finalized || j.phase == Phase::RolledBack {
            return Err(Error::Usage(format!(
                "the migration {} is {:?}: nothing to roll back",
                j.stamp, j.phase
            )));
        }
        match run.rollback(j) {
            Ok(()) => {
                print_result(args, state, j, "rolled-back", None, None);
                Ok(exit::OK)
            }
            Err(e) => {
                print_result(args, state, j, "failed", Some(&e.to_string()), None);
                Err(e)
            }
        }
    } else if args.finalize {
        if j.phase != Phase::Migrated {
            return Err(Error::Usage(format!(
                "the migration {} is {:?}; --finalize deletes the old data only after every step is done",
                j.stamp, j.phase
            )));
        }
        let at = one_path_per_filesystem(
            j.targets.iter().filter(|t| t.inside.is_none()).map(|t| parent(&t.path)).collect(),
        );
        let before: u64 = at.iter().map(|p| steps::available(p)).sum();
        run.finalize(j)?;
        let after: u64 = at.iter().map(|p| steps::available(p)).sum();
        let freed = after.saturating_sub(before);
        print_result(args, state, j, "finalized", None, Some(freed));
        Ok(exit::OK)
    } else {
        if j.phase != Phase::Running {
            return Err(Error::Usage(format!(
                "the migration {} is {:?}: nothing to resume",
                j.stamp, j.phase
            )));
        }
        forward(args, state, &run, j)
    }
}

fn forward(args: &MigrateArgs, state: &StateDir, run: &Run, j: &mut Journal) -> Result<u8, Error> {
    match run.forward(j) {
        Ok(()) => {
            print_result(args, state, j, "migrated", None, None);
            if human(args) {
                for t in &j.targets {
                    println!("  old data kept at {}", steps::settled(j, t, &t.old).display());
                }
                println!(
                    "Check the host, then `podman-btrfs-advise migrate --finalize --state-dir {}` deletes the old \
                     data (or `--rollback` returns to the original state).",
                    state.dir.display()
                );
            }
            Ok(exit::OK)
        }
        Err(stop) => {
            let (result, message) = match &stop {
                Stop::Cancelled(step) => {
                    ("interrupted", format!("stopped at a safe point in step {}", step.as_str()))
                }
                Stop::Failed(step, e) => ("failed", format!("step {} failed: {e}", step.as_str())),
            };
            print_result(args, state, j, result, Some(&message), None);
            Err(Error::Environment(format!(
                "{message}\n  = help: `podman-btrfs-advise migrate --resume --state-dir {d}` continues, \
                 `podman-btrfs-advise migrate --rollback --state-dir {d}` returns to the original state",
                d = state.dir.display()
            )))
        }
    }
}

/// The paths, one per filesystem, so that free space summed over them counts each once.
/// Told apart by the mount's `major:minor`, not st_dev: each btrfs subvolume has an
/// st_dev of its own. An unreadable mount table keeps every path.
fn one_path_per_filesystem(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    one_path_per_mounted_filesystem(paths, &crate::inspect::read_mounts().unwrap_or_default())
}

fn one_path_per_mounted_filesystem(
    paths: Vec<PathBuf>,
    mounts: &[crate::inspect::mountinfo::MountEntry],
) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    paths
        .into_iter()
        .filter(|p| {
            let fs = crate::inspect::mountinfo::mount_of(mounts, &p.to_string_lossy())
                .map_or_else(|| p.display().to_string(), |m| m.device_number.clone());
            seen.insert(fs)
        })
        .collect()
}

fn parent(p: &Path) -> PathBuf {
    p.parent().unwrap_or(Path::new("/")).to_path_buf()
}

fn say(args: &MigrateArgs, line: &str) {
    tracing::info!("{line}");
    if human(args) {
        println!("  {line}");
    }
}

fn podman_for(j: &Journal) -> Result<Podman, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let at = discover(Some(&j.podman.url), &env, rustix::process::geteuid().is_root())?;
    Podman::new(at, j.podman.clone())
}

/// A dry run's own directory for the planning service's socket, removed when dropped
/// (after the service ended), so that a dry run leaves nothing behind.
struct DryRunDir(PathBuf);

impl DryRunDir {
    fn new() -> Result<DryRunDir, Error> {
        let dir = std::env::temp_dir().join(format!("podman-btrfs-advise-dry-run-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, "create directory", e))?;
        Ok(DryRunDir(dir))
    }
}

impl Drop for DryRunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The strategy of a plan written by `plan --out DIR`.
fn strategy_of_plan(dir: &Path) -> Result<Strategy, Error> {
    let path = dir.join(crate::render::PLAN_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!("{} is not a plan written by `plan --out`: {e}", path.display()))
    })?;
    if let Some(fs) = v["plan"]["database_fs"].as_str() {
        return Err(Error::Usage(format!(
            "{} puts database data on a partition of its own ({fs}); migrate moves data into btrfs \
             subvolumes and never partitions a disk\n  = help: lay out the disk with the plan's disko.nix, \
             move the database data there yourself, or plan again without --database-fs",
            path.display()
        )));
    }
    let name = v["plan"]["strategy"].as_str().unwrap_or_default();
    <Strategy as clap::ValueEnum>::from_str(name, true)
        .map_err(|_| Error::Usage(format!("{}: unknown strategy {name:?}", path.display())))
}

fn start_new(args: &MigrateArgs, state: &StateDir) -> Result<u8, Error> {
    let strategy = match &args.plan {
        Some(dir) => strategy_of_plan(dir)?,
        None => args.strategy,
    };
    // Bad input fails before anything runs.
    let device = args.to_disk.as_deref().map(disk::open_device).transpose()?;
    let env = |name: &str| std::env::var(name).ok();
    let at = discover(args.url.as_deref(), &env, rustix::process::geteuid().is_root())?;
    // No API service answers: read the host through one of our own, ended before any step.
    let dry_run_dir;
    let planning = if podman_ops::answers_at(&at) {
        None
    } else {
        let socket_dir = if args.dry_run {
            dry_run_dir = DryRunDir::new()?;
            dry_run_dir.0.as_path()
        } else {
            std::fs::create_dir_all(&state.dir).map_err(|e| Error::io(&state.dir, "create directory", e))?;
            state.dir.as_path()
        };
        let service = podman_ops::PlanningService::start(socket_dir)?;
        tracing::info!(
            "no Podman API answers at {}: reading the host through {}",
            at.endpoint.url(),
            service.url
        );
        Some(service)
    };
    let read_at = planning.as_ref().map_or(args.url.clone(), |p| Some(p.url.clone()));
    // Sizes are measured per target below, leaving out what each copy leaves out.
    let options = crate::scan::ScanOptions { sizes: false, workers: 8 };
    let mut report = crate::scan::scan_host(read_at.as_deref(), options, &|_, _| {})?;
    if planning.is_some() {
        // The journal names the endpoint the user's Podman is reached at, not ours.
        report.endpoint = at.endpoint.url();
    }
    let stamp = stamp();
    let (mut targets, skipped, mut to_disk, disk_quotas) = match (&args.to_disk, &device) {
        (Some(dev), Some((resolved, sb))) => {
            let (targets, skipped, d, quotas) =
                plan_disk(args, state, &report, strategy, &stamp, dev, resolved, sb)?;
            (targets, skipped, Some(d), Some(quotas))
        }
        _ => {
            let (targets, skipped) = targets::in_place(&report, strategy, &stamp);
            (targets, skipped, None, None)
        }
    };
    let server_pid = report.placement_source.server_pid.filter(|_| planning.is_none());
    let facts = PodmanFacts {
        url: report.endpoint.clone(),
        version: report.podman_version.clone(),
        graphroot: report.storage.graphroot.clone(),
        runroot: report.storage.runroot.clone(),
        driver: report.storage.driver.clone(),
        foreign_namespace: podman_ops::foreign_namespace(server_pid),
    };
    if let Some(pid) = server_pid.filter(|_| facts.foreign_namespace) {
        if let Some(d) = &to_disk {
            return Err(Error::Environment(format!(
                "Podman (pid {pid}) runs in another mount namespace: the mounts of {} made here would \
                 not be seen there\n  = help: run migrate in Podman's mount namespace (`nsenter -t {pid} -m`)",
                d.device
            )));
        }
        same_paths_here(pid, &targets)?;
    }
    let mut j = Journal {
        version: VERSION,
        stamp,
        phase: Phase::Running,
        strategy: strategy.to_string(),
        podman: facts,
        targets: Vec::new(),
        containers: Vec::new(),
        services: Vec::new(),
        done: Vec::new(),
        swapped_at: None,
        interrupted: None,
        notes: Vec::new(),
        to_disk: None,
    };
    if targets.is_empty() {
        print_plan(args, state, &j, &skipped, &[], (0, 0));
        if human(args) {
            println!("Nothing to migrate: every target is where the plan wants it.");
        }
        return Ok(exit::OK);
    }
    for i in 0..targets.len() {
        let nested = onto_disk::nested_in(&targets, i);
        let t = &mut targets[i];
        let totals =
            tree::measure_except(&t.source, &nested).map_err(|e| Error::Environment(e.to_string()))?;
        targets::set_size(t, totals.bytes, totals.allocated);
    }
    j.targets = targets;
    j.to_disk = to_disk.take();
    // The user's Podman, which the steps use; what runs is listed through our own
    // planning service when no API service of theirs answers.
    let podman = podman_for(&j)?;
    j.containers = match &planning {
        Some(p) => Podman::new(podman_ops::discovered(&p.url), j.podman.clone())?.running()?,
        None => podman.running()?,
    };
    // Our own planning service is ended here; the steps use `podman` itself.
    j.services =
        if planning.is_some() { Vec::new() } else { podman_ops::api_services(server_pid, &j.podman.url)? };
    drop(planning);
    let (checks, space) = preflight(&j, &report, disk_quotas.as_deref())?;
    print_plan(args, state, &j, &skipped, &checks, space);
    if args.dry_run {
        if human(args) {
            println!("Dry run: nothing was changed.");
        }
        return Ok(exit::OK);
    }
    confirm(args)?;
    for c in checks {
        j.note(Step::Preflight, c);
    }
    j.done.push(Step::Preflight);
    state.save(&j)?;
    let cancel = super::cancel_on_signal();
    let say = |line: &str| say(args, line);
    let run = Run { state, podman: &podman, cancel: &cancel, say: &say };
    forward(args, state, &run, &mut j)
}

/// The targets and the new disk of `--to-disk`: refuses the disk graphroot is on, a disk
/// something uses, and a top level that holds anything but empty subvolumes the plan names
/// (read through a private read-only mount under the state directory, unmounted after).
#[allow(clippy::too_many_arguments)]
fn plan_disk(
    args: &MigrateArgs,
    state: &StateDir,
    report: &crate::scan::ScanReport,
    strategy: Strategy,
    stamp: &str,
    dev: &str,
    resolved: &Path,
    sb: &disk::Superblock,
) -> Result<(Vec<Target>, Vec<targets::Skipped>, ToDisk, String), Error> {
    if let Some(g) = &report.graphroot
        && disk::holds(resolved, &g.device)
    {
        return Err(Error::Environment(format!(
            "--to-disk {dev}: graphroot {} is on that disk ({}); the new disk must be another one\n  = help: \
             name an empty disk; to give graphroot a subvolume of its own on this btrfs, run migrate without --to-disk",
            g.path, g.device
        )));
    }
    disk::refuse_in_use(dev)?;
    let top = disk::top_dir(&state.dir, stamp);
    let targets::DiskTargets { targets, names, skipped } =
        targets::to_disk(report, strategy, stamp, &top).map_err(Error::Usage)?;
    // The swap renames each outer path aside, which the kernel refuses for a mount point.
    for t in targets.iter().filter(|t| t.inside.is_none()) {
        if let Some(m) = disk::mount_at(&t.path)? {
            return Err(Error::Environment(format!(
                "{} is a mount point ({} from {}); migrate renames the directory aside and mounts the new \
                 subvolume there, which it cannot do to a mount point\n  = help: mount that filesystem \
                 elsewhere and make {} a directory on it (a bind mount), or copy by hand",
                t.path.display(),
                m.fs_type,
                m.source,
                t.path.display()
            )));
        }
    }
    std::fs::create_dir_all(&top).map_err(|e| Error::io(&top, "create directory", e))?;
    let found = disk::mount(resolved, "/", &[], &top, true).and_then(|()| {
        let entries = disk::read_top(&top);
        let free = steps::available(&top);
        entries.map(|e| (e, free, quotas_check(&top, true)))
    });
    let _ = disk::unmount(&top, resolved, "/");
    let _ = std::fs::remove_dir(&top);
    let (entries, free, quotas) = found?;
    let unexpected = disk::unexpected_in_top(&entries, &names);
    if !unexpected.is_empty() {
        return Err(Error::Environment(format!(
            "--to-disk {dev}: its top level holds {}; migrate copies only onto an empty btrfs or one with \
             the plan's empty subvolumes\n  = help: name an empty disk (nothing on it is changed)",
            unexpected.join(", ")
        )));
    }
    let options = disk::mount_options(strategy, resolved);
    let specs: Vec<MountSpec> = targets
        .iter()
        .zip(&names)
        .map(|(t, n)| MountSpec { subvolume: n.clone(), path: t.path.clone() })
        .collect();
    let kind = args.mounts.resolve(Path::new("/etc/NIXOS").exists());
    let places = persist::Places {
        fstab: args.fstab.clone(),
        unit_dir: args.unit_dir.clone(),
        nixos_file: args.nixos_file.clone(),
    };
    let entries = persist::render(kind, &places, &sb.uuid, &specs, &options);
    let lines =
        if kind == MountsKind::Fstab { persist::fstab_lines(&sb.uuid, &specs, &options) } else { Vec::new() };
    let file = match kind {
        MountsKind::Systemd => args.unit_dir.clone(),
        MountsKind::Nixos => args.nixos_file.clone(),
        _ => args.fstab.clone(),
    };
    let d = ToDisk {
        device: dev.to_string(),
        resolved: resolved.to_path_buf(),
        uuid: sb.uuid.clone(),
        size: sb.total_bytes,
        free,
        top,
        options,
        subvolumes: names
            .iter()
            .zip(&targets)
            .map(|(n, t)| DiskSubvolume { name: n.clone(), path: t.path.clone(), made: false })
            .collect(),
        mounts: Persisted { kind, entries, file, lines, backup: None, written: false },
    };
    persist::preflight(kind, &d.mounts.entries, &specs)?;
    Ok((targets, skipped, d, quotas))
}

/// Refuses a migration when a path Podman names is another directory here than in its
/// mount namespace: the renames happen here, and must rename what Podman sees.
fn same_paths_here(pid: u32, targets: &[Target]) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    for t in targets {
        let theirs =
            PathBuf::from(format!("/proc/{pid}/root")).join(t.path.strip_prefix("/").unwrap_or(&t.path));
        if id(&t.path).is_none() || id(&t.path) != id(&theirs) {
            return Err(Error::Environment(format!(
                "Podman (pid {pid}) runs in another mount namespace, where {} is not the directory it \
                 names here\n  = help: run migrate in Podman's mount namespace",
                t.path.display()
            )));
        }
    }
    Ok(())
}

/// Checks that refuse a migration, and facts to show; returns (checks, (needed, available)).
/// `disk_quotas`: the quota line of the new disk, read while its top level was mounted.
fn preflight(
    j: &Journal,
    report: &crate::scan::ScanReport,
    disk_quotas: Option<&str>,
) -> Result<(Vec<String>, (u64, u64)), Error> {
    let mut checks =
        vec![format!("Podman {} at {}, storage driver {}", j.podman.version, j.podman.url, j.podman.driver)];
    for t in &j.targets {
        // On a new disk the subvolumes may exist (empty, checked); the old data is beside.
        let paths = if j.to_disk.is_some() { vec![&t.old] } else { vec![&t.staging, &t.old] };
        for p in paths {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(Error::Environment(format!(
                    "{} exists already; migrate never writes over what it did not make",
                    p.display()
                )));
            }
        }
    }
    let needed: u64 = j.targets.iter().map(|t| t.needs).sum();
    if let Some(d) = &j.to_disk {
        // Metadata (kept twice on one device) and room for what runs once it is there.
        let margin = (32 << 20) + needed / 20;
        if needed + margin > d.free {
            return Err(Error::Environment(format!(
                "not enough space on {}: the data needs {} (every byte is copied: nothing is shared across \
                 filesystems) and {} to spare, but the btrfs on it ({} in all) has {} free; nothing was changed",
                d.device,
                Human(needed),
                Human(margin),
                Human(d.size),
                Human(d.free)
            )));
        }
        checks.push(format!(
            "space: the data needs {}, {} (btrfs UUID {}, {} in all) has {} free",
            Human(needed),
            d.device,
            d.uuid,
            Human(d.size),
            Human(d.free)
        ));
    }
    // Metadata of reflinked copies, and room to spare for what runs meanwhile.
    let margin = 256 << 20;
    let at = parent(&j.targets[0].path);
    let available = j.to_disk.as_ref().map_or_else(|| steps::available(&at), |d| d.free);
    if j.to_disk.is_none() && needed + margin > available {
        return Err(Error::Environment(format!(
            "not enough space: the copies need {} (NOCOW copies cannot share extents) and {} to spare, \
             but {} has {} free",
            Human(needed),
            Human(margin),
            at.display(),
            Human(available)
        )));
    }
    if j.to_disk.is_none() {
        checks.push(format!("space: the copies need {} more, {} is free", Human(needed), Human(available)));
    }
    checks.push(match disk_quotas {
        Some(line) => line.to_string(),
        // Graphroot when it is a target, else the first volume: on the btrfs migrated.
        None => quotas_check(&j.targets[0].path, false),
    });
    checks.push(match std::fs::read_to_string("/sys/fs/selinux/enforce").map(|s| s.trim() == "1") {
        Ok(true) => "SELinux enforces: copies keep security.selinux and no path changes, so no \
                     `semanage fcontext` rule is needed"
            .into(),
        _ => "SELinux does not enforce here; no path changes in any case, so no `semanage fcontext` rule is needed"
            .into(),
    });
    for c in &j.containers {
        checks.push(match &c.unit {
            Some(u) => format!("{} {} (systemd unit {u}: stopped and started through it)", c.name, c.state),
            None => format!("{} {} (stop timeout {} s)", c.name, c.state, c.stop_timeout),
        });
    }
    if j.containers.is_empty() {
        checks.push("no container runs".into());
    }
    checks.extend(podman_ops::quadlet_preflight(&j.podman.url, report.rootless, &j.containers));
    for s in &j.services {
        checks.push(match s {
            Service::Systemd { units, .. } => {
                format!("API service: {} (stopped and started again)", units.join(", "))
            }
            Service::Manual { pid, command, .. } => {
                format!(
                    "API service started by hand: pid {pid} `{command}` (stopped; start it again afterwards)"
                )
            }
        });
    }
    Ok((checks, (needed, available)))
}

/// The preflight line on btrfs quotas of the filesystem at `dir`: a target's in place,
/// the new disk's top level with --to-disk (where the new subvolumes are made).
fn quotas_check(dir: &Path, to_disk: bool) -> String {
    use std::os::fd::AsFd;
    let status = std::fs::File::open(dir)
        .map_err(|e| e.to_string())
        .and_then(|f| crate::btrfs::quota_status(f.as_fd()).map_err(|e| e.to_string()));
    match status {
        Ok(crate::btrfs::QuotaStatus::Off) => "btrfs quotas are off".into(),
        Ok(_) if to_disk => "btrfs quotas are on on the new disk: each new subvolume gets a qgroup".into(),
        Ok(_) => {
            "btrfs quotas are on: each new subvolume gets a qgroup; the old data counts until --finalize"
                .into()
        }
        Err(e) => format!("btrfs quotas: cannot tell for {} ({e})", dir.display()),
    }
}

fn confirm(args: &MigrateArgs) -> Result<(), Error> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage("no terminal to confirm on: pass --yes to start the migration".into()));
    }
    eprint!("Start the migration? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("stdin", "read", e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was changed".into()))
    }
}

/// `YYYYMMDDTHHMMSSZ`, as backups are named.
fn stamp() -> String {
    crate::output::timestamp()
}

fn target_line(t: &Target) -> String {
    let attrs = match (t.nocow, &t.compression) {
        (true, _) => "NOCOW".to_string(),
        (false, Some(c)) => format!("compression {c}"),
        (false, None) => "copy-on-write".to_string(),
    };
    let cost = if t.reflink {
        format!("{} reflinked: metadata only", Human(t.bytes))
    } else {
        format!("{} written in full ({} with holes)", Human(t.needs), Human(t.bytes))
    };
    format!("{} ({}) → new subvolume {} ({attrs}), {cost}", t.path.display(), t.class, t.staging.display())
}

fn disk_target_line(t: &Target, subvolume: &str, device: &str) -> String {
    let attrs = match (t.nocow, &t.compression) {
        (true, _) => "NOCOW".to_string(),
        (false, Some(c)) => format!("compression {c}"),
        (false, None) => "copy-on-write".to_string(),
    };
    format!(
        "{} ({}) → subvolume {subvolume} on {device} ({attrs}), {} written ({} with holes)",
        t.path.display(),
        t.class,
        Human(t.needs),
        Human(t.bytes)
    )
}

fn persisted_line(m: &Persisted) -> String {
    match m.kind {
        MountsKind::Fstab => format!("these lines added to {} (backed up first):", m.file.display()),
        MountsKind::Systemd => {
            format!("these units written to {}, enabled for local-fs.target:", m.file.display())
        }
        MountsKind::Nixos => {
            format!("this module written to {} (import it, then `nixos-rebuild switch`):", m.file.display())
        }
        _ => "none written (--mounts none); add these fstab lines or their equivalent by hand:".into(),
    }
}

fn print_plan(
    args: &MigrateArgs,
    state: &StateDir,
    j: &Journal,
    skipped: &[targets::Skipped],
    checks: &[String],
    space: (u64, u64),
) {
    match args.format {
        Format::Json => {
            let mut v = migration_json(state, j);
            v["checks"] = json!(checks);
            v["skipped"] = json!(skipped);
            v["space"] = json!({ "needed": space.0, "available": space.1 });
            // A migration that goes on prints its result when it ends instead.
            if j.targets.is_empty() || args.dry_run {
                let result = if j.targets.is_empty() { "nothing-to-do" } else { "dry-run" };
                println!(
                    "{}",
                    pretty(&json!({ "result": result, "error": null, "freed_bytes": null, "migration": v }))
                );
            }
        }
        Format::Human => {
            match &j.to_disk {
                Some(d) => println!(
                    "Migration {} onto {} (btrfs UUID {}, strategy {}), journal in {}:",
                    j.stamp,
                    d.device,
                    d.uuid,
                    j.strategy,
                    state.dir.display()
                ),
                None => println!(
                    "Migration {} in place (strategy {}), journal in {}:",
                    j.stamp,
                    j.strategy,
                    state.dir.display()
                ),
            }
            println!("  1. preflight");
            for c in checks {
                println!("       {c}");
            }
            let names: Vec<String> = j.containers.iter().map(|c| c.name.clone()).collect();
            println!(
                "  2. stop-containers: {}",
                if names.is_empty() { "none run".into() } else { names.join(", ") }
            );
            let services: Vec<String> = j
                .services
                .iter()
                .map(|s| match s {
                    Service::Systemd { units, .. } => units.join(", "),
                    Service::Manual { pid, .. } => {
                        format!("podman system service (pid {pid}, started by hand)")
                    }
                })
                .collect();
            println!(
                "  3. stop-services: {}",
                if services.is_empty() { "none".into() } else { services.join(", ") }
            );
            println!("  4. copy:");
            for (i, t) in j.targets.iter().enumerate() {
                match &j.to_disk {
                    Some(d) => println!("       {}", disk_target_line(t, &d.subvolumes[i].name, &d.device)),
                    None => println!("       {}", target_line(t)),
                }
            }
            println!("  5. verify: every file by content and metadata");
            match &j.to_disk {
                Some(d) => {
                    println!(
                        "  6. swap: each path renamed to NAME.podfs-old-{}, an empty directory with its owner and \
                         mode made in its place, the subvolume mounted there ({})",
                        j.stamp,
                        d.options.join(",")
                    );
                    println!("  7. persist-mounts: {}", persisted_line(&d.mounts));
                    for e in &d.mounts.entries {
                        if d.mounts.kind != MountsKind::Fstab {
                            println!("       {}:", e.file.display());
                        }
                        for line in e.text.lines() {
                            println!("         {line}");
                        }
                    }
                    println!("  8. start-services   9. start-containers   10. check (scan)");
                }
                None => {
                    println!(
                        "  6. swap: renames; the old data stays as NAME.podfs-old-{} until --finalize",
                        j.stamp
                    );
                    println!("  7. start-services   8. start-containers   9. check (scan)");
                }
            }
            for s in skipped {
                println!("  left as it is: {}: {}", s.what, s.why);
            }
            if space.1 > 0 {
                println!("Space: {} more needed, {} free.", Human(space.0), Human(space.1));
            }
        }
    }
}

fn migration_json(state: &StateDir, j: &Journal) -> serde_json::Value {
    let mut v = serde_json::to_value(j).expect("plain data always serializes");
    let steps: Vec<_> =
        Step::ALL.iter().map(|s| json!({ "step": s.as_str(), "done": j.is_done(*s) })).collect();
    v["steps"] = json!(steps);
    v["state_dir"] = json!(state.dir);
    if let Some(o) = v.as_object_mut() {
        o.remove("done");
    }
    v
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("plain data always serializes")
}

fn print_result(
    args: &MigrateArgs,
    state: &StateDir,
    j: &Journal,
    result: &str,
    error: Option<&str>,
    freed: Option<u64>,
) {
    match args.format {
        Format::Json => println!(
            "{}",
            pretty(
                &json!({ "result": result, "error": error, "freed_bytes": freed, "migration": migration_json(state, j) })
            )
        ),
        Format::Human => {
            println!(
                "Migration {}: {result} (phase {:?}), journal {}",
                j.stamp,
                j.phase,
                state.journal_path().display()
            );
            for s in Step::ALL {
                let mark = if j.is_done(s) { "done" } else { "to do" };
                println!("  {:<17} {mark}", s.as_str());
            }
            if let Some(i) = &j.interrupted {
                println!("  stopped in {}: {}", i.step, i.message);
            }
            for n in &j.notes {
                if n.step != "preflight" {
                    println!("  note ({}): {}", n.step, n.message);
                }
            }
            if let Some(f) = freed {
                println!("  freed {}", Human(f));
            }
            if let Some(e) = error {
                eprintln!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_once_per_filesystem_whatever_subvolume_a_path_is_in() {
        let mount = |dev: &str, root: &str, at: &str| crate::inspect::mountinfo::MountEntry {
            mount_id: 0,
            parent_id: 0,
            device_number: dev.into(),
            root: root.into(),
            mountpoint: at.into(),
            mount_options: vec![],
            fs_type: "btrfs".into(),
            source: "/dev/sda2".into(),
            super_options: vec![],
        };
        // Two subvolumes of one btrfs mounted apart, and another filesystem.
        let mounts = [mount("0:30", "/@", "/"), mount("0:30", "/@srv", "/srv"), mount("8:3", "/", "/data")];
        let paths =
            ["/var/lib/containers", "/srv/volumes", "/data/a", "/data/b", "/var/lib"].map(PathBuf::from);
        assert_eq!(
            one_path_per_mounted_filesystem(paths.to_vec(), &mounts),
            [PathBuf::from("/var/lib/containers"), PathBuf::from("/data/a")]
        );
        assert_eq!(one_path_per_mounted_filesystem(paths[..1].to_vec(), &[]), paths[..1]);
    }
}
