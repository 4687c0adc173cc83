//! `serve`: the companion daemon, a Podman volume plugin plus drift watchers.

use crate::class::Class;
use crate::daemon::{self, ServeConfig, watch::WatchedFiles};
use crate::decide::layout::PODFS_ROOT;
use crate::error::Error;
use crate::podman;
use clap::Args;
use std::path::PathBuf;

/// Where the plugin listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/podman-btrfs-advise/podfs.sock";

/// Run the volume plugin daemon: each volume its own btrfs subvolume, plus drift watchers.
///
/// Podman keeps every named volume in one plain directory. With this daemon registered as
/// a volume plugin, `podman volume create --driver podfs --opt class=database pg` makes the
/// volume a btrfs subvolume ROOT/database/pg with the attributes its class needs, listed
/// under Classes below: NOCOW (chattr +C, set while it is empty) or a compression property.
/// `--opt size=20G` sets a qgroup limit, only when the admin has turned btrfs quotas on
/// (`btrfs quota enable`); this tool never turns them on.
///
/// Nothing is kept outside the filesystem: a volume's class is the directory it lies in,
/// so a restart or crash loses nothing. Remove deletes only a subvolume that lies directly
/// in one of ROOT's class directories. Names follow Podman's rule
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 255 bytes).
///
/// Watchers (structured log lines on stderr, `--log-format json` for JSON):
/// Podman's event stream flags new containers and volumes whose class does not match
/// where their data lies (`volume-cow`, `media-compressed`, `class-conflict`, …); it
/// reconnects with backoff when Podman restarts. inotify on storage.conf, containers.conf
/// and `--disko` re-runs `check` on every change, including write-and-rename.
#[derive(Debug, Args)]
#[command(after_long_help = after_long_help())]
pub struct ServeArgs {
    /// The plugin's unix socket (mode 0600); register it in containers.conf.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Directory on btrfs that holds the volumes (ROOT/CLASS/NAME); created if missing.
    #[arg(long, value_name = "DIR", default_value = PODFS_ROOT)]
    pub root: PathBuf,

    /// The name the plugin is registered under in containers.conf (`--driver NAME`).
    #[arg(long, value_name = "NAME", default_value = "podfs")]
    pub plugin_name: String,

    /// Podman API socket for the events watcher [default: as `scan`: CONTAINER_HOST, then
    /// /run/podman/podman.sock for root].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Do not follow Podman's events.
    #[arg(long)]
    pub no_events: bool,

    /// storage.conf to watch [default: the file Podman reads, see `storage-conf show`].
    #[arg(long, value_name = "FILE")]
    pub storage_conf: Option<PathBuf>,

    /// containers.conf to watch [default: CONTAINERS_CONF, else /etc/containers/containers.conf].
    #[arg(long, value_name = "FILE")]
    pub containers_conf: Option<PathBuf>,

    /// A disko.nix to check together with storage.conf on every change.
    #[arg(long, value_name = "FILE")]
    pub disko: Option<PathBuf>,

    /// Do not watch configuration files.
    #[arg(long)]
    pub no_watch: bool,

    /// Let `podman volume rm` remove a volume that still has snapshots (taken by
    /// `snapshot`, in CLASS/.snapshots): the volume goes, its snapshots stay. Without it
    /// such a removal is refused, so no snapshot is left without its volume by accident.
    #[arg(long)]
    pub remove_with_snapshots: bool,
}

const USAGE_HELP: &str = "Register the plugin (/etc/containers/containers.conf, or the NixOS module
services.podman-btrfs-advise from contrib/nixos):
  [engine.volume_plugins]
  podfs = \"/run/podman-btrfs-advise/podfs.sock\"

Use it:
  podman volume create --driver podfs --opt class=database pg
  podman run -v pg:/var/lib/postgresql/data docker.io/library/postgres
  podman volume rm pg          # deletes the subvolume and its data";

const RUNNING_HELP: &str = "Logging: info level by default for serve; -v for debug, RUST_LOG overrides.
Under systemd use Type=notify: READY=1 is sent once the socket listens
(contrib/systemd/podman-btrfs-advise.service). SIGTERM or SIGINT stops it and removes
the socket.

Exit codes: 0 stopped by a signal; 2 bad usage; 3 the root is not on btrfs, the socket
is taken by another instance, or a path cannot be used.";

/// The text after the options in `serve --help`; the classes come from the class table.
fn after_long_help() -> String {
    let width = |f: fn(&Class) -> usize| Class::ALL.iter().map(f).max().unwrap_or(0);
    let (name_width, attr_width) = (width(|c| c.as_str().len()), width(|c| c.info().attributes().len()));
    let classes: Vec<String> = Class::ALL
        .iter()
        .map(|c| {
            let (name, attributes) = (c.as_str(), c.info().attributes());
            format!("  {name:<name_width$}  {attributes:<attr_width$}  {}", c.info().summary)
        })
        .collect();
    format!(
        "{USAGE_HELP}\n\nClasses (--opt class=CLASS; without it a volume is {}):\n{}\n\n\
         Volume options (--opt): class={},\nsize=SIZE (qgroup limit; needs quotas already on).\n\n{RUNNING_HELP}",
        Class::FALLBACK,
        classes.join("\n"),
        Class::ALL.map(Class::as_str).join("|"),
    )
}

/// The containers.conf Podman reads as root.
fn default_containers_conf(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("CONTAINERS_CONF").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from("/etc/containers/containers.conf"),
    }
}

/// The files to watch from the flags, with the defaults filled in: `storage_conf` is the
/// storage.conf Podman reads here (see `default_storage_conf`).
pub fn watched_files(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
    storage_conf: &dyn Fn() -> Result<PathBuf, Error>,
) -> Result<WatchedFiles, Error> {
    if args.no_watch {
        return Ok(WatchedFiles::default());
    }
    let storage = match &args.storage_conf {
        Some(p) => p.clone(),
        None => storage_conf()?,
    };
    Ok(WatchedFiles {
        disko: args.disko.clone(),
        storage_conf: Some(storage),
        containers_conf: Some(args.containers_conf.clone().unwrap_or_else(|| default_containers_conf(env))),
    })
}

/// The storage.conf Podman reads for this user, as `storage-conf show` finds it under the
/// rules of the Podman on PATH: its main file (drop-ins are not watched).
fn default_storage_conf() -> Result<PathBuf, Error> {
    use crate::conf::resolve::{Caller, resolve};
    Ok(resolve(&Caller::current(None), None, None)?.stack.first_file().to_path_buf())
}

pub fn run(args: ServeArgs) -> Result<u8, Error> {
    if args.plugin_name.is_empty()
        || !args.plugin_name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(Error::Usage(format!(
            "--plugin-name `{}`: use letters, digits, `_`, `.` and `-`",
            args.plugin_name
        )));
    }
    let env = |name: &str| std::env::var(name).ok();
    let podman = if args.no_events {
        None
    } else {
        let found = podman::discover(args.url.as_deref(), &env, rustix::process::geteuid().is_root())?;
        if !matches!(found.endpoint, podman::Endpoint::Unix(_)) {
            return Err(Error::Usage(format!(
                "the events watcher follows unix sockets only, not {}; pass --no-events or a unix:// --url",
                found.endpoint.url()
            )));
        }
        Some(found)
    };
    let config = ServeConfig {
        watch: watched_files(&args, &env, &default_storage_conf)?,
        socket: args.socket,
        root: args.root,
        plugin_name: args.plugin_name,
        remove_with_snapshots: args.remove_with_snapshots,
        podman,
    };
    podman::runtime()?.block_on(daemon::serve(config))?;
    Ok(crate::error::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        Wrap::parse_from(std::iter::once("serve").chain(argv.iter().copied())).args
    }

    #[test]
    fn defaults_watch_what_podman_reads() {
        let env = |n: &str| (n == "CONTAINERS_CONF").then(|| "/tmp/c.conf".to_string());
        let found = || Ok(PathBuf::from("/usr/share/containers/storage.conf"));
        let files = watched_files(&parse(&[]), &env, &found).unwrap();
        assert_eq!(files.storage_conf.as_deref(), Some(Path::new("/usr/share/containers/storage.conf")));
        assert_eq!(files.containers_conf.as_deref(), Some(Path::new("/tmp/c.conf")));
        assert_eq!(files.disko, None);
        let none = |_: &str| None;
        let files =
            watched_files(&parse(&["--disko", "/etc/disko.nix", "--storage-conf", "/x.conf"]), &none, &found)
                .unwrap();
        assert_eq!(files.storage_conf.as_deref(), Some(Path::new("/x.conf")));
        assert_eq!(files.containers_conf.as_deref(), Some(Path::new("/etc/containers/containers.conf")));
        assert_eq!(files.disko.as_deref(), Some(Path::new("/etc/disko.nix")));
        let unused = || -> Result<PathBuf, Error> { panic!("--no-watch looks for no storage.conf") };
        assert!(watched_files(&parse(&["--no-watch"]), &none, &unused).unwrap().is_empty());
    }
}
