//! `snapshot`: read-only snapshots of volumes while their containers are paused, and the
//! list of the snapshots a volume has, and pruning them by the class policy.

use super::Format;
use crate::class::{Class, Snapshots};
use crate::classify::live::classify_volume;
use crate::error::{Error, exit};
use crate::inventory::live::{Container, Volume};
use crate::podman::{Client, Timeouts, discover, runtime};
use crate::snapshot::{self, Quiesced, Quiet, Snapshot};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};

const EXAMPLES: &str = "Examples:
  podman-btrfs-advise snapshot pgdata
  podman-btrfs-advise snapshot pgdata uploads --url unix:///run/podman/podman.sock
  podman-btrfs-advise snapshot --list
  podman-btrfs-advise snapshot --list pgdata --format json
  podman-btrfs-advise snapshot --prune                 # what the class policies would delete
  podman-btrfs-advise snapshot --prune pgdata --yes
  podman-btrfs-advise snapshot --scheduled hourly       # what a timer runs: every volume due hourly";

const LONG_HELP: &str = "Where snapshots lie: in a `.snapshots` directory beside the volume's
subvolume, named VOLUME@YYYYMMDDTHHMMSSZ (UTC). For a volume of the volume plugin
(`serve`) that is ROOT/CLASS/.snapshots, which the plugin never lists as a volume; for a
local volume that `migrate` made a subvolume it is .../volumes/NAME/.snapshots.

A snapshot of a NOCOW subvolume (database, vm) makes the next write of every block
copy-on-write once; pausing makes the files consistent with each other, as after a
power loss, not as after a clean shutdown.

JSON output (--format json), fields are only ever added:
  snapshot: {snapshots [{volume, class, name, stamp, path,
                         containers [{name, how: paused|stopped}]}],
             failures [MESSAGE]}
  --list:   {snapshots [{volume, name, stamp, path}]}
  --prune:  {dry_run, volumes [{volume, class, policy, keep [NAME], delete [NAME]}]}

--prune keeps, per volume, what its class's on-host retention says (the table in
README.md, e.g. database: 24 hourly, 7 daily): the first snapshot of each of the newest N
hours, days, weeks (from Monday) and months that hold one, and always the newest.
Volumes of classes without a schedule (the class table) keep all their snapshots.
Only names VOLUME@STAMP in .snapshots are ever considered.

Exit codes: 0 done; 2 usage (no such volume); 3 refused (not a subvolume, a class never
snapshotted without --force, a container that cannot be paused without --stop) or a
container that could not be unpaused or started again.";

/// Take read-only btrfs snapshots of volumes while the containers using them are paused.
///
/// Each VOLUME's data must be the root of a btrfs subvolume (volumes of the `serve` volume
/// plugin are; `migrate` makes local volumes so). The running containers that mount it are
/// paused (cgroup freezer) for the moment the snapshot takes and unpaused afterwards,
/// also when the snapshot fails; one that cannot be paused is stopped and started again
/// only with --stop. Volumes of a class whose data is rebuilt on loss (cache) are refused
/// unless --force. Every volume is checked before any container is paused.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct SnapshotArgs {
    /// The volumes to snapshot (with --list or --prune: whose snapshots; none: all volumes).
    #[arg(value_name = "VOLUME", required_unless_present_any = ["list", "prune", "scheduled"])]
    pub volumes: Vec<String>,

    /// Snapshot every volume whose class is scheduled this often (the class table's
    /// schedule: hourly for database and vm, …), for a timer to run. A volume that cannot be
    /// snapshotted (not a subvolume, a class label that names no class, a container that
    /// cannot be paused, a snapshot btrfs refuses) is reported, the others are still taken,
    /// and the exit code is 3.
    #[arg(long, value_name = "EVERY", value_parser = ["hourly", "daily", "weekly"],
          conflicts_with_all = ["volumes", "list", "prune", "force"])]
    pub scheduled: Option<String>,

    /// Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Stop (and start again) a container that cannot be paused, instead of refusing.
    #[arg(long, conflicts_with_all = ["list", "prune"])]
    pub stop: bool,

    /// Snapshot also volumes of a class that is never snapshotted (cache).
    #[arg(long, conflicts_with_all = ["list", "prune"])]
    pub force: bool,

    /// List the snapshots of the volumes (of every volume without VOLUME); take none.
    #[arg(long, conflicts_with = "prune")]
    pub list: bool,

    /// Delete the snapshots the volumes' class policy no longer keeps (shown only,
    /// without --yes).
    #[arg(long)]
    pub prune: bool,

    /// With --prune: delete; without it --prune only shows what it would delete.
    #[arg(long, short = 'y', requires = "prune")]
    pub yes: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
struct Taken {
    #[serde(flatten)]
    snapshot: Snapshot,
    class: String,
    containers: Vec<Held>,
}

#[derive(Debug, Serialize)]
struct Held {
    name: String,
    how: Quiesced,
}

/// A volume to snapshot: where its data is and who uses it.
struct Target {
    volume: Volume,
    data: PathBuf,
    users: Vec<Container>,
    class: Class,
}

pub(super) fn data_of(v: &Volume) -> Result<PathBuf, Error> {
    if v.mountpoint.is_empty() {
        return Err(Error::Environment(format!(
            "volume `{}` (driver {}): Podman names no directory for its data",
            v.name, v.driver
        )));
    }
    Ok(PathBuf::from(&v.mountpoint))
}

pub(super) fn volume(client: &Client, rt: &tokio::runtime::Runtime, name: &str) -> Result<Volume, Error> {
    rt.block_on(client.volume(name))?.ok_or_else(|| Error::Usage(format!("no volume named `{name}`")))
}

/// The client of the Podman at `url` (else the default) and a runtime for it, once the
/// server answered a ping as a Podman this tool knows.
pub(super) fn connect(url: Option<&str>) -> Result<(Client, tokio::runtime::Runtime), Error> {
    let env = |name: &str| std::env::var(name).ok();
    let at = discover(url, &env, rustix::process::geteuid().is_root())?;
    let client = Client::new(at, Timeouts::CONTROL);
    let rt = runtime()?;
    rt.block_on(client.ping())?;
    Ok((client, rt))
}

/// A volume's class: for a volume of the plugin (`serve`) the class directory its
/// subvolume lies in (the one its `class` option chose, `general` without one), else
/// what the labels and the containers using it say.
fn volume_class(v: &Volume, users: &[Container]) -> Result<Class, Error> {
    let option = || v.options.get("class").and_then(|name| name.parse::<Class>().ok());
    if let Some(class) = option().or_else(|| plugin_class(v)) {
        return Ok(class);
    }
    Ok(classify_volume(v, &users.iter().collect::<Vec<_>>())?.class)
}

/// [`volume_class`], asking a plugin for the class it reports (the plugin's status) when
/// Podman names no mountpoint yet: a plugin volume no container has mounted.
fn class_of(
    client: &Client,
    rt: &tokio::runtime::Runtime,
    v: &Volume,
    users: &[Container],
) -> Result<Class, Error> {
    if v.driver != "local" && v.mountpoint.is_empty() && !v.options.contains_key("class") {
        let status = rt.block_on(client.volume_status(&v.name))?;
        if let Some(class) = status.get("class").and_then(|c| c.as_str()?.parse::<Class>().ok()) {
            return Ok(class);
        }
    }
    volume_class(v, users)
}

/// The class of a volume the plugin serves, from its mountpoint ROOT/CLASS/NAME; `None`
/// for a local volume (whose data lies in .../volumes/NAME/_data) and any other driver's.
fn plugin_class(v: &Volume) -> Option<Class> {
    if v.driver == "local" {
        return None;
    }
    let path = Path::new(&v.mountpoint);
    if path.file_name()? != v.name.as_str() {
        return None;
    }
    path.parent()?.file_name()?.to_str()?.parse().ok()
}

/// An error as one line of the report's failures.
fn failure(e: &Error) -> String {
    e.to_string().trim_start_matches("error: ").to_string()
}

/// Snapshots `t` while the running containers that use it are quiesced, and releases them
/// again whatever happened; what releasing could not do is added to `failures`.
fn take_one(
    t: &Target,
    client: &Client,
    rt: &tokio::runtime::Runtime,
    stop: bool,
    failures: &mut Vec<String>,
) -> Result<Taken, Error> {
    let mut quiet = Quiet::new(client, rt);
    let mut take = || {
        let mut held = Vec::new();
        for c in t.users.iter().filter(|c| c.state == "running") {
            held.push(Held { name: c.name.clone(), how: quiet.quiesce(&c.id, stop)? });
        }
        let stamp = snapshot::unused_stamp(&t.volume.name, &t.data);
        let snapshot = snapshot::take(&t.volume.name, &t.data, &stamp)?;
        Ok(Taken { snapshot, class: t.class.to_string(), containers: held })
    };
    let result = take();
    failures.extend(quiet.release());
    result
}

/// The containers that mount volume `name`.
pub(super) fn users_of(containers: &[Container], name: &str) -> Vec<Container> {
    containers
        .iter()
        .filter(|c| c.mounts.iter().any(|m| m.volume.as_deref() == Some(name)))
        .cloned()
        .collect()
}

pub fn run(args: SnapshotArgs) -> Result<u8, Error> {
    let (client, rt) = connect(args.url.as_deref())?;
    if args.list {
        return list(&args, &client, &rt);
    }
    let containers = rt.block_on(client.containers_brief())?;
    if args.prune {
        return prune(&args, &client, &rt, &containers);
    }
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    if let Some(every) = &args.scheduled {
        // A timer's run: every volume due at this schedule; one that cannot be taken is
        // reported and does not keep the others from being taken.
        for volume in rt.block_on(client.volumes())? {
            let users = users_of(&containers, &volume.name);
            let class = match class_of(&client, &rt, &volume, &users) {
                Ok(class) => class,
                Err(e) => {
                    failures.push(failure(&e));
                    continue;
                }
            };
            let due = matches!(class.info().snapshots, Snapshots::Scheduled(p) if p.every.as_str() == every);
            if !due {
                continue;
            }
            match data_of(&volume)
                .and_then(|data| snapshot::check_subvolume(&volume.name, &data).map(|()| data))
            {
                Ok(data) => targets.push(Target { volume, data, users, class }),
                Err(e) => failures.push(failure(&e)),
            }
        }
    }
    for name in &args.volumes {
        let volume = volume(&client, &rt, name)?;
        let users = users_of(&containers, name);
        let class = class_of(&client, &rt, &volume, &users)?;
        if let Some(why) = snapshot::refusal(name, class, args.force) {
            return Err(Error::Environment(why));
        }
        let data = data_of(&volume)?;
        snapshot::check_subvolume(name, &data)?;
        targets.push(Target { volume, data, users, class });
    }
    let mut taken = Vec::new();
    for t in &targets {
        match take_one(t, &client, &rt, args.stop, &mut failures) {
            Ok(one) => taken.push(one),
            // A timer's run reports the volume and goes on with the others.
            Err(e) if args.scheduled.is_some() => {
                let (named, message) = (format!("volume `{}`", t.volume.name), failure(&e));
                failures.push(if message.starts_with(&named) {
                    message
                } else {
                    format!("{named}: {message}")
                });
            }
            Err(e) => return Err(e),
        }
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "snapshots": taken, "failures": failures }))
                .expect("plain data serializes")
        ),
        Format::Human => {
            for t in &taken {
                let held: Vec<String> =
                    t.containers.iter().map(|h| format!("{} {}", h.how.as_str(), h.name)).collect();
                let while_ = if held.is_empty() { String::new() } else { format!(" ({})", held.join(", ")) };
                println!("{} ({}): {}{while_}", t.snapshot.volume, t.class, t.snapshot.path.display());
            }
            for f in &failures {
                eprintln!("error: {f}");
            }
        }
    }
    Ok(if failures.is_empty() { exit::OK } else { exit::ENVIRONMENT })
}

/// The volumes named on the command line, else all.
fn named_volumes(
    args: &SnapshotArgs,
    client: &Client,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<Volume>, Error> {
    if args.volumes.is_empty() {
        Ok(rt.block_on(client.volumes())?)
    } else {
        args.volumes.iter().map(|name| volume(client, rt, name)).collect()
    }
}

#[derive(Debug, Serialize)]
struct Pruned {
    volume: String,
    class: String,
    policy: String,
    keep: Vec<String>,
    delete: Vec<String>,
}

fn prune(
    args: &SnapshotArgs,
    client: &Client,
    rt: &tokio::runtime::Runtime,
    containers: &[Container],
) -> Result<u8, Error> {
    let mut report = Vec::new();
    let mut doomed = Vec::new();
    for v in named_volumes(args, client, rt)?.iter().filter(|v| !v.mountpoint.is_empty()) {
        let snapshots = snapshot::list(&v.name, Path::new(&v.mountpoint))?;
        if snapshots.is_empty() {
            continue;
        }
        let users = users_of(containers, &v.name);
        let class = class_of(client, rt, v, &users)?;
        let stamps: Vec<&str> = snapshots.iter().map(|s| s.stamp.as_str()).collect();
        let (policy, kept) = match class.info().snapshots {
            crate::class::Snapshots::Scheduled(p) => (p.keep.describe(), snapshot::kept_by(&p.keep, &stamps)),
            other => {
                (format!("{} (all kept)", other.summary()), stamps.iter().map(|s| s.to_string()).collect())
            }
        };
        let (keep, delete): (Vec<&Snapshot>, Vec<&Snapshot>) =
            snapshots.iter().partition(|s| kept.contains(&s.stamp));
        doomed.extend(delete.iter().map(|s| (*s).clone()));
        report.push(Pruned {
            volume: v.name.clone(),
            class: class.to_string(),
            policy,
            keep: keep.iter().map(|s| s.name.clone()).collect(),
            delete: delete.iter().map(|s| s.name.clone()).collect(),
        });
    }
    if args.yes {
        for s in &doomed {
            snapshot::delete(s)?;
        }
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "dry_run": !args.yes, "volumes": report }))
                .expect("plain data serializes")
        ),
        Format::Human => {
            let verb = if args.yes { "deleted" } else { "would delete" };
            for p in &report {
                println!(
                    "{} ({}, keeps {}): keep {}, {verb} {}",
                    p.volume,
                    p.class,
                    p.policy,
                    p.keep.len(),
                    if p.delete.is_empty() { "none".to_string() } else { p.delete.join(", ") }
                );
            }
            if !args.yes && !doomed.is_empty() {
                println!("pass --yes to delete them");
            }
        }
    }
    Ok(exit::OK)
}

fn list(args: &SnapshotArgs, client: &Client, rt: &tokio::runtime::Runtime) -> Result<u8, Error> {
    let volumes = named_volumes(args, client, rt)?;
    let mut all = Vec::new();
    for v in volumes.iter().filter(|v| !v.mountpoint.is_empty()) {
        all.extend(snapshot::list(&v.name, Path::new(&v.mountpoint))?);
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "snapshots": all }))
                .expect("plain data serializes")
        ),
        Format::Human if all.is_empty() => println!("no snapshots"),
        Format::Human => {
            for s in &all {
                println!("{}\t{}\t{}", s.volume, s.stamp, s.path.display());
            }
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, driver: &str, mountpoint: &str) -> Volume {
        Volume {
            name: name.into(),
            driver: driver.into(),
            mountpoint: mountpoint.into(),
            labels: [("io.podfs.class".to_string(), "database".to_string())].into_iter().collect(),
            ..Volume::default()
        }
    }

    #[test]
    fn a_plugin_volume_is_of_the_class_directory_it_lies_in_whatever_its_labels_say() {
        let plugin = volume("misc", "podfs", "/srv/podfs/general/misc");
        assert_eq!(volume_class(&plugin, &[]).unwrap(), Class::named("general").unwrap());
        // A local volume named like a class is classified by its label, not its path.
        let local = volume("cache", "local", "/var/lib/containers/storage/volumes/cache/_data");
        assert_eq!(volume_class(&local, &[]).unwrap(), Class::named("database").unwrap());
        // Another driver's volume whose path does not end in its name: by its label.
        let other = volume("x", "other", "/mnt/cache/data");
        assert_eq!(volume_class(&other, &[]).unwrap(), Class::named("database").unwrap());
    }
}
