//! `restore`: put a volume's snapshot back in place, keeping the data it replaces.

use super::Format;
use super::snapshot::{connect, data_of, users_of, volume};
use crate::error::{Error, exit};
use crate::snapshot::{self, Quiet};
use clap::Args;

const EXAMPLES: &str = "Examples:
  podman-btrfs-advise snapshot --list pgdata
  podman-btrfs-advise restore pgdata pgdata@20261130T083800Z            # what it would do
  podman-btrfs-advise restore pgdata 20261130T083800Z --yes";

const LONG_HELP: &str = "Steps, with --yes: stop the containers that use the volume (each
with its stop timeout; a paused one is unpaused first), make a writable snapshot of
SNAPSHOT beside the volume's subvolume under a hidden name, exchange the two in one rename,
move the replaced subvolume into .snapshots as VOLUME@NOW and make it read-only (nothing
is deleted: restoring that snapshot undoes the restore), and start again the containers
that were stopped, also when a step failed. A qgroup size limit of the old subvolume
does not carry over to the restored one.

JSON output (--format json), fields are only ever added:
  {volume, dry_run, restored {volume, name, stamp, path}, kept {volume, name, stamp, path}|null,
   containers [NAME], failures [MESSAGE]}

Exit codes: 0 done (or shown, without --yes); 2 usage (no such volume or snapshot); 3
refused or failed (not a subvolume, a step failed, a container not started again).";

/// Put a snapshot taken by `snapshot` back in place of a volume's data.
///
/// Without --yes, prints what it would do and changes nothing. With --yes, stops the
/// containers that use VOLUME, keeps the current data as a snapshot (nothing is lost),
/// puts a writable copy of SNAPSHOT (its name VOLUME@STAMP, or the stamp) in place and
/// starts again what it stopped.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct RestoreArgs {
    /// The volume to restore.
    #[arg(value_name = "VOLUME")]
    pub volume: String,

    /// The snapshot to restore: VOLUME@STAMP as `snapshot --list` shows it, or the stamp.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,

    /// Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Do it; without --yes the steps are printed and nothing changes.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: RestoreArgs) -> Result<u8, Error> {
    let (client, rt) = connect(args.url.as_deref())?;
    let v = volume(&client, &rt, &args.volume)?;
    let data = data_of(&v)?;
    snapshot::check_subvolume(&v.name, &data)?;
    let snapshots = snapshot::list(&v.name, &data)?;
    let from = snapshot::find(&snapshots, &v.name, &args.snapshot)?.clone();
    let containers = rt.block_on(client.containers_brief())?;
    let running: Vec<_> = users_of(&containers, &v.name)
        .into_iter()
        .filter(|c| c.state == "running" || c.state == "paused")
        .collect();
    let names: Vec<String> = running.iter().map(|c| c.name.clone()).collect();

    let (kept, failures) = if args.yes {
        let mut quiet = Quiet::new(&client, &rt);
        let mut done = Ok(());
        for c in &running {
            done = quiet.stop(&c.id, c.state == "paused");
            if done.is_err() {
                break;
            }
        }
        let restored = done
            .and_then(|()| snapshot::restore(&v.name, &data, &from, &snapshot::unused_stamp(&v.name, &data)));
        let failures = quiet.release();
        (Some(restored?), failures)
    } else {
        (None, Vec::new())
    };

    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "volume": v.name,
                "dry_run": !args.yes,
                "restored": from,
                "kept": kept,
                "containers": names,
                "failures": failures,
            }))
            .expect("plain data serializes")
        ),
        Format::Human => {
            let who = if names.is_empty() { "no container".to_string() } else { names.join(", ") };
            match &kept {
                None => {
                    println!(
                        "would stop {who}, keep the data of `{}` as a snapshot, put {} in place,",
                        v.name, from.name
                    );
                    println!("and start {who} again; pass --yes to do it");
                }
                Some(kept) => {
                    println!("restored `{}` from {} (stopped and started {who})", v.name, from.name);
                    println!("the replaced data is kept as {}", kept.path.display());
                }
            }
            for f in &failures {
                eprintln!("error: {f}");
            }
        }
    }
    Ok(if failures.is_empty() { exit::OK } else { exit::ENVIRONMENT })
}
