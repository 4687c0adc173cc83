//! `plan`: from a workload spec or a live host to disko.nix, storage.conf, a NixOS module,
//! btrbk.conf, PLAN.md and plan.json.

use super::Format;
use crate::bench::report::BenchReport;
use crate::decide::{self, DatabaseFs, Strategy};
use crate::error::{Error, exit};
use crate::inspect::blockdev::{self, Status};
use crate::inventory::{DiskMode, Source, examples, spec};
use crate::output::{self, Overwrite};
use crate::render;
use crate::size::Human;
use clap::Args;
use std::path::PathBuf;

const EXAMPLES: &str = "Examples:
  podman-btrfs-advise plan --example homelab --out ./plan
  podman-btrfs-advise plan --spec host.toml --strategy performance --disk /dev/sdb --out ./plan
  podman-btrfs-advise plan --list-examples

The spec format is described in podman-btrfs-advise-spec(5).";

const LONG_HELP: &str = "Examples:
  podman-btrfs-advise plan --example homelab --out ./plan
  podman-btrfs-advise plan --spec host.toml --strategy performance --disk /dev/sdb --out ./plan
  podman-btrfs-advise plan --list-examples
  podman-btrfs-advise plan --example homelab --bench bench.json --out ./plan
  podman-btrfs-advise plan --spec host.toml --strategy performance --database-fs xfs --out ./plan

JSON output (--format json), fields are only ever added:
  {\"plan\": PLAN, \"files\": [{\"path\", \"backup\", \"unchanged\"}]}   (files empty without --out)
  PLAN: strategy; profile {source, host, workloads [{name, image, class, declared_class,
  count, image_size, volume_size, lifetime, mounts, evidence [{kind, suggests, detail}]}]};
  storage {driver, graphroot, runroot, rootless_storage_path, overlay_mountopt,
  image_copy_tmp_dir}; filesystem_options; layout {disks [{name, device, partitions [{name,
  size, type_code, priority, content}]}]} where a btrfs content has subvolumes [{name,
  mountpoint, mount_options, nocow, compression, purpose}] and a filesystem content has
  {format, mountpoint, mount_options}; placements [{workload, class, kind, count, path,
  subvolume, partition}] (subvolume empty and partition set for data on a partition of its
  own); decisions [{topic, choice, why, gives_up}]; warnings; database_fs (null, \"xfs\"
  or \"ext4\"); bench (null without --bench): {file, tool_version, taken_at, host {dir,
  filesystem, device, kernel, cpus, quick, rounds}, figures [{part, option, measure,
  median, min, max}], skipped [{what, why}], threshold, changed, cited, notes}, where
  changed and cited are decision topics.
  --list-examples --format json prints {\"examples\": [{\"name\", \"summary\"}]}.
  --out also writes plan.json: {\"generator\", \"command\", \"plan\": PLAN}, PLAN as above; it
  is what `migrate --plan DIR` follows.

Measurements (--bench FILE, a report of `bench --out FILE`):
  Decisions cite the figures they rest on: the storage driver the container operations,
  NOCOW subvolumes the database-like I/O (IOPS, p99 latency, extents of NOCOW against
  copy-on-write with zstd), compression the MB/s and CPU s/GB of zstd and none. Two
  options differ clearly when the slower median is at least 1.5x the faster one and their
  min-max ranges over at least 2 rounds do not overlap. The storage driver follows the
  measurements past that threshold: compared are the summed medians of import, commit
  and rmi where builds are at least as many containers as short-lived jobs, else of
  create, start, stop and rm, when builds and short-lived jobs are at least a quarter of
  the containers (else those operations are rare; the reliability strategy keeps
  overlay). Below it, or for
  NOCOW (which also keeps files from fragmenting), the general reasons decide and the
  decision says what was measured. PLAN.md gets a \"Measured on this disk\" section
  with every figure and the decisions they changed. A report taken on another
  filesystem than btrfs is used with a note.

Database data on a partition of its own (--database-fs xfs|ext4, performance only):
  database-class data goes to a partition of that filesystem beside the btrfs one, sized
  from the database workloads' volumes with 50% headroom, mounted where the database
  subvolume would be. PLAN.md states what it gives up (snapshots, send/receive, btrbk,
  one pool of free space, compression; like NOCOW, no data checksums) and, with a bench
  report holding a `compare` layout, the measured gain over NOCOW on btrfs.

Refused, with exit 2 and nothing written:
  - a bench report that cannot be read as one: not JSON, a newer schema, a missing or
    mistyped field; the message names the file and line.
  - --database-fs with another strategy than performance, or for a plan without
    database-class data.
  - a disk that is in use on this machine: a filesystem on it or on one of its partitions
    is mounted (btrfs: also as a member of a multi-device filesystem), it is active swap,
    or something is built on it (device mapper: LVM, LUKS; md RAID; a loop device backed
    by it). The message says what uses it, e.g. `/dev/vda is in use: /dev/vda1 is
    mounted at / (ext4)`. This holds for --disk, for a spec's host.disk and for the
    graphroot disk a plan from the host would default to; that one is always mounted, so
    a plan from the host needs --disk with an unused disk (or convert the host in place
    with `migrate`). A device that does not exist here is a plan for another machine and
    is not checked: name such disks by /dev/disk/by-id/… paths.
  - a plan whose estimated use (images, volumes, and 40 GiB for the system in
    whole-disk mode) exceeds the disk; the message gives both sizes. Over 80% full is a
    warning only.

Exit codes: 0 planned; 2 bad spec, bench report or usage, a disk in use, a plan larger
than its disk, or a refused overwrite; 3 a file could not be read or written, or this
machine's mount table or sysfs could not be read to check the disk.

The spec format is described in podman-btrfs-advise-spec(5).";

/// Plan a host: storage driver, btrfs subvolumes, mount options and attributes.
///
/// Reads what the host will run from a workload spec (--spec), an embedded example
/// (--example), or, with neither, from the live host's Podman socket (--from-host says so
/// explicitly); classifies every workload, decides, and writes disko.nix, storage.conf,
/// podfs-storage.nix, btrbk.conf (snapshots by class), PLAN.md and plan.json (the plan as
/// JSON, which `migrate --plan DIR` follows) into --out. Without --out, PLAN.md goes to
/// stdout and no file is written. Existing files are replaced only with --force, after a
/// timestamped backup; all files are written atomically. A disk in use on this machine, or a plan
/// larger than its disk, is refused before anything is written.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct PlanArgs {
    /// Workload spec file (TOML) describing the host and what it runs.
    #[arg(long, value_name = "FILE", conflicts_with = "example")]
    pub spec: Option<PathBuf>,

    /// Use an embedded example spec instead of a file (see --list-examples).
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,

    /// List the embedded examples and exit.
    #[arg(long, conflicts_with_all = ["spec", "example", "from_host"])]
    pub list_examples: bool,

    /// Plan from what the live host runs (the default without --spec and --example). The
    /// mode defaults to data-disk. Pass --disk with an unused disk: graphroot's own disk is
    /// in use, so without --disk no disk is chosen (exit 2).
    #[arg(long, conflicts_with_all = ["spec", "example"])]
    pub from_host: bool,

    /// Podman socket for --from-host, e.g. unix:///run/podman/podman.sock.
    #[arg(long, value_name = "URL", conflicts_with_all = ["spec", "example"])]
    pub url: Option<String>,

    /// With --from-host: do not walk volume directories for their sizes.
    #[arg(long, conflicts_with_all = ["spec", "example"])]
    pub no_sizes: bool,

    /// Trade-off between speed and checksums/snapshots.
    #[arg(long, value_enum, default_value_t = Strategy::Balanced)]
    pub strategy: Strategy,

    /// Block device to lay out, overriding the spec's `host.disk` (e.g. /dev/disk/by-id/…).
    /// Refused (exit 2) when something on this machine uses it: a mount, swap, LVM,
    /// LUKS, md RAID or a loop device.
    #[arg(long, value_name = "DEVICE")]
    pub disk: Option<String>,

    /// whole-disk (ESP, system and container subvolumes) or data-disk (container
    /// subvolumes only), overriding the spec's `host.mode`.
    #[arg(long, value_name = "MODE", value_parser = clap::builder::PossibleValuesParser::new(DiskMode::NAMES))]
    pub mode: Option<String>,

    /// Directory to write the files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Replace existing files in --out (each is first kept as NAME.YYYYMMDDTHHMMSSZ.bak, with
    /// a counter, NAME.YYYYMMDDTHHMMSSZ.N.bak, when that name is taken).
    #[arg(long, requires = "out")]
    pub force: bool,

    /// A report of `bench --out FILE` measured on this disk: decisions cite its figures,
    /// and they choose the storage driver when the drivers differ clearly (see below).
    #[arg(long, value_name = "FILE")]
    pub bench: Option<PathBuf>,

    /// Performance strategy only: database-class data on a partition of its own with this
    /// filesystem, beside the btrfs partition (PLAN.md says what that gives up).
    #[arg(long, value_enum, value_name = "FS")]
    pub database_fs: Option<DatabaseFs>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: PlanArgs) -> Result<u8, Error> {
    if args.list_examples {
        list_examples(args.format);
        return Ok(exit::OK);
    }
    // Before reading anything: with another strategy the flag cannot apply.
    if args.database_fs.is_some()
        && let Some(why) = decide::database_fs::strategy_refusal(args.strategy)
    {
        return Err(Error::Usage(why));
    }
    let bench = args.bench.as_deref().map(read_bench).transpose()?;
    let profile = profile(&args)?;
    if args.database_fs.is_some()
        && let Some(why) = decide::database_fs::refusal(&profile, args.strategy)
    {
        return Err(Error::Usage(why));
    }
    refuse_overfull(&profile, args.database_fs)?;
    let bench_file = args.bench.as_ref().map(|p| p.display().to_string());
    let inputs = decide::Inputs {
        bench: bench
            .as_ref()
            .zip(bench_file.as_deref())
            .map(|(report, file)| decide::Measured { file, report }),
        database_fs: args.database_fs,
    };
    let plan = decide::decide_with(&profile, args.strategy, &inputs);
    let regenerate = regenerate_command(&args);
    if args.format == Format::Human
        && let Some(b) = &plan.bench
    {
        for note in &b.notes {
            eprintln!("note: {note}");
        }
    }

    let Some(dir) = &args.out else {
        // Only PLAN.md is shown: render nothing else.
        match args.format {
            Format::Human => print!("{}", render::report::render(&plan, &render::header(&plan, &regenerate))),
            Format::Json => println!("{}", json(&serde_json::json!({ "plan": plan, "files": [] }))),
        }
        return Ok(exit::OK);
    };
    let files = render::render_all(&plan, &regenerate);
    let plan_json = json(&plan_document(&plan, &regenerate));
    let mut pairs: Vec<(&str, &str)> = files.iter().map(|f| (f.name, f.contents.as_str())).collect();
    pairs.push((crate::render::PLAN_JSON, &plan_json));
    let written =
        output::write_files(dir, &pairs, if args.force { Overwrite::Backup } else { Overwrite::Refuse })?;
    match args.format {
        Format::Human => {
            println!(
                "Planned {} ({} workloads, strategy {}): driver {}, {} subvolumes{}.",
                plan.profile.host.name,
                plan.profile.workloads.len(),
                plan.strategy,
                plan.storage.driver,
                plan.layout.subvolumes().count(),
                plan.database_fs.map(|fs| format!(", database data on {fs}")).unwrap_or_default()
            );
            if let Some(b) = &plan.bench {
                let changed = if b.changed.is_empty() { "none".to_string() } else { b.changed.join(", ") };
                println!("  measured figures from {} cited; decisions they changed: {changed}", b.file);
            }
            for w in &written {
                let note = match (&w.backup, w.unchanged) {
                    (_, true) => " (unchanged)".to_string(),
                    (Some(b), _) => format!(" (previous kept as {})", b.display()),
                    (None, _) => String::new(),
                };
                println!("  wrote {}{note}", w.path.display());
            }
            for warning in &plan.warnings {
                println!("warning: {warning}");
            }
        }
        Format::Json => println!("{}", json(&serde_json::json!({ "plan": plan, "files": written }))),
    }
    Ok(exit::OK)
}

/// plan.json: `{"generator", "command", "plan": PLAN}`, PLAN as in `--format json`.
fn plan_document(plan: &decide::Plan, command: &str) -> serde_json::Value {
    serde_json::json!({
        "generator": format!("podman-btrfs-advise {}", env!("CARGO_PKG_VERSION")),
        "command": command,
        "plan": plan,
    })
}

fn json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("plain data always serializes")
}

fn list_examples(format: Format) {
    match format {
        Format::Human => {
            for e in examples::EXAMPLES {
                println!("{:<15} {}", e.name, e.summary);
            }
        }
        Format::Json => {
            let list: Vec<_> = examples::EXAMPLES
                .iter()
                .map(|e| serde_json::json!({ "name": e.name, "summary": e.summary }))
                .collect();
            println!("{}", json(&serde_json::json!({ "examples": list })));
        }
    }
}

/// The classified workloads: from a spec or example, or from the live host.
fn profile(args: &PlanArgs) -> Result<crate::classify::Profile, Error> {
    let mode = args.mode.as_deref().and_then(DiskMode::parse);
    if let Some(disk) = &args.disk {
        spec::check_device_path(disk).map_err(|e| Error::Usage(format!("--disk: {e}")))?;
        refuse_disk_in_use(disk, DiskOrigin::Flag)?;
    }
    let mut inventory = match (&args.spec, &args.example) {
        (Some(path), _) => spec::load(path)?,
        (None, Some(name)) => examples::load(name)?,
        (None, None) => {
            let options = crate::scan::ScanOptions { sizes: !args.no_sizes, workers: 8 };
            let report = crate::scan::scan_host(args.url.as_deref(), options, &|_, _| {})?;
            // Never the whole disk by default: that disk holds the running system.
            let host = crate::scan::profile::host_facts(
                &report,
                args.disk.as_deref(),
                mode.unwrap_or(DiskMode::DataDisk),
            )?;
            if args.disk.is_none() {
                refuse_disk_in_use(&host.disk, DiskOrigin::Graphroot(&report.storage.graphroot))?;
            }
            tracing::info!(
                containers = report.containers.len(),
                volumes = report.volumes.len(),
                "scanned {}",
                report.endpoint
            );
            let source = crate::inventory::Source::Host(report.endpoint.clone());
            return Ok(crate::scan::profile::to_profile(&report, host, source));
        }
    };
    match &args.disk {
        Some(disk) => inventory.host.disk = disk.clone(),
        None => refuse_disk_in_use(&inventory.host.disk, DiskOrigin::Spec(&inventory.source))?,
    }
    if let Some(mode) = mode {
        inventory.host.mode = mode;
    }
    tracing::info!(
        workloads = inventory.workloads.len(),
        "inventory loaded from {}",
        inventory.source.describe()
    );
    Ok(crate::classify::classify(&inventory))
}

/// Where the disk of a plan was named, for saying what to do instead.
enum DiskOrigin<'a> {
    Flag,
    Spec(&'a Source),
    /// Defaulted to the device holding this graphroot.
    Graphroot(&'a str),
}

/// Refuses a disk that something on this machine uses: a plan for it would have disko
/// format a running system. A device that does not exist here is a plan for another
/// machine and passes; when this machine cannot be read, nothing is assumed unused. The
/// graphroot disk is refused in any case: graphroot is mounted.
fn refuse_disk_in_use(device: &str, origin: DiskOrigin) -> Result<(), Error> {
    let status = blockdev::status(device).map_err(|e| {
        Error::Environment(format!("cannot tell whether {device} is in use, so it is not planned: {e}"))
    })?;
    let in_use = match (status, &origin) {
        (Status::InUse(in_use), _) => in_use,
        // graphroot's filesystem is mounted, whatever its source looks like (`/dev/root`).
        (_, DiskOrigin::Graphroot(_)) => blockdev::InUse {
            device: device.to_string(),
            uses: vec!["it holds the mounted filesystem of graphroot".to_string()],
        },
        _ => return Ok(()),
    };
    let (problem, help) = match origin {
        DiskOrigin::Flag => (
            format!("refusing to plan the disk named by --disk: {in_use}"),
            "pass --disk with a disk that nothing on this machine mounts, swaps on or builds on".to_string(),
        ),
        DiskOrigin::Spec(source) => (
            format!("refusing to plan the disk in {} (host.disk): {in_use}", source.describe()),
            "pass --disk with an unused disk; to plan for another machine, name its disk by a path \
             that does not exist here (e.g. /dev/disk/by-id/…)"
                .to_string(),
        ),
        DiskOrigin::Graphroot(graphroot) => (
            format!(
                "no disk chosen: graphroot {graphroot} lies on {}, which is in use: {}",
                in_use.device,
                in_use.uses.join("; ")
            ),
            "pass --disk with an unused disk to plan a new disk for this host's containers, or \
             convert this host in place with the `migrate` command"
                .to_string(),
        ),
    };
    Err(Error::Usage(format!("{problem}\n  = help: {help}")))
}

/// Reads a bench report; a malformed one is an input error naming the file and line.
fn read_bench(path: &std::path::Path) -> Result<BenchReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    let origin = path.display().to_string();
    BenchReport::parse(&text, &origin).map_err(|e| {
        Error::Usage(format!(
            "--bench: {e}\n  = help: pass a report written by `podman-btrfs-advise bench --out FILE`"
        ))
    })
}

/// Refuses a plan whose estimated use exceeds the disk, before anything is written.
fn refuse_overfull(profile: &crate::classify::Profile, database_fs: Option<DatabaseFs>) -> Result<(), Error> {
    let Some(over) = decide::overfull(profile, database_fs) else { return Ok(()) };
    let host = &profile.host;
    let reserve = match host.mode {
        DiskMode::WholeDisk => {
            format!(" (with {} for the system in whole-disk mode)", Human(decide::SYSTEM_RESERVE))
        }
        DiskMode::DataDisk => String::new(),
    };
    let reserve = match database_fs {
        Some(fs) => format!(
            "{reserve} (the {fs} partition for database data takes {} of it)",
            Human(decide::database_fs::partition_bytes(profile))
        ),
        None => reserve,
    };
    Err(Error::Usage(format!(
        "the plan does not fit: the workloads need about {}{reserve} but {} holds {}; nothing was written\n  \
         = help: plan for a larger disk (--disk, and disk_size in a spec's [host]), or fewer or smaller workloads",
        Human(over.need),
        host.disk,
        Human(over.have)
    )))
}

/// The command line that regenerates the same files, for the generated headers.
fn regenerate_command(args: &PlanArgs) -> String {
    let mut cmd = String::from("podman-btrfs-advise plan");
    match (&args.spec, &args.example) {
        (Some(p), _) => cmd.push_str(&format!(" --spec {}", p.display())),
        (None, Some(e)) => cmd.push_str(&format!(" --example {e}")),
        (None, None) => {
            cmd.push_str(" --from-host");
            if let Some(u) = &args.url {
                cmd.push_str(&format!(" --url {u}"));
            }
        }
    }
    cmd.push_str(&format!(" --strategy {}", args.strategy));
    if let Some(d) = &args.disk {
        cmd.push_str(&format!(" --disk {d}"));
    }
    if let Some(m) = &args.mode {
        cmd.push_str(&format!(" --mode {m}"));
    }
    if let Some(b) = &args.bench {
        cmd.push_str(&format!(" --bench {}", b.display()));
    }
    if let Some(fs) = args.database_fs {
        cmd.push_str(&format!(" --database-fs {fs}"));
    }
    match &args.out {
        Some(o) => cmd.push_str(&format!(" --out {} --force", o.display())),
        None => cmd.push_str(" --out DIR"),
    }
    cmd
}

#[cfg(test)]
mod help_tests {
    use crate::decide::measured::{BUILD_OPERATIONS, CLEAR_RATIO, CONTAINER_OPERATIONS, MIN_ROUNDS};

    /// The help is a fixed text: it must say what the constants that decide say.
    #[test]
    fn the_help_states_the_measurement_rule_the_code_applies() {
        let help: String = super::LONG_HELP.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains(&format!("at least {CLEAR_RATIO}x the faster one")), "{help}");
        assert!(help.contains(&format!("at least {MIN_ROUNDS} rounds")), "{help}");
        let words = |ops: &[&str]| match ops {
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        assert!(help.contains(&words(BUILD_OPERATIONS)), "{help}");
        assert!(help.contains(&words(CONTAINER_OPERATIONS)), "{help}");
    }
}
